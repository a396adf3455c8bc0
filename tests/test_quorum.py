"""Never green on a guess (issue 17 item 5): reads through several nodes, against the session's Anvil directly,
through an honest proxy, through a proxy that lies about one field, and through a node that is down."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from peru_compras.chain.client import Registry
from peru_compras.chain.quorum import NotChecked, QuorumRpc, read_rpc
from peru_compras.chain.rpc import Rpc, host_of
from peru_compras.hashing import sha256
from peru_compras.order import parse_order
from peru_compras.pdf import stamp_pdf
from peru_compras.render import render_order
from peru_compras.verify import verify_document

from .conftest import reference_order
from .rpc_proxy import RpcProxy

Lie = Callable[[str, Any], Any]  # (method, result) -> the result the proxy sends


class Proxy(RpcProxy):
    """A JSON-RPC node in front of Anvil that changes what `lie` changes (nothing: an honest second node)."""

    def __init__(self, upstream: str, lie: Lie | None = None) -> None:
        self.lie = lie

        def answer(request: dict[str, Any], forward: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            reply = forward()
            if self.lie is not None and "result" in reply:
                reply["result"] = self.lie(request["method"], reply["result"])
            return reply

        super().__init__(upstream, answer)


@pytest.fixture(scope="module")
def proxy(anvil: Any) -> Iterator[Proxy]:
    made = Proxy(anvil.url)
    yield made
    made.close()


@pytest.fixture
def honest(proxy: Proxy) -> Proxy:
    proxy.lie = None
    return proxy


@pytest.fixture(scope="module")
def dead_url() -> str:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def stamped(registry: Registry) -> tuple[bytes, int]:
    order = parse_order(reference_order(order_number="OC-QUORUM-1"))
    document = stamp_pdf(render_order(order), "https://oc.example.pe" + order.verify_path, order=order)
    registry.register(order, sha256(document))
    return document, order.token_id


def reader(registry: Registry, *urls: str, quorum: int | None = None) -> Registry:
    return Registry(read_rpc(list(urls), quorum=quorum), registry.address, from_block=registry.from_block)


def test_nodes_that_agree(registry: Registry, anvil: Any, honest: Proxy, stamped: tuple[bytes, int]) -> None:
    document, token_id = stamped
    both = reader(registry, anvil.url, honest.url)
    assert isinstance(both.rpc, QuorumRpc) and both.rpc.quorum == 2
    assert verify_document(both, document, token_id=token_id).status == "authentic"
    assert verify_document(both, document + b"%", token_id=token_id).status == "altered"


def _flip_record(method: str, result: Any) -> Any:
    """The registering transaction's calldata with one byte of the record changed."""
    if method == "eth_getTransactionByHash" and isinstance(result, dict):
        data = result["input"]
        result["input"] = data[:-2] + ("00" if data[-2:] != "00" else "01")
    return result


def _annulled(method: str, result: Any) -> Any:
    """orderOf's status word says annulled (2) where the chain says valid (1)."""
    if method == "eth_call" and isinstance(result, str) and len(result) == 2 + 5 * 64:
        word = 2 + 64
        return result[:word + 62] + "02" + result[word + 64:]
    return result


@pytest.mark.parametrize(("lie", "field"), [(_flip_record, "input"), (_annulled, "the answer")])
def test_a_node_that_lies(registry: Registry, anvil: Any, proxy: Proxy, stamped: tuple[bytes, int], lie: Lie,
                          field: str) -> None:
    document, token_id = stamped
    proxy.lie = lie
    for quorum in (None, 1):  # a node that contradicts is never outvoted
        with pytest.raises(NotChecked) as caught:
            verify_document(reader(registry, anvil.url, proxy.url, quorum=quorum), document, token_id=token_id)
        assert caught.value.exit_code == 3
        assert caught.value.node == host_of(proxy.url)  # the one that contradicts the first node
        assert field in str(caught.value) and "could not be checked" in str(caught.value)
    proxy.lie = None


