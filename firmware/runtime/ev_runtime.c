/* edgeviz device runtime: answer framed requests from the host (see ev_protocol.h, generated from
 * edgeviz/runner/protocol.py) and run the generated model.
 *
 * INFER input bytes go straight into ev_arena + EV_INPUT_OFFSET while the CRC is computed; outputs
 * are sent from ev_arena + EV_OUTPUT_OFFSET. No frame buffer beyond the 10-byte header is needed. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "ev_parts.h"
#include "ev_profile.h"
#include "ev_protocol.h"
#include "model.h"

uint64_t ev_prof_layer[EV_NUM_LAYERS];
uint64_t ev_prof_t0;

#ifdef EV_PROFILE_PARTS
/* The part profile (kernels/ev_parts.h): the running sums of the current step, and per step the
 * sums and switch counts of the last inference. */
uint32_t ev_part_ticks[EV_NUM_PARTS + 1];
uint32_t ev_part_mark;
uint32_t ev_part_switches;
int ev_part_running = EV_NUM_PARTS;
static uint64_t ev_prof_parts[EV_NUM_LAYERS][EV_NUM_PARTS];
static uint32_t ev_prof_switches[EV_NUM_LAYERS];

void ev_parts_layer_begin(void)
{
    for (unsigned p = 0; p <= EV_NUM_PARTS; p++) ev_part_ticks[p] = 0;
    ev_part_switches = 0;
    ev_part_running = EV_NUM_PARTS;
    ev_part_mark = EV__PART_SYST_CVR;
}

void ev_parts_layer_end(int layer)
{
    for (unsigned p = 0; p < EV_NUM_PARTS; p++) ev_prof_parts[layer][p] += ev_part_ticks[p];
    ev_prof_switches[layer] += ev_part_switches;
}
#endif

/* Read from the ELF by the host to spot a build dir whose firmware is stale. */
__attribute__((used, section(".ev_keep"))) const uint32_t ev_fw_model_id = EV_MODEL_ID;

static uint32_t infer_count;       /* inferences since boot: a drop tells the host the device reset */
static uint64_t last_total;

/* ------------------------------------------------------------------ CRC-32 (IEEE, reflected) */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

static uint32_t crc_update(uint32_t crc, const uint8_t *p, uint32_t n)
{
    while (n--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
    }
    return crc;
}

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) { put_u16(p, (uint16_t)v); put_u16(p + 2, (uint16_t)(v >> 16)); }
static void put_u64(uint8_t *p, uint64_t v) { put_u32(p, (uint32_t)v); put_u32(p + 4, (uint32_t)(v >> 32)); }
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const uint8_t *p) { return get_u16(p) | ((uint32_t)get_u16(p + 2) << 16); }

/* ------------------------------------------------------------------ reply frames */
static uint32_t tx_crc;

static void tx_bytes(const uint8_t *p, uint32_t n)
{
    tx_crc = crc_update(tx_crc, p, n);
    board_uart_write(p, n);
}

static void tx_begin(uint8_t command, uint16_t seq, uint32_t len)
{
    uint8_t h[EV_PROTO_HEADER_LEN];
    h[EV_HDR_OFF_MAGIC] = EV_PROTO_MAGIC0;
    h[EV_HDR_OFF_MAGIC + 1] = EV_PROTO_MAGIC1;
    h[EV_HDR_OFF_VERSION] = EV_PROTO_VERSION;
    h[EV_HDR_OFF_COMMAND] = command;
    put_u16(h + EV_HDR_OFF_SEQ, seq);
    put_u32(h + EV_HDR_OFF_LENGTH, len);
    tx_crc = 0xFFFFFFFFu;
    tx_bytes(h, sizeof h);
}

static void tx_end(void)
{
    uint8_t c[EV_PROTO_CRC_LEN];
    put_u32(c, tx_crc ^ 0xFFFFFFFFu);
    board_uart_write(c, sizeof c);
}

static void reply_error(uint8_t code, uint8_t command, uint16_t seq, uint32_t detail)
{
    uint8_t p[EV_ERROR_LEN];
    p[EV_ERROR_OFF_CODE] = code;
    p[EV_ERROR_OFF_COMMAND] = command;
    put_u32(p + EV_ERROR_OFF_DETAIL, detail);
    tx_begin(EV_CMD_ERROR | EV_PROTO_REPLY_FLAG, seq, sizeof p);
    tx_bytes(p, sizeof p);
    tx_end();
}

