"""The serial protocol: framing round trip, the C header matches the Python definition, and a
fuzzed parser never crashes, never invents frames, and finds frames hidden in garbage."""
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from edgeviz.runner import protocol as P


def test_round_trip():
    for cmd, seq, payload in [(P.CMD_INFO, 0, b""), (P.CMD_INFER, 65535, bytes(range(256)) * 3),
                              (P.CMD_ERROR | P.REPLY_FLAG, 7, P.ERROR.pack(P.ERR_BAD_CRC, 2, 0))]:
        frame = P.encode_frame(cmd, seq, payload)
        assert len(frame) == P.HEADER_LEN + len(payload) + P.CRC_LEN
        assert P.FrameParser().feed(frame) == [P.Frame(P.PROTOCOL_VERSION, cmd, seq, payload)]


def test_frame_bytes_are_pinned():
    # a change here changes the wire format: bump PROTOCOL_VERSION
    assert P.encode_frame(P.CMD_INFO, 0x0102).hex() == "e756010102010000000013c5892d"


def test_byte_by_byte_and_split_feeds():
    frames = [P.encode_frame(P.CMD_INFER, i, bytes([i]) * i) for i in range(20)]
    parser = P.FrameParser()
    got = []
    for b in b"".join(frames):
        got += parser.feed(bytes([b]))
    assert [f.seq for f in got] == list(range(20))
    assert parser.pending() == 0


def test_checked_in_header_matches_python():
    assert P.HEADER_PATH.read_text() == P.render_c_header(), (
        "firmware/runtime/ev_protocol.h is stale: run python -m edgeviz.runner.genheader")


def test_header_constants_agree():
    text = P.HEADER_PATH.read_text()
    defs = {}
    for line in text.splitlines():
        if line.startswith("#define EV_") and len(line.split()) == 3:
            _, name, value = line.split()
            defs[name] = int(value.rstrip("u"), 0)
    assert defs["EV_PROTO_MAGIC0"] == P.MAGIC[0] and defs["EV_PROTO_MAGIC1"] == P.MAGIC[1]
    assert defs["EV_PROTO_VERSION"] == P.PROTOCOL_VERSION
    assert defs["EV_PROTO_HEADER_LEN"] == P.HEADER_LEN
    assert defs["EV_CMD_INFER"] == P.CMD_INFER and defs["EV_ERR_BAD_CRC"] == P.ERR_BAD_CRC
    assert defs["EV_INFO_LEN"] == P.INFO.size
    assert defs["EV_INFO_OFF_BOARD"] == P.INFO.size - P.BOARD_NAME_LEN


def test_info_payload_round_trip():
    payload = P.INFO.pack(0xFA4E0001, 256, 0, 64, 128, 10, 3, 1, 1, 8, 8, 1, 1, 1, 10, 0.5, 0.25,
                          216000000, P.UNIT_CYCLES, b"stm32f746")
    info = P.parse_info(payload)
    assert info["model_id"] == 0xFA4E0001 and info["timer_unit"] == "cycles"
    assert info["board"] == "stm32f746" and info["input_shape"] == [1, 1, 8, 8]


def test_length_field_is_bounded():
    parser = P.FrameParser(max_payload=100)
    fake = P.MAGIC + struct.pack("<BBHI", 1, 1, 0, 10_000_000)
    real = P.encode_frame(P.CMD_INFO | P.REPLY_FLAG, 5, b"ok")
    assert [f.seq for f in parser.feed(fake + real)] == [5]


def test_false_long_header_does_not_swallow_a_frame():
    # a damaged header claiming 200 payload bytes must not hide the complete frame behind it
    fake = P.MAGIC + struct.pack("<BBHI", 1, 0x82, 9, 200)
    real = P.encode_frame(P.CMD_INFER | P.REPLY_FLAG, 10, b"\x01" * 22)
    assert [f.seq for f in P.FrameParser().feed(fake + real)] == [10]


frames_st = st.lists(st.tuples(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=64)),
                     min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(garbage=st.lists(st.binary(max_size=40), min_size=6, max_size=6), frames=frames_st,
       chunk=st.integers(1, 50))
def test_fuzz_frames_hidden_in_garbage_are_found(garbage, frames, chunk):
    encoded = [P.encode_frame(c, s, p) for c, s, p in frames]
    stream = b"".join(g + f for g, f in zip(garbage, encoded)) + garbage[-1]
    parser = P.FrameParser(max_payload=1024)
    got = []
    for i in range(0, len(stream), chunk):
        got += parser.feed(stream[i:i + chunk])
    want = [P.Frame(P.PROTOCOL_VERSION, c, s, p) for c, s, p in frames]
    # every real frame comes out in order; anything else would need a 2^-32 CRC accident
    assert got == want


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600))
def test_fuzz_garbage_never_crashes_and_stays_bounded(data):
    parser = P.FrameParser(max_payload=256)
    assert parser.feed(data) == [] or all(isinstance(f, P.Frame) for f in parser.feed(b""))
    assert parser.pending() <= P.HEADER_LEN + 256 + P.CRC_LEN


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=80), pos=st.integers(0, 10_000), bit=st.integers(0, 7),
       cut=st.integers(0, 10_000))
def test_fuzz_damaged_frame_is_never_accepted(payload, pos, bit, cut):
    frame = bytearray(P.encode_frame(P.CMD_INFER | P.REPLY_FLAG, 3, payload))
    flipped = bytearray(frame)
    flipped[pos % len(frame)] ^= 1 << bit
    assert P.FrameParser().feed(bytes(flipped)) == []             # CRC-32 catches every 1-bit error
    assert P.FrameParser().feed(bytes(frame[:cut % len(frame)])) == []   # a truncated frame waits
