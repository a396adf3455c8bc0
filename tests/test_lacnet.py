"""LACNet's gas model without a node: the two public test vectors through our signing path, the payload and
gas rules, reading the hub's events (success only when they say our call ran), and finding our calldata
inside a relayed transaction of either hub form."""

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
from peru_compras.errors import ConfigurationError, InvalidInput, OrderAlreadyRegistered, RelayRefused
from peru_compras.settings import load_settings

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

# lacchain/gas-model-provider, src/test/lacchain-transaction.test.ts: same key and call, nonce 0x42, gas 0xd558,
# another writer node (LACNET.md: "Public test vectors")
VECTOR2_NODE = "0xfda1303fc59b74b0926740b627770ced2ee98672"
VECTOR2_RAW = (
    "0xf8e4428082d558944f3f9061c42b396746bb9a232089703e4f9dbf7680b88452c28fab000000000000000000000000e81d7e5cd979"
    "be0a7f6b6c98957a66fdf6240273000000000000000000000000410bd47227a5ea8af81995fa3d66b770af6f85e2000000000000000000"
    "000000fda1303fc59b74b0926740b627770ced2ee98672000000000000000000000000000000000000000000000000000000006d752821"
    "1ba05313a3599a01d85aecb9792ffdf22f3f3b22b90bdd171a4e9f042719e7358f9da066f66b78938797f47a6cb54e759bbc0b4133c7b6"
    "16760e0242848ae4c797de82")

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


def test_the_second_public_vector_is_reproduced_byte_for_byte() -> None:
    raw, _ = lacnet.sign(Account.from_key(VECTOR_KEY), to=VECTOR_TO, data=VECTOR_DATA, gas=0xD558, nonce=0x42,
                         node_address=VECTOR2_NODE, expiration=VECTOR_EXPIRATION)
    assert "0x" + raw.hex() == VECTOR2_RAW
    assert lacnet.rlp_items(raw)[6] == b"\x1b"


@pytest.mark.parametrize(("gas", "nonce", "node", "expected"), [(1234, 71, VECTOR_NODE, VECTOR_RAW),
                                                               (0xD558, 0x42, VECTOR2_NODE, VECTOR2_RAW)])
def test_the_transactor_signs_the_vectors_with_exactly_the_gas_asked(gas: int, nonce: int, node: str,
                                                                      expected: str) -> None:
    """Transactor.sign (what deploy, register, batches, annul and roles use) gives the vectors' bytes: no gas
    floor is added (the old rule len(data) x 22 + 326,000 would have made 1234 into 328,904)."""
    transactor = Transactor(OFFLINE, Account.from_key(VECTOR_KEY), network("lacnet-protestnet"), node_address=node)
    raw, tx_hash = transactor.sign(VECTOR_TO, VECTOR_DATA, gas, nonce, expiration=VECTOR_EXPIRATION)
    assert "0x" + raw.hex() == expected
    assert tx_hash == "0x" + keccak(raw).hex()
    assert not hasattr(lacnet, "min_gas") and not hasattr(transactor, "min_gas")


def test_the_user_gas_is_the_estimate_with_a_margin_and_the_node_gas_the_relays_rule() -> None:
    assert lacnet.user_gas(100_000) == 130_000  # x 6/5 + 10,000, whatever the data's length
    payload = lacnet.payload(VECTOR_DATA, VECTOR_NODE, VECTOR_EXPIRATION)
    assert lacnet.relay_gas(payload, 1234) == 132 * 105 + 300_000 + 1234


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


HUB = "0x" + "4b" * 20
REGISTRY = "0x" + "7e" * 20


def _word(address: str) -> str:
    return "0x" + address[2:].lower().rjust(64, "0")


def _log(topic: str, types: list[str], values: list[object], *, indexed: tuple[str, ...] = (),
         address: str = HUB) -> dict[str, object]:
    return {"address": address, "topics": [topic, *map(_word, indexed)], "data": "0x" + abi_encode(types, values).hex()}


def _receipt(logs: list[dict[str, object]], *, status: int = 1, contract: str | None = None) -> dict[str, object]:
    return {"status": hex(status), "blockNumber": "0x5", "gasUsed": "0x5208", "contractAddress": contract,
            "to": HUB, "logs": logs}


SIGNER = Account.from_key(VECTOR_KEY).address


