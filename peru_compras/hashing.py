"""SHA-256 of documents and their hashlinks (draft-sporny-hashlink).

A hashlink is ``hl:`` followed by the multibase base58btc (prefix ``z``) encoding of the multihash
``0x12 0x20 ‖ digest``: ``hashlink(sha256(b"Hello World!"))`` is
``hl:zQmWvQxTqbG2Z9HPJgG57jjwR154cKhbtJenbyYTWkjgF3e``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .errors import InvalidInput

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_MULTIHASH_SHA256 = b"\x12\x20"
_HEX_DIGEST = re.compile(r"(?:0[xX])?([0-9a-fA-F]{64})")  # fullmatch: bytes.fromhex alone skips spaces
_CHUNK = 1 << 20
_MAX_HASHLINK = 60


def sha256(data: bytes) -> bytes:
    """The 32-byte SHA-256 digest of `data`."""
    return hashlib.sha256(data).digest()


def sha256_file(path: Path) -> bytes:
    """The SHA-256 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()


_58_POW_10 = 58**10  # ten base-58 digits fit a machine word: one big-number division per ten digits


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, chunk = divmod(number, _58_POW_10)
        for _ in range(10):
            chunk, rest = divmod(chunk, 58)
            out.append(_ALPHABET[rest])
    while out and out[-1] == "1":  # the last chunk's leading zeros are padding, not digits
        out.pop()
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(out))


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        if char not in _INDEX:
            raise ValueError(char)
        number = number * 58 + _INDEX[char]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + body


def hashlink(digest: bytes) -> str:
    """The hashlink (``hl:zQm…``) of a 32-byte SHA-256 digest."""
    if len(digest) != 32:
        raise InvalidInput(f"a SHA-256 digest has 32 bytes, got {len(digest)}")
    return "hl:z" + _b58encode(_MULTIHASH_SHA256 + digest)


def parse_digest(text: str) -> bytes:
    """A SHA-256 digest from a hashlink (``hl:z…``) or 64 hex digits (``0x`` optional)."""
    value = text.strip()
    shown = repr(value) if len(value) <= 80 else repr(value[:60]) + f"… ({len(value)} characters)"
    if value.startswith("hl:z"):
        try:  # 46 base-58 digits encode the 34-byte multihash: a longer text is not one (and costs quadratic time)
            raw = _b58decode(value[4:]) if len(value) <= _MAX_HASHLINK else b""
        except ValueError:
            raw = b""
        if len(raw) == 34 and raw[:2] == _MULTIHASH_SHA256:
            return raw[2:]
        raise InvalidInput(f"{shown} is not a SHA-256 hashlink", hint="expected hl:zQm… as printed by register")
    hexa = _HEX_DIGEST.fullmatch(value)
    if hexa:
        return bytes.fromhex(hexa.group(1))
    raise InvalidInput(f"{shown} is not a SHA-256 digest", hint="give 64 hex digits or a hashlink hl:zQm…")
