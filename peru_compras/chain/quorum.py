"""Reads checked by several independent nodes: green only when they agree (issue 17 item 5).

``PERU_COMPRAS_RPC`` may list several nodes (comma-separated); ``PERU_COMPRAS_RPC_QUORUM`` (default: all)
says how many must give the same answer. :class:`QuorumRpc` is an :class:`~peru_compras.chain.rpc.Rpc` whose
every ``call`` goes to all the nodes at once and returns only an answer that

- at least `quorum` nodes gave, identical once reduced to the fields a reader uses (:func:`_reduced`), and
- no node that answered contradicts (a node that says something else is never outvoted: it is a lie or a
  fork, and either way the verdict cannot be trusted).

Otherwise it raises :class:`NotChecked` (exit 3, a :class:`~peru_compras.errors.NodeUnavailable`), naming the
node and why: it could not be reached, or it answered a method differently (which field). The page and
``verify`` turn that into "could not be checked", never into a verdict.

Nodes at different heights would disagree on "latest": every call reads at one pinned block, the lowest
block number the nodes report (re-read after :data:`PIN_SECONDS`), whose hash they must also agree on;
``eth_blockNumber`` answers that block. Writes never go through here (the transactor sends to the first node).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import InvalidNodeAnswer, NodeUnavailable, NotChecked, RpcError
from .rpc import Rpc, host_of

__all__ = ["NotChecked", "QuorumRpc", "read_rpc"]

#: how long one pinned block serves (a command's reads, or one page request, see the same block)
PIN_SECONDS = 10.0
_BLOCK_TAGS = frozenset({"latest", "pending", "safe", "finalized"})
# the fields of an answer a reader uses: implementations add others of their own (yParity, type, ...)
_TX_FIELDS = ("hash", "input", "blockHash", "blockNumber", "from", "to", "nonce", "value")
_LOG_FIELDS = ("address", "topics", "data", "blockNumber", "blockHash", "transactionHash", "logIndex")
_RECEIPT_FIELDS = ("transactionHash", "status", "blockNumber", "blockHash", "gasUsed", "contractAddress")
_BLOCK_FIELDS = ("number", "hash", "parentHash", "timestamp")


def read_rpc(urls: Sequence[str], *, quorum: int | None = None, headers: dict[str, str] | None = None,
             timeout: float = 30.0, attempts: int = 3) -> Rpc:
    """The Rpc reads go through: the one node, or a :class:`QuorumRpc` over several."""
    if not urls:
        raise ValueError("no node given")
    nodes = [Rpc(url, headers=headers, timeout=timeout, attempts=attempts) for url in dict.fromkeys(urls)]
    return nodes[0] if len(nodes) == 1 else QuorumRpc(nodes, quorum=quorum)


def _hexed(value: Any) -> Any:
    """Hex strings lowercased, recursively (addresses come checksummed from some nodes, not others)."""
    if isinstance(value, str):
        return value.lower() if value[:2] in ("0x", "0X") else value
    if isinstance(value, list):
        return [_hexed(item) for item in value]
    if isinstance(value, dict):
        return {key: _hexed(item) for key, item in value.items()}
    return value


def _pick(value: Any, fields: Sequence[str]) -> Any:
    return {name: _hexed(value.get(name)) for name in fields} if isinstance(value, dict) else _hexed(value)


def _reduced(method: str, result: Any) -> Any:
    """The part of `method`'s answer that is compared across nodes."""
    if method in ("eth_getTransactionByHash", "eth_getTransactionByBlockHashAndIndex"):
        return _pick(result, _TX_FIELDS)
    if method == "eth_getLogs" and isinstance(result, list):
        return [_pick(log, _LOG_FIELDS) for log in result]
    if method == "eth_getTransactionReceipt" and isinstance(result, dict):
        reduced = _pick(result, _RECEIPT_FIELDS)
        reduced["logs"] = [_pick(log, _LOG_FIELDS) for log in result.get("logs") or []]
        return reduced
    if method in ("eth_getBlockByNumber", "eth_getBlockByHash"):
        return _pick(result, _BLOCK_FIELDS)
    return _hexed(result)


def _difference(first: Any, other: Any) -> str:
    """Which part differs, for the message: a field name, or the whole answer."""
    if isinstance(first, dict) and isinstance(other, dict):
        fields = [name for name in dict.fromkeys([*first, *other]) if first.get(name) != other.get(name)]
        return "field " + ", ".join(fields[:3])
    if isinstance(first, list) and isinstance(other, list):
        if len(first) != len(other):
            return f"{len(other)} entries against {len(first)}"
        index = next(i for i, (a, b) in enumerate(zip(first, other, strict=True)) if a != b)
        return f"entry {index} ({_difference(first[index], other[index])})"
    return "the answer"


