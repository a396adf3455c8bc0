"""Build, sign, send and confirm transactions the way the network profile asks.

A :class:`Transactor` owns one signing account and its nonce: it keeps the next nonce locally so several
transactions can be in flight, and re-reads it from the node when the node says it is stale.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from ..errors import ChainRefused, ConfigurationError, NodeUnavailable, NotAuthorized, RelayRefused
from . import lacnet
from .contract import revert_error
from .networks import Network
from .rpc import Rpc, RpcError

_GWEI = 10**9
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


class Transactor:
    """Signs with `account` and sends through `rpc` following `network`'s rules."""

    def __init__(self, rpc: Rpc, account: LocalAccount, network: Network, *, node_address: str | None = None,
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
            chain_id = int(self.rpc.call("eth_chainId"), 16)
            expected = self.network.chain_id
            if expected is not None and chain_id != expected:
                raise ConfigurationError(
                    f"the node at {self.rpc.url} has chain id {chain_id}, but profile {self.network.name} "
                    f"expects {expected}",
                    hint="check --rpc and --network",
                )
            self._chain_id = chain_id
        return self._chain_id

    # -- nonces ----------------------------------------------------------------------------------------

    def take_nonce(self) -> int:
        """The next nonce to use (reserved for the caller). The first call also checks the node's chain id
        against the profile, so nothing is signed for the wrong network."""
        _ = self.chain_id
        with self._lock:
            if self._nonce is None:
                self._nonce = int(self.rpc.call("eth_getTransactionCount", [self.address, "pending"]), 16)
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

    def min_gas(self, payload: bytes) -> int:
        """The least gas limit the network accepts for `payload` (LACNet's account rules)."""
        return lacnet.min_gas(payload) if self.network.is_lacnet else 21_000

    def estimate_gas(self, to: str | None, data: bytes, *, action: str) -> int:
        """The node's estimate; a revert becomes the contract's named exception."""
        call: dict[str, Any] = {"from": self.address, "data": "0x" + data.hex()}
        if to:
            call["to"] = to
        try:
            return int(self.rpc.call("eth_estimateGas", [call]), 16)
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
            block = self.rpc.call("eth_getBlockByNumber", ["latest", False])
            base = block.get("baseFeePerGas") if block else None
            if base is None:
                self._fee = {"gasPrice": int(self.rpc.call("eth_gasPrice"), 16)}
            else:
                tip = _GWEI
                self._fee = {"maxFeePerGas": 2 * int(base, 16) + tip, "maxPriorityFeePerGas": tip}
        return self._fee

    def sign(self, to: str | None, data: bytes, gas: int, nonce: int, *,
             expiration: int | None = None) -> tuple[bytes, str]:
        """The raw signed transaction and its hash (the hash a LACNet relay returns differs: see
        :meth:`send`). On LACNet `expiration` (seconds since the epoch) defaults to now plus the profile's
        window, and the gas limit is raised to the network's floor."""
        if self.network.is_lacnet:
            assert self.node_address is not None
            if expiration is None:
                expiration = self.expiration()
            else:
                lacnet.check_expiration(expiration)
            gas = max(gas, lacnet.min_gas(self.payload(data, expiration=expiration)))
            # legacy, gas price 0, no chain id (v = 27/28), data + abi.encode(node, expiration)
            return lacnet.sign(self.account, to=to, data=data, gas=gas, nonce=nonce,
                               node_address=self.node_address, expiration=expiration)
        gas = max(gas, self.min_gas(data))
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
            if self.network.is_lacnet:  # LACNet's account rules answer -32007 for any transaction they refuse
                hint += (f"; if it is, check that --node-address {self.node_address} is the writer node you "
                         "send through and that this machine's clock is right (the expiration)")
            return NotAuthorized(
                f"the network refuses account {self.address} (node error {exc.code}: {exc.message})", hint=hint)
        if self.network.is_lacnet:
            return RelayRefused(f"the writer node refused the transaction to {action}: {exc.message}",
                                hint="check --node-address (the writer node you send through), the signer's "
                                     "permission and the clock (expiration); then run the command again")
        return self._refusal(exc, action)

    def send(self, to: str | None, data: bytes, *, action: str, gas: int | None = None) -> str:
        """Sign and send; returns the transaction hash the node reports (on LACNet: the relay's
        meta-transaction, not the hash of the signed bytes)."""
        if gas is None:
            gas = self.estimate_gas(to, data, action=action) * 6 // 5 + 10_000
        for attempt in range(2):
            nonce = self.take_nonce()
            raw, signed_hash = self.sign(to, data, gas, nonce)
            try:
                return str(self.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()], retry=False))
            except RpcError as exc:
                text = exc.message.lower()
                if _ALREADY_HELD.search(text) and not self.network.is_lacnet:
                    return signed_hash  # the node holds these very bytes: sending another would double it
                if attempt == 0 and ("nonce too low" in text or "nonce too high" in text or "underpriced" in text):
                    self.resync_nonce()
                    continue
                self.resync_nonce()
                raise self.send_refusal(exc, action) from None
        raise ChainRefused(f"could not send the transaction to {action}")  # pragma: no cover

    def wait(self, tx_hash: str, *, action: str, timeout: float = 120.0) -> Receipt:
        """Wait for the receipt; a failed transaction becomes the contract's named exception."""
        deadline = time.monotonic() + timeout
        delay = 0.002  # a dev node mines at once; a 2-second LACNet block is reached in ~10 polls
        while True:
            receipt = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
            if receipt:
                break
            if time.monotonic() > deadline:
                raise NodeUnavailable(
                    f"transaction {tx_hash} was not confirmed within {timeout:.0f} s",
                    hint="check the node; the transaction may still be mined: look it up before retrying",
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        return self.read_receipt(tx_hash, receipt, action=action)

    def read_receipt(self, tx_hash: str, receipt: dict[str, Any], *, action: str) -> Receipt:
        """A node's receipt as a :class:`Receipt`; a failed transaction, or one the LACNet relay refused
        (its events may say so even with status 1), becomes the named exception."""
        logs = list(receipt.get("logs") or [])
        address = receipt.get("contractAddress")
        if self.network.is_lacnet:
            outcome = lacnet.relay_outcome(logs)
            if outcome.refused is not None:
                self.resync_nonce()  # the hub did not take the nonce
                cause, hint = lacnet.relay_error_text(outcome.refused)
                raise RelayRefused(f"the LACNet relay refused the transaction to {action} ({tx_hash}): {cause}",
                                   hint=hint)
            if outcome.reverted is not None and int(receipt["status"], 16) == 1:
                raise revert_error(outcome.reverted, action=action)
            if not address or int(address, 16) == 0:
                address = outcome.deployed
        if int(receipt["status"], 16) != 1:
            raise self._failed(tx_hash, receipt, action)
        return Receipt(
            tx_hash=tx_hash,
            block_number=int(receipt["blockNumber"], 16),
            gas_used=int(receipt["gasUsed"], 16),
            contract_address=address if address and int(address, 16) else None,
            logs=logs,
        )

    def _failed(self, tx_hash: str, receipt: dict[str, Any], action: str) -> ChainRefused:
        reason = receipt.get("revertReason")
        if isinstance(reason, str) and reason.startswith("0x") and len(reason) > 2:
            return revert_error(bytes.fromhex(reason[2:]), action=action)
        if self.network.is_lacnet:  # the node's transaction is the hub call: replaying it would say nothing
            return RelayRefused(f"transaction {tx_hash} failed while trying to {action} (no revert reason)",
                                hint="inspect it on the writer node; nothing was registered by it")
        tx = self.rpc.call("eth_getTransactionByHash", [tx_hash])
        if tx and tx.get("to"):
            call = {"from": tx["from"], "to": tx["to"], "data": tx["input"]}
            try:
                self.rpc.call("eth_call", [call, receipt["blockNumber"]])
            except RpcError as exc:
                return self._refusal(exc, action)
        return ChainRefused(f"transaction {tx_hash} failed while trying to {action}",
                            hint="inspect it on the node; nothing was registered by it")

    def transact(self, to: str | None, data: bytes, *, action: str, gas: int | None = None) -> Receipt:
        """Send and wait."""
        return self.wait(self.send(to, data, action=action, gas=gas), action=action)
