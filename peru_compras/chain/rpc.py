"""One JSON-RPC request per call (LACNet's relay takes no batches), through web3.py's HTTP provider.

Errors come back as :class:`RpcError` (the node answered with an error) or
:class:`~peru_compras.errors.NodeUnavailable` (it could not be reached), naming the URL.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from web3 import HTTPProvider
from web3.types import RPCEndpoint

from ..errors import NodeUnavailable


class RpcError(Exception):
    """The node answered a request with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str, data: Any) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message
        self.data = data

    @property
    def revert_data(self) -> bytes | None:
        """The revert payload, when the error carries one (eth_call / eth_estimateGas)."""
        data = self.data
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            try:
                return bytes.fromhex(data[2:])
            except ValueError:
                return None
        return None


class Rpc:
    """A JSON-RPC endpoint. `headers` may carry a JWT for hosted nodes."""

    def __init__(self, url: str, *, timeout: float = 30.0, headers: dict[str, str] | None = None,
                 attempts: int = 3) -> None:
        self.url = url
        self.attempts = attempts
        kwargs: dict[str, Any] = {"timeout": timeout}
        if headers:
            kwargs["headers"] = {"Content-Type": "application/json", **headers}
        self._provider = HTTPProvider(url, request_kwargs=kwargs, exception_retry_configuration=None)

    def call(self, method: str, params: list[Any] | None = None, *, retry: bool = True) -> Any:
        """The `result` of `method`; transport failures are retried with backoff (bounded)."""
        attempts = self.attempts if retry else 1
        for attempt in range(attempts):
            try:
                response = self._provider.make_request(RPCEndpoint(method), params or [])
                break
            except (requests.ConnectionError, requests.Timeout, OSError) as exc:
                if attempt + 1 == attempts:
                    raise NodeUnavailable(
                        f"cannot reach the node at {self.url} ({type(exc).__name__})",
                        hint="start it with `peru-compras node`, or check --rpc / PERU_COMPRAS_RPC",
                    ) from exc
                time.sleep(0.2 * 2**attempt)
            except requests.HTTPError as exc:
                raise NodeUnavailable(f"the node at {self.url} answered HTTP error: {exc}",
                                      hint="check the URL and any access token") from exc
        error = response.get("error")
        if error:
            if isinstance(error, dict):
                raise RpcError(method, int(error.get("code", 0)), str(error.get("message", "")), error.get("data"))
            raise RpcError(method, 0, str(error), None)
        return response.get("result")
