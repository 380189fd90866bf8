"""`json.dumps(value, ensure_ascii=False, indent=2)`, the same text, faster.

With `indent`, the standard library serialises in pure Python (its C encoder only writes compact
JSON); the run report of a 60,000-row night took a second that way. Here every string goes
through the C string encoder and the layout is joined in one pass. tests/test_jsontext.py
compares the two on the run reports the tests write and on values chosen for the edge cases.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring  # type: ignore[attr-defined]  # the C one when available
from typing import Any

_float_repr = float.__repr__


def _float(x: float) -> str:
    if x != x:
        return "NaN"
    if x == float("inf"):
        return "Infinity"
    if x == -float("inf"):
        return "-Infinity"
    return _float_repr(x)


def dumps(value: Any) -> str:
    """The text of json.dumps(value, ensure_ascii=False, indent=2) for JSON-like values (dict
    with str keys, list, tuple, str, int, float, bool, None); anything else goes through json."""
    out = _Out()
    _encode(value, out, "\n")
    return out.text()


def dumps_utf8(value: Any) -> bytes:
    """dumps(value) encoded as UTF-8, built in pieces: memory holds the bytes, not the text as
    well (a 60,000-row report is 14 MB of bytes, and would be a 30 MB text next to them)."""
    out = _Out(utf8=True)
    _encode(value, out, "\n")
    return out.utf8()


class _Out(list[str]):
    """The pieces written so far; with utf8, flushed as UTF-8 every few thousand pieces."""

    FLUSH = 8192

    def __init__(self, *, utf8: bool = False) -> None:
        super().__init__()
        self.encoded: bytearray | None = bytearray() if utf8 else None

    def append(self, piece: str) -> None:
        super().append(piece)
        if self.encoded is not None and len(self) >= self.FLUSH:
            self.encoded += "".join(self).encode("utf-8")
            self.clear()

    def text(self) -> str:
        return "".join(self)

    def utf8(self) -> bytes:
        assert self.encoded is not None
        self.encoded += "".join(self).encode("utf-8")
        self.clear()
        return bytes(self.encoded)


def _encode(value: Any, out: _Out, newline: str) -> None:
    if isinstance(value, str):
        out.append(encode_basestring(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        first = True
        for key in value:
            if not isinstance(key, str):
                out.append(json.dumps(value, ensure_ascii=False, indent=2).replace("\n", newline))
                return
        out.append("{")
        for key, item in value.items():
            out.append(inner if first else "," + inner)
            first = False
            out.append(encode_basestring(key))
            out.append(": ")
            _encode(item, out, inner)
        out.append(newline + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        out.append("[")
        first = True
        for item in value:
            out.append(inner if first else "," + inner)
            first = False
            _encode(item, out, inner)
        out.append(newline + "]")
    else:
        out.append(json.dumps(value, ensure_ascii=False, indent=2).replace("\n", newline))
