"""LACNet's open-standards way in (LACNET.md section 2): ERC-2771 + EIP-712 through a PermissionedMetaTxHub.

The registrar signs a ``Forward`` as EIP-712 typed data (domain ``PermissionedMetaTxHub``/``1``, the node's
chain id, the hub as verifying contract); a relayer account that LNet permissions sends
``execute(forward, callData, signature)`` to the hub in an ordinary legacy transaction with gas price 0. The
hub calls the registry with ``callData`` followed by the registrar's 20 bytes (ERC-2771), or, for
``to = 0``, deploys ``callData`` and emits ``ContractDeployed(signer, deployed, dataHash)``.

:class:`MetaTxTransactor` has :class:`~.transactions.Transactor`'s interface. What it signs (:meth:`sign`)
is the registrar's part alone: the ``execute`` calldata, Forward and signature included. Sending it
(``eth_sendRawTransaction`` through :attr:`MetaTxTransactor.rpc`) wraps it in a relayer transaction, so a
journaled Forward is re-sent exactly as signed after a crash, in a fresh relayer transaction when need be,
and the hub's nonce (``isNonceUsed``) guarantees it runs at most once. Nonces are unordered per
``(from, space)``.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ChainRefused, ConfigurationError, NotAuthorized, RelayRefused
from ..hashing import keccak256 as keccak
from .abi import decode as abi_decode
from .abi import encode as abi_encode
from .abi import to_checksum_address
from .contract import revert_error
from .contract import selector as _selector
from .contract import topic as _topic
from .keys import MessageSigner, TxSigner
from .lacnet import check_address
from .networks import Network
from .rpc import Rpc, RpcError
from .transactions import _ALREADY_HELD, Receipt, Transactor, checked_chain_id, estimate_call, wait_for_receipt

FORWARD_FIELDS = (("from", "address"), ("to", "address"), ("value", "uint256"), ("space", "uint32"),
                  ("nonce", "uint256"), ("deadline", "uint256"), ("dataHash", "bytes32"), ("caller", "address"))
_FORWARD = "(" + ",".join(kind for _, kind in FORWARD_FIELDS) + ")"
EXECUTE = _selector(f"execute({_FORWARD},bytes,bytes)")  # 0x3e6c5283
IS_NONCE_USED = _selector("isNonceUsed(address,uint32,uint256)")
IS_CALLER_ALLOWED = _selector("isCallerAllowed(address)")
CONTRACT_DEPLOYED = _topic("ContractDeployed(address,address,bytes32)")
DOMAIN_NAME, DOMAIN_VERSION = "PermissionedMetaTxHub", "1"
HUB_SETTING = "--metatx-hub / PERU_COMPRAS_METATX_HUB"
_ZERO = "0x" + "00" * 20
#: relayer transactions re-signed after a stale nonce before giving up
_NONCE_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Forward:
    """The request the registrar signs (field names as the hub's ABI has them, ``from`` as ``sender``)."""

    sender: str
    to: str
    value: int
    space: int
    nonce: int
    deadline: int
    data_hash: bytes
    caller: str

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.sender, self.to, self.value, self.space, self.nonce, self.deadline, self.data_hash,
                self.caller)

    def message(self) -> dict[str, Any]:
        """The EIP-712 message, as ethers' and eth-account's typed-data functions take it."""
        return dict(zip([name for name, _ in FORWARD_FIELDS], self.as_tuple(), strict=True))


def typed_data(forward: Forward, chain_id: int, hub: str) -> dict[str, Any]:
    """The whole EIP-712 document for `forward` (domain, types, message)."""
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "Forward": [{"name": name, "type": kind} for name, kind in FORWARD_FIELDS],
        },
        "primaryType": "Forward",
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id, "verifyingContract": hub},
        "message": forward.message(),
    }


def sign_forward(account: MessageSigner, forward: Forward, chain_id: int, hub: str) -> tuple[bytes, bytes]:
    """(65-byte signature r ‖ s ‖ v, the EIP-712 digest) of `forward` by `account`."""
    from eth_account.messages import encode_typed_data  # eth-account is loaded by the metatx model only

    signed = account.sign_message(encode_typed_data(full_message=typed_data(forward, chain_id, hub)))
    return bytes(signed.signature), bytes(signed.message_hash)


