"""The purchase-order record: parse, validate, canonical bytes and the on-chain encoding.

Canonical form (what is put on chain): the record as JSON with keys sorted, no insignificant white space,
UTF-8 (never ``\\u`` escapes for printable characters), optional fields left out, amounts as the decimal
strings given, ``term_days`` an integer, parties as ``{"name","ruc"}`` for Peruvian RUCs and
``{"id","name","scheme"}`` otherwise. With only strings and small integers this is RFC 8785 (JCS) output.

Order key: ``"<entity>/<order number>"``, ``<entity>`` the 11-digit RUC for ``PE-RUC``, else ``"<SCHEME>:<id>"``.
The token id is ``uint256(keccak256(key))``: known before minting, unique on chain.

On-chain entry (version 1), the ``order`` bytes of the contract's ``register``::

    sha256(pdf) (32 bytes) ‖ len(key) (1) ‖ key (UTF-8) ‖ 0x01 ‖ raw DEFLATE(canonical JSON without
    order_number and without the entity's identifier, preset dictionary data/record-dictionary-v1.txt)

The two fields left out are those the key carries, so decoding restores the canonical record. Text rules:
:mod:`peru_compras.text_rules`. Identifiers are ASCII: an order number is 1 to 40 letters, digits, ``-``,
``_``, ``.`` and ``/`` starting with a letter or digit; every pattern must match the whole string.
"""

from __future__ import annotations

import operator
import re
import string
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import safejson
from .canonical import deflate, json_bytes, json_string, order_json, party_json
from .canonical import record_dictionary as _dictionary  # the name tests and callers know
from .errors import InvalidInput, InvalidOrder
from .hashing import keccak256
from .text_rules import _shown
from .text_rules import check_text as check_text  # re-exported: the rules moved to text_rules.py
from .text_rules import text_problem as text_problem

ENCODING_VERSION = 1
PE_RUC = "PE-RUC"
MAX_ITEMS = 500
MAX_ORDER_BYTES = 256 * 1024

_RUC_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
# Every pattern is used with fullmatch: "$" under re.match also matches before a final newline.
_DECIMAL = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,6})?")
_SCHEME = re.compile(r"[A-Z]{2}-[A-Z0-9]{2,12}")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,39}")
# OCDS: a publisher's own scheme (CUA, ocds-03ad3f) and Mexico's RFC with its "&": ASCII, never ":" or "/"
_LOCAL_SCHEME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,39}")
MX_RFC = re.compile(r"[A-Z&]{3,4}[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[A-Z0-9]{2}[0-9A]")
MAX_NOTES, MAX_NOTE_CHARS = 8, 300
_ORDER_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/\-]{0,39}")
_ORDER_NUMBER_CHARS = frozenset(string.ascii_letters + string.digits + "._/-")
_CUBSO = re.compile(r"[0-9]{8,16}")
_FIELD_NAME = re.compile(r"[A-Za-z0-9_]{1,40}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # date.fromisoformat alone also takes "2026-W01-1"
_URL = re.compile(r"https?://[!-~]{1,500}")  # printable ASCII, no space: IRIs are written percent-encoded
_MAPPING = (dict, Mapping)  # isinstance: at once for a dict, 18 ns, not the ABC's 250 (9 an order; timeit)
_KNOWN = frozenset({"order_number", "issued_on", "entity", "buyer", "supplier", "items", "total", "delivery",
                    "document_url", "notes", "pdf"})
_ALLOWED = "unknown field (allowed: " + ", ".join(sorted(_KNOWN - {"pdf"})) + ")"
_CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
    CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
    GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
    LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD
    OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP
    SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF
    XPF YER ZAR ZMW ZWG""".split()
)


def ruc_is_valid(ruc: str) -> bool:
    """SUNAT's check digit: weights 5,4,3,2,7,6,5,4,3,2; d = 11 - sum mod 11; 10 → 0, 11 → 1."""
    if len(ruc) != 11 or not ruc.isascii() or not ruc.isdigit():
        return False
    # ASCII digits: a byte is its digit + 48. 0.8 us, not 2.2 with int() of each (timeit; three an order)
    digits = ruc.encode()
    check: int = 11 - (sum(map(operator.mul, digits, _RUC_WEIGHTS)) - 48 * sum(_RUC_WEIGHTS)) % 11
    return check % 10 == digits[10] - 48  # d is 1..11: "% 10" maps 10 → 0 and 11 → 1 and keeps 1..9


@dataclass(frozen=True, slots=True)
class Party:
    """An entity, buyer or supplier. `scheme` is an org-id scheme (``PE-RUC`` for a RUC)."""

    name: str
    id: str | None = None
    scheme: str | None = None

    @property
    def ruc(self) -> str | None:
        return self.id if self.scheme == PE_RUC else None

    @property
    def key(self) -> str:
        """The entity part of an order key: the RUC, or ``SCHEME:id``."""
        if self.id is None:
            raise InvalidInput(f"party {self.name!r} has no identifier")
        return self.id if self.scheme == PE_RUC else f"{self.scheme}:{self.id}"

    def to_json(self) -> dict[str, str]:
        if self.id is None:
            return {"name": self.name}
        if self.scheme == PE_RUC:
            return {"name": self.name, "ruc": self.id}
        return {"id": self.id, "name": self.name, "scheme": str(self.scheme)}


@dataclass(frozen=True, slots=True)
class Item:
    description: str
    quantity: str
    unit: str
    unit_price: str | None = None
    cubso: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"description": self.description, "quantity": self.quantity, "unit": self.unit}
        if self.unit_price is not None:
            out["unit_price"] = self.unit_price
        if self.cubso is not None:
            out["cubso"] = self.cubso
        return out


