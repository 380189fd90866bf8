"""`json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8")`, built in pieces.

The run report of a 60,000-row night is 20 MB of UTF-8. Joined as one text first and then
encoded, it is held twice (the text in UCS-2 is larger than the bytes): about 100 MB above the
rest of the run at its end. Here the standard encoder's own chunks are encoded a few thousand at
a time, so the same bytes are built with only the bytes in memory. tests/test_jsontext.py
compares the two.
"""

from __future__ import annotations

import json
from typing import Any

_FLUSH = 8192


def dumps(value: Any) -> str:
    """json.dumps(value, ensure_ascii=False, indent=2)."""
    return json.dumps(value, ensure_ascii=False, indent=2)


def dumps_utf8(value: Any) -> bytes:
    """json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8"), without the text whole."""
    encoder = json.JSONEncoder(ensure_ascii=False, indent=2)  # json.dumps's encoder for these options
    out = bytearray()
    pieces: list[str] = []
    for chunk in encoder.iterencode(value):
        pieces.append(chunk)
        if len(pieces) >= _FLUSH:
            out += "".join(pieces).encode("utf-8")
            pieces.clear()
    out += "".join(pieces).encode("utf-8")
    return bytes(out)
