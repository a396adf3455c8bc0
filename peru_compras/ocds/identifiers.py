"""Who a published party is: its identifier as the record gives it, inferring a scheme only where the id's
own shape proves it (a check digit, the RFC pattern), and the notes that say what was inferred or left out."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from ..order import _IDENTIFIER, _LOCAL_SCHEME, MAX_NOTE_CHARS, MAX_NOTES, MX_RFC, PE_RUC, ruc_is_valid
from .clean import _ident, _list, _obj, _Refusal

_ORG_ID_SCHEME = re.compile(r"[A-Za-z]{2}-[A-Za-z0-9]{2,12}")  # the org-id list's shape: country, register
_SCHEMED_ID = re.compile(r"([A-Za-z]{2}-[A-Za-z0-9]{2,12})-([A-Za-z0-9][A-Za-z0-9.\-]*)")
_WITH_DV = re.compile(r"([0-9]{5,15})-([0-9])")
_NIT_WEIGHTS = (3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71)



class _Notes(list[str]):
    """The notes of one row; those that say what was inferred or missing also go in the record."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded: list[str] = []

    def infer(self, text: str) -> None:
        self.append(text)
        self.recorded.append(text)

    def for_record(self) -> list[str]:
        """At most MAX_NOTES notes of at most MAX_NOTE_CHARS characters (the record's limits)."""
        notes = [note if len(note) <= MAX_NOTE_CHARS else note[: MAX_NOTE_CHARS - 1] + "…" for note in self.recorded]
        if len(notes) > MAX_NOTES:
            notes = [*notes[: MAX_NOTES - 1], f"and {len(notes) - MAX_NOTES + 1} more notes in the import's output"]
        return notes


def py_ruc_is_valid(text: str) -> bool:
    """Paraguay's RUC with its check digit ("80007525-0"): weights 2, 3, … 11 from the right (then 2 again);
    r = sum mod 11; DV = 11 - r, or 0 when r < 2."""
    match = _WITH_DV.fullmatch(text)
    if match is None or len(match.group(1)) > 9:
        return False
    total, weight = 0, 2
    for digit in reversed(match.group(1)):
        total += int(digit) * weight
        weight = weight + 1 if weight < 11 else 2
    rest = total % 11
    return (11 - rest if rest > 1 else 0) == int(match.group(2))


def co_nit_is_valid(text: str) -> bool:
    """Colombia's NIT with its check digit ("800197268-4"): DIAN's weights 3, 7, 13, … 71 from the right;
    r = sum mod 11; DV = r when r < 2, else 11 - r."""
    match = _WITH_DV.fullmatch(text)
    if match is None:
        return False
    total = sum(int(digit) * weight for digit, weight in zip(reversed(match.group(1)), _NIT_WEIGHTS, strict=False))
    rest = total % 11
    return (rest if rest < 2 else 11 - rest) == int(match.group(2))


def _rfc_shape(text: str) -> bool:
    return MX_RFC.fullmatch(text) is not None


#: Schemes an id's own shape proves, with the words a published scheme text uses for each (any casing or
#: accents): only these are ever inferred.
_PROOFS: tuple[tuple[str, Any, str, tuple[str, ...]], ...] = (
    (PE_RUC, ruc_is_valid, "SUNAT's check digit", ("RUC", "REGISTRO UNICO DE CONTRIBUYENTE")),
    ("PY-RUC", py_ruc_is_valid, "its check digit (DV)", ("RUC", "REGISTRO UNICO DE CONTRIBUYENTE")),
    ("CO-NIT", co_nit_is_valid, "its check digit (DV)", ("NIT",)),
    ("MX-RFC", _rfc_shape, "the RFC pattern", ("RFC", "REGISTRO FEDERAL DE CONTRIBUYENTES")),
)


def _plain(text: str) -> str:
    """Upper case without accents, words separated by single spaces (for matching scheme names)."""
    decomposed = unicodedata.normalize("NFKD", text.upper())
    return " ".join("".join(c if c.isalnum() else " " for c in decomposed if not unicodedata.combining(c)).split())