def execute_calldata(forward: Forward, call_data: bytes, signature: bytes) -> bytes:
    """The hub call ``execute(forward, callData, signature)``."""
    return EXECUTE + abi_encode([_FORWARD, "bytes", "bytes"], [forward.as_tuple(), call_data, signature])


def decode_execute(data: bytes) -> tuple[Forward, bytes, bytes] | None:
    """(forward, callData, signature) of an ``execute`` call's input, else None."""
    if data[:4] != EXECUTE:
        return None
    try:
        fields, call_data, signature = abi_decode([_FORWARD, "bytes", "bytes"], data[4:])
    except Exception:  # noqa: BLE001 — not the hub's call shape
        return None
    sender, to, value, space, nonce, deadline, data_hash, caller = fields
    return (Forward(to_checksum_address(sender), to_checksum_address(to), int(value), int(space), int(nonce),
                    int(deadline), bytes(data_hash), to_checksum_address(caller)), bytes(call_data), bytes(signature))


def forwarded_calldata(data: bytes) -> bytes | None:
    """Our calldata when `data` is the input of a hub ``execute`` call whose dataHash matches, else None."""
    decoded = decode_execute(data)
    if decoded is None or keccak(decoded[1]) != decoded[0].data_hash:
        return None
    return decoded[1]


class _RelayerRpc(Rpc):
    """The node's endpoint, except that ``eth_sendRawTransaction`` of a signed Forward (``execute``
    calldata) is sent from the relayer account (see :meth:`MetaTxTransactor.relay`)."""

    def __init__(self, inner: Rpc, transactor: MetaTxTransactor) -> None:  # noqa: D107 — wraps `inner`
        # Rpc.__init__ is not called: every request goes through `inner`.
        self.url = inner.url
        self.attempts = inner.attempts
        self._inner = inner
        self._transactor = transactor

    def call(self, method: str, params: list[Any] | None = None, *, retry: bool = True) -> Any:
        if method == "eth_sendRawTransaction" and params:
            raw = bytes.fromhex(str(params[0]).removeprefix("0x"))
            if raw[:4] == EXECUTE:
                return self._transactor.relay(raw)
        return self._inner.call(method, params, retry=retry)


