"""The HLS templates (hls/ev_*.h) against edgeviz.intmath, byte for byte, under plain g++.

One generated C++ program holds every case (random data, several shapes, odd sizes, several reuse
factors): a single g++ invocation, one run, then each template's outputs are compared with the numpy
reference.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess

import numpy as np
import pytest

from edgeviz import intmath as im

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")

RNG = np.random.default_rng(20261121)


def _lit(v: int) -> str:
    v = int(v)
    if v == -(1 << 63):
        return "(-9223372036854775807LL-1)"
    return f"{v}LL"


class Program:
    """Accumulates constant arrays and template calls; each case writes its output bytes in order."""

    def __init__(self):
        self.decls: list[str] = []
        self.body: list[str] = []
        self.cases: list[tuple[str, str, np.ndarray]] = []   # (template, label, expected int8)
        self._n = 0

    def const(self, ctype: str, data) -> str:
        self._n += 1
        name = f"c{self._n}"
        flat = np.asarray(data).reshape(-1)
        vals = ", ".join(_lit(v) for v in flat) if flat.size else "0"
        self.decls.append(f"static const {ctype} {name}[{max(flat.size, 1)}] = {{{vals}}};")
        return name

    def case(self, template: str, label: str, call: str, expected: np.ndarray, init=None):
        """call uses OUT for the output array; init: initial output contents (default zeros)."""
        self._n += 1
        out = f"o{self._n}"
        exp = np.asarray(expected, dtype=np.int8).reshape(-1)
        if init is None:
            self.decls.append(f"static ev_i8 {out}[{exp.size}];")
        else:
            vals = ", ".join(str(int(v)) for v in np.asarray(init).reshape(-1))
            self.decls.append(f"static ev_i8 {out}[{exp.size}] = {{{vals}}};")
        self.body.append(call.replace("OUT", out) + ";")
        self.body.append(f"for (int i = 0; i < {exp.size}; i++) putc((unsigned char)(signed char)(int){out}[i], stdout);")
        self.cases.append((template, label, exp))

    def source(self) -> str:
        return "\n".join(['#include <stdio.h>', '#include "ev_lib.h"', *self.decls,
                          "int main() {", *self.body, "return 0;", "}", ""])


def rand_i8(*shape, lo=-128, hi=127):
    return RNG.integers(lo, hi + 1, size=shape).astype(np.int8)


def rand_requant(n, in_count, *, spread=1.0):
    """Per-channel multipliers chosen so outputs cover the int8 range and sometimes clamp."""
    m, s = [], []
    for _ in range(n):
        real = RNG.uniform(0.3, 1.5) * spread * 127.0 / (in_count ** 0.5 * 128 * 60)
        mi, si = im.quantize_multiplier(real)
        m.append(mi)
        s.append(si)
    return np.array(m, np.int32), np.array(s, np.int8)


def gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def gelu_lut():
    return im.make_lut(gelu, RNG.uniform(0.02, 0.06), RNG.uniform(0.02, 0.05))


def bool_c(b):
    return "true" if b else "false"


# ------------------------------------------------------------------ cases

def add_linear_cases(p: Program):
    for rows, k, o, reuse, use_lut, row_bias in [
        (3, 5, 7, 1, False, False), (4, 16, 9, 7, True, False), (5, 13, 6, 78, False, True),
        (2, 8, 8, 3, True, True), (1, 33, 17, 1000, False, False), (6, 3, 1, 2, True, False),
        # row-serial schedule (LANES < IN, IN % LANES == 0) and its fallback (LANES not dividing IN)
        (3, 24, 10, 40, True, False), (2, 20, 7, 35, False, True), (2, 21, 5, 15, False, False),
        (2, 10, 9, 30, False, False),
    ]:
        x, w = rand_i8(rows, k), rand_i8(o, k)
        bias = RNG.integers(-5000, 5000, size=(rows, o) if row_bias else (o,)).astype(np.int32)
        m, s = rand_requant(o, k)
        lut = gelu_lut() if use_lut else None
        exp = im.linear(x, w, bias, m, s, lut)
        lut_arg = p.const("ev_i8", lut) if use_lut else "0"
        call = (f"ev_linear<{rows}, {k}, {o}, {reuse}, {bool_c(use_lut)}, {bool_c(row_bias)}>("
                f"{p.const('ev_i8', x)}, OUT, {p.const('ev_i8', w)}, {p.const('ev_i32', bias)}, "
                f"{p.const('ev_i32', m)}, {p.const('ev_i8', s)}, {lut_arg})")
        p.case("linear", f"{rows}x{k}->{o} r{reuse}", call, exp)
    # strided rows: read part of a wider buffer, write into a wider buffer whose other bytes survive
    rows, k, o, xs, ys = 4, 6, 5, 9, 7
    xbuf, w = rand_i8(rows, xs), rand_i8(o, k)
    bias = RNG.integers(-3000, 3000, size=o).astype(np.int32)
    m, s = rand_requant(o, k)
    init = rand_i8(rows, ys)
    exp = init.copy()
    exp[:, :o] = im.linear(xbuf[:, :k], w, bias, m, s)
    call = (f"ev_linear<{rows}, {k}, {o}, 4, false, false, {xs}, {ys}>({p.const('ev_i8', xbuf)}, OUT, "
            f"{p.const('ev_i8', w)}, {p.const('ev_i32', bias)}, {p.const('ev_i32', m)}, {p.const('ev_i8', s)}, 0)")
    p.case("linear", "strided", call, exp, init=init)


def add_layernorm_cases(p: Program):
    for rows, c, reuse, eps_real in [(3, 7, 1, 1e-5), (4, 16, 5, 1e-5), (2, 33, 33, 1e-5), (3, 64, 8, 1e-6),
                                     (2, 5, 2, 0.0)]:
        x = rand_i8(rows, c)
        x[-1] = x[-1, 0]                      # a constant row: variance 0, sigma from eps (or 1)
        s_in, s_out = RNG.uniform(0.02, 0.1), RNG.uniform(0.01, 0.05)
        g, b = im.layernorm_params(RNG.normal(1.0, 0.3, c), RNG.normal(0.0, 0.2, c), s_out)
        eps = im.layernorm_eps(eps_real, s_in, c)
        exp = im.layernorm(x, g, b, eps)
        call = (f"ev_layernorm<{rows}, {c}, {reuse}>({p.const('ev_i8', x)}, OUT, {p.const('ev_i32', g)}, "
                f"{p.const('ev_i64', b)}, {_lit(eps)})")
        p.case("layernorm", f"{rows}x{c} r{reuse}", call, exp)


def add_softmax_cases(p: Program):
    for rows, n, reuse in [(3, 9, 1), (4, 17, 4), (2, 64, 100), (2, 1, 1)]:
        x = rand_i8(rows, n)
        x[0, 0], x[-1, -1] = -128, 127
        lut = im.softmax_lut(RNG.uniform(0.03, 0.3))
        exp = im.softmax(x, lut)
        call = f"ev_softmax<{rows}, {n}, {reuse}>({p.const('ev_i8', x)}, OUT, {p.const('ev_u16', lut)})"
        p.case("softmax", f"{rows}x{n} r{reuse}", call, exp)


def add_elementwise_cases(p: Program):
    for n, reuse in [(37, 1), (41, 5), (64, 64), (3, 1000)]:
        x = rand_i8(n)
        x[0] = -128
        lut = gelu_lut()
        call = f"ev_lut<{n}, {reuse}>({p.const('ev_i8', x)}, OUT, {p.const('ev_i8', lut)})"
        p.case("gelu_lut", f"{n} r{reuse}", call, im.apply_lut(x, lut))
    for n, reuse, scales in [(41, 3, (0.05, 0.02, 0.04)), (16, 1, (0.01, 0.08, 0.1)), (9, 9, (0.3, 0.3, 0.0018))]:
        a, b = rand_i8(n), rand_i8(n)
        a[:2], b[:2] = [-128, 127], [-128, 127]
        ma, mb, sh = im.add_params(*scales)
        call = f"ev_add<{n}, {reuse}>({p.const('ev_i8', a)}, {p.const('ev_i8', b)}, OUT, {ma}, {mb}, {sh})"
        p.case("add", f"{n} r{reuse}", call, im.add(a, b, ma, mb, sh))
    for n, reuse, real in [(41, 3, 0.05 * 0.02 / 0.04), (16, 1, 0.3), (9, 9, 1e-4)]:
        a, b = rand_i8(n), rand_i8(n)
        a[:2], b[:2] = [-128, -128], [-128, 127]
        m, s = im.quantize_multiplier(real)
        call = f"ev_mul<{n}, {reuse}>({p.const('ev_i8', a)}, {p.const('ev_i8', b)}, OUT, {m}, {s})"
        p.case("mul", f"{n} r{reuse}", call, im.mul(a, b, m, s))


def add_attention_cases(p: Program):
    for n, heads, dh, reuse in [(5, 2, 4, 1), (7, 3, 5, 6), (9, 1, 8, 1000), (17, 2, 16, 32)]:
        qkv = rand_i8(n, 3 * heads * dh)
        m_qk, s_qk = im.quantize_multiplier(RNG.uniform(0.5, 2.0) * 127 / (dh ** 0.5 * 128 * 40))
        m_av, s_av = im.quantize_multiplier(RNG.uniform(0.5, 2.0) * 1.0 / 127)
        lut = im.softmax_lut(RNG.uniform(0.05, 0.2))
        exp = im.attention(qkv, heads, m_qk, s_qk, lut, m_av, s_av)
        call = (f"ev_attention<{n}, {heads}, {dh}, {reuse}>({p.const('ev_i8', qkv)}, OUT, {m_qk}, {s_qk}, "
                f"{p.const('ev_u16', lut)}, {m_av}, {s_av})")
        p.case("attention", f"N{n} H{heads} dh{dh} r{reuse}", call, exp)
        # the same rows one query at a time (the fused form, ev_attention_row)
        qname = p.const("ev_i8", qkv)
        lname = p.const("ev_u16", lut)
        e = heads * dh
        call = "; ".join(f"ev_attention_row<{n}, {heads}, {dh}, {reuse}>({qname}, {i}, OUT + {i * e}, {m_qk}, "
                         f"{s_qk}, {lname}, {m_av}, {s_av})" for i in range(n))
        p.case("attention_row", f"N{n} H{heads} dh{dh} r{reuse}", call, exp)
        # the qkv split: q rows on their own, K and V of all tokens in kv [N, KS] (KS = 2E, or wider with
        # junk columns after V that must never be read)
        for pad in (0, 3):
            kv = np.concatenate([qkv[:, e:], rand_i8(n, pad)], axis=1)
            kvname = p.const("ev_i8", kv)
            qrows = [p.const("ev_i8", qkv[i, :e]) for i in range(n)]
            call = "; ".join(f"ev_attention_kv_row<{n}, {heads}, {dh}, {reuse}, {2 * e + pad}>({qrows[i]}, {kvname}, "
                             f"OUT + {i * e}, {m_qk}, {s_qk}, {lname}, {m_av}, {s_av})" for i in range(n))
            p.case("attention_kv_row", f"N{n} H{heads} dh{dh} r{reuse} pad{pad}", call, exp)


def add_unfused_attention_cases(p: Program):
    """--no-fuse: scores -> softmax (in place) -> probs . V, each over the whole [H*N, N] matrix."""
    for n, heads, dh, reuse in [(5, 2, 4, 1), (7, 3, 5, 6), (9, 1, 8, 1000), (17, 2, 16, 32)]:
        qkv = rand_i8(n, 3 * heads * dh)
        m_qk, s_qk = im.quantize_multiplier(RNG.uniform(0.5, 2.0) * 127 / (dh ** 0.5 * 128 * 40))
        m_av, s_av = im.quantize_multiplier(RNG.uniform(0.5, 2.0) * 1.0 / 127)
        lut = im.softmax_lut(RNG.uniform(0.05, 0.2))
        t = qkv.reshape(n, 3, heads, dh).astype(np.int32)
        q, k = t[:, 0].transpose(1, 0, 2), t[:, 1].transpose(1, 0, 2)
        scores = im.requantize(q @ k.transpose(0, 2, 1), m_qk, s_qk).reshape(heads * n, n)
        qn = p.const("ev_i8", qkv)
        p.case("attn_scores", f"N{n} H{heads} dh{dh} r{reuse}",
               f"ev_attn_scores<{n}, {heads}, {dh}, {reuse}>({qn}, OUT, {m_qk}, {s_qk})", scores)
        exp = im.attention(qkv, heads, m_qk, s_qk, lut, m_av, s_av)
        ln = p.const("ev_u16", lut)
        # the three steps chained through one scores buffer, softmax in place (token overwriting)
        p.decls.append(f"static ev_i8 sc{p._n}[{heads * n * n}];")
        sc = f"sc{p._n}"
        call = (f"ev_attn_scores<{n}, {heads}, {dh}, {reuse}>({qn}, {sc}, {m_qk}, {s_qk}); "
                f"ev_softmax<{heads * n}, {n}, {reuse}>({sc}, {sc}, {ln}); "
                f"ev_attn_av<{n}, {heads}, {dh}, {reuse}>({sc}, {qn}, OUT, {m_av}, {s_av})")
        p.case("attn_av", f"N{n} H{heads} dh{dh} r{reuse} (scores, softmax, av)", call, exp)


def add_pool_cases(p: Program):
    for n, c, reuse in [(7, 9, 2), (5, 16, 1), (13, 3, 50)]:
        x = rand_i8(n, c)
        m, s = im.quantize_multiplier(1.0 / n * RNG.uniform(0.8, 1.3))
        call = f"ev_mean_tokens<{n}, {c}, {reuse}>({p.const('ev_i8', x)}, OUT, {m}, {s})"
        p.case("mean_tokens", f"{n}x{c} r{reuse}", call, im.mean_tokens(x, m, s))


def patch_rows(img, p):
    c, h, w = img.shape
    t = img.reshape(c, h // p, p, w // p, p).transpose(1, 3, 0, 2, 4)   # [py, px, c, ky, kx]
    return t.reshape((h // p) * (w // p), c * p * p)


def add_patch_cases(p: Program):
    for c, h, w, ps, o, reuse, row_bias, row0 in [
        (1, 8, 8, 4, 6, 3, False, 0), (3, 6, 9, 3, 5, 1, True, 1), (2, 10, 5, 5, 7, 2000, True, 0),
        (3, 8, 8, 4, 8, 32, True, 1),
    ]:
        img = rand_i8(c, h, w)
        wt = rand_i8(o, c * ps * ps)
        npatch = (h // ps) * (w // ps)
        bias = RNG.integers(-3000, 3000, size=(npatch, o) if row_bias else (o,)).astype(np.int32)
        m, s = rand_requant(o, c * ps * ps)
        emb = im.linear(patch_rows(img, ps), wt, bias, m, s)
        init = rand_i8(row0 + npatch, o)
        exp = init.copy()
        exp[row0:] = emb
        call = (f"ev_patch_embed<{c}, {h}, {w}, {ps}, {o}, {reuse}, {bool_c(row_bias)}, {row0}>("
                f"{p.const('ev_i8', img)}, OUT, {p.const('ev_i8', wt)}, {p.const('ev_i32', bias)}, "
                f"{p.const('ev_i32', m)}, {p.const('ev_i8', s)})")
        p.case("patch_embed", f"{c}x{h}x{w}/p{ps} r{reuse}", call, exp, init=init)


def build_program() -> Program:
    global RNG
    RNG = np.random.default_rng(20261121)
    p = Program()
    for add in (add_linear_cases, add_layernorm_cases, add_softmax_cases,
                add_elementwise_cases, add_attention_cases, add_unfused_attention_cases, add_pool_cases,
                add_patch_cases):
        add(p)
    return p


def run_program(p: Program, d, include_dirs=(), flags=()):
    from edgeviz.hls.csim import compile_sources

    src = d / "cases.cpp"
    src.write_text(p.source())
    exe = compile_sources([src], d / "cases", include_dirs=include_dirs, flags=list(flags))
    out = subprocess.run([str(exe)], capture_output=True, timeout=60, check=True).stdout
    got = np.frombuffer(out, dtype=np.int8)
    total = sum(e.size for _, _, e in p.cases)
    assert got.size == total, f"program wrote {got.size} bytes, expected {total}"
    res, pos = {}, 0
    for template, label, exp in p.cases:
        res.setdefault(template, []).append((label, got[pos:pos + exp.size], exp))
        pos += exp.size
    return res


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every case, compiled with the stdint types (EV_NO_AP_INT), warnings as errors."""
    return run_program(build_program(), tmp_path_factory.mktemp("hls_templates"),
                       flags=["-DEV_NO_AP_INT", "-Werror"])