/* ------------------------------------------------------------------ commands */
static void do_info(uint16_t seq)
{
    uint8_t p[EV_INFO_LEN];
    memset(p, 0, sizeof p);
    put_u32(p + EV_INFO_OFF_MODEL_ID, EV_MODEL_ID);
    put_u32(p + EV_INFO_OFF_ARENA_BYTES, EV_ARENA_BYTES);
    put_u32(p + EV_INFO_OFF_INPUT_OFFSET, EV_INPUT_OFFSET);
    put_u32(p + EV_INFO_OFF_INPUT_BYTES, EV_INPUT_BYTES);
    put_u32(p + EV_INFO_OFF_OUTPUT_OFFSET, EV_OUTPUT_OFFSET);
    put_u32(p + EV_INFO_OFF_OUTPUT_BYTES, EV_OUTPUT_BYTES);
    put_u16(p + EV_INFO_OFF_NUM_LAYERS, EV_NUM_LAYERS);
    for (int i = 0; i < 4; i++) {
        put_u16(p + EV_INFO_OFF_INPUT_SHAPE + 2 * i, ev_input_shape[i]);
        put_u16(p + EV_INFO_OFF_OUTPUT_SHAPE + 2 * i, ev_output_shape[i]);
    }
    uint32_t bits;
    memcpy(&bits, &ev_input_scale, 4);
    put_u32(p + EV_INFO_OFF_INPUT_SCALE, bits);
    memcpy(&bits, &ev_output_scale, 4);
    put_u32(p + EV_INFO_OFF_OUTPUT_SCALE, bits);
    put_u32(p + EV_INFO_OFF_CLOCK_HZ, board_clock_hz());
    p[EV_INFO_OFF_TIMER_UNIT] = board_counter_unit();
    for (uint32_t i = 0; i + 1 < EV_PROTO_BOARD_NAME_LEN && board_name[i]; i++)
        p[EV_INFO_OFF_BOARD + i] = (uint8_t)board_name[i];
    tx_begin(EV_CMD_INFO | EV_PROTO_REPLY_FLAG, seq, sizeof p);
    tx_bytes(p, sizeof p);
    tx_end();
}

static void do_infer(uint16_t seq)
{
    for (int i = 0; i < EV_NUM_LAYERS; i++) ev_prof_layer[i] = 0;
#ifdef EV_PROFILE_PARTS
    memset(ev_prof_parts, 0, sizeof ev_prof_parts);
    memset(ev_prof_switches, 0, sizeof ev_prof_switches);
#endif
    uint64_t t0 = board_counter();
    ev_model_invoke();
    last_total = board_counter() - t0;
    infer_count++;

    uint8_t p[EV_INFER_REPLY_LEN];
    put_u32(p + EV_INFER_REPLY_OFF_INFER_COUNT, infer_count);
    put_u64(p + EV_INFER_REPLY_OFF_COUNT, last_total);
    tx_begin(EV_CMD_INFER | EV_PROTO_REPLY_FLAG, seq, sizeof p + EV_OUTPUT_BYTES);
    tx_bytes(p, sizeof p);
    tx_bytes((const uint8_t *)ev_arena + EV_OUTPUT_OFFSET, EV_OUTPUT_BYTES);
    tx_end();
}

static void do_profile(uint16_t seq)
{
    if (infer_count == 0) {
        reply_error(EV_ERR_NO_INFERENCE, EV_CMD_PROFILE, seq, 0);
        return;
    }
    uint8_t p[EV_PROFILE_REPLY_LEN];
    put_u32(p + EV_PROFILE_REPLY_OFF_INFER_COUNT, infer_count);
    put_u16(p + EV_PROFILE_REPLY_OFF_NUM_LAYERS, EV_NUM_LAYERS);
    put_u64(p + EV_PROFILE_REPLY_OFF_TOTAL, last_total);
    tx_begin(EV_CMD_PROFILE | EV_PROTO_REPLY_FLAG, seq, sizeof p + 8u * EV_NUM_LAYERS);
    tx_bytes(p, sizeof p);
    for (int i = 0; i < EV_NUM_LAYERS; i++) {
        uint8_t v[8];
        put_u64(v, ev_prof_layer[i]);
        tx_bytes(v, sizeof v);
    }
    tx_end();
}

