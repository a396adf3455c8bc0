"""chain/abi.py against someone else's implementation: eth_abi (encoding and decoding) and eth_utils (EIP-55),
both still installed with web3. Every type the package sends or reads encodes to eth_abi's bytes; random and
mutated byte strings decode to eth_abi's value or are refused by both, with one corner where ours is
deliberately stricter (see :func:`_explained`). Hand-made hostile encodings check each of the decoder's rules
by itself, so that dropping one fails a test by name."""

from __future__ import annotations

from typing import Any

import eth_abi.grammar
import pytest
from eth_abi.abi import decode as eth_decode
from eth_abi.abi import encode as eth_encode
from eth_utils.address import to_checksum_address as eth_checksum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peru_compras.chain import abi, lacnet, metatx
from peru_compras.chain.client import _ORDER_STATE
from peru_compras.chain.contract import _errors

SCALARS = ["address", "bool", "bytes", "string", "bytes32", "uint8", "uint16", "uint32", "uint64", "uint256"]
#: the argument lists the package encodes or decodes (client, contract, lacnet, metatx, trust, mirror), the
#: contract's custom errors' arguments (from the shipped artifact), and a nested dynamic tuple
SIGNATURES: list[list[str]] = [list(types) for types in dict.fromkeys(tuple(types) for types in [
    *([name] for name in SCALARS),
    [_ORDER_STATE], [metatx._FORWARD], [metatx._FORWARD, "bytes", "bytes"], lacnet._HUB_ARGS, lacnet._OLD_HUB_ARGS,
    ["address", "address", "address", "string"], ["uint256", "bytes"], ["uint256", "string"], ["bytes32", "address"],
    ["address", "uint256"], ["address", "address", "uint8"], ["bool", "bytes"], ["address", "bytes32"],
    ["address", "uint32", "uint256"],
    *(types for _name, types in _errors().values()),
    ["uint64", "(bool,(string,bytes32),bytes)", "(address,uint16)", "string"],
])]
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _address() -> st.SearchStrategy[Any]:
    raw = st.binary(min_size=20, max_size=20)
    return st.one_of(raw, raw.map(lambda b: "0x" + b.hex()), raw.map(lambda b: "0X" + b.hex().upper()),
                     raw.map(lambda b: eth_checksum(b)), raw.map(lambda b: b.hex()))


def _value(kind: Any) -> st.SearchStrategy[Any]:
    """Values for an eth_abi grammar type (its parser, not ours, reads the type string)."""
    if isinstance(kind, eth_abi.grammar.TupleType):
        return st.tuples(*(_value(component) for component in kind.components))
    if kind.base == "uint":
        return st.integers(0, 2**kind.sub - 1)
    return {"address": _address(), "bool": st.booleans(), "string": st.text(max_size=40),
            "bytes": st.binary(max_size=100) if not kind.sub else st.binary(min_size=32, max_size=32)}[kind.base]


def _values(types: list[str]) -> st.SearchStrategy[list[Any]]:
    return st.tuples(*(_value(eth_abi.grammar.parse(name)) for name in types)).map(list)


def _normal(kind: Any, value: Any) -> Any:
    """`value` as decoding returns it: an address as 0x + lowercase hex, a tuple as a tuple."""
    if isinstance(kind, eth_abi.grammar.TupleType):
        return tuple(_normal(component, item) for component, item in zip(kind.components, value, strict=True))
    if kind.base == "address":
        return "0x" + (value.hex() if isinstance(value, bytes) else value.lower().removeprefix("0x"))
    return value


@pytest.mark.parametrize("types", SIGNATURES, ids=lambda types: ",".join(types))
@FAST
@given(data=st.data())
def test_every_type_encodes_as_eth_abi_and_decodes_back(types: list[str], data: st.DataObject) -> None:
    values = data.draw(_values(types))
    encoded = abi.encode(types, values)
    assert encoded == eth_encode(types, values)
    normal = tuple(_normal(eth_abi.grammar.parse(name), value) for name, value in zip(types, values, strict=True))
    assert abi.decode(types, encoded) == eth_decode(types, encoded) == normal


def _outcome(decode: Any, types: list[str], data: bytes) -> tuple[str, Any]:
    try:
        return "value", tuple(decode(types, data))
    except abi.AbiError:
        return "refused", None
    except Exception as exc:  # noqa: BLE001 — eth_abi's DecodingError, UnicodeDecodeError: refusals
        if decode is abi.decode:
            raise AssertionError(f"our decoder raised {type(exc).__name__}, not AbiError") from exc
        return "refused", None


def _words(kind: Any) -> int:
    """Words a type takes in a head: one for a dynamic type, a static tuple's all."""
    if isinstance(kind, eth_abi.grammar.TupleType) and not kind.is_dynamic:
        return sum(_words(component) for component in kind.components)
    return 1