@needs_gxx
@pytest.mark.parametrize("template", ["linear", "layernorm", "softmax", "gelu_lut", "add", "mul",
                                      "attention", "attention_row", "attention_kv_row", "attn_scores", "attn_av", "mean_tokens", "patch_embed"])
def test_template_matches_intmath(results, template):
    cases = results[template]
    assert cases
    for label, got, exp in cases:
        bad = np.flatnonzero(got != exp)
        assert bad.size == 0, (f"{template} {label}: {bad.size} of {exp.size} bytes differ, first at {bad[0]}: "
                               f"got {got[bad[0]]}, intmath {exp[bad[0]]}")


@needs_gxx
@pytest.mark.skipif(not os.environ.get("EDGEVIZ_AP_TYPES"),
                    reason="set EDGEVIZ_AP_TYPES to a folder holding ap_int.h to check the ap_int types")
def test_templates_with_ap_int_types(tmp_path):
    """Same cases with the arbitrary-precision ap_int types that Vitis HLS uses (about 20 s of g++)."""
    res = run_program(build_program(), tmp_path, include_dirs=[os.environ["EDGEVIZ_AP_TYPES"]],
                      flags=["-DEV_REQUIRE_AP_INT"])
    for template, cases in res.items():
        for label, got, exp in cases:
            assert np.array_equal(got, exp), f"{template} {label} differs with ap_int types"


