"""Build, sign, send and confirm transactions the way the network profile asks.

A :class:`Transactor` owns one signing account and its nonce: it keeps the next nonce locally so several
transactions can be in flight, and re-reads it from the node when the node says it is stale (a bounded
number of times). On LACNet the nonce is read as ``latest`` (the hub's; the relay answers ``pending`` from a
map that can lag by one), the gas limit is the estimate with a margin (no floor), and a transaction counts
as done only when the hub's events say our call ran: a hub that returned NotEnoughGas (the writer node's
gas allowance for the block used up) is retried over the next blocks, a bounded number of times.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from ..errors import ChainRefused, ConfigurationError, NodeUnavailable, NotAuthorized, RelayRefused
from ..hashing import keccak256
from ..retry import backoff, every, poll, retry
from . import lacnet
from .contract import revert_error
from .keys import TxSigner
from .networks import Network
from .rpc import ADDRESS, DATA, Rpc, RpcError, host_of

_GWEI = 10**9
#: how many times a refused nonce is re-read from the node before giving up
NONCE_RESYNCS = 3
#: how many times a transaction the hub refused with NotEnoughGas is sent (1, 2, 4 blocks apart)
NOT_ENOUGH_GAS_ATTEMPTS = 4
#: LACNet's block time (IBFT2, 2 s): how long to wait for a block before trying anyway
BLOCK_SECONDS = 2.0
#: the relay's own refusal when the node's allowance for this block cannot take the transaction
_ALLOWANCE_USED = "transaction gas limit exceeds block gas limit"
_RECEIPT = "eth_getTransactionReceipt"


def _contract_address(rpc: Rpc, receipt: dict[str, Any]) -> str | None:
    """A receipt's ``contractAddress``: the address, or None (null, or the zero address); a node's other
    answer there is its invalid answer."""
    value = receipt.get("contractAddress")
    if value is None:
        return None
    if not (isinstance(value, str) and ADDRESS.fullmatch(value)):
        raise rpc.invalid(_RECEIPT, f"contractAddress {str(value)[:80]} where an address (or null) was expected")
    return value if int(value, 16) else None


#: how geth ("already known"), Anvil ("already imported") and Besu ("known transaction") say they hold it
_ALREADY_HELD = re.compile(r"already known|already imported|known transaction")


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a confirmed transaction left: its hash, block, gas and logs."""

    tx_hash: str
    block_number: int
    gas_used: int
    contract_address: str | None
    logs: list[dict[str, Any]]


def _hex(value: int) -> str:
    return hex(value)


def checked_chain_id(rpc: Rpc, network: Network) -> int:
    """The chain id of the node behind `rpc`, refused when it is not the profile's: nothing is signed for the
    wrong network."""
    chain_id = int(rpc.call("eth_chainId"), 16)
    expected = network.chain_id
    if expected is not None and chain_id != expected:
        raise ConfigurationError(
            f"the node at {host_of(rpc.url)} has chain id {chain_id}, but profile {network.name} expects {expected}",
            hint="check --rpc and --network",
        )
    return chain_id


