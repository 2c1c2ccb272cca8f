"""Write firmware/runtime/ev_protocol.h from edgeviz/runner/protocol.py.

    python -m edgeviz.runner.genheader          # write the header
    python -m edgeviz.runner.genheader --check  # exit 1 if the checked-in header is stale
"""
from __future__ import annotations

import sys

from .protocol import HEADER_PATH, render_c_header


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render_c_header()
    if argv == ["--check"]:
        current = HEADER_PATH.read_text() if HEADER_PATH.is_file() else ""
        if current != text:
            print(f"{HEADER_PATH} is stale: run python -m edgeviz.runner.genheader", file=sys.stderr)
            return 1
        return 0
    HEADER_PATH.parent.mkdir(parents=True, exist_ok=True)
    HEADER_PATH.write_text(text)
    print(f"wrote {HEADER_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
