"""LACNet's open-standards model for the test suite (LACNET.md section 2), our own code.

- Anvil stands in for Besu as LACNet runs it: ``--hardfork berlin --chain-id 648540 --gas-price 0
  --gas-limit 350000000``. The relayer's transaction is an ordinary legacy one with gas price 0: in this model
  nothing sits between the client and the node (no relay signer).
- ``contracts/emulator/EmulatedMetaTxHub.sol`` stands in for the PermissionedMetaTxHub: the ABI LACNet published
  (``execute``, ``isNonceUsed``, ``isCallerAllowed``, ``ContractDeployed``) and the EIP-712 domain and Forward type
  its client library signs; its checks (caller allowed, caller = forward.caller, deadline, dataHash, nonce,
  signature) are inferred, the hub's source not being published. Deployed by an admin key that also permissions
  relayers (:meth:`MetaTxEmulator.allow`), standing in for LNet support.
- Not modelled (unverifiable here): the relayer's per-block gas limit, the deployer's gas bucket, Besu's account
  permissioning of the relayer.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from peru_compras.chain.node import LocalNode
from peru_compras.chain.rpc import Rpc

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHAIN_ID = 648540
ANVIL_ARGS = ["--hardfork", "berlin", "--chain-id", str(CHAIN_ID), "--gas-price", "0", "--gas-limit", "350000000"]


def hub_artifact() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ARTIFACTS / "EmulatedMetaTxHub.json").read_text())
    return data


class MetaTxEmulator:
    """Anvil on LACNet's settings and an emulated PermissionedMetaTxHub."""

    def __init__(self) -> None:
        self.node = LocalNode(extra_args=ANVIL_ARGS)
        self.admin: LocalAccount = Account.create()
        self.hub = ""
        self.url = ""
        self.rpc: Rpc | None = None

    def start(self) -> MetaTxEmulator:
        self.node.start()
        self.url = self.node.url
        self.rpc = Rpc(self.url)
        code = bytes.fromhex(hub_artifact()["bytecode"].removeprefix("0x"))
        receipt = self._send_as_admin(None, code, 3_000_000)
        self.hub = to_checksum_address(receipt["contractAddress"])
        return self

    def stop(self) -> None:
        self.node.stop()

    def __enter__(self) -> MetaTxEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _send_as_admin(self, to: str | None, data: bytes, gas: int) -> dict[str, Any]:
        assert self.rpc is not None
        nonce = int(self.rpc.call("eth_getTransactionCount", [self.admin.address, "pending"]), 16)
        tx: dict[str, Any] = {"nonce": nonce, "gasPrice": 0, "gas": gas, "value": 0, "data": data, "chainId": CHAIN_ID}
        if to:
            tx["to"] = to
        signed = self.admin.sign_transaction(tx)
        tx_hash = self.rpc.call("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
        for _ in range(500):
            receipt: dict[str, Any] | None = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
            if receipt:
                assert int(receipt["status"], 16) == 1, receipt
                return receipt
            time.sleep(0.01)
        raise AssertionError("the emulator's own transaction was not mined")

    def allow(self, relayer: str, allowed: bool = True) -> None:
        """LNet permissions `relayer` at the hub (``isCallerAllowed`` becomes true)."""
        data = keccak(b"setCallerAllowed(address,bool)")[:4] + abi_encode(["address", "bool"], [relayer, allowed])
        self._send_as_admin(self.hub, data, 100_000)

    def new_relayer(self) -> LocalAccount:
        account: LocalAccount = Account.create()
        self.allow(account.address)
        return account
