"""The signed QR: the facts a clerk reads on the paper, signed by the registrar as EIP-712 typed data, carried
in the QR's URL fragment (which a browser never sends to a server), and checked offline against a trust pack.

QR text = ``verify_url + "#" + base64url_nopad(payload)``. Typed data (EIP-712)::

    domain  {name "peru-compras", version "1", chainId, verifyingContract = the registry}
    Order(string orderKey,string issuedOn,string supplier,string total,string currency,uint16 items,bytes32 recordHash)

``orderKey`` is not in the payload: it is the verify URL's path ``/o/<a>/<b>`` as ``unquote(a) + "/" +
unquote(b)``. Payload, big-endian: a header byte (bits 7-5 version 001; bit 3 supplier is text; bit 2 currency
follows; bit 0 = v - 27; bits 4 and 1 zero), issuedOn as uint16 days since 1970-01-01, the supplier (a RUC as
uint40, or a length byte 1-60 and UTF-8 text), the currency (3 letters, only when not PEN), the total (a scale
byte 0-6 and the LEB128 varint of total x 10^scale), the number of items (LEB128), then recordHash, r and s
(32 bytes each). Nothing may follow. The README's "Signed QR" section is the reference for third parties.

Signing computes the EIP-712 digest with keccak and signs it with coincurve (libsecp256k1): about 0.1 ms an
order (benchmarks/signed_qr.py), where eth_account.sign_typed_data costs a few milliseconds.

Verdicts: ``signed`` (a current registrar signed these facts), ``unknown_signer`` (a valid signature by an
address that is not a registrar as of the pack's block; ``revoked_block`` when it held the role and lost it),
``bad_signature`` (the fragment is not a well-formed signed payload, or its signature is not a valid low-s
secp256k1 signature), ``not_signed`` (a plain QR). Facts altered after signing read ``unknown_signer``: ECDSA
recovery over changed facts yields some other address, and offline "altered" and "signed by a stranger" cannot
be told apart — neither is ever ``signed``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from .hashing import keccak256
from .urls import token_hex, token_id_of_key

if TYPE_CHECKING:
    from .order import Order

#: the whole QR text (verify URL, "#" and fragment) fits this many characters, or the plain QR is used
MAX_QR_TEXT = 200
#: the longest fragment the encoding can produce is 177 bytes (236 characters); anything longer is refused unread
MAX_FRAGMENT = 240
VERSION = 1
PEN = "PEN"
MAX_SUPPLIER_BYTES = 60
MAX_SCALE = 6
STATUSES = ("signed", "bad_signature", "unknown_signer", "not_signed")

ORDER_TYPE = ("Order(string orderKey,string issuedOn,string supplier,string total,string currency,uint16 items,"
              "bytes32 recordHash)")
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
DOMAIN_NAME, DOMAIN_VERSION = "peru-compras", "1"

_EPOCH = date(1970, 1, 1)
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_CURRENCY = re.compile(rb"[A-Z]{3}")
_MAX_RUC = 99_999_999_999


class PayloadError(ValueError):
    """The fragment is not a well-formed signed payload (the message says which part and why)."""


@dataclass(frozen=True, slots=True)
class Facts:
    """What the registrar signs: the values of the EIP-712 ``Order`` struct."""

    order_key: str
    issued_on: str
    supplier: str
    total: str
    currency: str
    items: int
    record_hash: bytes

    @property
    def token_id(self) -> int:
        return token_id_of_key(self.order_key)

    def message(self) -> dict[str, Any]:
        """The struct as EIP-712 JSON typed data's ``message`` (recordHash as 0x hex)."""
        return {"orderKey": self.order_key, "issuedOn": self.issued_on, "supplier": self.supplier,
                "total": self.total, "currency": self.currency, "items": self.items,
                "recordHash": "0x" + self.record_hash.hex()}

    def to_json(self) -> dict[str, Any]:
        entity, _, number = self.order_key.partition("/")
        return {"order_key": self.order_key, "entity": entity, "order_number": number,
                "issued_on": self.issued_on, "supplier": self.supplier, "total": self.total,
                "currency": self.currency, "items": self.items, "record_hash": "0x" + self.record_hash.hex(),
                "token_id": token_hex(self.token_id)}


