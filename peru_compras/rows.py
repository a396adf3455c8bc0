"""One manifest row: the unit a batch registers, whatever format it was read from (JSON Lines, CSV, OCDS);
and a JSON Lines row not read yet (:class:`Line`), which a batch's worker reads.

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

    def problem(self) -> str | None:
        """Why the row cannot be prepared as it was read (its error; no record; no PDF and none to draw), or None."""
        if self.error or self.record is None or (self.pdf is None and not self.render):
            return self.error or "unreadable row"
        return None

    @property
    def order_number_hint(self) -> str:
        """The order number its record gives, as text ('' if none): what names the row when it is refused."""
        return str((self.record or {}).get("order_number", "") or "")


@dataclass(frozen=True, slots=True)
class Line:
    """A JSON Lines manifest's row as its text, not read yet: :func:`peru_compras.manifest.read_line` makes
    it a :class:`Row`. A batch's workers read their own lines; the batch process only splits the file.

    `base`: the folder its ``pdf`` is relative to; `root`: that folder resolved (None: it could not be, and
    the row then says why)."""

    number: int
    text: str
    base: Path
    root: Path | None

    def __reduce__(self) -> tuple[type[Line], tuple[int, str, Path, Path | None]]:
        return Line, (self.number, self.text, self.base, self.root)  # (dataclasses' pickling: 2.0 -> 0.6 µs)