class Transactor:
    """Signs with `account` and sends through `rpc` following `network`'s rules."""

    def __init__(self, rpc: Rpc, account: TxSigner, network: Network, *, node_address: str | None = None,
                 gas_price: int | None = None) -> None:
        self.rpc = rpc
        self.account = account
        self.network = network
        self.gas_price = network.gas_price if gas_price is None else gas_price
        self._chain_id: int | None = None
        self._nonce: int | None = None
        self._fee: dict[str, int] | None = None
        self._lock = threading.Lock()
        if network.is_lacnet and not node_address:
            raise ConfigurationError(
                f"network {network.name} needs the writer node's address",
                hint="set --node-address 0x… or PERU_COMPRAS_NODE_ADDRESS (ask your LACNet writer node operator)",
            )
        self.node_address = (lacnet.check_address(node_address, what="writer node address",
                                                  setting="--node-address / PERU_COMPRAS_NODE_ADDRESS")
                             if node_address else None)

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def chain_id(self) -> int:
        """The node's chain id, checked once against the profile."""
        if self._chain_id is None:
            self._chain_id = checked_chain_id(self.rpc, self.network)
        return self._chain_id

    # -- nonces ----------------------------------------------------------------------------------------

    def take_nonce(self) -> int:
        """The next nonce to use (reserved for the caller). The first call also checks the node's chain id
        against the profile, so nothing is signed for the wrong network."""
        _ = self.chain_id
        with self._lock:
            if self._nonce is None:
                # LACNet: the hub's nonce ("latest"); the relay's "pending" can lag by one (LACNET.md)
                tag = "latest" if self.network.is_lacnet else "pending"
                self._nonce = int(self.rpc.call("eth_getTransactionCount", [self.address, tag]), 16)
            nonce = self._nonce
            self._nonce += 1
            return nonce

    def resync_nonce(self) -> None:
        """Forget the local nonce: the next :meth:`take_nonce` asks the node."""
        with self._lock:
            self._nonce = None

    # -- building --------------------------------------------------------------------------------------

    def expiration(self) -> int:
        """A fresh LACNet expiration time: now plus the profile's window."""
        return lacnet.expiration_after(self.network.expiration_seconds)

    def payload(self, data: bytes, *, expiration: int | None = None) -> bytes:
        """`data` as the network wants it (LACNet: followed by node address and expiration)."""
        if not self.network.is_lacnet:
            return data
        assert self.node_address is not None
        return lacnet.payload(data, self.node_address, self.expiration() if expiration is None else expiration)

    def estimate_gas(self, to: str | None, data: bytes, *, action: str) -> int:
        """The node's estimate (on LACNet for the data with its suffix, as the hub will pass it); a revert
        becomes the contract's named exception."""
        try:
            return estimate_call(self.rpc, self.address, to, self.payload(data) if self.network.is_lacnet else data)
        except RpcError as exc:
            raise self._refusal(exc, action) from None

    def simulate(self, to: str, data: bytes, *, action: str) -> None:
        """Run the call once against the latest state (``eth_call``); a revert becomes the contract's named
        exception. Cheaper than an estimate, which executes the call many times."""
        try:
            self.rpc.call("eth_call", [{"from": self.address, "to": to, "data": "0x" + data.hex()}, "latest"])
        except RpcError as exc:
            raise self._refusal(exc, action) from None

    def _refusal(self, exc: RpcError, action: str) -> ChainRefused:
        data = exc.revert_data
        if data:
            return revert_error(data, action=action)
        return ChainRefused(f"the node refused to {action}: {exc.message}",
                            hint="check the signer's permissions and balance on this network")

    def _fees(self) -> dict[str, int]:
        if self.network.kind != "auto":
            return {"gasPrice": self.gas_price}
        if self._fee is None:
            block = self.rpc.call("eth_getBlockByNumber", ["latest", False])  # an object or None: Rpc.call
            base = block.get("baseFeePerGas") if block else None
            if base is None:
                self._fee = {"gasPrice": int(self.rpc.call("eth_gasPrice"), 16)}
            else:
                tip = _GWEI
                fee = self.rpc.hex_int(base, "eth_getBlockByNumber", "baseFeePerGas")
                self._fee = {"maxFeePerGas": 2 * fee + tip, "maxPriorityFeePerGas": tip}
        return self._fee

    def sign(self, to: str | None, data: bytes, gas: int, nonce: int, *,
             expiration: int | None = None) -> tuple[bytes, str]:
        """The raw signed transaction and its hash (the hash a LACNet relay returns differs: see
        :meth:`send`), with exactly this gas limit. On LACNet `expiration` (seconds since the epoch)
        defaults to now plus the profile's window."""
        if self.network.is_lacnet:
            assert self.node_address is not None
            if expiration is None:
                expiration = self.expiration()
            else:
                lacnet.check_expiration(expiration)
            # legacy, gas price 0, no chain id (v = 27/28), data + abi.encode(node, expiration)
            return lacnet.sign(self.account, to=to, data=data, gas=gas, nonce=nonce,
                               node_address=self.node_address, expiration=expiration)
        tx: dict[str, Any] = {"nonce": nonce, "gas": gas, "value": 0, "data": data, **self._fees(),
                              "chainId": self.chain_id}
        if to:
            tx["to"] = to
        signed = self.account.sign_transaction(tx)
        return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()

    # -- sending ---------------------------------------------------------------------------------------

    def send_refusal(self, exc: RpcError, action: str) -> ChainRefused:
        """The clear error for a node that refused ``eth_sendRawTransaction``."""
        if exc.code == -32007 or "not authorized" in exc.message.lower():
            hint = "the signer must be a permissioned account: ask the network (LACNet) to register it"
            if self.network.is_lacnet:  # Besu's account rules on the node's hub call arrive wrapped in -32603
                hint += (f"; if it is, check that --node-address {self.node_address} is the writer node you "
                         "send through and that this machine's clock is right (the expiration)")
            return NotAuthorized(
                f"the network refuses account {self.address} (node error {exc.code}: {exc.message})", hint=hint)
        if self.network.is_lacnet:
            if _ALLOWANCE_USED in exc.message.lower():
                return lacnet.HubRefused(
                    f"the writer node cannot relay the transaction to {action} in this block: {exc.message} "
                    "(the node's gas allowance for the block is used up)", code=lacnet.NOT_ENOUGH_GAS,
                    hint="run the command again in a few seconds; if it persists, send fewer orders per "
                         "transaction (--batch-size) or ask the writer node operator about its gas allowance")
            if "not permitted" in exc.message.lower():
                return NotAuthorized(
                    f"the writer node's relay refuses account {self.address}: {exc.message}",
                    hint="the signer must be a permissioned account: ask LACNet to register it")
            return RelayRefused(f"the writer node refused the transaction to {action}: {exc.message}",
                                hint="check --node-address (the writer node you send through), the signer's "
                                     "permission and the clock (expiration); then run the command again")
        return self._refusal(exc, action)

    def send_signed(self, raw: bytes) -> str | None:
        """Send bytes :meth:`sign` made, once (the caller journaled them and judges a refusal): the hash the
        node reports (on LACNet the relay's), or None when the node already holds these very bytes (geth
        "already known", Anvil "already imported", Besu "known transaction"). Any other refusal raises
        :class:`RpcError` (see :meth:`send_refusal`). The batch sends through this (H5)."""
        try:
            sent = str(self.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()], retry=False))
        except RpcError as exc:
            if _ALREADY_HELD.search(exc.message.lower()):
                return None
            raise
        # Only a LACNet relay answers another transaction's hash (its own); elsewhere the answer is the hash of
        # these bytes, which is known here: another one is not believed (journaled, it would be looked up for ever)
        return sent if self.network.is_lacnet else "0x" + keccak256(raw).hex()

    def send(self, to: str | None, data: bytes, *, action: str, gas: int | None = None) -> str:
        """Sign and send; returns the transaction hash the node reports (on LACNet: the relay's
        meta-transaction, not the hash of the signed bytes). A nonce the node calls wrong (LACNet's relay:
        ``BAD NONCE``) is re-read and the transaction signed again, at most :data:`NONCE_RESYNCS` times."""
        if gas is None:
            gas = lacnet.user_gas(self.estimate_gas(to, data, action=action))

        def attempt() -> str:
            nonce = self.take_nonce()
            raw, signed_hash = self.sign(to, data, gas, nonce)
            try:
                sent = str(self.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()], retry=False))
                return sent if self.network.is_lacnet else signed_hash  # as in send_signed
            except RpcError as exc:
                self.resync_nonce()
                if _ALREADY_HELD.search(exc.message.lower()) and not self.network.is_lacnet:
                    return signed_hash  # the node holds these very bytes: sending another would double it
                if not (lacnet.is_bad_nonce(exc.message) or "underpriced" in exc.message.lower()):
                    raise self.send_refusal(exc, action) from None
                raise _StaleNonce(nonce, exc.message) from None

        try:  # a transaction of ours may be mining: wait a little longer each time
            return retry(attempt, retry_on=_StaleNonce, attempts=NONCE_RESYNCS + 1,
                         delays=backoff(0.1, cap=BLOCK_SECONDS))
        except _StaleNonce as stale:
            raise RelayRefused(
                f"the node refused nonce {stale.nonce} of account {self.address} {NONCE_RESYNCS + 1} times while "
                f"trying to {action} (its last answer: {stale.answer})",
                hint="another program may be sending with this account: stop it, then run the command again",
            ) from None

    def mined(self, tx_hash: str) -> dict[str, Any] | None:
        """The node's receipt of `tx_hash` if it has one now (one look-up, no wait, no retry: None also when
        the node cannot be asked); :meth:`read_receipt` reads it. (Rpc.call answers an object or None.)"""
        try:
            receipt: dict[str, Any] | None = self.rpc.call("eth_getTransactionReceipt", [tx_hash], retry=False)
        except (NodeUnavailable, RpcError):
            return None
        return receipt

    def wait(self, tx_hash: str, *, action: str, timeout: float = 120.0) -> Receipt:
        """Wait for the receipt; a failed transaction becomes the contract's named exception."""
        receipt = wait_for_receipt(self.rpc, tx_hash, timeout=timeout)
        return self.read_receipt(tx_hash, receipt, action=action)

    def read_receipt(self, tx_hash: str, receipt: dict[str, Any], *, action: str) -> Receipt:
        """A node's receipt as a :class:`Receipt`; a failed transaction becomes the named exception. On
        LACNet status 1 is not enough (LACNET.md): our call ran only if the hub says so
        (``TransactionRelayed`` with executed = true, ``ContractDeployed``) or the target emitted events;
        ``BadTransactionSent`` and a receipt without any of these (the hub returned NotEnoughGas early) are
        :class:`~peru_compras.chain.lacnet.HubRefused` with the hub's error code."""
        logs = receipt.get("logs") or []
        if not (isinstance(logs, list) and all(isinstance(log, dict) for log in logs)):
            raise self.rpc.invalid(_RECEIPT, f"logs {str(logs)[:80]} where a list of log objects was expected")
        logs = list(logs)
        address = _contract_address(self.rpc, receipt)
        status = self.rpc.int_field(receipt, "status", _RECEIPT)
        if self.network.is_lacnet and status == 1:
            address = self._relayed(tx_hash, receipt, logs, action)
        if status != 1:
            raise self._failed(tx_hash, receipt, action)
        return Receipt(
            tx_hash=tx_hash,
            block_number=self.rpc.int_field(receipt, "blockNumber", _RECEIPT),
            gas_used=self.rpc.int_field(receipt, "gasUsed", _RECEIPT),
            contract_address=address,
            logs=logs,
        )

    def _relayed(self, tx_hash: str, receipt: dict[str, Any], logs: list[dict[str, Any]], action: str
                 ) -> str | None:
        """Check the hub's verdict in a status-1 LACNet receipt; the deployed address, if any."""
        hub = receipt.get("to")
        outcome = lacnet.relay_outcome(logs, sender=self.address, hub=str(hub) if hub else None)
        block = self.rpc.int_field(receipt, "blockNumber", _RECEIPT)
        if outcome.reverted is not None:  # a relay that left the receipt as it was
            raise revert_error(outcome.reverted, action=action)
        if outcome.refused is not None:
            self.resync_nonce()  # the hub may or may not have taken the nonce: ask it
            cause, hint = lacnet.relay_error_text(outcome.refused)
            raise lacnet.HubRefused(
                f"the LACNet hub refused the transaction to {action} ({tx_hash}): {cause}",
                code=outcome.refused, hint=hint, block=block)
        address = _contract_address(self.rpc, receipt) or outcome.deployed
        if outcome.executed or outcome.deployed:
            return str(address) if address else None
        self.resync_nonce()
        if outcome.accepted:  # the hub took the nonce and ran it, but nothing came of it
            raise RelayRefused(
                f"transaction {tx_hash} was relayed but neither ran the call to {action} nor deployed a contract",
                hint="a deployment that runs out of gas or reverts leaves no event: check the signer and retry")
        cause, hint = lacnet.relay_error_text(lacnet.NOT_ENOUGH_GAS)
        raise lacnet.HubRefused(
            f"the LACNet hub did not run the transaction to {action} ({tx_hash}): its receipt has status 1 but no "
            f"TransactionRelayed event, as when the hub returns {cause}", code=lacnet.NOT_ENOUGH_GAS, hint=hint,
            block=block)

    def _failed(self, tx_hash: str, receipt: dict[str, Any], action: str) -> ChainRefused:
        reason = receipt.get("revertReason")
        if isinstance(reason, str) and len(reason) > 2 and DATA.fullmatch(reason):
            return revert_error(bytes.fromhex(reason[2:]), action=action)
        if self.network.is_lacnet:  # the node's transaction is the hub call: replaying it would say nothing
            return RelayRefused(f"transaction {tx_hash} failed while trying to {action} (no revert reason)",
                                hint="inspect it on the writer node; nothing was registered by it")
        tx = self.rpc.call("eth_getTransactionByHash", [tx_hash])  # an object or None: Rpc.call
        if tx and tx.get("to") and all(isinstance(tx.get(key), str) for key in ("from", "to", "input")) \
                and isinstance(receipt.get("blockNumber"), str):  # else there is nothing to replay
            call = {"from": tx["from"], "to": tx["to"], "data": tx["input"]}
            try:
                self.rpc.call("eth_call", [call, receipt["blockNumber"]])
            except RpcError as exc:
                return self._refusal(exc, action)
        return ChainRefused(f"transaction {tx_hash} failed while trying to {action}",
                            hint="inspect it on the node; nothing was registered by it")

    def wait_for_blocks(self, after: int | None, count: int) -> None:
        """Wait until the chain is `count` blocks past `after` (the current block when None), at most
        `count` LACNet block times: a quiet chain makes no blocks, so then go on anyway."""
        start = int(self.rpc.call("eth_blockNumber"), 16) if after is None else after
        # a block every BLOCK_SECONDS: no need to ask 40 times per block
        poll(lambda: True if int(self.rpc.call("eth_blockNumber"), 16) >= start + count else None,
             timeout=count * BLOCK_SECONDS, delays=every(BLOCK_SECONDS / 4))

    def transact(self, to: str | None, data: bytes, *, action: str, gas: int | None = None) -> Receipt:
        """Send and wait. On LACNet a NotEnoughGas from the hub (or the relay) is retried 1, 2, then 4 blocks
        later; after :data:`NOT_ENOUGH_GAS_ATTEMPTS` attempts it is a clear refusal."""
        def gas_used_up(refusal: BaseException) -> bool:
            return (isinstance(refusal, lacnet.HubRefused) and refusal.code == lacnet.NOT_ENOUGH_GAS
                    and self.network.is_lacnet)

        try:
            return retry(lambda: self.wait(self.send(to, data, action=action, gas=gas), action=action),
                         retry_on=lacnet.HubRefused, attempts=NOT_ENOUGH_GAS_ATTEMPTS,
                         give_up=lambda refusal: not gas_used_up(refusal),
                         between=lambda failures, refusal: self.wait_for_blocks(
                             getattr(refusal, "block", None), 2**failures))
        except lacnet.HubRefused as refusal:
            if gas_used_up(refusal):
                refusal.message += f" (tried {NOT_ENOUGH_GAS_ATTEMPTS} times over the next blocks)"
            raise