def _relayed(executed: bool, output: bytes = b"", *, sender: str = SIGNER) -> dict[str, object]:
    return _log(lacnet.TRANSACTION_RELAYED, ["bool", "bytes"], [executed, output],
                indexed=(VECTOR_NODE, sender, REGISTRY))


def _gas_used() -> dict[str, object]:
    return _log(lacnet.GAS_USED_BY_TRANSACTION, ["address", "uint256", "uint256", "uint256", "uint256"],
                [VECTOR_NODE, 5, 40_000, 0, 40_000])


def test_the_hub_selectors_are_the_ones_lacnets_account_rules_hard_code() -> None:
    assert (lacnet.RELAY_META_TX.hex(), lacnet.DEPLOY_META_TX.hex()) == ("1416862c", "3ef54cef")
    assert (lacnet.OLD_RELAY_META_TX.hex(), lacnet.OLD_DEPLOY_META_TX.hex()) == ("a04fb2ad", "4b802a36")


@pytest.mark.parametrize(("code", "name"), [(0, "MaxBlockGasLimit"), (2, "BadNonce"), (3, "NotEnoughGas"),
                                            (4, "IsNotContract"), (6, "InvalidSignature")])
def test_a_hub_refusal_with_status_1_is_an_error_naming_the_cause(code: int, name: str) -> None:
    refusal = _log(lacnet.BAD_TRANSACTION_SENT, ["address", "address", "uint8"], [VECTOR_NODE, SIGNER, code])
    with pytest.raises(lacnet.HubRefused, match=f"{name} \\(code {code}\\)") as caught:
        vector_transactor().read_receipt("0xabc", _receipt([_gas_used(), refusal]), action="register order 'X'")
    assert caught.value.code == code and caught.value.block == 5
    assert caught.value.hint and "\n" not in str(caught.value)


@pytest.mark.parametrize("logs", [[], [_gas_used()]], ids=["no-logs", "only-gas-used"])
def test_a_status_1_receipt_without_transaction_relayed_is_not_a_registration(logs: list[dict[str, object]]) -> None:
    """The hub returns NotEnoughGas before emitting anything when the node's allowance is used up: status 1."""
    with pytest.raises(lacnet.HubRefused, match="no TransactionRelayed event.*NotEnoughGas") as caught:
        vector_transactor().read_receipt("0xabc", _receipt(logs), action="register order 'X'")
    assert caught.value.code == lacnet.NOT_ENOUGH_GAS
    assert "\n" not in str(caught.value) and caught.value.hint


def test_success_is_transaction_relayed_executed_for_our_call_or_the_registrys_own_events() -> None:
    ok = vector_transactor().read_receipt("0xabc", _receipt([_relayed(True), _gas_used()]), action="register")
    assert ok.block_number == 5
    registered = _log(keccak(b"OrderRegistered(bytes32,address)").hex(), [], [], address=REGISTRY)
    assert vector_transactor().read_receipt("0xabc", _receipt([registered]), action="register").gas_used == 21_000
    someone_else = _relayed(True, sender="0x" + "99" * 20)
    with pytest.raises(lacnet.HubRefused, match="NotEnoughGas"):
        vector_transactor().read_receipt("0xabc", _receipt([someone_else]), action="register")


def test_a_deployment_that_created_nothing_is_not_a_success() -> None:
    accepted = _log(lacnet.RELAYED, [], [], indexed=(SIGNER, VECTOR_NODE))
    with pytest.raises(RelayRefused, match="neither ran the call .* nor deployed"):
        vector_transactor().read_receipt("0xabc", _receipt([accepted, _gas_used()]), action="deploy")


def test_a_deployment_address_comes_from_the_hub_event_when_the_receipt_has_none() -> None:
    deployed = "0x" + "12" * 20
    event = _log(lacnet.CONTRACT_DEPLOYED, ["address"], [deployed], indexed=(VECTOR_NODE, SIGNER))
    receipt = vector_transactor().read_receipt("0xabc", _receipt([event], contract=None), action="deploy")
    assert receipt.contract_address is not None and receipt.contract_address.lower() == deployed
    zero = vector_transactor().read_receipt("0xabc", _receipt([event], contract="0x" + "00" * 20), action="deploy")
    assert zero.contract_address is not None and zero.contract_address.lower() == deployed


