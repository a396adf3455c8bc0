"""LACNet's gas model without a node: the public test vector through our signing path, the payload and gas
rules, reading the relay's events, and finding our calldata inside a relayed transaction."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.crypto import keccak

from peru_compras.chain import lacnet
from peru_compras.chain.client import REGISTER, _entries
from peru_compras.chain.networks import network
from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transactions import Transactor
from peru_compras.config import load_settings
from peru_compras.errors import ConfigurationError, InvalidInput, OrderAlreadyRegistered, RelayRefused

from .conftest import Runner

# lacchain/gas-model-provider, src/test/fixtures.ts (LACNET.md: "Public test vector")
VECTOR_KEY = "9ea92b45be8c30b18da6857cf60cfec534c0d612af34b291fd022ac4573e617c"
VECTOR_TO = "0x4F3F9061c42B396746Bb9A232089703E4f9DBF76"
VECTOR_DATA = bytes.fromhex(
    "52c28fab000000000000000000000000e81d7e5cd979be0a7f6b6c98957a66fdf6240273"
    "000000000000000000000000410bd47227a5ea8af81995fa3d66b770af6f85e2")
VECTOR_NODE = "0xc6e2459991BfE27cca6d86722F35da23A1E4Cb97"
VECTOR_EXPIRATION = 1836394529
VECTOR_RAW = (
    "0xf8e447808204d2944f3f9061c42b396746bb9a232089703e4f9dbf7680b88452c28fab000000000000000000000000e81d7e5cd979"
    "be0a7f6b6c98957a66fdf6240273000000000000000000000000410bd47227a5ea8af81995fa3d66b770af6f85e2000000000000000000"
    "000000c6e2459991bfe27cca6d86722f35da23a1e4cb97000000000000000000000000000000000000000000000000000000006d752821"
    "1ba0c82f7051ffec883df1a1ce7fbe735cbd61900b8957362709b3614bd3c3309418a03f6b1897320a809a93c17ccc26130a0918a995cf"
    "b14fcd7c4108b35778003ab7")

OFFLINE = Rpc("http://127.0.0.1:9")  # never called by signing


def vector_transactor() -> Transactor:
    return Transactor(OFFLINE, Account.from_key(VECTOR_KEY), network("lacnet-protestnet"), node_address=VECTOR_NODE)


def test_public_vector_is_reproduced_byte_for_byte() -> None:
    raw, _ = lacnet.sign(Account.from_key(VECTOR_KEY), to=VECTOR_TO, data=VECTOR_DATA, gas=1234, nonce=71,
                         node_address=VECTOR_NODE, expiration=VECTOR_EXPIRATION)
    text = "0x" + raw.hex()
    assert text.startswith("0xf8e447808204d2944f3f") and text.endswith("78003ab7")  # as LACNET.md quotes it
    assert "6d7528211ba0c82f70" in text
    assert text == VECTOR_RAW
    items = lacnet.rlp_items(raw)
    assert items[1] == b"" and items[6] == b"\x1b"  # gas price 0, v = 27: signed without a chain id


def test_transactor_signs_the_vector_through_the_same_path_with_the_gas_floor() -> None:
    """Transactor.sign (what deploy, register, batches, annul and roles use) gives the vector's bytes except the
    gas limit, which it raises to LACNet's floor: re-signing the vector at that gas must match exactly."""
    transactor = vector_transactor()
    raw, tx_hash = transactor.sign(VECTOR_TO, VECTOR_DATA, 1234, 71, expiration=VECTOR_EXPIRATION)
    payload = transactor.payload(VECTOR_DATA, expiration=VECTOR_EXPIRATION)
    assert payload == lacnet.rlp_items(bytes.fromhex(VECTOR_RAW[2:]))[5]  # data + abi.encode(node, expiration)
    floor = len(payload) * 22 + 326_000
    assert transactor.min_gas(payload) == floor == 328_904
    items = lacnet.rlp_items(raw)
    assert int.from_bytes(items[2], "big") == floor  # type: ignore[arg-type]
    expected, _ = lacnet.sign(Account.from_key(VECTOR_KEY), to=VECTOR_TO, data=VECTOR_DATA, gas=floor, nonce=71,
                              node_address=VECTOR_NODE, expiration=VECTOR_EXPIRATION)
    assert raw == expected
    vector = lacnet.rlp_items(bytes.fromhex(VECTOR_RAW[2:]))
    assert [items[i] for i in (0, 1, 3, 4, 5)] == [vector[i] for i in (0, 1, 3, 4, 5)]
    assert items[6] in (b"\x1b", b"\x1c")
    assert tx_hash == "0x" + keccak(raw).hex()


