"""edgeviz's own HLS resource / latency estimator (edgeviz.hls.estimate) and the FPGA board files."""
from __future__ import annotations

import math

import pytest

from edgeviz.errors import EdgevizError
from edgeviz.hls import estimate as est
from edgeviz.hls.estimate import LayerSpec
from edgeviz.model import ViTConfig
from edgeviz.project import fpga_auto_reuse, fpga_estimate
from edgeviz.targets import load_fpga_target, load_target


@pytest.mark.parametrize("name, part, bram36, dsp, lut, ff", [
    ("zcu102", "xczu9eg", 912, 2520, 274080, 548160),
    ("pynq-z2", "xc7z020", 140, 220, 53200, 106400),
    ("ultra96v2", "xczu3eg", 216, 360, 70560, 141120),
])
def test_board_files(name, part, bram36, dsp, lut, ff):
    b = load_fpga_target(name)
    assert b.part.startswith(part)
    assert (b.bram18k, b.dsp, b.lut, b.ff) == (2 * bram36, dsp, lut, ff)
    assert 50e6 <= b.clock_hz <= 500e6
    assert b.int8_macs_per_dsp == (2 if part.startswith("xczu") else 1)
    assert b.description


def test_non_fpga_and_unknown_boards_are_user_errors():
    with pytest.raises(EdgevizError, match="not an FPGA board"):
        load_fpga_target("stm32f746")
    with pytest.raises(EdgevizError, match="stm32f746.toml lacks the field 'bram18k' \\(a mcu target\\)"):
        load_target("stm32f746").bram18k
    with pytest.raises(EdgevizError, match="zcu102"):
        load_fpga_target("no-such-board")


@pytest.mark.parametrize("width, depth, blocks", [
    (8, 2048, 1), (8, 2049, 2), (9, 2048, 1), (36, 512, 1), (72, 512, 2), (16, 1024, 1), (1, 16384, 1),
    (1, 16385, 2), (32, 100, 1), (1536, 64, 43), (64, 1000, 4), (0, 10, 0),
])
def test_bram18k_rounding(width, depth, blocks):
    assert est.bram18k_blocks(width, depth) == blocks


def test_small_memories_go_to_lutram():
    assert est.memory_cost(8, 100) == (0, 16)            # 800 bits: LUTRAM, 8 bits x 2 LUT6
    assert est.memory_cost(512, 8) == (0, 512)           # shallow and wide: registers / LUTs
    assert est.memory_cost(8, 256) == (1, 0)             # a GELU table in one BRAM18K
    assert est.buffer_bram18k(4096) == 2 and est.buffer_bram18k(4096, partitions=4) == 4


@pytest.mark.parametrize("nbytes, lanes, reshape, blocks", [
    (12480, 16, True, 8),      # 16 memories of 780 B (16 blocks) vs one 128-bit x 780 memory (8 blocks)
    (1088, 16, False, 0),      # 68 B per lane: LUTRAM when partitioned; reshaped it would take 4 blocks
    (6240, 1, False, 4),       # not split: 2K x 9 blocks
    (37120, 4, True, 19),      # 4 x 5 blocks partitioned; 32-bit x 9280 reshaped: 19
])
def test_split_buffer_layout(nbytes, lanes, reshape, blocks):
    """A buffer a fused attention reads LANES bytes a cycle from takes the cheaper of cyclic partition and
    cyclic reshape."""
    assert est.buffer_layout(nbytes, lanes) == (reshape, blocks)
    part = est.buffer_bram18k(nbytes, lanes)
    wide = est.buffer_bram18k(nbytes, lanes, reshape=True) if lanes > 1 else part
    assert blocks == min(part, wide)


@pytest.mark.parametrize("board, per_dsp", [("zcu102", 2), ("pynq-z2", 1)])
@pytest.mark.parametrize("k, o, reuse", [(64, 192, 1), (64, 192, 64), (33, 17, 7), (10, 3, 1000)])
def test_linear_dsp_model(board, per_dsp, k, o, reuse):
    b = load_fpga_target(board)
    c = est.layer_cost(LayerSpec("l", "linear", {"rows": 5, "in": k, "out": o}, reuse), b)
    lanes = math.ceil(k * o / reuse)
    assert c.lanes == lanes
    assert c.dsp == math.ceil(lanes / per_dsp) + est.DSP_MUL32      # MAC lanes + one requantiser
    assert c.macs == 5 * k * o
    steps = math.ceil(k * o / lanes)
    assert c.latency_cycles >= 5 * (k + steps + o)


def test_reuse_trades_resources_for_latency():
    b = load_fpga_target("zcu102")
    specs = [LayerSpec("fc", "linear", {"rows": 17, "in": 64, "out": 128, "lut": True}),
             LayerSpec("at", "attention", {"tokens": 17, "heads": 2, "dh": 32}),
             LayerSpec("ln", "layernorm", {"rows": 17, "c": 64}),
             LayerSpec("pe", "patch_embed", {"c": 3, "h": 32, "w": 32, "p": 4, "out": 64}),
             LayerSpec("ad", "add", {"n": 17 * 64})]
    for s in specs:
        prev = None
        for r in (1, 4, 16, 64, 256):
            s.reuse = r
            c = est.layer_cost(s, b)
            if prev is not None:
                assert c.dsp <= prev.dsp and c.lanes <= prev.lanes, (s.op, r)
                assert c.latency_cycles >= prev.latency_cycles, (s.op, r)
            prev = c


