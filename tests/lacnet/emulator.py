"""A LACNet gas-model emulator for the test suite: our own code, written from shared/LACNET.md and from
reading LACNet's published sources (named per behaviour below; none of their code is copied).

- Anvil stands in for Besu: ``--hardfork berlin --chain-id 648540 --gas-price 0 --gas-limit 350000000``.
- ``contracts/emulator/EmulatedRelayHub.sol`` stands in for the hub (a TxRelay-like contract, see its header
  for what comes from which file) and ``EmulatedForwarder.sol`` for the trusted forwarder (its
  ``getRelayHub()`` names the hub); both deployed by the node's key, which is also the hub's admin.
- :class:`LacnetEmulator` is a small JSON-RPC front standing in for the writer node's relay signer and the
  Besu account rules behind it.

Sources: "relay" = LACNetNetworks/gas-management tag v1.0.1, controller/processController.go and
service/relaySignerService.go; "rules" = lacchain/permissioning-smart-contracts contracts/AccountRules.sol
``transactionAllowed``; "NonceTest" = LACNetNetworks/LNet-NonceTest README (the live relay, Dec 2025).

``eth_sendRawTransaction`` (relay ``processRawTransaction``, in its order)
    decodes the raw legacy transaction (anything else: ``bad signature ECDSA``, as the relay ignores the
    decoding error and finds no signature); recovers the sender whatever the chain id (the relay derives the
    signer from the transaction itself: no chain-id check, no gas-price check on the user's transaction);
    refuses a sender the account rules do not permit (-32000 ``account sender is not permitted to send
    transactions``; :meth:`permit`); computes the node's gas ``len(data) × 105 + 300,000 + gas`` and adds it
    to the gas relayed in this block, refusing it over the hub's ``getGasLimit()`` for the node (-32000
    ``transaction gas limit exceeds block gas limit``); refuses a nonce that is not the hub's (-32000
    ``BAD NONCE``: NonceTest shows the live relay doing so; the exact rule is a guess); builds
    ``signingData`` = RLP of the six unsigned fields and sends, signed by the node with gas price 0,
    ``relayMetaTx(gas, signingData, v, r, s)`` (``deployMetaTx`` without a destination). Besu's account
    permissioning then applies the rules to the *node's* transaction (gas price 0, gas ≥ len(payload) × 105 +
    300,000 and equal to the ``gasLimit`` argument, the suffix's expiration not past and its node address
    the sending node); a refusal reaches the client wrapped by the relay as -32603 ``failed executing smart
    contract: Sender account not authorized to send transactions`` (the wrapping: relay
    blockchain/client.go; Besu's message: LACNET.md). On success the relay records the sender's nonce in its
    ``pending`` map (the nonce *just used* on a first send, +1 on each later one: relay
    ``incrementTransactionCount``) and returns the node's transaction hash.
``eth_getTransactionReceipt`` (relay ``GetTransactionReceipt``)
    ``contractAddress`` from ContractDeployed; TransactionRelayed with executed = false becomes status 0 and
    ``revertReason`` = its output; BadTransactionSent stays status 1 (its rewrite is commented out there).
``eth_getTransactionCount`` (relay ``processTransactionCount``)
    ``pending`` from the map, looked up by the address string exactly as given (the map is keyed by
    go-ethereum's checksummed form); otherwise, and for ``latest``, the hub's ``getNonce`` as the node;
    any other tag is an error.
JSON-RPC batches
    a batch mentioning one of those three methods reaches the relay whole, which cannot decode it and
    answers an empty body (relay ``SignTransaction``: it returns without writing); other batches and
    every other method go to the node (LACNET.md: an nginx rule).

Knobs for tests (injected faults, not LACNet behaviour): :attr:`starve_next` (the hub finds the node's
allowance used up for the next N relays: the relay's own check passed, so the hub returns NotEnoughGas
early, status 1 and no hub event but GasUsedByTransaction, as when other transactions of the block used the
allowance first); :attr:`refuse_nonce_next` (the next N sends are answered ``BAD NONCE``, as when another
process with the same key just took the nonce); :meth:`set_allowance` (the node's per-block allowance).
An idle chain makes an empty block every :data:`BLOCK_SECONDS` (LACNet: every 2 s).
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

from ..http_stub import read_body, send_json

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHAIN_ID = 648540
ANVIL_ARGS = ["--hardfork", "berlin", "--chain-id", str(CHAIN_ID), "--gas-price", "0", "--gas-limit", "350000000"]
#: the emulated chain's block time when idle (LACNet's is 2 s)
BLOCK_SECONDS = 0.5
#: the node's per-block allowance by default: GasLimit.sol's maxGasBlockLimit (a premium node's ceiling)
DEFAULT_ALLOWANCE = 150_000_000
#: stands in for the account rules' ingress, the one destination the hub refuses
ACCOUNT_INGRESS = "0x0000000000000000000000000000000000008888"
RELAY_METHODS = ("eth_sendRawTransaction", "eth_getTransactionReceipt", "eth_getTransactionCount")
NOT_AUTHORIZED = "Sender account not authorized to send transactions"  # Besu's -32007 text
_GET_NONCE = keccak(b"getNonce(address)")[:4]
_GET_GAS_LIMIT = keccak(b"getGasLimit()")[:4]
_SET_GAS_LIMIT = keccak(b"setGasLimit(address,uint256)")[:4]


def artifact(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ARTIFACTS / f"{name}.json").read_text())
    return data


class RelayError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rules_allow(node: str, gas_price: int, gas: int, payload: bytes, now: int) -> bool:
    """AccountRules.transactionAllowed for the node's transaction (the node itself is permitted, the hub is a
    permitted destination): its arithmetic, including where it finds the suffix behind Besu's padding."""
    if gas_price > 0 or gas < len(payload) * lacnet.RELAY_GAS_PER_BYTE + lacnet.RELAY_BASE_GAS:
        return False
    if payload[:4] not in (lacnet.RELAY_META_TX, lacnet.DEPLOY_META_TX):
        return True
    gas_argument = int.from_bytes(payload[4:36], "big")
    rlp_size = int.from_bytes(payload[164:196], "big")
    padding = 32 - (rlp_size + 196) % 32 + 4
    if padding >= 32:
        padding -= 32
    # the zeros that pad the signing data to a whole word come after the suffix, which ends the signing data
    end = len(payload) - padding
    writer = to_checksum_address(payload[end - 52 : end - 32])
    expiration = int.from_bytes(payload[end - 32 : end], "big")
    return gas == gas_argument and expiration >= now and writer == node


