"""OCDS in and out: Open Contracting Data Standard data as a ``register-batch`` manifest, and the registered
orders as an OCDS 1.1 release package.

**In.** :func:`manifest_rows` reads a release package (``{"releases": [...]}``), a record package
(``{"records": [...]}``: each record's ``compiledRelease``, else its releases merged here), a JSON array of
releases, or JSON Lines of releases (or of packages). Releases are grouped by ``ocid`` and merged simply: in
date order (``release.date``; ties keep file order), later non-null values win field by field for each
contract, award, party (by ``id``) and the tender, and the buyer is the latest release's. Each contract with
items, and each award no contract points to (``awardID``) with items, becomes one order, attributed to the
latest release that has it; every other release gets a line saying why it made none. The record fields come
from the paths in README's "OCDS: import mapping and export" table. Messy data is handled so:

- text (names, descriptions, units, places) keeps its casing; runs of white space become one space; the
  classic mojibake of UTF-8 read as Latin-1/Windows-1252 ("PerÃº") is repaired ("Perú") when the text,
  turned back into the bytes it was misread from, decodes strictly as UTF-8 (so text that is already right,
  like "Perú", is never touched); each repair is listed in the line's ``notes``;
- an identifier without a scheme is a ``PE-RUC`` when it is 11 digits with a valid check digit, and is
  refused otherwise; an organisation ``id`` like ``PE-RUC-20131370998`` stands in for a missing identifier;
- currencies: ISO 4217 codes in any casing; ``S/``, ``S/.``, ``SOL``, ``SOLES``, ``NUEVOS SOLES`` → PEN and
  ``US$``, ``DOLARES``, ``DÓLARES`` → USD (noted); anything else is refused with the value;
- an item without a quantity, a release without a buyer in any release of its ocid, a contract without a
  value, place or term: refused, naming what is missing — nothing is invented.

The PDF of an order is ``<pdf-dir>/<order number>.pdf``, or ``<pdf-dir>/<safe name>.pdf`` where the safe
name replaces every run of characters outside ``A-Z a-z 0-9 . _ -`` with ``_`` and trims leading and trailing
dots and underscores (``OC-2026/15`` → ``OC-2026_15.pdf``; the same name ``peru-compras render`` writes by
default). Without ``--pdf-dir``, or when neither file exists, the order PDF is drawn by :mod:`.render`.

**Out.** :func:`export_package` reads every token from the chain (:func:`token_ids`, then
:meth:`Registry.read`) and builds one release per order; :func:`dumps` writes amounts as the exact decimals
registered. Extensions (documented in README and ``docs/ocds-extension/``): ``Document.integrity`` in the shape
proposed in open-contracting/standard#1725 (``[{"scheme": "sha256", "id": <hex digest>}]``) and the release's
``chainRegistration`` object.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import safejson
from .errors import InvalidInput, InvalidJSON, OrderNotRegistered, UnreadableRecord
from .order import _IDENTIFIER, _LOCAL_SCHEME, MAX_NOTE_CHARS, MAX_NOTES, MX_RFC, PE_RUC, ruc_is_valid

if TYPE_CHECKING:
    from .batch import Row
    from .chain.client import OnChainOrder, Registry

#: ``ocid`` = ``<prefix>-<entity>-<order number>``; not registered with the Open Contracting Partnership:
#: publishers with a registered prefix pass theirs (``export-ocds --ocid-prefix``).
OCID_PREFIX = "ocds-pecomp"
LOCATION_EXTENSION = ("https://raw.githubusercontent.com/open-contracting-extensions/ocds_location_extension/"
                      "v1.1.4/extension.json")
MAX_OCDS_BYTES = 64 * 1024 * 1024  # an OCDS manifest is read whole
OCDS_KEYS = re.compile(r'(?<!\\)"(releases|records|ocid)"\s*:')
_ORG_ID_SCHEME = re.compile(r"[A-Za-z]{2}-[A-Za-z0-9]{2,12}")  # the org-id list's shape: country, register
_SCHEMED_ID = re.compile(r"([A-Za-z]{2}-[A-Za-z0-9]{2,12})-([A-Za-z0-9][A-Za-z0-9.\-]*)")
_OCID = re.compile(r"((?i:ocds)-[A-Za-z0-9]{6})-(.+)")  # the publisher's registered prefix, then its process id
_POSITION = re.compile(r"[0-9]{1,3}")  # a contract id that only numbers the contract within its process
_WITH_DV = re.compile(r"([0-9]{5,15})-([0-9])")
_NIT_WEIGHTS = (3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71)
_CURRENCY_ALIASES = {"S/": "PEN", "S/.": "PEN", "SOL": "PEN", "SOLES": "PEN", "NUEVOS SOLES": "PEN",
                     "US$": "USD", "DOLARES": "USD", "DÓLARES": "USD"}
_SKIPPED_AWARDS = ("pending", "cancelled", "unsuccessful")
#: The delivery place of an order whose publication gives none (Spanish, as the page: "not stated by the
#: publisher"); noted in the record.
NO_PLACE = "No indicado por el publicador"


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


# -- parties -------------------------------------------------------------------------------------------


class _Notes(list[str]):
    """The notes of one row; those that say what was inferred or missing also go in the record."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded: list[str] = []

    def infer(self, text: str) -> None:
        self.append(text)
        self.recorded.append(text)

    def for_record(self) -> list[str]:
        """At most MAX_NOTES notes of at most MAX_NOTE_CHARS characters (the record's limits)."""
        notes = [note if len(note) <= MAX_NOTE_CHARS else note[: MAX_NOTE_CHARS - 1] + "…" for note in self.recorded]
        if len(notes) > MAX_NOTES:
            notes = [*notes[: MAX_NOTES - 1], f"and {len(notes) - MAX_NOTES + 1} more notes in the import's output"]
        return notes


