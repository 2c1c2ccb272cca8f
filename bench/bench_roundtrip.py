"""Round trip of one INFER on the emulator (QEMU mps2-an500), median over runs, in ms.

Model: the hand-written fake model of tests/fixtures/fake_model (64 int8 in, 10 out, 3 layers).
Baselines in the same run: an INFO round trip (the protocol's floor: no inference, no input payload)
and a raw TCP echo over loopback (the transport's floor, no QEMU).

    .venv/bin/python bench/bench_roundtrip.py [--runs 200] [--build-dir BUILD_DIR]

--build-dir adds the same measurement for a real build (an mps2-an500 BUILD_DIR from edgeviz build).
"""
from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeviz.runner.api import session  # noqa: E402
from edgeviz.runner.client import Device, open_port  # noqa: E402
from edgeviz.runner.firmware import build_firmware  # noqa: E402
from edgeviz.runner.qemu import Emulator  # noqa: E402


def median_ms(fn, runs: int) -> tuple[float, float, float]:
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts), min(ts), max(ts)


def tcp_echo_ms(runs: int, size: int) -> tuple[float, float, float]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def echo():
        c, _ = srv.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := c.recv(65536):
            c.sendall(data)
        c.close()

    th = threading.Thread(target=echo, daemon=True)
    th.start()
    ser = open_port(f"socket://127.0.0.1:{srv.getsockname()[1]}", 1.0)
    msg = bytes(size)

    def once():
        ser.write(msg)
        got = b""
        while len(got) < size:
            got += ser.read(size - len(got))
    try:
        return median_ms(once, runs)
    finally:
        ser.close()
        srv.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--build-dir", help="also time INFER for this mps2-an500 build dir")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        elf = build_firmware(ROOT / "tests" / "fixtures" / "fake_model", "mps2-an500", tmp, kernels=False)
        with Emulator(elf) as emu, Device(open_port(emu.url), name="emulator", timeout=1.0) as dev:
            info = dev.info()
            x = bytes(range(64))
            for _ in range(10):
                dev.infer(x)                                        # warm-up
            _, count = dev.infer(x)
            infer = median_ms(lambda: dev.infer(x), args.runs)
            inf = median_ms(dev.info, args.runs)
            retries = dev.stats["retries"]
    echo = tcp_echo_ms(args.runs, 78)
    print(f"model: fake_model ({info['input_bytes']} B in, {info['output_bytes']} B out, "
          f"{count} instructions per inference), {args.runs} runs each, retries {retries}")
    print(f"INFER round trip on emulator : median {infer[0]:.2f} ms (min {infer[1]:.2f}, max {infer[2]:.2f})")
    print(f"INFO round trip (baseline)   : median {inf[0]:.2f} ms (min {inf[1]:.2f}, max {inf[2]:.2f})")
    print(f"TCP loopback echo, 78 B      : median {echo[0]:.3f} ms (min {echo[1]:.3f}, max {echo[2]:.3f})")
    print(f"INFER / INFO = {infer[0] / inf[0]:.2f}x; INFER - echo = {infer[0] - echo[0]:.2f} ms spent in QEMU + firmware")
    if args.build_dir:
        with session(args.build_dir, "emulator") as (_build, dev, info):
            x = bytes(info["input_bytes"])
            _, count = dev.infer(x, timeout=30)
            real = median_ms(lambda: dev.infer(x, timeout=30), max(10, args.runs // 10))
        print(f"INFER of {args.build_dir} ({info['input_bytes']} B in, {info['output_bytes']} B out, {count:,} "
              f"instructions): median {real[0]:.2f} ms (min {real[1]:.2f}, max {real[2]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
