// edgeviz generic C-simulation testbench (g++ or Vitis HLS csim).
//
// The project supplies ev_tb_config.h, which defines EV_TB_INPUT_BYTES and EV_TB_OUTPUT_BYTES and
// declares   void ev_tb_top(const ev_i8 *in, ev_i8 *out);   (a wrapper around the HLS top function).
//
// usage: csim [--text] INPUT OUTPUT [--ref REFERENCE]
//   INPUT      int8 input vectors, EV_TB_INPUT_BYTES each, back to back; with --text, whitespace-separated
//              decimal integers instead of raw bytes
//   OUTPUT     int8 outputs written in the same format, EV_TB_OUTPUT_BYTES per vector
//   REFERENCE  expected outputs (same format); every mismatching byte is counted, exit status 1 if any
// Prints one summary line: "ev_tb: <vectors> vectors, <mismatches> mismatching bytes".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "ev_tb_config.h"

static bool read_vectors(const char *path, bool text, std::vector<int> &vals) {
    FILE *f = fopen(path, text ? "r" : "rb");
    if (!f) return false;
    if (text) {
        int v;
        while (fscanf(f, "%d", &v) == 1) vals.push_back(v);
    } else {
        int c;
        while ((c = fgetc(f)) != EOF) vals.push_back((int)(signed char)(unsigned char)c);
    }
    fclose(f);
    return true;
}

int main(int argc, char **argv) {
    bool text = false;
    const char *paths[2] = {0, 0};
    const char *ref_path = 0;
    int np = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--text")) text = true;
        else if (!strcmp(argv[i], "--ref") && i + 1 < argc) ref_path = argv[++i];
        else if (np < 2) paths[np++] = argv[i];
        else { fprintf(stderr, "ev_tb: unexpected argument %s\n", argv[i]); return 2; }
    }
    if (np != 2) {
        fprintf(stderr, "usage: %s [--text] INPUT OUTPUT [--ref REFERENCE]\n", argv[0]);
        return 2;
    }
    std::vector<int> in;
    if (!read_vectors(paths[0], text, in)) { fprintf(stderr, "ev_tb: cannot read %s\n", paths[0]); return 2; }
    if (in.empty() || in.size() % EV_TB_INPUT_BYTES) {
        fprintf(stderr, "ev_tb: %s holds %zu values, not a multiple of %d\n", paths[0], in.size(),
                (int)EV_TB_INPUT_BYTES);
        return 2;
    }
    const size_t count = in.size() / EV_TB_INPUT_BYTES;
    std::vector<int> ref;
    if (ref_path && !read_vectors(ref_path, text, ref)) {
        fprintf(stderr, "ev_tb: cannot read %s\n", ref_path);
        return 2;
    }
    if (ref_path && ref.size() != count * EV_TB_OUTPUT_BYTES) {
        fprintf(stderr, "ev_tb: %s holds %zu values, expected %zu\n", ref_path, ref.size(),
                count * EV_TB_OUTPUT_BYTES);
        return 2;
    }
    FILE *fo = fopen(paths[1], text ? "w" : "wb");
    if (!fo) { fprintf(stderr, "ev_tb: cannot write %s\n", paths[1]); return 2; }
    static ev_i8 x[EV_TB_INPUT_BYTES];
    static ev_i8 y[EV_TB_OUTPUT_BYTES];
    size_t mismatches = 0;
    for (size_t v = 0; v < count; v++) {
        for (int i = 0; i < EV_TB_INPUT_BYTES; i++) x[i] = ev_i8(in[v * EV_TB_INPUT_BYTES + i]);
        ev_tb_top(x, y);
        for (int i = 0; i < EV_TB_OUTPUT_BYTES; i++) {
            const int o = (int)y[i];
            if (text) fprintf(fo, i + 1 < EV_TB_OUTPUT_BYTES ? "%d " : "%d\n", o);
            else fputc((unsigned char)(signed char)o, fo);
            if (ref_path && ref[v * EV_TB_OUTPUT_BYTES + i] != o) mismatches++;
        }
    }
    fclose(fo);
    printf("ev_tb: %zu vectors, %zu mismatching bytes\n", count, mismatches);
    return mismatches ? 1 : 0;
}