def py_ruc_is_valid(text: str) -> bool:
    """Paraguay's RUC with its check digit ("80007525-0"): weights 2, 3, … 11 from the right (then 2 again);
    r = sum mod 11; DV = 11 - r, or 0 when r < 2."""
    match = _WITH_DV.fullmatch(text)
    if match is None or len(match.group(1)) > 9:
        return False
    total, weight = 0, 2
    for digit in reversed(match.group(1)):
        total += int(digit) * weight
        weight = weight + 1 if weight < 11 else 2
    rest = total % 11
    return (11 - rest if rest > 1 else 0) == int(match.group(2))


def co_nit_is_valid(text: str) -> bool:
    """Colombia's NIT with its check digit ("800197268-4"): DIAN's weights 3, 7, 13, … 71 from the right;
    r = sum mod 11; DV = r when r < 2, else 11 - r."""
    match = _WITH_DV.fullmatch(text)
    if match is None:
        return False
    total = sum(int(digit) * weight for digit, weight in zip(reversed(match.group(1)), _NIT_WEIGHTS, strict=False))
    rest = total % 11
    return (rest if rest < 2 else 11 - rest) == int(match.group(2))


def _rfc_shape(text: str) -> bool:
    return MX_RFC.fullmatch(text) is not None


#: Schemes an id's own shape proves, with the words a published scheme text uses for each (any casing or
#: accents): only these are ever inferred.
_PROOFS: tuple[tuple[str, Any, str, tuple[str, ...]], ...] = (
    (PE_RUC, ruc_is_valid, "SUNAT's check digit", ("RUC", "REGISTRO UNICO DE CONTRIBUYENTE")),
    ("PY-RUC", py_ruc_is_valid, "its check digit (DV)", ("RUC", "REGISTRO UNICO DE CONTRIBUYENTE")),
    ("CO-NIT", co_nit_is_valid, "its check digit (DV)", ("NIT",)),
    ("MX-RFC", _rfc_shape, "the RFC pattern", ("RFC", "REGISTRO FEDERAL DE CONTRIBUYENTES")),
)


def _plain(text: str) -> str:
    """Upper case without accents, words separated by single spaces (for matching scheme names)."""
    decomposed = unicodedata.normalize("NFKD", text.upper())
    return " ".join("".join(c if c.isalnum() else " " for c in decomposed if not unicodedata.combining(c)).split())


def _proven(ident: str, scheme: str | None) -> tuple[str, str] | None:
    """(scheme, proof) when the id's shape proves exactly one scheme of _PROOFS — among those the published
    scheme text names, or any when there is none."""
    words = f" {_plain(scheme)} " if scheme else None
    found = [(name, proof) for name, check, proof, names in _PROOFS
             if (words is None or any(f" {n} " in words for n in names)) and check(ident)]
    return found[0] if len(found) == 1 else None


def _as_record(scheme: str, ident: str) -> dict[str, str]:
    return {"ruc": ident} if scheme == PE_RUC else {"id": ident, "scheme": scheme}