def test_a_node_that_is_down(registry: Registry, anvil: Any, dead_url: str, stamped: tuple[bytes, int]) -> None:
    document, token_id = stamped
    with pytest.raises(NotChecked) as caught:
        verify_document(reader(registry, anvil.url, dead_url), document, token_id=token_id)
    assert caught.value.node == host_of(dead_url)
    assert "cannot be reached" in str(caught.value) and "2 must agree" in str(caught.value)
    # a quorum of 1: the node that answers is enough when nothing contradicts it
    assert verify_document(reader(registry, anvil.url, dead_url, quorum=1), document,
                           token_id=token_id).status == "authentic"


def test_nodes_at_different_heights_read_one_block(anvil: Any, honest: Proxy) -> None:
    both = read_rpc([anvil.url, honest.url])
    assert isinstance(both, QuorumRpc)
    block = int(both.call("eth_blockNumber"), 16)
    Rpc(anvil.url).call("evm_mine")  # one node moves on: the pinned block stays for the command's reads
    assert int(both.call("eth_blockNumber"), 16) == block
    honest.seen.clear()
    both.call("eth_getBalance", ["0x" + "00" * 20, "latest"])
    both.call("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "topics": []}])
    sent = {request["method"]: request["params"] for request in honest.seen}
    assert sent["eth_getBalance"][1] == hex(block) and sent["eth_getLogs"][0]["toBlock"] == hex(block)


def test_one_node_is_a_plain_rpc(anvil: Any) -> None:
    only = read_rpc([anvil.url, anvil.url])
    assert not isinstance(only, QuorumRpc) and only.url == anvil.url


def test_verify_command_with_several_nodes(cli: Any, anvil: Any, proxy: Proxy, dead_url: str,
                                           tmp_path: Any) -> None:
    """`verify` with PERU_COMPRAS_RPC listing two nodes: authentic when they agree; one line "could not be
    checked" naming the node, exit 3, when one lies or is down — never "authentic"."""
    from .conftest import write_json

    assert cli("deploy").code == 0
    record = reference_order(order_number="OC-QUORUM-CLI")
    order_file = write_json(tmp_path / "o.json", record)
    source = tmp_path / "o.pdf"
    source.write_bytes(render_order(parse_order(record)))
    out = tmp_path / "sellada.pdf"
    assert cli("register", str(order_file), str(source), "--out", str(out)).code == 0
    both = {"PERU_COMPRAS_RPC": f"{anvil.url},{proxy.url}"}
    proxy.lie = None
    agreed = cli("verify", str(out), "--json", env=both)
    assert agreed.code == 0 and agreed.json()["status"] == "authentic", agreed.stderr
    proxy.lie = _flip_record
    lied = cli("verify", str(out), "--json", env=both)
    proxy.lie = None
    assert lied.code == 3 and lied.stdout == ""
    assert lied.stderr.startswith("error: could not be checked:") and host_of(proxy.url) in lied.stderr
    down = {"PERU_COMPRAS_RPC": f"{anvil.url},{dead_url}"}
    dead = cli("verify", str(out), "--json", env=down)
    assert dead.code == 3 and "cannot be reached" in dead.stderr and host_of(dead_url) in dead.stderr
    one = cli("verify", str(out), "--json", env={**down, "PERU_COMPRAS_RPC_QUORUM": "1"})
    assert one.code == 0 and one.json()["status"] == "authentic", one.stderr


def test_the_same_revert_from_every_node_is_the_revert(registry: Registry, anvil: Any, honest: Proxy) -> None:
    """A call that reverts on both nodes is that revert (RpcError with its data), not "could not be checked"."""
    from peru_compras.chain.contract import selector
    from peru_compras.errors import RpcError

    both = read_rpc([anvil.url, honest.url])
    data = "0x" + (selector("ownerOf(uint256)") + (12345).to_bytes(32, "big")).hex()
    with pytest.raises(RpcError) as caught:
        both.call("eth_call", [{"to": registry.address, "data": data}, "latest"])
    assert not isinstance(caught.value, NotChecked) and caught.value.revert_data
