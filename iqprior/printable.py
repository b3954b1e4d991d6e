"""Text read from files, made safe to print on a terminal.

Metadata and names inside files (an ONNX file's ``iqprior.adapter``, a
config's option values, a path) are the file author's text. Printed raw, an
escape sequence in them (``ESC [ 2 J``, an OSC 8 hyperlink, a title change) or
a bidirectional override would act on the user's terminal. :func:`printable`
replaces every control and format character by its ``\\x..`` / ``\\u....``
escape and cuts the text to a length.
"""
from __future__ import annotations

import unicodedata

__all__ = ["printable"]


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: object, limit: int = 200) -> str:
    """``text`` with control (Cc), format (Cf: bidi overrides...), separator (Zl, Zp) and unassigned
    characters escaped, at most ``limit`` characters (``...`` appended when cut); newlines are escaped too."""
    s = str(text)
    out = "".join(_escape(c) if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cn", "Cs") else c
                  for c in s[: limit + 1])
    return out[:limit] + "..." if len(out) > limit or len(s) > limit else out