def _classify(scheme: str | None, ident: str, label: str, notes: _Notes) -> dict[str, str] | None:
    """One published (scheme, id) as the record gives it, or None (noted) when it cannot identify."""
    ident = ident.replace(" ", "")
    given = f"scheme {scheme!r}" if scheme else "no scheme"
    if scheme and _ORG_ID_SCHEME.fullmatch(re.sub(r"[\s_]+", "-", scheme.strip())):
        scheme = re.sub(r"[\s_]+", "-", scheme.strip()).upper()
        if ident.upper().startswith(scheme + "-"):
            notes.infer(f"{label} {ident!r}: its {scheme}- prefix is left out of the id")
            ident = ident[len(scheme) + 1:]
        if scheme == PE_RUC and not ruc_is_valid(ident):
            raise _Refusal(f"{label} {ident!r} is given as PE-RUC but fails SUNAT's check digit")
        if scheme == PE_RUC or _IDENTIFIER.fullmatch(ident) or (scheme == "MX-RFC" and _rfc_shape(ident)):
            return _as_record(scheme, ident)
        notes.append(f"{label} {ident!r} ({scheme}) left out: letters, digits, '.' and '-' only, at most 40")
        return None
    proof = _proven(ident, scheme)
    if proof is None and scheme and re.fullmatch(r"[0-9]{11}", ident) and " RUC " in f" {_plain(scheme)} ":
        raise _Refusal(f"{label} {ident!r} has scheme {scheme!r} and a Peruvian RUC's shape, but fails SUNAT's "
                       "check digit")
    if proof is not None:
        notes.infer(f"{label} {ident!r} has {given}: {proof[1]} proves {proof[0]}")
        return _as_record(proof[0], ident)
    if scheme and _LOCAL_SCHEME.fullmatch(scheme.strip()) and _IDENTIFIER.fullmatch(ident):
        return _as_record(scheme.strip(), ident)  # the publisher's own scheme, as published
    if scheme is None:
        notes.infer(f"{label} {ident!r} left out: no scheme, and its shape proves none (a PE-RUC, PY-RUC or CO-NIT "
                    "check digit, the MX-RFC pattern)")
    else:
        notes.infer(f"{label} {ident!r} left out: {given} is neither an org-id scheme nor a scheme name of letters, "
                    "digits, '.', '_' and '-', and the id's shape proves none")
    return None


def identify(org: dict[str, Any], role: str, notes: _Notes) -> dict[str, str] | None:
    """The party's identifier as the record gives it (``{"ruc"}`` or ``{"id", "scheme"}``), from the first
    that can identify of: ``identifier``, ``additionalIdentifiers[]``, the party ``id`` when it reads
    ``SCHEME-ID`` (``PE-RUC-20131370998``). An id given as a number is its digits; a scheme without an id is no
    identifier. Only a check digit (PE-RUC, PY-RUC, CO-NIT) or the RFC pattern (MX-RFC) infers a scheme;
    another scheme is kept as published. Everything left out or inferred is noted."""
    label = f"{role} identifier"
    for given in [_obj(org.get("identifier")), *map(_obj, _list(org.get("additionalIdentifiers")))]:
        scheme, ident = _ident(given.get("scheme")), _ident(given.get("id"))
        if ident is None:
            if scheme is not None:
                notes.infer(f"{label} scheme {scheme!r} has no id: no identifier")
            continue
        found = _classify(scheme, ident, label, notes)
        if found is not None:
            return found
    match = _SCHEMED_ID.fullmatch(_ident(org.get("id")) or "")
    if match is not None:
        try:
            return _classify(match.group(1), match.group(2), f"{role} party id", notes)
        except _Refusal as refusal:  # a party id is only a fallback: a bad one is left out, not refused
            notes.infer(f"{refusal}: left out")
    return None


# -- reading the manifest ------------------------------------------------------------------------------


@dataclass
class _Release:
    number: int
    data: dict[str, Any]

    @property
    def id(self) -> str | None:
        return _ident(self.data.get("id"))

    @property
    def ocid(self) -> str | None:
        return _ident(self.data.get("ocid"))

    @property
    def when(self) -> datetime:
        return _when(self.data.get("date"))

    def source(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"ocid": self.ocid, "release_id": self.id}
        out.update({k: v for k, v in extra.items() if v})
        return out


@dataclass(frozen=True)
class _Unreadable:
    reason: str


def is_ocds(head: str) -> bool:
    """Whether the start of a (non-CSV) manifest is OCDS: a package's ``releases``/``records`` or a release's
    ``ocid`` as a key."""
    return bool(OCDS_KEYS.search(head))


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
    from .batch import Row

    releases, broken = _releases(path)
    groups: dict[str, list[_Release]] = {}
    for release in releases:
        groups.setdefault(release.ocid or f"\x00{release.number}", []).append(release)
    rows: list[Row] = [Row(number, None, None, error) for number, error in broken]
    for group in groups.values():
        rows.extend(_Process(group, pdf_dir).rows())
    rows.sort(key=lambda row: row.number)
    yield from rows


# -- mapping one ocid ----------------------------------------------------------------------------------


def _overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`base` with `top`'s non-null values over it (one level; lists replace only when not empty)."""
    out = dict(base)
    for key, value in top.items():
        if value is None or value == [] or value == {}:
            continue
        if key == "roles" and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = list(dict.fromkeys(str(role) for role in [*out[key], *value]))
        else:
            out[key] = value
    return out


def _same_name(value: Any) -> str:
    return " ".join(str(value).split()).casefold() if isinstance(value, str) else ""


def _roles(party: dict[str, Any]) -> set[str]:
    return {str(role).strip().lower() for role in _list(party.get("roles"))}


