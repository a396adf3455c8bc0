"""Cleaning published OCDS values: JSON shapes, ids, text (white space, mojibake), numbers, dates, and the
file name of an order's PDF."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any


class _Refusal(Exception):
    """A candidate order that cannot become a record; the message is the reason."""


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _ident(value: Any) -> str | None:
    """An OCDS id (string or number: ``440`` and ``440.0`` are "440") as text, or None."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, float):
        value = Decimal(repr(value)) if value == value and abs(value) < 1e40 else value
    if isinstance(value, Decimal) and value.is_finite() and value.adjusted() < 40 and value == int(value):
        value = int(value)
    text = str(value).strip()
    return text or None


# -- text ----------------------------------------------------------------------------------------------

_MOJIBAKE = re.compile("[\u00c2\u00c3][\u0080-\u00bf\u2018-\u203a\u0152\u0153\u0160\u0161\u0178\u017d\u017e"
                       "\u0192\u02c6\u02dc\u20ac\u2122]|\u00e2\u20ac")


def _misread_byte(char: str) -> int:
    code = ord(char)
    if code < 256:
        return code
    encoded = char.encode("cp1252")  # UnicodeEncodeError (a ValueError) when it was not a misread byte
    return encoded[0]


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 text misread as Latin-1 or Windows-1252 ("PerÃº" → "Perú"), at most twice; text that does
    not turn back into strict UTF-8 is returned as it is."""
    for _ in range(2):
        if not _MOJIBAKE.search(text):
            break
        try:
            fixed = bytes(_misread_byte(char) for char in text).decode("utf-8")
        except ValueError:
            break
        if any(unicodedata.category(char) == "Cc" and char not in "\t\n\r" for char in fixed):
            break
        text = fixed
    return text


def _text(value: Any, notes: list[str] | None = None, where: str = "") -> str | None:
    """Text for a record field: white space collapsed, mojibake repaired (noted); None when empty."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    raw = str(value)
    text = " ".join(repair_mojibake(raw).split())
    if notes is not None and text != " ".join(raw.split()):
        notes.append(f"{where}: repaired mojibake {' '.join(raw.split())!r} → {text!r}")
    return text or None


def _number(value: Any) -> Any:
    """A JSON number as the decimal string the record wants; other values are passed on for the record's
    rules to judge (a string is only trimmed)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):  # (huge exponents stay as written: the record's rules refuse them)
        return format(value, "f") if value.is_finite() and abs(value.adjusted()) < 40 else str(value)
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str):
        return value.strip()
    return value


def _date(value: Any) -> str | None:
    """The date part (YYYY-MM-DD) of an OCDS date-time, or None."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        return None


def _when(value: Any) -> datetime:
    """A release date as a sortable instant; undated or unreadable releases sort first."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("z", "Z"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.min.replace(tzinfo=UTC)


def safe_name(order_number: str) -> str:
    """The file name of an order's PDF: runs of characters outside ``A-Za-z0-9._-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", order_number).strip("._") + ".pdf"


def find_pdf(order_number: str, pdf_dir: Path | None) -> Path | None:
    """``<pdf_dir>/<order number>.pdf`` (when that is a plain file name), else ``<pdf_dir>/<safe name>``."""
    if pdf_dir is None:
        return None
    names = [safe_name(order_number)]
    if not re.search(r"[/\\\x00]", order_number) and not order_number.startswith("."):
        names.insert(0, order_number + ".pdf")
    for name in names:
        candidate = pdf_dir / name
        if candidate.is_file():
            return candidate
    return None