def test_default_expiration_is_now_plus_the_window() -> None:
    transactor = vector_transactor()
    before = int(time.time())
    payload = transactor.payload(b"\x01\x02")
    node_word, expiration_word = payload[2:34], payload[34:66]
    assert node_word[-20:].hex() == VECTOR_NODE[2:].lower()
    assert before + 300 <= int.from_bytes(expiration_word, "big") <= int(time.time()) + 300


def test_an_expired_expiration_is_refused_before_signing() -> None:
    with pytest.raises(InvalidInput, match="expiration time .* is in the past"):
        vector_transactor().sign(VECTOR_TO, VECTOR_DATA, 1234, 71, expiration=int(time.time()) - 1)


def test_non_lacnet_profiles_keep_plain_calldata() -> None:
    transactor = Transactor(OFFLINE, Account.from_key(VECTOR_KEY), network("besu"))
    assert transactor.payload(VECTOR_DATA) == VECTOR_DATA
    assert transactor.min_gas(VECTOR_DATA) == 21_000


@pytest.mark.parametrize("bad", ["0x1234", "c6e2459991BfE27cca6d86722F35da23A1E4Cb97", "0x" + "zz" * 20,
                                 "0xc6e2459991bfe27cca6d86722f35da23a1e4cb97ff"])
def test_a_malformed_node_address_is_one_clear_line(bad: str, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="writer node address") as caught:
        Transactor(OFFLINE, Account.from_key(VECTOR_KEY), network("lacnet-protestnet"), node_address=bad)
    assert "\n" not in str(caught.value) and "--node-address" in str(caught.value)
    monkeypatch.setenv("PERU_COMPRAS_NODE_ADDRESS", bad)
    with pytest.raises(ConfigurationError, match="PERU_COMPRAS_NODE_ADDRESS"):
        load_settings({"network": "lacnet-protestnet"}, cwd=tmp_path)


def test_a_lacnet_profile_needs_the_node_address() -> None:
    with pytest.raises(ConfigurationError, match="writer node's address"):
        Transactor(OFFLINE, Account.from_key(VECTOR_KEY), network("lacnet-mainnet"))