def _explained(types: list[str], data: bytes) -> bool:
    """The one place ours refuses what eth_abi accepts: eth_abi bounds an offset below by a head in which a
    static tuple counts as one word, so after ``metatx._FORWARD`` (8 words) it takes an offset that points
    back into the Forward (from its fourth word) as the start of the bytes argument. Ours refuses it, as
    Solidity's decoder does: nothing starts inside the head. Only a static tuple before a dynamic argument
    at the top level has it (no nested one in SIGNATURES)."""
    kinds = [eth_abi.grammar.parse(name) for name in types]
    lax, real = 32 * len(kinds), 32 * sum(_words(kind) for kind in kinds)
    at = 0
    for kind in kinds:
        if kind.is_dynamic and len(data) >= at + 32 and lax <= int.from_bytes(data[at : at + 32], "big") < real:
            return True
        at += 32 * _words(kind)
    return False


def _mutated(types: list[str]) -> st.SearchStrategy[bytes]:
    """A valid encoding, then one word set to a small number (an offset or a length), a random word, a
    byte changed, the end cut or extended; or plain random bytes."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(abi.encode(types, draw(_values(types))))
        how = draw(st.sampled_from(["word", "small", "byte", "cut", "extend", "random"]))
        words = max(1, len(data) // 32)
        at = draw(st.integers(0, words - 1)) * 32
        if how == "random":
            return draw(st.binary(max_size=400))
        if how == "small" and len(data) >= at + 32:
            data[at : at + 32] = draw(st.integers(0, len(data) + 64)).to_bytes(32, "big")
        elif how == "word" and len(data) >= at + 32:
            data[at : at + 32] = draw(st.binary(min_size=32, max_size=32))
        elif how == "byte" and data:
            index = draw(st.integers(0, len(data) - 1))
            data[index] = draw(st.integers(0, 255))
        elif how == "cut":
            del data[draw(st.integers(0, len(data))):]
        else:
            data += draw(st.binary(min_size=1, max_size=64))
        return bytes(data)

    return build()


@pytest.mark.parametrize("types", SIGNATURES, ids=lambda types: ",".join(types))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_bytes_decode_as_eth_abi_or_are_refused_by_both(types: list[str], data: st.DataObject) -> None:
    raw = data.draw(_mutated(types))
    ours, theirs = _outcome(abi.decode, types, raw), _outcome(eth_decode, types, raw)
    if ours != theirs:
        assert ours[0] == "refused" and _explained(types, raw), (ours, theirs, raw.hex())


def test_the_stricter_corner_is_real() -> None:
    """The documented difference: an offset into the Forward's words, accepted by eth_abi, refused here."""
    types = [metatx._FORWARD, "bytes", "bytes"]
    good = bytearray(abi.encode(types, [("0x" + "11" * 20, "0x" + "22" * 20, 0, 0, 0, 0, b"\0" * 32, "0x" + "33" * 20),
                                        b"", b""]))
    good[256:288] = (96).to_bytes(32, "big")  # the first bytes argument "starts" at the Forward's fourth word
    eth_decode(types, bytes(good))
    with pytest.raises(abi.AbiError, match="offset 96 at 256 points into the head"):
        abi.decode(types, bytes(good))


def _w(value: int) -> bytes:
    return value.to_bytes(32, "big")


HOSTILE: list[tuple[str, list[str], bytes]] = [
    ("short word", ["uint256"], b"\1" * 31),
    ("uint8 over 255", ["uint8"], _w(256)),
    ("uint64 padding", ["uint64"], _w(2**64)),
    ("bool 2", ["bool"], _w(2)),
    ("bool padding", ["bool"], b"\1" + bytes(30) + b"\1"),
    ("address high bytes", ["address"], b"\1" + bytes(31)),
    ("address byte 11", ["address"], bytes(11) + b"\1" + bytes(20)),
    ("offset into the head", ["uint256", "bytes"], _w(1) + _w(32) + _w(0)),
    ("offset at the end", ["bytes"], _w(32)),
    ("offset past the end", ["bytes"], _w(2**255) + _w(0)),
    ("length past the end", ["bytes"], _w(32) + _w(33) + bytes(32)),
    ("huge length", ["string"], _w(32) + _w(2**256 - 1) + bytes(64)),
    ("bytes padding", ["bytes"], _w(32) + _w(1) + b"a" + bytes(30) + b"\1"),
    ("string padding", ["string"], _w(32) + _w(1) + b"a" + b"\1" + bytes(30)),
    ("string not UTF-8", ["string"], _w(32) + _w(1) + b"\xff" + bytes(31)),
    ("missing padding", ["bytes"], _w(32) + _w(1) + b"a"),
    ("tuple offset past the end", ["(uint256,bytes)"], _w(64)),
    ("nested offset into the tuple's head", ["(uint256,bytes)"], _w(32) + _w(7) + _w(32) + _w(0)),
]


