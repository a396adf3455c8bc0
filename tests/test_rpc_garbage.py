"""A node that answers garbage: each shape is one named line (exit 1), never "internal error".

A tiny JSON-RPC server on loopback stands in for a broken or hostile node (or a wrong --rpc URL: a web
server, a proxy's error page). It answers each method from a script; anything unscripted gets the garbage
under test. The command line is run as a user runs it: ``peru-compras show 1 --rpc http://127.0.0.1:<port>``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi.abi import encode as abi_encode

from peru_compras.chain.client import REGISTER, TRANSFER, Registry
from peru_compras.chain.node import free_port
from peru_compras.chain.rpc import MAX_RESPONSE_BYTES, Rpc, RpcError
from peru_compras.errors import InvalidNodeAnswer, NodeUnavailable, PeruComprasError
from peru_compras.web.app import PageSettings, create_app

from .conftest import run_cli
from .http_stub import read_body

REGISTRY = "0x" + "ab" * 20
TX_HASH = "0x" + "11" * 32
WORD = "0x" + "00" * 32


class Raw(bytes):
    """A body sent as is (not wrapped in a JSON-RPC answer), under a Content-Length of `declared` (default:
    its length) or, when `chunks` is set, `chunks` times over with no Content-Length."""

    declared: int | None = None
    chunks = 0
    delay = 0.0  # between chunks
    encoding: str | None = None  # a Content-Encoding to declare


def raw(body: bytes, *, declared: int | None = None, chunks: int = 0, delay: float = 0.0,
        encoding: str | None = None) -> Raw:
    out = Raw(body)
    out.declared, out.chunks, out.delay, out.encoding = declared, chunks, delay, encoding
    return out


NOTHING = Raw(b"")


class Asked(list[str]):
    """The methods a test node was asked, in order; `requests` holds each request and its headers."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[dict[str, Any], dict[str, str]]] = []


