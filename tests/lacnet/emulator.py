"""A LACNet emulator for the test suite, written from the description in shared/LACNET.md (no LACNet code).

- Anvil stands in for Besu: ``--hardfork berlin --chain-id 648540 --gas-price 0 --gas-limit 350000000``.
- ``contracts/emulator/EmulatedRelayHub.sol`` stands in for the RelayHub and ``EmulatedForwarder.sol`` for the
  trusted forwarder (its ``getRelayHub()`` names the hub); both deployed by the node's key.
- :class:`LacnetEmulator` is a small JSON-RPC front standing in for the writer node's RelaySigner:

  ``eth_sendRawTransaction``
      decodes the client's raw transaction and refuses typed transactions and signatures with a chain id
      (-32000), and, with error -32007 as Besu's account permissioning says, what LACNet's account rules
      refuse: a gas price above 0, a node address that is not this node, an expired expiration, a gas limit
      under ``len(data) × 22 + 326,000``, a sender that is not permissioned; then wraps it into
      ``relayMetaTx(signingData, v, r, s)`` (or ``deployMetaTx`` for a deployment), signingData being the
      RLP of the unsigned original transaction [nonce, gasPrice, gas, to, value, data] — exactly the bytes
      the client signed — and sends that call, signed by the node's key, to Anvil. It returns the hash of
      the node's transaction.
  ``eth_getTransactionReceipt``
      rewrites the node's receipt: ``contractAddress`` from the hub's ContractDeployed event, ``status 0`` and
      ``revertReason`` when the relayed call reverted (TransactionRelayed with executed = false). A refusal
      by the hub (BadTransactionSent) keeps status 1, as on LACNet: the client must read the logs.
  ``eth_getTransactionCount``
      the hub's per-sender nonce (only ``latest``/``pending``).
  anything else
      forwarded to Anvil. JSON-RPC batches are refused.

Knobs for tests: :meth:`permit` (the permissioned accounts; ``None`` lets everyone in) and
:attr:`starve_next` (the next N relays get too little gas, so the hub refuses them with NotEnoughGas).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import rlp
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from peru_compras.chain import lacnet
from peru_compras.chain.node import LocalNode, free_port
from peru_compras.chain.rpc import Rpc

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHAIN_ID = 648540
ANVIL_ARGS = ["--hardfork", "berlin", "--chain-id", str(CHAIN_ID), "--gas-price", "0", "--gas-limit", "350000000"]
NOT_AUTHORIZED = -32007  # Besu: the account rules refused the transaction
_GET_NONCE = keccak(b"getNonce(address)")[:4]


def artifact(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ARTIFACTS / f"{name}.json").read_text())
    return data


class RelayError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LacnetEmulator:
    """Anvil + the emulated RelayHub and forwarder + the writer node's JSON-RPC front."""

    def __init__(self, *, node_key: bytes | None = None) -> None:
        self.node: LocalNode = LocalNode(extra_args=ANVIL_ARGS)
        self.node_account: LocalAccount = Account.from_key(node_key) if node_key else Account.create()
        self.node_address = str(self.node_account.address)
        self.allowed: set[str] | None = None
        self.starve_next = 0
        self.relayed = 0
        self.hub = ""
        self.forwarder = ""
        self._lock = threading.Lock()
        self._node_nonce = 0
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self) -> LacnetEmulator:
        self.node.start()
        self.anvil = Rpc(self.node.url)
        self._session = requests.Session()
        self.hub = self._deploy_own("EmulatedRelayHub", b"")
        self.forwarder = self._deploy_own("EmulatedForwarder", abi_encode(["address"], [self.hub]))
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 — http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                out = emulator.handle(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.node.stop()

    def __enter__(self) -> LacnetEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def permit(self, *addresses: str) -> None:
        """Permission accounts (LACNet registers them); the first call turns permissioning on."""
        if self.allowed is None:
            self.allowed = set()
        self.allowed.update(to_checksum_address(a) for a in addresses)

    # -- the node's own transactions ---------------------------------------------------------------------

    def _send_as_node(self, to: str | None, data: bytes, gas: int) -> str:
        with self._lock:
            tx: dict[str, Any] = {"nonce": self._node_nonce, "gasPrice": 0, "gas": gas, "value": 0, "data": data,
                                  "chainId": CHAIN_ID}
            if to:
                tx["to"] = to
            signed = self.node_account.sign_transaction(tx)
            tx_hash = str(self.anvil.call("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()]))
            self._node_nonce += 1
            return tx_hash

    def _deploy_own(self, name: str, args: bytes) -> str:
        code = bytes.fromhex(artifact(name)["bytecode"].removeprefix("0x")) + args
        tx_hash = self._send_as_node(None, code, 3_000_000)
        for _ in range(500):
            receipt = self.anvil.call("eth_getTransactionReceipt", [tx_hash])
            if receipt:
                break
            time.sleep(0.01)
        assert receipt and int(receipt["status"], 16) == 1, f"deploying {name} failed"
        return to_checksum_address(receipt["contractAddress"])

    # -- JSON-RPC ------------------------------------------------------------------------------------------

    def handle(self, body: bytes) -> bytes:
        try:
            request = json.loads(body)
        except ValueError:
            return _error(None, -32700, "parse error")
        if isinstance(request, list):
            return _error(None, -32600, "batch requests are not supported by the relay: send one call per request")
        method = request.get("method")
        params = request.get("params") or []
        handlers = {"eth_sendRawTransaction": self._relay, "eth_getTransactionReceipt": self._receipt,
                    "eth_getTransactionCount": self._nonce}
        if method not in handlers:
            return self._session.post(self.node.url, data=body, headers={"Content-Type": "application/json"},
                                      timeout=60).content
        try:
            result = handlers[method](params)
        except RelayError as exc:
            return _error(request.get("id"), exc.code, exc.message)
        return json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": result}).encode()

    def _relay(self, params: list[Any]) -> str:
        raw = bytes.fromhex(str(params[0]).removeprefix("0x"))
        if not raw or raw[0] < 0xC0:
            raise RelayError(-32000, "only legacy (type 0) transactions are accepted")
        try:
            items = lacnet.rlp_items(raw)
        except ValueError as exc:
            raise RelayError(-32602, f"invalid raw transaction: {exc}") from None
        if len(items) != 9 or not all(isinstance(i, bytes) for i in items):
            raise RelayError(-32602, "invalid raw transaction: not a legacy transaction")
        fields: list[bytes] = [i for i in items if isinstance(i, bytes)]
        _nonce, price, gas_raw, to, _value, data, v_raw, r, s = fields
        v, gas = int.from_bytes(v_raw, "big"), int.from_bytes(gas_raw, "big")
        if int.from_bytes(price, "big") != 0:
            raise RelayError(NOT_AUTHORIZED, "Sender account not authorized to send transactions (gas price above 0)")
        if v not in (27, 28):
            raise RelayError(-32000, "the transaction must be signed without a chain id (v 27 or 28)")
        sender = to_checksum_address(Account.recover_transaction(raw))
        if self.allowed is not None and sender not in self.allowed:
            raise RelayError(NOT_AUTHORIZED, "Sender account not authorized to send transactions")
        if len(data) < lacnet.SUFFIX_BYTES:
            raise RelayError(NOT_AUTHORIZED, "Sender account not authorized to send transactions "
                                             "(no node address and expiration after the data)")
        node, expiration = abi_decode(["address", "uint256"], data[-lacnet.SUFFIX_BYTES:])
        if to_checksum_address(node) != self.node_address:
            raise RelayError(NOT_AUTHORIZED, "Sender account not authorized to send transactions "
                                             f"(node address {to_checksum_address(node)} is not this writer node)")
        if expiration < time.time():
            raise RelayError(NOT_AUTHORIZED, f"Sender account not authorized to send transactions "
                                             f"(expiration {expiration} has passed)")
        if gas < lacnet.min_gas(data):
            raise RelayError(NOT_AUTHORIZED, f"Sender account not authorized to send transactions "
                                             f"(gas limit {gas} under {lacnet.min_gas(data)})")
        signing_data = rlp.encode(fields[:6])
        function = "deployMetaTx" if not to else "relayMetaTx"
        call = keccak(f"{function}(bytes,uint8,bytes32,bytes32)".encode())[:4] + abi_encode(
            ["bytes", "uint8", "bytes32", "bytes32"], [signing_data, v, r.rjust(32, b"\0"), s.rjust(32, b"\0")])
        overhead = 21_000 + 16 * len(call) + 150_000
        outer_gas = overhead + gas + gas // 63
        if self.starve_next > 0:
            self.starve_next -= 1
            outer_gas = overhead
        self.relayed += 1
        return self._send_as_node(self.hub, call, outer_gas)

    def _receipt(self, params: list[Any]) -> dict[str, Any] | None:
        receipt: dict[str, Any] | None = self.anvil.call("eth_getTransactionReceipt", params)
        if not receipt or (receipt.get("to") or "").lower() != self.hub.lower():
            return receipt
        outcome = lacnet.relay_outcome(list(receipt.get("logs") or []))
        if outcome.deployed:
            receipt["contractAddress"] = outcome.deployed.lower()
        if outcome.reverted is not None:
            receipt["status"] = "0x0"
            receipt["revertReason"] = "0x" + outcome.reverted.hex()
        return receipt

    def _nonce(self, params: list[Any]) -> str:
        address = params[0]
        tag = params[1] if len(params) > 1 else "latest"
        if tag not in ("latest", "pending"):
            raise RelayError(-32602, "the relay only answers the latest or pending nonce")
        data = _GET_NONCE + abi_encode(["address"], [to_checksum_address(address)])
        out = self.anvil.call("eth_call", [{"to": self.hub, "data": "0x" + data.hex()}, "latest"])
        return hex(int(out, 16))


def _error(request_id: Any, code: int, message: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}).encode()
