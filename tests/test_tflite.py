"""int8 .tflite files (made by TensorFlow's converter from Keras ViTs, tests/fixtures/tflite) through
edgeviz: the reader verifies the file, the numpy reference (edgeviz.tflmath) equals LiteRT's builtin
reference kernels, and the generated C on the host and the firmware under QEMU equal both."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import need

from edgeviz.errors import EdgevizError
from edgeviz.project import compile_graph
from edgeviz.quantize import run_int8
from edgeviz.tflite import litert
from edgeviz.tflite.flatbuffer import read_tflite
from edgeviz.tflite.importer import import_tflite

FIXTURES = Path(__file__).parent / "fixtures" / "tflite"
MODELS = sorted(p.stem for p in FIXTURES.glob("*.tflite"))


def int8_inputs(g, n, seed=0):
    return np.random.default_rng(seed).integers(-128, 128, (n,) + g.tensors[g.inputs[0]].shape).astype(np.int8)


def test_there_are_fixtures():
    assert len(MODELS) >= 3


@pytest.mark.parametrize("name", MODELS)
def test_numpy_reference_equals_litert_builtin_ref(name):
    g = import_tflite(FIXTURES / f"{name}.tflite")
    xs = int8_inputs(g, 6, seed=1)
    want = litert.run_graph((FIXTURES / f"{name}.tflite").read_bytes(), g, xs)
    got = np.stack([run_int8(g, x).reshape(-1) for x in xs])
    assert np.array_equal(got, want)


@pytest.mark.parametrize("name", MODELS)
def test_host_c_equals_litert(name, tmp_path):
    need("gcc")
    from edgeviz.backends.c_toolchain import HostModel, build_host_library, write_model_sources
    g = import_tflite(FIXTURES / f"{name}.tflite")
    c = compile_graph(g, None, "stm32f746")
    write_model_sources(c.model_c, c.model_h, tmp_path / "m")
    host = HostModel(build_host_library(tmp_path / "m", tmp_path / "m.so"), c.model_h)
    xs = int8_inputs(g, 8, seed=2)
    xs[0] = -128                               # the ends of the input range too
    xs[1] = 127
    want = litert.run_graph((FIXTURES / f"{name}.tflite").read_bytes(), g, xs)
    got = np.stack([host.run(x) for x in xs])
    assert np.array_equal(got, want.reshape(got.shape))


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["vit_sigmoid_gelu", "vit_gelu"])
def test_cli_build_and_validate_on_the_emulator_equal_litert(name, tmp_path, capsys):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    from edgeviz.cli import main
    out = tmp_path / "b"
    assert main(["build", str(FIXTURES / f"{name}.tflite"), "--target", "stm32f746", "-o", str(out)]) == 0
    s = json.loads((out / "build.json").read_text())
    assert s["oracle"]["differing_bytes"] == 0 and s["elf_arena_bytes"] == s["arena_bytes"]
    assert (out / "model.tflite").read_bytes() == (FIXTURES / f"{name}.tflite").read_bytes()
    capsys.readouterr()
    assert main(["validate", str(out), "--port", "emulator", "-n", "5", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["bit_exact"] == 5 and r["oracle_differing_bytes"] == 0 and r["oracle"] == litert.ORACLE
    assert "random inputs" in r["inputs"]


def test_build_takes_float_inputs_with_the_files_quantisation(tmp_path):
    """An .npz of float images, channels last as TensorFlow users keep them, is quantised with the
    file's own scale and zero point: the int8 bytes LiteRT would be given."""
    from edgeviz.quantize import quantize_image
    g = import_tflite(FIXTURES / "vit_relu.tflite")
    t = g.tensors[g.inputs[0]]
    q = int8_inputs(g, 1)[0]
    x_hwc = (q.astype(np.float64) - t.zero_point) * t.scale
    assert np.array_equal(quantize_image(g, x_hwc[0].transpose(2, 0, 1)), q)


