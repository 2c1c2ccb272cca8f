"""The compiler core: TVM import, int8 reference, planner, and host-compiled C bit-exactness."""
from dataclasses import replace

import numpy as np
import pytest
from conftest import need
from models import CONFIGS, inputs, make

from edgeviz.backends.c_toolchain import HostModel, build_host_library, write_model_sources
from edgeviz.frontend import graph_from_vit, import_torch
from edgeviz.lower import plan_config
from edgeviz.project import compile_graph
from edgeviz.model import ViTConfig
from edgeviz.ops.attention import V_T_MIN_TOKENS
from edgeviz.ops.linear import RANK_ALIGN
from edgeviz.passes import Switches, schedule
from edgeviz.planner import plan
from edgeviz.quantize import quantize, quantize_image, run_float, run_int8
from edgeviz.targets import load_target

DIGITS_E96 = ViTConfig(img_size=32, patch=4, embed=96, heads=3, depth=4, mlp_ratio=2.0,
                       rank_ratios=(1.0, 0.75, 0.5, 0.5))       # bench/bench_models.py's
ALL_SWITCHES = [Switches(), Switches(False, False, False), Switches(True, False, True), Switches(False, True, True),
                Switches(True, True, False), Switches(split_qkv=False)]


def _same_graph(a, b):
    assert a.summary() == b.summary()
    for na, nb in zip(a.nodes, b.nodes):
        assert set(na.attrs) <= set(nb.attrs)
        for k, va in na.attrs.items():
            vb = nb.attrs.get(k)
            if isinstance(va, np.ndarray):
                np.testing.assert_array_equal(va, vb, err_msg=f"{na.name}.{k}")
            else:
                assert va == vb, (na.name, k)


@pytest.mark.parametrize("name", ["cls-lowrank", "rgb-deep-mean"])
def test_tvm_import_equals_direct_builder(name):
    """The search's fast IR builder and the TVM frontend must give the same graph."""
    m = make(name)
    _same_graph(import_torch(m), graph_from_vit(m))


def test_float_ir_matches_pytorch():
    import torch
    m = make("cls-wide-mlp3")
    g = import_torch(m)
    x = inputs(m.cfg, 3)
    with torch.no_grad():
        ref = m(torch.as_tensor(x, dtype=torch.float32)).numpy()
    got = np.stack([run_float(g, xi)[g.outputs[0]][0] for xi in x])
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_int8_tracks_float():
    """Not bit-exactness (that is the C's job) but a sanity bound on quantization error."""
    import torch
    m = make("mean-3heads")
    g = graph_from_vit(m)
    x = inputs(m.cfg, 16)
    quantize(g, x)
    with torch.no_grad():
        ref = m(torch.as_tensor(x, dtype=torch.float32)).numpy()
    out_scale = g.tensors[g.outputs[0]].scale
    q = np.stack([run_int8(g, quantize_image(g, xi)).reshape(-1) * out_scale for xi in x])
    assert np.abs(q - ref).max() < 0.1 * np.abs(ref).max()


def _host(compiled, tmp_path):
    d = tmp_path / "model"
    write_model_sources(compiled.model_c, compiled.model_h, d)
    return HostModel(build_host_library(d, tmp_path / "model.so"), compiled.model_h)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_host_c_is_bit_exact(name, tmp_path):
    need("gcc")
    m = make(name)
    x = inputs(m.cfg, 12, seed=1)
    c = compile_graph(graph_from_vit(m), x[:8], "stm32f746")
    host = _host(c, tmp_path)
    for xi in np.concatenate([x, 3 * inputs(m.cfg, 4, seed=2)]):     # also inputs beyond the calibrated range
        xq = quantize_image(c.graph, xi)
        np.testing.assert_array_equal(host.run(xq), run_int8(c.graph, xq).reshape(-1))


@pytest.mark.parametrize("sw", ALL_SWITCHES, ids=lambda s: s.label())
def test_every_schedule_gives_the_same_bits(sw, tmp_path):
    """The memory passes change where bytes live, never their values."""
    need("gcc")
    m = make("cls-lowrank")
    x = inputs(m.cfg, 6, seed=3)
    c = compile_graph(graph_from_vit(m), x, "stm32f746", sw)
    host = _host(c, tmp_path)
    for xi in x:
        xq = quantize_image(c.graph, xi)
        np.testing.assert_array_equal(host.run(xq), run_int8(c.graph, xq).reshape(-1))