@needs_gxx
def test_outputs_not_degenerate(results):
    """The random cases must exercise the int8 range, not all clamp or all zero."""
    for template in ("linear", "layernorm", "attention", "patch_embed"):
        vals = np.concatenate([e for _, _, e in results[template]])
        assert len(np.unique(vals)) > 20, template


@needs_gxx
def test_reuse_factor_does_not_change_results(tmp_path):
    """One linear (output-parallel, row-serial and fallback schedules) and one attention at many reuse
    factors give identical bytes."""
    from edgeviz.hls.csim import compile_sources

    p = Program()
    x, w = rand_i8(3, 10), rand_i8(6, 10)
    bias = RNG.integers(-2000, 2000, size=6).astype(np.int32)
    m, s = rand_requant(6, 10)
    names = [p.const("ev_i8", x), p.const("ev_i8", w), p.const("ev_i32", bias), p.const("ev_i32", m),
             p.const("ev_i8", s)]
    exp = im.linear(x, w, bias, m, s)
    lin_reuse = (1, 3, 12, 15, 30, 60)
    for reuse in lin_reuse:
        p.case("linear", f"r{reuse}", f"ev_linear<3, 10, 6, {reuse}>({names[0]}, OUT, {', '.join(names[1:])}, 0)", exp)
    qkv = rand_i8(6, 12)
    m_qk, s_qk = im.quantize_multiplier(0.004)
    m_av, s_av = im.quantize_multiplier(0.008)
    lut = im.softmax_lut(0.1)
    att = im.attention(qkv, 2, m_qk, s_qk, lut, m_av, s_av)
    qn, ln = p.const("ev_i8", qkv), p.const("ev_u16", lut)
    att_reuse = (1, 2, 5, 12, 100)
    for reuse in att_reuse:
        p.case("attention", f"r{reuse}", f"ev_attention<6, 2, 2, {reuse}>({qn}, OUT, {m_qk}, {s_qk}, {ln}, {m_av}, {s_av})", att)
    src = tmp_path / "reuse.cpp"
    src.write_text(p.source())
    exe = compile_sources([src], tmp_path / "reuse", flags=["-DEV_NO_AP_INT"])
    got = np.frombuffer(subprocess.run([str(exe)], capture_output=True, check=True).stdout, np.int8)
    n_lin = len(lin_reuse) * exp.size
    assert np.array_equal(got[:n_lin].reshape(len(lin_reuse), -1), np.stack([exp.reshape(-1)] * len(lin_reuse)))
    assert np.array_equal(got[n_lin:].reshape(len(att_reuse), -1), np.stack([att.reshape(-1)] * len(att_reuse)))