@dataclass(frozen=True, slots=True)
class Delivery:
    place: str
    term_days: int | None = None
    deadline: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"place": self.place}
        if self.term_days is not None:
            out["term_days"] = self.term_days
        if self.deadline is not None:
            out["deadline"] = self.deadline
        return out


@dataclass(frozen=True, slots=True)
class Order:
    """A validated purchase order. Build it with :func:`parse_order`."""

    order_number: str
    issued_on: str
    entity: Party
    buyer: Party
    supplier: Party
    items: tuple[Item, ...]
    total_amount: str
    currency: str
    delivery: Delivery
    document_url: str | None = None
    notes: tuple[str, ...] = ()  # what an importer inferred or found missing (H3: OCDS import)
    _canonical: bytes = field(default=b"", repr=False, compare=False)

    @property
    def key(self) -> str:
        """``"<entity>/<order number>"``: unique on chain."""
        return f"{self.entity.key}/{self.order_number}"

    @property
    def token_id(self) -> int:
        """The ERC-721 token id this order gets (or got): ``uint256(keccak256(key))``."""
        return int.from_bytes(keccak256(self.key.encode()), "big")

    @property
    def verify_path(self) -> str:
        """The path of this order's page: ``/o/<entity>/<order number>`` (percent-encoded)."""
        return "/o/" + quote(self.entity.key, safe=":") + "/" + quote(self.order_number, safe="")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "order_number": self.order_number,
            "issued_on": self.issued_on,
            "entity": self.entity.to_json(),
            "buyer": self.buyer.to_json(),
            "supplier": self.supplier.to_json(),
            "items": [item.to_json() for item in self.items],
            "total": {"amount": self.total_amount, "currency": self.currency},
            "delivery": self.delivery.to_json(),
        }
        if self.document_url is not None:
            out["document_url"] = self.document_url
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def canonical_bytes(self) -> bytes:
        """The canonical JSON (see the module docstring)."""
        return self._canonical or json_bytes(self.to_json())

    def encode_entry(self, document_hash: bytes) -> bytes:
        """The ``order`` bytes the contract's ``register`` takes (see the module docstring)."""
        if len(document_hash) != 32:
            raise InvalidInput("a document hash has 32 bytes")
        key = self.key.encode()
        if len(key) > 255:
            raise InvalidOrder([f"order key: {self.key!r} — entity id and order number too long together"])
        if self._canonical:  # built by parse_order: every field has its type
            body = order_json(self, entity='{"name":' + json_string(self.entity.name) + "}", number=None)
        else:
            record = self.to_json()
            del record["order_number"]
            record["entity"] = {"name": self.entity.name}
            body = json_bytes(record)
        return document_hash + bytes([len(key)]) + key + bytes([ENCODING_VERSION]) + deflate(body)