class MetaTxTransactor(Transactor):
    """Signs Forwards as `account` (the registrar) and has `relayer` send them to `hub`.

    A subclass of :class:`Transactor` for its interface only: it does not call ``Transactor.__init__`` and
    overrides every method the client and the batch use."""

    def __init__(self, rpc: Rpc, account: MessageSigner, relayer: TxSigner, network: Network, *,
                 hub: str | None = None, space: int = 0) -> None:
        # Transactor.__init__ is not called: this model has no writer node (see the class docstring).
        self.node_rpc = rpc
        self.rpc = _RelayerRpc(rpc, self)
        self.account: MessageSigner = account
        self.relayer = relayer
        self.network = network
        self.gas_price = 0
        self.node_address = None
        self.space = space
        chosen = hub or network.metatx_hub
        if not chosen:
            raise ConfigurationError(f"network {network.name} has no PermissionedMetaTxHub address",
                                     hint=f"set {HUB_SETTING} to the hub LACNet gave you")
        self.hub = check_address(chosen, what="PermissionedMetaTxHub", setting=HUB_SETTING)
        self._chain_id: int | None = None
        self._nonce: int | None = None  # the relayer's next transaction nonce
        self._last_forward_nonce = 0
        self._hub_checked = False
        self._lock = threading.Lock()
        self._sent: dict[str, Forward] = {}

    @property
    def chain_id(self) -> int:
        """The node's chain id (asked of the node itself, not the relayer wrapper), checked once against the
        profile. `address` is Transactor's: the registrar's."""
        if self._chain_id is None:
            self._chain_id = checked_chain_id(self.node_rpc, self.network)
        return self._chain_id

    # -- the hub -----------------------------------------------------------------------------------------

    def check_hub(self) -> None:
        """Refuse a hub address with no contract, a contract that is no hub, or a hub that does not allow
        the relayer; once per transactor, before anything is signed."""
        if self._hub_checked:
            return
        _ = self.chain_id
        code = self.node_rpc.call("eth_getCode", [self.hub, "latest"])
        if not code or code == "0x":
            raise ConfigurationError(f"no contract at PermissionedMetaTxHub {self.hub} on {self.node_rpc.url}",
                                     hint=f"set {HUB_SETTING} to the hub LACNet published for this network")
        data = IS_CALLER_ALLOWED + abi_encode(["address"], [self.relayer.address])
        try:
            out = bytes.fromhex(str(self.node_rpc.call("eth_call", [
                {"to": self.hub, "data": "0x" + data.hex()}, "latest"]))[2:])
        except RpcError:
            out = b""
        answer = int.from_bytes(out, "big") if len(out) == 32 else None
        if answer not in (0, 1):
            raise ConfigurationError(f"contract {self.hub} is not a PermissionedMetaTxHub "
                                     "(it does not answer isCallerAllowed)",
                                     hint=f"set {HUB_SETTING} to the hub LACNet published for this network")
        if answer == 0:
            raise NotAuthorized(f"PermissionedMetaTxHub {self.hub} does not allow relayer {self.relayer.address}",
                                hint="ask LNet support to permission the relayer account (with its gas limit per "
                                     "block), or set the relayer's key (--relayer-keystore / "
                                     "PERU_COMPRAS_RELAYER_PRIVATE_KEY)")
        self._hub_checked = True

    def is_nonce_used(self, forward: Forward) -> bool:
        data = IS_NONCE_USED + abi_encode(["address", "uint32", "uint256"],
                                          [forward.sender, forward.space, forward.nonce])
        out = self.node_rpc.call("eth_call", [{"to": self.hub, "data": "0x" + data.hex()}, "latest"])
        return int.from_bytes(self.node_rpc.hex_bytes(out, "eth_call"), "big") == 1

    # -- nonces --------------------------------------------------------------------------------------------

    def take_nonce(self) -> int:
        """A fresh Forward nonce: the hub's are unordered, so the time in milliseconds and 21 random bits
        (under 2^63, so the journal stores it as an integer), strictly increasing in this process."""
        self.check_hub()
        with self._lock:
            nonce = max((time.time_ns() // 1_000_000) << 21 | secrets.randbits(21), self._last_forward_nonce + 1)
            self._last_forward_nonce = nonce
            return nonce

    def resync_nonce(self) -> None:
        """Forget the relayer's local nonce: the next relayer transaction asks the node."""
        with self._lock:
            self._nonce = None

    def _relayer_nonce(self) -> int:
        with self._lock:
            if self._nonce is None:
                self._nonce = int(self.node_rpc.call("eth_getTransactionCount", [self.relayer.address, "pending"]), 16)
            nonce = self._nonce
            self._nonce += 1
            return nonce

    # -- signing -------------------------------------------------------------------------------------------

    def forward(self, to: str | None, data: bytes, nonce: int) -> Forward:
        """The Forward for calling `to` (None: deploying `data`) with `data`."""
        deadline = int(time.time()) + self.network.expiration_seconds
        return Forward(self.address, to_checksum_address(to) if to else _ZERO, 0, self.space, nonce, deadline,
                       keccak(data), str(self.relayer.address))

    def sign(self, to: str | None, data: bytes, gas: int, nonce: int, *,
             expiration: int | None = None) -> tuple[bytes, str]:
        """The signed Forward as ``execute`` calldata, and its EIP-712 digest (the journal's key until the
        relayer's transaction hash replaces it). `gas` is not signed: the relayer estimates its own."""
        forward = self.forward(to, data, nonce)
        if expiration is not None:
            forward = replace(forward, deadline=expiration)
        signature, digest = sign_forward(self.account, forward, self.chain_id, self.hub)
        return execute_calldata(forward, data, signature), "0x" + digest.hex()

    # -- sending -------------------------------------------------------------------------------------------

    def relay(self, envelope: bytes) -> str:
        """Send a signed Forward from the relayer; the relayer transaction's hash. Refusals are RpcErrors
        (as a node's would be): a used nonce or a passed deadline means the Forward can never run again."""
        decoded = decode_execute(envelope)
        if decoded is None:
            raise RpcError("eth_sendRawTransaction", -32602, "not a PermissionedMetaTxHub execute call", None)
        forward = decoded[0]
        self.check_hub()
        if forward.caller != self.relayer.address:  # signed for another relayer: the hub would refuse it
            raise RpcError("eth_sendRawTransaction", -32000, f"the Forward names relayer {forward.caller}, not "
                           f"{self.relayer.address}: it cannot run (its orders are signed again)", None)
        if self.is_nonce_used(forward):
            raise RpcError("eth_sendRawTransaction", -32000,
                           f"forward nonce {forward.nonce} of {forward.sender} was already used at the hub "
                           "(the Forward has run)", None)
        block = self.node_rpc.call("eth_getBlockByNumber", ["latest", False])
        chain_time = self.node_rpc.int_field(block, "timestamp", "eth_getBlockByNumber") if block else int(time.time())
        if forward.deadline < chain_time:
            raise RpcError("eth_sendRawTransaction", -32000,
                           f"the Forward's deadline {forward.deadline} is before the chain's time {chain_time}", None)
        call = {"from": self.relayer.address, "to": self.hub, "data": "0x" + envelope.hex(),
                "value": hex(forward.value)}
        estimate = int(self.node_rpc.call("eth_estimateGas", [call]), 16)
        gas = estimate + estimate // 10
        for attempt in range(_NONCE_RETRIES):
            tx: dict[str, Any] = {"nonce": self._relayer_nonce(), "gasPrice": 0, "gas": gas, "to": self.hub,
                                  "value": forward.value, "data": envelope, "chainId": self.chain_id}
            signed = self.relayer.sign_transaction(tx)
            tx_hash = "0x" + bytes(signed.hash).hex()
            try:
                sent = str(self.node_rpc.call("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()],
                                              retry=False))
            except RpcError as exc:
                text = exc.message.lower()
                if _ALREADY_HELD.search(text):
                    sent = tx_hash
                elif ("nonce too low" in text or "nonce too high" in text) and attempt + 1 < _NONCE_RETRIES:
                    self.resync_nonce()
                    continue
                else:
                    self.resync_nonce()
                    raise RpcError(exc.method, exc.code, f"relayer {self.relayer.address}: {exc.message}",
                                   exc.data) from None
            self._sent[sent.lower()] = forward
            return sent
        raise RpcError("eth_sendRawTransaction", -32000, "the relayer's nonce kept changing", None)  # pragma: no cover

    def send_refusal(self, exc: RpcError, action: str) -> ChainRefused:
        """The clear error for a Forward the hub, the registry or the node refused."""
        data = exc.revert_data
        if data:
            refused = revert_error(data, action=action)
            if type(refused) is not ChainRefused:  # the registry's own error: it names the account and role
                return refused
            return RelayRefused(f"PermissionedMetaTxHub {self.hub} refused the Forward to {action} "
                                f"(revert data 0x{data.hex()})",
                                hint="check that the registrar key is the one the registry and the hub expect, "
                                     "this machine's clock (the deadline) and the relayer's permission")
        if "deadline" in exc.message:
            return RelayRefused(f"cannot {action}: {exc.message}",
                                hint="check this machine's clock; the orders stay retryable: run the command again")
        if exc.code == -32007 or "not authorized" in exc.message.lower():
            return NotAuthorized(f"the network refuses relayer {self.relayer.address} ({exc.message})",
                                 hint="ask LNet support to permission the relayer account with a gas limit")
        return RelayRefused(f"the relayer could not send the Forward to {action}: {exc.message}",
                            hint="check the relayer's permission and gas limit, and the node; then run the "
                                 "command again")

    def estimate_gas(self, to: str | None, data: bytes, *, action: str) -> int:
        """The registry call's own estimate, as the registrar calling directly."""
        try:
            return estimate_call(self.node_rpc, self.address, to, data)
        except RpcError as exc:
            raise self.send_refusal(exc, action) from None

    def simulate(self, to: str, data: bytes, *, action: str) -> None:
        """Run the call as the registrar against the latest state (the registry sees the same sender through
        the hub); a revert becomes the registry's named exception."""
        try:
            self.node_rpc.call("eth_call", [{"from": self.address, "to": to, "data": "0x" + data.hex()}, "latest"])
        except RpcError as exc:
            raise self.send_refusal(exc, action) from None

    def send(self, to: str | None, data: bytes, *, action: str, gas: int | None = None) -> str:
        """Sign a Forward for the call and have the relayer send it; the relayer transaction's hash."""
        envelope, _digest = self.sign(to, data, gas or 0, self.take_nonce())
        try:
            return self.relay(envelope)
        except RpcError as exc:
            raise self.send_refusal(exc, action) from None

    def wait(self, tx_hash: str, *, action: str, timeout: float = 120.0) -> Receipt:
        """Wait for the relayer transaction's receipt (polling as :class:`Transactor` does)."""
        return self.read_receipt(tx_hash, wait_for_receipt(self.node_rpc, tx_hash, timeout=timeout), action=action)

    def _forward_of(self, tx_hash: str) -> Forward | None:
        known = self._sent.get(tx_hash.lower())
        if known is not None:
            return known
        tx = self.node_rpc.call("eth_getTransactionByHash", [tx_hash])
        decoded = decode_execute(bytes.fromhex(str(tx["input"])[2:])) if tx else None
        return decoded[0] if decoded else None

    def read_receipt(self, tx_hash: str, receipt: dict[str, Any], *, action: str) -> Receipt:
        """A relayer transaction's receipt as a :class:`Receipt`. Success is status 1 *and* the hub having
        used the Forward's nonce (its source is not published: status alone is not trusted); a deployment's
        address comes from the hub's ContractDeployed event."""
        logs = list(receipt.get("logs") or [])
        if self.node_rpc.int_field(receipt, "status", "eth_getTransactionReceipt") != 1:
            raise self._failed(tx_hash, receipt, action)
        forward = self._forward_of(tx_hash)
        if forward is None or not self.is_nonce_used(forward):
            raise RelayRefused(f"transaction {tx_hash} did not run the Forward to {action} at hub {self.hub}",
                               hint="nothing was registered by it; run the command again")
        address = None
        for log in logs:
            topics = log.get("topics") or []
            if (topics and topics[0] == CONTRACT_DEPLOYED and str(log.get("address", "")).lower() == self.hub.lower()
                    and len(topics) > 1 and int(topics[1], 16) == int(forward.sender, 16)):
                try:
                    (deployed, _hash) = abi_decode(["address", "bytes32"], bytes.fromhex(str(log["data"])[2:]))
                except Exception:  # noqa: BLE001 — abi.AbiError or non-hex: the node's bytes, not the hub's event
                    refusal = self.node_rpc.invalid(
                        "eth_getTransactionReceipt",
                        f"a ContractDeployed log of transaction {tx_hash} whose data is not (address, bytes32)",
                    )
                    # the Forward did run (its nonce is used): a registry may exist; only its address is unread
                    refusal.hint = (f"the hub ran the deployment: read transaction {tx_hash}'s receipt from another "
                                    "node, then give the address it names with --registry or PERU_COMPRAS_REGISTRY "
                                    "(deploying again would make a second registry)")
                    raise refusal from None
                address = to_checksum_address(deployed)
        field = self.node_rpc.int_field
        return Receipt(tx_hash=tx_hash, block_number=field(receipt, "blockNumber", "eth_getTransactionReceipt"),
                       gas_used=field(receipt, "gasUsed", "eth_getTransactionReceipt"), contract_address=address,
                       logs=logs)

    def _failed(self, tx_hash: str, receipt: dict[str, Any], action: str) -> ChainRefused:
        reason = receipt.get("revertReason")
        data: bytes | None = None
        if isinstance(reason, str) and reason.startswith("0x") and len(reason) > 2:
            data = bytes.fromhex(reason[2:])
        else:  # replay the relayer's call at its block for the revert data
            tx = self.node_rpc.call("eth_getTransactionByHash", [tx_hash])
            if tx:
                try:
                    self.node_rpc.call("eth_call", [{"from": tx["from"], "to": tx["to"], "data": tx["input"]},
                                                    receipt["blockNumber"]])
                except RpcError as exc:
                    data = exc.revert_data
        if data:
            return self.send_refusal(RpcError("eth_call", 3, "execution reverted", "0x" + data.hex()), action)
        return RelayRefused(f"transaction {tx_hash} failed while trying to {action} (no revert reason)",
                            hint="inspect it on the node; nothing was registered by it")

    def transact(self, to: str | None, data: bytes, *, action: str, gas: int | None = None) -> Receipt:
        """Send and wait."""
        return self.wait(self.send(to, data, action=action, gas=gas), action=action)
