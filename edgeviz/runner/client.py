"""Talk to edgeviz firmware over a serial port or a socket:// URL.

Every read has a deadline. A request is retried (same sequence number) a bounded number of times on
a lost or damaged frame; replies to other sequence numbers are stale duplicates and are ignored.
Everything that can go wrong ends in one EdgevizError line.
"""
from __future__ import annotations

import time
from typing import Callable

from ..errors import EdgevizError
from . import protocol as P

CMD_NAMES = {v: k for k, v in P.COMMANDS.items()}
DAMAGED = "damaged"
DEFAULT_BAUD = 115200


def open_port(url: str, timeout: float = 1.0, baudrate: int = DEFAULT_BAUD):
    """Open a device path (/dev/ttyACM0, COM3) or a pyserial URL (socket://127.0.0.1:4321)."""
    import serial  # pyserial

    try:
        # exclusive: a port another program holds is refused at once instead of sharing its bytes
        return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, write_timeout=timeout, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "exclusively lock" in msg:
            raise EdgevizError(f"port {url!r} is busy: another program holds it (a serial monitor, another "
                               f"edgeviz); close it and try again") from None
        raise EdgevizError(f"cannot open port {url!r} ({msg}); check the device path or URL, "
                           f"that the board is plugged in / the emulator runs, and that no other program holds it") from None


