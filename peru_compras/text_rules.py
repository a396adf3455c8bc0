"""The text rules for every free-text string from outside (names, descriptions, units, places, reasons).

Not empty, no leading or trailing white space; no control, format (bidi, zero-width), surrogate,
private-use, unassigned or line separator characters, nor invisible fillers (U+034F, U+2800, U+3164,
U+FFA0, variation selectors...: the terminal filter's set, :func:`peru_compras.terminal.hidden`); Unicode
NFC; at most 3 combining marks in a row; in party names each word in one script (UTS #39 "highly
restrictive": Latin may mix with Han and kana, Hangul or Bopomofo), so "Hospital" written with a Cyrillic
"o" (U+043E) is refused.
"""

from __future__ import annotations

import re
import reprlib
import unicodedata
from functools import cache

from .errors import InvalidInput
from .terminal import hidden

_MARKS_IN_A_ROW = 3
_NEUTRAL_SCRIPTS = frozenset({"COMMON", "INHERITED"})
_SCRIPT_SETS = (  # UTS #39 "highly restrictive": the only mixes of scripts allowed in one word
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
)


#: characters that break no text rule, alone or next to any other (tests/test_order.py proves it for each, and
#: for each pair, against the slow path): printable ASCII; U+00A1-U+02FF less the soft hyphen (Latin-1,
#: Latin Extended-A/B, IPA, spacing modifiers); the dashes, quotes, bullets and ellipsis of U+2010-U+2027,
#: U+2030-U+205E (not the line separators, bidi controls and narrow space between them); the currency signs
#: U+20A0-U+20C0 and the trade mark sign. All assigned, never combining, NFC alone and together, Latin or
#: Common script (and U+02EA-U+02EB Bopomofo, which Latin may mix with).
_PLAIN = " -~\u00a1-\u00ac\u00ae-\u02ff\u2010-\u2027\u2030-\u205e\u20a0-\u20c0\u2122"  # a regex class's ranges
#: the fast path: nothing to look at. The em dash of "Logística — Oficina" used to send the reference record's
#: buyer name through the per-character loop (21 us); with it in the set, 0.4 us (timeit on the 2-core machine)
_PLAIN_LATIN = re.compile(f"[{_PLAIN}]*")
#: runs of the characters the slow path looks at one by one: the plain ones in between reset the count of
#: combining marks (none of them is a mark) and break no per-character rule
_NOT_PLAIN = re.compile(f"[^{_PLAIN}]+")


def text_problem(value: str, *, name: bool = False) -> str | None:
    """The first text rule `value` breaks (see the module docstring), or None. `name`: also one script per
    word, for the names of parties."""
    if not value.strip():
        return "must not be empty"
    if not _PLAIN_LATIN.fullmatch(value):  # plain characters (ASCII, Latin letters, punctuation) break none below
        problem = _unicode_problem(value, name=name)
        if problem:
            return problem
    if value != value.strip():
        return "no leading or trailing spaces"
    return None


def _unicode_problem(value: str, *, name: bool) -> str | None:
    # Only the characters outside _PLAIN are looked at one by one, and only the words that have one: a name of
    # 40 characters with one "ő" costs 3 us instead of 20 (timeit, 2-core machine); the rules are the same
    for run in _NOT_PLAIN.finditer(value):
        marks = 0  # a plain character came before the run (or nothing): it is not a mark
        for char in run.group():
            if char == "\n" or hidden(char):  # the terminal filter's set: control, format, unassigned, fillers
                return (f"printable characters only, found U+{ord(char):04X} (no line breaks, control, format or "
                        "invisible characters)")
            marks = marks + 1 if unicodedata.category(char) in ("Mn", "Me") else 0
            if marks > _MARKS_IN_A_ROW:
                return f"at most {_MARKS_IN_A_ROW} combining marks in a row"
    if not unicodedata.is_normalized("NFC", value):
        return "must be in Unicode NFC form (composed characters, e.g. 'Ñ' not 'N' + U+0303)"
    if name:
        for word in value.split():
            if _PLAIN_LATIN.fullmatch(word):
                continue  # Latin, neutral or Bopomofo only: one of the allowed mixes
            scripts = {_script(char) for char in word} - _NEUTRAL_SCRIPTS
            if len(scripts) > 1 and not any(scripts <= allowed for allowed in _SCRIPT_SETS):
                shown = ", ".join(sorted(script.title() for script in scripts))
                return f"one script per word: {word!r} mixes {shown} (look-alike letters)"
    return None


@cache
def _script(char: str) -> str:
    from confusable_homoglyphs.categories import alias  # type: ignore[import-untyped]  # Unicode Scripts.txt

    return str(alias(char))


def check_text(value: object, field: str, *, limit: int, name: bool = False) -> str:
    """`value` if it is a string obeying the text rules and at most `limit` characters; else
    :class:`InvalidInput` naming `field`, the value and the rule."""
    if not isinstance(value, str):
        problem: str | None = "must be a string"
    elif len(value) > limit:
        problem = f"at most {limit} characters"
    else:
        problem = text_problem(value, name=name)
    if problem:
        raise InvalidInput(f"{field}: {_shown(value)} — {problem}", hint=f"fix {field} and try again")
    return str(value)


def _shown(value: object) -> str:
    """`value` for a message: its repr, at most 60 characters (a 5,000-digit number too)."""
    if isinstance(value, int) and value.bit_length() > 200:  # 2**200 has 61 digits (and repr stops at 4,300)
        return "<a number of over 60 digits>"
    text = repr(value) if isinstance(value, str) else _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


_REPR = reprlib.Repr()  # bounded: a deep or long value costs a few dozen characters
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60
