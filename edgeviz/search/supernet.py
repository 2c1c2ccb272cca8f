"""Weight-sharing ViT supernet (AutoFormer style) with low-rank factors (MCUFormer).

Every weight is held once at the largest size of the space; a subnet uses leading slices (the first
``embed`` channels, the first ``hidden`` MLP units, the first ``depth`` blocks). The q, k and v parts of
the qkv projection are sliced separately, so a subnet's qkv is [q(:e); k(:e); v(:e)].

Each linear layer also holds low-rank factors U (out x R) and V (R x in), R = min(in, out), set by a
truncated SVD of the dense weight (columns ordered by singular value, so rank r uses the first r).
A block with rank ratio rho < 1 computes y = (x V[:r]^T) U[:, :r]^T + b with r =
``edgeviz.model.low_rank(in, out, rho)``, exactly as ``edgeviz.model.LowRankLinear``.

There is one patch-embedding convolution per patch size. Position embeddings are held on the largest
token grid and resized (bilinear) to a subnet's grid; ``extract`` copies the resized table, so the
standalone ``edgeviz.model.ViT`` computes what the supernet computes in that configuration.
"""
from __future__ import annotations

import math
import random
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from edgeviz.errors import EdgevizError
from edgeviz.model import POS_INIT_STD, ViT, ViTConfig, low_rank, save_model
from edgeviz.atomic import atomic_path
from edgeviz.search.space import SearchSpace


@contextmanager
def one_thread():
    """LAPACK's SVD on small matrices is many times slower with several threads on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class SuperLinear(nn.Module):
    """Dense weight at max size plus SVD factors; ``groups`` > 1 slices each output group (qkv).

    Until ``refresh_low_rank`` (the end of the dense epochs) full-rank subnets use the dense weight.
    From then on every subnet, full rank included, uses the factors: a full-rank in x out layer is
    U[:, :k] V[:k] with k = min(in, out), so all rank choices train the same leading singular
    directions. With a separate dense weight only the largest subnet kept training it and the other
    full-rank subnets fell to chance (measured: 0.08 val accuracy for a 17-token x 128 subnet that
    reaches 0.99 trained alone; sharing the factors raised a small space's mean from 0.76 to 0.81)."""

    def __init__(self, in_max: int, out_max: int, groups: int = 1):
        super().__init__()
        self.in_max, self.out_max, self.groups = in_max, out_max, groups
        self.weight = nn.Parameter(torch.empty(out_max, in_max))
        self.bias = nn.Parameter(torch.zeros(out_max))
        self.rmax = min(in_max, out_max)
        self.u = nn.Parameter(torch.empty(out_max, self.rmax))
        self.v = nn.Parameter(torch.empty(self.rmax, in_max))
        self.register_buffer("factored", torch.zeros((), dtype=torch.bool))
        # nn.Linear's own initialisation at the largest fan-in, as the standalone ViT starts: ViT's usual
        # trunc-normal 0.02 with zero biases left one subnet trained through the supernet at 0.26 val
        # accuracy after 400 steps on --data shapes against 0.43 with this (0.47 trained alone)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        nn.init.uniform_(self.bias, -1 / math.sqrt(in_max), 1 / math.sqrt(in_max))
        self._svd()

    @torch.no_grad()
    def _svd(self) -> None:
        """U, V <- truncated-SVD factors of the current dense weight (sqrt of sigma on each side)."""
        with one_thread():
            u, s, vh = torch.linalg.svd(self.weight.detach().float(), full_matrices=False)
        root = s.sqrt()
        self.u.copy_(u * root)
        self.v.copy_(root[:, None] * vh)

    @torch.no_grad()
    def refresh_low_rank(self) -> None:
        """Factors from the trained dense weight; from now on every subnet uses the factors."""
        self._svd()
        self.factored.fill_(True)

    def _rows(self, out_f: int):
        if self.groups == 1:
            return slice(0, out_f)
        g_max, g = self.out_max // self.groups, out_f // self.groups
        return torch.cat([torch.arange(i * g_max, i * g_max + g) for i in range(self.groups)])

    def _rank(self, in_f: int, out_f: int, ratio: float) -> int | None:
        r = low_rank(in_f, out_f, ratio)
        return min(in_f, out_f) if r is None and bool(self.factored) else r

    def forward(self, x, in_f: int, out_f: int, ratio: float):
        rows, r = self._rows(out_f), self._rank(in_f, out_f, ratio)
        if r is None:
            return F.linear(x, self.weight[rows, :in_f], self.bias[rows])
        u, v = self.u[rows, :r], self.v[:r, :in_f]
        tokens = x.numel() // in_f
        if tokens * r * (in_f + out_f) > out_f * in_f * (r + tokens):   # multiplying U V out first is cheaper
            return F.linear(x, u @ v, self.bias[rows])
        return F.linear(F.linear(x, v), u, self.bias[rows])

    def copy_into(self, module: nn.Module, in_f: int, out_f: int, ratio: float) -> None:
        """Into the standalone layer: nn.Linear for full rank (U V multiplied out once factored),
        edgeviz.model's low-rank pair otherwise."""
        rows, r = self._rows(out_f), self._rank(in_f, out_f, ratio)
        with torch.no_grad():
            if low_rank(in_f, out_f, ratio) is None:
                w = self.weight[rows, :in_f] if r is None else self.u[rows, :r] @ self.v[:r, :in_f]
                module.weight.copy_(w)
                module.bias.copy_(self.bias[rows])
            else:
                module.v.weight.copy_(self.v[:r, :in_f])
                module.u.weight.copy_(self.u[rows, :r])
                module.u.bias.copy_(self.bias[rows])


class SuperLayerNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x, e: int):
        return F.layer_norm(x, (e,), self.weight[:e], self.bias[:e], 1e-5)

    def copy_into(self, module: nn.LayerNorm, e: int) -> None:
        with torch.no_grad():
            module.weight.copy_(self.weight[:e])
            module.bias.copy_(self.bias[:e])