class Device:
    """One edgeviz device behind an open pyserial-like port.

    alive: optional callable returning None while the device is up, or a message when it is known
    dead (e.g. the emulator process exited); checked whenever a reply is late.
    """

    def __init__(self, port, *, name: str = "device", timeout: float = 1.0, retries: int = 3,
                 alive: Callable[[], str | None] | None = None):
        self.port = port
        self.name = name
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.alive = alive
        self.parser = P.FrameParser()
        self.seq = 0
        self.info_cache: dict | None = None
        self.last_infer_count: int | None = None
        self.stats = {"requests": 0, "retries": 0, "crc_errors": 0, "retry_reasons": {}}

    # ------------------------------------------------------------ plumbing
    def close(self) -> None:
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 - closing a dead port must not mask the real error
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except Exception as e:  # SerialException, OSError, SerialTimeoutException
            self._raise_if_dead()
            raise EdgevizError(f"{self.name}: write failed ({_one_line(e)}); the device was unplugged or "
                               f"reset, or the emulator stopped: reconnect and retry") from None

    def _read_some(self, wait: float) -> bytes:
        # read(1) waits up to `wait`; then whatever else is already there, without waiting
        try:
            self._set_timeout(max(0.0, wait))
            first = self.port.read(1)
            if not first:
                return first
            self._set_timeout(0)
            return first + self.port.read(65536)
        except Exception as e:
            self._raise_if_dead()
            raise EdgevizError(f"{self.name}: connection lost ({_one_line(e)}); the device was unplugged or "
                               f"reset, or the emulator stopped: reconnect and retry") from None

    def _raise_if_dead(self, grace: float = 1.0) -> None:
        """On a broken link, say why if the device is known dead (its process may take a moment to exit)."""
        if self.alive is None:
            return
        end = time.monotonic() + grace
        while True:
            why = self.alive()
            if why:
                raise EdgevizError(f"{self.name}: {why}") from None
            if time.monotonic() >= end:
                return
            time.sleep(0.05)

    def _set_timeout(self, t: float) -> None:
        if self.port.timeout != t:          # a real serial port reconfigures termios on every set
            self.port.timeout = t

    def _await(self, seqs: set[int], deadline: float) -> P.Frame | None | str:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = self._read_some(min(left, 0.25))
            if data:
                before = self.parser.crc_errors
                frames = self.parser.feed(data)
                damaged = self.parser.crc_errors - before
                self.stats["crc_errors"] += damaged
                for f in frames:
                    if f.seq in seqs and f.command & P.REPLY_FLAG:
                        # frames queued behind it are stale (another seq) or duplicates: drop them
                        return f
                if damaged and not self.parser.pending():
                    return DAMAGED      # most likely our reply, hit by noise: ask again now
            else:
                self._raise_if_dead(grace=0)

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        return self.seq

    def request(self, command: int, payload: bytes = b"", timeout: float | None = None,
                unknown_ok: bool = False) -> bytes | None:
        """Send one request, return the reply payload (retrying lost/damaged frames).

        Every attempt gets a new sequence number; a reply to any attempt of this request answers it
        (they carry the same request), anything else is stale and ignored. unknown_ok: None when the
        firmware does not know the command (an optional one), instead of an error."""
        timeout = self.timeout if timeout is None else float(timeout)
        cname = CMD_NAMES.get(command, f"0x{command:02x}")
        self.stats["requests"] += 1
        skipped0 = self.parser.skipped
        seqs: set[int] = set()
        last = "no reply"
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += 1
                reasons = self.stats["retry_reasons"]
                reasons[last] = reasons.get(last, 0) + 1
            seq = self._next_seq()
            seqs.add(seq)
            self._write(P.encode_frame(command, seq, payload))
            reply = self._await(seqs, time.monotonic() + timeout)
            if reply is None:
                last = f"no reply within {timeout:g} s"
                continue
            if reply is DAMAGED:
                last = "reply damaged (CRC error)"
                continue
            if reply.version != P.PROTOCOL_VERSION:
                raise EdgevizError(f"{self.name} speaks protocol v{reply.version}, this edgeviz speaks "
                                   f"v{P.PROTOCOL_VERSION}: reflash the firmware with this edgeviz version")
            if reply.command == P.CMD_ERROR | P.REPLY_FLAG:
                try:
                    code, _cmd, detail = P.parse_error(reply.payload)
                except ValueError:
                    last = "malformed ERROR reply"
                    continue
                if code in P.RETRYABLE_ERRORS:
                    last = f"device reported {P.ERRORS[code]}"
                    continue
                if code == P.ERR_UNKNOWN_CMD and unknown_ok:
                    return None
                if code == P.ERR_NO_INFERENCE:
                    raise EdgevizError(f"{self.name} has run no inference since it booted (it was reset?): "
                                       f"run INFER before PROFILE")
                raise EdgevizError(f"{self.name} rejected {cname}: {P.ERRORS.get(code, f'error {code}')}; "
                                   f"reflash the firmware with this edgeviz version")
            if reply.command != command | P.REPLY_FLAG:
                last = f"reply to the wrong command (0x{reply.command:02x})"
                continue
            return reply.payload
        garbage = self.parser.skipped - skipped0
        hint = ("the device sends bytes that are not edgeviz frames: wrong baud rate, another program, or "
                "not edgeviz firmware (flash it)" if garbage > 64 else
                "check that the board runs edgeviz firmware and the port is right, then reset it")
        raise EdgevizError(f"{self.name}: {cname} failed after {self.retries + 1} attempts ({last}); {hint}")

    # ------------------------------------------------------------ commands
    def info(self) -> dict:
        payload = self.request(P.CMD_INFO)
        try:
            self.info_cache = P.parse_info(payload)
        except ValueError as e:
            raise EdgevizError(f"{self.name}: bad INFO reply ({e}); reflash the firmware with this edgeviz version") from None
        return self.info_cache

    def infer(self, data: bytes, timeout: float | None = None) -> tuple[bytes, int]:
        """Run one inference: returns (int8 output bytes, cycles or instructions)."""
        info = self.info_cache or self.info()
        if len(data) != info["input_bytes"]:
            raise EdgevizError(f"input has {len(data)} bytes, the model on {self.name} takes {info['input_bytes']}")
        payload = self.request(P.CMD_INFER, bytes(data), timeout)
        try:
            count_since_boot, count, out = P.parse_infer_reply(payload, info["output_bytes"])
        except ValueError as e:
            raise EdgevizError(f"{self.name}: bad INFER reply ({e}); reflash the firmware with this edgeviz version") from None
        self._check_counter(count_since_boot, strictly_more=True)
        return out, count

    def profile(self) -> tuple[int, list[int]]:
        """Per-layer counts of the last inference: (total, [per layer])."""
        payload = self.request(P.CMD_PROFILE)
        try:
            count_since_boot, total, layers = P.parse_profile_reply(payload)
        except ValueError as e:
            raise EdgevizError(f"{self.name}: bad PROFILE reply ({e}); reflash the firmware with this edgeviz version") from None
        self._check_counter(count_since_boot, strictly_more=False)
        return total, layers

    def parts(self) -> list[dict] | None:
        """The last inference's part profile per layer ({part: count, ..., "bound": count}), or None
        from firmware built without it (kernels/ev_parts.h)."""
        payload = self.request(P.CMD_PARTS, unknown_ok=True)
        if payload is None:
            return None
        try:
            count_since_boot, layers = P.parse_parts_reply(payload)
        except ValueError as e:
            raise EdgevizError(f"{self.name}: bad PARTS reply ({e}); rebuild the part-profile image with this "
                               f"edgeviz version") from None
        self._check_counter(count_since_boot, strictly_more=False)
        return layers

    def reset(self, settle: float = 5.0) -> dict:
        """Reset the device and wait until it answers INFO again (within settle seconds)."""
        self.request(P.CMD_RESET)
        self.last_infer_count = 0
        deadline = time.monotonic() + settle
        time.sleep(0.05)
        while True:
            try:
                saved, self.retries = self.retries, 0
                try:
                    return self.info()
                finally:
                    self.retries = saved
            except EdgevizError:
                if time.monotonic() >= deadline:
                    raise EdgevizError(f"{self.name} did not come back within {settle:g} s after RESET; "
                                       f"power-cycle it and retry") from None

    def _check_counter(self, count: int, strictly_more: bool) -> None:
        last = self.last_infer_count
        if last is not None and (count < last or (strictly_more and count == last)):
            self.last_infer_count = None
            raise EdgevizError(f"{self.name} reset during the run (its inference counter went from {last} to "
                               f"{count}): check power and cabling, then run again")
        self.last_infer_count = count


def _one_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__