@contextmanager
def node(script: dict[str, Any], default: Raw = NOTHING) -> Iterator[tuple[str, Asked]]:
    """A loopback server answering each method from `script` (a Raw body, or a result to wrap), else
    `default`; yields its URL and the methods asked, in order."""
    asked = Asked()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 — http.server's name
            request = json.loads(read_body(self))
            asked.append(request["method"])
            asked.requests.append((request, dict(self.headers.items())))
            answer = script.get(request["method"], default)
            body = answer if isinstance(answer, Raw) else json.dumps(
                {"jsonrpc": "2.0", "id": request["id"], "result": answer}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if getattr(answer, "encoding", None):
                self.send_header("Content-Encoding", answer.encoding)
            if not getattr(answer, "chunks", 0):
                self.send_header("Content-Length", str(getattr(answer, "declared", None) or len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_header("Connection", "close")
            self.end_headers()  # no length: the body runs until the client stops reading
            try:
                for _ in range(answer.chunks):
                    self.wfile.write(answer)
                    if answer.delay:
                        self.wfile.flush()
                        time.sleep(answer.delay)
            except OSError:
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def show(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    return run_cli(["--home", str(tmp_path / "home"), "show", "1", "--rpc", url, *extra], env=env, cwd=tmp_path,
                   timeout=60)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert (done.returncode, len(lines), done.stdout) == (1, 1, ""), done.stderr
    assert lines[0].startswith("error: ") and "internal error" not in lines[0] and "Traceback" not in done.stderr
    return lines[0]


GARBAGE = {
    "html": Raw(b"<html><body>502 Bad Gateway</body></html>"),
    "empty": Raw(b""),
    "not-utf8": Raw(b"\xff\xfe{}"),
    "list": Raw(b'[{"jsonrpc": "2.0", "id": 1, "result": "0x1"}]'),
    "string": Raw(b'"0x1"'),
    "neither-result-nor-error": Raw(b'{"jsonrpc": "2.0", "id": 1}'),
    "bad-hex": Raw(b'{"jsonrpc": "2.0", "id": 1, "result": "0xzz"}'),
    "no-0x": Raw(b'{"jsonrpc": "2.0", "id": 1, "result": "7a69"}'),
    "hex-with-underscore": Raw(b'{"jsonrpc": "2.0", "id": 1, "result": "0x7_a69"}'),
    "number": Raw(b'{"jsonrpc": "2.0", "id": 1, "result": 31337}'),
    "null": Raw(b'{"jsonrpc": "2.0", "id": 1, "result": null}'),
    "deep": Raw(b'{"jsonrpc": "2.0", "id": 1, "result": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    # the length a node declares is believed before the body is read
    "declared-too-large": raw(b'{"jsonrpc": "2.0", "id": 1, "result": "0x1"}', declared=MAX_RESPONSE_BYTES + 1),
}
EXPECTED = {"html": "not valid json", "empty": "not valid json", "not-utf8": "not utf-8",
            "list": "a json list, not a json-rpc object", "string": "a json str, not a json-rpc object",
            "neither-result-nor-error": "neither a result nor an error",
            "bad-hex": "'0xzz' where a hex number was expected", "no-0x": "'7a69' where a hex number",
            "hex-with-underscore": "'0x7_a69' where a hex number", "number": "31337 where a hex number",
            "null": "none where a hex number", "deep": "nested deeper than the limit",
            "declared-too-large": f"over the limit of {MAX_RESPONSE_BYTES}"}


#: the shapes also run through the command line (the others through Rpc.call only, to keep the time down)
THROUGH_THE_CLI = ["html", "list", "neither-result-nor-error", "bad-hex", "null", "deep", "declared-too-large"]


@pytest.mark.parametrize("shape", THROUGH_THE_CLI)
def test_show_against_a_garbage_node_is_one_named_line(shape: str, tmp_path: Path) -> None:
    with node({}, default=GARBAGE[shape]) as (url, asked):
        done = show(url, tmp_path)
    line = one_error_line(done)
    port = url.rsplit(":", 1)[1]
    assert f"the node at http://127.0.0.1:{port} answered eth_chainId with" in line  # the host and the method
    assert EXPECTED[shape] in line.lower()
    assert "check --rpc / PERU_COMPRAS_RPC" in line  # the next step
    assert asked == ["eth_chainId"]  # nothing else was asked, nothing sent


@pytest.mark.parametrize("shape", [shape for shape in GARBAGE if shape not in THROUGH_THE_CLI])
def test_rpc_call_names_every_other_garbage_shape(shape: str) -> None:
    with node({}, default=GARBAGE[shape]) as (url, asked):
        with pytest.raises(InvalidNodeAnswer) as raised:
            Rpc(url).call("eth_chainId")
    assert EXPECTED[shape] in str(raised.value).lower() and "check --rpc / PERU_COMPRAS_RPC" in str(raised.value)
    assert asked == ["eth_chainId"]  # an answer is not retried: the node was reached
    assert raised.value.exit_code == 1


def test_an_endless_body_is_cut_at_the_limit() -> None:
    """No Content-Length, 80 MiB of whitespace: reading stops past 64 MiB with a named error."""
    with node({}, default=raw(b" " * (1024 * 1024), chunks=80)) as (url, _):
        started = time.monotonic()
        with pytest.raises(InvalidNodeAnswer) as raised:
            Rpc(url, attempts=1).call("eth_blockNumber")
    assert f"over {MAX_RESPONSE_BYTES} bytes, the limit" in str(raised.value)
    assert time.monotonic() - started < 30


def test_a_gzip_bomb_is_cut_at_the_limit_and_bad_gzip_is_named() -> None:
    """75 KiB of gzip that inflates to 80 MiB: the limit applies to what it inflates to."""
    bomb = raw(gzip.compress(b" " * (80 * 1024 * 1024), compresslevel=9), encoding="gzip")
    with node({"eth_blockNumber": bomb, "eth_chainId": raw(b"not gzip at all", encoding="gzip")}) as (url, _):
        with pytest.raises(InvalidNodeAnswer) as raised:
            Rpc(url, attempts=1).call("eth_blockNumber")
        assert f"over {MAX_RESPONSE_BYTES} bytes, the limit" in str(raised.value)
        with pytest.raises(InvalidNodeAnswer) as broken:
            Rpc(url, attempts=1).call("eth_chainId")
        assert "a body that does not decompress" in str(broken.value)


def test_a_body_that_trickles_in_is_bounded_by_the_timeout() -> None:
    """One byte every 0.2 s (each receive well within the timeout) for 20 s: given up after about 1 s."""
    with node({}, default=raw(b" ", chunks=100, delay=0.2)) as (url, asked):
        started = time.monotonic()
        with pytest.raises(NodeUnavailable) as raised:
            Rpc(url, timeout=1.0, attempts=2).call("eth_blockNumber")
        elapsed = time.monotonic() - started
    assert elapsed < 8 and len(asked) == 2  # both attempts gave up on time
    assert f"cannot reach the node at {url}" in str(raised.value) and raised.value.exit_code == 3


def registered_state(status: int = 1) -> str:
    return "0x" + abi_encode(["(bytes32,uint8,uint64,uint256,uint256)"], [(b"\x01" * 32, status, 1, 0, 0)]).hex()


def a_log(**changes: Any) -> dict[str, Any]:
    log = {"address": REGISTRY, "transactionHash": TX_HASH, "blockHash": WORD, "blockNumber": "0x5", "data": "0x",
           "topics": [TRANSFER, WORD, "0x" + "00" * 12 + "cd" * 20, "0x" + "00" * 31 + "01"], "logIndex": "0x0"}
    log.update(changes)
    return log


def registry_node(**script: Any) -> dict[str, Any]:
    """A node that knows the registry at REGISTRY with token 1 registered, changed by `script`."""
    good = {"eth_chainId": "0x7a69", "eth_getCode": "0x6080", "eth_call": registered_state(),
            "eth_getLogs": [a_log()], "eth_getTransactionByHash": {"hash": TX_HASH, "input": "0x" + REGISTER.hex()}}
    good.update(script)
    return good


CLIENT_GARBAGE = {
    "state-too-short": ({"eth_call": "0x1234"}, "eth_call with 2 bytes that do not decode"),
    "state-unknown-status": ({"eth_call": registered_state(9)}, "eth_call with order status 9"),
    "call-bad-hex": ({"eth_call": "0x12z4"}, "eth_call with '0x12z4' where hex data"),
    "logs-not-a-list": ({"eth_getLogs": {"logs": []}}, "eth_getlogs with {'logs': []} where a list"),
    "log-not-an-object": ({"eth_getLogs": ["0x00"]}, "eth_getlogs with '0x00' where an object with transactionhash"),
    "log-block-number": ({"eth_getLogs": [a_log(blockNumber="0xzz")]}, "blocknumber '0xzz' where a hex number"),
    "log-hash": ({"eth_getLogs": [a_log(transactionHash=17)]}, "transactionhash 17 where hex data"),
    "log-topics": ({"eth_getLogs": [a_log(topics=["0x1"])]}, "topics ['0x1'] where 4 32-byte hex words"),
    "tx-input": ({"eth_getTransactionByHash": {"input": "0xzz"}}, "eth_gettransactionbyhash with input '0xzz'"),
    "tx-missing": ({"eth_getTransactionByHash": None}, "none where an object with input was expected"),
}


@pytest.mark.parametrize("case", ["log-block-number", "tx-input"])
def test_show_names_a_malformed_value_in_a_well_formed_answer(case: str, tmp_path: Path) -> None:
    changes, expected = CLIENT_GARBAGE[case]
    with node(registry_node(**changes)) as (url, _):
        line = one_error_line(show(url, tmp_path, "--registry", REGISTRY))
    assert expected in line.lower()
    assert "the node at http://127.0.0.1:" in line and "check --rpc / PERU_COMPRAS_RPC" in line


@pytest.mark.parametrize("case", list(CLIENT_GARBAGE))
def test_the_client_names_every_malformed_value(case: str) -> None:
    changes, expected = CLIENT_GARBAGE[case]
    with node(registry_node(**changes)) as (url, _):
        with pytest.raises(InvalidNodeAnswer) as raised:
            Registry(Rpc(url), REGISTRY).read(1)
    assert expected in str(raised.value).lower()


def test_the_scripted_node_itself_reads_back_to_the_record_search() -> None:
    """The good script passes every check above: the failure it gives is the registry's own (no entry in
    the calldata), so each garbage case above fails on its garbage alone."""
    with node(registry_node()) as (url, _):
        with pytest.raises(PeruComprasError) as raised:
            Registry(Rpc(url), REGISTRY).read(1)
    assert "its record was not found in the registering transaction" in str(raised.value)


def test_error_answers_of_odd_shapes_are_rpc_errors_and_null_results_pass() -> None:
    script = {"eth_getTransactionReceipt": None,
              "eth_sendRawTransaction": Raw(b'{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":[1]}}'),
              "eth_estimateGas": Raw(b'{"jsonrpc":"2.0","id":1,"error":"nope"}')}
    with node(script) as (url, _):
        rpc = Rpc(url, attempts=1)
        assert rpc.call("eth_getTransactionReceipt", [TX_HASH]) is None  # "not mined yet" is not garbage
        with pytest.raises(RpcError) as odd_code:
            rpc.call("eth_sendRawTransaction", ["0x00"])
        assert (odd_code.value.code, odd_code.value.message) == (0, "[1]")
        with pytest.raises(RpcError) as plain:
            rpc.call("eth_estimateGas", [{}])
        assert plain.value.message == "nope"


def test_messages_name_the_host_not_the_url_with_its_key() -> None:
    with node({}, default=Raw(b"nope")) as (url, _):
        with pytest.raises(InvalidNodeAnswer) as raised:
            Rpc(url.replace("http://", "http://user:secret@") + "/v1/KEY123?token=abc", attempts=1).call("eth_chainId")
    assert f"the node at {url} answered eth_chainId" in str(raised.value)
    assert not any(part in str(raised.value) for part in ("secret", "KEY123", "abc", "user"))


def test_requests_are_json_rpc_with_the_access_token() -> None:
    """What Rpc sends (it replaced web3's provider): one JSON-RPC 2.0 request, params as given (bytes as 0x
    hex), and the hosted node's Authorization header."""
    with node({"eth_getBalance": "0x10"}) as (url, asked):
        rpc = Rpc(url, headers={"Authorization": "Bearer T0KEN"})
        assert rpc.call("eth_getBalance", [b"\x01\x02", "latest"]) == "0x10"
    ((request, headers),) = asked.requests
    assert {k: request[k] for k in ("jsonrpc", "method", "params")} == {
        "jsonrpc": "2.0", "method": "eth_getBalance", "params": ["0x0102", "latest"]}
    assert isinstance(request["id"], int)
    assert headers["Authorization"] == "Bearer T0KEN" and headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("case", ["html", "tx-input"])
def test_the_page_answers_a_garbage_node_with_a_gateway_error(case: str) -> None:
    """A visitor's read against a node answering garbage: a 502/503 JSON or HTML page, never a 500."""
    script = registry_node(**CLIENT_GARBAGE[case][0]) if case in CLIENT_GARBAGE else {}
    with node(script, default=GARBAGE.get(case, NOTHING)) as (url, _):
        app = create_app(lambda: Registry(Rpc(url, attempts=1), REGISTRY),
                         PageSettings(base_url="https://oc.example.pe", sync_interval=0))

        async def fetch() -> tuple[httpx.Response, httpx.Response]:
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                return (await http.get("/api/orders/0x" + "00" * 31 + "01"),
                        await http.get("/o/20131370998/OC-2026-000001"))

        api, page = asyncio.run(fetch())
    assert api.status_code in (502, 503) and api.headers["content-type"].startswith("application/json")
    assert set(api.json()) >= {"error"}
    assert page.status_code in (502, 503) and page.headers["content-type"].startswith("text/html")
    assert "Traceback" not in api.text + page.text


class _Climbing(Rpc):
    """A node whose block number climbs by one each time it is asked, and whose status-event logs are `logs`."""

    def __init__(self, logs: list[Any]) -> None:
        super().__init__("http://127.0.0.1:9", attempts=1)
        self.logs, self.height = logs, 10

    def call(self, method: str, params: list[Any] | None = None, *, retry: bool = True) -> Any:
        if method == "eth_chainId":
            return "0x7a69"
        if method == "eth_blockNumber":
            self.height += 1
            return hex(self.height)
        assert method == "eth_getLogs", method
        return self.logs


@pytest.mark.parametrize("logs", [
    [{"topics": ["0x" + "ab" * 32, "0xzz"]}],  # a token id that is not hex
    [{"topics": ["0x" + "ab" * 32, None]}],
    [{"topics": "0x12"}],
    ["not a log"],
    [{"topics": []}],
    [{"topics": None}],
    [{"blockHash": "0x12"}],
])
def test_the_pages_status_feed_takes_garbage_logs_as_the_nodes_invalid_answer(logs: list[Any]) -> None:
    """The page follows annulments and supersessions with eth_getLogs each few seconds: a log whose topics are
    not words is the node's invalid answer (the page then says 502, "could not be read"), not a ValueError
    (a 500). A well-formed feed still goes through."""
    from peru_compras.web.chainview import ChainView

    def view_of(answers: list[Any]) -> ChainView:
        registry = Registry(_Climbing(answers), REGISTRY)
        return ChainView(lambda: registry, sync_interval=0)

    async def two_syncs(view: ChainView) -> None:
        await view.sync()  # the first learns the height; the second asks for the logs since
        await view.sync()

    with pytest.raises(InvalidNodeAnswer, match="answered eth_getLogs with"):
        asyncio.run(two_syncs(view_of([{**a_log(), **log} if isinstance(log, dict) else log for log in logs])))
    good = view_of([a_log(topics=["0x" + "ab" * 32, "0x" + "00" * 31 + "01", "0x" + "00" * 31 + "02"])])
    asyncio.run(two_syncs(good))
    assert good.block == 12


def test_mined_is_the_receipt_now_or_none_and_a_garbage_answer_is_named() -> None:
    """Transactor.mined (the batch settles what is mined while its workers prepare): the receipt the node has,
    None when it has none yet or cannot be reached (the wait for it says why later), and a garbage answer
    the same named error as everywhere else."""
    from peru_compras.chain.keys import Signer
    from peru_compras.chain.networks import network
    from peru_compras.chain.transactions import Transactor

    signer = Signer(bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"))
    receipt = {"transactionHash": TX_HASH, "status": "0x1", "blockNumber": "0x2", "gasUsed": "0x5208", "logs": []}
    with node({"eth_getTransactionReceipt": receipt}) as (url, asked):
        assert Transactor(Rpc(url), signer, network("local")).mined(TX_HASH) == receipt
        assert asked == ["eth_getTransactionReceipt"]  # once: no wait, no retry
    with node({"eth_getTransactionReceipt": None}) as (url, asked):
        assert Transactor(Rpc(url), signer, network("local")).mined(TX_HASH) is None
    assert Transactor(Rpc(f"http://127.0.0.1:{free_port()}"), signer, network("local")).mined(TX_HASH) is None
    with node({"eth_getTransactionReceipt": GARBAGE["html"]}) as (url, asked), pytest.raises(InvalidNodeAnswer):
        Transactor(Rpc(url), signer, network("local")).mined(TX_HASH)
