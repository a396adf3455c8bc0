"""LACNet's gas model, as pure functions (LACNET.md, read from LACNet's own sources).

A client signs a legacy transaction with gas price 0 and *no* chain id (v = 27/28) whose data is the
calldata followed by ``abi.encode(nodeAddress, expirationTime)``; its gas limit is what the call itself
needs (an estimate with a margin: there is no LACNet floor on the user's gas). The writer node's relay
signer wraps it into its own transaction to the hub (``TxRelay``),
``relayMetaTx(uint256 gasLimit, bytes signingData, uint8 v, bytes32 r, bytes32 s)`` (``deployMetaTx`` for a
deployment) with ``gasLimit = len(data) × 105 + 300,000 + userGas``, where ``signingData`` is the RLP of the
six unsigned fields of our transaction. So ``eth_getTransactionByHash`` returns the hub call, and
:func:`original_calldata` recovers our calldata from it (the 5-argument form first, then the older
4-argument one still found in old transactions).

The hub reports through events: ``TransactionRelayed`` (the target call ran, or reverted), ``ContractDeployed``
(a deployment's address) and ``BadTransactionSent`` (a refusal with an ``ErrorCode``), all with receipt
status 1. It may also return ``NotEnoughGas`` *before emitting any of them* (the writer node's gas
allowance for the block is used up): :func:`relay_outcome` tells these apart, and success is only a
``TransactionRelayed(executed = true)`` for our call, a ``ContractDeployed`` for our deployment, or the
target's own events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..errors import HubRefused as HubRefused  # defined in errors.py; lacnet.HubRefused stays
from ..errors import InvalidInput
from ..settings import check_address as check_address  # defined in settings.py; lacnet.check_address stays
from .abi import AbiError, to_checksum_address
from .abi import decode as abi_decode
from .abi import encode as abi_encode
from .contract import selector as _selector
from .contract import topic as _topic
from .keys import TxSigner

#: bytes LACNet appends to the data: abi.encode(address nodeAddress, uint256 expirationTime)
SUFFIX_BYTES = 64
#: the relay signer's gas for its own transaction: len(data) × 105 + 300,000 + the user's gas
#: (gas-management v1.0.1 controller/processController.go); AccountRules.sol checks the same shape
RELAY_GAS_PER_BYTE = 105
RELAY_BASE_GAS = 300_000
#: what the hub adds to the user's gas for the 64 suffix bytes (TxRelay.sol: data.gasLimit + 600)
HUB_SUFFIX_GAS = 600
#: the user's gas limit: the node's estimate times 6/5 plus this (an estimate runs the call as the user;
#: through the hub it also asks the hub who signed, a few thousand gas that the 21,000 base covers)
GAS_MARGIN = 10_000

_HUB_ARGS = ["uint256", "bytes", "uint8", "bytes32", "bytes32"]
_OLD_HUB_ARGS = ["bytes", "uint8", "bytes32", "bytes32"]
#: the hub calls the writer node sends today (selectors AccountRules.sol hard-codes: 0x1416862c, 0x3ef54cef)
RELAY_META_TX = _selector("relayMetaTx(uint256,bytes,uint8,bytes32,bytes32)")
DEPLOY_META_TX = _selector("deployMetaTx(uint256,bytes,uint8,bytes32,bytes32)")
#: the older 4-argument form (gas-management master, and the relay's ABI string): read, never sent
OLD_RELAY_META_TX = _selector("relayMetaTx(bytes,uint8,bytes32,bytes32)")
OLD_DEPLOY_META_TX = _selector("deployMetaTx(bytes,uint8,bytes32,bytes32)")
# The hub's events (gas-management test/pegasys relayhub/contracts/TxRelay.sol, IRelayHub.sol).
CONTRACT_DEPLOYED = _topic("ContractDeployed(address,address,address)")
TRANSACTION_RELAYED = _topic("TransactionRelayed(address,address,address,bool,bytes)")
BAD_TRANSACTION_SENT = _topic("BadTransactionSent(address,address,uint8)")
GAS_USED_BY_TRANSACTION = _topic("GasUsedByTransaction(address,uint256,uint256,uint256,uint256)")
RELAYED = _topic("Relayed(address,address)")
HUB_EVENTS = frozenset({CONTRACT_DEPLOYED, TRANSACTION_RELAYED, BAD_TRANSACTION_SENT, GAS_USED_BY_TRANSACTION,
                        RELAYED})

#: IRelayHub.ErrorCode
MAX_BLOCK_GAS_LIMIT, BAD_ORIGINAL_SENDER, BAD_NONCE, NOT_ENOUGH_GAS = 0, 1, 2, 3
IS_NOT_CONTRACT, EMPTY_CODE, INVALID_SIGNATURE, INVALID_DESTINATION, OK = 4, 5, 6, 7, 8

#: ErrorCode: (name, what it means, what to do next)
RELAY_ERRORS: dict[int, tuple[str, str, str]] = {
    MAX_BLOCK_GAS_LIMIT: ("MaxBlockGasLimit", "the transaction asks for more gas than the hub lets one take",
                          "send fewer orders per transaction (--batch-size)"),
    BAD_ORIGINAL_SENDER: ("BadOriginalSender", "the hub does not accept this sender or node for the transaction",
                          "check --node-address is the writer node you send through, and that the account is "
                          "permissioned"),
    BAD_NONCE: ("BadNonce", "the nonce is not the hub's next nonce for this account at this writer node",
                "run the command again (the nonce is re-read from the writer node)"),
    NOT_ENOUGH_GAS: ("NotEnoughGas", "the writer node's gas allowance for this block is used up",
                     "run the command again in a few seconds; if it persists, ask the writer node operator about "
                     "the node's gas allowance"),
    IS_NOT_CONTRACT: ("IsNotContract", "the destination is not a contract", "check --registry"),
    EMPTY_CODE: ("EmptyCode", "the deployment carries no code", "this is a client bug: report it"),
    INVALID_SIGNATURE: ("InvalidSignature", "the hub could not verify the transaction's signature",
                        "check the signer's key and that the transaction is signed with chain id 0"),
    INVALID_DESTINATION: ("InvalidDestination", "the destination is not allowed", "check --registry"),
}


def expiration_after(seconds: int, *, now: float | None = None) -> int:
    """The expiration time (seconds since the epoch) `seconds` from `now`."""
    return int(time.time() if now is None else now) + seconds


def payload(data: bytes, node_address: str, expiration: int) -> bytes:
    """`data` followed by ``abi.encode(node_address, expiration)``."""
    return data + abi_encode(["address", "uint256"], [node_address, expiration])


def user_gas(estimate: int) -> int:
    """The user's gas limit for a call the node estimated at `estimate`: a margin, no floor."""
    return estimate * 6 // 5 + GAS_MARGIN