def test_missing_compiler_is_a_clear_error(monkeypatch, tmp_path):
    from edgeviz.errors import EdgevizError
    from edgeviz.hls import csim

    monkeypatch.setenv("CXX", "no-such-compiler-edgeviz")
    with pytest.raises(EdgevizError, match="no-such-compiler-edgeviz.*install g\\+\\+"):
        csim.find_gxx()
    (tmp_path / "project.json").write_text('{"input_bytes": 4, "output_bytes": 2}')
    with pytest.raises(EdgevizError, match="not on PATH"):
        csim.run_csim(tmp_path, np.zeros((1, 4), np.int8))
    with pytest.raises(EdgevizError, match="not an edgeviz HLS project"):
        csim.run_csim(tmp_path / "nowhere")


# ------------------------------------------------------------------ generated projects, end to end

def _quantized_vit(cfg, seed=0):
    import torch

    from edgeviz.frontend import graph_from_vit
    from edgeviz.model import ViT
    from edgeviz.quantize import quantize, quantize_image

    torch.manual_seed(seed)
    g = graph_from_vit(ViT(cfg).eval())
    calib = np.random.default_rng(seed).normal(size=(6, cfg.in_chans, cfg.img_size, cfg.img_size))
    quantize(g, calib)
    return g, np.stack([quantize_image(g, x) for x in calib])