# ------------------------------------------------------------------ the file is checked first
def test_truncated_and_foreign_files_are_one_line_errors(tmp_path):
    data = (FIXTURES / "vit_relu.tflite").read_bytes()
    for cut in (0, 7, 100, len(data) // 2, len(data) - 1):
        with pytest.raises(EdgevizError, match="not a valid .tflite file"):
            read_tflite(data[:cut], "m.tflite")
    with pytest.raises(EdgevizError, match="TFL3"):
        read_tflite(b"\x00" * 64, "m.tflite")


def test_mutated_files_never_crash_the_reader():
    """Random byte flips: the file reads, or the reader says what is wrong; nothing else escapes."""
    data = bytearray((FIXTURES / "vit_gelu.tflite").read_bytes())
    rng = np.random.default_rng(0)
    outcomes = {"read": 0, "refused": 0}
    for _ in range(300):
        m = bytearray(data)
        for pos in rng.integers(0, len(m), rng.integers(1, 8)):
            m[pos] = int(rng.integers(0, 256))
        try:
            read_tflite(bytes(m), "m.tflite")
            outcomes["read"] += 1
        except EdgevizError as e:
            assert "\n" not in str(e)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and outcomes["read"] > 0


def test_an_unsupported_op_is_named(tmp_path):
    """The first CONV_2D's opcode turned into CUMSUM (code 128): refused, naming the operator."""
    from ai_edge_litert import schema_py_generated as schema
    import flatbuffers
    m = schema.ModelT.InitFromPackedBuf((FIXTURES / "vit_relu.tflite").read_bytes(), 0)
    m.operatorCodes[m.subgraphs[0].operators[0].opcodeIndex].builtinCode = 128
    m.operatorCodes[m.subgraphs[0].operators[0].opcodeIndex].deprecatedBuiltinCode = 127
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    f = tmp_path / "m.tflite"
    f.write_bytes(bytes(b.Output()))
    with pytest.raises(EdgevizError, match=r"operator 0 \(BUILTIN_128.*is not supported; edgeviz reads"):
        import_tflite(f)


def test_cli_refuses_a_bad_tflite_in_one_line(tmp_path, capsys):
    from edgeviz.cli import main
    f = tmp_path / "m.tflite"
    f.write_bytes((FIXTURES / "vit_relu.tflite").read_bytes()[:5000])
    assert main(["build", str(f), "--target", "stm32f746", "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a valid .tflite file" in err and not (tmp_path / "b").exists()


# ------------------------------------------------------------------ the kernels' integer tricks
def test_integer_requantisation_equals_the_double_product_near_every_tie(tmp_path):
    """ev_tfl_fc_s8 computes round((double)acc * scale) in integers. With zero inputs its
    accumulators are its biases: feed it accumulators on both sides of every rounding tie, at
    random scales and at powers of two (exact ties), and compare with the double formula."""
    import ctypes
    import shutil
    import subprocess
    from edgeviz import tflmath
    gcc = shutil.which("gcc") or pytest.skip("gcc is not installed")
    kdir = Path(__file__).resolve().parents[1] / "firmware" / "kernels"
    so = tmp_path / "k.so"
    subprocess.run([gcc, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared", "-I", str(kdir),
                    *map(str, sorted(kdir.glob("*.c"))), "-o", str(so)], check=True)
    fc = ctypes.CDLL(str(so)).ev_tfl_fc_s8
    rng = np.random.default_rng(0)
    n = 6000
    scales = np.concatenate([10 ** rng.uniform(-7, -0.01, n - 64), 2.0 ** -rng.integers(1, 40, 64)])
    k = rng.integers(-120, 120, n)
    acc = np.round((k + 0.5) / scales) + rng.integers(-2, 3, n)
    acc[:2000] = rng.integers(-2 ** 31, 2 ** 31, 2000) >> rng.integers(0, 31, 2000)     # anywhere at all
    acc = np.clip(acc, -2 ** 31, 2 ** 31 - 1).astype(np.int32)
    m, sh = tflmath.double_parts(scales)
    zeros = np.zeros(n, np.int8)
    out = np.zeros(n, np.int8)
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    fc(ptr(zeros[:1]), 1, 1, n, ptr(zeros), ptr(acc), ptr(m), ptr(sh), 0, -128, 127, ptr(out))
    want = tflmath.fully_connected(np.zeros((1, 1), np.int8), np.zeros((n, 1), np.int8), acc, 0, 0, scales, -128, 127)
    assert np.array_equal(out, want.reshape(-1))


@pytest.mark.parametrize("name", MODELS)
def test_hls_csim_equals_the_reference(name, tmp_path):
    """The FPGA build of the same file: C simulation of the HLS project against edgeviz's numpy
    reference, which the tests above hold equal to LiteRT."""
    need("g++")
    from edgeviz.project import build
    s = build(FIXTURES / f"{name}.tflite", "zcu102", tmp_path / "hls", csim=True)
    assert s["csim"]["vectors"] > 0 and s["csim"]["mismatching_bytes"] == 0


def test_litert_runs_in_a_child_whose_death_is_one_line(tmp_path):
    """LiteRT is not hardened against damaged files: it runs in a child process, and a child that
    dies (here: asked for a function it does not have) is a one-line error, not the end of edgeviz."""
    def missing():
        pass
    with pytest.raises(EdgevizError, match="LiteRT crashed on this .tflite file"):
        litert._isolated(missing)
    xs = np.zeros((1, 16, 16, 3), np.int8)
    assert litert.run((FIXTURES / "ops_mix.tflite").read_bytes(), xs).shape == (1, 10)


def test_widened_weights_only_for_the_cores_that_read_them():
    """The DSP kernels (M4, M7, M33) read an imported FULLY_CONNECTED / CONV_2D's weights pre-widened
    from flash; the M0+, M3 and M55 kernels do not, so their builds leave that copy out (it doubled
    those weights: vit_mha_cls_hswish was refused by the stm32f103's 128 KB of flash for it)."""
    from edgeviz.lower import lower
    g = import_tflite(FIXTURES / "vit_mha_cls_hswish.tflite")
    dsp, m3, m55 = (lower(g, t) for t in ("stm32f746", "stm32f103", "alif-e3"))
    assert dsp.schedule.switches.widen_weights and not m3.schedule.switches.widen_weights
    assert not m55.schedule.switches.widen_weights
    widened = [n for n in dsp.schedule.graph.nodes if n.attrs.get("widened")]
    assert widened and not any(n.attrs.get("widened") for n in m3.schedule.graph.nodes)
    assert m3.weights_bytes < dsp.weights_bytes
    assert not m3.backend.fit(m3), m3.backend.fit(m3)          # it fits the F103's flash now
    c = compile_graph(g, int8_inputs(g, 2).astype(np.float32), "stm32f103")
    assert ".wide" not in c.model_c and "NULL" in c.model_c


@pytest.mark.qemu
@pytest.mark.parametrize("target", ["rp2040", "stm32f103", "nrf52840", "stm32u585", "alif-e3"])
@pytest.mark.parametrize("name", ["ops_mix", "ln_odd"])
def test_every_core_runs_a_tflite_bit_exact(target, name, tmp_path):
    """The tfl kernels on the M0+ (no DSP, no CLZ), M3, M4, M33 and M55 machines: equal to LiteRT
    (ln_odd: the converter's LayerNorm over 35 channels, an odd tail in every kernel's loops)."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    from edgeviz.project import build
    from edgeviz.runner import api
    g = import_tflite(FIXTURES / f"{name}.tflite")
    assert name != "ln_odd" or [n.attrs["rows_c"] for n in g.nodes if n.op == "tfl_layernorm"] == [(16, 35)] * 2
    build(FIXTURES / f"{name}.tflite", target, tmp_path / "b")
    xs = int8_inputs(g, 3, seed=4)
    xs[0], xs[1] = -128, 127
    want = litert.run_graph((FIXTURES / f"{name}.tflite").read_bytes(), g, xs)
    r = api.validate(tmp_path / "b", "emulator", xs, want)
    assert r["bit_exact"] == 3, r["mismatched"]


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["vit_keras_mha", "vit_sigmoid_gelu", "vit_mha_cls_hswish", "vit_relu", "ops_mix2",
                                  "ln_odd"])
def test_m7_firmware_equals_litert_at_the_range_ends(name, tmp_path):
    """The M7's assembly paths (the fused LayerNorm's row routine, the tiles) on QEMU against LiteRT
    with inputs at -128 and 127 everywhere as well as random ones."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    from edgeviz.project import build
    from edgeviz.runner import api
    g = import_tflite(FIXTURES / f"{name}.tflite")
    build(FIXTURES / f"{name}.tflite", "stm32f746", tmp_path / "b")
    xs = int8_inputs(g, 4, seed=7)
    xs[0], xs[1] = -128, 127
    want = litert.run_graph((FIXTURES / f"{name}.tflite").read_bytes(), g, xs)
    r = api.validate(tmp_path / "b", "emulator", xs, want)
    assert r["bit_exact"] == 4, r["mismatched"]


@pytest.mark.qemu
@pytest.mark.parametrize("target", ["stm32f746", "alif-e3"])
def test_tfl_kernels_at_awkward_sizes_on_the_m7_and_m55(target, tmp_path):
    """The M7's blocked SMLAD paths and the M55's Helium dot products (tail-predicated VMLADAVA) at
    sizes the fixtures do not reach: 70 rows (a block and a partial block of quads, then two single
    rows), 22 inputs (a tail of 2 on the M7, of 6 lanes on the M55), 19 channels (an odd last pair),
    a BATCH_MATMUL whose B is read transposed, zero points everywhere, then a FULLY_CONNECTED with a
    fused clamp on the fixed-point path; firmware equal to the numpy reference."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    from edgeviz import tflmath
    from edgeviz.backends.mcu import write_project
    from edgeviz.ir import Graph, Node
    from edgeviz.ops.tfl_matmul import FULLY_CONNECTED
    from edgeviz.runner import api
    rng = np.random.default_rng(5)
    g = Graph(prequantized=True)
    for name, shape, zp in (("x", (1, 70, 22), 3), ("h", (1, 70, 19), -7), ("s", (1, 70, 70), 11)):
        t = g.add_tensor(name, shape)
        t.scale, t.zero_point = 0.05, zp
    w = rng.integers(-127, 128, (19, 22)).astype(np.int8)
    g.nodes.append(Node("tfl_fully_connected", "fc", ["x"], ["h"], {}, {
        "w": w, "bias": rng.integers(-3000, 3000, 19).astype(np.int32),
        "scale": rng.uniform(1e-4, 3e-3, 19), "y_zp": -7, "lo": -128, "hi": 127}))
    m, sh = tflmath.quantize_multiplier(0.002)
    # s = h @ B with B = h's bytes read as [19, 70] (p.v's layout: B's depth strided by 70, so the
    # kernel copies B transposed into scratch first)
    g.nodes.append(Node("tfl_batch_matmul", "bmm", ["h", "h"], ["s"], {
        "a_shape": (1, 70, 19), "b_shape": (1, 19, 70), "adj_x": False, "adj_y": False, "out_shape": (1, 70, 70),
        "batch_dims": [1, 1, 1, 1], "strides": [[0, 0, 0, 0, 19, 1], [0, 0, 0, 0, 1, 70]], "rows": 70, "cols": 70,
        "depth": 19}, {"a_zp": -7, "b_zp": -7, "y_zp": 11, "m": m, "shift": sh}))
    # a FULLY_CONNECTED with a narrower clamp (a fused ReLU) on the fixed-point path
    # (tflmath.fc_fixed_point): s's bytes as 175 rows of 28 inputs (row quads in blocks, 3 rows
    # left), 13 channels, ev__t42r_lut on the M7
    t = g.add_tensor("z", (1, 175, 13))
    t.scale, t.zero_point = 0.05, -20
    fc2 = Node("tfl_fully_connected", "fc2", ["s"], ["z"], {}, {
        "w": rng.integers(-127, 128, (13, 28)).astype(np.int8), "bias": rng.integers(-3000, 3000, 13).astype(np.int32),
        "scale": rng.uniform(1e-3, 8e-3, 13), "y_zp": -20, "lo": -20, "hi": 100})
    g.nodes.append(fc2)
    assert fc2.qattrs["lo"] > -128 and FULLY_CONNECTED.fixed_point(fc2) is not None
    g.inputs, g.outputs = ["x"], ["z"]
    c = compile_graph(g, None, target)
    write_project(c, tmp_path / "b", "awkward", np.zeros((2, 1, 70, 22)), firmware=True)
    xs = rng.integers(-128, 128, (3, 1, 70, 22)).astype(np.int8)
    want = np.stack([run_int8(g, x).reshape(-1) for x in xs])
    r = api.validate(tmp_path / "b", "emulator", xs, want)
    assert r["bit_exact"] == 3, r["mismatched"]


@pytest.mark.qemu
def test_tfl_tile_routines_at_sizes_the_fixtures_do_not_reach(tmp_path):
    """The M7's one-call tile routines (ev_tfl__run42f / run42s, ev_tfl_m7.S) where the fixtures do
    not take them: a FULLY_CONNECTED of 80 inputs (kq = 20 > 16: the MAC chain repeated, with its
    end test) over 44 rows (several blocks of quads) and 32 channels, then a BATCH_MATMUL whose B is
    read depth-major with its columns contiguous (p.v's layout: widened straight from B, its 22
    column pairs in chunks of 4, the last of 2); firmware equal to the numpy reference."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    from edgeviz import tflmath
    from edgeviz.backends.mcu import write_project
    from edgeviz.ir import Graph, Node
    from edgeviz.ops.tfl_matmul import FULLY_CONNECTED
    from edgeviz.runner import api
    rng = np.random.default_rng(11)
    g = Graph(prequantized=True)
    for name, shape, zp in (("x", (1, 44, 80), -5), ("h", (1, 44, 32), 9), ("s", (1, 44, 44), -13)):
        t = g.add_tensor(name, shape)
        t.scale, t.zero_point = 0.05, zp
    fc = Node("tfl_fully_connected", "fc", ["x"], ["h"], {}, {
        "w": rng.integers(-127, 128, (32, 80)).astype(np.int8), "bias": rng.integers(-3000, 3000, 32).astype(np.int32),
        "scale": rng.uniform(2e-4, 2e-3, 32), "y_zp": 9, "lo": -128, "hi": 127})
    g.nodes.append(fc)
    assert FULLY_CONNECTED.fixed_point(fc) is not None
    m, sh = tflmath.quantize_multiplier(0.003)
    # s = h @ B with B = h's bytes as [32, 44]: depth strided by 44, the columns contiguous
    g.nodes.append(Node("tfl_batch_matmul", "bmm", ["h", "h"], ["s"], {
        "a_shape": (1, 44, 32), "b_shape": (1, 32, 44), "adj_x": False, "adj_y": False, "out_shape": (1, 44, 44),
        "batch_dims": [1, 1, 1, 1], "strides": [[0, 0, 0, 0, 32, 1], [0, 0, 0, 0, 1, 44]], "rows": 44, "cols": 44,
        "depth": 32}, {"a_zp": 9, "b_zp": 9, "y_zp": -13, "m": m, "shift": sh}))
    g.inputs, g.outputs = ["x"], ["s"]
    c = compile_graph(g, None, "stm32f746")
    write_project(c, tmp_path / "b", "tiles", np.zeros((2, 1, 44, 80)), firmware=True)
    xs = rng.integers(-128, 128, (3, 1, 44, 80)).astype(np.int8)
    xs[0] = -128
    want = np.stack([run_int8(g, x).reshape(-1) for x in xs])
    r = api.validate(tmp_path / "b", "emulator", xs, want)
    assert r["bit_exact"] == 3, r["mismatched"]


# ------------------------------------------------------------------ the fused LayerNorm
def test_converter_layernorms_are_fused_into_one_row_op():
    """Every LayerNorm of the ViT fixtures becomes one tfl_layernorm node whose reference replays the
    ops it replaced (so the numpy, C and HLS comparisons with LiteRT above cover it)."""
    want = {"vit_relu": 4, "vit_sigmoid_gelu": 4, "vit_gelu": 5, "vit_keras_mha": 4, "vit_float_io": 4}
    for name, n in want.items():
        g = import_tflite(FIXTURES / f"{name}.tflite")
        fused = [k for k in g.nodes if k.op == "tfl_layernorm"]
        assert len(fused) == n and all(len(k.qattrs["nodes"]) >= 11 for k in fused)


def test_one_rounding_equals_tflites_two():
    """The C kernels' MultiplyByQuantizedMultiplier: floor((x' m + k) / 2^(31 + e)), k = 2^30 + 2^(30+e)
    less 2^31 where x' m < 0 (ev_tfl__mq), and its SMMLAR form (ev_tfl__sm), against tflmath's doubly
    rounded reference over random inputs, multipliers and shifts, the ties included."""
    from edgeviz import tflmath
    rng = np.random.default_rng(0)
    for _ in range(200):
        m = int(rng.integers(1 << 30, 1 << 31))
        shift = int(rng.integers(-20, 3))
        left, e = max(shift, 0), max(-shift, 0)
        lim = 1 << (29 - left)
        x = np.concatenate([rng.integers(-lim, lim, 500), np.arange(-40, 40)]).astype(np.int64)
        want = tflmath.multiply_by_quantized_multiplier(x, m, shift)
        p = (x << left) * m
        k = (1 << 30) + ((1 << (30 + e)) if e else 0) - np.where((p < 0) & (e > 0), 1 << 31, 0)
        assert np.array_equal((p + k) >> (31 + e), want)
        a = ((1 << (e - 1)) if e else 0) + np.where((x < 0) & (e > 0), -1, 0)
        smmlar = ((x << (left + 1)) * m + a * (1 << 32) + (1 << 31)) >> 32
        assert np.array_equal(smmlar >> e, want)


def test_fixed_point_fc_requantisation_equals_the_double_product_where_it_is_used():
    """tflmath.fc_fixed_point (ev_tfl_fcq_s8's requantisation, SMMLA + ASR + SSAT on the M7): where it
    returns parameters, they give the reference's int8 output for every accumulator in the channel's
    reachable range (checked here by enumerating them all), fused clamps and zero points included;
    a scale it cannot represent gets None (the exact kernel)."""
    from edgeviz import tflmath
    rng = np.random.default_rng(3)
    used = 0
    for trial in range(40):
        k = int(rng.integers(1, 5))
        o = 3
        scales = 10 ** rng.uniform(-5, -0.7, o)
        if trial % 10 == 0:
            scales[0] = 2.0 ** -int(rng.integers(3, 20))          # exact ties
        bias = rng.integers(-20000, 20000, o)
        y_zp = int(rng.integers(-128, 128))
        lo, hi = (-128, 127) if trial % 3 else (max(-128, y_zp), 127)
        fp = tflmath.fc_fixed_point(scales, bias, k, y_zp, lo, hi)
        if fp is None:
            continue
        used += 1
        for c in range(o):
            acc = np.arange(bias[c] - k * 16384, bias[c] + k * 16384 + 1, dtype=np.int64)
            want = np.clip(tflmath.round_half_away(acc * scales[c]) + y_zp, lo, hi)
            m, r, t = (int(v) for v in fp[c])
            assert np.array_equal(np.clip((acc * m + (r << 32)) >> (32 + t), lo, hi), want)
    assert used >= 30
    assert tflmath.fc_fixed_point([0.5], [0], 4, 0, -128, 127) is None


# ------------------------------------------------------------------ import-time fusions
def test_unary_chains_and_copies_fold_and_keep_every_byte(tmp_path):
    """vit_sigmoid_gelu's x * sigmoid(1.702 x) becomes one table, and the ViTs' q / k / v slices and
    head transposes are read in place by BATCH_MATMUL (no copy feeds one). On a synthetic graph a
    BATCH_MATMUL reading a transposed copy with a broadcast batch, and a copy of a copy, give the
    same reference bytes after the passes as before (random inputs, the range ends included), and
    host C equals that reference."""
    import copy
    need("gcc")
    from edgeviz.backends.c_toolchain import HostModel, build_host_library, write_model_sources
    from edgeviz import tflmath
    from edgeviz.ir import Graph, Node
    from edgeviz.ops.tfl_copy import fuse_copies
    from edgeviz.ops.tfl_matmul import fold_copies_into_bmm
    g = import_tflite(FIXTURES / "vit_sigmoid_gelu.tflite")
    assert not any(k.op == "tfl_binary" and k.attrs["kind"] == "mul" for k in g.nodes)
    assert any("LOGISTIC+MUL" in k.attrs.get("function", "") for k in g.nodes if k.op == "tfl_table")
    for name in ("vit_sigmoid_gelu", "vit_keras_mha", "vit_relu"):
        g = import_tflite(FIXTURES / f"{name}.tflite")
        made = {t: k for k in g.nodes for t in k.outputs}
        assert not any(made.get(t) is not None and made[t].op == "tfl_copy"
                       for k in g.nodes if k.op == "tfl_batch_matmul" for t in k.inputs)
    # x [1, 2, 6, 5] -> slice channels 1..4 -> transpose to [1, 2, 4, 6] -> bmm with h [1, 6, 3]
    # broadcast over the batch of 2 (b = the copy, read with depth 6 strided)
    g = Graph(prequantized=True)
    for name, shape, zp in (("x", (1, 2, 6, 5), 3), ("s", (1, 2, 6, 4), 3), ("t", (1, 2, 4, 6), 3),
                            ("h", (1, 6, 3), -5), ("y", (1, 2, 4, 3), 7)):
        t = g.add_tensor(name, shape)
        t.scale, t.zero_point = 0.05, zp
    piece = lambda dims, si, off: {"input": 0, "dims": dims, "in_strides": si, "in_offset": off,  # noqa: E731
                                   "out_strides": list(np.cumprod([1] + dims[:0:-1])[::-1]), "out_offset": 0}
    g.nodes.append(Node("tfl_copy", "strided_slice_1", ["x"], ["s"], {"out_shape": (1, 2, 6, 4),
                        "pieces": [piece([2, 6, 4], [30, 5, 1], 1)]}, {}))
    g.nodes.append(Node("tfl_copy", "transpose_2", ["s"], ["t"], {"out_shape": (1, 2, 4, 6),
                        "pieces": [piece([2, 4, 6], [24, 1, 4], 0)]}, {}))
    m, sh = tflmath.quantize_multiplier(0.004)
    g.nodes.append(Node("tfl_batch_matmul", "batch_matmul_3", ["t", "h"], ["y"], {
        "a_shape": (1, 2, 4, 6), "b_shape": (1, 6, 3), "adj_x": False, "adj_y": False, "out_shape": (1, 2, 4, 3),
        "batch_dims": [1, 1, 1, 2], "strides": [[0, 0, 0, 24, 6, 1], [0, 0, 0, 0, 1, 3]], "rows": 4, "cols": 3,
        "depth": 6}, {"a_zp": 3, "b_zp": -5, "y_zp": 7, "m": m, "shift": sh}))
    g.nodes.insert(0, Node("tfl_copy", "h_0", ["x"], ["h"], {"out_shape": (1, 6, 3),
                           "pieces": [piece([6, 3], [5, 1], 0)]}, {}))
    g.inputs, g.outputs = ["x"], ["y"]
    xs = np.random.default_rng(6).integers(-128, 128, (6, 1, 2, 6, 5)).astype(np.int8)
    xs[0], xs[1] = -128, 127
    want = np.stack([run_int8(g, x).reshape(-1) for x in xs])
    fused = copy.deepcopy(g)
    assert fuse_copies(fused) == 1 and fold_copies_into_bmm(fused) >= 1
    assert [k.op for k in fused.nodes].count("tfl_copy") <= 1
    got = np.stack([run_int8(fused, x).reshape(-1) for x in xs])
    assert np.array_equal(got, want)
    c = compile_graph(fused, None, "stm32f746")
    write_model_sources(c.model_c, c.model_h, tmp_path / "m")
    host = HostModel(build_host_library(tmp_path / "m", tmp_path / "m.so"), c.model_h)
    assert np.array_equal(np.stack([host.run(x).reshape(-1) for x in xs]), want)


def test_a_packed_fully_connected_splits_per_reader_and_keeps_every_byte(tmp_path):
    """vit_sigmoid_gelu's packed qkv Dense becomes one FULLY_CONNECTED for q and k and one for v, so q
    and k die at q.k and the arena peak is no longer p.v with [N, 3E] live (5,304 -> 4,080 B, the live-set
    lower bound). On a synthetic graph (a FULLY_CONNECTED read as two BATCH_MATMUL operands and by a
    copy) the reference bytes and host C are the same after the split; channel ranges that overlap,
    or a reader that walks the tensor whole, leave it alone."""
    import copy
    need("gcc")
    from edgeviz.backends.c_toolchain import HostModel, build_host_library, write_model_sources
    from edgeviz import tflmath
    from edgeviz.ir import Graph, Node
    from edgeviz.ops.tfl_matmul import split_fc_by_readers
    g = import_tflite(FIXTURES / "vit_sigmoid_gelu.tflite")
    assert [k.name for k in g.nodes if k.name.startswith("fully_connected_17.c")] == [
        "fully_connected_17.c0", "fully_connected_17.c96"]          # q and k (both read by q.k), v
    c = compile_graph(g, None, "stm32f746")
    assert c.plan.peak == c.plan.lower_bound == 4080

    def graph(read_b_cols):
        g = Graph(prequantized=True)
        for name, shape in (("x", (5, 8)), ("f", (5, 9)), ("y", (1, 1, 5, 5)), ("z", (1, 1, 5, 3)),
                            ("o", (1, 1, 5, 3))):
            t = g.add_tensor(name, shape)
            t.scale, t.zero_point = 0.05, -2
        rng = np.random.default_rng(3)
        g.nodes.append(Node("tfl_fully_connected", "fc_0", ["x"], ["f"], {}, {
            "w": rng.integers(-128, 128, (9, 8)).astype(np.int8), "bias": rng.integers(-900, 900, 9),
            "scale": rng.uniform(0.002, 0.01, 9), "y_zp": -2, "lo": -128, "hi": 127}))
        m, sh = tflmath.quantize_multiplier(0.01)

        def bmm(name, ins, out, depth, cols, sa, sb, offsets):
            return Node("tfl_batch_matmul", name, ins, [out], {
                "a_shape": (5, depth), "b_shape": (cols, depth), "adj_x": False, "adj_y": True,
                "out_shape": (1, 1, 5, cols), "batch_dims": [1, 1, 1, 1], "strides": [[0] * 4 + sa, [0] * 4 + sb],
                "rows": 5, "cols": cols, "depth": depth, "offsets": offsets},
                {"a_zp": -2, "b_zp": -2, "y_zp": 4, "m": m, "shift": sh})
        # y = f[:, 0:3] @ f[:, b0:b0+3]^T (q.k's shape), z = f[:, 6:9] copied, o = y @ z (p.v's)
        g.nodes.append(bmm("bmm_1", ["f", "f"], "y", 3, 5, [9, 1], [9, 1], [0, read_b_cols]))
        g.nodes.append(Node("tfl_copy", "slice_2", ["f"], ["z"], {"out_shape": (1, 1, 5, 3), "pieces": [
            {"input": 0, "dims": [5, 3], "in_strides": [9, 1], "in_offset": 6, "out_strides": [3, 1],
             "out_offset": 0}]}, {}))
        g.nodes.append(bmm("bmm_3", ["y", "z"], "o", 5, 3, [5, 1], [1, 3], [0, 0]))
        g.inputs, g.outputs = ["x"], ["o"]
        return g

    g = graph(3)
    xs = np.random.default_rng(7).integers(-128, 128, (6, 5, 8)).astype(np.int8)
    xs[0], xs[1] = -128, 127
    want = np.stack([run_int8(g, x).reshape(-1) for x in xs])
    split = copy.deepcopy(g)
    assert split_fc_by_readers(split) == 1
    # channels 0..5 (q and k, both read by bmm_1) and 6..8 (the copy)
    assert [k.op for k in split.nodes].count("tfl_fully_connected") == 2 and "f" not in split.tensors
    assert np.array_equal(np.stack([run_int8(split, x).reshape(-1) for x in xs]), want)
    assert len(set(map(bytes, want))) > 3           # the outputs vary with the input
    c = compile_graph(split, None, "stm32f746")
    write_model_sources(c.model_c, c.model_h, tmp_path / "m")
    host = HostModel(build_host_library(tmp_path / "m", tmp_path / "m.so"), c.model_h)
    assert np.array_equal(np.stack([host.run(x).reshape(-1) for x in xs]), want)
    assert split_fc_by_readers(graph(2)) == 0          # k reads channels 2..4, overlapping q's 0..2
    g = graph(3)
    g.nodes.insert(1, Node("tfl_table", "t_9", ["f"], ["u"], {}, {"lut": np.arange(256, dtype=np.int8)}))
    assert split_fc_by_readers(g) == 0                 # a reader that walks f whole


def test_imported_tables_and_softmax_write_over_their_dying_input():
    """Token overwriting for an imported file's in-place ops: with the scores whole (no
    stream_scores), vit_relu's 1/sqrt(d) table and its SOFTMAX write over the [2, 64, 64] scores they
    read, so three score-sized tensors are never live together (20,480 -> 16,384 B, the lower bound);
    test_streamed_attention_equals_litert runs that schedule's C."""
    from edgeviz.passes import Switches
    g = import_tflite(FIXTURES / "vit_relu.tflite")
    c = compile_graph(g, None, "stm32f746", Switches(stream_scores=False), exact_switches=True)
    assert c.plan.peak == c.plan.lower_bound == 16384
    for n in g.nodes:
        if n.op in ("tfl_softmax", "tfl_table") and g.tensors[n.inputs[0]].nbytes == 8192:
            assert c.plan.offsets[n.outputs[0]] == c.plan.offsets[n.inputs[0]], n.name


@pytest.mark.parametrize("name", ["vit_relu", "vit_sigmoid_gelu", "vit_keras_mha", "vit_mha_cls_hswish"])
def test_streamed_attention_equals_litert(name, tmp_path, monkeypatch):
    """An imported attention a block of query rows at a time (ops/tfl_attention.py) and the same
    model with its scores whole both equal LiteRT on host C: 64 tokens (vit_relu: the build's
    default there, 16,384 -> 12,288 B), 17 tokens (a last block of one row) with q / k / v read
    through offsets (vit_sigmoid_gelu), V read through strides (keras MultiHeadAttention) and 3 heads."""
    import functools
    need("gcc")
    from edgeviz import passes
    from edgeviz.backends.c_toolchain import HostModel, build_host_library, write_model_sources
    from edgeviz.ops.tfl_attention import stream_scores
    from edgeviz.passes import Switches
    g = import_tflite(FIXTURES / f"{name}.tflite")
    default = compile_graph(g, None, "stm32f746")
    streamed = [n for n in default.schedule.graph.nodes if n.op == "tfl_attention"]
    assert (default.plan.peak, len(streamed)) == ((12288, 2) if name == "vit_relu" else (default.plan.peak, 0))
    # the build streams only where the scores outweigh q and k (vit_relu): every file here, streamed
    monkeypatch.setattr(passes, "stream_scores", functools.partial(stream_scores, only_where_smaller=False))
    xs = int8_inputs(g, 4, seed=5)
    xs[0], xs[1] = -128, 127
    want = litert.run_graph((FIXTURES / f"{name}.tflite").read_bytes(), g, xs)
    for k, sw in enumerate((Switches(), Switches(stream_scores=False))):
        c = compile_graph(g, None, "stm32f746", sw, exact_switches=True)
        fused = [n for n in c.schedule.graph.nodes if n.op == "tfl_attention"]
        assert len(fused) == (2 if sw.stream_scores else 0)
        write_model_sources(c.model_c, c.model_h, tmp_path / f"m{k}")
        host = HostModel(build_host_library(tmp_path / f"m{k}", tmp_path / f"m{k}.so"), c.model_h)
        got = np.stack([host.run(x) for x in xs])
        assert np.array_equal(got, want.reshape(got.shape)), sw.label()
