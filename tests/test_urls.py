"""urls.py: token ids as text, the verify URL's 80-character rule, the store's document URL, and the order a
verify URL names. Each rule is checked at its edges, against an independent computation where one exists."""

from __future__ import annotations

from hashlib import sha256

import pytest
from Crypto.Hash import keccak as pycryptodome_keccak

from peru_compras.errors import ConfigurationError, InvalidInput
from peru_compras.order import parse_order
from peru_compras.urls import (
    MAX_VERIFY_URL,
    document_url,
    order_key_from_verify_url,
    parse_token,
    token_hex,
    token_id_of_key,
    verify_url,
)

from .conftest import reference_order


def test_token_hex_is_0x_and_64_lowercase_digits() -> None:
    assert token_hex(0) == "0x" + "0" * 64
    assert token_hex(0xABC) == "0x" + "0" * 61 + "abc"
    assert token_hex(2**256 - 1) == "0x" + "f" * 64


@pytest.mark.parametrize(("text", "expected"), [
    ("0", 0), ("42", 42), (" 42 ", 42), ("0x2a", 42), ("0X2A", 42), ("0x" + "f" * 64, 2**256 - 1),
    (str(2**256 - 1), 2**256 - 1),
])
def test_parse_token_reads_decimal_and_hex(text: str, expected: int) -> None:
    assert parse_token(text) == expected


@pytest.mark.parametrize("text", [
    "", "0x", "0x" + "1" * 65, str(2**256), "1" * 79, "²", "٣", "0x1_0", "1_0", "-1", "0xg", "hl:zQm", "12a",
    "0x 12",
])
def test_parse_token_refuses_everything_else(text: str) -> None:
    assert parse_token(text) is None


def test_token_id_of_key_is_uint256_of_keccak256() -> None:
    key = "20131370998/OC-2026-004512"
    expected = int(pycryptodome_keccak.new(digest_bits=256, data=key.encode()).hexdigest(), 16)
    assert token_id_of_key(key) == expected
    assert token_id_of_key("") == 0xC5D2460186F7233C927E7DB2DCC703C0E500B653CA82273B7BFAD8045D85A470
    order = parse_order(reference_order())
    assert token_id_of_key(order.key) == order.token_id


def test_verify_url_is_base_plus_path_and_at_most_80_characters() -> None:
    order = parse_order(reference_order())
    url = verify_url("https://oc.example.pe/", order)
    assert url == "https://oc.example.pe" + order.verify_path
    room = MAX_VERIFY_URL - len(order.verify_path)
    exact = "https://" + "a" * (room - len("https://"))
    assert len(verify_url(exact, order)) == MAX_VERIFY_URL  # 80 is allowed
    with pytest.raises(ConfigurationError, match="81 characters, over 80"):
        verify_url(exact + "b", order)


def test_document_url_is_the_stores_hashlink_address() -> None:
    digest = sha256(b"%PDF-1.7 test").digest()
    url = document_url("http://127.0.0.1:8000/", digest)
    prefix = "http://127.0.0.1:8000/d/hl:z"
    assert url.startswith(prefix)
    from peru_compras.hashing import parse_digest

    assert parse_digest(url.removeprefix("http://127.0.0.1:8000/d/")) == digest


@pytest.mark.parametrize(("url", "key"), [
    ("https://oc.example.pe/o/20131370998/OC-2026-004512", "20131370998/OC-2026-004512"),
    ("https://oc.example.pe/o/20131370998/OC-2026-004512#ARxyz-_", "20131370998/OC-2026-004512"),
    ("https://oc.example.pe/o/20131370998/OC-2026-004512?lang=en#AR", "20131370998/OC-2026-004512"),
    ("https://oc.example.pe/base/o/PE-X:ab%2Fc/N%C2%BA%201", "PE-X:ab/c/Nº 1"),
    ("https://oc.example.pe/o/20131370998/", None),
    ("https://oc.example.pe/o//OC-1", None),
    ("https://oc.example.pe/x/20131370998/OC-1", None),
    ("https://oc.example.pe/", None),
    ("http://[::1/o/a/b", None),  # not a URL at all
])
def test_order_key_from_verify_url(url: str, key: str | None) -> None:
    assert order_key_from_verify_url(url) == key


def test_order_key_round_trips_the_verify_url() -> None:
    order = parse_order(reference_order())
    assert order_key_from_verify_url(verify_url("https://oc.example.pe", order) + "#payload") == order.key


def test_one_reading_of_a_reference_for_the_cli_and_the_page() -> None:
    """service.reference is what `show`/`verify` resolve and what the page's search looks up."""
    from peru_compras.hashing import hashlink
    from peru_compras.service import Reference, reference

    key = "20131370998/OC-2026-004512"
    assert reference(" 20131370998 / OC-2026-004512 ") == Reference(token_id=token_id_of_key(key), key=key)
    assert reference("42") == Reference(token_id=42)
    assert reference("0x2a") == Reference(token_id=42)
    assert reference("0x" + "ab" * 32) == Reference(token_id=int("ab" * 32, 16), digest=bytes.fromhex("ab" * 32))
    assert reference("AB" * 32).digest == bytes.fromhex("ab" * 32)
    assert reference(hashlink(b"\x01" * 32)) == Reference(digest=b"\x01" * 32)
    for bad in ("", "nada", "0x", "1" * 79, "²"):
        with pytest.raises(InvalidInput):
            reference(bad)
