"""The registry client: deploy, register one or many, supersede, annul, read, find, roles.

Reads need only a standard JSON-RPC endpoint: ``eth_call`` for the stored state, ``eth_getLogs`` for the
indexed events and ``eth_getTransactionByHash`` for the record, which travels as calldata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import (
    ChainRefused,
    ConfigurationError,
    InvalidInput,
    OrderAlreadyRegistered,
    OrderNotRegistered,
    PeruComprasError,
    UnreadableRecord,
)
from ..hashing import hashlink
from ..hashing import keccak256 as keccak
from ..order import Order, decode_entry
from .abi import decode as abi_decode
from .abi import encode as abi_encode
from .abi import to_checksum_address
from .contract import ROLE_NAMES, STATUS_NAMES, artifact
from .contract import selector as _selector
from .contract import topic as _topic
from .lacnet import original_calldata
from .metatx import forwarded_calldata
from .rpc import WORD, Rpc, RpcError, host_of
from .transactions import Receipt, Transactor

REGISTER = _selector("register(bytes)")
REGISTER_BATCH = _selector("registerBatch(bytes)")
SUPERSEDE = _selector("supersede(uint256,bytes)")
ORDER_REGISTERED = _topic("OrderRegistered(bytes32,address)")
TRANSFER = _topic("Transfer(address,address,uint256)")
ORDER_ANNULLED = _topic("OrderAnnulled(uint256,address,string)")
ORDER_SUPERSEDED = _topic("OrderSuperseded(uint256,uint256,address)")
ROLE_GRANTED = _topic("RoleGranted(bytes32,address,address)")
ROLE_REVOKED = _topic("RoleRevoked(bytes32,address,address)")
_ORDER_STATE = "(bytes32,uint8,uint64,uint256,uint256)"

#: gas one order costs in a batch, with margin (measured about 31,000; see benchmarks/)
GAS_PER_BATCHED_ORDER = 40_000
MAX_ENTRY_BYTES = 65_535


def _word(value: int) -> str:
    return f"0x{value:064x}"


@dataclass(frozen=True, slots=True)
class Registration:
    """One order registered by a transaction (`tx_orders` orders shared it)."""

    token_id: int
    order: Order
    sha256: bytes
    tx_hash: str
    block_number: int
    gas_used: int
    tx_orders: int
    supersedes: int | None = None

    @property
    def hashlink(self) -> str:
        return hashlink(self.sha256)


@dataclass(frozen=True, slots=True)
class OrderState:
    """What storage holds for a token (one ``eth_call``)."""

    token_id: int
    document_hash: bytes
    status: str
    status_changed_at: int
    replaced_by: int | None
    replaces: int | None

    @property
    def registered(self) -> bool:
        return self.status != "not_registered"


@dataclass(frozen=True, slots=True)
class OnChainOrder:
    """Everything the chain says about one order."""

    state: OrderState
    order: Order
    tx_hash: str
    block_number: int
    registrar: str
    document_url: str
    annul_reason: str | None

    @property
    def token_id(self) -> int:
        return self.state.token_id


class Registry:
    """A deployed PurchaseOrderRegistry. Writing needs a :class:`Transactor`; reading only an :class:`Rpc`."""

    def __init__(self, rpc: Rpc, address: str, *, transactor: Transactor | None = None,
                 from_block: int = 0) -> None:
        try:
            self.address = to_checksum_address(address)
        except ValueError:
            raise ConfigurationError(f"{address!r} is not an address",
                                     hint="give the registry as 0x followed by 40 hex digits") from None
        self.rpc = rpc
        self.transactor = transactor
        self.from_block = from_block

    # -- deployment ------------------------------------------------------------------------------------

    @classmethod
    def deploy(cls, transactor: Transactor, *, document_base_uri: str = "",
               trusted_forwarder: str | None = None) -> tuple[Registry, Receipt]:
        """Deploy a registry; the signer gets the admin, registrar and annuller roles."""
        forwarder = trusted_forwarder or transactor.network.trusted_forwarder or "0x" + "00" * 20
        hub = transactor.network.metatx_hub or "0x" + "00" * 20  # the ERC-2771 hub (LACNET.md section 2)
        args = abi_encode(["address", "address", "address", "string"],
                          [transactor.address, forwarder, hub, document_base_uri])
        code = bytes.fromhex(artifact()["bytecode"].removeprefix("0x")) + args
        receipt = transactor.transact(None, code, action="deploy the registry")  # gas: the estimate + margin
        if not receipt.contract_address:
            raise ChainRefused(f"deployment {receipt.tx_hash} created no contract",
                               hint="check the signer is allowed to deploy on this network")
        registry = cls(transactor.rpc, receipt.contract_address, transactor=transactor,
                       from_block=receipt.block_number)
        return registry, receipt

    def check_deployed(self) -> None:
        """Raise ConfigurationError unless a registry is deployed at the address."""
        code = self.rpc.call("eth_getCode", [self.address, "latest"])
        if not code or code == "0x":
            raise ConfigurationError(
                f"no contract at registry address {self.address} on {host_of(self.rpc.url)}",
                hint="deploy one with `peru-compras deploy` or fix --registry / PERU_COMPRAS_REGISTRY",
            )

    # -- writing ---------------------------------------------------------------------------------------

    def _signer(self) -> Transactor:
        if self.transactor is None:
            raise ConfigurationError("this operation needs a signer",
                                     hint="set --keystore FILE or PERU_COMPRAS_PRIVATE_KEY")
        return self.transactor

    def ensure_new_document(self, document_hash: bytes) -> None:
        """Refuse a document already registered (the chain stores one slot per order, not per hash)."""
        if self.is_document_registered(document_hash):
            found = self.find_by_hash(document_hash) or [0]
            raise OrderAlreadyRegistered(
                f"document {hashlink(document_hash)} is already registered as token {_word(found[0])}",
                token_id=found[0],
                hint="each PDF is registered once; to correct an order use --supersedes",
            )

    def register(self, order: Order, document_hash: bytes) -> Registration:
        """Register one order whose (stamped) PDF has SHA-256 `document_hash`."""
        self.ensure_new_document(document_hash)
        data = REGISTER + abi_encode(["bytes"], [order.encode_entry(document_hash)])
        receipt = self._signer().transact(self.address, data, action=f"register order {order.order_number!r}")
        return Registration(order.token_id, order, document_hash, receipt.tx_hash, receipt.block_number,
                            receipt.gas_used, 1)

    def supersede(self, old_token_id: int, order: Order, document_hash: bytes) -> Registration:
        """Register `order` as the correction of `old_token_id`."""
        self.ensure_new_document(document_hash)
        data = SUPERSEDE + abi_encode(["uint256", "bytes"], [old_token_id, order.encode_entry(document_hash)])
        receipt = self._signer().transact(self.address, data, action=f"supersede token {_word(old_token_id)}")
        return Registration(order.token_id, order, document_hash, receipt.tx_hash, receipt.block_number,
                            receipt.gas_used, 1, supersedes=old_token_id)

    @staticmethod
    def batch_calldata(entries: Sequence[bytes]) -> bytes:
        """``registerBatch`` calldata for already-encoded entries."""
        packed = bytearray()
        for entry in entries:
            if len(entry) > MAX_ENTRY_BYTES:
                raise InvalidInput(f"an encoded order has {len(entry)} bytes, over {MAX_ENTRY_BYTES}")
            packed += len(entry).to_bytes(2, "big") + entry
        return REGISTER_BATCH + abi_encode(["bytes"], [bytes(packed)])

    def register_many(self, orders: Sequence[tuple[Order, bytes]]) -> list[Registration]:
        """Register several orders in one transaction (all or none)."""
        if not orders:
            return []
        data = self.batch_calldata([order.encode_entry(digest) for order, digest in orders])
        receipt = self._signer().transact(self.address, data, action=f"register {len(orders)} orders")
        share = receipt.gas_used // len(orders)
        return [Registration(order.token_id, order, digest, receipt.tx_hash, receipt.block_number, share,
                             len(orders)) for order, digest in orders]

    def annul(self, token_id: int, reason: str) -> Receipt:
        """Mark `token_id` annulled; the token stays."""
        data = _selector("annul(uint256,string)") + abi_encode(["uint256", "string"], [token_id, reason])
        return self._signer().transact(self.address, data, action=f"annul token {_word(token_id)}")

    def _role_call(self, function: str, role: str, account: str) -> Receipt:
        if role not in ROLE_NAMES:
            raise InvalidInput(f"unknown role {role!r}", hint="use one of: " + ", ".join(ROLE_NAMES))
        try:
            who = to_checksum_address(account)
        except ValueError:
            raise InvalidInput(f"{account!r} is not an address", hint="give 0x followed by 40 hex digits") from None
        data = _selector(f"{function}(bytes32,address)") + abi_encode(["bytes32", "address"], [ROLE_NAMES[role], who])
        return self._signer().transact(self.address, data, action=f"{function.removesuffix('Role')} {role}")

    def grant(self, role: str, account: str) -> Receipt:
        return self._role_call("grantRole", role, account)

    def revoke(self, role: str, account: str) -> Receipt:
        return self._role_call("revokeRole", role, account)

    def pause(self) -> Receipt:
        return self._signer().transact(self.address, _selector("pause()"), action="pause the registry")

    def unpause(self) -> Receipt:
        return self._signer().transact(self.address, _selector("unpause()"), action="unpause the registry")

    # -- reading ---------------------------------------------------------------------------------------

    def _call(self, data: bytes, block: str = "latest") -> bytes:
        try:
            result = self.rpc.call("eth_call", [{"to": self.address, "data": "0x" + data.hex()}, block])
        except RpcError as exc:
            raise ChainRefused(f"reading the registry at {self.address} failed: {exc.message}",
                               hint="check --registry and --rpc") from None
        out = self.rpc.hex_bytes(result, "eth_call")
        if not out:
            self.check_deployed()
        return out

    def _read(self, types: list[str], data: bytes) -> tuple[Any, ...]:
        """eth_call `data` and decode the answer as `types`; a node's answer of the wrong shape is named."""
        raw = self._call(data)
        try:
            return tuple(abi_decode(types, raw))
        except Exception:  # noqa: BLE001 — abi.AbiError (or a bad string's): the node's bytes, not ours
            raise self.rpc.invalid("eth_call", f"{len(raw)} bytes that do not decode as {', '.join(types)}") from None

    def state(self, token_id: int) -> OrderState:
        """Stored state of `token_id` (status ``not_registered`` when it was never minted)."""
        ((digest, status, changed, replaced_by, replaces),) = self._read(
            [_ORDER_STATE], _selector("orderOf(uint256)") + abi_encode(["uint256"], [token_id]))
        if status >= len(STATUS_NAMES):
            raise self.rpc.invalid("eth_call", f"order status {status}, which the registry does not have")
        return OrderState(token_id, bytes(digest), STATUS_NAMES[status], changed, replaced_by or None,
                          replaces or None)

    def total_supply(self) -> int:
        (count,) = self._read(["uint256"], _selector("totalSupply()"))
        return int(count)

    def document_base_uri(self) -> str:
        (uri,) = self._read(["string"], _selector("documentBaseURI()"))
        return str(uri)

    def has_role(self, role: str, account: str) -> bool:
        data = _selector("hasRole(bytes32,address)") + abi_encode(
            ["bytes32", "address"], [ROLE_NAMES[role], to_checksum_address(account)])
        (result,) = self._read(["bool"], data)
        return bool(result)

    def _logs(self, topics: list[str | None], *, block_hash: str | None = None, words: int = 0
              ) -> list[dict[str, Any]]:
        """The registry's logs with `topics` (in block `block_hash`, else since its deploy block), checked
        (:meth:`checked_logs`) for at least `words` topics (default: those asked for)."""
        query: dict[str, Any] = {"address": self.address, "topics": topics}
        if block_hash:
            query["blockHash"] = block_hash
        else:
            query.update(fromBlock=hex(self.from_block), toBlock="latest")
        return self.checked_logs(self.rpc.call("eth_getLogs", [query]), max(words, len(topics)))

    def checked_logs(self, logs: list[Any], words: int) -> list[dict[str, Any]]:
        """`logs` a node answered eth_getLogs with (a list: checked by Rpc.call), each with the fields read from
        a log: transaction and block hash, block number, data and at least `words` topics, each a 32-byte hex
        word (a topic read after those a filter names is counted in `words`); InvalidNodeAnswer otherwise."""
        for log in logs:
            self.rpc.data_field(log, "transactionHash", "eth_getLogs")
            self.rpc.int_field(log, "blockNumber", "eth_getLogs")
            self.rpc.data_field(log, "data", "eth_getLogs")
            block = log.get("blockHash")
            if not (isinstance(block, str) and WORD.fullmatch(block)):
                raise self.rpc.invalid("eth_getLogs", f"blockHash {str(block)[:80]} where a 32-byte hex word was "
                                       "expected")
            found = log.get("topics")
            if not (isinstance(found, list) and len(found) >= words
                    and all(isinstance(t, str) and WORD.fullmatch(t) for t in found)):
                raise self.rpc.invalid("eth_getLogs", f"topics {str(found)[:40]} where {words} 32-byte hex "
                                       "words were expected")
        return logs

    def is_document_registered(self, document_hash: bytes) -> bool:
        """Whether any order was registered with this document hash (one ``eth_getLogs``)."""
        return bool(self._logs([ORDER_REGISTERED, "0x" + document_hash.hex()]))

    def find_by_hash(self, document_hash: bytes) -> list[int]:
        """Token ids registered with this document hash: the OrderRegistered log names the transaction,
        whose calldata holds the entry with that hash and so the order key (two calls per match)."""
        out = []
        for log in self._logs([ORDER_REGISTERED, "0x" + document_hash.hex()]):
            tx = self.rpc.call("eth_getTransactionByHash", [log["transactionHash"]])
            for entry in order_entries(self.rpc.data_field(tx, "input", "eth_getTransactionByHash")):
                if entry[:32] == document_hash and len(entry) > 33:
                    out.append(int.from_bytes(keccak(entry[33 : 33 + entry[32]]), "big"))
        return out

    def read(self, token_id: int, *, state: OrderState | None = None) -> OnChainOrder:
        """The whole on-chain record of `token_id`; OrderNotRegistered when there is none. Pass `state`
        when it was just read, to save the ``eth_call``."""
        state = state or self.state(token_id)
        if not state.registered:
            raise OrderNotRegistered(f"no order is registered as token {_word(token_id)}",
                                     hint="check the id, or look it up by entity/order number or hash")
        logs = self._logs([TRANSFER, _word(0), None, _word(token_id)])
        if not logs:
            raise ChainRefused(f"token {_word(token_id)} has no registration event from block {self.from_block}",
                               hint="the node may have pruned old logs; use an archive node")
        log = logs[0]
        tx = self.rpc.call("eth_getTransactionByHash", [log["transactionHash"]])
        order = self._order_from_input(self.rpc.data_field(tx, "input", "eth_getTransactionByHash"), token_id,
                                       state.document_hash)
        registered = [  # (topic 2: the registrar)
            entry for entry in self._logs([ORDER_REGISTERED, "0x" + state.document_hash.hex()],
                                          block_hash=log["blockHash"], words=3)
            if entry["transactionHash"] == log["transactionHash"]
        ]
        registrar = to_checksum_address("0x" + registered[0]["topics"][2][-40:]) if registered else "unknown"
        reason = None
        if state.status == "annulled":
            annulled = self._logs([ORDER_ANNULLED, _word(token_id)])
            if annulled:
                reason = annul_reason(annulled[-1]["data"])
        url = order.document_url or (self.document_base_uri() + hashlink(state.document_hash))
        return OnChainOrder(state, order, log["transactionHash"], self.rpc.int_field(log, "blockNumber", "eth_getLogs"),
                            registrar, url, reason)

    def _order_from_input(self, data: bytes, token_id: int, document_hash: bytes) -> Order:
        """Find `token_id`'s entry in a registering transaction's calldata and decode it."""
        for entry in order_entries(data):
            if len(entry) > 33 and int.from_bytes(keccak(entry[33 : 33 + entry[32]]), "big") == token_id:
                digest, order = _decode(entry, token_id)
                if digest != document_hash:
                    raise ChainRefused(f"token {_word(token_id)}: calldata and storage disagree on the hash")
                return order
        raise ChainRefused(f"token {_word(token_id)}: its record was not found in the registering transaction",
                           hint="the transaction may have been relayed in a form this version cannot read")

    def members(self, role: str) -> list[str]:
        """Accounts holding `role` now (from RoleGranted/RoleRevoked events, confirmed by hasRole)."""
        seen: dict[str, None] = {}
        for log in self._logs([ROLE_GRANTED, "0x" + ROLE_NAMES[role].hex()], words=3):  # topic 2: the account
            seen[to_checksum_address("0x" + log["topics"][2][-40:])] = None
        return [account for account in seen if self.has_role(role, account)]

    # -- log scans over the whole history (H5: moved here from ocds.py) -------------------------------

    def logs_between(self, topics: list[str | None], low: int, high: int, *, words: int = 0
                     ) -> list[dict[str, Any]]:
        """The registry's logs with `topics` in blocks low..high (checked as :meth:`_logs` checks them), halving
        the range when the node refuses a wide one (hosted nodes cap the range or the answer's size)."""
        try:
            return self.checked_logs(self.rpc.call("eth_getLogs", [{
                "address": self.address, "fromBlock": hex(low), "toBlock": hex(high), "topics": topics}]),
                max(words, len(topics)))
        except RpcError:
            if high <= low:
                raise
            middle = (low + high) // 2
            return (self.logs_between(topics, low, middle, words=words)
                    + self.logs_between(topics, middle + 1, high, words=words))

    def token_ids(self) -> list[int]:
        """Every token the registry minted, in mint order: the ERC-721 ``Transfer`` logs from the zero address
        since the registry's deploy block (only ``eth_getLogs``)."""
        latest = int(self.rpc.call("eth_blockNumber"), 16)
        logs = self.logs_between([TRANSFER, "0x" + "00" * 32], self.from_block, latest, words=4)  # 3: the token
        return list(dict.fromkeys(int(log["topics"][3], 16) for log in logs))