class SuperBlock(nn.Module):
    def __init__(self, e_max: int, h_max: int):
        super().__init__()
        self.norm1 = SuperLayerNorm(e_max)
        self.qkv = SuperLinear(e_max, 3 * e_max, groups=3)
        self.proj = SuperLinear(e_max, e_max)
        self.norm2 = SuperLayerNorm(e_max)
        self.fc1 = SuperLinear(e_max, h_max)
        self.fc2 = SuperLinear(h_max, e_max)

    def forward(self, x, cfg: ViTConfig, ratio: float):
        b, n, e = x.shape
        hd = e // cfg.heads
        h = self.norm1(x, e)
        qkv = self.qkv(h, e, 3 * e, ratio).reshape(b, n, 3, cfg.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        # SDPA instead of the written-out form (edgeviz.model.Attention): the same accuracies over 30
        # subnets; on 2 CPU cores attention at 401 tokens runs forward + backward 1.9x and forward 2.9x
        # faster, and rating candidates takes half the time
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, e)
        x = x + self.proj(a, e, e, ratio)
        hidden = cfg.hidden
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x, e), e, hidden, ratio)), hidden, e, ratio)


class Supernet(nn.Module):
    def __init__(self, space: SearchSpace):
        super().__init__()
        self.space = space
        dims = space.max_dims()
        e_max, self.grid = dims["embed"], dims["max_grid"]
        self.e_max = e_max
        self.patch_embed = nn.ModuleDict(
            {str(p): nn.Conv2d(space.in_chans, e_max, kernel_size=p, stride=p) for p in dims["patches"]})
        self.cls_token = nn.Parameter(torch.zeros(1, 1, e_max))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, e_max))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, e_max))
        self.blocks = nn.ModuleList(SuperBlock(e_max, dims["hidden"]) for _ in range(dims["depth"]))
        self.norm = SuperLayerNorm(e_max)
        self.head = nn.Linear(e_max, space.num_classes)
        for t in (self.cls_token, self.cls_pos):
            nn.init.trunc_normal_(t, std=0.02)
        nn.init.normal_(self.pos_embed, std=POS_INIT_STD)      # the head keeps nn.Linear's own, as ViT's
        self.active: ViTConfig = space.largest()

    # ---- subnet selection ----------------------------------------------------------------------
    def sample(self, rng: random.Random) -> ViTConfig:
        return self.space.sample(rng)

    def set_subnet(self, cfg: ViTConfig) -> None:
        self.check(cfg)
        self.active = cfg

    def check(self, cfg: ViTConfig) -> None:
        sp = self.space
        if (cfg.in_chans != sp.in_chans or cfg.num_classes != sp.num_classes or cfg.pool != sp.pool
                or str(cfg.patch) not in self.patch_embed or cfg.embed > self.e_max
                or cfg.depth > len(self.blocks) or cfg.hidden > self.blocks[0].fc1.out_max
                or (cfg.img_size // cfg.patch) > self.grid):
            raise EdgevizError(f"configuration {cfg} is not a subnet of this supernet")

    @torch.no_grad()
    def refresh_low_rank(self) -> None:
        for m in self.modules():
            if isinstance(m, SuperLinear):
                m.refresh_low_rank()

    # ---- forward -------------------------------------------------------------------------------
    def pos_for(self, cfg: ViTConfig) -> torch.Tensor:
        e, g = cfg.embed, cfg.img_size // cfg.patch
        pos = self.pos_embed[:, :, :e]
        if g != self.grid:
            pos = pos.reshape(1, self.grid, self.grid, e).permute(0, 3, 1, 2)
            pos = F.interpolate(pos, size=(g, g), mode="bilinear", align_corners=False)
            pos = pos.permute(0, 2, 3, 1).reshape(1, g * g, e)
        if cfg.pool == "cls":
            pos = torch.cat([self.cls_pos[:, :, :e], pos], dim=1)
        return pos

    def forward(self, x, cfg: ViTConfig | None = None):
        cfg = cfg or self.active
        e = cfg.embed
        conv = self.patch_embed[str(cfg.patch)]
        x = F.conv2d(x, conv.weight[:e], conv.bias[:e], stride=cfg.patch).flatten(2).transpose(1, 2)
        if cfg.pool == "cls":
            x = torch.cat([self.cls_token[:, :, :e].expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_for(cfg)
        for blk, ratio in zip(self.blocks, cfg.rank_ratios):
            x = blk(x, cfg, ratio)
        x = self.norm(x, e)
        x = x[:, 0] if cfg.pool == "cls" else x.mean(dim=1)
        return F.linear(x, self.head.weight[:, :e], self.head.bias)

    # ---- extraction ----------------------------------------------------------------------------
    @torch.no_grad()
    def extract(self, cfg: ViTConfig | None = None) -> ViT:
        """A standalone ``edgeviz.model.ViT`` holding this subnet's weights (eval mode)."""
        cfg = cfg or self.active
        self.check(cfg)
        m = ViT(cfg)
        e = cfg.embed
        conv = self.patch_embed[str(cfg.patch)]
        m.patch_embed.weight.copy_(conv.weight[:e])
        m.patch_embed.bias.copy_(conv.bias[:e])
        if m.cls_token is not None:
            m.cls_token.copy_(self.cls_token[:, :, :e])
        m.pos_embed.copy_(self.pos_for(cfg))
        for blk, sb, ratio in zip(m.blocks, self.blocks, cfg.rank_ratios):
            sb.norm1.copy_into(blk.norm1, e)
            sb.qkv.copy_into(blk.attn.qkv, e, 3 * e, ratio)
            sb.proj.copy_into(blk.attn.proj, e, e, ratio)
            sb.norm2.copy_into(blk.norm2, e)
            sb.fc1.copy_into(blk.fc1, e, cfg.hidden, ratio)
            sb.fc2.copy_into(blk.fc2, cfg.hidden, e, ratio)
        self.norm.copy_into(m.norm, e)
        m.head.weight.copy_(self.head.weight[:, :e])
        m.head.bias.copy_(self.head.bias)
        return m.eval()

    # ---- persistence ---------------------------------------------------------------------------
    def blob(self) -> dict:
        return {"format": "edgeviz-supernet/2", "space": self.space.to_dict(), "state_dict": self.state_dict()}

    @classmethod
    def from_blob(cls, blob: dict) -> "Supernet":
        if not isinstance(blob, dict) or blob.get("format") != "edgeviz-supernet/2":
            raise EdgevizError("not an edgeviz supernet of this version (no 'edgeviz-supernet/2' header; "
                               "supernets from older edgeviz must be trained again)")
        net = cls(SearchSpace.from_dict(blob["space"]))
        net.load_state_dict(blob["state_dict"])
        return net


def export_state_dict(model: ViT, path: str | Path) -> Path:
    """Write ``model`` in edgeviz's model format (``edgeviz.model.save_model``), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        save_model(model, tmp)
    return path


def export_onnx(model: ViT, path: str | Path, opset: int = 17) -> Path:
    """ONNX file of ``model`` (input 'input' N x C x H x W, output 'logits'), written atomically.

    Uses the TorchScript-based exporter (``dynamo=False``): it needs nothing from the network."""
    import warnings

    path = Path(path)
    model = model.eval()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (model.example_input(1),), str(tmp), dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return path