def test_a_relayed_call_that_reverted_is_the_contracts_named_error() -> None:
    revert = keccak(b"PurchaseOrderAlreadyRegistered(uint256,string)")[:4] + abi_encode(
        ["uint256", "string"], [7, "20131370998/OC-1"])
    with pytest.raises(OrderAlreadyRegistered, match="OC-1"):
        vector_transactor().read_receipt("0xabc", _receipt([_relayed(False, revert)]), action="register order 'OC-1'")
    rewritten = {**_receipt([]), "status": "0x0", "revertReason": "0x" + revert.hex()}
    with pytest.raises(OrderAlreadyRegistered):
        vector_transactor().read_receipt("0xabc", rewritten, action="register order 'OC-1'")


def test_bad_nonce_answers_are_recognised() -> None:
    assert lacnet.is_bad_nonce("BAD NONCE") and lacnet.is_bad_nonce("nonce too low: next 4")
    assert not lacnet.is_bad_nonce("account sender is not permitted to send transactions")


# -- our calldata inside the relay's transaction -----------------------------------------------------------


def _relay_input(raw: bytes, function: str = "relayMetaTx", *, old: bool = False) -> bytes:
    """What a writer node sends to the hub for `raw`: its gas (5-argument form), the RLP of the unsigned
    transaction and v, r, s."""
    items = lacnet.rlp_items(raw)
    v, r, s = (int.from_bytes(x, "big") for x in items[6:9])
    signing = rlp_encode_unsigned(raw)
    if old:
        selector = keccak(f"{function}(bytes,uint8,bytes32,bytes32)".encode())[:4]
        return selector + abi_encode(["bytes", "uint8", "bytes32", "bytes32"],
                                     [signing, v, r.to_bytes(32, "big"), s.to_bytes(32, "big")])
    selector = keccak(f"{function}(uint256,bytes,uint8,bytes32,bytes32)".encode())[:4]
    return selector + abi_encode(["uint256", "bytes", "uint8", "bytes32", "bytes32"],
                                 [lacnet.relay_gas(bytes(items[5]), 90_000), signing, v, r.to_bytes(32, "big"),
                                  s.to_bytes(32, "big")])


@pytest.mark.parametrize("old", [False, True], ids=["5-argument", "4-argument"])
def test_the_record_is_found_inside_either_hub_call(old: bool) -> None:
    entry = b"\x11" * 32 + b"\x0bOC-RELAYED-1" + b"rest of the entry"
    calldata = REGISTER + abi_encode(["bytes"], [entry])
    raw, _ = vector_transactor().sign(VECTOR_TO, calldata, 90_000, 3, expiration=VECTOR_EXPIRATION)
    relayed = _relay_input(raw, old=old)
    assert relayed[:4].hex() == ("a04fb2ad" if old else "1416862c")
    assert lacnet.original_calldata(relayed) == calldata
    assert _entries(relayed) == [entry] == _entries(calldata)
    original = lacnet.original_transaction(rlp_encode_unsigned(raw))
    assert (original.nonce, original.gas_price, original.gas, original.to) == (3, 0, 90_000, VECTOR_TO)
    assert (original.node_address, original.expiration) == (VECTOR_NODE, VECTOR_EXPIRATION)
    deploy = _relay_input(raw, "deployMetaTx", old=old)
    assert deploy[:4].hex() == ("4b802a36" if old else "3ef54cef")
    assert lacnet.original_calldata(deploy) == calldata


def rlp_encode_unsigned(raw: bytes) -> bytes:
    import rlp

    return bytes(rlp.encode(lacnet.rlp_items(raw)[:6]))


def test_foreign_or_broken_relay_input_is_not_mistaken_for_a_record() -> None:
    assert lacnet.original_calldata(b"\x12\x34\x56\x78") is None
    assert lacnet.original_calldata(lacnet.RELAY_META_TX + b"\x00" * 10) is None
    assert lacnet.original_calldata(lacnet.OLD_RELAY_META_TX + b"\x00" * 10) is None
    assert _entries(lacnet.RELAY_META_TX + b"\x00" * 10) == []
    with pytest.raises(ValueError):
        lacnet.rlp_items(b"\xf8\xff\x01")
    with pytest.raises(ValueError, match="six fields"):
        lacnet.original_transaction(bytes(__import__("rlp").encode([b"\x01"] * 9)))