@dataclass
class _Tracked:
    """A contract or award merged over the releases of one ocid (date order)."""

    kind: str
    id: str | None
    data: dict[str, Any] = field(default_factory=dict)
    releases: list[_Release] = field(default_factory=list)

    @property
    def owner(self) -> _Release:
        return self.releases[-1]

    def label(self) -> str:
        return f"{self.kind} {self.id!r}"


class _Process:
    """The releases of one ocid, merged; turns each contract (or uncontracted award) into a row."""

    def __init__(self, releases: list[_Release], pdf_dir: Path | None) -> None:
        self.releases = sorted(releases, key=lambda r: (r.when, r.number))
        self.ocid = self.releases[0].ocid
        self.pdf_dir = pdf_dir
        self.parties: dict[str, dict[str, Any]] = {}
        self.buyer_ref: dict[str, Any] | None = None
        self.tender: dict[str, Any] = {}
        self.contracts: dict[str, _Tracked] = {}
        self.awards: dict[str, _Tracked] = {}
        for release in self.releases:
            data = release.data
            for party in _list(data.get("parties")):
                party = _obj(party)
                key = _ident(party.get("id")) or f"name:{party.get('name')}"
                self.parties[key] = _overlay(self.parties.get(key, {}), party)
            if _obj(data.get("buyer")):
                self.buyer_ref = _obj(data.get("buyer"))
            self.tender = _overlay(self.tender, _obj(data.get("tender")))
            for kind, store in (("contract", self.contracts), ("award", self.awards)):
                for index, raw in enumerate(_list(data.get(f"{kind}s"))):
                    raw = _obj(raw)
                    ident = _ident(raw.get("id"))
                    key = ident or f"\x00{release.number}:{index}"
                    tracked = store.setdefault(key, _Tracked(kind, ident))
                    tracked.data = _overlay(tracked.data, raw)
                    if not tracked.releases or tracked.releases[-1] is not release:
                        tracked.releases.append(release)
        self.contracted = {award: c for c in self.contracts.values() if (award := _ident(c.data.get("awardID")))}

    # -- lines ----------------------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        from .batch import Row

        rows: list[Row] = []
        for tracked in [*self.contracts.values(), *self.awards.values()]:
            if tracked.kind == "award" and tracked.id in self.contracted:
                continue
            extra = {f"{tracked.kind}_id": tracked.id}
            for earlier in tracked.releases[:-1]:
                rows.append(Row(earlier.number, None, None, (
                    f"{tracked.label()} is taken from release {tracked.owner.id!r} "
                    f"({tracked.owner.data.get('date')}), the latest that has it"),
                    skipped=True, source=earlier.source(**extra)))
            rows.append(self._row(tracked))
        covered = {row.number for row in rows}
        for release in self.releases:
            if release.number in covered:
                continue
            awards = [_ident(_obj(a).get("id")) for a in _list(release.data.get("awards"))]
            through = [f"award {a!r} through contract {self.contracted[a].id!r}" for a in awards
                       if a in self.contracted]
            reason = ("no contract or award with items" + (f" of its own ({'; '.join(through)})" if through else ""))
            rows.append(Row(release.number, None, None, reason, skipped=True, source=release.source()))
        return rows

    def _row(self, tracked: _Tracked) -> Row:
        from .batch import Row

        notes = _Notes()
        owner = tracked.owner
        for note in _list(_obj(owner.data.get("chainRegistration")).get("recordNotes")):
            if isinstance(note, str):  # our own export read back: the notes the record on chain carries
                notes.infer(note)
        number_hint = {"order_number": tracked.id} if tracked.id else None
        source = owner.source(**{f"{tracked.kind}_id": tracked.id})
        try:
            record = self._record(tracked, notes)
        except _Skip as skip:
            return Row(owner.number, None, None, str(skip), skipped=True, source=source)
        except _Refusal as refusal:
            if notes:
                source["notes"] = notes
            return Row(owner.number, number_hint, None, f"{tracked.label()}: {refusal}", source=source)
        if notes:
            source["notes"] = notes
        pdf = find_pdf(str(record["order_number"]), self.pdf_dir)
        return Row(owner.number, record, pdf, render=pdf is None, source=source)

    # -- the record -----------------------------------------------------------------------------------

    def _record(self, tracked: _Tracked, notes: _Notes) -> dict[str, Any]:
        data = tracked.data
        award = self._award_of(tracked)
        items = _list(data.get("items")) or _list(award.get("items"))
        if not items:
            raise _Skip(f"{tracked.label()} has no items" + (" (nor has its award)" if tracked.kind == "contract"
                                                              else ""))
        status = str(data.get("status") or "").lower()
        if tracked.kind == "contract" and status == "cancelled":
            raise _Skip(f"{tracked.label()} is cancelled")
        if tracked.kind == "award" and status in _SKIPPED_AWARDS:
            raise _Skip(f"{tracked.label()} is {status}, and no contract points to it")
        if tracked.id is None:
            raise _Refusal("has no id (the order number comes from it)")
        entity = self._party(self._buyer(), "buyer", notes, required=True, by_ocid=True)
        procuring, buying = self._procuring(), self._buyer()
        same = (_ident(procuring.get("id")), _same_name(procuring.get("name"))) == (
            _ident(buying.get("id")), _same_name(buying.get("name")))
        buyer = self._party(procuring, "procuring entity", _Notes() if same else notes, required=False)
        record: dict[str, Any] = {
            "order_number": self._order_number(tracked, notes),
            "issued_on": self._issued_on(tracked, award),
            "entity": entity,
            "buyer": buyer,
            "supplier": self._party(self._supplier(tracked, award, notes), "supplier", notes, required=True),
            "items": [self._item(index, item, notes) for index, item in enumerate(items)],
            "total": self._total(data, award, entity, items, notes),
            "delivery": self._delivery(data, award, items, notes),
        }
        if notes.recorded:
            record["notes"] = notes.for_record()
        return record

    def _order_number(self, tracked: _Tracked, notes: _Notes) -> str:
        """The contract's (or award's) id; an id of 1 to 3 digits only numbers it within its process (Mexico
        City's "1" in every ocid), so the ocid's process id goes before it: ``AD-SF-DRM-063-2015/1``."""
        ident = str(tracked.id)
        prefix = _OCID.fullmatch(self.ocid or "")
        if not _POSITION.fullmatch(ident) or prefix is None:
            return ident
        number = f"{prefix.group(2)}/{ident}"
        notes.infer(f"{tracked.kind} id {ident!r} numbers it only within its process: order number {number!r}")
        return number

    def _award_of(self, tracked: _Tracked) -> dict[str, Any]:
        if tracked.kind == "award":
            return tracked.data
        award_id = _ident(tracked.data.get("awardID"))
        found = self.awards.get(award_id) if award_id else None
        return found.data if found else {}

    def _org(self, ref: dict[str, Any]) -> dict[str, Any]:
        """An organization reference completed from the parties: by id, else by name (white space and
        casing aside), else the reference alone (an OCDS 1.0 reference carries its own identifier)."""
        key = _ident(ref.get("id"))
        party = self.parties.get(key) if key else None
        name = _same_name(ref.get("name"))
        if party is None and name:
            party = next((p for p in self.parties.values() if _same_name(p.get("name")) == name), None)
        return _overlay(ref, party or {})

    def _with_role(self, role: str) -> list[dict[str, Any]]:
        return [party for party in self.parties.values() if role.lower() in _roles(party)]

    def _buyer(self) -> dict[str, Any]:
        if self.buyer_ref:
            return self._org(self.buyer_ref)
        found = self._with_role("buyer")
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(repr(p.get("name")) for p in found)
            raise _Refusal(f"several parties have the role buyer ({names}); give `buyer`")
        others = f" nor in the {len(self.releases) - 1} other releases of its ocid" if len(self.releases) > 1 else ""
        raise _Refusal(f"no buyer: neither `buyer` nor a party with role buyer in its release{others}")

    def _procuring(self) -> dict[str, Any]:
        ref = _obj(self.tender.get("procuringEntity"))
        if ref:
            return self._org(ref)
        found = self._with_role("procuringEntity")
        return found[0] if len(found) == 1 else self._buyer()

    def _supplier(self, tracked: _Tracked, award: dict[str, Any], notes: _Notes) -> dict[str, Any]:
        suppliers = [_obj(s) for s in _list(award.get("suppliers"))]
        if not suppliers and _obj(award.get("supplier")):  # Mexico's Compranet writes one `supplier` object
            notes.append(f"award {award.get('id')!r} names its supplier in `supplier` (OCDS: `suppliers`)")
            suppliers = [_obj(award.get("supplier"))]
        if len(suppliers) > 1:
            raise _Refusal(f"award {award.get('id')!r} has {len(suppliers)} suppliers; an order names one")
        if suppliers:
            return self._org(suppliers[0])
        found = self._with_role("supplier")
        if len(found) == 1:
            if award:
                notes.infer(f"award {award.get('id')!r} names no supplier: the one party with role supplier")
            return found[0]
        if not award:
            raise _Refusal(f"its award {tracked.data.get('awardID')!r} is in no release of its ocid "
                           "(the supplier comes from the award)")
        raise _Refusal(f"award {award.get('id')!r} names no supplier, and {len(found)} parties have the role "
                       "supplier")

    def _party(self, org: dict[str, Any], role: str, notes: _Notes, *, required: bool,
               by_ocid: bool = False) -> dict[str, Any]:
        """A record party (``{name, ruc}`` or ``{name, id, scheme}``) from what the publisher gave (see
        :func:`identify`). With no identifier at all, the entity is keyed under the publisher's namespace by
        the ocid (``ocid`` given), the supplier by its party id there; the purchasing unit stays a name."""
        identifier = _obj(org.get("identifier"))
        name = _text(org.get("name"), notes, f"{role} name") or _text(identifier.get("legalName"), notes,
                                                                        f"{role} legal name")
        found = identify(org, role, notes)
        if found is not None:
            return {"name": name, **found}
        if not required:
            return {"name": name}
        prefix = _OCID.fullmatch(self.ocid or "")
        if prefix is None:
            raise _Refusal(f"{role} {name!r} has no identifier, and its ocid {self.ocid!r} has no publisher prefix "
                           "(ocds- and 6 characters) to key it under")
        if by_ocid:
            own, what = prefix.group(2), f"by its ocid {self.ocid!r}"
        else:
            own, what = _ident(org.get("id")) or "", f"by its party id {_ident(org.get('id'))!r}"
        if not own:
            raise _Refusal(f"{role} {name!r} has no identifier and no party id to key it by: give its identifier "
                           "(scheme and id)")
        if not _IDENTIFIER.fullmatch(own):
            raise _Refusal(f"{role} {name!r} has no identifier, and {what.removeprefix('by its ')} cannot key it "
                           "(letters, digits, '.' and '-', at most 40)")
        notes.infer(f"{role} has no identifier: keyed under the publisher's namespace {prefix.group(1)!r} {what}")
        return {"name": name, "id": own, "scheme": prefix.group(1)}

    def _issued_on(self, tracked: _Tracked, award: dict[str, Any]) -> str | None:
        signed = tracked.data.get("dateSigned") if tracked.kind == "contract" else award.get("date")
        return _date(signed) or _date(tracked.releases[0].data.get("date"))

    def _item(self, index: int, item: Any, notes: _Notes) -> dict[str, Any]:
        item = _obj(item)
        classification = _obj(item.get("classification"))
        where = f"item {index + 1}"
        description = _text(item.get("description"), notes, f"{where} description") or _text(
            classification.get("description"), notes, f"{where} classification")
        if item.get("quantity") is None:
            raise _Refusal(f"{where} ({description or item.get('id')!r}) has no quantity")
        unit = _obj(item.get("unit"))
        out: dict[str, Any] = {
            "description": description,
            "quantity": _number(item.get("quantity")),
            "unit": _text(unit.get("name"), notes, f"{where} unit") or _text(unit.get("id")),
        }
        price = _obj(unit.get("value")).get("amount")
        if price is not None:
            out["unit_price"] = _number(price)
        for candidate in [classification, *map(_obj, _list(item.get("additionalClassifications")))]:
            if "CUBSO" in str(candidate.get("scheme") or "").upper():
                code = _ident(candidate.get("id"))
                if code and re.fullmatch(r"[0-9]{8,16}", code):
                    out["cubso"] = code
                    break
                notes.append(f"{where}: CUBSO code {code!r} left out (8 to 16 digits expected)")
        return out

    def _total(self, data: dict[str, Any], award: dict[str, Any], entity: dict[str, Any], items: list[Any],
               notes: _Notes) -> dict[str, Any]:
        value = _obj(data.get("value")) if _obj(data.get("value")).get("amount") is not None else _obj(
            award.get("value"))
        if value.get("amount") is None:
            computed = _items_total(items)
            if computed is None:
                raise _Refusal("no value (contract.value or its award's value), and its items' quantities and unit "
                               "prices do not give one (each item needs unit.value in one currency)")
            value = computed
            notes.infer(f"no value: the sum of its items' quantity × unit price, {value['amount']}")
        currency = _ident(value.get("currency"))
        if currency is None:
            if "ruc" not in entity:
                raise _Refusal("its value has no currency")
            notes.infer("value has no currency: PEN (a Peruvian buyer)")
            currency = "PEN"
        code = currency.upper()
        code = _CURRENCY_ALIASES.get(" ".join(code.split()), code)
        if code != currency:
            notes.infer(f"currency {currency!r} read as {code}")
        return {"amount": _number(value.get("amount")), "currency": code}

    def _delivery(self, data: dict[str, Any], award: dict[str, Any], items: list[Any],
                  notes: _Notes) -> dict[str, Any]:
        places: list[str] = []
        for item in map(_obj, items):
            place = _place(item.get("deliveryLocation"), item.get("deliveryAddress"), notes)
            if place and place not in places:
                places.append(place)
        if not places:
            for holder in (data, self.tender):
                for key in ("deliveryLocation", "deliveryAddress", "deliveryLocations", "deliveryAddresses"):
                    given = holder.get(key)
                    for value in given if isinstance(given, list) else [given]:
                        place = _place(value, value, notes)
                        if place and place not in places:
                            places.append(place)
                if places:
                    break
        if not places:
            notes.infer("no delivery place in the publication (items', contract's or tender's deliveryLocation "
                        f"or deliveryAddress): the record says {NO_PLACE!r}")
            places.append(NO_PLACE)
        out: dict[str, Any] = {"place": "; ".join(places)}
        for period in (data.get("period"), award.get("contractPeriod"), self.tender.get("contractPeriod")):
            period = _obj(period)
            days = period.get("durationInDays")
            if isinstance(days, Decimal) and days.is_finite() and days == days.to_integral_value():
                days = int(days)
            elif isinstance(days, str) and days.strip().isdigit():
                days = int(days.strip())
            if days is not None:
                out["term_days"] = days
                return out
            deadline = _date(period.get("endDate"))
            if deadline:
                out["deadline"] = deadline
                return out
        raise _Refusal("no delivery term (contract.period durationInDays or endDate, or the award's or tender's "
                       "contractPeriod)")


