"""The LayerNorm of an imported .tflite file as one row op (tfl_layernorm), in TFLite's integer
semantics (edgeviz/tflmath.py), byte for byte the ops it replaces.

TensorFlow's converter writes a Keras LayerNorm as a dozen int8 ops over the tokens x [N, C]:
    mu = MEAN(x)                      negmu = table(mu)        (DEQUANTIZE -> NEG -> QUANTIZE)
    sq = SQUARED_DIFFERENCE(x, mu)    var = MEAN(sq)           r = table(var)   (ADD eps, RSQRT)
    rg = MUL(r, gamma)                t = MUL(negmu, rg)       t2 = ADD(t, beta)
    u = MUL(x, rg)                    y = ADD(u, t2)
each a pass over [N, C] with its own rounding. `fuse_layernorms` finds that subgraph among the
imported nodes (the broadcasts checked by walking index arrays through each op's own strides) and
replaces it with one node that keeps the replaced nodes: its reference (run_int8) runs them, its
C kernel (ev_tfl_layernorm_s8, firmware/kernels/ev_tfl.c) and HLS template do the same integer
steps per element in one pass over each row (three reads of the row, one write, nothing else
stored). What depends on one int8 value alone is tabulated here, once: the SQUARED_DIFFERENCE's and
ADDs' per-input scalings (int32, 256 entries each), beta's side of its ADD per channel, and the
table chains (DEQUANTIZE-NEG-QUANTIZE, ADD eps -> RSQRT) composed into one table each.
"""
from __future__ import annotations

import numpy as np

from .. import tflmath
from ..ir import Graph, Node
from .base import OPS
from .tfl_base import TflOp
from .tfl_eltwise import BINARY

# the kernel's parameter vector, in order (ev_tfl_layernorm_s8 reads p[0..len-1] by these positions)
PARAMS = ("m1_xzp", "m1_m", "m1_sh", "m1_yzp",
          "sq_bzp", "sq_bm", "sq_bsh", "sq_m", "sq_sh", "sq_yzp", "sq_lo", "sq_hi",
          "m2_xzp", "m2_m", "m2_sh", "m2_yzp",
          "g_rzp", "g_m", "g_sh", "g_yzp", "g_lo", "g_hi",
          "t_nzp", "t_rzp", "t_m", "t_sh", "t_yzp", "t_lo", "t_hi",
          "b_m", "b_sh", "b_yzp", "b_lo", "b_hi",
          "u_xzp", "u_rzp", "u_m", "u_sh", "u_yzp", "u_lo", "u_hi",
          "y_m", "y_sh", "y_yzp", "y_lo", "y_hi")
LEFT = {"add": tflmath.ADD_LEFT_SHIFT, "squared_difference": tflmath.SQDIFF_LEFT_SHIFT}


def _scaled(v, zp: int, m: int, shift: int, left: int) -> np.ndarray:
    """An ADD / SQUARED_DIFFERENCE input's scaled value, mq((v - zp) << left), as int32."""
    return tflmath.multiply_by_quantized_multiplier((np.asarray(v, np.int64) - zp) << left, m, shift).astype(np.int32)


class TflLayerNorm(TflOp):
    name = "tfl_layernorm"
    kernel = "layernorm"
    hls_kind = "layernorm"
    inplace = True          # each row's outputs are written after the row's last read

    def run_int8(self, node, xs):
        env = {node.inputs[0]: xs[0]}
        for n in node.qattrs["nodes"]:
            env[n.outputs[0]] = OPS[n.op].run_int8(n, [env[i] for i in n.inputs])
        return env[node.outputs[0]]

    def flash_bytes(self, node):
        q = node.qattrs
        return q["p"].nbytes + q["tab"].nbytes + q["luts"].nbytes + 8 * node.attrs["rows_c"][1]

    def work(self, node, g):
        w = super().work(node, g)
        w["elements"] *= 6          # six requantisations per element (the ops it replaces: eleven passes)
        return w

    def call(self, node, g, a, ins, out):
        q, (rows, c) = node.qattrs, node.attrs["rows_c"]
        return [ins[0], str(rows), str(c), a.rom("p", q["p"], np.int32), a.rom("tab", q["tab"], np.int32),
                a.rom("luts", q["luts"], np.int8), out]

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        # C only: per channel {gamma - zp, beta's ADD table entry} side by side (one LDRD for both
        # in the M7's ev_tfl__ln_row), from tab
        n = node.attrs["rows_c"][1]
        tab = node.qattrs["tab"]
        gb = np.stack([tab[1024 + n:1024 + 2 * n], tab[1024:1024 + n]], axis=1).astype(np.int32)
        lines = super().emit_c(node, g, c, ins, out, rows, row0, scratch)
        return [lines[0].replace(f", {out});", f", {c.const(node.name + '.gb', gb)}, {out});")]

    def hls_dims(self, node, g):
        rows, c = node.attrs["rows_c"]
        return {"rows": rows, "c": c}


