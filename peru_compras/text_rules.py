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


#: a fast yes for the text rules: printable ASCII, then U+00A1-U+02FF less the soft hyphen (Latin-1, Latin
#: Extended-A/B, IPA, spacing modifiers: all assigned, precomposed so NFC, and all Latin or Common script)
_PLAIN_LATIN = re.compile("[ -~\u00a1-\u00ac\u00ae-\u02ff]*")


def text_problem(value: str, *, name: bool = False) -> str | None:
    """The first text rule `value` breaks (see the module docstring), or None. `name`: also one script per
    word, for the names of parties."""
    if not value.strip():
        return "must not be empty"
    if not _PLAIN_LATIN.fullmatch(value):  # printable ASCII and precomposed Latin letters break no rule below
        problem = _unicode_problem(value, name=name)
        if problem:
            return problem
    if value != value.strip():
        return "no leading or trailing spaces"
    return None


def _unicode_problem(value: str, *, name: bool) -> str | None:
    marks = 0
    for char in value:
        category = unicodedata.category(char)
        if char == "\n" or hidden(char):  # the terminal filter's set: control, format, unassigned, fillers
            return (f"printable characters only, found U+{ord(char):04X} (no line breaks, control, format or "
                    "invisible characters)")
        marks = marks + 1 if category in ("Mn", "Me") else 0
        if marks > _MARKS_IN_A_ROW:
            return f"at most {_MARKS_IN_A_ROW} combining marks in a row"
    if not unicodedata.is_normalized("NFC", value):
        return "must be in Unicode NFC form (composed characters, e.g. 'Ñ' not 'N' + U+0303)"
    if name:
        for word in value.split():
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
