"""The addresses and identifiers an order is known by: its token id as text, its verify URL (the QR's
80-character rule), its document's URL in the built-in store, and the order a verify URL names.

The one place for each: a token id is written ``0x`` + 64 lowercase hex digits everywhere (CLI, JSON, page,
OCDS); the token id of an order is ``uint256(keccak256("<entity>/<order number>"))``. Importing this module
is cheap (keccak is pycryptodome's, loaded on first use: :func:`peru_compras.hashing.keccak256`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .errors import ConfigurationError
from .hashing import hashlink, keccak256

if TYPE_CHECKING:
    from .order import Order

#: a QR of version 4 at error-correction level M holds 80 bytes: the verify URL must fit
MAX_VERIFY_URL = 80
#: where the built-in store publishes documents, under the base URL (the registry's documentBaseURI)
DOCUMENT_PATH = "/d/"
_HEX = frozenset("0123456789abcdefABCDEF")


def token_hex(token_id: int) -> str:
    """``0x`` followed by 64 lowercase hex digits."""
    return f"0x{token_id:064x}"


def parse_token(text: str) -> int | None:
    """A token id from decimal digits or 0x-prefixed hex (up to 64 digits); None when it is neither or out of
    the uint256 range."""
    value = text.strip()
    if value[:2].lower() == "0x":
        digits = value[2:]
        if not 0 < len(digits) <= 64 or not all(c in _HEX for c in digits):
            return None
        return int(digits, 16)
    if not value or len(value) > 78 or not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if number < 2**256 else None


def token_id_of_key(key: str) -> int:
    """The token id of the order with key ``"<entity>/<order number>"``: ``uint256(keccak256(key))``."""
    return int.from_bytes(keccak256(key.encode()), "big")


def verify_url(base_url: str, order: Order) -> str:
    """The URL the order's QR encodes: `base_url` + ``/o/<entity>/<order number>``, at most 80 characters."""
    return check_verify_url(base_url.rstrip("/") + order.verify_path)


def check_verify_url(url: str) -> str:
    """`url` when it fits the QR (at most 80 characters); ConfigurationError naming the base URL to shorten."""
    if len(url) > MAX_VERIFY_URL:
        raise ConfigurationError(
            f"verify URL {url!r} has {len(url)} characters, over {MAX_VERIFY_URL} (the QR limit)",
            hint="use a shorter --base-url (e.g. https://oc.example.pe)",
        )
    return url


def document_url(base_url: str, sha256: bytes) -> str:
    """Where the built-in store publishes the document with this SHA-256: ``<base_url>/d/<hashlink>``."""
    return base_url.rstrip("/") + DOCUMENT_PATH + hashlink(sha256)


def order_key_from_verify_url(url: str) -> str | None:
    """``"<entity>/<order number>"`` from a verify URL ``…/o/<entity>/<order number>`` (its query and
    fragment, such as a signed QR's payload, are ignored); None when the path is not an order's."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    parts = path.split("/")
    if len(parts) >= 4 and parts[-3] == "o" and parts[-2] and parts[-1]:
        return unquote(parts[-2]) + "/" + unquote(parts[-1])
    return None


def node_url_problem(url: str) -> str | None:
    """Why `url` cannot be a JSON-RPC node's address (http or https, a host, a port that parses), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises for a port out of range or not a number
    except ValueError as exc:
        return f"it does not parse ({exc})"
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not parts.hostname:
        return "it names no host"
    return None


def host_of(url: str) -> str:
    """`url` without credentials, path or query: ``scheme://host:port`` (for messages; a hosted node's path
    or query may carry an access key)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "?"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")
