"""The record: every SPEC rule, the canonical form and the on-chain encoding.

Written as the rules they protect, each at its edges (a mutation run, benchmarks/mutation.py, checks that a
changed rule makes one of them fail). Keep this file fast: it runs once per mutant.
"""

from __future__ import annotations

import copy
import json
import unicodedata
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peru_compras.errors import InvalidInput, InvalidJSON, InvalidOrder
from peru_compras.order import (
    MAX_ITEMS,
    MAX_ORDER_BYTES,
    Order,
    _dictionary,
    check_text,
    decode_entry,
    load_order,
    parse_order,
    ruc_is_valid,
    text_problem,
)

from .conftest import REFERENCE, reference_order

# --------------------------------------------------------------------------------------------------
# RUC: SUNAT's check digit


def sunat_check_digit(first_ten: str) -> int:
    """SUNAT's rule as SPEC words it, written apart from the package: weights 5,4,3,2,7,6,5,4,3,2 over the
    first ten digits, d = 11 - (sum mod 11), then 10 becomes 0 and 11 becomes 1."""
    total = 0
    for digit, weight in zip(first_ten, [5, 4, 3, 2, 7, 6, 5, 4, 3, 2], strict=True):
        total += int(digit) * weight
    d = 11 - (total % 11)
    if d == 10:
        return 0
    if d == 11:
        return 1
    return d


# One valid RUC for every value of d = 11 - (sum mod 11), so every branch of the rule is taken.
VALID_RUCS = {
    1: "10914177761", 2: "10101222832", 3: "20497869073", 4: "10241586834", 5: "10170669075",
    6: "20148396036", 7: "10636083777", 8: "20748906828", 9: "20391500089",
    10: "10286570700",  # d = 10 → 0
    11: "10533740681",  # d = 11 → 1
}


@pytest.mark.parametrize(("d", "ruc"), sorted(VALID_RUCS.items()))
def test_ruc_valid_for_every_value_of_d(d: int, ruc: str) -> None:
    assert sunat_check_digit(ruc[:10]) == d % 10
    assert ruc_is_valid(ruc)
    for wrong in "0123456789":
        if wrong != ruc[10]:
            assert not ruc_is_valid(ruc[:10] + wrong), ruc[:10] + wrong


@pytest.mark.parametrize("ruc", ["20546292658", "20608712411", "20131370998", "20663234740"])
def test_ruc_check_digit_accepts_the_spec_examples(ruc: str) -> None:
    assert ruc_is_valid(ruc)


@pytest.mark.parametrize(
    "ruc",
    [
        "20123456789",  # SPEC's invalid example
        "20663234741",  # d = 10 must give 0, not 1 (or 10)
        "10533740680", "10533740682",  # d = 11 must give 1
        "2054629265", "205462926580", "2054629265X", "", "20546 92658",
        "２0546292658", "٢0546292658", "²0546292658",  # digits, but not ASCII: one is not even int()-able
        "٠1000000020", "２1000000400",  # their UTF-8 bytes would pass the check digit: ASCII is checked first
        "20546292658\n", " 20546292658"[:11],
    ],
)
def test_ruc_check_digit_refuses_invalid(ruc: str) -> None:
    assert not ruc_is_valid(ruc)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10**10 - 1))
def test_exactly_one_last_digit_is_accepted_and_it_is_sunats(prefix_number: int) -> None:
    prefix = f"{prefix_number:010d}"
    accepted = [digit for digit in "0123456789" if ruc_is_valid(prefix + digit)]
    assert accepted == [str(sunat_check_digit(prefix))]


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10**11 - 1))
def test_any_11_digit_number_is_accepted_exactly_when_its_check_digit_is_right(number: int) -> None:
    ruc = f"{number:011d}"
    assert ruc_is_valid(ruc) == (int(ruc[10]) == sunat_check_digit(ruc[:10]))


# --------------------------------------------------------------------------------------------------
# Helpers


def problems_of(record: Any) -> list[str]:
    with pytest.raises(InvalidOrder) as caught:
        parse_order(record)
    return caught.value.problems


def with_path(path: str, value: Any) -> dict[str, Any]:
    """The reference record with `path` ("a.b", "items[0].c") set to `value` (or removed: DELETE)."""
    record = copy.deepcopy(REFERENCE)
    *parents, last = path.replace("[0]", ".0").split(".")
    target: Any = record
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return record


DELETE = object()


def refused(path: str, value: Any, fragment: str = "") -> None:
    """Exactly one problem: the field, then the value given (its repr, cut at 57), then the rule."""
    problems = problems_of(with_path(path, value))
    assert len(problems) == 1, problems
    shown = repr(value)[:57] if not (isinstance(value, int) and value.bit_length() > 200) else "<a number"
    assert problems[0].startswith(f"{path}: {shown}"), problems
    assert fragment in problems[0], problems


def accepted(path: str, value: Any) -> Any:
    return parse_order(with_path(path, value))


# --------------------------------------------------------------------------------------------------
# Required fields


@pytest.mark.parametrize(
    "path",
    ["order_number", "issued_on", "entity", "buyer", "supplier", "total", "total.amount", "delivery",
     "entity.name", "buyer.name", "supplier.name", "delivery.place", "items[0].description",
     "items[0].quantity", "items[0].unit"],
)
def test_each_required_field_missing_is_named(path: str) -> None:
    problems = problems_of(with_path(path, DELETE))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}: None — required"), problems


def test_items_missing_is_named() -> None:
    assert problems_of(with_path("items", DELETE)) == ["items: None — a list of 1 to 500 items"]


@pytest.mark.parametrize("party", ["entity", "supplier"])
def test_entity_and_supplier_need_an_identifier(party: str) -> None:
    problems = problems_of(with_path(party, {"name": "Sin identificador"}))
    assert problems == [f"{party}: {{'name': 'Sin identificador'}} — needs ruc (11 digits) or id with scheme "
                        "(e.g. PY-RUC)"]


def test_buyer_needs_no_identifier_and_optional_fields_may_be_left_out() -> None:
    record = with_path("buyer", {"name": "Oficina de Abastecimiento"})
    record["items"] = [{"description": "Guantes", "quantity": "1", "unit": "CAJA"}]
    del record["total"]["currency"]
    order = parse_order(record)
    assert order.buyer.to_json() == {"name": "Oficina de Abastecimiento"}
    assert order.buyer.ruc is None and order.entity.ruc == "20131370998"
    assert order.currency == "PEN" and order.document_url is None
    assert order.items[0].to_json() == {"description": "Guantes", "quantity": "1", "unit": "CAJA"}
    with pytest.raises(InvalidInput, match="has no identifier"):
        _ = order.buyer.key


# --------------------------------------------------------------------------------------------------
# Ranges


@pytest.mark.parametrize("days", [1, 2, 3649, 3650])
def test_term_days_accepted_from_1_to_3650(days: int) -> None:
    assert accepted("delivery", {"place": "Lima", "term_days": days}).delivery.term_days == days


