"""LACNet's gas model, as pure functions (LACNET.md): what a transaction must look like, and how to read
what the writer node's relay makes of it.

A client signs a legacy transaction with gas price 0 and *no* chain id (v = 27/28) whose data is the
calldata followed by ``abi.encode(nodeAddress, expirationTime)``, with a gas limit of at least
``len(data) × 22 + 326,000``. The writer node's RelaySigner wraps it into a call to the RelayHub,
``relayMetaTx(bytes signingData, uint8 v, bytes32 r, bytes32 s)`` (``deployMetaTx`` for a deployment),
where ``signingData`` is the RLP of the unsigned original transaction: so ``eth_getTransactionByHash``
returns the hub call, and :func:`original_calldata` recovers our calldata from it.

The hub reports through events: ``ContractDeployed`` (a deployment's address), ``TransactionRelayed``
(whether the target call ran) and ``BadTransactionSent`` (a refusal, code 0..7), which may come with
receipt status 1: :func:`relay_outcome` reads them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from ..errors import ConfigurationError, InvalidInput
from .contract import selector as _selector
from .contract import topic as _topic

#: bytes LACNet appends to the data: abi.encode(address nodeAddress, uint256 expirationTime)
SUFFIX_BYTES = 64
GAS_PER_BYTE = 22
BASE_GAS = 326_000




RELAY_META_TX = _selector("relayMetaTx(bytes,uint8,bytes32,bytes32)")
DEPLOY_META_TX = _selector("deployMetaTx(bytes,uint8,bytes32,bytes32)")
# The hub's events, with the signatures LACNet's own RelayHub declares (LACNET.md, gas-management).
CONTRACT_DEPLOYED = _topic("ContractDeployed(address,address,address)")
TRANSACTION_RELAYED = _topic("TransactionRelayed(address,address,address,bool,bytes)")
BAD_TRANSACTION_SENT = _topic("BadTransactionSent(address,address,uint8)")

#: BadTransactionSent error codes: (name, what it means, what to do next)
RELAY_ERRORS: dict[int, tuple[str, str, str]] = {
    0: ("MaxBlockGasLimit", "the transaction asks for more gas than a block may hold",
        "send fewer orders per transaction (--batch-size)"),
    1: ("BadOriginalSender", "the relay does not accept this sender or node for the transaction",
        "check --node-address is the writer node you send through, and that the account is permissioned"),
    2: ("BadNonce", "the nonce is not the hub's next nonce for this account",
        "run the command again (the nonce is re-read from the writer node)"),
    3: ("NotEnoughGas", "the relay had too little gas left to run the call with the gas limit asked",
        "run the command again; if it persists, ask the writer node operator about the node's gas allowance"),
    4: ("IsNotContract", "the destination is not a contract", "check --registry"),
    5: ("EmptyCode", "the deployment carries no code", "this is a client bug: report it"),
    6: ("InvalidSignature", "the hub could not verify the transaction's signature",
        "check the signer's key and that the transaction is signed with chain id 0"),
    7: ("InvalidDestination", "the destination is not allowed", "check --registry"),
}


def check_address(value: str, *, what: str, setting: str) -> str:
    """`value` as a checksummed address, or one clear ConfigurationError naming the setting."""
    text = value.strip() if isinstance(value, str) else ""
    body = text.removeprefix("0x").removeprefix("0X")
    if not text.lower().startswith("0x") or len(body) != 40 or any(c not in "0123456789abcdefABCDEF" for c in body):
        raise ConfigurationError(f"{what} {value!r} is not an address",
                                 hint=f"set {setting} to 0x followed by 40 hex digits")
    try:
        return str(to_checksum_address(text))
    except ValueError:
        raise ConfigurationError(f"{what} {value!r} is not an address",
                                 hint=f"set {setting} to 0x followed by 40 hex digits") from None


def expiration_after(seconds: int, *, now: float | None = None) -> int:
    """The expiration time (seconds since the epoch) `seconds` from `now`."""
    return int(time.time() if now is None else now) + seconds


def payload(data: bytes, node_address: str, expiration: int) -> bytes:
    """`data` followed by ``abi.encode(node_address, expiration)``."""
    return data + abi_encode(["address", "uint256"], [node_address, expiration])


def min_gas(payload_bytes: bytes) -> int:
    """The least gas limit LACNet's account rules accept for a transaction carrying `payload_bytes`."""
    return len(payload_bytes) * GAS_PER_BYTE + BASE_GAS


def sign(account: LocalAccount, *, to: str | None, data: bytes, gas: int, nonce: int, node_address: str,
         expiration: int) -> tuple[bytes, str]:
    """The raw LACNet transaction and its hash, for exactly these values (no gas floor applied here):
    legacy, gas price 0, value 0, data + suffix, signed without a chain id (v = 27/28)."""
    tx: dict[str, Any] = {"nonce": nonce, "gasPrice": 0, "gas": gas, "value": 0,
                          "data": payload(data, node_address, expiration)}
    if to:
        tx["to"] = to
    signed = account.sign_transaction(tx)
    return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()


