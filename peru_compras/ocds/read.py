"""OCDS in: a release or record package, a JSON array of releases, or JSON Lines of releases (or of packages)
read whole (bounded) and grouped by ``ocid``; each group is mapped by :mod:`.mapping` into manifest rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import safejson
from ..errors import InvalidInput, InvalidJSON
from ..rows import Row
from .clean import _list, _obj
from .mapping import _Process, _Release

MAX_OCDS_BYTES = 64 * 1024 * 1024  # an OCDS manifest is read whole


@dataclass(frozen=True)
class _Unreadable:
    reason: str


def _load(text: str, source: str) -> Any:
    """Bounded JSON (:func:`.safejson.loads`: size, nesting, repeated keys, NaN); numbers as Decimal."""
    return safejson.loads(text, source=source, max_bytes=MAX_OCDS_BYTES, parse_float=Decimal)


def _releases(path: Path) -> tuple[list[_Release], list[tuple[int, str]]]:
    """Every release in the file, numbered in file order, and the lines that could not be read."""
    try:
        if path.stat().st_size > MAX_OCDS_BYTES:
            raise InvalidInput(f"manifest {str(path)!r} is {path.stat().st_size} bytes, over the limit of "
                               f"{MAX_OCDS_BYTES} for an OCDS file", hint="split it into several packages")
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"cannot read manifest {str(path)!r}: {exc.strerror}", hint="check the path") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"manifest {str(path)!r} is not UTF-8 (byte {exc.start})",
                           hint="convert it to UTF-8") from None
    documents: list[tuple[int | None, Any]] = []
    broken: list[tuple[int, str]] = []
    try:
        documents.append((None, _load(text, f"manifest {str(path)!r}")))
    except InvalidJSON as whole:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        if len(lines) <= 1:
            raise InvalidInput(str(whole), hint="fix the JSON, or give one release per line (JSON Lines)") from None
        for number, content in lines:
            try:
                documents.append((number, _load(content, f"line {number}")))
            except InvalidJSON as exc:
                if number == lines[0][0]:
                    raise InvalidInput(f"manifest {str(path)!r} is neither JSON nor JSON Lines: {exc}",
                                       hint="fix the JSON") from None
                documents.append((number, _Unreadable(str(exc))))
    releases: list[_Release] = []

    def refuse(reason: str) -> None:
        broken.append((len(releases) + len(broken) + 1, reason))

    def add(value: Any, line: int | None) -> None:
        if isinstance(value, dict):
            releases.append(_Release(len(releases) + len(broken) + 1, value))
        else:
            where = f"line {line}" if line else f"release {len(releases) + len(broken) + 1}"
            refuse(f"{where} is not a JSON object (an OCDS release)")

    def add_record(record: dict[str, Any], line: int | None) -> None:
        compiled = record.get("compiledRelease")
        if isinstance(compiled, dict):
            add(compiled, line)
            return
        linked = _list(record.get("releases"))
        if not linked:
            refuse(f"record {record.get('ocid')!r} has neither a compiledRelease nor releases")
        elif all(isinstance(r, dict) and "url" in r and "ocid" not in r for r in linked):
            refuse(f"record {record.get('ocid')!r} has only linked releases (urls) and no compiledRelease: "
                   "give the releases themselves or the compiled release")
            return
        for value in linked:
            add(value, line)

    for line, document in documents:
        if isinstance(document, _Unreadable):
            refuse(document.reason)
        elif isinstance(document, list):
            for value in document:
                add(value, line)
        elif isinstance(document, dict) and "ocid" in document and ("compiledRelease" in document
                                                                 or isinstance(document.get("releases"), list)):
            add_record(document, line)
        elif isinstance(document, dict) and ("releases" in document or "records" in document):
            for value in _list(document.get("releases")):
                add(value, line)
            for record in _list(document.get("records")):
                add_record(_obj(record), line)
        else:
            add(document, line)
    return releases, broken


def manifest_rows(path: Path, *, pdf_dir: Path | None = None) -> Iterator[Row]:
    """The rows of an OCDS manifest (see the module docstring), in release order."""
    releases, broken = _releases(path)
    groups: dict[str, list[_Release]] = {}
    for release in releases:
        groups.setdefault(release.ocid or f"\x00{release.number}", []).append(release)
    rows: list[Row] = [Row(number, None, None, error) for number, error in broken]
    for group in groups.values():
        rows.extend(_Process(group, pdf_dir).rows())
    rows.sort(key=lambda row: row.number)
    yield from rows