# Ranks that are no multiple of the kernel's stride: 64 x 0.4 -> 26; 40 x 0.575 -> 23, 40 x 0.85 -> 34.
ODD_RANKS = [ViTConfig(img_size=16, patch=8, embed=64, heads=4, depth=1, rank_ratios=(0.4,)),
             ViTConfig(img_size=24, patch=4, embed=40, heads=2, depth=2, mlp_ratio=3.0, rank_ratios=(0.575, 0.85))]


@pytest.mark.parametrize("sw", [Switches(), Switches(pad_rank=False), Switches(False, False, False),
                                Switches(split_qkv=False), Switches(keep_rank=False)], ids=lambda s: s.label())
@pytest.mark.parametrize("k", range(len(ODD_RANKS)))
def test_rank_padding_keeps_the_bits(k, sw, tmp_path):
    """Linear.pad_rank widens every low-rank pair's rank to RANK_ALIGN with zero weights: the C gives
    the reference's bits, and the planner's flash counts the padded constants the C holds."""
    need("gcc")
    cfg = ODD_RANKS[k]
    m = make(cfg, seed=k)
    x = inputs(cfg, 8, seed=k)
    c = compile_graph(graph_from_vit(m), x[:4], "stm32f746", sw, exact_switches=True)
    assert c.schedule.switches == sw
    g = c.schedule.graph
    ranks = [g.tensors[n.outputs[0]].channels for n in g.nodes
             if n.op == "linear" and "lut" not in n.qattrs and g.consumers(n.outputs[0])
             and all(r.op == "linear" for r in g.consumers(n.outputs[0]))]
    assert ranks and all((r % RANK_ALIGN == 0) == sw.pad_rank for r in ranks), ranks
    assert plan_config(cfg, "stm32f746", sw).flash == c.info["weights_bytes"] + c.target.code_bytes
    host = _host(c, tmp_path)
    for xi in np.concatenate([x, 3 * x[:2]]):
        xq = quantize_image(c.graph, xi)
        np.testing.assert_array_equal(host.run(xq), run_int8(c.graph, xq).reshape(-1))


# 5 tokens, 64 channels, one head: the four-row blocks hold more than whole tensors, with or without K/V
# per head (the 4-head digits subnet of the README runs fused with K/V per head: 1,600 B, 1,704 B unfused)
ONE_HEAD_SUBNET = ViTConfig(img_size=16, patch=8, embed=64, heads=1, depth=1, rank_ratios=(0.4,))


@pytest.mark.parametrize("name,fused,fused_per_head", [("one-head-subnet", False, False), ("five-tokens", False, True),
                                                       ("cls-lowrank", True, True), ("odd-1head", True, True)])
def test_fusion_only_where_it_lowers_the_peak(name, fused, fused_per_head):
    """Few tokens: the chains' row blocks hold more than whole tensors, so the build runs unfused; K/V
    per head, when asked for, likewise only where it plans smaller. The search's oracle (plan_config)
    judges the same schedule."""
    m = make(ONE_HEAD_SUBNET if name == "one-head-subnet" else name)
    x = inputs(m.cfg, 2)
    t = load_target("stm32f746")
    c = compile_graph(graph_from_vit(m), x, t)
    g = c.graph
    kv_off, kv_on, off = Switches(), Switches(kv_per_head=True), Switches(fuse=False, split_qkv=False, stream_scores=False)
    recompute = Switches(keep_rank=False)                     # the low-rank factor recomputed for q (tried too)
    peaks = {sw: plan(schedule(g, sw), t).peak for sw in (kv_off, recompute, kv_on, off)}
    best = min((kv_off, recompute, off), key=peaks.get)        # the default: K/V per head not tried
    assert c.schedule.switches == best and best.fuse is fused and best.split_qkv is fused
    assert c.plan.peak == peaks[best] == plan_config(m.cfg).peak_sram
    assert (peaks[off] < min(peaks[kv_off], peaks[recompute])) is not fused
    assert bool(c.schedule.note) is (best != kv_off)
    assert fused or f"{min(peaks[kv_off], peaks[recompute]):,} B fused" in c.schedule.note
    # asked for: the per-head schedule is tried beside K and V of all heads, and kept only where smaller
    asked = compile_graph(graph_from_vit(m), x, t, switches=kv_on)
    best_asked = min((kv_off, recompute, kv_on, off), key=peaks.get)      # the first on a tie
    assert asked.schedule.switches == best_asked and best_asked.fuse is fused_per_head
    assert best_asked != kv_off or "K/V per head off" in asked.schedule.note
    forced = compile_graph(graph_from_vit(m), x, t, kv_on, exact_switches=True)
    assert forced.schedule.switches == kv_on and forced.plan.peak == peaks[kv_on]


