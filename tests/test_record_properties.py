"""Properties of the record parser and the on-chain decoder under hostile input (issue 14).

Whatever a registrar's key writes to the contract or a file holds — any nesting, any Unicode, any size —
parse_order, decode_entry and load_order either return an order or raise a named error (InvalidOrder or
InvalidJSON), and every problem starts with the field (or entry part) it is about. Never another exception.
"""

from __future__ import annotations

import copy
import json
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peru_compras.errors import InvalidJSON, InvalidOrder
from peru_compras.order import _dictionary, decode_entry, load_order, parse_order

from .conftest import REFERENCE

# "order_number: …", "items[3].cubso: …", "delivery: …", "entry.body: …", "record: …", "notes[0]: …"
FIELD = re.compile(r"(?:entry(?:\.(?:key|version|body))?|record|[A-Za-z0-9_]+(?:\[\d+\])?(?:\.[a-z_]+)*"
                   r"|'[^\n]*['…]|\"[^\n]*[\"…]|<[^\n]*>): ")  # an unknown field's name, as repr (a long one cut: …)

scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50)
           | st.text(st.characters(categories=["Cc", "Cf", "Mn", "Zs", "Lo", "So"]), max_size=20))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)

FIELDS = ["order_number", "issued_on", "entity", "buyer", "supplier", "items", "total", "delivery",
          "document_url", "notes", "pdf", "surprise"]
PATHS = FIELDS + ["entity.name", "entity.ruc", "entity.id", "entity.scheme", "supplier.ruc", "supplier.name",
                  "items.0", "items.0.description", "items.0.quantity", "items.0.cubso", "items.0.unit_price",
                  "total.amount", "total.currency", "delivery.term_days", "delivery.place", "delivery.deadline"]


def assert_named(exc: InvalidOrder | InvalidJSON) -> None:
    if isinstance(exc, InvalidOrder):
        assert exc.problems
        for problem in exc.problems:
            assert FIELD.match(problem), problem
    else:
        assert re.match(r"^[^:]+: ", exc.message), exc.message


def set_path(record: dict[str, Any], path: str, value: Any) -> None:
    """Set record[a][b]... = value; skip it where an earlier change left no such place."""
    target: Any = record
    *parents, last = path.split(".")
    for part in [*parents, last]:
        if isinstance(target, list) and part.isdigit() and int(part) < len(target):
            if part is last:
                target[int(part)] = value
            target = target[int(part)]
        elif isinstance(target, dict) and not part.isdigit():
            if part is last:
                target[part] = value
            target = target.setdefault(part, {})
        else:
            return


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), json_values), min_size=1, max_size=4))
def test_parse_order_only_raises_named_problems(changes: list[tuple[str, Any]]) -> None:
    record = copy.deepcopy(REFERENCE)
    for path, value in changes:
        set_path(record, path, value)
    try:
        order = parse_order(record)
    except InvalidOrder as exc:
        assert_named(exc)
        return
    assert parse_order(json.loads(order.canonical_bytes())) == order


def entry(body: bytes, key: bytes = b"20131370998/OC-2026-004512", *, pack: bool = True) -> bytes:
    if pack:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _dictionary())
        body = packer.compress(body) + packer.flush()
    return b"\x07" * 32 + bytes([len(key) % 256]) + key + b"\x01" + body


def decodes_or_names(raw: bytes) -> None:
    try:
        decode_entry(raw)
    except (InvalidOrder, InvalidJSON) as exc:
        assert_named(exc)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_decode_entry_of_any_bytes(raw: bytes) -> None:
    decodes_or_names(raw)


@settings(max_examples=300, deadline=None)
@given(key=st.text(max_size=60).map(str.encode) | st.binary(max_size=60), body=st.binary(max_size=300))
def test_decode_entry_of_any_key_and_deflated_bytes(key: bytes, body: bytes) -> None:
    decodes_or_names(entry(body, key))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(PATHS[1:]), json_values), max_size=3),
       key=st.sampled_from(["20131370998/OC-1", "PY-RUC:80012345-6/OC-1", "x/OC-1", "20131370998/", "/",
                            "20131370998/\u041e\u0421-1", "pe-ruc:20131370998/OC-1", "A:B:C/D/E"]))
def test_decode_entry_of_any_record_shaped_body(changes: list[tuple[str, Any]], key: str) -> None:
    body = {k: v for k, v in copy.deepcopy(REFERENCE).items() if k != "order_number"}
    body["entity"] = {"name": REFERENCE["entity"]["name"]}
    for path, value in changes:
        set_path(body, path, value)
    decodes_or_names(entry(json.dumps(body, ensure_ascii=False).encode(), key.encode()))


nestings = st.recursive(st.just("1") | st.just('"["') | st.just("{}"),
                        lambda inner: st.builds(lambda v: f"[{v}]", inner) | st.builds(lambda v: f'{{"k":{v}}}', inner),
                        max_leaves=5)


@settings(max_examples=100, deadline=None)
@given(depth=st.integers(min_value=1, max_value=250_000), opener=st.sampled_from(["[", '{"a":', "[{\"b\":"]),
       closed=st.booleans(), inner=nestings)
def test_any_nesting_is_parsed_or_refused_by_name(depth: int, opener: str, closed: bool, inner: str) -> None:
    closer = {"[": "]", '{"a":': "}", '[{"b":': "}]"}[opener]
    text = opener * depth + inner + (closer * depth if closed else "")
    if len(text) > 256 * 1024:
        text = text[: 256 * 1024]
    decodes_or_names(entry(text.encode()))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200) | nestings | json_values.map(json.dumps))
def test_load_order_of_any_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "orden.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_order(path)
    except (InvalidOrder, InvalidJSON) as exc:
        assert_named(exc)
        assert "orden.json" in str(exc)


@pytest.mark.parametrize("digits", [5000, 4301, 101])
def test_huge_numbers_in_records_and_entries_are_named(digits: int, tmp_path: Path) -> None:
    number = "9" * digits
    body = {k: v for k, v in copy.deepcopy(REFERENCE).items() if k != "order_number"}
    body["entity"] = {"name": REFERENCE["entity"]["name"]}
    for field in ("delivery.term_days", "total.amount"):
        for record, where in ((copy.deepcopy(REFERENCE), "file"), (copy.deepcopy(body), "entry")):
            set_path(record, field, "__N__")
            text = json.dumps(record).replace('"__N__"', number)
            message = f"key '{field.split('.')[1]}': a number of {digits} digits, over the limit of 100"
            with pytest.raises(InvalidJSON, match=message):
                if where == "entry":
                    decode_entry(entry(text.encode()))
                else:
                    path = tmp_path / "orden.json"
                    path.write_text(text)
                    load_order(path)
    as_string = copy.deepcopy(REFERENCE)
    set_path(as_string, "total.amount", number)
    with pytest.raises(InvalidOrder, match=r"^invalid order \(1 problem\): total.amount: '9999"):
        parse_order(as_string)