def test_settings_override_the_trusted_forwarder_and_window(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    forwarder = "0x" + "ab" * 20
    monkeypatch.setenv("PERU_COMPRAS_TRUSTED_FORWARDER", forwarder)
    monkeypatch.setenv("PERU_COMPRAS_EXPIRATION_SECONDS", "120")
    settings = load_settings({"network": "lacnet-protestnet"}, cwd=tmp_path)
    assert settings.network.trusted_forwarder is not None
    assert settings.network.trusted_forwarder.lower() == forwarder
    assert settings.network.expiration_seconds == 120
    assert network("lacnet-protestnet").trusted_forwarder == "0xa4B5eE2906090ce2cDbf5dfff944db26f397037D"
    monkeypatch.setenv("PERU_COMPRAS_EXPIRATION_SECONDS", "0")
    with pytest.raises(ConfigurationError, match="expiration window"):
        load_settings({"network": "lacnet-protestnet"}, cwd=tmp_path)


def test_cli_names_a_malformed_node_address(cli: Runner) -> None:
    result = cli("--network", "lacnet-protestnet", "--node-address", "0x1234", "deploy")
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "writer node address '0x1234' is not an address" in lines[0]


# -- reading what the relay did ----------------------------------------------------------------------------


def _log(topic: str, types: list[str], values: list[object]) -> dict[str, object]:
    return {"topics": [topic], "data": "0x" + abi_encode(types, values).hex()}


def _receipt(logs: list[dict[str, object]], *, status: int = 1, contract: str | None = None) -> dict[str, object]:
    return {"status": hex(status), "blockNumber": "0x5", "gasUsed": "0x5208", "contractAddress": contract,
            "logs": logs}


@pytest.mark.parametrize(("code", "name"), [(0, "MaxBlockGasLimit"), (2, "BadNonce"), (3, "NotEnoughGas"),
                                            (6, "InvalidSignature")])
def test_a_relay_refusal_with_status_1_is_an_error_naming_the_cause(code: int, name: str) -> None:
    refusal = _log(lacnet.BAD_TRANSACTION_SENT, ["address", "address", "uint8"],
                   [VECTOR_NODE, VECTOR_TO, code])
    with pytest.raises(RelayRefused, match=f"{name} \\(code {code}\\)") as caught:
        vector_transactor().read_receipt("0xabc", _receipt([refusal]), action="register order 'X'")
    assert caught.value.hint and "\n" not in str(caught.value)


def test_a_deployment_address_comes_from_the_hub_event_when_the_receipt_has_none() -> None:
    deployed = "0x" + "12" * 20
    event = _log(lacnet.CONTRACT_DEPLOYED, ["address"], [deployed])
    receipt = vector_transactor().read_receipt("0xabc", _receipt([event], contract=None), action="deploy")
    assert receipt.contract_address is not None and receipt.contract_address.lower() == deployed
    zero = vector_transactor().read_receipt("0xabc", _receipt([event], contract="0x" + "00" * 20), action="deploy")
    assert zero.contract_address is not None and zero.contract_address.lower() == deployed


def test_a_relayed_call_that_reverted_is_the_contracts_named_error() -> None:
    revert = keccak(b"PurchaseOrderAlreadyRegistered(uint256,string)")[:4] + abi_encode(
        ["uint256", "string"], [7, "20131370998/OC-1"])
    event = _log(lacnet.TRANSACTION_RELAYED, ["bool", "bytes"], [False, revert])
    with pytest.raises(OrderAlreadyRegistered, match="OC-1"):
        vector_transactor().read_receipt("0xabc", _receipt([event]), action="register order 'OC-1'")
    rewritten = {**_receipt([]), "status": "0x0", "revertReason": "0x" + revert.hex()}
    with pytest.raises(OrderAlreadyRegistered):
        vector_transactor().read_receipt("0xabc", rewritten, action="register order 'OC-1'")


# -- our calldata inside the relay's transaction -----------------------------------------------------------


def _relay_input(raw: bytes, function: str = "relayMetaTx") -> bytes:
    """What a writer node sends to the hub for `raw`: the RLP of the unsigned transaction and v, r, s."""
    import rlp

    items = lacnet.rlp_items(raw)
    v, r, s = (int.from_bytes(x, "big") for x in items[6:9])  # type: ignore[arg-type]
    selector = keccak(f"{function}(bytes,uint8,bytes32,bytes32)".encode())[:4]
    return selector + abi_encode(["bytes", "uint8", "bytes32", "bytes32"],
                                 [rlp.encode(items[:6]), v, r.to_bytes(32, "big"), s.to_bytes(32, "big")])


def test_the_record_is_found_inside_relay_meta_tx() -> None:
    entry = b"\x11" * 32 + b"\x0bOC-RELAYED-1" + b"rest of the entry"
    calldata = REGISTER + abi_encode(["bytes"], [entry])
    raw, _ = vector_transactor().sign(VECTOR_TO, calldata, 0, 3, expiration=VECTOR_EXPIRATION)
    relayed = _relay_input(raw)
    assert lacnet.original_calldata(relayed) == calldata
    assert _entries(relayed) == [entry] == _entries(calldata)
    original = lacnet.original_transaction(rlp_encode_unsigned(raw))
    assert (original.nonce, original.gas_price, original.to) == (3, 0, VECTOR_TO)
    assert (original.node_address, original.expiration) == (VECTOR_NODE, VECTOR_EXPIRATION)
    deploy = _relay_input(raw, "deployMetaTx")
    assert lacnet.original_calldata(deploy) == calldata


def rlp_encode_unsigned(raw: bytes) -> bytes:
    import rlp

    return bytes(rlp.encode(lacnet.rlp_items(raw)[:6]))


def test_foreign_or_broken_relay_input_is_not_mistaken_for_a_record() -> None:
    assert lacnet.original_calldata(b"\x12\x34\x56\x78") is None
    assert lacnet.original_calldata(lacnet.RELAY_META_TX + b"\x00" * 10) is None
    assert _entries(lacnet.RELAY_META_TX + b"\x00" * 10) == []
    with pytest.raises(ValueError):
        lacnet.rlp_items(b"\xf8\xff\x01")