def _items_total(items: list[Any]) -> dict[str, Any] | None:
    """Σ quantity × unit.value.amount when every item gives both as numbers, in one currency; else None."""
    total, currencies = Decimal(0), set()
    for item in map(_obj, items):
        price = _obj(_obj(item.get("unit")).get("value"))
        numbers = [Decimal(n) for n in (item.get("quantity"), price.get("amount"))
                   if isinstance(n, Decimal | int) and not isinstance(n, bool)]
        if len(numbers) != 2 or not all(n.is_finite() and abs(n.adjusted()) < 16 for n in numbers):
            return None
        total += numbers[0] * numbers[1]
        currencies.add(_ident(price.get("currency")))
    if len(currencies) != 1 or total <= 0:
        return None
    return {"amount": total, "currency": currencies.pop()}


class _Skip(_Refusal):
    """Nothing to register here, and nothing wrong either (no items, cancelled)."""


def _place(location: Any, address: Any, notes: list[str]) -> str | None:
    if isinstance(location, str):
        return _text(location, notes, "delivery place")
    described = _text(_obj(location).get("description"), notes, "delivery place")
    if described:
        return described
    parts: list[str] = []
    for key in ("streetAddress", "locality", "region", "countryName"):
        part = _text(_obj(address).get(key), notes, "delivery address")
        if part and part not in parts:
            parts.append(part)
    return ", ".join(parts) or None


