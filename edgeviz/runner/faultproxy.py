"""A TCP proxy that damages a serial link on purpose, to test the runner's error handling.

    with FaultProxy(upstream_port, FaultConfig(p_drop=0.02, ...), seed=1) as proxy:
        open_port(proxy.url)       # talks to upstream through the faults

Each chunk of bytes (in either direction) independently may be: dropped whole, cut short
(truncated), have one bit flipped, have a random slice duplicated, have random garbage inserted,
or be held back for `stall_s` (a stalled link). Everything is seeded, so a failing run repeats.
"""
from __future__ import annotations

import random
import select
import socket
import threading
import time
from dataclasses import dataclass, field

from ..errors import EdgevizError
from .client import Device, open_port
from .qemu import Emulator


@dataclass
class FaultConfig:
    p_drop: float = 0.0        # lose the whole chunk
    p_truncate: float = 0.0    # lose the tail of the chunk
    p_flip: float = 0.0        # flip one bit
    p_duplicate: float = 0.0   # send a slice of the chunk twice
    p_garbage: float = 0.0     # insert 1..16 random bytes
    p_stall: float = 0.0       # hold the chunk for stall_s
    stall_s: float = 0.5
    gap_s: float = 0.002       # a pause this long ends a burst (the unit that faults apply to)
    directions: tuple[str, ...] = ("up", "down")   # up: host -> device, down: device -> host

    @classmethod
    def uniform(cls, p: float, stall_s: float = 0.5) -> "FaultConfig":
        return cls(p, p, p, p, p, p, stall_s)


@dataclass
class FaultLog:
    counts: dict = field(default_factory=dict)
    chunks: int = 0

    def add(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1


class FaultProxy:
    def __init__(self, upstream_port: int, config: FaultConfig, seed: int = 0, host: str = "127.0.0.1"):
        self.upstream = (host, upstream_port)
        self.config = config
        self.rng = random.Random(seed)
        self.log = FaultLog()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(1)
        self.port = self._listener.getsockname()[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        self._thread = threading.Thread(target=self._serve, name="faultproxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------ internals
    def damage(self, data: bytes, direction: str) -> tuple[bytes, float]:
        """(bytes to forward, seconds to hold them) for one chunk."""
        c = self.config
        with self._lock:
            self.log.chunks += 1
            if direction not in c.directions or not data:
                return data, 0.0
            r = self.rng
            b = bytearray(data)
            delay = 0.0
            if r.random() < c.p_drop:
                self.log.add(f"drop_{direction}")
                return b"", 0.0
            if r.random() < c.p_truncate and len(b) > 1:
                self.log.add(f"truncate_{direction}")
                del b[r.randrange(1, len(b)):]
            if r.random() < c.p_flip:
                self.log.add(f"flip_{direction}")
                b[r.randrange(len(b))] ^= 1 << r.randrange(8)
            if r.random() < c.p_duplicate:
                self.log.add(f"duplicate_{direction}")
                i = r.randrange(len(b))
                j = r.randrange(i, len(b)) + 1
                b[j:j] = b[i:j]
            if r.random() < c.p_garbage:
                self.log.add(f"garbage_{direction}")
                i = r.randrange(len(b) + 1)
                b[i:i] = bytes(r.randrange(256) for _ in range(r.randrange(1, 17)))
            if r.random() < c.p_stall:
                self.log.add(f"stall_{direction}")
                delay = c.stall_s
            return bytes(b), delay

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self._listener], [], [], 0.1)
                if not r:
                    continue
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pump(client, upstream)
            client.close()
            upstream.close()

    def _recv_burst(self, s: socket.socket) -> bytes | None:
        """Bytes until the sender pauses for `gap_s`: one frame from a UART that sends byte by byte
        arrives as many tiny TCP segments; faults apply per burst, as line noise hits a frame."""
        try:
            data = s.recv(65536)
            if not data:
                return None
            while len(data) < 65536:
                r, _, _ = select.select([s], [], [], self.config.gap_s)
                if not r:
                    break
                more = s.recv(65536)
                if not more:
                    break
                data += more
            return data
        except OSError:
            return None

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peer = {client: (upstream, "up"), upstream: (client, "down")}
        # chunks held back by a stall keep their order behind later chunks of the same direction
        queues: dict[str, list[tuple[float, bytes]]] = {"up": [], "down": []}
        dest = {"up": upstream, "down": client}
        while not self._stop.is_set():
            now = time.monotonic()
            waits = [q[0][0] - now for q in queues.values() if q]
            timeout = max(0.0, min(waits + [0.05]))
            try:
                ready, _, _ = select.select([client, upstream], [], [], timeout)
            except (OSError, ValueError):
                return
            for s in ready:
                data = self._recv_burst(s)
                if data is None:
                    return
                out, delay = self.damage(data, peer[s][1])
                q = queues[peer[s][1]]
                release = max(time.monotonic() + delay, q[-1][0] if q else 0.0)
                q.append((release, out))
            now = time.monotonic()
            for direction, q in queues.items():
                while q and q[0][0] <= now:
                    _, out = q.pop(0)
                    try:
                        if out:
                            dest[direction].sendall(out)
                    except OSError:
                        return


def run_campaign(elf, n: int, config: FaultConfig, expected, *, input_bytes: int, seed: int = 0,
                 timeout: float = 0.3, retries: int = 4) -> dict:
    """Boot elf on QEMU behind a FaultProxy and send n INFER requests with random inputs.

    expected(input_bytes) -> output bytes the model must return. Counts results that were accepted
    but wrong (must be 0), clear EdgevizErrors, and the slowest request (success or failure)."""

    rng = random.Random(seed + 1)
    res = {"n": n, "ok": 0, "wrong": 0, "errors": 0, "error_messages": {}, "slowest_s": 0.0}
    with Emulator(elf) as emu, FaultProxy(emu.port, config, seed) as proxy:
        dev = Device(open_port(proxy.url, timeout), name="device via fault proxy", timeout=timeout,
                     retries=retries, alive=emu.dead)
        t_start = time.monotonic()
        for _ in range(n):
            x = bytes(rng.randrange(256) for _ in range(input_bytes))
            t = time.monotonic()
            try:
                if dev.info_cache is None:
                    dev.info()
                out, _ = dev.infer(x)
                if out == expected(x):
                    res["ok"] += 1
                else:
                    res["wrong"] += 1
            except EdgevizError as e:
                res["errors"] += 1
                key = str(e).split(" (", 1)[0]
                res["error_messages"][key] = res["error_messages"].get(key, 0) + 1
                if "\n" in str(e):
                    res["multiline_errors"] = res.get("multiline_errors", 0) + 1
            res["slowest_s"] = max(res["slowest_s"], time.monotonic() - t)
        res["elapsed_s"] = time.monotonic() - t_start
        dev.close()
        res["faults"] = dict(proxy.log.counts)
        res["retries"] = dev.stats["retries"]
        res["retry_reasons"] = dict(dev.stats["retry_reasons"])
        res["crc_errors"] = dev.stats["crc_errors"]
    return res