KV_CASES = [("odd-1head", 1), ("cls-lowrank", 2), ("rgb-deep-mean", 2), ("mean-3heads", 3), ("cls-wide-mlp3", 4),
            ("five-tokens", 4)]


@pytest.mark.parametrize("sw", [Switches(), Switches(token_overwrite=False), Switches(patch_decompose=False, pad_rank=False)],
                         ids=lambda s: s.label())
@pytest.mark.parametrize("name,heads", KV_CASES)
def test_kv_per_head_gives_the_same_bits(name, heads, sw, tmp_path):
    """K/V per head (forced, at any head count) and the same schedule without it: the host C of both
    equals the int8 reference byte for byte, every head's attention a step of its own."""
    need("gcc")
    m = make(name, seed=2)
    assert m.cfg.heads == heads
    x = inputs(m.cfg, 6, seed=5)
    xs = np.concatenate([x, 3 * x[:2]])
    outs = {}
    for kv in (True, False):
        c = compile_graph(graph_from_vit(m), x[:4], "stm32f746", replace(sw, kv_per_head=kv), exact_switches=True)
        per_head = [n for n in c.schedule.graph.nodes if n.op == "attention_head"]
        assert len(per_head) == (heads * m.cfg.depth if kv else 0)
        host = _host(c, tmp_path / str(kv))
        outs[kv] = np.stack([host.run(quantize_image(c.graph, xi)) for xi in xs])
        want = np.stack([run_int8(c.graph, quantize_image(c.graph, xi)).reshape(-1) for xi in xs])
        np.testing.assert_array_equal(outs[kv], want)
    np.testing.assert_array_equal(outs[True], outs[False])


@pytest.mark.parametrize("name", ["mean-3heads", "cls-wide-mlp3", "five-tokens", "digits-32px-e96"])
def test_kv_per_head_lowers_the_peak_from_three_heads(name):
    """With H >= 3 heads, K/V per head lowers the live-set lower bound and the planned arena below the
    same schedule's without it: at a head's attention x + out + 2NE/H (+ scratch) instead of x + K + V
    (+ scratch); asked for, the build (and the search's plan_config) keeps it."""
    cfg = {**CONFIGS, "digits-32px-e96": DIGITS_E96}[name]
    assert cfg.heads >= 3
    g = graph_from_vit(make(cfg))
    quantize(g, None)
    t = load_target("stm32f746")
    on, off = (plan(schedule(g, Switches(kv_per_head=kv)), t) for kv in (True, False))
    assert on.lower_bound < off.lower_bound and on.peak < off.peak
    assert on.peak == on.lower_bound                    # the planner reaches the bound
    n, e = (cfg.img_size // cfg.patch) ** 2 + (cfg.pool == "cls"), cfg.embed      # tokens: patches (+ cls)
    s = schedule(g, Switches(kv_per_head=True))
    for k, st in enumerate(s.steps):
        if st.nodes[-1].op == "attention_head":           # x + out + K_h V_h + the chain's scratch
            live = sum(b.size for b in on.live_at(k))
            assert live <= 2 * n * e + 2 * n * e // cfg.heads + st.scratch + 4 * 8, (st.name, live)
    rep = plan_config(cfg, switches=Switches(kv_per_head=True))      # asked for, it is kept
    assert rep.peak_sram == min(on.peak, plan(schedule(g, Switches(fuse=False, split_qkv=False)), t).peak)


@pytest.mark.parametrize("name,transposed", [("five-tokens", False), ("cls-lowrank", True), ("mean-3heads", True)])
def test_v_transposed_only_where_it_pays(name, transposed):
    """The C layout V^T (one row per head dim over all keys) costs scattered writes that only enough keys
    repay (passes.V_T_MIN_TOKENS); its readers must carry the mark exactly when its writer does."""
    m = make(name)
    c = compile_graph(graph_from_vit(m), inputs(m.cfg, 2), "stm32f746")
    g = c.schedule.graph
    writers = [n for n in g.nodes if n.op == "linear" and "v_t" in n.attrs]
    assert bool(writers) == transposed
    for n in writers:
        assert g.tensors[n.outputs[0]].shape[0] >= V_T_MIN_TOKENS
        assert all(r.attrs.get("v_t") == n.attrs["v_t"] for r in g.consumers(n.outputs[0]))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_plan_is_sound(name):
    m = make(name)
    g = graph_from_vit(m)
    quantize(g, None)
    t = load_target("stm32f746")
    for sw in ALL_SWITCHES:
        p = plan(schedule(g, sw), t)
        assert p.peak >= p.lower_bound
        for i, a in enumerate(p.buffers):
            assert a.offset % 8 == 0 and a.offset + a.size <= p.peak
            for b in p.buffers[i + 1:]:
                if a.first <= b.last and b.first <= a.last:      # alive together: must not overlap
                    assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)