# -- export --------------------------------------------------------------------------------------------


def _logs_between(registry: Registry, topics: list[Any], low: int, high: int) -> list[dict[str, Any]]:
    """Logs of the registry in blocks low..high, halving the range when the node refuses a wide one."""
    from .chain.rpc import RpcError

    try:
        logs: list[dict[str, Any]] = registry.rpc.call("eth_getLogs", [{
            "address": registry.address, "fromBlock": hex(low), "toBlock": hex(high), "topics": topics}])
        return logs
    except RpcError:
        if high <= low:
            raise
        middle = (low + high) // 2
        return _logs_between(registry, topics, low, middle) + _logs_between(registry, topics, middle + 1, high)


def token_ids(registry: Registry) -> list[int]:
    """Every token the registry minted, in mint order: the ERC-721 ``Transfer`` logs from the zero address
    since the registry's deploy block (only ``eth_getLogs``)."""
    from .chain.client import TRANSFER

    latest = int(registry.rpc.call("eth_blockNumber"), 16)
    logs = _logs_between(registry, [TRANSFER, "0x" + "00" * 32], registry.from_block, latest)
    return list(dict.fromkeys(int(log["topics"][3], 16) for log in logs))


def _amount(text: str) -> Decimal:
    return Decimal(text)


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _org_id(party: Any) -> str:
    return f"{party.scheme}-{party.id}" if party.id else "unidentified"


