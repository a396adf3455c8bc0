"""safejson: outside JSON is bounded in size and depth before json.loads runs, whatever the recursion limit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peru_compras.errors import InvalidInput, InvalidJSON
from peru_compras.safejson import MAX_JSON_DEPTH, MAX_NUMBER_DIGITS, loads

from .conftest import REFERENCE, ROOT

BOMBS = textwrap.dedent(
    """
    import sys, zlib
    import web3  # py_ecc, imported by web3, raises the recursion limit: json.loads may now overflow the C stack
    assert sys.getrecursionlimit() >= 100_000, sys.getrecursionlimit()
    from pathlib import Path
    from peru_compras.errors import InvalidJSON, InvalidOrder
    from peru_compras.order import _dictionary, decode_entry, load_order
    from peru_compras.safejson import loads

    def refused(call, *args):
        try:
            call(*args)
        except (InvalidJSON, InvalidOrder) as exc:
            print(type(exc).__name__, exc.message)
        else:
            print("ACCEPTED")

    refused(lambda: loads("[" * 200_000, source="bomb"))
    refused(lambda: loads(b'{"a": ' * 100_000, source="bomb"))
    nested = Path(sys.argv[1])
    nested.write_text("[" * 100_000 + "]" * 100_000)  # 200 KB, under the 256 KiB an order file may have
    refused(load_order, nested)
    # the 211-byte on-chain entry: hash, key, version, raw DEFLATE (record dictionary) of 200,000 "["
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _dictionary())
    body = packer.compress(b"[" * 200_000) + packer.flush()
    key = b"20131370998/OC-2026-004512"
    entry = b"\\x07" * 32 + bytes([len(key)]) + key + b"\\x01" + body
    print("entry bytes", len(entry))
    refused(decode_entry, entry)
    print("alive")
    """
)


def test_deep_nesting_is_a_named_error_even_after_web3_raised_the_recursion_limit(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", BOMBS, str(tmp_path / "nested.json")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    lines = done.stdout.splitlines()
    assert lines[-1] == "alive"
    refusals = [line for line in lines if line.startswith(("InvalidJSON", "InvalidOrder", "ACCEPTED"))]
    assert len(refusals) == 4
    for line in refusals:
        assert line.startswith("InvalidJSON") and f"limit of {MAX_JSON_DEPTH} levels" in line, line
    assert "bomb: JSON nested deeper" in refusals[0]
    assert "order file" in refusals[2] and "nested.json" in refusals[2]
    assert "on-chain record body" in refusals[3]
    assert int(next(line for line in lines if line.startswith("entry bytes")).split()[-1]) < 300


def _nest(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_depth_limit_is_exact_and_counts_objects_and_arrays() -> None:
    assert loads(_nest(MAX_JSON_DEPTH), source="s") is not None
    with pytest.raises(InvalidJSON, match=r"^s: JSON nested deeper than the limit of 32 levels"):
        loads(_nest(MAX_JSON_DEPTH + 1), source="s")
    mixed = '{"a":[' * 16 + "1" + "]}" * 16
    assert loads(mixed, source="s") is not None  # 32 levels
    with pytest.raises(InvalidJSON):
        loads('{"a":[' * 16 + "{}" + "]}" * 16, source="s")
    with pytest.raises(InvalidJSON):
        loads(_nest(3), source="s", max_depth=2)
    # many siblings are not depth
    assert len(loads("[" + ",".join(["[[]]"] * 5000) + "]", source="s")) == 5000


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"note": "[" * 10_000 + '\\"{' * 100, "x": ["]"]})
    assert loads(text, source="s")["x"] == ["]"]


def test_a_string_left_open_is_refused_before_parsing_and_quickly() -> None:
    with pytest.raises(InvalidJSON, match="string is not closed"):
        loads('{"a": "' + "[" * 100_000, source="s")
    # one quote then escaped quotes: a plain string regex would try every quote (quadratic: minutes)
    with pytest.raises(InvalidJSON, match="string is not closed"):
        loads('"' + '\\"' * 200_000, source="s", max_bytes=10**6)


def test_size_limit_is_exact() -> None:
    assert loads(b'"' + b"x" * 98 + b'"', source="s", max_bytes=100) == "x" * 98
    with pytest.raises(InvalidJSON, match=r"101 bytes of JSON, over the limit of 100"):
        loads(b'"' + b"x" * 99 + b'"', source="s", max_bytes=100)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"order_number": "A", "order_number": "B"}', "key 'order_number' appears twice"),
        ('[{"a": {"b": 1, "b": 1}}]', "key 'b' appears twice"),
        ("[NaN]", "NaN is not JSON"),
        ('{"x": Infinity}', "Infinity is not JSON"),
        ("-Infinity", "-Infinity is not JSON"),
        ("[1e400]", "too large"),
        ("1" * (MAX_NUMBER_DIGITS + 1), "101 digits, over the limit of 100"),
        ('{"delivery": {"term_days": ' + "9" * 5000 + "}}", "key 'term_days': a number of 5000 digits"),
        ("[1, 2", "not valid JSON"),
        ("", "not valid JSON"),
        ("\ufeff{}", "not valid JSON"),
    ],
)
def test_refusals_name_what_and_the_limit(text: str, message: str) -> None:
    with pytest.raises(InvalidJSON) as caught:
        loads(text, source="manifest line 3")
    assert message in caught.value.message
    assert caught.value.message.startswith("manifest line 3: ")
    assert isinstance(caught.value, InvalidInput) and caught.value.exit_code == 2


def test_not_utf8_is_refused_with_the_byte() -> None:
    with pytest.raises(InvalidJSON, match=r"not UTF-8 \(byte 2\)"):
        loads(b'["\xff"]', source="s")


def test_accepts_ordinary_json_and_the_callers_float_type() -> None:
    assert loads(json.dumps(REFERENCE).encode(), source="s") == REFERENCE
    assert loads("[" + "9" * MAX_NUMBER_DIGITS + ", -1.5]", source="s") == [int("9" * MAX_NUMBER_DIGITS), -1.5]
    assert loads('{"amount": 18.50}', source="s", parse_float=Decimal) == {"amount": Decimal("18.50")}
    with pytest.raises(InvalidJSON, match="not valid JSON"):  # the callable's own refusal is named too
        loads("[1.5]", source="s", parse_float=lambda text: Decimal("bad"))


def test_depth_is_tracked_through_closing_brackets() -> None:
    within = "[" + ",".join([_nest(MAX_JSON_DEPTH - 1)] * 3) + "]"  # 32 deep, 94 openings
    assert loads(within, source="s") is not None
    back_and_deeper = "[" * 20 + "[]" + "[" * 14 + "]" * 34  # down to 21, back to 20, then on to 34
    with pytest.raises(InvalidJSON, match="limit of 32 levels"):
        loads(back_and_deeper, source="s")


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("[" * 40, "flatten the structure"), ('{"a": 1, "a": 2}', "keep one of them"),
        ("[NaN]", "write a number or null"), ("[1e400]", "write a smaller number"),
        ("1" * 101, 'write amounts as decimal strings like "18.50"'),
        ("[1,", "fix the JSON syntax"), ('["x', "fix the JSON syntax"), (b"\xff", "save the file as UTF-8"),
        ("x" * 200, "split it or send a smaller file"),
    ],
)
def test_every_refusal_says_what_to_do(text: str | bytes, hint: str) -> None:
    with pytest.raises(InvalidJSON) as caught:
        loads(text, source="s", max_bytes=100 if hint.startswith("split") else 1000)
    assert caught.value.hint == hint


def test_refusals_locate_the_problem() -> None:
    with pytest.raises(InvalidJSON) as caught:
        loads('{"a": "ok", "b": "' + "[" * 50, source="s")
    assert caught.value.message == "s: not valid JSON: a string is not closed (at character 17)"
    with pytest.raises(InvalidJSON) as caught:
        loads('{"a": [\n1,\n' + "1" * 101 + "]}", source="s")
    assert caught.value.message == "s: line 3, key 'a': a number of 101 digits, over the limit of 100"
    with pytest.raises(InvalidJSON) as caught:
        loads('["x",\n\n' + "1" * 101 + "]", source="s")
    assert caught.value.message == "s: line 3: a number of 101 digits, over the limit of 100"
    with pytest.raises(InvalidJSON) as caught:
        loads("[-" + "1" * 101 + "]", source="s")
    assert caught.value.message == "s: line 1: a number of 101 digits, over the limit of 100"
    with pytest.raises(InvalidJSON) as caught:
        loads("[1e400]", source="s")
    assert caught.value.message == "s: the number '1e400' is too large"
    with pytest.raises(InvalidJSON) as caught:
        loads("[-1e400]", source="s")
    assert caught.value.message == "s: the number '-1e400' is too large"


def test_long_keys_are_cut_in_messages() -> None:
    for key, shown in (("k" * 58, "'" + "k" * 58 + "'"), ("k" * 59, "'" + "k" * 56 + "…")):
        with pytest.raises(InvalidJSON) as caught:
            loads(json.dumps({key: 1}).replace("}", f', "{key}": 2}}'), source="s")
        assert caught.value.message == f"s: key {shown} appears twice in one object"


def _open_string_at(text: str) -> int | None:
    """Where a string left open starts (a quote outside strings with no closing quote), read one character
    at a time: written apart from the package's regular expression."""
    start, index = None, 0
    while index < len(text):
        char = text[index]
        if start is None:
            start = index if char == '"' else None
        elif char == "\\":
            index += 1
        elif char == '"':
            start = None
        index += 1
    return start


