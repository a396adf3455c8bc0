"""One JSON-RPC request per call (LACNet's relay takes no batches), over HTTP (:mod:`.transport`).

The node is outside the trust boundary: its answer is read to at most :data:`MAX_RESPONSE_BYTES` (checked
while it arrives, after any gzip), parsed by :func:`peru_compras.safejson.loads` (size and nesting bounded)
and must be a JSON-RPC object with a ``result`` or an ``error``. Errors come back as :class:`RpcError` (the
node answered with a JSON-RPC error), :class:`~peru_compras.errors.InvalidNodeAnswer` (it answered something
that is not JSON-RPC, or a malformed value where hex is expected, see :meth:`Rpc.hex_int` /
:meth:`Rpc.hex_bytes`) or :class:`~peru_compras.errors.NodeUnavailable` (it could not be reached). Messages
name the node's scheme, host and port, never the whole URL (a hosted node's URL may carry an access key).
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from .. import __version__
from ..errors import InvalidJSON, InvalidNodeAnswer, NodeUnavailable
from ..errors import RpcError as RpcError  # defined in errors.py; chain.rpc.RpcError stays
from ..retry import backoff
from ..retry import retry as retry_calls
from ..safejson import loads
from ..urls import host_of as host_of  # moved to urls.py; chain.rpc.host_of stays
from .transport import Http, TooLarge, Undecodable

#: the largest answer read from a node (a full eth_getLogs page of records fits well below it)
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: nesting allowed in an answer (a receipt with its logs is 4 levels deep)
MAX_RESPONSE_DEPTH = 32
_CHUNK = 64 * 1024
_HINT = "check --rpc / PERU_COMPRAS_RPC: it must be an Ethereum JSON-RPC endpoint"
_ids = itertools.count(1)
#: transport failures worth another try (the node may be restarting); NodeUnavailable (an HTTP error) is not
_TRANSPORT = (OSError,)  # transport.Unreachable among them
_QUANTITY = re.compile(r"0[xX][0-9a-fA-F]{1,64}")  # at most 256 bits
#: the shapes other modules check a node's fields against: hex data, a 32-byte word (a hash, a topic), an address
DATA = re.compile(r"0[xX](?:[0-9a-fA-F]{2})*")
WORD = re.compile(r"0x[0-9a-fA-F]{64}")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
# Methods whose result is checked here, so that every caller gets a named error for a malformed one.
_QUANTITY_METHODS = frozenset({"eth_chainId", "eth_blockNumber", "eth_getTransactionCount", "eth_estimateGas",
                               "eth_gasPrice", "eth_maxPriorityFeePerGas", "eth_getBalance"})
_DATA_METHODS = frozenset({"eth_call", "eth_getCode", "eth_getStorageAt"})
_LIST_METHODS = frozenset({"eth_getLogs", "eth_accounts"})
#: an object, or null for what the node does not have (yet)
_OBJECT_METHODS = frozenset({"eth_getBlockByNumber", "eth_getBlockByHash", "eth_getTransactionByHash",
                             "eth_getTransactionReceipt"})


def _encode(value: Any) -> str:
    """Bytes in a request's params as 0x hex (as web3's encoder did)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    raise TypeError(f"{type(value).__name__} cannot be sent to a node")


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "…"