def _organization(party: Any, party_id: str, roles: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": party_id, "name": party.name}
    if party.id:
        out["identifier"] = {"scheme": party.scheme, "id": party.id, "legalName": party.name}
    out["roles"] = roles
    return out


def release_for(record: OnChainOrder, *, chain_id: int, registry: str, date_time: str, verify_url: str,
                ocid_prefix: str = OCID_PREFIX) -> dict[str, Any]:
    """One OCDS release for one registered order (see README's "OCDS: import mapping and export")."""
    from .hashing import hashlink

    order, state = record.order, record.state
    entity_id = _org_id(order.entity)
    parties = [_organization(order.entity, entity_id, ["buyer"])]
    if order.buyer == order.entity:
        parties[0]["roles"].append("procuringEntity")
    else:
        parties.append(_organization(order.buyer, _org_id(order.buyer) + "-procuringEntity", ["procuringEntity"]))
    supplier_id = _org_id(order.supplier)
    if supplier_id in {p["id"] for p in parties}:
        supplier_id += "-supplier"
    parties.append(_organization(order.supplier, supplier_id, ["supplier"]))
    value = {"amount": _amount(order.total_amount), "currency": order.currency}
    items = []
    for index, item in enumerate(order.items, start=1):
        entry: dict[str, Any] = {"id": str(index), "description": item.description,
                                 "quantity": _amount(item.quantity), "unit": {"name": item.unit}}
        if item.unit_price is not None:
            entry["unit"]["value"] = {"amount": _amount(item.unit_price), "currency": order.currency}
        if item.cubso is not None:
            entry["classification"] = {"scheme": "CUBSO", "id": item.cubso}
        entry["deliveryLocation"] = {"description": order.delivery.place}
        items.append(entry)
    period: dict[str, Any] = ({"durationInDays": order.delivery.term_days} if order.delivery.term_days is not None
                              else {"endDate": f"{order.delivery.deadline}T23:59:59Z"})
    contract: dict[str, Any] = {
        "id": order.order_number, "awardID": order.order_number, "title": f"Orden de compra N° {order.order_number}",
        "dateSigned": f"{order.issued_on}T00:00:00Z", "value": value, "items": items, "period": period,
        "documents": [{
            "id": "order-pdf", "documentType": "contractSigned", "title": f"Orden de compra N° {order.order_number}",
            "url": record.document_url, "format": "application/pdf", "language": "es",
            "integrity": [{"scheme": "sha256", "id": state.document_hash.hex()}],
        }],
    }
    if state.status == "annulled":
        contract["status"] = "cancelled"
    registration: dict[str, Any] = {
        "chainId": chain_id, "registry": registry, "tokenId": f"0x{record.token_id:064x}",
        "transactionHash": record.tx_hash, "blockNumber": record.block_number, "registrar": record.registrar,
        "status": state.status, "hashlink": hashlink(state.document_hash), "verifyUrl": verify_url,
    }
    if record.annul_reason is not None:
        registration["annulReason"] = record.annul_reason
    if order.notes:
        registration["recordNotes"] = list(order.notes)
    if state.replaces:
        registration["supersedes"] = f"0x{state.replaces:064x}"
    if state.replaced_by:
        registration["supersededBy"] = f"0x{state.replaced_by:064x}"
    entity_key = order.entity.key.replace(":", "-")
    return {
        "ocid": f"{ocid_prefix}-{entity_key}-{order.order_number}",
        "id": f"0x{record.token_id:064x}" + ("" if state.status == "valid" else f"-{state.status}"),
        "date": date_time, "tag": ["contract"], "initiationType": "tender", "language": "es",
        "buyer": {"id": entity_id, "name": order.entity.name},
        "parties": parties,
        "awards": [{"id": order.order_number, "status": "active", "value": value,
                    "suppliers": [{"id": supplier_id, "name": order.supplier.name}]}],
        "contracts": [contract],
        "chainRegistration": registration,
    }


def export_package(registry: Registry, *, base_url: str, ocid_prefix: str = OCID_PREFIX,
                   publisher: str | None = None, tokens: Iterable[int] | None = None,
                   unreadable: Callable[[UnreadableRecord], None] | None = None) -> dict[str, Any]:
    """The registered orders as an OCDS 1.1 release package (amounts as :class:`~decimal.Decimal`; write it
    with :func:`dumps`). A token whose on-chain entry does not decode goes to `unreadable` and is left out
    (without `unreadable`, it stops the export)."""
    chain_id = int(registry.rpc.call("eth_chainId"), 16)
    times: dict[int, int] = {}

    def block_time(number: int) -> int:
        if number not in times:
            block = registry.rpc.call("eth_getBlockByNumber", [hex(number), False])
            times[number] = int(block["timestamp"], 16)
        return times[number]

    releases = []
    for token_id in (token_ids(registry) if tokens is None else tokens):
        try:
            record = registry.read(token_id)
        except UnreadableRecord as exc:
            if unreadable is None:
                raise
            unreadable(exc)
            continue
        moment = max(block_time(record.block_number), record.state.status_changed_at)
        releases.append(release_for(record, chain_id=chain_id, registry=registry.address, date_time=_iso(moment),
                                    verify_url=base_url.rstrip("/") + record.order.verify_path,
                                    ocid_prefix=ocid_prefix))
    if not releases:
        raise OrderNotRegistered(f"registry {registry.address} has no registered orders to export",
                                 hint="register orders first (register or register-batch)")
    return {
        "uri": f"{base_url.rstrip('/')}/ocds/{chain_id}/{registry.address}/release-package.json",
        "version": "1.1",
        "publishedDate": max(release["date"] for release in releases),
        "publisher": {"name": publisher or f"peru-compras registry {registry.address} (chain {chain_id})"},
        "extensions": [LOCATION_EXTENSION],
        "releases": releases,
    }


_RAW = re.compile(r'"\\u0000(-?[0-9]+(?:\.[0-9]+)?)\\u0000"')


def dumps(package: Any, *, indent: int | None = 2) -> str:
    """JSON with every :class:`~decimal.Decimal` written as the exact number it holds (``18.50`` stays
    ``18.50``, never ``18.5`` or a rounded float)."""

    def exact(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"\x00{format(value, 'f')}\x00"
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(package, ensure_ascii=False, indent=indent, default=exact)
    return _RAW.sub(r"\1", text)
