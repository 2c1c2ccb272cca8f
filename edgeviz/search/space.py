"""The search space as data (TOML), and the moves of the search on it.

A candidate is an ``edgeviz.model.ViTConfig``: one resolution, patch size, embed dim, depth, heads and
MLP ratio for the whole net, and one low-rank ratio per block (MCUFormer's space).
"""
from __future__ import annotations

import hashlib
import json
import random
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from edgeviz.errors import EdgevizError
from edgeviz.model import ViTConfig

DEFAULT_SPACE = Path(__file__).resolve().parent / "spaces" / "default.toml"
GENES = ("img_size", "patch", "embed", "depth", "heads", "mlp_ratio")


@dataclass(frozen=True)
class SearchSpace:
    img_size: tuple[int, ...]
    patch: tuple[int, ...]
    embed: tuple[int, ...]
    depth: tuple[int, ...]
    heads: tuple[int, ...]
    mlp_ratio: tuple[float, ...]
    rank_ratio: tuple[float, ...]
    in_chans: int = 1
    num_classes: int = 10
    pool: str = "cls"
    max_patches: int = 0          # 0: no cap
    name: str = "custom"
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict) -> "SearchSpace":
        ch = d.get("choices", d)
        try:
            space = cls(
                img_size=tuple(sorted(int(v) for v in ch["img_size"])),
                patch=tuple(sorted(int(v) for v in ch["patch"])),
                embed=tuple(sorted(int(v) for v in ch["embed"])),
                depth=tuple(sorted(int(v) for v in ch["depth"])),
                heads=tuple(sorted(int(v) for v in ch["heads"])),
                mlp_ratio=tuple(sorted(float(v) for v in ch["mlp_ratio"])),
                rank_ratio=tuple(sorted(float(v) for v in ch["rank_ratio"])),
                in_chans=int(d.get("in_chans", 1)),
                num_classes=int(d.get("num_classes", 10)),
                pool=str(d.get("pool", "cls")),
                max_patches=int(d.get("limits", {}).get("max_patches", d.get("max_patches", 0))),
                name=str(d.get("name", "custom")),
            )
        except KeyError as e:
            raise EdgevizError(f"search space is missing the choice {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise EdgevizError(f"search space has a bad value: {e}") from None
        space.validate()
        return space

    def to_dict(self) -> dict:
        return {
            "name": self.name, "in_chans": self.in_chans, "num_classes": self.num_classes, "pool": self.pool,
            "choices": {k: list(getattr(self, k)) for k in GENES + ("rank_ratio",)},
            "limits": {"max_patches": self.max_patches},
        }

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def with_data(self, in_chans: int, num_classes: int) -> "SearchSpace":
        return replace(self, in_chans=in_chans, num_classes=num_classes)

    def validate(self) -> None:
        for k in GENES + ("rank_ratio",):
            if not getattr(self, k):
                raise EdgevizError(f"search space choice {k!r} is empty")
        if any(r <= 0 or r > 1 for r in self.rank_ratio):
            raise EdgevizError("search space rank_ratio choices must lie in (0, 1]")
        if not any(self._res_patch_ok(r, p) for r in self.img_size for p in self.patch):
            raise EdgevizError("search space has no (img_size, patch) pair with img_size % patch == 0 "
                               "within max_patches")
        if not any(e % h == 0 for e in self.embed for h in self.heads):
            raise EdgevizError("search space has no (embed, heads) pair with embed % heads == 0")

    # ---- membership ----------------------------------------------------------------------------
    def _res_patch_ok(self, r: int, p: int) -> bool:
        return r % p == 0 and (not self.max_patches or (r // p) ** 2 <= self.max_patches)

    def res_patch_pairs(self) -> list[tuple[int, int]]:
        return [(r, p) for r in self.img_size for p in self.patch if self._res_patch_ok(r, p)]

    def contains(self, cfg: ViTConfig) -> bool:
        return (cfg.img_size in self.img_size and cfg.patch in self.patch and cfg.embed in self.embed
                and cfg.depth in self.depth and cfg.heads in self.heads and cfg.mlp_ratio in self.mlp_ratio
                and all(r in self.rank_ratio for r in cfg.rank_ratios)
                and self._res_patch_ok(cfg.img_size, cfg.patch) and cfg.embed % cfg.heads == 0)

    def config(self, **kw) -> ViTConfig:
        kw.setdefault("in_chans", self.in_chans)
        kw.setdefault("num_classes", self.num_classes)
        kw.setdefault("pool", self.pool)
        kw["rank_ratios"] = tuple(kw.get("rank_ratios", ()))
        return ViTConfig(**kw)

    # ---- extremes --------------------------------------------------------------------------------
    def largest(self) -> ViTConfig:
        """Most tokens (largest resolution at the smallest patch allowed), widest, deepest, dense."""
        r, p = max(self.res_patch_pairs(), key=lambda rp: ((rp[0] // rp[1]) ** 2, rp[0]))
        e = max(self.embed)
        h = max(h for h in self.heads if e % h == 0) if any(e % h == 0 for h in self.heads) else None
        if h is None:
            e, h = max((e, h) for e in self.embed for h in self.heads if e % h == 0)
        d = max(self.depth)
        return self.config(img_size=r, patch=p, embed=e, depth=d, heads=h, mlp_ratio=max(self.mlp_ratio),
                           rank_ratios=(max(self.rank_ratio),) * d)

    def smallest(self) -> ViTConfig:
        """Fewest tokens (smallest resolution at the largest patch), narrowest, shallowest, lowest rank."""
        r, p = min(self.res_patch_pairs(), key=lambda rp: ((rp[0] // rp[1]) ** 2, rp[0]))
        e, h = min((e, h) for e in self.embed for h in self.heads if e % h == 0)
        d = min(self.depth)
        return self.config(img_size=r, patch=p, embed=e, depth=d, heads=h, mlp_ratio=min(self.mlp_ratio),
                           rank_ratios=(min(self.rank_ratio),) * d)

    def max_dims(self) -> dict:
        """Sizes the supernet must hold."""
        return {"embed": max(self.embed), "depth": max(self.depth),
                "hidden": max(int(round(e * m)) for e in self.embed for m in self.mlp_ratio),
                "patches": sorted(self.patch), "max_grid": max(r // p for r, p in self.res_patch_pairs())}

    def size(self) -> int:
        """Number of distinct candidates."""
        eh = sum(1 for e in self.embed for h in self.heads if e % h == 0)
        per_depth = sum(len(self.rank_ratio) ** d for d in self.depth)
        return len(self.res_patch_pairs()) * eh * len(self.mlp_ratio) * per_depth

    # ---- moves -------------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> ViTConfig:
        r, p = rng.choice(self.res_patch_pairs())
        e, h = rng.choice([(e, h) for e in self.embed for h in self.heads if e % h == 0])
        d = rng.choice(self.depth)
        return self.config(img_size=r, patch=p, embed=e, depth=d, heads=h, mlp_ratio=rng.choice(self.mlp_ratio),
                           rank_ratios=tuple(rng.choice(self.rank_ratio) for _ in range(d)))

    def _repair(self, d: dict, rng: random.Random) -> ViTConfig:
        """Make a gene dict valid: fix patch/resolution, heads and the rank list length."""
        if not self._res_patch_ok(d["img_size"], d["patch"]):
            pairs = self.res_patch_pairs()
            same_r = [rp for rp in pairs if rp[0] == d["img_size"]]
            same_p = [rp for rp in pairs if rp[1] == d["patch"]]
            d["img_size"], d["patch"] = rng.choice(same_r or same_p or pairs)
        if d["embed"] % d["heads"]:
            hs = [h for h in self.heads if d["embed"] % h == 0]
            if hs:
                d["heads"] = rng.choice(hs)
            else:
                d["embed"], d["heads"] = rng.choice([(e, h) for e in self.embed for h in self.heads if e % h == 0])
        rr = list(d["rank_ratios"])[: d["depth"]]
        while len(rr) < d["depth"]:
            rr.append(rng.choice(self.rank_ratio))
        d["rank_ratios"] = tuple(rr)
        return self.config(**{k: d[k] for k in GENES + ("rank_ratios",)})

    def mutate(self, cfg: ViTConfig, rng: random.Random, prob: float = 0.3) -> ViTConfig:
        d = {k: getattr(cfg, k) for k in GENES}
        d["rank_ratios"] = list(cfg.rank_ratios)
        for k in GENES:
            if rng.random() < prob:
                d[k] = rng.choice(getattr(self, k))
        d["rank_ratios"] = [rng.choice(self.rank_ratio) if rng.random() < prob else r for r in d["rank_ratios"]]
        return self._repair(d, rng)

    def crossover(self, a: ViTConfig, b: ViTConfig, rng: random.Random) -> ViTConfig:
        d = {k: getattr(a if rng.random() < 0.5 else b, k) for k in GENES}
        ra, rb = list(a.rank_ratios), list(b.rank_ratios)
        d["rank_ratios"] = [rng.choice([x for x in (ra[i] if i < len(ra) else None, rb[i] if i < len(rb) else None)
                                        if x is not None]) for i in range(d["depth"])]
        return self._repair(d, rng)


def load_space(path: str | Path | None = None) -> SearchSpace:
    """The default space shipped in the package, a shipped one by name ("shapes": spaces/shapes.toml,
    sized for --data shapes), or a user's TOML file."""
    p = Path(path) if path else DEFAULT_SPACE
    shipped = DEFAULT_SPACE.parent / f"{path}.toml"
    if path and isinstance(path, str) and "/" not in path and not p.exists() and shipped.is_file():
        p = shipped
    try:
        with open(p, "rb") as f:
            d = tomllib.load(f)
    except FileNotFoundError:
        raise EdgevizError(f"search space file {p} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise EdgevizError(f"cannot read search space {p}: {e}") from None
    return SearchSpace.from_dict(d)


def config_key(cfg: ViTConfig) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True)


def gene_summary(cfg: ViTConfig) -> str:
    """One line naming a candidate's genes, for logs and reports."""
    return (f"img {cfg.img_size} patch {cfg.patch} embed {cfg.embed} depth {cfg.depth} heads {cfg.heads} "
            f"mlp {cfg.mlp_ratio:g} rank [{', '.join(f'{r:g}' for r in cfg.rank_ratios)}]")