@pytest.mark.parametrize("days", [0, -1, 3651, True, False, "3", 3.0, None, 10**30])
def test_term_days_refused_outside_1_to_3650_and_when_not_an_integer(days: Any) -> None:
    delivery = {"place": "Lima", "term_days": days}
    if days is None:  # term_days null and no deadline: neither is given
        assert "exactly one of term_days or deadline" in problems_of(with_path("delivery", delivery))[0]
        return
    refused("delivery.term_days", days, "a whole number of days from 1 to 3650")


def test_a_5000_digit_term_days_is_named_not_an_internal_error() -> None:
    problem = problems_of(with_path("delivery", {"place": "Lima", "term_days": 10**5000}))[0]
    assert problem == "delivery.term_days: <a number of over 60 digits> — a whole number of days from 1 to 3650"


def test_deadline_instead_of_term_days() -> None:
    order = accepted("delivery", {"place": "Lima", "deadline": "2026-12-31"})
    assert order.delivery.to_json() == {"place": "Lima", "deadline": "2026-12-31"}
    assert problems_of(with_path("delivery", {"place": "Lima", "deadline": "2026-12-32"})) == [
        "delivery.deadline: '2026-12-32' — an ISO date YYYY-MM-DD"]
    assert "exactly one" in problems_of(with_path("delivery", {"place": "Lima", "term_days": 3,
                                                               "deadline": "2026-12-31"}))[0]


@pytest.mark.parametrize("amount", ["0.000001", "1", "120", "18.50", "999999999999999", "999999999999999.999999",
                                    7, "0010"])
def test_amounts_accepted(amount: Any) -> None:
    assert accepted("total.amount", amount).total_amount == str(amount)


@pytest.mark.parametrize(
    "amount",
    ["0", "0.0", "0.000000", "-5", "+5", "1.", ".5", "1e3", "1_000", "1,5", " 1", "1 ", "１", "NaN", "Infinity",
     "1234567890123456", "1.1234567", "120\n", "", 0, -3, True, 18.5, [], {}],
)
def test_amounts_refused(amount: Any) -> None:
    refused("total.amount", amount)


def test_amount_refusals_say_the_rule() -> None:
    assert problems_of(with_path("total.amount", "0"))[0] == "total.amount: '0' — must be greater than 0"
    assert problems_of(with_path("total.amount", "1e3")) == [
        "total.amount: '1e3' — a decimal number like 120 or 18.50 (digits, optional dot and up to 6 decimals)"]
    assert problems_of(with_path("total.amount", True)) == ["total.amount: True — must be a decimal string"]
    assert problems_of(with_path("total.amount", 18.5))[0].endswith('(write it as a string, e.g. "18.50")')
    assert "must be greater than 0" in problems_of(with_path("items[0].quantity", "0"))[0]
    assert "must be greater than 0" in problems_of(with_path("items[0].unit_price", "0.00"))[0]


def test_items_from_1_to_500() -> None:
    item = {"description": "Guantes", "quantity": "1", "unit": "CAJA"}
    assert len(accepted("items", [item] * MAX_ITEMS).items) == 500
    assert problems_of(with_path("items", [item] * 501)) == ["items: '501 items' — at most 500 items"]
    assert problems_of(with_path("items", [])) == ["items: '[]' — a list of 1 to 500 items"]
    assert problems_of(with_path("items", item))[0].startswith("items: {")
    assert problems_of(with_path("items", ["Guantes"]))[0].startswith("items[0]: 'Guantes' — must be an object")


# --------------------------------------------------------------------------------------------------
# Patterns at their edges (each checked on the whole string: a final newline is refused)


@pytest.mark.parametrize("number", ["OC-2026-004512", "1", "A", "x" * 40, "OC/2026/1", "OC_1.2", "a..b", "0.",
                                    "OC-0871-2026-MPC", "oc-2026-004512"])
def test_order_numbers_accepted(number: str) -> None:
    assert accepted("order_number", number).order_number == number


LOOK_ALIKES = [
    "OC-2026-PIÑA",  # NFC
    unicodedata.normalize("NFD", "OC-2026-PIÑA"),  # the same on screen, other bytes: would be a second token
    "OC-2026-0045\u034f12",  # combining grapheme joiner: invisible
    "\u041e\u0421-2026-004512",  # Cyrillic О and С
    "OC\u20112026\u2011004512",  # non-breaking hyphens
    "OC-2026-004512\u3164", "OC-2026-004512\u2800", "OC-2026-004512\uffa0",  # blank fillers
    "OC-2026-004512\u200b", "OC-2026-004512\u202e", "ＯＣ-2026-004512",
]


@pytest.mark.parametrize("number", LOOK_ALIKES + [".", "..", ".x", "/x", "-x", "_x", "x" * 41, "OC 1", "OC-1\n",
                                                 "OC-<b>1", "OC\\1", "", " OC-1", 12345, None])
def test_order_numbers_refused(number: Any) -> None:
    problems = problems_of(with_path("order_number", number))
    assert len(problems) == 1 and problems[0].startswith("order_number: ")


def test_order_number_refusal_names_the_character() -> None:
    assert problems_of(with_path("order_number", "\u041eC-1"))[0].endswith("(found U+041E)")
    assert problems_of(with_path("order_number", "OC-1\n"))[0].endswith("(found U+000A)")
    assert problems_of(with_path("order_number", ".."))[0].endswith("(found '.')")
    assert problems_of(with_path("order_number", "x" * 41))[0].endswith("(41 characters)")
    assert problems_of(with_path("order_number", "." + "x" * 39))[0].endswith("(found '.')")  # 40: not too long
    assert problems_of(with_path("order_number", ""))[0] == (
        "order_number: '' — 1 to 40 ASCII letters, digits, '-', '_', '.' or '/', starting with a letter or digit")


@pytest.mark.parametrize(("scheme", "ident"), [("PY-RUC", "80012345-6"), ("MX-RFC", "XAXX010101000"),
                                               ("CO-NIT", "x" * 40), ("AB-12", "a.b-c"), ("XX-" + "A" * 12, "1")])
def test_foreign_identifiers_accepted(scheme: str, ident: str) -> None:
    order = accepted("supplier", {"name": "Proveedor", "id": ident, "scheme": scheme})
    assert order.supplier.to_json() == {"id": ident, "name": "Proveedor", "scheme": scheme}
    assert order.supplier.ruc is None


@pytest.mark.parametrize("scheme", ["CUA", "DEP-GOB-JAL", "ocds-03ad3f", "SIASI", "x" * 40, "PYRUC", "PY_RUC"])
def test_a_publishers_own_scheme_is_accepted(scheme: str) -> None:
    order = accepted("supplier", {"name": "P", "id": "80012345-6", "scheme": scheme})
    assert order.supplier.key == f"{scheme}:80012345-6"


@pytest.mark.parametrize("scheme", ["pe-ruc", "py-ruc", "PY-ruc", "Py-RUC", "co-nit"])
def test_an_org_id_scheme_in_another_case_is_refused(scheme: str) -> None:
    # "pe-ruc:20131370998" would be a second key, looking like the RUC 20131370998, and skip the RUC check
    problems = problems_of(with_path("entity", {"name": "H", "id": "20131370998", "scheme": scheme}))
    assert problems == [f"entity.scheme: {scheme!r} — an org-id scheme is written in capitals: {scheme.upper()!r}"]