#ifdef EV_PROFILE_PARTS
/* Per layer the part sums in the counter's unit, then their error bound: one tick per switch. */
static void do_parts(uint16_t seq)
{
    if (infer_count == 0) {
        reply_error(EV_ERR_NO_INFERENCE, EV_CMD_PARTS, seq, 0);
        return;
    }
    uint8_t p[EV_PARTS_REPLY_LEN];
    put_u32(p + EV_PARTS_REPLY_OFF_INFER_COUNT, infer_count);
    put_u16(p + EV_PARTS_REPLY_OFF_NUM_LAYERS, EV_NUM_LAYERS);
    p[EV_PARTS_REPLY_OFF_NUM_PARTS] = EV_NUM_PARTS;
    tx_begin(EV_CMD_PARTS | EV_PROTO_REPLY_FLAG, seq, sizeof p + 8u * (EV_NUM_PARTS + 1u) * EV_NUM_LAYERS);
    tx_bytes(p, sizeof p);
    for (int i = 0; i < EV_NUM_LAYERS; i++) {
        uint8_t v[8];
        for (unsigned k = 0; k < EV_NUM_PARTS; k++) {
            put_u64(v, board_ticks_to_counter(ev_prof_parts[i][k]));
            tx_bytes(v, sizeof v);
        }
        put_u64(v, board_ticks_to_counter(ev_prof_switches[i]));
        tx_bytes(v, sizeof v);
    }
    tx_end();
}
#endif

/* ------------------------------------------------------------------ request frames */
#define UNKNOWN_CMD_MAX_LEN 64u

/* Read n bytes into dst (or discard if dst is NULL), folding them into *crc. 0 on timeout. */
static int rx_bytes(uint8_t *dst, uint32_t n, uint32_t *crc)
{
    for (uint32_t i = 0; i < n; i++) {
        int c = board_uart_getc(EV_PROTO_RX_TIMEOUT_MS);
        if (c < 0) return 0;
        uint8_t b = (uint8_t)c;
        *crc = crc_update(*crc, &b, 1);
        if (dst) dst[i] = b;
    }
    return 1;
}

static void serve(void)
{
    static int prev = -1;
    int c = board_uart_getc(BOARD_WAIT_FOREVER);     /* between frames: no deadline */
    if (c < 0) return;
    if (!(prev == EV_PROTO_MAGIC0 && c == EV_PROTO_MAGIC1)) {
        prev = c;
        return;
    }
    prev = -1;

    uint8_t h[EV_PROTO_HEADER_LEN];
    h[0] = EV_PROTO_MAGIC0;
    h[1] = EV_PROTO_MAGIC1;
    uint32_t crc = crc_update(0xFFFFFFFFu, h, 2);
    if (!rx_bytes(h + 2, sizeof h - 2, &crc)) return;   /* no seq yet to answer to */
    uint8_t version = h[EV_HDR_OFF_VERSION];
    uint8_t command = h[EV_HDR_OFF_COMMAND];
    uint16_t seq = get_u16(h + EV_HDR_OFF_SEQ);
    uint32_t len = get_u32(h + EV_HDR_OFF_LENGTH);

    uint32_t expect;
    uint8_t *dst = 0;
    switch (command) {
    case EV_CMD_INFO: case EV_CMD_PROFILE: case EV_CMD_RESET: expect = 0; break;
#ifdef EV_PROFILE_PARTS
    case EV_CMD_PARTS: expect = 0; break;
#endif
    case EV_CMD_INFER: expect = EV_INPUT_BYTES; dst = (uint8_t *)ev_arena + EV_INPUT_OFFSET; break;
    default: expect = len <= UNKNOWN_CMD_MAX_LEN ? len : UNKNOWN_CMD_MAX_LEN + 1u; break;
    }
    if (version != EV_PROTO_VERSION || len != expect) {
        reply_error(EV_ERR_BAD_HEADER, command, seq, version != EV_PROTO_VERSION ? EV_PROTO_VERSION : expect);
        return;
    }
    uint8_t rx_crc[EV_PROTO_CRC_LEN];
    uint32_t unused = 0;
    if (!rx_bytes(dst, len, &crc) || !rx_bytes(rx_crc, sizeof rx_crc, &unused)) {
        reply_error(EV_ERR_RX_TIMEOUT, command, seq, 0);
        return;
    }
    if (get_u32(rx_crc) != (crc ^ 0xFFFFFFFFu)) {
        reply_error(EV_ERR_BAD_CRC, command, seq, 0);
        return;
    }
    switch (command) {
    case EV_CMD_INFO: do_info(seq); break;
    case EV_CMD_INFER: do_infer(seq); break;
    case EV_CMD_PROFILE: do_profile(seq); break;
#ifdef EV_PROFILE_PARTS
    case EV_CMD_PARTS: do_parts(seq); break;
#endif
    case EV_CMD_RESET:
        tx_begin(EV_CMD_RESET | EV_PROTO_REPLY_FLAG, seq, 0);
        tx_end();
        board_uart_flush();
        board_reset();
    default: reply_error(EV_ERR_UNKNOWN_CMD, command, seq, command); break;
    }
}

int main(void)
{
    board_init();
    for (;;) serve();
}