@needs_gxx
@pytest.mark.parametrize("cfg_kw, board, reuse", [
    ({}, "zcu102", "auto"),
    (dict(pool="mean", rank_ratios=(0.5, 1.0), in_chans=3, img_size=24, patch=6, heads=4), "ultra96v2", {"linear": 512, "patch_embed": 256, "attention": 256, "layernorm": 16, "add": 8}),
])
def test_generated_project_csim_matches_run_int8(tmp_path, cfg_kw, board, reuse):
    """The generated HLS project, compiled with g++, equals edgeviz.quantize.run_int8 byte for byte."""
    from edgeviz.hls import csim
    from edgeviz.project import hls_project_from_graph
    from edgeviz.model import ViTConfig
    from edgeviz.quantize import run_int8

    g, xs = _quantized_vit(ViTConfig(**cfg_kw))
    proj = hls_project_from_graph(g, tmp_path / "prj", board, reuse=reuse, tb_inputs=xs[:4])
    assert proj.estimate.fits
    for f in ("ev_top.cpp", "ev_top.h", "ev_weights.h", "ev_tb_config.h", "run_hls.tcl", "project.json",
              "estimate.txt", "hls/ev_lib.h", "hls/testbench/ev_tb_main.cpp", "tb_data/reference.bin"):
        assert (proj.path / f).is_file(), f
    tcl = (proj.path / "run_hls.tcl").read_text()
    assert proj.board.part in tcl and "csim_design" in tcl and "csynth_design" in tcl
    assert "not Vitis HLS / Vivado" in (proj.path / "estimate.txt").read_text()
    vectors, mismatches = csim.check_reference(proj.path)
    assert (vectors, mismatches) == (4, 0)
    out = csim.run_csim(proj.path, xs[4:])          # inputs the testbench data did not hold
    ref = np.stack([run_int8(g, x).reshape(-1) for x in xs[4:]])
    assert np.array_equal(out, ref)
    assert len(np.unique(ref)) > 3