@pytest.mark.parametrize("scheme", ["PY-RUC\n", " PY-RUC", "PY-RUC!", "PE:RUC", "PE/RUC", "-PE", ".PE", "x" * 41,
                                    "PEÑ-RUC", "", None, 7])
def test_schemes_refused(scheme: Any) -> None:
    problems = problems_of(with_path("supplier", {"name": "P", "id": "80012345-6", "scheme": scheme}))
    assert problems[0].startswith("supplier.scheme: ") and "org-id scheme" in problems[0], problems


@pytest.mark.parametrize("ident", ["80012345-6\n", "-80012345", ".1", "8001 2345", "8001_2345", "x" * 41, "ÑU-1",
                                   "!80012345", "80012345-6!"])
def test_foreign_ids_refused(ident: str) -> None:
    problems = problems_of(with_path("supplier", {"name": "P", "id": ident, "scheme": "PY-RUC"}))
    assert problems == [f"supplier.id: {ident!r} — letters, digits, '.' and '-' only, at most 40"]


def test_party_identifier_rules() -> None:
    both = {"name": "P", "ruc": "20608712411", "id": "80012345-6", "scheme": "PY-RUC"}
    assert problems_of(with_path("supplier", both)) == [
        "supplier: {'id': '80012345-6', 'name': 'P', 'ruc': '20608712411', '… — give either ruc, or id with scheme, "
        "not both"]
    ruc_and_foreign_scheme = {"name": "P", "ruc": "20608712411", "scheme": "PY-RUC"}
    assert "not both" in problems_of(with_path("supplier", ruc_and_foreign_scheme))[0]
    ruc_and_id = {"name": "P", "ruc": "20608712411", "id": "20608712411"}
    assert "not both" in problems_of(with_path("supplier", ruc_and_id))[0]
    # "ruc" is PE-RUC: saying so is allowed, and an id with scheme PE-RUC is a RUC
    same = accepted("supplier", {"name": "P", "ruc": "20608712411", "scheme": "PE-RUC"})
    assert same.supplier.to_json() == {"name": "P", "ruc": "20608712411"}
    as_id = accepted("supplier", {"name": "P", "id": "20608712411", "scheme": "PE-RUC"})
    assert as_id.supplier.to_json() == {"name": "P", "ruc": "20608712411"}
    assert problems_of(with_path("supplier", {"name": "P", "id": "20123456789", "scheme": "PE-RUC"})) == [
        "supplier.id: '20123456789' — a RUC has 11 digits and SUNAT's check digit"]
    assert problems_of(with_path("supplier.ruc", 20608712411)) == [
        "supplier.ruc: 20608712411 — must be a string"]
    assert problems_of(with_path("supplier", {"name": "P", "id": 123, "scheme": "PY-RUC"})) == [
        "supplier.id: 123 — must be a string"]
    assert problems_of(with_path("supplier", {"name": "P", "id": "1"}))[0].startswith(
        "supplier.scheme: None — an org-id scheme like PE-RUC, PY-RUC, MX-RFC, CO-NIT")
    assert problems_of(with_path("supplier", "Proveedor"))[0].startswith(
        "supplier: 'Proveedor' — required object {name, ruc} or {name, id, scheme}")


@pytest.mark.parametrize("cubso", ["12345678", "1234567890123456"])
def test_cubso_accepted_with_8_to_16_digits(cubso: str) -> None:
    assert accepted("items[0].cubso", cubso).items[0].cubso == cubso


@pytest.mark.parametrize("cubso", ["1234567", "12345678901234567", "abc", "abcdefgh", "12345678\n", "1234 5678",
                                   "１２３４５６７８", 12345678, ""])
def test_cubso_refused(cubso: Any) -> None:
    refused("items[0].cubso", cubso, "a CUBSO code: 8 to 16 digits")


@pytest.mark.parametrize("currency", ["PEN", "USD", "EUR", "PYG", "ZWG", "XCG"])
def test_currencies_accepted(currency: str) -> None:
    assert accepted("total.currency", currency).currency == currency


@pytest.mark.parametrize("currency", ["SOL", "pen", "PEN\n", "XXX", "XTS", "XAU", "EEK", "USS", "", None, 604, []])
def test_currencies_refused(currency: Any) -> None:
    refused("total.currency", currency, "an ISO 4217 code such as PEN or USD")


def test_currency_list_is_iso_4217_active_codes() -> None:
    from peru_compras.order import _CURRENCIES

    assert len(_CURRENCIES) == 166 and all(len(code) == 3 and code.isupper() for code in _CURRENCIES)


@pytest.mark.parametrize("day", ["2026-11-20", "2024-02-29", "0001-01-01", "9999-12-31"])
def test_dates_accepted(day: str) -> None:
    assert accepted("issued_on", day).issued_on == day


@pytest.mark.parametrize("day", ["2026-02-29", "2026-13-01", "2026-11-20\n", "20261120", "2026-W47-5", "2026-324",
                                 "2026-11-20T00:00", "26-11-20", "２０２６-11-20", 20261120, None, ""])
def test_dates_refused(day: Any) -> None:
    problems = problems_of(with_path("issued_on", day))
    assert len(problems) == 1 and problems[0].startswith(f"issued_on: {day!r} — ") and "ISO date" in problems[0]


@pytest.mark.parametrize("url", ["https://x.pe/a", "http://x.pe", "https://" + "a" * 500, "http://" + "a" * 500,
                                 "https://www.gob.pe/instituci%C3%B3n?a=1&b=%20#f"])
def test_document_urls_accepted(url: str) -> None:
    assert accepted("document_url", url).document_url == url


@pytest.mark.parametrize(
    "url",
    ["https://x.pe/a\n", "https://x.pe/\x1b[2J\x1b[1;1Hstatus: valid", "https://x.pe/\x00", "https://x.pe/\x7f",
     "https://x.pe/\u202eaxe", "https://x.pe/\u200b", "https://x.pe/a b", "https://x.pe/instituci\u00f3n",
     "https://g\u043eb.pe/", "ftp://x.pe/a", "javascript:alert(1)", "https://", "HTTPS://x.pe",
     " https://x.pe", "https://" + "a" * 501, "http://" + "a" * 501, 5],
)
def test_document_urls_refused(url: Any) -> None:
    refused("document_url", url, "an http(s) URL of printable ASCII without spaces")


# --------------------------------------------------------------------------------------------------
# Text rules for free text (names, descriptions, units, places) and check_text for other outside text