@pytest.mark.parametrize(("why", "types", "data"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_each_rule_refuses_what_eth_abi_refuses(why: str, types: list[str], data: bytes) -> None:
    with pytest.raises(Exception):  # noqa: B017 — eth_abi's DecodingError or UnicodeDecodeError
        eth_decode(types, data)
    with pytest.raises(abi.AbiError):
        abi.decode(types, data)


def test_well_formed_corners_decode() -> None:
    """What the rules must not refuse: trailing bytes, an empty bytes at the end, a tail shared by two
    arguments, the largest values."""
    for types, data, value in [(["uint8"], _w(255) + b"\xff" * 5, (255,)), (["bytes"], _w(32) + _w(0), (b"",)),
                               (["string", "string"], _w(64) + _w(64) + _w(2) + b"hi" + bytes(30), ("hi", "hi")),
                               (["uint256", "bool"], b"\xff" * 32 + _w(1), (2**256 - 1, True))]:
        assert abi.decode(types, data) == eth_decode(types, data) == value


@pytest.mark.parametrize("name", ["uint", "uint128", "int256", "bytes31", "address[]", "(uint256", "()", "(,)",
                                  "uint256 ", "tuple", "uint08", "(uint256))"])
def test_unknown_types_raise_at_once(name: str) -> None:
    with pytest.raises(ValueError, match="not supported"):
        abi.encode([name], [0])
    with pytest.raises(ValueError, match="not supported"):
        abi.decode([name], b"")


@pytest.mark.parametrize(("types", "values"), [
    (["uint8"], [256]), (["uint256"], [-1]), (["uint256"], [True]), (["uint64"], ["1"]), (["bool"], [1]),
    (["address"], ["0x" + "1" * 39]), (["address"], [b"\1" * 19]), (["address"], [None]), (["bytes"], ["text"]),
    (["string"], [b"bytes"]), (["(uint8,bool)"], [(1,)]), (["(uint8,bool)"], ["ab"]), (["uint8"], [1, 2]),
])
def test_values_a_type_cannot_hold_are_refused_by_both(types: list[str], values: list[Any]) -> None:
    with pytest.raises(Exception):  # noqa: B017 — eth_abi's EncodingError subclasses
        eth_encode(types, values)
    with pytest.raises(abi.AbiError):
        abi.encode(types, values)


def test_a_short_bytes32_is_refused_where_eth_abi_pads_it() -> None:
    """Stricter on purpose: eth_abi right-pads a short bytes32 with zeros; every bytes32 the package sends
    (a role, a digest) is 32 bytes, so a shorter one is a bug to show, not to pad."""
    assert eth_encode(["bytes32"], [b"ab"]) == b"ab" + bytes(30)
    with pytest.raises(abi.AbiError):
        abi.encode(["bytes32"], [b"ab"])


# -- EIP-55 ----------------------------------------------------------------------------------------------

EIP55 = ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
         "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb"]


@pytest.mark.parametrize("address", EIP55)
def test_the_eip55_examples(address: str) -> None:
    for given_as in (address, address.lower(), "0X" + address[2:].upper(), address[2:], bytes.fromhex(address[2:])):
        assert abi.to_checksum_address(given_as) == address


@settings(max_examples=400, deadline=None)
@given(raw=st.binary(min_size=20, max_size=20), case=st.lists(st.booleans(), min_size=40, max_size=40))
def test_checksums_are_eth_utils(raw: bytes, case: list[bool]) -> None:
    mixed = "0x" + "".join(c.upper() if up else c for c, up in zip(raw.hex(), case, strict=True))
    expected = eth_checksum(raw)
    for given_as in (raw, bytearray(raw), raw.hex(), "0x" + raw.hex(), "0X" + raw.hex().upper(), mixed):
        assert abi.to_checksum_address(given_as) == eth_checksum(given_as) == expected


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(
    st.text(alphabet="0123456789abcdefABCDEFxXg \n", max_size=46),
    st.tuples(st.sampled_from(["", "0x", "0X", "x", "00", " 0x", "0x0x"]),
              st.text(alphabet="0123456789abcdefABCDEF", min_size=38, max_size=42),
              st.sampled_from(["", " ", "\n", "g", "٣"])).map("".join),
    st.binary(max_size=24)))
def test_what_is_no_address_is_refused_as_eth_utils_refuses_it(text: str | bytes) -> None:
    try:
        expected: str | None = eth_checksum(text)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            abi.to_checksum_address(text)
    else:
        assert abi.to_checksum_address(text) == expected


@pytest.mark.parametrize("text", [
    "", "0x", "x" + "ab" * 20, "0x" + "a" * 39, "0x" + "a" * 41, " 0x" + "a" * 40, "0x" + "a" * 40 + "\n",
    "0x0x" + "a" * 38, "0x" + "g" + "a" * 39, "0x" + "\u0663" * 40, "a" * 39, "a" * 41, b"\1" * 19, b"\1" * 21, b""])
def test_these_are_no_addresses_for_either(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        eth_checksum(text)
    with pytest.raises(ValueError):
        abi.to_checksum_address(text)


@pytest.mark.parametrize("value", [None, 1.5, ["0x" + "11" * 20], 2**159, True])
def test_non_text_is_a_type_error(value: Any) -> None:
    """eth_utils raises TypeError for None, a float and a list, and takes an int whose hex has 40 digits
    (2**159 becomes 0x8000…); no caller passes an int, so ours refuses every non-text, non-bytes value."""
    with pytest.raises(TypeError):
        abi.to_checksum_address(value)
    if not isinstance(value, int):
        with pytest.raises((TypeError, ValueError)):
            eth_checksum(value)