def facts_of(order: Order) -> Facts:
    """The signed facts of `order` (supplier: the RUC, or ``SCHEME:id``)."""
    return Facts(order.key, order.issued_on, order.supplier.key, order.total_amount, order.currency,
                 len(order.items), keccak256(order.canonical_bytes()))


# -- EIP-712 ---------------------------------------------------------------------------------------------


def typed_data(facts: Facts, chain_id: int, registry: str) -> dict[str, Any]:
    """The EIP-712 JSON typed data (as eth_signTypedData_v4 and ethers take it) of `facts`."""
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            "Order": [{"name": "orderKey", "type": "string"}, {"name": "issuedOn", "type": "string"},
                      {"name": "supplier", "type": "string"}, {"name": "total", "type": "string"},
                      {"name": "currency", "type": "string"}, {"name": "items", "type": "uint16"},
                      {"name": "recordHash", "type": "bytes32"}],
        },
        "primaryType": "Order",
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id, "verifyingContract": registry},
        "message": facts.message(),
    }


@cache
def _type_hashes() -> tuple[bytes, bytes, bytes, bytes]:
    return (keccak256(DOMAIN_TYPE.encode()), keccak256(ORDER_TYPE.encode()), keccak256(DOMAIN_NAME.encode()),
            keccak256(DOMAIN_VERSION.encode()))


@cache
def domain_separator(chain_id: int, registry: str) -> bytes:
    """hashStruct(EIP712Domain) for this chain and registry."""
    domain_type, _, name, version = _type_hashes()
    contract = bytes.fromhex(registry.removeprefix("0x").removeprefix("0X"))
    if len(contract) != 20:
        raise ValueError(f"{registry!r} is not a 20-byte address")
    return keccak256(domain_type + name + version + chain_id.to_bytes(32, "big") + contract.rjust(32, b"\0"))


def digest(facts: Facts, chain_id: int, registry: str) -> bytes:
    """The EIP-712 digest ``keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(Order))``."""
    order_type = _type_hashes()[1]
    struct = keccak256(order_type + keccak256(facts.order_key.encode()) + _repeated(facts.issued_on)
                       + _repeated(facts.supplier) + keccak256(facts.total.encode()) + _repeated(facts.currency)
                       + facts.items.to_bytes(32, "big") + facts.record_hash)
    return keccak256(b"\x19\x01" + domain_separator(chain_id, registry) + struct)


@lru_cache(maxsize=4096)
def _repeated(text: str) -> bytes:
    """keccak256 of a value many orders of a batch share (date, supplier, currency)."""
    return keccak256(text.encode())


def address_of(public_key: bytes) -> str:
    """The checksummed address of an uncompressed public key (64 bytes, no 0x04 prefix)."""
    from .chain.abi import to_checksum_address

    return str(to_checksum_address(keccak256(public_key)[-20:]))


# -- the compact payload -----------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def encode(facts: Facts, signature: bytes) -> bytes:
    """The payload of `facts` (without orderKey) and a 65-byte signature r ‖ s ‖ v (v 27 or 28).
    Raises PayloadError when a fact cannot be carried (see :func:`unsignable`)."""
    problem = _unencodable(facts)
    if problem:
        raise PayloadError(problem)
    if len(signature) != 65 or signature[64] not in (27, 28):
        raise PayloadError("a signature is 65 bytes r ‖ s ‖ v with v 27 or 28")
    text_supplier = not (len(facts.supplier) == 11 and facts.supplier.isascii() and facts.supplier.isdigit())
    header = (VERSION << 5) | (text_supplier << 3) | ((facts.currency != PEN) << 2) | (signature[64] - 27)
    out = bytearray([header])
    out += (date.fromisoformat(facts.issued_on) - _EPOCH).days.to_bytes(2, "big")
    if text_supplier:
        raw = facts.supplier.encode()
        out += bytes([len(raw)]) + raw
    else:
        out += int(facts.supplier).to_bytes(5, "big")
    if facts.currency != PEN:
        out += facts.currency.encode("ascii")
    whole, _, decimals = facts.total.partition(".")
    out += bytes([len(decimals)]) + _varint(int(whole + decimals))
    out += _varint(facts.items) + facts.record_hash + signature[:64]
    return bytes(out)