BAD_TEXT = {
    "NUL": "Hospital\x00", "ESC": "Hospital \x1b[2J", "DEL": "Hospital\x7f", "line break": "Hospital\nRegional",
    "U+0085": "Hospital\x85Regional", "U+2028": "Hospital\u2028Regional",
    "right-to-left override": "Hospital \u202eRegional", "zero-width space": "Hos\u200bpital",
    "zero-width joiner": "Hos\u200dpital", "BOM": "\ufeffHospital", "soft hyphen": "Hos\u00adpital",
    "non-ASCII + format": "Logística\u202e", "private use": "Hospital \ue000", "unassigned": "Hospital \U000e0080",
    "CGJ": "Hospital\u034f Regional", "Hangul filler": "Hospital \u3164", "braille blank": "Hospital\u2800",
    "halfwidth filler": "Hospital \uffa0", "variation selector": "Hospital\ufe0f", "Mongolian FVS": "A\u180bB",
    "NFD": unicodedata.normalize("NFD", "Logística"), "Zalgo": "Hospital x\u0301\u0302\u0303\u0304",
    "leading space": " Hospital", "trailing NBSP": "Hospital\u00a0", "empty": "", "blank": " \u3000 ",
}


@pytest.mark.parametrize("name", sorted(BAD_TEXT))
def test_text_rules_refuse(name: str) -> None:
    value = BAD_TEXT[name]
    for path in ("entity.name", "items[0].description", "items[0].unit", "delivery.place"):
        refused(path, value)
    assert text_problem(value) is not None


@pytest.mark.parametrize(
    "value",
    ["Distribuidora Andina del Perú S.A.C.", "Unidad de Logística — Oficina de Abastecimiento",
     "Alcohol etílico 70°, frasco 1 L", "Ñandú\u00a0Ñuñoa", "Больница №1", "東京トレーディング Tokyo",
     "株式会社ABC", "서울상사 Seoul", "Cable 2.5 mm²", "Ω Tech", "x\u0301\u0302\u0303 x", "a" * 200],
)
def test_text_rules_accept_real_names(value: str) -> None:
    assert accepted("supplier.name", value).supplier.name == value


@pytest.mark.parametrize("word", ["H\u043espital", "Hospit\u0430l", "\u0391lpha", "Perú\u0441", "Ω-Tech"])
def test_party_names_refuse_a_word_mixing_latin_with_look_alikes(word: str) -> None:
    for party in ("entity", "buyer", "supplier"):
        refused(f"{party}.name", f"{word} Regional", "one script per word")
    assert accepted("items[0].description", f"Vitamina B12 500μg {word}")  # free text, not a name


def test_text_length_limits() -> None:
    for path, limit in [("entity.name", 200), ("items[0].description", 500), ("items[0].unit", 40),
                        ("delivery.place", 300)]:
        assert accepted(path, "x" * limit)
        refused(path, "x" * (limit + 1), f"at most {limit} characters")
        refused(path, 5, "must be a string")


def test_check_text_for_other_outside_strings() -> None:
    assert check_text("Error en el monto", "--reason", limit=1000) == "Error en el monto"
    assert check_text("x" * 10, "--reason", limit=10) == "x" * 10
    with pytest.raises(InvalidInput) as caught:
        check_text("Monto \u202eodalumna", "--reason", limit=1000)
    assert caught.value.message == ("--reason: 'Monto \\u202eodalumna' — printable characters only, found U+202E "
                                    "(no line breaks, control, format or invisible characters)")
    with pytest.raises(InvalidInput, match=r"^--reason: 'xxxxxxxxxxx' — at most 10 characters") as caught:
        check_text("x" * 11, "--reason", limit=10)
    assert caught.value.hint == "fix --reason and try again"
    with pytest.raises(InvalidInput, match="must be a string"):
        check_text(None, "--reason", limit=10)
    with pytest.raises(InvalidInput, match="one script per word"):
        check_text("H\u043espital", "name", limit=100, name=True)
    assert check_text("H\u043espital", "reason", limit=100) == "H\u043espital"


def test_long_values_are_cut_in_messages() -> None:
    problem = problems_of(with_path("entity.name", "x" * 300))[0]
    assert problem == "entity.name: '" + "x" * 56 + "… — at most 200 characters"
    assert problems_of(with_path("entity.name", "x" * 201))[0].startswith("entity.name: '" + "x" * 56 + "… —")
    # a repr of exactly 60 characters is shown whole, 61 is cut
    assert problems_of(with_path("items[0].cubso", "x" * 58))[0].startswith("items[0].cubso: '" + "x" * 58 + "' —")
    assert problems_of(with_path("items[0].cubso", "x" * 59))[0].startswith("items[0].cubso: '" + "x" * 56 + "… —")
    assert problems_of(with_path("total", [[[[[["deep"]]]]]]))[0].startswith("total: [[[[...]]]] — required")
    assert problems_of(with_path("delivery.term_days", 2**200))[0].startswith(
        "delivery.term_days: <a number of over 60 digits> —")
    assert problems_of(with_path("delivery.term_days", 2**200 - 1))[0].startswith(
        "delivery.term_days: 160693804425899027...2993782792835301375 —")


# --------------------------------------------------------------------------------------------------
# The record as a whole


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
        parse_order(record, source="orden.json")
    problems = "\n".join(caught.value.problems)
    for expected in ("order_number: ''", "issued_on: '2026-13-01'", "entity.ruc: '20123456789'",
                     "items[0].quantity: 1.5", "total.amount: '-5'", "total.currency: 'SOL'", "delivery:"):
        assert expected in problems
    assert len(caught.value.problems) == 7
    assert "SUNAT" in problems and "ISO 4217" in problems
    assert str(caught.value).startswith("orden.json: invalid order (7 problems): order_number: ''")


def test_unknown_fields_refused_and_pdf_allowed() -> None:
    assert problems_of(reference_order(surprise=1)) == [
        "surprise: 1 — unknown field (allowed: buyer, delivery, document_url, entity, issued_on, items, "
        "notes, order_number, supplier, total)"]
    assert parse_order(reference_order(pdf="a.pdf")).to_json() == parse_order(REFERENCE).to_json()


@pytest.mark.parametrize("record", [[], "order", None, 5])
def test_a_record_must_be_an_object(record: Any) -> None:
    with pytest.raises(InvalidOrder, match="must be a JSON object"):
        parse_order(record)


