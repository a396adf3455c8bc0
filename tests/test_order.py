"""The record: every SPEC rule, the canonical form and the on-chain encoding."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peru_compras.errors import InvalidOrder
from peru_compras.order import decode_entry, parse_order, ruc_is_valid

from .conftest import REFERENCE, reference_order


@pytest.mark.parametrize("ruc", ["20546292658", "20608712411", "20131370998"])
def test_ruc_check_digit_accepts_valid(ruc: str) -> None:
    assert ruc_is_valid(ruc)


@pytest.mark.parametrize("ruc", ["20123456789", "2054629265", "205462926580", "2054629265X", "２0546292658"])
def test_ruc_check_digit_refuses_invalid(ruc: str) -> None:
    assert not ruc_is_valid(ruc)


def test_reference_canonical_form_is_sorted_compact_utf8() -> None:
    order = parse_order(REFERENCE)
    canonical = order.canonical_bytes()
    assert len(canonical) == 795
    assert json.loads(canonical) == json.loads(json.dumps(REFERENCE)) | {}
    assert canonical.startswith(b'{"buyer":{"name":"Unidad de Log\xc3\xadstica \xe2\x80\x94 ')
    assert b" " not in canonical.split(b'"items"')[0].replace(b"Unidad de Log", b"").split(b'"name":')[0]
    assert "Alcohol etílico 70°".encode() in canonical


def test_every_bad_field_is_named_with_value_and_rule() -> None:
    record = reference_order(
        order_number="",
        issued_on="2026-13-01",
        total={"amount": "-5", "currency": "SOL"},
        delivery={"place": "Almacén", "term_days": 5, "deadline": "2026-12-01"},
    )
    record["entity"] = {"name": "Hospital", "ruc": "20123456789"}
    record["items"] = [{"description": "Guantes", "quantity": 1.5, "unit": "CAJA"}]
    with pytest.raises(InvalidOrder) as caught:
        parse_order(record)
    problems = "\n".join(caught.value.problems)
    for expected in ("order_number: ''", "issued_on: '2026-13-01'", "entity.ruc: '20123456789'",
                     "items[0].quantity: 1.5", "total.amount: '-5'", "total.currency: 'SOL'", "delivery:"):
        assert expected in problems
    assert len(caught.value.problems) == 7
    assert "SUNAT" in problems and "ISO 4217" in problems


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"items": []}, "items"),
        ({"items": [REFERENCE["items"][0]] * 501}, "at most 500"),
        ({"order_number": "x" * 41}, "at most 40"),
        ({"order_number": "OC\n1"}, "printable"),
        ({"document_url": "javascript:alert(1)"}, "http(s) URL"),
        ({"surprise": 1}, "unknown field"),
        ({"delivery": {"place": "Lima"}}, "exactly one of term_days or deadline"),
        ({"supplier": {"name": "Proveedor", "id": "123", "scheme": "peru"}}, "org-id scheme"),
    ],
)
def test_refuses_rule_breaks(change: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidOrder) as caught:
        parse_order(reference_order(**change))
    assert fragment in str(caught.value)


def test_foreign_entity_uses_scheme_in_key() -> None:
    order = parse_order(reference_order(entity={"name": "Municipalidad de Asunción", "id": "80012345-6",
                                                "scheme": "PY-RUC"}))
    assert order.key == "PY-RUC:80012345-6/OC-2026-004512"
    assert order.verify_path == "/o/PY-RUC:80012345-6/OC-2026-004512"


def test_entry_round_trip_restores_the_canonical_record() -> None:
    order = parse_order(REFERENCE)
    entry = order.encode_entry(b"\x07" * 32)
    assert len(entry) < 300  # 795 bytes of JSON become about 257 on chain
    digest, decoded = decode_entry(entry)
    assert digest == b"\x07" * 32
    assert decoded.canonical_bytes() == order.canonical_bytes()


_text = st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), min_size=1, max_size=60).map(
    lambda s: s.strip() or "x")


@settings(max_examples=60, deadline=None)
@given(description=_text, place=_text, name=_text, number=st.from_regex(r"[A-Za-z0-9\-/]{1,40}", fullmatch=True))
def test_entry_round_trip_any_text(description: str, place: str, name: str, number: str) -> None:
    record = reference_order(order_number=number, delivery={"place": place, "term_days": 3})
    record["items"] = [{"description": description, "quantity": "1", "unit": "UNIDAD"}]
    record["supplier"] = {"name": name, "ruc": "20608712411"}
    order = parse_order(record)
    assert decode_entry(order.encode_entry(b"\x01" * 32))[1] == order