# -- reading what the relay made of it ---------------------------------------------------------------


def rlp_items(data: bytes) -> list[bytes | list[Any]]:
    """Decode one RLP list (strings as bytes, nested lists as lists); ValueError when malformed."""
    item, end = _rlp(data, 0)
    if end != len(data) or not isinstance(item, list):
        raise ValueError("not a single RLP list")
    return item


def _rlp(data: bytes, at: int) -> tuple[bytes | list[Any], int]:
    if at >= len(data):
        raise ValueError("RLP truncated")
    head = data[at]
    if head < 0x80:
        return data[at : at + 1], at + 1
    if head < 0xC0:
        short = head < 0xB8
        size, start = _rlp_length(data, at, head - (0x80 if short else 0xB7), short)
        if start + size > len(data):
            raise ValueError("RLP string truncated")
        return data[start : start + size], start + size
    short = head < 0xF8
    size, start = _rlp_length(data, at, head - (0xC0 if short else 0xF7), short)
    end = start + size
    if end > len(data):
        raise ValueError("RLP list truncated")
    items: list[Any] = []
    while start < end:
        item, start = _rlp(data, start)
        items.append(item)
    if start != end:
        raise ValueError("RLP list overruns")
    return items, end


def _rlp_length(data: bytes, at: int, code: int, short: bool) -> tuple[int, int]:
    if short:
        return code, at + 1
    if at + 1 + code > len(data):
        raise ValueError("RLP length truncated")
    return int.from_bytes(data[at + 1 : at + 1 + code], "big"), at + 1 + code


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
    if len(items) < 6 or any(not isinstance(item, bytes) for item in items[:6]):
        raise ValueError("not a legacy transaction")
    nonce, price, gas, to, _value, data = (item for item in items[:6] if isinstance(item, bytes))
    if len(data) < SUFFIX_BYTES:
        raise ValueError("data shorter than LACNet's suffix")
    node, expiration = abi_decode(["address", "uint256"], data[-SUFFIX_BYTES:])
    return OriginalTransaction(int.from_bytes(nonce, "big"), int.from_bytes(price, "big"),
                               int.from_bytes(gas, "big"), to_checksum_address(to) if to else None,
                               data[:-SUFFIX_BYTES], to_checksum_address(node), int(expiration))


def original_calldata(data: bytes) -> bytes | None:
    """Our calldata when `data` is a ``relayMetaTx``/``deployMetaTx`` call's input, else None."""
    if data[:4] not in (RELAY_META_TX, DEPLOY_META_TX):
        return None
    try:
        (signing_data, _v, _r, _s) = abi_decode(["bytes", "uint8", "bytes32", "bytes32"], data[4:])
        return original_transaction(bytes(signing_data)).data
    except Exception:  # noqa: BLE001 — not the shape we know: the caller treats it as foreign calldata
        return None


@dataclass(frozen=True, slots=True)
class RelayOutcome:
    """What the hub's events in a receipt say."""

    refused: int | None = None  # a BadTransactionSent error code
    deployed: str | None = None  # ContractDeployed's address
    reverted: bytes | None = None  # TransactionRelayed with executed = false: the revert data


def relay_outcome(logs: list[dict[str, Any]]) -> RelayOutcome:
    """Read the hub's events among a receipt's logs (any emitter: the hub's address is the node's business)."""
    refused = deployed = reverted = None
    for log in logs:
        topics = log.get("topics") or []
        if not topics:
            continue
        body = bytes.fromhex(str(log.get("data", "0x"))[2:])
        try:
            if topics[0] == BAD_TRANSACTION_SENT:
                refused = int(abi_decode(["address", "address", "uint8"], body)[2])
            elif topics[0] == CONTRACT_DEPLOYED:
                deployed = to_checksum_address(abi_decode(["address"], body)[0])
            elif topics[0] == TRANSACTION_RELAYED:
                executed, output = abi_decode(["bool", "bytes"], body)
                if not executed:
                    reverted = bytes(output)
        except Exception:  # noqa: BLE001 — an event with our topic but another layout: not the hub's
            continue
    return RelayOutcome(refused, deployed, reverted)


def relay_error_text(code: int) -> tuple[str, str]:
    """(message part, hint) for a BadTransactionSent code."""
    name, cause, hint = RELAY_ERRORS.get(code, (f"code {code}", "an unknown refusal", "ask the writer node operator"))
    return f"{name} (code {code}): {cause}", hint


def check_expiration(expiration: int, *, now: float | None = None) -> None:
    """Refuse an expiration time that has already passed (the network would refuse the transaction)."""
    current = int(time.time() if now is None else now)
    if expiration <= current:
        raise InvalidInput(f"expiration time {expiration} is in the past (now {current})",
                           hint="use a later expiration, e.g. now + 300 s (PERU_COMPRAS_EXPIRATION_SECONDS)")