@pytest.mark.parametrize("text", ['{"a": NaN, "b": "open', '[1e999, "open', '{"a": 1, "a": 2} "open', '["x" "open',
                                  "[" + "9" * 101 + ', "open', '{"a": "ok", "b": "\\"', "\ufeff\"open", '[1,, "open'])
def test_a_string_left_open_is_named_first_whatever_else_is_wrong_before_it(text: str) -> None:
    with pytest.raises(InvalidJSON) as caught:
        loads(text, source="s")
    assert caught.value.message == f"s: not valid JSON: a string is not closed (at character {_open_string_at(text)})"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(['"', '\\', '\\"', 'a', '1', '[', ']', '{', '}', ':', ',', ' ', 'NaN', '"k":',
                                 '{"k":1,"k":2}', '1e999']), max_size=14).map("".join))
def test_an_open_string_is_reported_exactly_when_there_is_one(text: str) -> None:
    where = _open_string_at(text)
    try:
        loads(text, source="s")
    except InvalidJSON as exc:
        closed_message = f"s: not valid JSON: a string is not closed (at character {where})"
        assert (exc.message == closed_message) == (where is not None), (text, exc.message)
    else:
        assert where is None


def test_the_first_key_seen_twice_is_named() -> None:
    with pytest.raises(InvalidJSON) as caught:
        loads('{"b": 1, "a": 2, "a": 3, "b": 4}', source="s")
    assert caught.value.message == "s: key 'a' appears twice in one object"
    assert loads('{"b": 1, "a": {"b": 2}}', source="s") == {"b": 1, "a": {"b": 2}}


