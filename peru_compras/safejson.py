"""One JSON reader for every byte that comes from outside: order files, manifests, on-chain bodies, OCDS.

``json.loads`` recurses once per nesting level. web3's import chain (py_ecc) raises Python's recursion
limit to 100,000, so 200,000 ``[`` overflow the C stack and the process dies (SIGSEGV) instead of raising.
:func:`loads` therefore checks, before ``json.loads`` sees the text:

- size: at most `max_bytes` (bytes, or characters for a ``str``);
- nesting: at most `max_depth` levels of ``[``/``{`` (brackets are counted outside strings, a scan at C
  speed, so the check holds whatever the recursion limit is);

and while parsing it refuses an object that repeats a key (Python would keep the last one silently),
``NaN``/``Infinity`` (not JSON), numbers that overflow a float and integers longer than
:data:`MAX_NUMBER_DIGITS` digits. Every refusal is an :class:`~peru_compras.errors.InvalidJSON` naming the
source, what was wrong and the limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .errors import InvalidJSON

MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_NUMBER_DIGITS = 100

# Text outside strings and whole strings, possessive so that a string left open costs one pass, not one
# pass per quote after it (a plain pattern, like _NOT_BRACKET's, would be quadratic on '"' + '\\"' * n: so
# _NOT_BRACKET runs only once every string is known to be closed).
_CLOSED = re.compile(r'(?:[^"]++|"[^"\\]*+(?:\\.[^"\\]*+)*+")*+', re.DOTALL)
_NOT_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^"\[\]{}]+', re.DOTALL)  # strings, and all but brackets


def loads(
    data: bytes | str,
    *,
    source: str,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    parse_float: Callable[[str], Any] | None = None,
) -> Any:
    """Parse JSON from outside, bounded. `source` names it in errors ("order file 'a.json'", "manifest
    line 3", "on-chain record"). Raises :class:`InvalidJSON`; never recurses deeper than `max_depth`."""
    if len(data) > max_bytes:
        raise InvalidJSON(f"{source}: {len(data)} bytes of JSON, over the limit of {max_bytes}",
                          hint="split it or send a smaller file")
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJSON(f"{source}: not UTF-8 (byte {exc.start})", hint="save the file as UTF-8") from exc
    else:
        text = data
    # With so few opening brackets that they cannot nest deeper (a manifest line, an order file), json.loads runs
    # at once, and the scan for a string left open (named before json.loads's own message) only when json.loads
    # fails: valid JSON has every string closed. A manifest line of the reference record: 19.3 -> 13.9 us with
    # the pairs below (timeit, process time, 2-core machine)
    if text.count("[") + text.count("{") > max_depth:
        _check_depth(text, source, max_depth)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(items)
        if len(out) < len(items):
            raise InvalidJSON(f"{source}: key {_short(_first_repeated(items))} appears twice in one object",
                              hint="keep one of them")
        return out

    def integer(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
            raise InvalidJSON(f"{source}: {_long_number_at(text)}a number of {len(digits.lstrip('-'))} digits, "
                              f"over the limit of {MAX_NUMBER_DIGITS}",
                              hint="write amounts as decimal strings like \"18.50\"")
        return int(digits)

    def real(digits: str) -> float:
        value = float(digits)
        if value in (float("inf"), float("-inf")):
            raise InvalidJSON(f"{source}: the number {_short(digits)} is too large", hint="write a smaller number")
        return value

    def constant(name: str) -> Any:
        raise InvalidJSON(f"{source}: {name} is not JSON", hint="write a number or null")

    try:
        try:
            return json.loads(text, object_pairs_hook=pairs, parse_int=integer, parse_constant=constant,
                              parse_float=parse_float or real)
        except Exception:
            _check_closed(text, source)  # a string left open is named first, as when it was checked before
            raise
    except json.JSONDecodeError as exc:
        raise InvalidJSON(f"{source}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                          hint="fix the JSON syntax") from exc
    except (ValueError, ArithmeticError) as exc:  # a parse_float callable's own refusal, e.g. Decimal's
        if isinstance(exc, InvalidJSON):
            raise
        raise InvalidJSON(f"{source}: not valid JSON: {exc}", hint="fix the JSON syntax") from exc


#: outside strings only brackets matter: "{" and "}" read as "[" and "]", every other ASCII character dropped
_BRACKETS_ONLY = {code: None for code in range(128) if chr(code) not in "[]{}"} | {ord("{"): "[", ord("}"): "]"}


def _check_depth(text: str, source: str, max_depth: int) -> None:
    """Refuse `text` whose brackets outside strings nest deeper than `max_depth`, or with an unterminated
    string (json.loads would recurse through the brackets before finding it)."""
    if "\\" not in text and _plainly_shallow(text, max_depth):
        return
    _check_closed(text, source)
    brackets = _NOT_BRACKET.sub("", text)
    depth = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > max_depth:
                raise InvalidJSON(f"{source}: JSON nested deeper than the limit of {max_depth} levels",
                                  hint="flatten the structure")
        else:
            depth -= 1


def _first_repeated(items: list[tuple[str, Any]]) -> str:
    """The first key of an object that comes again (the caller knows one does)."""
    seen = set()
    for key, _ in items:
        if key in seen:
            break
        seen.add(key)
    return key


def _check_closed(text: str, source: str) -> None:
    """Refuse `text` with a string left open, naming where."""
    closed = _CLOSED.match(text)
    assert closed is not None  # the pattern matches the empty string
    if closed.end() != len(text):
        raise InvalidJSON(f"{source}: not valid JSON: a string is not closed (at character {closed.end()})",
                          hint="fix the JSON syntax")


def _plainly_shallow(text: str, max_depth: int) -> bool:
    """True when `text`, which has no backslash, has every string closed and brackets outside strings that
    pair up within `max_depth` levels; False means "look closer" (:func:`_check_depth`'s exact scan decides).

    Without a backslash a string is ``"[^"]*"``, so splitting on quotes puts the outside at the even places
    and an even number of quotes closes every string. The outside's brackets, as one string of "[" and "]",
    are well nested and at most `max_depth` deep exactly when removing every "[]" at most `max_depth` times
    leaves nothing. A 120 KB receipt of a 100-order batch: 3.4 ms -> 0.3 ms (the regular expressions' scan of
    every character, then a Python loop over its 1,900 brackets), most of the main process's JSON-RPC cost."""
    parts = text.split('"')
    if len(parts) % 2 == 0:
        return False  # an odd number of quotes: a string is left open (the exact scan says where)
    brackets = "".join(parts[::2]).translate(_BRACKETS_ONLY)
    for _ in range(max_depth):
        if not brackets:
            return True
        brackets = brackets.replace("[]", "")
    return not brackets


_LONG_NUMBER = re.compile(r'("[^"\\]*(?:\\.[^"\\]*)*")(\s*:\s*)?|-?[0-9]{' + str(MAX_NUMBER_DIGITS + 1) + ",}")


def _long_number_at(text: str) -> str:
    """Where the first integer over the limit is, and the key it is the value of: "key 'term_days': "."""
    key = None
    for match in _LONG_NUMBER.finditer(text):
        if match.group(1) is None:
            line = text.count("\n", 0, match.start()) + 1
            return f"line {line}" + (f", key {_short(key[1:-1])}" if key else "") + ": "
        key = match.group(1) if match.group(2) is not None else None
    return ""


def _short(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:57] + "…"
