"""1000+ INFER requests to the emulator through a fault-injecting TCP proxy (drops, truncation,
bit flips, duplicates, garbage, stalls). Prints how many results were correct, how many ended in a
clear error, and how many wrong results were accepted (must be 0), against a fault-free baseline
run through the same proxy.

    .venv/bin/python bench/bench_faults.py [--n 1000] [--p 0.01] [--seed 1]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeviz.runner.faultproxy import FaultConfig, run_campaign  # noqa: E402
from edgeviz.runner.firmware import build_firmware  # noqa: E402


def fake_expected(x: bytes) -> bytes:
    s = sum(b - 256 if b > 127 else b for b in x)
    return bytes((s + i) & 0xFF for i in range(10))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--p", type=float, default=0.01, help="probability of each fault kind per burst")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=0.15)
    ap.add_argument("--retries", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        elf = build_firmware(ROOT / "tests" / "fixtures" / "fake_model", "mps2-an500", tmp, kernels=False)
        runs = {}
        for label, cfg, n in (("baseline (no faults)", FaultConfig(), max(100, args.n // 10)),
                              (f"faults p={args.p}", FaultConfig.uniform(args.p, stall_s=0.25), args.n)):
            runs[label] = r = run_campaign(elf, n, cfg, fake_expected, input_bytes=64, seed=args.seed,
                                           timeout=args.timeout, retries=args.retries)
            print(f"{label}: {r['n']} requests in {r['elapsed_s']:.1f} s ({r['elapsed_s'] / r['n'] * 1e3:.1f} ms each): "
                  f"ok {r['ok']}, clear errors {r['errors']}, WRONG ACCEPTED {r['wrong']}, "
                  f"slowest {r['slowest_s']:.2f} s, retries {r['retries']}, faults injected "
                  f"{sum(r['faults'].values())}")
            if r["retry_reasons"]:
                print("   retry reasons: " + ", ".join(f"{k}: {v}" for k, v in r["retry_reasons"].items()))
            if r["error_messages"]:
                print("   errors: " + "; ".join(f"{k} x{v}" for k, v in r["error_messages"].items()))
    return 0 if all(r["wrong"] == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