def _proven(ident: str, scheme: str | None) -> tuple[str, str] | None:
    """(scheme, proof) when the id's shape proves exactly one scheme of _PROOFS — among those the published
    scheme text names, or any when there is none."""
    words = f" {_plain(scheme)} " if scheme else None
    found = [(name, proof) for name, check, proof, names in _PROOFS
             if (words is None or any(f" {n} " in words for n in names)) and check(ident)]
    return found[0] if len(found) == 1 else None


def _as_record(scheme: str, ident: str) -> dict[str, str]:
    return {"ruc": ident} if scheme == PE_RUC else {"id": ident, "scheme": scheme}


def _classify(scheme: str | None, ident: str, label: str, notes: _Notes) -> dict[str, str] | None:
    """One published (scheme, id) as the record gives it, or None (noted) when it cannot identify."""
    ident = ident.replace(" ", "")
    given = f"scheme {scheme!r}" if scheme else "no scheme"
    if scheme and _ORG_ID_SCHEME.fullmatch(re.sub(r"[\s_]+", "-", scheme.strip())):
        scheme = re.sub(r"[\s_]+", "-", scheme.strip()).upper()
        if ident.upper().startswith(scheme + "-"):
            notes.infer(f"{label} {ident!r}: its {scheme}- prefix is left out of the id")
            ident = ident[len(scheme) + 1:]
        if scheme == PE_RUC and not ruc_is_valid(ident):
            raise _Refusal(f"{label} {ident!r} is given as PE-RUC but fails SUNAT's check digit")
        if scheme == PE_RUC or _IDENTIFIER.fullmatch(ident) or (scheme == "MX-RFC" and _rfc_shape(ident)):
            return _as_record(scheme, ident)
        notes.append(f"{label} {ident!r} ({scheme}) left out: letters, digits, '.' and '-' only, at most 40")
        return None
    proof = _proven(ident, scheme)
    if proof is None and scheme and re.fullmatch(r"[0-9]{11}", ident) and " RUC " in f" {_plain(scheme)} ":
        raise _Refusal(f"{label} {ident!r} has scheme {scheme!r} and a Peruvian RUC's shape, but fails SUNAT's "
                       "check digit")
    if proof is not None:
        notes.infer(f"{label} {ident!r} has {given}: {proof[1]} proves {proof[0]}")
        return _as_record(proof[0], ident)
    if scheme and _LOCAL_SCHEME.fullmatch(scheme.strip()) and _IDENTIFIER.fullmatch(ident):
        return _as_record(scheme.strip(), ident)  # the publisher's own scheme, as published
    if scheme is None:
        notes.infer(f"{label} {ident!r} left out: no scheme, and its shape proves none (a PE-RUC, PY-RUC or CO-NIT "
                    "check digit, the MX-RFC pattern)")
    else:
        notes.infer(f"{label} {ident!r} left out: {given} is neither an org-id scheme nor a scheme name of letters, "
                    "digits, '.', '_' and '-', and the id's shape proves none")
    return None


def identify(org: dict[str, Any], role: str, notes: _Notes) -> dict[str, str] | None:
    """The party's identifier as the record gives it (``{"ruc"}`` or ``{"id", "scheme"}``), from the first
    that can identify of: ``identifier``, ``additionalIdentifiers[]``, the party ``id`` when it reads
    ``SCHEME-ID`` (``PE-RUC-20131370998``). An id given as a number is its digits; a scheme without an id is no
    identifier. Only a check digit (PE-RUC, PY-RUC, CO-NIT) or the RFC pattern (MX-RFC) infers a scheme;
    another scheme is kept as published. Everything left out or inferred is noted."""
    label = f"{role} identifier"
    for given in [_obj(org.get("identifier")), *map(_obj, _list(org.get("additionalIdentifiers")))]:
        scheme, ident = _ident(given.get("scheme")), _ident(given.get("id"))
        if ident is None:
            if scheme is not None:
                notes.infer(f"{label} scheme {scheme!r} has no id: no identifier")
            continue
        found = _classify(scheme, ident, label, notes)
        if found is not None:
            return found
    match = _SCHEMED_ID.fullmatch(_ident(org.get("id")) or "")
    if match is not None:
        try:
            return _classify(match.group(1), match.group(2), f"{role} party id", notes)
        except _Refusal as refusal:  # a party id is only a fallback: a bad one is left out, not refused
            notes.infer(f"{refusal}: left out")
    return None