def _decode(entry: bytes, token_id: int) -> tuple[bytes, Order]:
    """decode_entry, any failure named as the token's UnreadableRecord (the bytes are a registrar's:
    the contract checks only their length)."""
    try:
        return decode_entry(entry)
    except RecursionError:
        reason = "nested too deeply"
    except PeruComprasError as exc:
        reason = exc.message
    except Exception as exc:  # noqa: BLE001 — any shape of bad bytes: say which token, not a traceback
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
    raise UnreadableRecord(f"token {_word(token_id)}: its on-chain record is malformed ({reason})",
                           token_id=token_id, hint="it was registered by hand with bad bytes; annul it and "
                           "register the order again") from None


UNREADABLE_REASON = "(unreadable: the node's OrderAnnulled log does not carry an ABI-encoded string)"


def annul_reason(data: object) -> str:
    """The reason in an OrderAnnulled log's `data` (hex), as text.

    An annuller's bytes need not be UTF-8 (replaced, as before). Data that is not an ABI string at all
    (truncated, an offset or length past the end, non-zero padding) can only come from a node or relay
    that rewrote the log: the order, its status and its hash are read elsewhere and stay checkable, so the
    record is shown with the reason marked unreadable rather than refused as a whole (a user asking about
    an annulled order still learns that it is annulled)."""
    try:
        (raw,) = abi_decode(["bytes"], bytes.fromhex(str(data)[2:]))
    except Exception:  # noqa: BLE001 — abi.AbiError or a non-hex string: the node's bytes, not ours
        return UNREADABLE_REASON
    return bytes(raw).decode("utf-8", "replace")