def test_reference_canonical_form_is_sorted_compact_utf8() -> None:
    order = parse_order(REFERENCE)
    canonical = order.canonical_bytes()
    assert len(canonical) == 795
    assert json.loads(canonical) == REFERENCE
    assert canonical == json.dumps(REFERENCE, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    assert "Alcohol etílico 70°".encode() in canonical


def test_reference_key_token_id_and_verify_path() -> None:
    order = parse_order(REFERENCE)
    assert order.key == "20131370998/OC-2026-004512"
    # uint256(keccak256(key)), big-endian as the contract reads it
    assert order.token_id == 0x60C6DFD02E96A15507C651B017CC484C469C21DF5858077FAAC9C04FF52E0BF3
    assert order.verify_path == "/o/20131370998/OC-2026-004512"


def test_foreign_entity_uses_scheme_in_key_and_slashes_are_encoded() -> None:
    order = parse_order(reference_order(order_number="OC/2026/1", entity={
        "name": "Municipalidad de Asunción", "id": "80012345-6", "scheme": "PY-RUC"}))
    assert order.key == "PY-RUC:80012345-6/OC/2026/1"
    assert order.verify_path == "/o/PY-RUC:80012345-6/OC%2F2026%2F1"


def canonical_size(record: dict[str, Any]) -> int:
    return len(json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode())


def test_record_size_limit_is_exact() -> None:
    def record(full: int, last: int, place: int) -> dict[str, Any]:
        items = [{"description": "x" * 500, "quantity": "1", "unit": "U"}] * full
        items.append({"description": "y" * last, "quantity": "1", "unit": "U"})
        return reference_order(items=items, delivery={"place": "p" * place, "term_days": 3})

    per_item = canonical_size(record(2, 1, 1)) - canonical_size(record(1, 1, 1))
    full = (MAX_ORDER_BYTES - canonical_size(record(0, 1, 1))) // per_item
    gap = MAX_ORDER_BYTES - canonical_size(record(full, 1, 1))
    last = 1 + min(gap, 499)
    exact = record(full, last, 1 + gap - (last - 1))
    assert full < MAX_ITEMS and canonical_size(exact) == MAX_ORDER_BYTES == 256 * 1024
    assert len(parse_order(exact).canonical_bytes()) == MAX_ORDER_BYTES
    exact["delivery"]["place"] += "p"
    assert problems_of(exact) == [f"record: {MAX_ORDER_BYTES + 1} bytes — at most {MAX_ORDER_BYTES}"]


def test_encode_entry_checks_the_hash_and_the_key_length() -> None:
    order = parse_order(REFERENCE)
    with pytest.raises(InvalidInput, match="a document hash has 32 bytes"):
        order.encode_entry(b"\x07" * 31)
    with pytest.raises(InvalidInput, match="a document hash has 32 bytes"):
        order.encode_entry(b"\x07" * 33)
    long_key = Order(**{**{f: getattr(order, f) for f in ("issued_on", "entity", "buyer", "supplier", "items",
                                                          "total_amount", "currency", "delivery")},
                        "order_number": "x" * 244})  # built by hand: parse_order allows at most 97 bytes
    assert len(long_key.key) == 256
    with pytest.raises(InvalidOrder, match="too long together"):
        long_key.encode_entry(b"\x07" * 32)
    assert len(Order(**{**{f: getattr(long_key, f) for f in ("issued_on", "entity", "buyer", "supplier", "items",
                                                             "total_amount", "currency", "delivery")},
                        "order_number": "x" * 243}).encode_entry(b"\x07" * 32)) > 255


# --------------------------------------------------------------------------------------------------
# The on-chain entry


def test_entry_round_trip_restores_the_canonical_record() -> None:
    order = parse_order(REFERENCE)
    entry = order.encode_entry(b"\x07" * 32)
    assert len(entry) < 300  # 795 bytes of JSON become about 257 on chain
    assert entry[:32] == b"\x07" * 32 and entry[32] == 26 and entry[33:59] == b"20131370998/OC-2026-004512"
    assert entry[59] == 1
    digest, decoded = decode_entry(entry)
    assert digest == b"\x07" * 32
    assert decoded.canonical_bytes() == order.canonical_bytes() and decoded == order


def test_entry_round_trip_foreign_entity() -> None:
    order = parse_order(reference_order(entity={"name": "Municipalidad", "id": "80012345-6", "scheme": "PY-RUC"}))
    assert decode_entry(order.encode_entry(b"\x01" * 32))[1] == order


def entry_with(body: bytes, key: bytes = b"20131370998/OC-2026-004512", version: int = 1,
               raw: bool = False) -> bytes:
    if not raw:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _dictionary())
        body = packer.compress(body) + packer.flush()
    return b"\x07" * 32 + bytes([len(key)]) + key + bytes([version]) + body


def reference_body(**changes: Any) -> bytes:
    body = {k: v for k, v in REFERENCE.items() if k != "order_number"}
    body["entity"] = {"name": REFERENCE["entity"]["name"]}
    return json.dumps(body | changes).encode()


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (b"\x07" * 36, "entry: 36 bytes — at least 37"),
        (b"\x07" * 32 + b"\xff" + b"a" * 10, "entry.key: 255 bytes — no room after it for the version and body"),
        (entry_with(reference_body(), key=b"2013137099\xff/OC-1"), "entry.key: b'2013137099\\xff/OC-1' — not UTF-8"),
        (entry_with(reference_body(), version=2), "entry.version: 2 — unknown record encoding version"),
        (entry_with(b"\xff\xff\xff\xff", raw=True), "entry.body: not raw DEFLATE"),
        (parse_order(REFERENCE).encode_entry(b"\x07" * 32)[:-5], "entry.body: the DEFLATE stream is cut short"),
        (entry_with(b"[]"), "entry.body: [] — a record without order_number"),
        (entry_with(reference_body(order_number="OC-2")), "entry.body: {"),
        (entry_with(reference_body(entity="Hospital")), "entry.body: {"),
        (entry_with(reference_body(entity={"name": "H", "ruc": "20131370998"})), "entry.body: {"),
        (entry_with(reference_body(), key=b"PE-RUC:20131370998/OC-2026-004512"),
         "entry.key: 'PE-RUC:20131370998/OC-2026-004512' — written as '20131370998/OC-2026-004512'"),
        (entry_with(reference_body(), key="20131370998/\u041eC-1".encode()), "order_number: '\u041eC-1'"),
        (entry_with(reference_body(), key=b"20131370998/"), "order_number: ''"),
        (entry_with(reference_body(), key=b"20123456789/OC-1"), "entity.ruc: '20123456789'"),
        (entry_with(reference_body(delivery={"place": "x", "term_days": "5"})), "delivery.term_days: '5'"),
    ],
)
def test_malformed_entries_are_named(entry: bytes, problem: str) -> None:
    with pytest.raises(InvalidOrder) as caught:
        decode_entry(entry)
    assert caught.value.message.startswith("on-chain record: invalid order")
    assert any(line.startswith(problem) for line in caught.value.problems), caught.value.problems


def test_entry_with_bytes_after_the_deflate_stream_is_refused() -> None:
    entry = parse_order(REFERENCE).encode_entry(b"\x07" * 32)
    with pytest.raises(InvalidOrder, match="followed by 3 more bytes"):
        decode_entry(entry + b"abc")


def test_entry_that_inflates_past_the_record_limit_is_refused() -> None:
    entry = entry_with(b" " * (MAX_ORDER_BYTES + 1))
    assert len(entry) < 2000
    with pytest.raises(InvalidOrder, match=f"inflates past {MAX_ORDER_BYTES} bytes"):
        decode_entry(entry)
    spaces = entry_with(reference_body()[:-1] + b" " * (MAX_ORDER_BYTES - len(reference_body())) + b"}")
    assert decode_entry(spaces)[1] == parse_order(REFERENCE)  # exactly the limit still inflates


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 200_000, "on-chain record body: JSON nested deeper than the limit of 32 levels"),
        (b'{"delivery": {"place": "x", "term_days": ' + b"9" * 5000 + b"}}", "key 'term_days': a number of 5000"),
        (b'{"total": {"amount": "1", "amount": "2"}}', "key 'amount' appears twice"),
        (b"\xff", "on-chain record body: not UTF-8"),
    ],
)
def test_entry_bodies_that_are_not_safe_json(body: bytes, message: str) -> None:
    with pytest.raises(InvalidJSON) as caught:
        decode_entry(entry_with(body))
    assert message in caught.value.message


