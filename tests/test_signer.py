"""chain/keys.Signer signs exactly what eth-account signs (the same bytes), and never shows its key."""

from __future__ import annotations

import os
import random

import pytest
from eth_account import Account

from peru_compras.chain.keys import Signer

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