def relay_gas(payload_bytes: bytes, gas: int) -> int:
    """The gas the writer node's relay gives its own hub transaction for ours (and that its block allowance
    is charged with): ``len(payload) × 105 + 300,000 + gas``."""
    return len(payload_bytes) * RELAY_GAS_PER_BYTE + RELAY_BASE_GAS + gas


def sign(account: TxSigner, *, to: str | None, data: bytes, gas: int, nonce: int, node_address: str,
         expiration: int) -> tuple[bytes, str]:
    """The raw LACNet transaction and its hash, for exactly these values: legacy, gas price 0, value 0,
    data + suffix, signed without a chain id (v = 27/28)."""
    tx: dict[str, Any] = {"nonce": nonce, "gasPrice": 0, "gas": gas, "value": 0,
                          "data": payload(data, node_address, expiration)}
    if to:
        tx["to"] = to
    signed = account.sign_transaction(tx)
    return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()


# -- reading what the relay made of it ---------------------------------------------------------------


def rlp_items(data: bytes) -> list[Any]:
    """Decode one RLP list (strings as bytes, nested lists as lists); ValueError when malformed."""
    import rlp  # type: ignore[import-untyped]  # rlp 5 ships no type information; loaded for relayed txs only

    try:
        item = rlp.decode(data, strict=True)
    except rlp.DecodingError as exc:
        raise ValueError(f"not RLP: {exc}") from None
    if not isinstance(item, list):
        raise ValueError("not a single RLP list")
    return item


@dataclass(frozen=True, slots=True)
class OriginalTransaction:
    """The client's transaction inside a relayed one."""

    nonce: int
    gas_price: int
    gas: int
    to: str | None
    data: bytes  # calldata (or init code) without LACNet's suffix
    node_address: str
    expiration: int


def original_transaction(signing_data: bytes) -> OriginalTransaction:
    """Decode the RLP of an unsigned legacy transaction [nonce, gasPrice, gas, to, value, data(+suffix)]."""
    items = rlp_items(signing_data)
    if len(items) != 6 or any(not isinstance(item, bytes) for item in items):
        raise ValueError("not the six fields of an unsigned legacy transaction")
    nonce, price, gas, to, _value, data = items
    if len(to) not in (0, 20):
        raise ValueError("the destination is not an address")
    if len(data) < SUFFIX_BYTES:
        raise ValueError("data shorter than LACNet's suffix")
    try:
        node, expiration = abi_decode(["address", "uint256"], data[-SUFFIX_BYTES:])
    except AbiError as exc:  # callers treat a ValueError as "not LACNet's form"
        raise ValueError(f"LACNet's suffix is not (address, uint256): {exc}") from None
    return OriginalTransaction(int.from_bytes(nonce, "big"), int.from_bytes(price, "big"),
                               int.from_bytes(gas, "big"), to_checksum_address(to) if to else None,
                               bytes(data[:-SUFFIX_BYTES]), to_checksum_address(node), int(expiration))