class Rpc:
    """A JSON-RPC endpoint. `headers` may carry a JWT for hosted nodes."""

    def __init__(self, url: str, *, timeout: float = 30.0, headers: dict[str, str] | None = None,
                 attempts: int = 3) -> None:
        self.url = url
        self.attempts = attempts
        self._timeout = timeout
        self._http = Http(url, {"Content-Type": "application/json", "User-Agent": f"peru-compras/{__version__}",
                                **(headers or {})}, timeout)

    def invalid(self, method: str, what: str) -> InvalidNodeAnswer:
        """The error for an answer to `method` that is not what a node sends."""
        return InvalidNodeAnswer(f"the node at {host_of(self.url)} answered {method} with {what}", hint=_HINT)

    def call(self, method: str, params: list[Any] | None = None, *, retry: bool = True) -> Any:
        """The `result` of `method`; transport failures are retried with backoff (bounded)."""
        try:
            body = retry_calls(lambda: self._post(method, params or []), attempts=self.attempts if retry else 1,
                               retry_on=_TRANSPORT, delays=backoff(0.2),
                               # an HTTP error status: the node is there, retrying will not help
                               give_up=lambda exc: isinstance(exc, NodeUnavailable))
        except NodeUnavailable:
            raise
        except _TRANSPORT as exc:
            raise NodeUnavailable(
                f"cannot reach the node at {host_of(self.url)} ({getattr(exc, 'name', type(exc).__name__)})",
                hint="start it with `peru-compras node`, or check --rpc / PERU_COMPRAS_RPC",
            ) from None
        try:
            response = loads(body, source="answer", max_bytes=MAX_RESPONSE_BYTES, max_depth=MAX_RESPONSE_DEPTH)
        except InvalidJSON as exc:
            raise self.invalid(method, exc.message.removeprefix("answer: ")) from None
        if not isinstance(response, dict):
            raise self.invalid(method, f"a JSON {type(response).__name__}, not a JSON-RPC object")
        if "error" in response and response["error"] is not None:
            error = response["error"]
            if isinstance(error, dict):
                code = error.get("code")
                raise RpcError(method, code if isinstance(code, int) and not isinstance(code, bool) else 0,
                               str(error.get("message", ""))[:1000], error.get("data"))
            raise RpcError(method, 0, str(error)[:1000], None)
        if "result" not in response:
            raise self.invalid(method, "neither a result nor an error")
        result = response["result"]
        if method in _QUANTITY_METHODS:
            self.hex_int(result, method)
        elif method in _DATA_METHODS:
            self.hex_bytes(result, method)
        elif method in _LIST_METHODS and not isinstance(result, list):
            raise self.invalid(method, f"{_short(result)} where a list was expected")
        elif method in _OBJECT_METHODS and not (result is None or isinstance(result, dict)):
            raise self.invalid(method, f"{_short(result)} where an object (or null) was expected")
        elif method == "eth_sendRawTransaction" and not (isinstance(result, str) and WORD.fullmatch(result)):
            raise self.invalid(method, f"{_short(result)} where a transaction hash was expected")
        return result

    def _post(self, method: str, params: list[Any]) -> bytes:
        """The body of the node's answer to one request, read to at most MAX_RESPONSE_BYTES."""
        request = json.dumps({"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params},
                             default=_encode, separators=(",", ":")).encode()
        answer = self._http.post(request)
        try:
            if answer.status >= 400:
                raise NodeUnavailable(f"the node at {host_of(self.url)} answered {method} with HTTP "
                                      f"{answer.status}", hint="check the URL and any access token")
            declared = answer.getheader("Content-Length", "") or ""
            if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                raise self.invalid(method, f"{int(declared)} bytes, over the limit of {MAX_RESPONSE_BYTES}")
        except BaseException:
            self._http.drop()
            raise
        try:
            return self._http.read(answer, MAX_RESPONSE_BYTES, _CHUNK)
        except TooLarge:
            raise self.invalid(method, f"over {MAX_RESPONSE_BYTES} bytes, the limit") from None
        except Undecodable:
            raise self.invalid(method, "a body that does not decompress") from None

    def hex_int(self, value: Any, method: str, name: str = "") -> int:
        """`value` (a ``0x`` quantity, field `name` of `method`'s answer) as an int; InvalidNodeAnswer when
        it is not one."""
        if isinstance(value, str) and _QUANTITY.fullmatch(value):
            return int(value[2:], 16)
        raise self.invalid(method, f"{name + ' ' if name else ''}{_short(value)} where a hex number was expected")

    def hex_bytes(self, value: Any, method: str, name: str = "") -> bytes:
        """`value` (``0x`` data, field `name` of `method`'s answer) as bytes; InvalidNodeAnswer when it is
        not hex data."""
        if isinstance(value, str) and DATA.fullmatch(value):
            return bytes.fromhex(value[2:])
        raise self.invalid(method, f"{name + ' ' if name else ''}{_short(value)} where hex data was expected")

    def _member(self, answer: Any, name: str, method: str) -> Any:
        if not isinstance(answer, dict):
            raise self.invalid(method, f"{_short(answer)} where an object with {name} was expected")
        return answer.get(name)

    def data_field(self, answer: Any, name: str, method: str) -> bytes:
        """Field `name` (hex data) of the object `method` answered with; InvalidNodeAnswer otherwise."""
        return self.hex_bytes(self._member(answer, name, method), method, name)

    def int_field(self, answer: Any, name: str, method: str) -> int:
        """Field `name` (a hex quantity) of the object `method` answered with; InvalidNodeAnswer otherwise."""
        return self.hex_int(self._member(answer, name, method), method, name)