def test_estimate_totals_and_report():
    cfg = ViTConfig()
    e = fpga_estimate(cfg, "zcu102", reuse=64)
    assert e.fits
    assert e.dsp == sum(c.dsp for c in e.layers)
    assert e.bram18k == sum(c.bram18k for c in e.layers) + sum(k for _, _, k in e.buffers)
    assert e.latency_cycles == sum(c.latency_cycles for c in e.layers) == e.interval_cycles
    assert e.dataflow_interval_cycles == max(c.latency_cycles for c in e.layers)
    assert e.latency_s == pytest.approx(e.latency_cycles / 200e6)
    assert sum(c.macs for c in e.layers if c.op in ("linear", "patch_embed")) > 0
    text = e.report()
    assert "edgeviz's own estimates" in text and "not Vitis HLS / Vivado" in text
    assert "attention1" in text and "bank0" in text and "DSP" in text
    d = e.to_dict()
    assert "not a vendor tool figure" in d["source"]
    assert d["totals"]["dsp"] == e.dsp and d["available"]["dsp"] == 2520


def test_low_rank_blocks_use_fewer_resources():
    dense = fpga_estimate(ViTConfig(), "zcu102", reuse=64)
    low = fpga_estimate(ViTConfig(rank_ratios=(0.5, 0.5)), "zcu102", reuse=64)
    assert sum(c.op == "linear" for c in low.layers) > sum(c.op == "linear" for c in dense.layers)
    assert sum(c.macs for c in low.layers) < sum(c.macs for c in dense.layers)
    assert low.bram18k <= dense.bram18k


def test_over_budget_names_resource_used_and_available():
    cfg = ViTConfig(img_size=32, patch=4, in_chans=3, embed=96, depth=4, heads=3)
    with pytest.raises(EdgevizError) as info:
        fpga_estimate(cfg, "pynq-z2", reuse=1)
    msg = str(info.value)
    e = fpga_estimate(cfg, "pynq-z2", reuse=1, check=False)
    assert not e.fits
    assert "DSP" in msg and f"{e.dsp} used > 220 available" in msg
    assert "estimate" in msg and "\n" not in msg


def test_auto_reuse_picks_the_smallest_fitting_factor():
    cfg = ViTConfig()
    r, e = fpga_auto_reuse(cfg, "ultra96v2")
    assert e.fits and r > 1
    smaller = fpga_estimate(cfg, "ultra96v2", reuse=r // 2, check=False)
    assert not smaller.fits
    with pytest.raises(EdgevizError, match="BRAM18K"):
        fpga_auto_reuse(ViTConfig(img_size=224, patch=16, in_chans=3, embed=192, depth=12, heads=3,
                                 mlp_ratio=4, num_classes=1000), "pynq-z2")


def test_unknown_op_is_an_error():
    with pytest.raises(EdgevizError, match="no model for template 'conv3d'"):
        est.layer_cost(LayerSpec("x", "conv3d", {}), load_fpga_target("zcu102"))


def test_qkv_split_copies_share_constant_roms():
    """The qkv split recomputes LayerNorm (and a low-rank factor) per query row: the estimate counts that
    second datapath (DSP, cycles) but its constants once, since both call sites read the same ROM. The
    split is off in the FPGA default schedule: no copies there."""
    from edgeviz.passes import Switches

    cfg = ViTConfig(rank_ratios=(0.5, 0.5))
    assert not any(c.name.endswith(" (q row)") for c in fpga_estimate(cfg, "zcu102", reuse=64).layers)
    e = fpga_estimate(cfg, "zcu102", reuse=64, switches=Switches(split_qkv=True))
    by_name = {c.name: c for c in e.layers}
    copies = [n for n in by_name if n.endswith(" (q row)")]
    assert any(n.startswith("layernorm") for n in copies) and any(n.startswith("linear") for n in copies)
    for n in copies:
        orig, copy = by_name[n[:-len(" (q row)")]], by_name[n]
        assert copy.dsp == orig.dsp and copy.latency_cycles == orig.latency_cycles and copy.dsp > 0
        assert copy.bram18k == 0 < orig.bram18k
    spec = LayerSpec("ln", "layernorm", {"rows": 17, "c": 64}, 4)
    shared = LayerSpec("ln", "layernorm", {"rows": 17, "c": 64, "shared_rom": True}, 4)
    b = load_fpga_target("zcu102")
    assert est.layer_cost(shared, b).bram18k < est.layer_cost(spec, b).bram18k
    assert est.layer_cost(shared, b).dsp == est.layer_cost(spec, b).dsp