class _StaleNonce(Exception):
    """One send refused for its nonce (retried with a fresh one)."""

    def __init__(self, nonce: int, answer: str) -> None:
        super().__init__(answer)
        self.nonce = nonce
        self.answer = answer


def estimate_call(rpc: Rpc, sender: str, to: str | None, data: bytes) -> int:
    """The node's gas estimate for `data` sent by `sender` to `to` (None: a deployment); RpcError when the
    node refuses it (a revert: the caller names it)."""
    call: dict[str, Any] = {"from": sender, "data": "0x" + data.hex()}
    if to:
        call["to"] = to
    return int(rpc.call("eth_estimateGas", [call]), 16)


def wait_for_receipt(rpc: Rpc, tx_hash: str, *, timeout: float) -> dict[str, Any]:
    """The receipt of `tx_hash` once the node has one, polled quickly at first (a dev node mines at once; a
    2-second LACNet block is reached in ~10 polls); NodeUnavailable after `timeout` seconds."""
    receipt: dict[str, Any] | None = poll(lambda: rpc.call("eth_getTransactionReceipt", [tx_hash]) or None,
                                          timeout=timeout, delays=backoff(0.002, cap=1.0))
    if receipt is None:
        raise NodeUnavailable(
            f"transaction {tx_hash} was not confirmed within {timeout:.0f} s",
            hint="check the node; the transaction may still be mined: look it up before retrying",
        )
    return receipt
