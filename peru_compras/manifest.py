"""Manifests: the rows of a ``register-batch`` input, streamed, whatever its format.

JSON Lines (one record per line, plus ``pdf``) or CSV (a column per field: ``entity_name``, ``entity_ruc``,
``total_amount``, ``delivery_place``, … or a JSON object in ``entity``; ``items`` as JSON). Rows are streamed:
memory stays bounded whatever the manifest's size. OCDS manifests (release or record packages, JSON Lines of
releases) are read whole and mapped by :mod:`.ocds.read`: their rows may carry no PDF (``render``: the order
PDF is drawn), or nothing to register (``skipped``: a line with the reason), and a ``source`` (ocid, release,
contract or award) that goes on each of their output lines. The kind is sniffed from the name and the first
bytes (:func:`manifest_kind`); :func:`count_rows` counts lines for a progress bar without parsing; a row's
``pdf`` must name a file inside the manifest's folder (:func:`pdf_inside`).
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InvalidInput
from .rows import Line, Row

__all__ = ["MAX_LINE", "Line", "Row", "count_rows", "manifest_kind", "pdf_inside", "read_line", "read_lines",
           "read_manifest"]

_NESTED = ("entity", "buyer", "supplier", "total", "delivery")
_INTS = {"delivery.term_days"}
#: a manifest line (one order) at most: the record's own limit is far below
MAX_LINE = 1 << 20


def _csv_record(row: dict[str, str], number: int) -> dict[str, Any]:
    """A CSV row as a record; InvalidInput naming the row and column when a cell cannot be read."""
    from .safejson import loads

    record: dict[str, Any] = {}
    for column, raw in row.items():
        if column is None or raw is None or raw.strip() == "":
            continue
        name = column.strip()
        value: Any = raw.strip()
        for sep in (".", "_"):
            head, _, tail = name.partition(sep)
            if head in _NESTED and tail:
                if f"{head}.{tail}" in _INTS and value.isascii() and value.isdigit() and len(value) <= 9:
                    value = int(value)  # else the string goes on, and the record's rules name it
                record.setdefault(head, {})[tail] = value
                break
        else:
            if name in ("items", *_NESTED) and value.startswith(("[", "{")):
                value = loads(value, source=f"row {number}, column {name[:40]!r}", max_bytes=1 << 20)
            record[name] = value
    return record


def _csv_rows(handle: io.TextIOBase) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(row number, record or None, why not): a bad row is reported on its own and the next ones read."""
    reader = csv.DictReader(handle)
    number = 0
    while True:
        number += 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield number, None, f"row {number} is not CSV: {exc}"
            continue
        if _not_utf8("".join(value for value in row.values() if isinstance(value, str))):
            yield number, None, f"row {number} is not UTF-8 text"
            continue
        try:
            yield number, _csv_record(row, number), None
        except InvalidInput as exc:
            yield number, None, exc.message


def _not_utf8(text: str) -> bool:
    """The manifest is read with surrogateescape: a byte that is not UTF-8 shows as a lone surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def pdf_inside(base: Path, name: str, *, root: Path | None = None) -> tuple[Path | None, str | None]:
    """The file a manifest's `pdf` names, resolved (symlinks followed) inside `base`; or why not. `root`:
    `base` already resolved (a manifest resolves its folder once, not once per row).

    Absolute paths, ``..`` and symlinks leading out of `base` are refused with one message that does not
    depend on whether the target exists, so a manifest cannot probe the machine's other paths."""
    target: Path | None = None
    try:
        root = root or base.resolve()
        plain = _plainly_inside(root, name)
        if plain is not None:  # inside by construction (10 of a row's 25 us went to proving it again)
            return plain, None
        target = (base / name).resolve() if not Path(name).is_absolute() else None
    except (OSError, ValueError, RuntimeError):
        pass
    if target is None or root is None or not target.is_relative_to(root) or target == root:
        return None, (f"pdf {name[:80]!r} is not a file inside {str(base)!r} — give each `pdf` relative to the "
                      "manifest's folder (or --pdf-dir), without '..' or links that lead out of it")
    return target, None


def _plainly_inside(root: Path, name: str) -> Path | None:
    """``root/name`` when resolving it could change nothing: no part of `name` is empty, ``.``, ``..`` or a
    symbolic link (each is lstat-ed; a missing one ends the walk, as :meth:`Path.resolve` keeps the rest as
    written). None: resolve it in full. A quarter of the main process's time per row went to resolving."""
    parts = name.split("/")
    if "\x00" in name or any(part in ("", ".", "..") for part in parts):
        return None
    path = str(root)
    for part in parts:
        path = os.path.join(path, part)
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return None
        except OSError:
            break
    return Path(f"{root}/{name}")


