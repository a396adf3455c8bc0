"""The Solidity ABI for exactly the types this package sends and reads, and EIP-55 checksummed addresses.

Types: ``address``, ``bool``, ``bytes``, ``string``, ``bytes32``, ``uint8/16/32/64/256`` and tuples of them
(static or dynamic, nested), written as in a signature: ``"(bytes32,uint8,uint64,uint256,uint256)"``. Any
other type string raises ValueError when it is first used.

Why not eth_abi: importing it costs 249 ms of every command's start, eth_utils (which it imports, with
pydantic) 185 ms, against 47 ms for the whole CLI (medians of 7 fresh processes on the 2-core machine, minus
``python -c pass``: ``python -c "import eth_abi.abi"``). With this module and chain/keys.rlp_encode, ``python
-c "import peru_compras.cli, peru_compras.batch, peru_compras.commands.orders"`` went from 460-525 ms to
235-300 ms (same measure, before and after side by side, two rounds; CPU medians 426 -> 177 ms). A running
command saves less, about 90 ms of CPU, as long as typer's option parsing loads pydantic anyway (``import
eth_abi.abi, rlp, eth_utils`` after ``typer._adapters``, ``requests`` and ``peru_compras.cli``: 88-96 ms of
``time.process_time``). ``tests/test_abi.py`` checks, against eth_abi, that every supported type encodes to
the same bytes and that random and mutated byte strings decode to the same value or are refused by both.

Decoding reads a node's or a stranger's bytes, so it is as strict as eth_abi's: every offset and length
inside the data (an offset never points into the head it sits in), padding zero (after ``bytes``/``string``
and above ``uintN``, ``bool`` and the 12 bytes above an ``address``), ``bool`` 0 or 1, ``string`` UTF-8.
Anything else raises :class:`AbiError`. Bytes after the encoding are ignored, as eth_abi and Solidity do.
One corner is stricter than eth_abi: eth_abi counts a static tuple in a head as one word when it bounds the
offsets after it, so it accepts an offset that points into that tuple's words; here the head is its real size.
Addresses decode as eth_abi's do: ``0x`` and 40 lowercase hex digits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from ..hashing import keccak256

WORD = 32
_UINT = re.compile(r"uint(8|16|32|64|256)")
_HEX_ADDRESS = re.compile(r"(?:0[xX])?([0-9a-fA-F]{40})")


class AbiError(Exception):
    """Bytes that are not an encoding of the types asked for, or a value that the type cannot hold."""


class _Type:
    """One parsed type: `kind` is "uint", "bool", "address", "bytes32", "bytes", "string" or "tuple"."""

    __slots__ = ("bits", "components", "dynamic", "head", "kind", "name")
    dynamic: bool
    head: int

    def __init__(self, kind: str, name: str, *, bits: int = 0, components: tuple[_Type, ...] = ()) -> None:
        self.kind, self.name, self.bits, self.components = kind, name, bits, components
        self.dynamic = kind in ("bytes", "string") or any(c.dynamic for c in components)
        # bytes a value takes in its enclosing head: one word (an offset) when dynamic
        self.head = WORD if self.dynamic or kind != "tuple" else sum(c.head for c in components)


@cache
def parse(name: str) -> _Type:
    """The parsed type of `name`; ValueError for a type this codec does not support."""
    if name.startswith("(") and name.endswith(")"):
        return _Type("tuple", name, components=tuple(parse(part) for part in _split(name[1:-1], name)))
    if name in ("address", "bool", "bytes", "string", "bytes32"):
        return _Type(name, name)
    uint = _UINT.fullmatch(name)
    if uint:
        return _Type("uint", name, bits=int(uint.group(1)))
    raise ValueError(f"ABI type {name!r} is not supported here")


def _split(inner: str, whole: str) -> list[str]:
    """The top-level comma-separated parts of a tuple's inside."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(inner):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"ABI type {whole!r} is not supported here")
        elif char == "," and depth == 0:
            parts.append(inner[start:index])
            start = index + 1
    if depth or not inner:
        raise ValueError(f"ABI type {whole!r} is not supported here")
    parts.append(inner[start:])
    return parts


def _types(types: Sequence[str]) -> tuple[_Type, ...]:
    if isinstance(types, str):
        raise TypeError("types must be a list of type strings, not one string")
    return tuple(parse(name) for name in types)


# -- encoding ----------------------------------------------------------------------------------------------


