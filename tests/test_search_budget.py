"""Budget strings: '320KB' and friends (1 KB = 1024 B); garbage gives a one-line EdgevizError."""
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from edgeviz.errors import EdgevizError
from edgeviz.search.budget import format_size, parse_size


@pytest.mark.parametrize("text", ["320KB", "320KiB", "320kB", "320kb", "320K", "0.3125MB", "327680", "327680B",
                                  " 320 KB ", "0.3125MiB", 327680])
def test_320k_forms(text):
    assert parse_size(text) == 327680


@pytest.mark.parametrize("text", ["", "KB", "320XB", "-5KB", "0", "0KB", "1.5.2MB", "320 K B", "0.1KB", "1e3",
                                  "nan", "inf", "320KBB", "３２０KB", None, 1.5, True])
def test_garbage(text):
    with pytest.raises(EdgevizError) as e:
        parse_size(text)
    msg = str(e.value)
    assert "\n" not in msg and "accepted forms" in msg


@given(st.integers(min_value=1, max_value=10**12))
def test_plain_bytes(n):
    assert parse_size(str(n)) == n
    assert parse_size(f"{n}B") == n


@given(st.integers(min_value=1, max_value=10**7), st.sampled_from(["K", "KB", "kB", "KiB", "kib", "k"]))
def test_kilobytes_are_1024(n, unit):
    assert parse_size(f"{n}{unit}") == n * 1024


@given(st.integers(min_value=1, max_value=1024 * 4096))
def test_fractional_megabytes(kib):
    # kib KiB written as a decimal number of MB is exact when kib * 1024 / 2**20 has a finite decimal form
    mb = Decimal(kib) / Decimal(1024)
    assert parse_size(f"{mb}MB") == kib * 1024


@given(st.text(max_size=12))
def test_fuzz_never_crashes(text):
    try:
        v = parse_size(text)
    except EdgevizError as e:
        assert "\n" not in str(e)
    else:
        assert isinstance(v, int) and v > 0


def test_format_size():
    assert format_size(327680) == "320.0 KB"
    assert format_size(1048576) == "1.00 MB"
    assert format_size(12) == "12 B"