class QuorumRpc(Rpc):
    """Several nodes read as one (see the module docstring). `quorum` None means all of them."""

    def __init__(self, nodes: Sequence[Rpc], *, quorum: int | None = None) -> None:
        if len(nodes) < 2:
            raise ValueError("a quorum needs two nodes or more")
        if quorum is not None and not 1 <= quorum <= len(nodes):
            raise ValueError(f"quorum {quorum} of {len(nodes)} nodes")
        super().__init__(nodes[0].url, attempts=nodes[0].attempts)
        self.nodes = tuple(nodes)
        self.quorum = len(nodes) if quorum is None else quorum
        self._pool = ThreadPoolExecutor(max_workers=len(nodes), thread_name_prefix="peru-compras-quorum")
        self._pinned: tuple[int, float] | None = None

    def __repr__(self) -> str:
        return f"QuorumRpc({', '.join(host_of(node.url) for node in self.nodes)}; quorum {self.quorum})"

    # -- one question to every node --------------------------------------------------------------------

    def _ask_all(self, method: str, params: list[Any], retry: bool) -> list[tuple[Rpc, str, Any]]:
        """(node, "result" | "error" | "down", the result / the RpcError / why) for every node."""

        def ask(node: Rpc) -> tuple[Rpc, str, Any]:
            try:
                return node, "result", node.call(method, params, retry=retry)
            except RpcError as exc:  # compared by code and revert data (the wording differs between clients)
                return node, "error", exc
            except NodeUnavailable as exc:
                return node, "down", exc.message
            except InvalidNodeAnswer as exc:
                return node, "down", exc.message

        return list(self._pool.map(ask, self.nodes))

    def _agreed(self, method: str, params: list[Any], *, retry: bool = True) -> Any:
        answers = self._ask_all(method, params, retry)
        up = [(node, kind, value) for node, kind, value in answers if kind != "down"]
        down = [(node, value) for node, kind, value in answers if kind == "down"]
        def compared(kind: str, value: Any) -> Any:
            # errors by their revert data: codes and wording differ between clients (Anvil 3, Besu -32000)
            return (kind, _reduced(method, value) if kind == "result" else value.revert_data)

        if up:
            first_node, first_kind, first_value = up[0]
            reference = compared(first_kind, first_value)
            for node, kind, value in up[1:]:
                seen = compared(kind, value)
                if seen != reference:
                    why = (_difference(reference[1], seen[1]) if kind == first_kind == "result" else
                           "another revert" if kind == first_kind else
                           "an error where the other answered" if kind == "error" else
                           "an answer where the other gave an error")
                    raise NotChecked(f"{host_of(node.url)} and {host_of(first_node.url)} answered {method} "
                                     f"differently ({why})", node=host_of(node.url), reason=f"disagrees: {why}")
        if len(up) < self.quorum:
            node, why = down[0]
            raise NotChecked(f"{host_of(node.url)} cannot be reached ({why}); {len(up)} of {len(self.nodes)} nodes "
                             f"answered {method}, {self.quorum} must agree", node=host_of(node.url),
                             reason=f"unreachable: {why}")
        _, kind, value = up[0]
        if kind == "error":  # the same refusal from every node that answered
            raise value
        return value

    # -- the pinned block ------------------------------------------------------------------------------

    def pinned_block(self) -> int:
        """The block every read is made at: the lowest the nodes report, its hash agreed by all."""
        now = time.monotonic()
        if self._pinned is not None and now - self._pinned[1] < PIN_SECONDS:
            return self._pinned[0]
        answers = self._ask_all("eth_blockNumber", [], True)
        heights = [int(value, 16) for _, kind, value in answers if kind == "result"]
        if len(heights) < self.quorum:
            self._agreed("eth_blockNumber", [])  # raises, naming the node that did not answer
        block = min(heights)
        self._agreed("eth_getBlockByNumber", [hex(block), False])  # the same block at that height
        self._pinned = (block, now)
        return block

    def _pin(self, params: list[Any]) -> list[Any]:
        """`params` with every block tag ("latest", ...) replaced by the pinned block's number."""
        def pinned(value: Any) -> Any:
            if isinstance(value, str) and value in _BLOCK_TAGS:
                return hex(self.pinned_block())
            if isinstance(value, dict):
                return {key: pinned(item) if key in ("fromBlock", "toBlock") else item for key, item in value.items()}
            return value

        return [pinned(value) for value in params]

    def call(self, method: str, params: list[Any] | None = None, *, retry: bool = True) -> Any:
        if method == "eth_blockNumber":
            return hex(self.pinned_block())
        return self._agreed(method, self._pin(list(params or [])), retry=retry)
