"""Models the benchmarks measure: the test configurations plus MCU-sized ViTs."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from models import CONFIGS as TEST_CONFIGS  # noqa: E402

from edgeviz.model import ViTConfig  # noqa: E402

BENCH_CONFIGS = {
    **TEST_CONFIGS,
    # sized for the F746: tens of kilobytes of activations, hundreds of kilobytes of weights
    "digits-32px-e96": ViTConfig(img_size=32, patch=4, embed=96, heads=3, depth=4, mlp_ratio=2.0,
                                 rank_ratios=(1.0, 0.75, 0.5, 0.5)),
    "rgb-64px-e64": ViTConfig(img_size=64, patch=8, in_chans=3, embed=64, heads=2, depth=4, mlp_ratio=3.0,
                              pool="mean"),
    "digits-48px-e128": ViTConfig(img_size=48, patch=4, embed=128, heads=4, depth=3, mlp_ratio=2.0,
                                  rank_ratios=(0.5, 0.5, 0.5)),
}

# the search space's longest attentions (257 and 401 tokens: p.v over V^T reduces over every key);
# bench_cores.py runs them by name, the other benches leave them out
LONG_ATTENTION_CONFIGS = {
    "tokens401-e64": ViTConfig(img_size=40, patch=2, embed=64, heads=2, depth=1, mlp_ratio=3.0, rank_ratios=(0.9,)),
    "tokens257-e128": ViTConfig(img_size=32, patch=2, embed=128, heads=2, depth=1, mlp_ratio=2.0),
}


def print_markdown_table(rows: list[dict], skip: tuple = ()) -> None:
    """The rows as a README table: small floats to 3 places, counts with thousands separators."""
    cols = [c for c in dict.fromkeys(k for r in rows for k in r) if c not in skip]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{v:,.3f}" if isinstance(v, float) and v < 100 else
                                 f"{v:,.0f}" if isinstance(v, (int, float)) else str(v) for v in
                                 (r.get(c) for c in cols)) + " |")