def test_generate_over_budget_is_a_user_error(tmp_path):
    from edgeviz.errors import EdgevizError
    from edgeviz.project import hls_project_from_graph
    from edgeviz.model import ViTConfig

    g, _ = _quantized_vit(ViTConfig())
    with pytest.raises(EdgevizError, match=r"DSP \d+ used > 220 available"):
        hls_project_from_graph(g, tmp_path / "prj", "pynq-z2", reuse=1)


def test_generator_banks_and_unsupported_schedules(tmp_path):
    """Planner buffers become ping-pong banks counted in whole BRAM18K; unfused schedules generate."""
    from edgeviz.backends.fpga import fpga_switches
    from edgeviz.hls.generate import assign_banks, generate
    from edgeviz.model import ViTConfig
    from edgeviz.passes import Switches, schedule
    from edgeviz.planner import plan

    g, _ = _quantized_vit(ViTConfig())
    s = schedule(g, fpga_switches())
    p = plan(s)
    banks, where = assign_banks(p)
    tensors = [t for b in p.buffers if not b.name.startswith("scratch@") for t in b.tensors]
    assert set(where) == set(tensors)
    assert len(banks) < len([b for b in p.buffers if not b.name.startswith("scratch@")])   # sharing happens
    for k in banks:
        assert k.size == k.need         # declared at its largest buffer; blocks are counted rounded
        if k.partition == 1:
            assert k.bram18k == (0 if k.size * 8 <= 1024 else math.ceil(k.size / 2048))
        for a in k.buffers:
            for b in k.buffers:
                assert a is b or a.last < b.first or b.last < a.first
    # operator integration off has templates now (ev_attn_scores / ev_softmax / ev_attn_av)
    s2 = schedule(g, fpga_switches(Switches(fuse=False)))
    proj = generate(s2, plan(s2), tmp_path / "prj", "zcu102", reuse=64)
    assert "ev_attn_scores<" in (proj.path / "ev_top.cpp").read_text()