def order_entries(data: bytes) -> list[bytes]:
    """The order entries in calldata of register / registerBatch / supersede (direct or inside a relay).

    Through LACNet's relay the transaction a node returns is the hub's ``relayMetaTx`` (5-argument form, or
    the older 4-argument one): its signing data is the RLP of the original transaction, whose data minus
    LACNet's 64-byte suffix is our calldata."""
    relayed = original_calldata(data)
    if relayed is None:  # or the open-standards hub's execute(forward, callData, signature)
        relayed = forwarded_calldata(data)
    if relayed is not None:
        data = relayed
    selector, body = data[:4], data[4:]
    try:
        if selector == REGISTER:
            return [bytes(abi_decode(["bytes"], body)[0])]
        if selector == SUPERSEDE:
            return [bytes(abi_decode(["uint256", "bytes"], body)[1])]
        if selector == REGISTER_BATCH:
            packed = bytes(abi_decode(["bytes"], body)[0])
            out, offset = [], 0
            while offset + 2 <= len(packed):
                length = int.from_bytes(packed[offset : offset + 2], "big")
                out.append(packed[offset + 2 : offset + 2 + length])
                offset += 2 + length
            return out
    except Exception:  # noqa: BLE001 — not our call shape
        return []
    return []


_entries = order_entries  # the old name (mirror.py may still import it)