# --------------------------------------------------------------------------------------------------
# Order files


def test_load_order_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "orden.json"
    path.write_text(json.dumps(REFERENCE, ensure_ascii=False), encoding="utf-8")
    assert load_order(path) == parse_order(REFERENCE)
    path.write_text(json.dumps(reference_order(order_number="..")))
    with pytest.raises(InvalidOrder, match=f"^{path}: invalid order"):
        load_order(path)


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b'{"order_number": "OC-1", "order_number": "OC-2"}', InvalidJSON, "key 'order_number' appears twice"),
        (b"[" * 5000, InvalidJSON, "nested deeper than the limit of 32"),
        (b'{"a": 1', InvalidJSON, "not valid JSON"),
        (b'{"a": "\xe9"}', InvalidJSON, "not UTF-8"),
        (b" " * (MAX_ORDER_BYTES + 1), InvalidInput, f"is over {MAX_ORDER_BYTES} bytes"),
    ],
)
def test_load_order_refuses_bad_files(tmp_path: Path, content: bytes, error: type[Exception], message: str) -> None:
    path = tmp_path / "orden.json"
    path.write_bytes(content)
    with pytest.raises(error) as caught:
        load_order(path)
    assert message in str(caught.value) and "orden.json" in str(caught.value)


def test_load_order_at_the_size_limit_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "orden.json"
    text = json.dumps(REFERENCE).encode()
    path.write_bytes(text + b" " * (MAX_ORDER_BYTES - len(text)))
    assert load_order(path).order_number == "OC-2026-004512"
    with pytest.raises(InvalidInput, match="cannot read order file .*nope.json") as caught:
        load_order(tmp_path / "nope.json")
    assert caught.value.hint == "check the path"


# --------------------------------------------------------------------------------------------------
# Properties

_text = st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), min_size=1, max_size=60)


@settings(max_examples=20, deadline=None)
@given(description=_text, place=_text, number=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/\-]{0,39}", fullmatch=True))
def test_every_valid_record_decodes_to_itself(description: str, place: str, number: str) -> None:
    record = reference_order(order_number=number, delivery={"place": place, "term_days": 3})
    record["items"] = [{"description": description, "quantity": "1", "unit": "UNIDAD"}]
    try:
        order = parse_order(record)
    except InvalidOrder as exc:  # text that breaks a text rule (e.g. not NFC): named, never a crash
        assert all(p.startswith(("items[0].description: ", "delivery.place: ")) for p in exc.problems)
        return
    entry = order.encode_entry(b"\x01" * 32)
    assert decode_entry(entry) == (b"\x01" * 32, order)
    assert decode_entry(entry)[1].canonical_bytes() == order.canonical_bytes()
    assert parse_order(json.loads(order.canonical_bytes())) == order


# --------------------------------------------------------------------------------------------------
# Entry edges


def test_entry_length_edges() -> None:
    at_least = b"\x07" * 32 + b"\x02" + b"ab" + b"\x01" + b"\x00"  # 37 bytes: past the length check
    with pytest.raises(InvalidOrder) as caught:
        decode_entry(at_least)
    assert caught.value.problems[0].startswith("entry.body: ")
    no_version = b"\x07" * 32 + b"\x04" + b"abcd"  # 37 bytes, the key fills them: nothing after it
    with pytest.raises(InvalidOrder) as caught:
        decode_entry(no_version)
    assert caught.value.problems == ["entry.key: 4 bytes — no room after it for the version and body"]


def test_entry_key_splits_at_the_first_slash_and_colon() -> None:
    order = parse_order(reference_order(order_number="OC/2026/1"))
    assert decode_entry(order.encode_entry(b"\x01" * 32))[1] == order
    with pytest.raises(InvalidOrder) as caught:
        decode_entry(entry_with(reference_body(), key=b"PY-RUC:X:1/OC-1"))
    assert caught.value.problems == ["entity.id: 'X:1' — letters, digits, '.' and '-' only, at most 40"]


@pytest.mark.parametrize("entry", [entry_with(b" " * (MAX_ORDER_BYTES + 1)), entry_with(b"\xff\xff", raw=True),
                                   parse_order(REFERENCE).encode_entry(b"\x07" * 32) + b"x"])
def test_inflate_errors_name_the_on_chain_record(entry: bytes) -> None:
    with pytest.raises(InvalidOrder) as caught:
        decode_entry(entry)
    assert caught.value.message.startswith("on-chain record: invalid order (1 problem): entry.body: ")


def test_document_url_and_notes_are_part_of_the_record() -> None:
    order = parse_order(reference_order(document_url="https://x.pe/a.pdf", notes=["sin RUC del comprador"]))
    assert json.loads(order.canonical_bytes())["document_url"] == "https://x.pe/a.pdf"
    assert json.loads(order.canonical_bytes())["notes"] == ["sin RUC del comprador"]
    assert decode_entry(order.encode_entry(b"\x01" * 32))[1] == order
    assert problems_of(reference_order(notes=["ok", "mal\u202e"]))[0].startswith("notes[1]: 'mal\\u202e' — printable")
    assert "notes" not in json.loads(parse_order(REFERENCE).canonical_bytes())


def test_an_order_built_by_hand_has_the_same_canonical_bytes() -> None:
    order = parse_order(reference_order(document_url="https://x.pe/a.pdf"))
    fields = ("order_number", "issued_on", "entity", "buyer", "supplier", "items", "total_amount", "currency",
              "delivery", "document_url")
    by_hand = Order(**{f: getattr(order, f) for f in fields})
    assert by_hand.canonical_bytes() == order.canonical_bytes()
    foreign = parse_order(reference_order(supplier={"name": "P", "id": "80012345-6", "scheme": "PY-RUC"}))
    assert json.loads(foreign.canonical_bytes())["supplier"] == {"id": "80012345-6", "name": "P", "scheme": "PY-RUC"}


def test_a_device_or_endless_file_is_read_only_up_to_the_limit() -> None:
    with pytest.raises(InvalidInput, match=f"is over {MAX_ORDER_BYTES} bytes") as caught:
        load_order(Path("/dev/zero"))
    assert caught.value.hint == "is it an order?"


# --------------------------------------------------------------------------------------------------
# More edges named by the mutation run


def test_combining_marks_count_from_the_start_and_include_enclosing_marks() -> None:
    assert accepted("items[0].description", "\u0301\u0302\u0303abc")  # three at the very start: allowed
    assert accepted("items[0].description", "\u0436\u0301\u0302\u0303 ok")  # after a letter that is no mark
    refused("items[0].description", "x\u20dd\u20dd\u20dd\u20dd", "at most 3 combining marks in a row")  # Me
    refused("items[0].description", "\u0301\u0302\u0303\u0304abc", "at most 3 combining marks in a row")