def _unencodable(facts: Facts) -> str | None:
    try:
        days = (date.fromisoformat(facts.issued_on) - _EPOCH).days
    except ValueError:
        return f"issuedOn {facts.issued_on!r} is not a date"
    if not 0 <= days <= 0xFFFF:
        return f"issuedOn {facts.issued_on} is outside 1970-01-01..2149-06-06"
    if not 1 <= len(facts.supplier.encode()) <= MAX_SUPPLIER_BYTES:
        return f"the supplier {facts.supplier!r} is over {MAX_SUPPLIER_BYTES} bytes"
    if not _CURRENCY.fullmatch(facts.currency.encode()):
        return f"the currency {facts.currency!r} is not three letters A-Z"
    whole, _, decimals = facts.total.partition(".")
    if not (whole.isascii() and whole.isdigit() and (not decimals or decimals.isdigit())) or len(decimals) > 6:
        return f"the total {facts.total!r} is not a decimal with at most {MAX_SCALE} decimals"
    if not 1 <= facts.items <= 0xFFFF:
        return f"{facts.items} items is outside 1..65535"
    if len(facts.record_hash) != 32:
        return "the record hash is not 32 bytes"
    return None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, count: int, what: str) -> bytes:
        if self.at + count > len(self.data):
            raise PayloadError(f"cut short: {len(self.data)} bytes, the {what} needs {count} more from byte "
                               f"{self.at}")
        chunk = self.data[self.at:self.at + count]
        self.at += count
        return chunk

    def varint(self, what: str, max_bytes: int) -> int:
        value = 0
        for index in range(max_bytes):
            byte = self.take(1, what)[0]
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                return value
        raise PayloadError(f"the {what} runs over {max_bytes} bytes")


def decode(order_key: str, payload: bytes) -> tuple[Facts, bytes]:
    """The facts (with `order_key`, taken from the verify URL) and the 65-byte signature r ‖ s ‖ v of a
    payload; PayloadError naming the part that is wrong."""
    reader = _Reader(payload)
    header = reader.take(1, "header")[0]
    if header >> 5 != VERSION:
        raise PayloadError(f"unknown signed-QR version {header >> 5} (this peru-compras reads {VERSION})")
    if header & 0b10010:
        raise PayloadError(f"header 0x{header:02x}: bits 4 and 1 must be 0")
    days = int.from_bytes(reader.take(2, "issue date"), "big")
    if header & 0b1000:
        length = reader.take(1, "supplier length")[0]
        if not 1 <= length <= MAX_SUPPLIER_BYTES:
            raise PayloadError(f"supplier length {length}: 1 to {MAX_SUPPLIER_BYTES} bytes")
        try:
            supplier = reader.take(length, "supplier").decode()
        except UnicodeDecodeError:
            raise PayloadError("the supplier is not UTF-8") from None
    else:
        ruc = int.from_bytes(reader.take(5, "supplier RUC"), "big")
        if ruc > _MAX_RUC:
            raise PayloadError(f"supplier RUC {ruc} has over 11 digits")
        supplier = f"{ruc:011d}"
    currency = PEN
    if header & 0b100:
        raw = reader.take(3, "currency")
        if not _CURRENCY.fullmatch(raw):
            raise PayloadError(f"currency {raw!r}: three letters A-Z")
        currency = raw.decode()
    scale = reader.take(1, "total's scale")[0]
    if scale > MAX_SCALE:
        raise PayloadError(f"total's scale {scale}: at most {MAX_SCALE} decimals")
    digits = str(reader.varint("total", 10)).rjust(scale + 1, "0")
    total = f"{digits[:-scale]}.{digits[-scale:]}" if scale else digits
    items = reader.varint("number of items", 3)
    if not 1 <= items <= 0xFFFF:
        raise PayloadError(f"{items} items: 1 to 65535")
    record_hash = reader.take(32, "record hash")
    signature = reader.take(64, "signature (r, s)") + bytes([27 + (header & 1)])
    if reader.at != len(payload):
        raise PayloadError(f"{len(payload) - reader.at} bytes follow the signature (nothing may)")
    issued_on = date.fromordinal(_EPOCH.toordinal() + days).isoformat()
    return Facts(order_key, issued_on, supplier, total, currency, items, record_hash), signature


