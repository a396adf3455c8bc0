"""chain/keys.Signer signs exactly what eth-account signs (the same bytes), and never shows its key; its RLP
encoder writes exactly what pyrlp writes."""

from __future__ import annotations

import os
import random

import pytest
import rlp  # type: ignore[import-untyped]  # rlp 5 ships no type information
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from peru_compras.chain.keys import RlpItem, Signer, rlp_encode

TO = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _shapes(rng: random.Random) -> list[dict[str, object]]:
    data = rng.randbytes(rng.choice([0, 1, 4, 55, 56, 68, 300, 5000]))
    base = {"nonce": rng.choice([0, 1, 127, 128, 2**20]), "gas": rng.choice([21_000, 100_000, 30_000_000]),
            "value": rng.choice([0, 1, 10**18]), "data": data}
    return [
        {**base, "to": TO, "gasPrice": rng.choice([0, 1, 10**9]), "chainId": rng.choice([1, 31337, 648529])},
        {**base, "gasPrice": 0, "chainId": 31337},  # a deployment (no "to")
        {**base, "to": TO, "gasPrice": 0},  # LACNet: no chain id, v = 27/28
        {**base, "gasPrice": 0},
        {**base, "to": TO, "chainId": 31337, "maxFeePerGas": 2 * 10**9 + 7, "maxPriorityFeePerGas": 10**9},
        {**base, "chainId": 1, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0},
    ]


def test_every_shape_is_byte_for_byte_eth_accounts() -> None:
    rng = random.Random(16)
    for _ in range(60):
        key = os.urandom(32)
        ours, theirs = Signer(key), Account.from_key(key)
        assert ours.address == theirs.address
        for tx in _shapes(rng):
            mine, reference = ours.sign_transaction(tx), theirs.sign_transaction(tx)
            assert mine.raw_transaction == bytes(reference.raw_transaction), tx
            assert mine.hash == bytes(reference.hash), tx


def test_the_key_is_never_shown_and_bad_keys_are_refused() -> None:
    key = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
    signer = Signer(key)
    assert key.hex() not in repr(signer) + str(signer) and signer.address in repr(signer)
    for bad in (b"", b"\x00" * 32, b"\xff" * 32, key[:31]):
        with pytest.raises(ValueError):
            Signer(bad)
    with pytest.raises(ValueError, match="accessList"):
        signer.sign_transaction({"nonce": 0, "gas": 1, "gasPrice": 0, "accessList": []})


# -- the RLP the signer writes (chain/keys.rlp_encode) against pyrlp's -------------------------------------

_ITEMS = st.recursive(
    st.one_of(st.binary(max_size=70), st.binary(min_size=250, max_size=300), st.integers(0, 2**300),
              st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, 0x100, 2**64 - 1, 2**256 - 1])),
    lambda children: st.lists(children, max_size=8), max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(item=_ITEMS)
def test_rlp_is_pyrlps_byte_for_byte(item: RlpItem) -> None:
    assert rlp_encode(item) == rlp.encode(item)


def test_rlp_length_boundaries() -> None:
    """55/56 bytes (one length byte or two), 255/256 and 65,536 (the length's own length), for strings and lists."""
    for size in (0, 1, 55, 56, 255, 256, 65_535, 65_536):
        assert rlp_encode(b"\x01" * size) == rlp.encode(b"\x01" * size)
        assert rlp_encode([b"\x01"] * size) == rlp.encode([b"\x01"] * size)
    assert rlp_encode(b"\x7f") == b"\x7f" and rlp_encode(b"\x80") == b"\x81\x80" and rlp_encode(0) == b"\x80"


def test_rlp_refuses_what_a_transaction_never_holds() -> None:
    """A negative int is refused by both; a bool and text, which pyrlp encodes as 1/0 and UTF-8, are refused
    here (the signer passes only int(...) and bytes: anything else is a bug to show)."""
    with pytest.raises(TypeError):
        rlp.encode(-1)
    with pytest.raises(ValueError):
        rlp_encode(-1)
    for value in (True, "a", None, 1.0):
        with pytest.raises(TypeError):
            rlp_encode(value)  # type: ignore[arg-type]