LAYERNORM = TflLayerNorm()


# ---------------------------------------------------------------- finding the converter's subgraph

def _views(node: Node, n: int, c: int, xs: list[np.ndarray]):
    """A binary node's two operands, as the op walks them, for index arrays xs, as [n, c] (None if the
    walk is not n * c elements)."""
    if int(np.prod(node.attrs["dims"])) != n * c:
        return None
    return [v.reshape(n, c) for v in BINARY.operands(node, xs)]


def _match(g: Graph, m1: Node, cons) -> dict | None:
    """The nodes of one converter LayerNorm starting at its first MEAN, or None."""
    def only(t, op=None):
        cs = cons.get(t, [])
        return cs[0] if len(cs) == 1 and t not in g.outputs and (op is None or cs[0].op == op) else None

    def tables(t, first=None):
        """Follow single-consumer 1-D tables from t (from its consumer `first`): (the tensor after them,
        the nodes, the composed lut)."""
        lut, chain = np.arange(-128, 128).astype(np.int8), []
        while True:
            nxt, first = first or only(t, "tfl_table"), None
            if nxt is None or nxt.qattrs.get("lut") is None or nxt.qattrs["lut"].ndim != 1:
                return t, chain, lut
            lut = nxt.qattrs["lut"][lut.astype(np.int16) + 128]
            chain.append(nxt)
            t = nxt.outputs[0]

    def binary(node, kinds, const: bool):
        ok = (node is not None and node.op == "tfl_binary" and node.attrs["kind"] in kinds
              and ("const" in node.qattrs) == const)
        return node if ok else None

    outer, c, inner = m1.attrs["split"]
    if inner != 1 or c < 1:
        return None
    n = outer
    x, mu = m1.inputs[0], m1.outputs[0]
    if mu in g.outputs or len(cons.get(mu, [])) != 2:
        return None
    sq = next((k for k in cons[mu] if k.op == "tfl_binary"), None)
    neg0 = next((k for k in cons[mu] if k.op == "tfl_table"), None)
    sq = binary(sq, ("squared_difference",), False)
    if sq is None or neg0 is None or sorted(sq.inputs) != sorted([x, mu]):
        return None
    m2 = only(sq.outputs[0], "tfl_mean")
    if m2 is None or tuple(m2.attrs["split"]) != (n, c, 1):
        return None
    r, var_chain, lut_r = tables(m2.outputs[0])
    negmu, neg_chain, lut_neg = tables(mu, neg0)
    if not neg_chain:
        return None
    gnode = binary(only(r), ("mul",), True)
    if gnode is None:
        return None
    rg = gnode.outputs[0]
    rc = cons.get(rg, [])
    if rg in g.outputs or len(rc) != 2:
        return None
    tnode = next((k for k in rc if negmu in k.inputs), None)
    unode = next((k for k in rc if x in k.inputs), None)
    tnode, unode = binary(tnode, ("mul",), False), binary(unode, ("mul",), False)
    if tnode is None or unode is None or tnode is unode or only(negmu) is not tnode:
        return None
    bnode = binary(only(tnode.outputs[0]), ("add",), True)
    if bnode is None:
        return None
    ynode = binary(only(bnode.outputs[0]), ("add",), False)
    if ynode is None or only(unode.outputs[0]) is not ynode or sorted(ynode.inputs) != sorted([unode.outputs[0],
                                                                                               bnode.outputs[0]]):
        return None
    nodes = [m1, *neg_chain, sq, m2, *var_chain, gnode, tnode, bnode, unode, ynode]
    if any(g.tensors[k.outputs[0]].nbytes != (n if k in (m1, m2, *neg_chain, *var_chain) else n * c) for k in nodes):
        return None
    # the broadcasts, checked by walking index arrays through each node's own strides
    elem, row = np.arange(n * c, dtype=np.int64), np.arange(n, dtype=np.int64)
    want_e, want_r = elem.reshape(n, c), np.repeat(row[:, None], c, axis=1)

    def roles(node, kinds):
        """Map the node's two operands to roles: 'e' a [N, C] tensor, 'r' a per-row one, 'k' its constant."""
        idx = [elem if kinds[i] == "e" else row for i in range(len(node.inputs))]
        v = _views(node, n, c, idx)
        if v is None:
            return None
        ci = node.attrs.get("const_index")
        out, j = [], 0
        for pos in range(2):
            if ci == pos:
                if not (v[pos] == v[pos][:1]).all():
                    return None
                out.append(("k", v[pos][0]))
                continue
            kind = kinds[j]
            j += 1
            if not np.array_equal(v[pos], want_e if kind == "e" else want_r):
                return None
            out.append((kind, None))
        return out

    def kinds_of(node, roles_by_tensor):
        return [roles_by_tensor[t] for t in node.inputs]

    role = {x: "e", mu: "r", negmu: "r", r: "r", rg: "e", tnode.outputs[0]: "e", bnode.outputs[0]: "e",
            unode.outputs[0]: "e"}
    checked = {}
    for k in (sq, gnode, tnode, bnode, unode, ynode):
        rr = roles(k, kinds_of(k, role))
        if rr is None:
            return None
        checked[k.name] = rr
    return {"nodes": nodes, "n": n, "c": c, "x": x, "mu": mu, "negmu": negmu, "r": r, "rg": rg,
            "m1": m1, "m2": m2, "sq": sq, "g": gnode, "t": tnode, "b": bnode, "u": unode, "y": ynode,
            "lut_neg": lut_neg, "lut_r": lut_r, "roles": checked}