def hub_signing_data(data: bytes) -> bytes | None:
    """The ``signingData`` argument when `data` is a hub call's input (5-argument form first, then the old
    4-argument one), else None."""
    forms = ((RELAY_META_TX, _HUB_ARGS, 1), (DEPLOY_META_TX, _HUB_ARGS, 1),
             (OLD_RELAY_META_TX, _OLD_HUB_ARGS, 0), (OLD_DEPLOY_META_TX, _OLD_HUB_ARGS, 0))
    for function, types, at in forms:
        if data[:4] == function:
            try:
                return bytes(abi_decode(types, data[4:])[at])
            except Exception:  # noqa: BLE001 — not the shape we know: the caller treats it as foreign calldata
                return None
    return None


def original_calldata(data: bytes) -> bytes | None:
    """Our calldata when `data` is a ``relayMetaTx``/``deployMetaTx`` call's input (either form), else None."""
    signing_data = hub_signing_data(data)
    if signing_data is None:
        return None
    try:
        return original_transaction(signing_data).data
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RelayOutcome:
    """What the hub's events in a receipt say about our transaction."""

    executed: bool = False  # TransactionRelayed(executed = true), or the target's own events
    accepted: bool = False  # Relayed: the hub took the nonce and went on to run the call
    refused: int | None = None  # a BadTransactionSent error code
    deployed: str | None = None  # ContractDeployed's address
    reverted: bytes | None = None  # TransactionRelayed with executed = false: the revert data


_ZERO = "0x" + "00" * 20


def _word_address(topic: str) -> str:
    return str(to_checksum_address("0x" + topic[-40:]))


def relay_outcome(logs: list[dict[str, Any]], *, sender: str | None = None, hub: str | None = None
                  ) -> RelayOutcome:
    """Read a receipt's logs. `sender`: only the hub's events about this signer count (a hub transaction
    carries one relayed call, but say so rather than assume it). `hub`: the address the node's transaction
    went to; a log from any other address is the target's own event, so the call ran."""
    executed = accepted = False
    refused: int | None = None
    deployed: str | None = None
    reverted: bytes | None = None
    mine = to_checksum_address(sender) if sender else None
    for log in logs:
        topics = log.get("topics") or []
        emitter = str(log.get("address") or "")
        if hub and emitter and emitter.lower() != hub.lower():
            executed = True  # the target (registry) emitted it: the relayed call ran
            continue
        if not topics or topics[0] not in HUB_EVENTS:
            continue
        try:
            body = bytes.fromhex(str(log.get("data", "0x"))[2:])
            if topics[0] == BAD_TRANSACTION_SENT:
                _node, original, code = abi_decode(["address", "address", "uint8"], body)
                # InvalidSignature names nobody (the hub recovered no signer): ours too
                if mine is None or to_checksum_address(original) in (mine, _ZERO):
                    refused = int(code)
            elif topics[0] == RELAYED:  # Relayed(address indexed from, address indexed node)
                if mine is None or len(topics) < 2 or _word_address(topics[1]) == mine:
                    accepted = True
            elif topics[0] == CONTRACT_DEPLOYED:
                if mine is None or len(topics) < 3 or _word_address(topics[2]) == mine:
                    deployed = to_checksum_address(abi_decode(["address"], body)[0])
            elif topics[0] == TRANSACTION_RELAYED:
                if mine is None or len(topics) < 3 or _word_address(topics[2]) == mine:
                    ran, output = abi_decode(["bool", "bytes"], body)
                    if ran:
                        executed = True
                    else:
                        reverted = bytes(output)
        except Exception:  # noqa: BLE001 — an event with the hub's topic but another layout: not the hub's
            continue
    return RelayOutcome(executed, accepted, refused, deployed, reverted)


def relay_error_text(code: int) -> tuple[str, str]:
    """(message part, hint) for a hub ErrorCode."""
    name, cause, hint = RELAY_ERRORS.get(code, (f"code {code}", "an unknown refusal", "ask the writer node operator"))
    return f"{name} (code {code}): {cause}", hint


def is_bad_nonce(message: str) -> bool:
    """Whether a node's error text says the nonce is wrong: the live relay's ``BAD NONCE`` (-32000,
    LNet-NonceTest README), or a plain node's "nonce too low/high"."""
    text = message.lower()
    return "bad nonce" in text or "nonce too low" in text or "nonce too high" in text


def check_expiration(expiration: int, *, now: float | None = None) -> None:
    """Refuse an expiration time that has already passed (the network would refuse the transaction)."""
    current = int(time.time() if now is None else now)
    if expiration <= current:
        raise InvalidInput(f"expiration time {expiration} is in the past (now {current})",
                           hint="use a later expiration, e.g. now + 300 s (PERU_COMPRAS_EXPIRATION_SECONDS)")