def encode(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """The ABI encoding of `values` as `types` (a function's arguments: one tuple, without the selector)."""
    return _encode_tuple(_types(types), values, "arguments")


def _encode_tuple(components: tuple[_Type, ...], values: Any, name: str) -> bytes:
    if isinstance(values, (str, bytes, bytearray)) or not isinstance(values, Sequence):
        raise AbiError(f"a value for {name} must be a list or tuple, not {type(values).__name__}")
    if len(values) != len(components):
        raise AbiError(f"{len(values)} values for {name}, which has {len(components)}")
    heads: list[bytes] = []
    tails: list[bytes] = []
    offset = sum(kind.head for kind in components)
    for kind, value in zip(components, values, strict=True):
        encoded = _encode(kind, value)
        if kind.dynamic:
            heads.append(offset.to_bytes(WORD, "big"))
            tails.append(encoded)
            offset += len(encoded)
        else:
            heads.append(encoded)
    return b"".join(heads + tails)


def _encode(kind: _Type, value: Any) -> bytes:
    if kind.kind == "uint":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << kind.bits:
            raise AbiError(f"{_shown(value)} is not a {kind.name}")
        return value.to_bytes(WORD, "big")
    if kind.kind == "bool":
        if not isinstance(value, bool):
            raise AbiError(f"{_shown(value)} is not a bool")
        return (1 if value else 0).to_bytes(WORD, "big")
    if kind.kind == "address":
        return bytes(12) + _address_bytes(value)
    if kind.kind == "bytes32":
        if not isinstance(value, (bytes, bytearray)) or len(value) != WORD:
            raise AbiError(f"{_shown(value)} is not 32 bytes")
        return bytes(value)
    if kind.kind in ("bytes", "string"):
        if kind.kind == "string":
            if not isinstance(value, str):
                raise AbiError(f"{_shown(value)} is not a string")
            value = value.encode("utf-8")
        elif not isinstance(value, (bytes, bytearray)):
            raise AbiError(f"{_shown(value)} is not bytes")
        return len(value).to_bytes(WORD, "big") + bytes(value) + bytes(-len(value) % WORD)
    return _encode_tuple(kind.components, value, kind.name)


def _address_bytes(value: Any) -> bytes:
    """The 20 bytes of an address given as 20 bytes or as hex text (checksum not checked, as eth_abi)."""
    if isinstance(value, (bytes, bytearray)) and len(value) == 20:
        return bytes(value)
    found = _HEX_ADDRESS.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise AbiError(f"{_shown(value)} is not an address")
    return bytes.fromhex(found.group(1))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- decoding ----------------------------------------------------------------------------------------------


def decode(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """The values `data` encodes as `types`; AbiError unless it is a valid encoding (see the module's rules).
    uintN decode as int, bool as bool, address as ``0x`` + lowercase hex, bytes32/bytes as bytes, string as
    str, tuples as tuples."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    return _decode_tuple(_types(types), bytes(data), 0)


def _word(data: bytes, at: int) -> bytes:
    if at + WORD > len(data):
        raise AbiError(f"{len(data)} bytes end before the word at {at}")
    return data[at : at + WORD]


def _decode_tuple(components: tuple[_Type, ...], data: bytes, base: int) -> tuple[Any, ...]:
    """The tuple whose encoding starts at `base` (offsets inside it count from there)."""
    out = []
    at, head_end = base, base + sum(kind.head for kind in components)
    for kind in components:
        if kind.dynamic:
            offset = int.from_bytes(_word(data, at), "big")
            start = base + offset
            if start < head_end:  # (one past the end is refused by the first read there)
                raise AbiError(f"offset {offset} at {at} points into the head, not to a {kind.name}")
            out.append(_decode_tail(kind, data, start))
        else:
            out.append(_decode_static(kind, data, at))
        at += kind.head
    return tuple(out)


def _decode_tail(kind: _Type, data: bytes, start: int) -> Any:
    if kind.kind == "tuple":
        return _decode_tuple(kind.components, data, start)
    length = int.from_bytes(_word(data, start), "big")
    body = start + WORD
    padded = length + (-length % WORD)
    if padded > len(data) - body:
        raise AbiError(f"a {kind.name} of {length} bytes at {start} runs past the end of the data")
    if data[body + length : body + padded] != bytes(padded - length):
        raise AbiError(f"the padding after the {kind.name} at {start} is not zero")
    value = data[body : body + length]
    if kind.kind == "string":
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise AbiError(f"the string at {start} is not UTF-8") from None
    return value


def _decode_static(kind: _Type, data: bytes, at: int) -> Any:
    if kind.kind == "tuple":
        out = []
        for component in kind.components:
            out.append(_decode_static(component, data, at))
            at += component.head
        return tuple(out)
    word = _word(data, at)
    if kind.kind == "bytes32":
        return word
    if kind.kind == "address":
        if word[:12] != bytes(12):
            raise AbiError(f"the address at {at} has non-zero bytes above its 20")
        return "0x" + word[12:].hex()
    value = int.from_bytes(word, "big")
    if kind.kind == "bool":
        if value > 1:
            raise AbiError(f"the bool at {at} is neither 0 nor 1")
        return value == 1
    if value >> kind.bits:
        raise AbiError(f"the {kind.name} at {at} is out of range (non-zero padding)")
    return value


# -- EIP-55 ------------------------------------------------------------------------------------------------


def to_checksum_address(value: str | bytes | bytearray | memoryview) -> str:
    """The EIP-55 checksummed form of an address given as 20 bytes or as 40 hex digits (with or without 0x
    or 0X, any case: the case given is not checked). ValueError for text or bytes that are no address,
    TypeError for anything else (as eth_utils, except that eth_utils also takes an int of 40 hex digits)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if len(raw) != 20:
            raise ValueError(f"{len(raw)} bytes are not an address (20)")
        lower = raw.hex()
    elif isinstance(value, str):
        found = _HEX_ADDRESS.fullmatch(value)
        if found is None:
            raise ValueError(f"{_shown(value)} is not an address (0x and 40 hex digits)")
        lower = found.group(1).lower()
    else:
        raise TypeError(f"an address must be text or bytes, not {type(value).__name__}")
    digest = keccak256(lower.encode("ascii")).hex()[:40]  # a letter is upper case where its nibble is 8 or more
    return "0x" + "".join(char.upper() if nibble in "89abcdef" else char
                          for char, nibble in zip(lower, digest, strict=True))