def _side(node: Node, tensor: str | None) -> int:
    """Which operand (0 = a, 1 = b) of a binary node is `tensor` (None: its constant)."""
    if tensor is None:
        return node.attrs["const_index"]
    ins = list(node.inputs)
    if "const" in node.qattrs:
        ins.insert(node.attrs["const_index"], None)
    return ins.index(tensor)


def _params(f: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The kernel's parameter vector, int32 tables and int8 tables; None where its arithmetic would not
    hold (a fused activation's clamp, a multiplier whose input could overflow its fast path)."""
    c = f["c"]
    p = {}
    m1, m2 = f["m1"].qattrs, f["m2"].qattrs
    p.update(m1_xzp=m1["x_zp"], m1_m=m1["m"], m1_sh=m1["shift"], m1_yzp=m1["y_zp"])
    p.update(m2_xzp=m2["x_zp"], m2_m=m2["m"], m2_sh=m2["shift"], m2_yzp=m2["y_zp"])
    zps = lambda q: (q["a_zp"], q["b_zp"])          # noqa: E731
    # SQUARED_DIFFERENCE(x, mu): x's side tabulated, mu's per row
    sq = f["sq"].qattrs
    ma, sa, mb, sb, my, sy = sq["params"]
    xs = _side(f["sq"], f["x"])
    xm, xsh, bm, bsh = (ma, sa, mb, sb) if xs == 0 else (mb, sb, ma, sa)
    t_sq = _scaled(np.arange(-128, 128), zps(sq)[xs], xm, xsh, LEFT["squared_difference"])
    p.update(sq_bzp=zps(sq)[1 - xs], sq_bm=bm, sq_bsh=bsh, sq_m=my, sq_sh=sy, sq_yzp=sq["y_zp"], sq_lo=sq["lo"],
             sq_hi=sq["hi"])
    # rg = MUL(r, gamma)
    gq = f["g"].qattrs
    gs = _side(f["g"], None)
    gamma = np.asarray(f["roles"][f["g"].name][gs][1], np.int64) - zps(gq)[gs]
    p.update(g_rzp=zps(gq)[1 - gs], g_m=gq["m"], g_sh=gq["shift"], g_yzp=gq["y_zp"], g_lo=gq["lo"], g_hi=gq["hi"])
    # t = MUL(negmu, rg), u = MUL(x, rg)
    for key, node, other in (("t", f["t"], f["negmu"]), ("u", f["u"], f["x"])):
        q = node.qattrs
        s = _side(node, other)
        p.update({f"{key}_{'n' if key == 't' else 'x'}zp": zps(q)[s], f"{key}_rzp": zps(q)[1 - s], f"{key}_m": q["m"],
                  f"{key}_sh": q["shift"], f"{key}_yzp": q["y_zp"], f"{key}_lo": q["lo"], f"{key}_hi": q["hi"]})
    # t2 = ADD(t, beta): t's side tabulated, beta's per channel
    bq = f["b"].qattrs
    ma, sa, mb, sb, my, sy = bq["params"]
    ks = _side(f["b"], None)
    beta = f["roles"][f["b"].name][ks][1]
    km, ksh, tm, tsh = (ma, sa, mb, sb) if ks == 0 else (mb, sb, ma, sa)
    t_t = _scaled(np.arange(-128, 128), zps(bq)[1 - ks], tm, tsh, LEFT["add"])
    t_beta = _scaled(beta, zps(bq)[ks], km, ksh, LEFT["add"])
    p.update(b_m=my, b_sh=sy, b_yzp=bq["y_zp"], b_lo=bq["lo"], b_hi=bq["hi"])
    # y = ADD(u, t2): both sides tabulated
    yq = f["y"].qattrs
    ma, sa, mb, sb, my, sy = yq["params"]
    us = _side(f["y"], f["u"].outputs[0])
    um, ush, vm, vsh = (ma, sa, mb, sb) if us == 0 else (mb, sb, ma, sa)
    t_u = _scaled(np.arange(-128, 128), zps(yq)[us], um, ush, LEFT["add"])
    t_t2 = _scaled(np.arange(-128, 128), zps(yq)[1 - us], vm, vsh, LEFT["add"])
    p.update(y_m=my, y_sh=sy, y_yzp=yq["y_zp"], y_lo=yq["lo"], y_hi=yq["hi"])
    # the kernel's one-SMMLAR requantisation needs m >= 0 and |input| < 2^(30 - left shift) (ev_tfl__sm)
    xb_all = _scaled(np.arange(-128, 128), p["sq_bzp"], bm, bsh, LEFT["squared_difference"])
    big = lambda *t: int(max(np.abs(np.asarray(v, np.int64)).max() for v in t))      # noqa: E731
    bounds = {"m1": 256 * c, "sq_b": 255 << 7, "sq": (big(t_sq) + big(xb_all)) ** 2, "m2": 256 * c,
              "g": 255 * big(gamma), "t": 255 * 255, "b": big(t_t) + big(t_beta), "u": 255 * 255,
              "y": big(t_u) + big(t_t2)}
    for key, bound in bounds.items():
        m, sh = (p["sq_bm"], p["sq_bsh"]) if key == "sq_b" else (p[f"{key}_m"], p[f"{key}_sh"])
        if m < 0 or bound >= 1 << (30 - max(sh, 0)):
            return None
    if any(p[k] != (-128 if k.endswith("_lo") else 127) for k in PARAMS if k.endswith(("_lo", "_hi"))):
        return None
    vec = np.array([int(p[k]) for k in PARAMS], dtype=np.int64)
    assert len(vec) == len(PARAMS)
    tab = np.concatenate([t_sq, t_t, t_u, t_t2, t_beta, gamma]).astype(np.int64)
    luts = np.concatenate([f["lut_neg"], f["lut_r"]]).astype(np.int8)
    assert len(tab) == 4 * 256 + 2 * c
    return vec.astype(np.int32), tab.astype(np.int32), luts


def fuse_layernorms(g: Graph) -> int:
    """Replace each converter LayerNorm among g's imported nodes by one tfl_layernorm node; how many."""
    done = 0
    for m1 in [k for k in g.nodes if k.op == "tfl_mean"]:
        if not any(k is m1 for k in g.nodes):
            continue
        cons: dict[str, list[Node]] = {}
        for k in g.nodes:
            for t in set(k.inputs):
                cons.setdefault(t, []).append(k)
        f = _match(g, m1, cons)
        if f is None:
            continue
        made = _params(f)
        if made is None:
            continue
        p, tab, luts = made
        y = f["y"].outputs[0]
        fused = Node("tfl_layernorm", "layernorm_" + m1.name.rsplit("_", 1)[-1], [f["x"]], [y],
                     {"rows_c": (f["n"], f["c"]), "tfl_name": f["y"].attrs.get("tfl_name", "")},
                     {"nodes": f["nodes"], "p": p, "tab": tab, "luts": luts})
        ids = {id(k) for k in f["nodes"]}
        at = max(i for i, k in enumerate(g.nodes) if id(k) in ids)
        g.nodes[at] = fused
        g.nodes[:] = [k for k in g.nodes if id(k) not in ids]
        for k in f["nodes"]:
            if k.outputs[0] != y:
                g.tensors.pop(k.outputs[0], None)
        done += 1
    return done
