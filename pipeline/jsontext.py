"""`json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8")`, built in pieces (a lone
surrogate, which UTF-8 cannot hold, written as its JSON escape).

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
            out += _utf8("".join(pieces))
            pieces.clear()
    out += _utf8("".join(pieces))
    return bytes(out)


def _utf8(text: str) -> bytes:
    # A lone surrogate (a name or header that was not text) only ever sits inside a JSON string:
    # written as its \uXXXX escape, the document stays valid UTF-8 JSON instead of failing.
    return text.encode("utf-8", "backslashreplace")