class LacnetEmulator:
    """Anvil + the emulated hub and forwarder + the writer node's relay front."""

    def __init__(self, *, node_key: bytes | None = None, allowance: int = DEFAULT_ALLOWANCE) -> None:
        self.node: LocalNode = LocalNode(extra_args=ANVIL_ARGS)
        self.node_account: LocalAccount = Account.from_key(node_key) if node_key else Account.create()
        self.node_address = str(self.node_account.address)
        self.allowance = allowance
        self.allowed: set[str] | None = None
        self.starve_next = 0
        self.refuse_nonce_next = 0
        self.relayed = 0
        self.refused_nonces = 0
        self.hub = ""
        self.forwarder = ""
        self.senders: dict[str, int] = {}  # the relay's "pending" map
        self._block_gas = (-1, 0)  # (block, gas relayed in it): the relay's GAS_LIMIT counter
        self._lock = threading.Lock()
        self._node_nonce = 0
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self) -> LacnetEmulator:
        self.node.start()
        self.anvil = Rpc(self.node.url)
        self._session = requests.Session()
        self.hub = self._deploy_own("EmulatedRelayHub", abi_encode(["address"], [ACCOUNT_INGRESS]))
        self.set_allowance(self.allowance)
        self.forwarder = self._deploy_own("EmulatedForwarder", abi_encode(["address"], [self.hub]))
        self._ticking = threading.Event()
        threading.Thread(target=self._tick, daemon=True).start()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 — http.server's name
                send_json(self, emulator.handle(read_body(self)))

            def log_message(self, *args: Any) -> None:
                pass

        port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    def _tick(self) -> None:
        """Anvil mines only when sent a transaction; LACNet makes a block every 2 s whatever happens (IBFT2).
        An empty block every BLOCK_SECONDS keeps the chain moving, so a client waiting for the next blocks
        (after NotEnoughGas) sees them come, faster than on LACNet."""
        while not self._ticking.wait(BLOCK_SECONDS):
            try:
                self.anvil.call("evm_mine", retry=False)
            except Exception:  # noqa: BLE001 — the node is stopping
                return

    def stop(self) -> None:
        self._ticking.set()
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

    def set_allowance(self, per_block: int) -> None:
        """The node's gas allowance per block, in the hub."""
        self._node_call(_SET_GAS_LIMIT + abi_encode(["address", "uint256"], [self.node_address, per_block]))

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

    def _mined(self, tx_hash: str) -> dict[str, Any]:
        for _ in range(500):
            receipt: dict[str, Any] | None = self.anvil.call("eth_getTransactionReceipt", [tx_hash])
            if receipt:
                return receipt
            time.sleep(0.01)
        raise AssertionError(f"node transaction {tx_hash} was not mined")

    def _deploy_own(self, name: str, args: bytes) -> str:
        code = bytes.fromhex(artifact(name)["bytecode"].removeprefix("0x")) + args
        receipt = self._mined(self._send_as_node(None, code, 5_000_000))
        assert int(receipt["status"], 16) == 1, f"deploying {name} failed"
        return to_checksum_address(receipt["contractAddress"])

    def _node_call(self, data: bytes) -> None:
        receipt = self._mined(self._send_as_node(self.hub, data, 200_000))
        assert int(receipt["status"], 16) == 1, "the hub refused the node's admin call"

    def _hub_view(self, data: bytes) -> int:
        out = self.anvil.call("eth_call", [{"from": self.node_address, "to": self.hub, "data": "0x" + data.hex()},
                                           "latest"])
        return int(out, 16)

    def hub_nonce(self, sender: str) -> int:
        """The hub's nonce for `sender` through this node (what ``latest`` answers)."""
        return self._hub_view(_GET_NONCE + abi_encode(["address"], [to_checksum_address(sender)]))

    # -- JSON-RPC ------------------------------------------------------------------------------------------

    def handle(self, body: bytes) -> bytes:
        try:
            request = json.loads(body)
        except ValueError:
            return _error(None, -32700, "parse error")
        if isinstance(request, list):
            if any(method.encode() in body for method in RELAY_METHODS):
                return b""  # the relay cannot decode a batch and writes nothing
            return self._forward(body)
        method = request.get("method")
        params = request.get("params") or []
        handlers = {"eth_sendRawTransaction": self._relay, "eth_getTransactionReceipt": self._receipt,
                    "eth_getTransactionCount": self._nonce}
        if method not in handlers:
            return self._forward(body)
        try:
            result = handlers[method](params)
        except RelayError as exc:
            return _error(request.get("id"), exc.code, exc.message)
        return json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": result}).encode()

    def _forward(self, body: bytes) -> bytes:
        return self._session.post(self.node.url, data=body, headers={"Content-Type": "application/json"},
                                  timeout=60).content

    def _relay(self, params: list[Any]) -> str:
        try:
            raw = bytes.fromhex(str(params[0]).removeprefix("0x"))
            fields = rlp.decode(raw)
            if len(fields) != 9 or not all(isinstance(f, bytes) for f in fields):
                raise ValueError("not a legacy transaction")
            sender = to_checksum_address(Account.recover_transaction(raw))
        except Exception:  # noqa: BLE001 — the relay ignores the decoding error and finds no signature
            raise RelayError(-32000, "bad signature ECDSA") from None
        nonce_raw, price, gas_raw, to, _value, data, v_raw, r, s = fields
        nonce, gas = int.from_bytes(nonce_raw, "big"), int.from_bytes(gas_raw, "big")
        if self.allowed is not None and sender not in self.allowed:
            raise RelayError(-32000, "account sender is not permitted to send transactions")
        node_gas = lacnet.relay_gas(data, gas)
        with self._lock:  # the relay holds one lock from its gas check to the send
            block = int(self.anvil.call("eth_blockNumber"), 16)
            counted = (self._block_gas[1] if self._block_gas[0] == block else 0) + node_gas
            self._block_gas = (block, counted)  # counted even when refused, as the relay's increment()
            if counted > self._hub_view(_GET_GAS_LIMIT):
                raise RelayError(-32000, "transaction gas limit exceeds block gas limit")
            if self.refuse_nonce_next > 0 or nonce != self.hub_nonce(sender):
                self.refuse_nonce_next = max(self.refuse_nonce_next - 1, 0)
                self.refused_nonces += 1
                raise RelayError(-32000, "BAD NONCE")
        signing_data = rlp.encode(fields[:6])
        function = lacnet.DEPLOY_META_TX if not to else lacnet.RELAY_META_TX
        call = function + abi_encode(["uint256", "bytes", "uint8", "bytes32", "bytes32"],
                                     [node_gas, signing_data, int.from_bytes(v_raw, "big") & 0xFF,
                                      r.rjust(32, b"\0"), s.rjust(32, b"\0")])
        if not rules_allow(self.node_address, 0, node_gas, call, int(time.time())):
            raise RelayError(-32603, f"failed executing smart contract: {NOT_AUTHORIZED}")
        starve = self.starve_next > 0
        if starve:
            self.starve_next -= 1
            self.set_allowance(1)  # after the relay's check: the hub alone finds it used up
        try:
            tx_hash = self._send_as_node(self.hub, call, node_gas)
            if starve:
                self._mined(tx_hash)
        finally:
            if starve:
                self.set_allowance(self.allowance)
        self.relayed += 1
        with self._lock:
            self.senders[sender] = self.senders[sender] + 1 if sender in self.senders else nonce
        return tx_hash

    def _receipt(self, params: list[Any]) -> dict[str, Any] | None:
        receipt: dict[str, Any] | None = self.anvil.call("eth_getTransactionReceipt", params)
        if not receipt:
            return receipt
        for log in receipt.get("logs") or []:
            topics = log.get("topics") or []
            body = bytes.fromhex(str(log.get("data", "0x"))[2:])
            if topics and topics[0] == lacnet.CONTRACT_DEPLOYED:
                receipt["contractAddress"] = "0x" + body[-20:].hex()
            if topics and topics[0] == lacnet.TRANSACTION_RELAYED:
                executed, output = abi_decode(["bool", "bytes"], body)
                if not executed:
                    receipt["status"] = "0x0"
                    receipt["revertReason"] = "0x" + bytes(output).hex()
        return receipt

    def _nonce(self, params: list[Any]) -> str:
        address = str(params[0])
        tag = str(params[1]).upper() if len(params) > 1 else "LATEST"
        if tag not in ("LATEST", "PENDING"):
            raise RelayError(-32000, "parameter not defined, only pending or latest are allowed")
        with self._lock:
            if tag == "PENDING" and address in self.senders:
                return hex(self.senders[address])
        return hex(self.hub_nonce(address))


def _error(request_id: Any, code: int, message: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}).encode()