def test_techniques_reduce_memory():
    from edgeviz.model import ViTConfig
    # an MCU-sized model (tokens x channels dominate, not the few rows of chain scratch)
    big = ViTConfig(img_size=32, patch=4, embed=96, heads=3, depth=2, rank_ratios=(1.0, 0.5))
    for cfg in (CONFIGS["cls-wide-mlp3"], big):
        on = plan_config(cfg).peak_sram
        for off in (Switches(fuse=False), Switches(token_overwrite=False), Switches(split_qkv=False)):
            assert plan_config(cfg, switches=off).peak_sram > on, off
    # a large image with few tokens: the im2col matrix is what decomposition saves
    odd = CONFIGS["odd-1head"]
    assert plan_config(odd, switches=Switches(patch_decompose=False)).peak_sram > plan_config(odd).peak_sram
    assert plan_config(big, switches=Switches(False, False, False)).peak_sram > 1.8 * plan_config(big).peak_sram


def test_plan_config_reports_misfit_with_bank_and_tensor():
    from edgeviz.model import ViTConfig
    r = plan_config(ViTConfig(img_size=64, patch=2, embed=128, heads=2, depth=1))
    assert not r.fits
    assert "overflows" in r.why and "largest live tensors" in r.why


@pytest.mark.parametrize("k", range(len(ODD_RANKS)))
def test_keep_rank_reads_the_first_factor_instead_of_recomputing(k):
    """Switches.keep_rank: the query rows of a low-rank qkv read the first factor's output instead of
    their own LayerNorm and factor (fewer executed MACs, the model's unchanged), and an MCU build keeps
    whichever of the two plans the smaller arena, the kept factor on a tie."""
    from edgeviz.lower import lower
    cfg = ODD_RANKS[k]
    g = graph_from_vit(make(cfg, seed=k))
    quantize(g, None)
    keep = lower(g, "stm32f746", Switches(), exact=True)
    again = lower(g, "stm32f746", Switches(keep_rank=False), exact=True)
    q_inputs = [n.inputs[0] for n in keep.schedule.graph.nodes if n.op == "linear" and n.name.endswith(".q")]
    assert q_inputs and all(keep.schedule.graph.producer(t).op == "linear" for t in q_inputs)
    assert not any(n.op == "layernorm" and n.outputs[0].endswith("_q") for n in keep.schedule.graph.nodes)
    assert any(n.op == "layernorm" and n.outputs[0].endswith("_q") for n in again.schedule.graph.nodes)
    assert keep.macs == again.macs and keep.executed_macs < again.executed_macs
    chosen = lower(g, "stm32f746")
    assert chosen.plan.peak == min(keep.plan.peak, again.plan.peak, chosen.plan.peak)
    assert chosen.schedule.switches.keep_rank == (keep.plan.peak <= again.plan.peak) or not chosen.schedule.switches.fuse


