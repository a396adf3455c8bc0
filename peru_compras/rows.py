"""One manifest row: the unit a batch registers, whatever format it was read from (JSON Lines, CSV, OCDS).

Its own module so that :mod:`.manifest` (which reads every format) and :mod:`.ocds.read` (which maps OCDS
releases to rows) both use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Row:
    """One manifest row: its number (1-based), the record and the PDF path it names (or why not).

    `render`: no PDF is given, :func:`~peru_compras.render.render_order` draws it. `skipped`: nothing to
    register and nothing wrong (`error` says why). `source`: where an OCDS row came from, put on its lines."""

    number: int
    record: dict[str, Any] | None
    pdf: Path | None
    error: str | None = None
    render: bool = False
    skipped: bool = False
    source: dict[str, Any] | None = None
