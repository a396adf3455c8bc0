"""Text in PDF content streams and in ReportLab drawings: WinAnsi (the standard fonts' encoding) and
Helvetica's widths. Shared by the stamp (:mod:`peru_compras.pdf.stamp`) and :mod:`peru_compras.render`.

Spanish is drawn as written; a character outside WinAnsi loses its accents (NFKD, combining marks
dropped), white space becomes a space, anything else that still does not fit becomes '?'.
"""

from __future__ import annotations

import unicodedata


def winansi(text: str) -> str:
    """`text` with the characters the standard PDF fonts (WinAnsiEncoding) cannot draw replaced."""
    if _fits(text):
        return text
    out = []
    for char in text:
        if _fits(char):
            out.append(char)
            continue
        plain = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        if not plain and unicodedata.combining(char):
            continue  # a combining mark on its own: the letter before it keeps its place, without the accent
        out.append(plain if plain and _fits(plain) else " " if char.isspace() else "?")
    return "".join(out)


def _fits(text: str) -> bool:
    try:
        text.encode("cp1252")
        return True
    except UnicodeEncodeError:
        return False


def pdf_text(text: str) -> bytes:
    """`text` as a PDF literal string in WinAnsiEncoding (see :func:`winansi`)."""
    raw = winansi(text).encode("cp1252")
    raw = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    raw = raw.replace(b"\r", b"\\r").replace(b"\n", b"\\n")
    return b"(" + raw + b")"


def num(value: float) -> str:
    """A number for a content stream: at most 3 decimals, no trailing zeros, never "-0"."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """The width in points of `text` in Helvetica (or Helvetica-Bold) at `size`."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return float(stringWidth(text, "Helvetica-Bold" if bold else "Helvetica", size))


def fit_text(text: str, size: float, limit: float, *, bold: bool = False) -> str:
    """`text` shortened with an ellipsis to fit `limit` points."""
    if text_width(text, size, bold=bold) <= limit:
        return text
    while text and text_width(text + "…", size, bold=bold) > limit:
        text = text[:-1]
    return text.rstrip() + "…"


def wrap_text(text: str, size: float, limit: float) -> list[str]:
    """`text` broken at spaces into lines of at most `limit` points (a longer word keeps its own line)."""
    lines, current = [], ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and text_width(candidate, size) > limit:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current] if current else lines