@pytest.mark.parametrize("name", ["cls-lowrank", "mean-3heads", "odd-1head"])
def test_optimize_time_keeps_the_fastest_schedule_that_fits(name):
    """lower(..., optimize="time"): of the schedules tried (the default's, the whole [N, 3E] qkv, unfused,
    the low-rank factor kept or recomputed), the fastest by the latency model among those that fit the
    target; never estimated slower than the smallest arena's schedule; "ram" is lower's default."""
    from edgeviz.errors import EdgevizError
    from edgeviz.lower import lower
    g = graph_from_vit(make(name))
    quantize(g, None)
    ram, fast = lower(g, "stm32f746"), lower(g, "stm32f746", optimize="time")
    est = lambda lo: lo.backend.latency(lo)["seconds"]  # noqa: E731
    assert lower(g, "stm32f746", optimize="ram").plan.peak == ram.plan.peak
    assert not fast.backend.fit(fast) and est(fast) <= est(ram) and fast.plan.peak >= ram.plan.peak
    assert fast.macs == ram.macs
    for sw in (Switches(), Switches(split_qkv=False), Switches(False, True, True, split_qkv=False, stream_scores=False)):
        other = lower(g, "stm32f746", sw, exact=True)
        assert est(fast) <= est(other) or other.backend.fit(other), sw
    assert (fast.schedule.switches == ram.schedule.switches) or "optimize time" in fast.schedule.note
    with pytest.raises(EdgevizError, match="unknown optimisation goal"):
        lower(g, "stm32f746", optimize="fast")


@pytest.mark.parametrize("name", ["cls-lowrank", "five-tokens", "cls-wide-mlp3"])
def test_macs_are_equal_across_schedules(name):
    """Every schedule runs the model's MACs (the unfused attention steps count theirs too); the qkv
    split adds its recomputed rows and rank padding its zero columns, which the build reports apart
    (executed_macs) so that the model's MACs stay the analytic count under every switch."""
    from edgeviz.backends.base import graph_macs
    from edgeviz.lower import lower
    from edgeviz.search.judge import analytic_macs
    m = make(name)
    g = graph_from_vit(m)
    quantize(g, None)
    base = graph_macs(g)
    assert base == analytic_macs(m.cfg)
    for sw in ALL_SWITCHES:
        low = lower(g, "stm32f746", sw, exact=True)
        assert low.macs == base and low.executed_macs >= base, sw
        plain = Switches(sw.fuse, sw.patch_decompose, sw.token_overwrite, split_qkv=False, pad_rank=False)
        assert graph_macs(schedule(g, plain).graph) == base, sw
    # cls-wide-mlp3's ranks (32, 48 of 64) need no padding, cls-lowrank's second block recomputes its
    # first factor for q: the device runs more than the model
    assert lower(g, "stm32f746").executed_macs > base or name != "cls-lowrank"


@pytest.mark.parametrize("name", ["cls-lowrank", "mean-3heads", "five-tokens"])
def test_every_scheduled_op_has_its_own_int8_reference(name):
    """Running the scheduled graph op by op (qkv split, unfused attention steps, folded tables, padded
    ranks) gives the model's int8 reference bits: each scheduled op kind carries its own run_int8."""
    from edgeviz.ops import OPS
    m = make(name)
    g = graph_from_vit(m)
    x = inputs(m.cfg, 3, seed=4)
    quantize(g, x)
    for sw in ALL_SWITCHES:
        sg = schedule(g, sw).graph
        for xi in x:
            env = {sg.inputs[0]: quantize_image(g, xi)}
            for n in sg.nodes:
                y = OPS[n.op].run_int8(n, [env[i] for i in n.inputs])
                env[n.outputs[0]] = np.asarray(y, dtype=np.int8).reshape(sg.tensors[n.outputs[0]].shape)
            np.testing.assert_array_equal(env[sg.outputs[0]].reshape(-1), run_int8(g, quantize_image(g, xi)).reshape(-1))