def decode_entry(entry: bytes) -> tuple[bytes, Order]:
    """Inverse of :meth:`Order.encode_entry`: the document hash and the validated order.

    The bytes are a registrar's (the contract checks only their length), so every way they can be wrong is
    an :class:`InvalidOrder` (or :class:`~peru_compras.errors.InvalidJSON` for the body's JSON) naming
    the part: ``entry``, ``entry.key``, ``entry.version``, ``entry.body`` or a record field."""
    source = "on-chain record"
    if len(entry) < 37:
        raise InvalidOrder([f"entry: {len(entry)} bytes — at least 37"], source=source)
    document_hash = entry[:32]
    key_end = 33 + entry[32]
    if len(entry) <= key_end:
        raise InvalidOrder([f"entry.key: {entry[32]} bytes — no room after it for the version and body"],
                           source=source)
    try:
        key = entry[33:key_end].decode()
    except UnicodeDecodeError:
        raise InvalidOrder([f"entry.key: {_shown(entry[33:key_end])} — not UTF-8"], source=source) from None
    if entry[key_end] != ENCODING_VERSION:
        raise InvalidOrder([f"entry.version: {entry[key_end]} — unknown record encoding version (this "
                            f"peru-compras reads {ENCODING_VERSION})"], source=source)
    body = safejson.loads(_inflate(entry[key_end + 1 :], source), source=f"{source} body")  # inflate bounds it
    entity = body.get("entity") if isinstance(body, dict) else None
    if not isinstance(entity, dict) or "order_number" in body or set(entity) - {"name"}:
        raise InvalidOrder([f"entry.body: {_shown(body)} — a record without order_number, its entity "
                            "{name} only"], source=source)
    entity_key, _, order_number = key.partition("/")
    body["order_number"] = order_number
    if ":" in entity_key:
        scheme, _, ident = entity_key.partition(":")
        entity.update({"id": ident, "scheme": scheme})
    else:
        entity["ruc"] = entity_key
    order = parse_order(body, source=source)
    if order.key != key:  # e.g. "PE-RUC:20131370998/1" would be a second token for "20131370998/1"
        raise InvalidOrder([f"entry.key: {key!r} — written as {order.key!r}"], source=source)
    return document_hash, order


def _inflate(packed: bytes, source: str) -> bytes:
    decompressor = zlib.decompressobj(-15, _dictionary())
    try:
        body = decompressor.decompress(packed, MAX_ORDER_BYTES + 1)
    except zlib.error as exc:
        raise InvalidOrder([f"entry.body: not raw DEFLATE with the record dictionary ({exc})"],
                           source=source) from None
    if len(body) > MAX_ORDER_BYTES:
        raise InvalidOrder([f"entry.body: inflates past {MAX_ORDER_BYTES} bytes — at most {MAX_ORDER_BYTES}"],
                           source=source)
    if not decompressor.eof:
        raise InvalidOrder(["entry.body: the DEFLATE stream is cut short"], source=source)
    if decompressor.unused_data:
        raise InvalidOrder([f"entry.body: the DEFLATE stream is followed by {len(decompressor.unused_data)} more "
                            "bytes"], source=source)
    return body