def test_mixed_script_message_and_the_full_japanese_mix() -> None:
    assert accepted("supplier.name", "ABC東京とトウ").supplier.name == "ABC東京とトウ"  # Latin, Han, both kana
    assert problems_of(with_path("supplier.name", "H\u043espital")) == [
        "supplier.name: 'H\u043espital' — one script per word: 'H\u043espital' mixes Cyrillic, Latin (look-alike "
        "letters)"]


def test_mexican_rfc_only_under_mx_rfc() -> None:
    rfc = {"name": "C&C", "id": "C&C021030KX2", "scheme": "MX-RFC"}
    assert accepted("supplier", rfc).supplier.key == "MX-RFC:C&C021030KX2"
    assert problems_of(with_path("supplier", dict(rfc, scheme="PY-RUC"))) == [
        "supplier.id: 'C&C021030KX2' — letters, digits, '.' and '-' only, at most 40"]
    assert problems_of(with_path("supplier", dict(rfc, id="C&C021330KX2")))[0].startswith("supplier.id: ")


def test_every_bad_item_is_reported_with_its_path() -> None:
    problems = problems_of(with_path("items", ["a", {"description": "d", "quantity": "1", "unit": "u",
                                                     "unit_price": "0.00"}, "c"]))
    assert problems == ["items[0]: 'a' — must be an object {description, quantity, unit, unit_price?, cubso?}",
                        "items[1].unit_price: '0.00' — must be greater than 0",
                        "items[2]: 'c' — must be an object {description, quantity, unit, unit_price?, cubso?}"]


def test_record_level_messages_name_the_source() -> None:
    with pytest.raises(InvalidOrder) as caught:
        parse_order([], source="orden.json")
    assert caught.value.message == "orden.json: invalid order (1 problem): record: list — must be a JSON object"


def test_unknown_fields_are_named_safely_whatever_their_key() -> None:
    record: dict[Any, Any] = reference_order()
    record.update({5: "x", "zz": 1, "\x1b[2J": 2, "two words": 3})
    problems = problems_of(record)
    names = [problem.split(" — ")[0] for problem in problems]
    assert names == ["'\\x1b[2J': 2", "5: 'x'", "'two words': 3", "zz: 1"]


def test_notes_rules() -> None:
    assert accepted("notes", ["n"] * 8).notes == ("n",) * 8
    for bad, shown in (([], "[]"), (["n"] * 9, "['n', 'n', 'n', 'n', 'n', 'n', ...]"), ("n", "'n'")):
        assert problems_of(with_path("notes", bad)) == [f"notes: {shown} — a list of 1 to 8 texts"]
    assert problems_of(with_path("notes", [5])) == ["notes[0]: 5 — must be a string"]
    assert problems_of(with_path("notes", ["x" * 301]))[0].endswith("— at most 300 characters")


def test_delivery_messages_show_what_was_given() -> None:
    assert problems_of(with_path("delivery", "Lima")) == [
        "delivery: 'Lima' — required object {place, term_days} or {place, deadline}"]
    assert problems_of(with_path("delivery", {"place": "L", "term_days": 1, "deadline": "2026-01-01"})) == [
        "delivery: {'deadline': '2026-01-01', 'place': 'L', 'term_days': 1} — give exactly one of term_days or "
        "deadline"]
    assert problems_of(with_path("supplier", {"name": "P", "id": "1", "scheme": "P Y"})) == [
        "supplier.scheme: 'P Y' — an org-id scheme like PE-RUC, PY-RUC, MX-RFC, CO-NIT, or a publisher's own "
        "scheme (1 to 40 ASCII letters, digits, '.', '_', '-')"]


# --------------------------------------------------------------------------------------------------
# Fast paths of the text rules: the same answers as the rules written out one character at a time

def _rules_as_written(value: str, *, name: bool) -> str | None:
    """The text rules as the module docstring words them, every character looked at (no fast path)."""
    from confusable_homoglyphs.categories import alias  # type: ignore[import-untyped]

    from peru_compras.terminal import hidden

    if not value.strip():
        return "must not be empty"
    marks = 0
    for char in value:
        if char == "\n" or hidden(char):
            return (f"printable characters only, found U+{ord(char):04X} (no line breaks, control, format or "
                    "invisible characters)")
        marks = marks + 1 if unicodedata.category(char) in ("Mn", "Me") else 0
        if marks > 3:
            return "at most 3 combining marks in a row"
    if not unicodedata.is_normalized("NFC", value):
        return "must be in Unicode NFC form (composed characters, e.g. 'Ñ' not 'N' + U+0303)"
    if name:
        allowed = [{"LATIN", "HAN", "HIRAGANA", "KATAKANA"}, {"LATIN", "HAN", "HANGUL"}, {"LATIN", "HAN", "BOPOMOFO"}]
        for word in value.split():
            scripts = {str(alias(char)) for char in word} - {"COMMON", "INHERITED"}
            if len(scripts) > 1 and not any(scripts <= sets for sets in allowed):
                shown = ", ".join(sorted(script.title() for script in scripts))
                return f"one script per word: {word!r} mixes {shown} (look-alike letters)"
    if value != value.strip():
        return "no leading or trailing spaces"
    return None


def _fast_path_set() -> str:
    """Every code point the text rules' fast path admits, found by asking its pattern about each one."""
    from peru_compras.text_rules import _PLAIN_LATIN

    return "".join(_PLAIN_LATIN.findall("".join(map(chr, range(0x110000)))))


def test_the_fast_path_admits_exactly_the_documented_characters() -> None:
    ranges = [(0x20, 0x7E), (0xA1, 0xAC), (0xAE, 0x2FF), (0x2010, 0x2027), (0x2030, 0x205E), (0x20A0, 0x20C0),
              (0x2122, 0x2122)]
    assert _fast_path_set() == "".join(chr(code) for low, high in ranges for code in range(low, high + 1))


def test_every_character_the_fast_path_admits_breaks_no_rule_alone_or_next_to_another() -> None:
    """What lets text_problem skip the per-character rules for such text, and _unicode_problem skip such
    characters and such words: each is visible, no combining mark, NFC next to any other of them (all are
    starters, so a string of them is NFC when every adjacent pair is), of a script Latin may be with."""
    from confusable_homoglyphs.categories import alias

    from peru_compras.terminal import hidden

    plain = _fast_path_set()
    for char in plain:
        assert not hidden(char) and char != "\n", char
        assert unicodedata.combining(char) == 0 and unicodedata.category(char) not in ("Mn", "Me"), char
        assert char.isspace() == (char == " "), char
        assert _rules_as_written(f"x{char}x", name=True) is None, char
    assert {str(alias(char)) for char in plain} - {"COMMON", "INHERITED"} == {"LATIN", "BOPOMOFO"}  # 02EA-02EB
    for char in plain:  # the string "a b1 a b2 a b3 …" has every pair (a, b) and (b, a) side by side
        assert unicodedata.is_normalized("NFC", "".join(char + other for other in plain)), char


_TRICKY = ("\u0301\u0302\u20dd\u200d\u202e\n\u00ad\u00a0\u3000\u2028\u2029\u202f\u205f\u2060\u0340\u0303\u034f"
           "\u043e\u0430\u03a9\u6771\u3068\u30c8\uc11c\u3105\u02ea\u1ed9\U0001f600\ue000\U000e0080\ufe0f\u2800")


