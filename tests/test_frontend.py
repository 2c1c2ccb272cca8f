"""Model import through TVM: ONNX as well as torch.export, and clear errors for what is unsupported."""
import numpy as np
import pytest
import torch
from models import inputs, make

from edgeviz.frontend import graph_from_vit
from edgeviz.errors import EdgevizError
from edgeviz.frontend import import_onnx, import_torch
from edgeviz.quantize import run_float


def _export_onnx(m, path):
    x = torch.as_tensor(inputs(m.cfg, 1), dtype=torch.float32)
    torch.onnx.export(m, (x,), str(path), dynamo=False, opset_version=17, input_names=["x"], output_names=["y"])


@pytest.mark.parametrize("name", ["cls-lowrank", "mean-3heads"])
def test_onnx_import_gives_the_same_model(name, tmp_path):
    m = make(name)
    _export_onnx(m, tmp_path / "m.onnx")
    g = import_onnx(tmp_path / "m.onnx")
    assert g.summary() == graph_from_vit(m).summary()
    x = inputs(m.cfg, 2)
    with torch.no_grad():
        ref = m(torch.as_tensor(x, dtype=torch.float32)).numpy()
    got = np.stack([run_float(g, xi)[g.outputs[0]][0] for xi in x])
    np.testing.assert_allclose(got, ref, atol=1e-4)


@pytest.mark.parametrize("opset", [11, 13, 14, 16])
def test_layernorm_written_out_op_by_op_below_opset_17(opset, tmp_path):
    """Below opset 17 LayerNorm is ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add: read
    back as one LayerNorm."""
    m = make("rgb-deep-mean")
    x = torch.as_tensor(inputs(m.cfg, 1), dtype=torch.float32)
    torch.onnx.export(m, (x,), str(tmp_path / "m.onnx"), dynamo=False, opset_version=opset)
    g = import_onnx(tmp_path / "m.onnx")
    assert g.summary() == graph_from_vit(m).summary()
    xs = inputs(m.cfg, 2)
    with torch.no_grad():
        ref = m(torch.as_tensor(xs, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(np.stack([run_float(g, xi)[g.outputs[0]][0] for xi in xs]), ref, atol=1e-4)


@pytest.mark.parametrize("opset", [18, 21])
def test_the_torch_export_onnx_exporter_at_recent_opsets(opset, tmp_path):
    import contextlib
    import io
    m = make("cls-lowrank")
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(m, (torch.zeros(1, 1, 16, 16),), str(tmp_path / "m.onnx"), dynamo=True, opset_version=opset)
    assert import_onnx(tmp_path / "m.onnx").summary() == graph_from_vit(m).summary()


def test_onnx_with_a_dynamic_batch(tmp_path):
    m = make("odd-1head")
    x = torch.as_tensor(inputs(m.cfg, 1), dtype=torch.float32)
    torch.onnx.export(m, (x,), str(tmp_path / "d.onnx"), dynamo=False, opset_version=17, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    assert import_onnx(tmp_path / "d.onnx").summary() == graph_from_vit(m).summary()


class _Cumsum(torch.nn.Module):
    def forward(self, x):
        return x.cumsum(-1)


def test_unsupported_op_is_named_with_its_location():
    m = make("cls-lowrank")
    m.blocks[0].act = _Cumsum()
    with pytest.raises(EdgevizError, match=r"op 'cumsum' has no edgeviz kernel at 'lv\d+ = relax.cumsum\(...\)', "
                                           r"from tests/test_frontend.py:\d+ `return x.cumsum\(-1\)`"):
        import_torch(m)


def test_an_onnx_refusal_names_the_node(tmp_path):
    m = make("cls-lowrank")
    m.blocks[0].act = _Cumsum()
    torch.onnx.export(m, (torch.as_tensor(inputs(m.cfg, 1), dtype=torch.float32),), str(tmp_path / "m.onnx"),
                      dynamo=False, opset_version=17)
    with pytest.raises(EdgevizError, match=r"ONNX node '/blocks.0/act/CumSum' \(CumSum\)"):
        import_onnx(tmp_path / "m.onnx")


@pytest.mark.parametrize("act", [torch.nn.ReLU(), torch.nn.SiLU(), torch.nn.GELU(approximate="tanh"), torch.nn.Hardtanh()])
def test_any_elementwise_activation_is_one_table(act):
    m = make("cls-lowrank")
    for blk in m.blocks:
        blk.act = act
    g = import_torch(m)
    assert [n.op for n in g.nodes].count("activation") == len(m.blocks)
    x = inputs(m.cfg, 2)
    with torch.no_grad():
        ref = m(torch.as_tensor(x, dtype=torch.float32)).numpy()
    got = np.stack([run_float(g, xi)[g.outputs[0]][0] for xi in x])
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_unreadable_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"definitely not protobuf")
    with pytest.raises(EdgevizError, match="cannot read ONNX model"):
        import_onnx(bad)