class _Problems:
    """Parsing and validation: every problem is collected, each naming its field, value and rule."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, value: Any, rule: str) -> None:
        self.items.append(f"{where}: {_shown(value)} — {rule}")


def _text(p: _Problems, data: Mapping[str, Any], where: str, field: str, limit: int, *,
          name: bool = False) -> str:
    value = data.get(field)
    if value is None:
        p.add(_path(where, field), None, "required")
        return ""
    if not isinstance(value, str):
        p.add(_path(where, field), value, "must be a string")
        return ""
    problem = f"at most {limit} characters" if len(value) > limit else text_problem(value, name=name)
    if problem:
        p.add(_path(where, field), value, problem)
    return value


def _path(where: str, field: str) -> str:  # built only for a message (eleven texts an order)
    return f"{where}.{field}" if where else field


def _decimal(p: _Problems, data: Mapping[str, Any], where: str, name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            p.add(_path(where, name), None, "required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        hint = " (write it as a string, e.g. \"18.50\")" if isinstance(value, float) else ""
        p.add(_path(where, name), value, "must be a decimal string" + hint)
        return None
    text = str(value)
    if not _DECIMAL.fullmatch(text):
        p.add(_path(where, name), value,
              "a decimal number like 120 or 18.50 (digits, optional dot and up to 6 decimals)")
        return None
    # The pattern's smallest amount above 0 is 0.000001, a float above 0: float() answers as Decimal() would
    # (0.08 us against 0.45, seven times an order; timeit on the 2-core machine)
    if float(text) <= 0:
        p.add(_path(where, name), value, "must be greater than 0")
    return text


def _iso_date(p: _Problems, value: Any, path: str) -> str:
    if not isinstance(value, str):
        p.add(path, value, "required ISO date (YYYY-MM-DD)")
        return ""
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        p.add(path, value, "an ISO date YYYY-MM-DD")
    return value


def _party(p: _Problems, data: Any, path: str, *, id_required: bool) -> Party:
    if not isinstance(data, _MAPPING):
        p.add(path, data, "required object {name, ruc} or {name, id, scheme}")
        return Party(name="")
    name = _text(p, data, path, "name", 200, name=True)
    ruc, ident, scheme = data.get("ruc"), data.get("id"), data.get("scheme")
    if ruc is not None:
        if ident is not None or (scheme not in (None, PE_RUC)):
            p.add(path, dict(data), "give either ruc, or id with scheme, not both")
        ident, scheme = ruc, PE_RUC
        where = f"{path}.ruc"
    else:
        where = f"{path}.id"
        if ident is None:
            if id_required:
                p.add(path, dict(data), "needs ruc (11 digits) or id with scheme (e.g. PY-RUC)")
            return Party(name=name)
        if not isinstance(scheme, str) or not (_SCHEME.fullmatch(scheme) or _LOCAL_SCHEME.fullmatch(scheme)):
            p.add(f"{path}.scheme", scheme, "an org-id scheme like PE-RUC, PY-RUC, MX-RFC, CO-NIT, or a publisher's "
                  "own scheme (1 to 40 ASCII letters, digits, '.', '_', '-')")
            return Party(name=name)
        if not _SCHEME.fullmatch(scheme) and _SCHEME.fullmatch(scheme.upper()):
            # "pe-ruc:20131370998" would be a second, look-alike key for the RUC 20131370998
            p.add(f"{path}.scheme", scheme, f"an org-id scheme is written in capitals: {scheme.upper()!r}")
            return Party(name=name)
    if not isinstance(ident, str):
        p.add(where, ident, "must be a string")
        return Party(name=name)
    if scheme == PE_RUC:
        if not ruc_is_valid(ident):
            p.add(where, ident, "a RUC has 11 digits and SUNAT's check digit")
    elif not (_IDENTIFIER.fullmatch(ident) or (scheme == "MX-RFC" and MX_RFC.fullmatch(ident))):
        p.add(where, ident, "letters, digits, '.' and '-' only, at most 40")
    return Party(name=name, id=ident, scheme=scheme)


def _items(p: _Problems, data: Any) -> tuple[Item, ...]:
    if not isinstance(data, list) or not data:
        p.add("items", data if not isinstance(data, list) else "[]", f"a list of 1 to {MAX_ITEMS} items")
        return ()
    if len(data) > MAX_ITEMS:
        p.add("items", f"{len(data)} items", f"at most {MAX_ITEMS} items")
        return ()
    items = []
    for index, raw in enumerate(data):
        path = f"items[{index}]"
        if not isinstance(raw, _MAPPING):
            p.add(path, raw, "must be an object {description, quantity, unit, unit_price?, cubso?}")
            continue
        description = _text(p, raw, path, "description", 500)
        quantity = _decimal(p, raw, path, "quantity") or ""
        unit = _text(p, raw, path, "unit", 40)
        unit_price = _decimal(p, raw, path, "unit_price", required=False)
        cubso = raw.get("cubso")
        if cubso is not None and (not isinstance(cubso, str) or not _CUBSO.fullmatch(cubso)):
            p.add(f"{path}.cubso", cubso, "a CUBSO code: 8 to 16 digits")
            cubso = None
        items.append(Item(description, quantity, unit, unit_price, cubso))
    return tuple(items)


def parse_order(data: Any, *, source: str | None = None) -> Order:
    """Validate a record (a dict from JSON) and return the :class:`Order`; :class:`InvalidOrder` naming every
    broken field with its value and rule."""
    if not isinstance(data, _MAPPING):
        raise InvalidOrder([f"record: {type(data).__name__} — must be a JSON object"], source=source)
    p = _Problems()
    for name in sorted(set(data) - _KNOWN, key=str):
        shown = name if isinstance(name, str) and _FIELD_NAME.fullmatch(name) else _shown(name)  # no raw escapes
        p.add(shown, data[name], _ALLOWED)
    order_number = _order_number(p, data.get("order_number"))
    issued_on = _iso_date(p, data.get("issued_on"), "issued_on")
    entity = _party(p, data.get("entity"), "entity", id_required=True)
    buyer = _party(p, data.get("buyer"), "buyer", id_required=False)
    supplier = _party(p, data.get("supplier"), "supplier", id_required=True)
    items = _items(p, data.get("items"))
    total = data.get("total")
    amount, currency = "", "PEN"
    if not isinstance(total, _MAPPING):
        p.add("total", total, "required object {amount, currency}")
    else:
        amount = _decimal(p, total, "total", "amount") or ""
        currency = total.get("currency", "PEN")
        if not isinstance(currency, str) or currency not in _CURRENCIES:
            p.add("total.currency", currency, "an ISO 4217 code such as PEN or USD")
    delivery = _delivery(p, data.get("delivery"))
    document_url = data.get("document_url")
    if document_url is not None:
        if not isinstance(document_url, str) or not _URL.fullmatch(document_url):
            p.add("document_url", document_url, "an http(s) URL of printable ASCII without spaces (percent-encode "
                  "other characters), at most 500 characters after the scheme")
    notes = _notes(p, data.get("notes"))
    if p.items:
        raise InvalidOrder(p.items, source=source)
    order = Order(order_number, issued_on, entity, buyer, supplier, items, amount, str(currency), delivery,
                  document_url, notes)
    canonical = order_json(order, entity=party_json(entity), number=json_string(order_number))
    object.__setattr__(order, "_canonical", canonical)
    if len(order._canonical) > MAX_ORDER_BYTES:
        raise InvalidOrder([f"record: {len(order._canonical)} bytes — at most {MAX_ORDER_BYTES}"], source=source)
    return order


def _notes(p: _Problems, value: Any) -> tuple[str, ...]:
    """Optional ``notes``: 1 to 8 texts, each at most 300 characters (H3: what an OCDS import inferred)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_NOTES:
        p.add("notes", value, f"a list of 1 to {MAX_NOTES} texts")
        return ()
    for index in range(len(value)):
        _text(p, {f"notes[{index}]": value[index]}, "", f"notes[{index}]", MAX_NOTE_CHARS)
    return tuple(str(note) for note in value)