@settings(max_examples=300, deadline=None)
@given(st.text(st.one_of(st.sampled_from("aN ÑéÁ°—–“”…€™-.,/" + _TRICKY), st.characters()), max_size=12),
       st.booleans())
def test_text_problem_answers_as_the_rules_written_out(value: str, name: bool) -> None:
    assert text_problem(value, name=name) == _rules_as_written(value, name=name)


@pytest.mark.parametrize("value", ["Unidad de Logística — Oficina de Abastecimiento", "“El Sol” – Lima…",
                                   "x\u0301\u0302\u0303—x\u0301\u0302\u0303", "Precio €5 ™", "Ω Tech", "東京 — Tokyo"])
def test_real_punctuation_is_accepted_in_names(value: str) -> None:
    assert text_problem(value, name=True) is None and _rules_as_written(value, name=True) is None


@pytest.mark.parametrize(("value", "problem"), [
    ("x\u0301\u0302—\u0303\u0304", None),  # the dash ends a run of marks
    ("—\u0301\u0302\u0303\u0304", "at most 3 combining marks in a row"),
    ("Hospital — Regional\u202e", "printable characters only, found U+202E"),
    ("H\u043espital — Regional", "one script per word: 'H\u043espital' mixes Cyrillic, Latin"),
    ("Regional — H\u043espital", "one script per word: 'H\u043espital' mixes Cyrillic, Latin"),
    ("N\u0303 — Ñ", "must be in Unicode NFC form"),
])
def test_text_next_to_plain_punctuation_keeps_every_rule(value: str, problem: str | None) -> None:
    found = text_problem(value, name=True)
    assert found == _rules_as_written(value, name=True)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem))


# --------------------------------------------------------------------------------------------------
# The canonical bytes and the entry, written out by hand for speed: the same bytes as json.dumps and zlib

def _entry_as_specified(order: Order, digest: bytes) -> bytes:
    """The module docstring's entry, built from order.to_json() with json.dumps and a new zlib compressor."""
    body = order.to_json()
    del body["order_number"]
    body["entity"] = {"name": order.entity.name}
    plain = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _dictionary())
    key = order.key.encode()
    return digest + bytes([len(key)]) + key + b"\x01" + compressor.compress(plain) + compressor.flush()


_SHAPES = {
    "reference": {},
    "deadline, document URL, notes": {"delivery": {"place": "Lima", "deadline": "2026-12-24"},
                                      "document_url": "https://x.pe/a.pdf?b=1&c=\"", "notes": ["uno", "dos \\ tres"]},
    "buyer without id, foreign parties": {
        "buyer": {"name": "Área \"usuaria\""},
        "entity": {"name": "Municipalidad", "id": "80012345-6", "scheme": "PY-RUC"},
        "supplier": {"name": "Proveedor", "id": "XAXX010101000", "scheme": "MX-RFC"}},
    "items without price or CUBSO": {
        "items": [{"description": "a/b \\ \"c\" ñ 東京", "quantity": 7, "unit": "u"},
                  {"description": "d", "quantity": "1.5", "unit": "kg", "cubso": "12345678"},
                  {"description": "e", "quantity": "2", "unit": "kg", "unit_price": "3"}],
        "total": {"amount": "10", "currency": "USD"}},
    "a publisher's own scheme": {"entity": {"name": "E", "id": "ocds-1", "scheme": "ocds-03ad3f"}},
}


@pytest.mark.parametrize("shape", sorted(_SHAPES))
def test_canonical_bytes_and_entry_are_those_of_json_dumps_and_zlib(shape: str) -> None:
    order = parse_order(reference_order(**_SHAPES[shape]))
    assert order.canonical_bytes() == json.dumps(order.to_json(), ensure_ascii=False, sort_keys=True,
                                                 separators=(",", ":")).encode()
    assert order.encode_entry(b"\x07" * 32) == _entry_as_specified(order, b"\x07" * 32)
    by_hand = Order(**{name: getattr(order, name) for name in ("order_number", "issued_on", "entity", "buyer",
                    "supplier", "items", "total_amount", "currency", "delivery", "document_url", "notes")})
    assert by_hand.canonical_bytes() == order.canonical_bytes()
    assert by_hand.encode_entry(b"\x07" * 32) == order.encode_entry(b"\x07" * 32)


_free_text = st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs", "M"]), min_size=1,
                     max_size=30)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(_free_text, min_size=6, max_size=6), term=st.integers(1, 3650), prices=st.lists(st.booleans(),
       min_size=1, max_size=3), deadline=st.booleans(), notes=st.lists(_free_text, max_size=2))
def test_generated_records_encode_as_json_dumps_and_zlib(texts: list[str], term: int, prices: list[bool],
                                                         deadline: bool, notes: list[str]) -> None:
    record = reference_order(delivery={"place": texts[0], **({"deadline": "2027-01-31"} if deadline else
                                                              {"term_days": term})})
    record["buyer"] = {"name": texts[1]}
    record["supplier"]["name"] = texts[2]
    record["items"] = [{"description": texts[3 + index % 3], "quantity": "2", "unit": texts[5],
                        **({"unit_price": "1.25", "cubso": "1234567890"} if priced else {})}
                       for index, priced in enumerate(prices)]
    if notes:
        record["notes"] = notes
    try:
        order = parse_order(record)
    except InvalidOrder:
        return  # text that breaks a text rule: nothing to encode
    assert order.canonical_bytes() == json.dumps(order.to_json(), ensure_ascii=False, sort_keys=True,
                                                 separators=(",", ":")).encode()
    assert order.encode_entry(b"\x02" * 32) == _entry_as_specified(order, b"\x02" * 32)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[0-9]{1,15}(\.[0-9]{1,6})?", fullmatch=True) | st.sampled_from(
    ["000000000000000.000001", "000000000000000.000000", "0.000000", "999999999999999.999999", "0.000001"]))
def test_an_amount_is_above_zero_exactly_when_a_digit_is_not_zero(amount: str) -> None:
    record = with_path("total.amount", amount)
    if any(digit in "123456789" for digit in amount):
        assert parse_order(record).total_amount == amount
    else:
        assert problems_of(record) == [f"total.amount: {amount!r} — must be greater than 0"]


def test_an_order_built_by_hand_is_encoded_from_its_to_json() -> None:
    """Only parse_order's orders take the written-out JSON: one built by hand, whatever its fields hold, is
    encoded as json.dumps writes its to_json() (here a bool and an int where parse_order would have refused)."""
    order = parse_order(REFERENCE)
    by_hand = Order(order.order_number, order.issued_on, order.entity, order.buyer, order.supplier, order.items,
                    order.total_amount, order.currency, type(order.delivery)(place="Lima", term_days=True),
                    notes=(5,))  # type: ignore[arg-type]
    assert b'"term_days":true' in by_hand.canonical_bytes() and b'"notes":[5]' in by_hand.canonical_bytes()
    assert by_hand.encode_entry(b"\x03" * 32) == _entry_as_specified(by_hand, b"\x03" * 32)