@pytest.mark.parametrize(("text", "depth", "plain"), [
    ('"[', 5, False), ('["a"]', 1, True), ('"a" "b"', 0, True), ('[[]]', 1, False), ('[[]]', 2, True),
    ('[]]', 5, False), ('{"k": [1]}', 2, True), ('{"k": "["}', 1, True), ('"', 3, False), ('"a"', 1, True),
    ('[[]]', 3, True)])
def test_the_depth_checks_fast_path_vouches_only_for_closed_shallow_text(text: str, depth: int, plain: bool) -> None:
    """loads() runs the open-string scan after any failure, so only the fast path's own answer shows its
    mistakes (tests/test_safejson_fast_path.py compares it with the full scan at length)."""
    from peru_compras.safejson import _plainly_shallow

    assert _plainly_shallow(text, depth) is plain


def test_with_a_backslash_the_exact_scan_counts_the_depth() -> None:
    """A backslash sends the text past the fast path: the exact scan counts through siblings, closings and
    escaped quotes that would otherwise hide brackets in a "string"."""
    def nested(depth: int, before: str = "") -> str:
        return '["\\n", ' + before + "[" * (depth - 1) + "]" * (depth - 1) + "]"

    assert loads(nested(MAX_JSON_DEPTH), source="s")[0] == "\n"
    assert len(loads(nested(MAX_JSON_DEPTH, "[], " * 40), source="s")) == 42
    for text in (nested(MAX_JSON_DEPTH + 1), nested(MAX_JSON_DEPTH + 1, "[], [], "),
                 '["\\"", ' + "[" * 33 + "]" * 33 + ', "\\""]'):
        with pytest.raises(InvalidJSON, match="^s: JSON nested deeper than the limit of 32 levels"):
            loads(text, source="s")


def test_a_long_number_is_placed_by_the_lines_before_it() -> None:
    for text, line in (("[" + "1" * 101 + ",\n\n2]", 1), ("\n[" + "1" * 101 + "]", 2)):
        with pytest.raises(InvalidJSON) as caught:
            loads(text, source="s")
        assert caught.value.message == f"s: line {line}: a number of 101 digits, over the limit of 100"