def test_weights_far_smaller_than_their_bias_keep_the_accumulator_in_int32(tmp_path):
    """A layer whose weights are ~1e-7 of its bias (a gate that starts near zero) would put a bias
    beyond int32 in the accumulator: the weight scale is floored so the bias fits, and the C still
    equals the int8 reference."""
    import torch
    need("gcc")
    m = make("cls-lowrank")
    fc1 = m.blocks[0].fc1
    lin = getattr(fc1, "u", fc1)                 # a low-rank layer's outer factor carries the bias
    with torch.no_grad():
        lin.weight.mul_(1e-7)
        lin.bias.fill_(3.0)
    x = inputs(m.cfg, 6)
    with np.errstate(invalid="raise", over="raise"):
        c = compile_graph(graph_from_vit(m), x, "stm32f746")
    b = next(n for n in c.graph.nodes if n.op == "linear" and n.attrs.get("b") is not None and
             np.allclose(n.attrs["b"], 3.0)).qattrs["bias"]
    assert np.abs(b.astype(np.int64)).max() <= 1 << 30
    write_model_sources(c.model_c, c.model_h, tmp_path)
    host = HostModel(build_host_library(tmp_path, tmp_path / "m.so"), c.model_h)
    for xi in x:
        xq = quantize_image(c.graph, xi)
        np.testing.assert_array_equal(host.run(xq), run_int8(c.graph, xq).reshape(-1))


@pytest.mark.parametrize("name,last", [("cls-wide-mlp3", 5), ("deit-11-tokens", 7), ("mean-3heads", 0),
                                       ("five-tokens", 5)])
def test_merge_tail_runs_the_rows_left_with_the_last_block(name, last, tmp_path):
    """Switches.merge_tail: a chain of 4k + 1 (4k + 3) rows runs its last block with the row (rows) left,
    5 (7) at once; the row intermediates grow to that many rows, nothing else changes; 36 tokens (4k) keep
    blocks of 4. The C gives the reference's bits (the DSP kernels' 5-row blocks: tests/test_firmware_qemu.py)."""
    need("gcc")
    if name == "deit-11-tokens":
        from zoo import deit_11_tokens
        g, x = deit_11_tokens()
    else:
        m = make(name, seed=2)
        g, x = graph_from_vit(m), inputs(m.cfg, 6, seed=2)
    base, merged = (compile_graph(g, x[:4], "stm32f746", Switches(merge_tail=on), exact_switches=True)
                    for on in (False, True))
    chains = [(a, b) for a, b in zip(base.schedule.steps, merged.schedule.steps) if b.chained]
    assert chains and [s.name for s in base.schedule.steps] == [s.name for s in merged.schedule.steps]
    for a, b in chains:
        rows = merged.schedule.graph.tensors[b.output].rows
        assert a.last == 0 and b.last == (last if rows % 4 in (1, 3) and rows > 4 else 0)
        inner = sum(merged.schedule.graph.tensors[t].channels for t in b.row_tensors)
        assert b.scratch - a.scratch == inner * (b.held_rows - a.held_rows)
    assert any(b.last == last for _, b in chains)
    assert merged.plan.peak >= base.plan.peak and merged.info["macs"] == base.info["macs"]
    assert last or (merged.plan.peak == base.plan.peak and merged.model_c == base.model_c)
    host = _host(merged, tmp_path)
    for xi in np.concatenate([x, 3 * x[:2]]):
        xq = quantize_image(merged.graph, xi)
        np.testing.assert_array_equal(host.run(xq), run_int8(merged.graph, xq).reshape(-1))


def test_optimize_time_merges_the_tail_on_dsp_kernels_only():
    """--optimize time tries merged tails on the DSP kernels (M4 / M7 / M33: ev__rs5 takes the 5 rows),
    not on the others' tiles (the M3 gains nothing); never the default, never on an FPGA."""
    from edgeviz.backends.fpga import fpga_switches
    from edgeviz.lower import lower
    g = graph_from_vit(make("cls-wide-mlp3"))
    quantize(g, None)
    assert lower(g, "stm32f746", optimize="time").schedule.switches.merge_tail
    assert not lower(g, "stm32f746").schedule.switches.merge_tail
    assert not lower(g, "stm32f103", optimize="time").schedule.switches.merge_tail
    assert not fpga_switches(Switches(merge_tail=True)).merge_tail
