"""The depth check's fast path (text without a backslash) answers exactly as the full scan does: it may only
say "plainly fine" where the full scan accepts, and every text it does not vouch for goes to the full scan."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peru_compras import safejson
from peru_compras.errors import InvalidJSON


def _full_scan_accepts(text: str, max_depth: int) -> bool:
    """The full scan alone (the text given a backslash at its end would change what it is: call the
    parts the fast path skips directly)."""
    closed = safejson._CLOSED.match(text)
    assert closed is not None
    if closed.end() != len(text):
        return False
    depth = 0
    for char in safejson._NOT_BRACKET.sub("", text):
        depth += 1 if char in "[{" else -1
        if depth > max_depth:
            return False
    return True


_PIECES = st.sampled_from(['[', ']', '{', '}', '"', 'a', ':', ',', ' ', '1', 'é', '"[', ']"', '{"k":', '"x"'])


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join), st.integers(min_value=0, max_value=6))
def test_fast_path_vouches_only_for_what_the_full_scan_accepts(text: str, max_depth: int) -> None:
    if safejson._plainly_shallow(text, max_depth):
        assert _full_scan_accepts(text, max_depth), text


@settings(max_examples=500, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet="ab[]{}\":, é"),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                    max_leaves=30),
       st.integers(min_value=1, max_value=8))
def test_real_json_without_backslashes_is_decided_by_the_fast_path(value: object, max_depth: int) -> None:
    """Ordinary JSON (what nodes and manifests send) takes the fast path whenever it is within the limit, and
    the answer is the full scan's."""
    text = json.dumps(value, ensure_ascii=False)
    if "\\" in text:
        return
    assert safejson._plainly_shallow(text, max_depth) == _full_scan_accepts(text, max_depth), text


@pytest.mark.parametrize("text", ['[' * 33 + ']' * 33, '{"a":' * 33 + '1' + '}' * 33, '[' * 40, '"[' * 5])
def test_what_the_fast_path_leaves_is_still_refused(text: str) -> None:
    with pytest.raises(InvalidJSON):
        safejson.loads(text, source="test")


def test_a_receipt_sized_answer_is_read_through_the_fast_path() -> None:
    logs = [{"address": "0x" + "ab" * 20, "topics": ["0x" + "cd" * 32] * 3, "data": "0x" + "00" * 300,
             "removed": False} for _ in range(200)]
    text = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"status": "0x1", "logs": logs}})
    assert safejson._plainly_shallow(text, 64)
    assert safejson.loads(text, source="answer", max_depth=64)["result"]["logs"][0]["removed"] is False