def _order_number(p: _Problems, value: Any) -> str:
    if value is None:
        p.add("order_number", None, "required")
        return ""
    if not isinstance(value, str) or not _ORDER_NUMBER.fullmatch(value):
        p.add("order_number", value, "1 to 40 ASCII letters, digits, '-', '_', '.' or '/', starting with a "
              "letter or digit" + _order_number_detail(value))
        return ""
    return value


def _order_number_detail(value: Any) -> str:
    if not isinstance(value, str) or not value:
        return ""
    if len(value) > 40:
        return f" ({len(value)} characters)"
    bad = next((char for char in value if char not in _ORDER_NUMBER_CHARS), value[0])
    return f" (found {repr(bad) if bad.isascii() and bad.isprintable() else f'U+{ord(bad):04X}'})"


def _delivery(p: _Problems, data: Any) -> Delivery:
    if not isinstance(data, _MAPPING):
        p.add("delivery", data, "required object {place, term_days} or {place, deadline}")
        return Delivery(place="")
    place = _text(p, data, "delivery", "place", 300)
    term, deadline = data.get("term_days"), data.get("deadline")
    if (term is None) == (deadline is None):
        p.add("delivery", dict(data), "give exactly one of term_days or deadline")
        return Delivery(place=place)
    if term is not None:
        if isinstance(term, bool) or not isinstance(term, int) or not 1 <= term <= 3650:
            p.add("delivery.term_days", term, "a whole number of days from 1 to 3650")
        return Delivery(place=place, term_days=term if isinstance(term, int) else None)
    return Delivery(place=place, deadline=_iso_date(p, deadline, "delivery.deadline"))


def load_order(path: Path) -> Order:
    """Read and validate an order JSON file."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_ORDER_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read order file {str(path)!r}: {exc.strerror}",
                           hint="check the path") from exc
    if len(raw) > MAX_ORDER_BYTES:
        raise InvalidInput(f"order file {str(path)!r} is over {MAX_ORDER_BYTES} bytes", hint="is it an order?")
    data = safejson.loads(raw, source=f"order file {str(path)!r}")  # bounded by the read above
    return parse_order(data, source=str(path))