def manifest_kind(path: Path) -> str:
    """``csv``, ``ocds`` (a package, or releases: see :mod:`.ocds`) or ``jsonl``, from the name and first bytes."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise InvalidInput(f"cannot read manifest {str(path)!r}: {exc.strerror}", hint="check the path") from None
    return _kind(path, head)


def _kind(path: Path, head: str) -> str:
    if path.suffix.lower() == ".csv" or (not head.lstrip().startswith(("{", "[")) and "," in head.split("\n")[0]):
        return "csv"
    return "ocds" if is_ocds(head) else "jsonl"


#: a key that only OCDS puts at the start of a manifest (here, not in :mod:`.ocds`: sniffing a JSON Lines or CSV
#: manifest then loads none of the OCDS modules, 10 ms of every register-batch's start)
OCDS_KEYS = re.compile(r'(?<!\\)"(releases|records|ocid)"\s*:')


def is_ocds(head: str) -> bool:
    """Whether the start of a (non-CSV) manifest is OCDS: a package's ``releases``/``records`` or a release's
    ``ocid`` as a key."""
    return bool(OCDS_KEYS.search(head))


def read_manifest(path: Path, *, pdf_dir: Path | None = None) -> Iterator[Row]:
    """Stream the rows of a JSON Lines or CSV manifest; an OCDS manifest is mapped by :mod:`.ocds`."""
    for row in read_lines(path, pdf_dir=pdf_dir):
        yield read_line(row) if isinstance(row, Line) else row


def read_lines(path: Path, *, pdf_dir: Path | None = None) -> Iterator[Row | Line]:
    """:func:`read_manifest`'s rows, those of a JSON Lines manifest as their :class:`~peru_compras.rows.Line`
    (:func:`read_line` reads one): a batch's workers read them, not the batch process (which, once the
    workers prepare a row in ~0.35 ms, is what a batch waits for: reading a line was 0.06 ms of its ~0.3)."""
    try:
        handle = path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        raise InvalidInput(f"cannot read manifest {str(path)!r}: {exc.strerror}", hint="check the path") from None
    base = pdf_dir or path.parent
    with handle:
        head = handle.read(4096)
        handle.seek(0)
        kind = _kind(path, head)
        if kind == "ocds":
            from .ocds.read import manifest_rows

            for row in manifest_rows(path, pdf_dir=pdf_dir):
                if row.pdf is not None and pdf_dir is not None:  # <pdf-dir>/<order number>.pdf: no links out
                    inside, refusal = pdf_inside(pdf_dir, row.pdf.name)
                    if inside is None:
                        row = Row(row.number, row.record, None, refusal, source=row.source)
                yield row
            return
        try:
            root: Path | None = base.resolve()
        except (OSError, ValueError, RuntimeError):
            root = None  # each row then says why
        if kind == "jsonl":
            for number, text in enumerate(handle, start=1):
                if len(text) > MAX_LINE:  # refused here (its own line), not copied to a worker to be refused there
                    yield read_line(Line(number, text, base, root))
                elif text.strip():
                    yield Line(number, text, base, root)
            return
        for number, record, error in _csv_rows(handle):
            yield Row(number, None, None, error) if record is None else _with_pdf(number, record, base, root)


def read_line(line: Line) -> Row:
    """One JSON Lines row read: its record, and the PDF it names inside the manifest's folder (or why not)."""
    from .safejson import loads

    number = line.number
    if _not_utf8(line.text):
        return Row(number, None, None, f"line {number} is not UTF-8 text")
    try:
        record = loads(line.text, source=f"line {number}", max_bytes=MAX_LINE)
    except InvalidInput as exc:
        return Row(number, None, None, exc.message)
    if not isinstance(record, dict):
        return Row(number, None, None, f"line {number} is not a JSON object")
    return _with_pdf(number, record, line.base, line.root)


def _with_pdf(number: int, record: dict[str, Any], base: Path, root: Path | None) -> Row:
    pdf = record.pop("pdf", None)
    if not isinstance(pdf, str) or not pdf:
        return Row(number, record, None, "row has no `pdf` (the PDF's path)")
    inside, refusal = pdf_inside(base, pdf, root=root)
    return Row(number, record, inside, refusal)


def count_rows(path: Path) -> int:
    """Rows in a manifest (for the progress bar's ETA), counted without parsing."""
    with path.open("rb") as handle:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return max(lines - (1 if path.suffix.lower() == ".csv" else 0), 0)