def to_text(payload: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def from_text(fragment: str) -> bytes:
    """Inverse of :func:`to_text`, strict: the alphabet only, no padding, no stray bits (re-encoding gives
    the same text), at most :data:`MAX_FRAGMENT` characters."""
    if len(fragment) > MAX_FRAGMENT:
        raise PayloadError(f"the fragment has {len(fragment):,} characters, over {MAX_FRAGMENT} (not ours)")
    if not _BASE64URL.fullmatch(fragment) or len(fragment) % 4 == 1:
        raise PayloadError("the fragment is not base64url without padding (A-Z a-z 0-9 - _)")
    payload = base64.urlsafe_b64decode(fragment + "=" * (-len(fragment) % 4))
    if to_text(payload) != fragment:
        raise PayloadError("the fragment's last character carries stray bits (not canonical base64url)")
    return payload


# -- signing ------------------------------------------------------------------------------------------------


def unsignable(order: Order) -> str | None:
    """Why `order`'s facts cannot travel in the compact payload exactly (so the QR stays plain), or None."""
    return _roundtrip_problem(facts_of(order))


def _roundtrip_problem(facts: Facts) -> str | None:
    problem = _unencodable(facts)
    if problem:
        return problem
    restored, _ = decode(facts.order_key, encode(facts, bytes(64) + b"\x1b"))
    if restored != facts:  # e.g. a total written "0120.50": the varint restores "120.50"
        changed = next(name for name in Facts.__slots__ if getattr(restored, name) != getattr(facts, name))
        return f"its {changed} {getattr(facts, changed)!r} would read back as {getattr(restored, changed)!r}"
    return None


@cache
def _private_key(secret: bytes) -> Any:
    from coincurve import PrivateKey

    return PrivateKey(secret)


def sign_digest(secret: bytes, message_digest: bytes) -> bytes:
    """r ‖ s ‖ v (v 27 or 28, low s) of a 32-byte digest."""
    raw: bytes = _private_key(secret).sign_recoverable(message_digest, hasher=None)
    return raw[:64] + bytes([27 + raw[64]])


@dataclass(frozen=True, slots=True)
class QrSigner:
    """Signs an order's facts with the registrar's key: ``signer(order)`` is the QR fragment, or None when
    the facts cannot travel in the payload exactly. Picklable (batch workers get it from their pool
    initializer); its repr never shows the key."""

    private_key: bytes = field(repr=False)
    chain_id: int
    registry: str

    def __post_init__(self) -> None:
        if len(self.private_key) != 32:
            raise ValueError("a private key has 32 bytes")

    @property
    def address(self) -> str:
        public: bytes = _private_key(self.private_key).public_key.format(compressed=False)
        return address_of(public[1:])

    def __call__(self, order: Order) -> str | None:
        facts = facts_of(order)
        if _roundtrip_problem(facts):
            return None
        return to_text(encode(facts, sign_digest(self.private_key, digest(facts, self.chain_id, self.registry))))


def qr_text(verify_url: str, order: Order, signer: Callable[[Order], str | None] | None) -> tuple[str, str | None]:
    """What the order's QR encodes, and a warning line when a signer was given but the plain QR is used:
    ``verify_url + "#" + fragment`` when `signer` signs it and the whole fits :data:`MAX_QR_TEXT` characters,
    else `verify_url` (the order still verifies online)."""
    if signer is None:
        return verify_url, None
    fragment = signer(order)
    if fragment is None:
        problem = unsignable(order)
    else:
        text = f"{verify_url}#{fragment}"
        if len(text) <= MAX_QR_TEXT:
            return text, None
        problem = f"the signed QR text would have {len(text)} characters, over {MAX_QR_TEXT}"
    return verify_url, (f"{order.order_number}: signed QR not used ({problem or 'the signer declined'}); the "
                        "plain QR verifies online")


# -- verifying (the verdicts: peru_compras.qr_check) -------------------------------------------------------


def recover(message_digest: bytes, signature: bytes) -> str:
    """The address that made `signature` (r ‖ s ‖ v) over the digest; PayloadError when it is not a valid
    low-s secp256k1 signature."""
    from coincurve import PublicKey

    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
    if not (0 < r < _SECP256K1_N and 0 < s <= _SECP256K1_N // 2):
        raise PayloadError("the signature's r or s is out of range (r, s in 1..n-1, s at most n/2)")
    try:
        public = PublicKey.from_signature_and_message(signature[:64] + bytes([signature[64] - 27]), message_digest,
                                                      hasher=None)
    except Exception:  # noqa: BLE001 — libsecp256k1 refuses an r that is no point's x coordinate
        raise PayloadError("no public key recovers from this signature (not a valid signature)") from None
    return address_of(public.format(compressed=False)[1:])
