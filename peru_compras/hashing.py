"""SHA-256 of documents and their hashlinks (draft-sporny-hashlink).

A hashlink is ``hl:`` followed by the multibase base58btc (prefix ``z``) encoding of the multihash
``0x12 0x20 ‖ digest``: ``hashlink(sha256(b"Hello World!"))`` is
``hl:zQmWvQxTqbG2Z9HPJgG57jjwR154cKhbtJenbyYTWkjgF3e``.
"""

from __future__ import annotations

import hashlib
import re
import threading
import weakref
from functools import cache
from pathlib import Path
from typing import Any

from .errors import InvalidInput

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_MULTIHASH_SHA256 = b"\x12\x20"  # sha2-256, 32 bytes
_HASHLINK_LENGTH = 50  # "hl:z" and 46 base-58 digits: every 0x12 0x20 multihash has exactly 46
_HEX_DIGEST = re.compile(r"(?:0[xX])?([0-9a-fA-F]{64})")  # fullmatch: bytes.fromhex alone skips spaces


def sha256(data: bytes) -> bytes:
    """The 32-byte SHA-256 digest of `data`."""
    return hashlib.sha256(data).digest()


def sha256_file(path: Path) -> bytes:
    """The SHA-256 digest of a file, read in chunks (never whole into memory)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").digest()


#: every number below 58 * 58 as its two base-58 digits: one division of the big number per two digits. A
#: hashlink takes 2.8 us so, against 7.2 us dividing by 58**10 then digit by digit (timeit of hashlink(digest)
#: on the 2-core machine; a batch computes two or three an order). Built at import: 3,364 strings, 0.2 ms.
_PAIRS = tuple(high + low for high in _ALPHABET for low in _ALPHABET)


def _b58encode(data: bytes) -> str:
    """Base58btc of `data`, which never starts with a zero byte here (a multihash starts 0x12)."""
    number = int.from_bytes(data)  # big-endian
    pairs = []
    while number:
        number, pair = divmod(number, 3364)
        pairs.append(_PAIRS[pair])
    pairs.reverse()
    return "".join(pairs).lstrip("1")  # a "1" in front is the first pair's padding: a number starts non-zero


def _hashlink_digest(value: str) -> bytes | None:
    """The digest a SHA-256 hashlink carries, or None. Exactly 50 characters, so one spelling per digest
    (a leading base-58 "1" would be a zero byte) and no long decode of a long text."""
    if len(value) != _HASHLINK_LENGTH:
        return None
    number = 0
    for char in value[4:]:
        if char not in _INDEX:
            return None
        number = number * 58 + _INDEX[char]
    if number >> 256 != int.from_bytes(_MULTIHASH_SHA256):  # the multihash prefix: sha2-256, 32 bytes
        return None
    return number.to_bytes(34)[2:]


def hashlink(digest: bytes) -> str:
    """The hashlink (``hl:zQm…``) of a 32-byte SHA-256 digest."""
    if len(digest) != 32:
        raise InvalidInput(f"a SHA-256 digest has 32 bytes, got {len(digest)}")
    return "hl:z" + _b58encode(_MULTIHASH_SHA256 + digest)


def parse_digest(text: str) -> bytes:
    """A SHA-256 digest from a hashlink (``hl:z…``) or 64 hex digits (``0x`` optional)."""
    value = text.strip()
    shown = repr(value[:80]) + ("…" if len(value) > 80 else "")
    if value.startswith("hl:z"):
        digest = _hashlink_digest(value)
        if digest is None:
            raise InvalidInput(f"{shown} is not a SHA-256 hashlink", hint="expected hl:zQm… as printed by register")
        return digest
    hexa = _HEX_DIGEST.fullmatch(value)
    if hexa:
        return bytes.fromhex(hexa.group(1))
    raise InvalidInput(f"{shown} is not a SHA-256 digest", hint="give 64 hex digits or a hashlink hl:zQm…")


class _Keccak(threading.local):
    """Keccak-256 through pycryptodome's C functions with one reusable state per thread: 4.4 us a hash of 64
    bytes here, against 13.5 us through eth_hash (which builds a hash object and its state each time) —
    seven hashes an order make the difference between about 100 and 30 us of the signing (measured with
    timeit on the 2-core machine; tests/test_hashing.py checks it equals eth_hash's).

    The library is loaded with ctypes, not through pycryptodome's loader: that one picks cffi when it is
    installed and parses C declarations with pycparser, 36 ms of CPU on first use against 1.5 ms (median of
    9 fresh processes), paid by the batch process and by each of its workers."""

    def __init__(self) -> None:
        import ctypes

        lib = _keccak_library()
        state = ctypes.c_void_p()
        if lib.keccak_init(ctypes.byref(state), 64, 24):  # capacity 2 x 32 bytes, 24 rounds: Keccak-256
            raise RuntimeError("keccak_init failed")
        self.lib, self.state, self.out = lib, state, ctypes.create_string_buffer(32)
        weakref.finalize(self, lib.keccak_destroy, state)

    def __call__(self, data: bytes) -> bytes:
        lib, state, out = self.lib, self.state, self.out
        if lib.keccak_reset(state) or lib.keccak_absorb(state, data, len(data)) or lib.keccak_digest(
                state, out, 32, 1):  # padding 0x01: Keccak as Ethereum uses it (SHA-3 pads 0x06)
            raise RuntimeError("keccak failed")
        return out.raw


@cache
def _keccak_library() -> Any:
    """pycryptodome's compiled Keccak (pinned: its C functions' signatures are those of its src/keccak.c)."""
    import ctypes
    import importlib.util
    import sysconfig

    spec = importlib.util.find_spec("Crypto")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pycryptodome is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "Hash"
    names = ["_keccak.abi3.so", "_keccak" + str(sysconfig.get_config_var("EXT_SUFFIX")), "_keccak.so"]
    lib = ctypes.CDLL(str(next(folder / name for name in names if (folder / name).is_file())))
    state = ctypes.c_void_p
    lib.keccak_init.argtypes = [ctypes.POINTER(state), ctypes.c_size_t, ctypes.c_ubyte]
    lib.keccak_absorb.argtypes = [state, ctypes.c_char_p, ctypes.c_size_t]
    lib.keccak_digest.argtypes = [state, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_ubyte]
    lib.keccak_reset.argtypes = lib.keccak_destroy.argtypes = [state]
    for function in (lib.keccak_init, lib.keccak_absorb, lib.keccak_digest, lib.keccak_reset, lib.keccak_destroy):
        function.restype = ctypes.c_int
    return lib


def keccak256(data: bytes) -> bytes:
    """Ethereum's Keccak-256 (the fast path of :class:`_Keccak`; eth_hash when pycryptodome's is missing)."""
    fast = _fast()
    return fast(data) if fast is not None else _keccak_eth_hash(data)


@cache
def _fast() -> _Keccak | None:
    try:
        return _Keccak()
    except Exception:  # noqa: BLE001 — another pycryptodome build: eth_hash still gives the same digests
        return None


def _keccak_eth_hash(data: bytes) -> bytes:
    from eth_hash.auto import keccak

    digest: bytes = keccak(data)
    return digest
