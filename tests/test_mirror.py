"""`peru-compras mirror`: the registry in SQLite from chain data alone, on a real Anvil (and through both
LACNet models' emulated hubs), checked row by row against what `show` reads for every token; a run killed
with SIGKILL at random moments, resumed to the same file; a node that refuses wide log ranges or stalls on
them (a small proxy); bad input as one line."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from peru_compras.chain.client import Registry
from peru_compras.chain.networks import network
from peru_compras.chain.node import free_port
from peru_compras.chain.rpc import Rpc
from peru_compras.chain.transactions import Transactor
from peru_compras.errors import ChainRefused, NodeUnavailable
from peru_compras.hashing import sha256
from peru_compras.mirror import mirror
from peru_compras.order import parse_order

from .conftest import CLI, Runner, funded_account, reference_order
from .rpc_proxy import RpcProxy

_count = iter(range(10**7))


def orders(count: int, tag: str = "M") -> list[tuple[Any, bytes]]:
    """`count` distinct orders with distinct document hashes."""
    out = []
    for _ in range(count):
        number = f"OC-{tag}-{next(_count):06d}"
        out.append((parse_order(reference_order(order_number=number)), sha256(number.encode())))
    return out


def populate(registry: Registry, blocks: int, per_block: int, tag: str = "M") -> list[Any]:
    """`blocks` registerBatch transactions of `per_block` orders each (one block each on Anvil)."""
    registered = []
    for _ in range(blocks):
        registered += registry.register_many(orders(per_block, tag))
    return registered


def rows(path: Path, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return list(db.execute(sql, args))


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows in key order (the FTS shadow tables and the cursor's time left out)."""
    with sqlite3.connect(path) as db:
        return {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in ("orders", "items", "parties", "status_changes", "registrars",
                              "supplier_summary", "entity_summary", "month_summary")}


def assert_same_as_show(path: Path, registry: Registry) -> None:
    """Every row of `orders` says what Registry.read (the `show` command) says for its token, and every
    registered token has its row."""
    found = rows(path, "SELECT * FROM orders")
    assert len(found) == registry.total_supply()
    for row in found:
        record = registry.read(int(row["token_id"], 16))
        order = record.order
        assert (row["order_key"], row["order_number"], row["issued_on"], row["total_amount"], row["currency"]) == (
            order.key, order.order_number, order.issued_on, order.total_amount, order.currency)
        for role, party in (("entity", order.entity), ("buyer", order.buyer), ("supplier", order.supplier)):
            assert (row[f"{role}_id"], row[f"{role}_name"]) == (f"{party.scheme}:{party.id}", party.name)
        assert (row["delivery_place"], row["delivery_term_days"], row["delivery_deadline"], row["document_url"]) == (
            order.delivery.place, order.delivery.term_days, order.delivery.deadline, order.document_url)
        assert row["notes"] == (json.dumps(list(order.notes), ensure_ascii=False) if order.notes else None)
        listed = rows(path, "SELECT description, quantity, unit, unit_price, cubso FROM items WHERE token_id = ? "
                      "ORDER BY position", (row["token_id"],))
        assert [tuple(item) for item in listed] == [(i.description, i.quantity, i.unit, i.unit_price, i.cubso)
                                                   for i in order.items]
        assert row["status"] == record.state.status
        assert row["annul_reason"] == record.annul_reason
        assert row["registrar"] == record.registrar
        assert (row["block_number"], row["tx_hash"]) == (record.block_number, record.tx_hash)
        assert row["published_url"] == record.document_url
        assert row["document_sha256"] == record.state.document_hash.hex()
        assert row["replaced_by"] == (f"0x{record.state.replaced_by:064x}" if record.state.replaced_by else None)
        assert row["replaces"] == (f"0x{record.state.replaces:064x}" if record.state.replaces else None)
        assert row["items_count"] == len(record.order.items) and row["record_error"] is None
    items = rows(path, "SELECT count(*) AS n FROM items")[0]["n"]
    assert items == sum(r["items_count"] for r in found)
    assert_summaries_match(path)


def assert_summaries_match(path: Path) -> None:
    """The summary tables the canned queries read say what a GROUP BY over every order says."""
    counts = "count(*), sum(status = 'valid'), sum(status = 'annulled'), sum(status = 'superseded')"
    for summary, direct in (
            ("SELECT * FROM supplier_summary", f"SELECT supplier_id, currency, {counts}, sum(total_value) FROM orders "
             "WHERE supplier_id IS NOT NULL GROUP BY supplier_id, currency"),
            ("SELECT * FROM entity_summary", f"SELECT entity_id, {counts} FROM orders WHERE entity_id IS NOT NULL "
             "GROUP BY entity_id"),
            ("SELECT * FROM month_summary", "SELECT substr(issued_on, 1, 7), currency, count(*), sum(total_value) "
             "FROM orders WHERE issued_on IS NOT NULL GROUP BY 1, 2")):
        assert sorted(map(tuple, rows(path, summary))) == sorted(map(tuple, rows(path, direct)))


def fresh_registry(rpc: Rpc, account: LocalAccount) -> Registry:
    deployed, _ = Registry.deploy(Transactor(rpc, account, network("local")),
                                  document_base_uri="https://oc.example.pe/d/")
    return deployed


def reader(registry: Registry, url: str | None = None, **rpc_options: Any) -> Registry:
    """The same registry through another Rpc, with no signer and no remembered deployment block."""
    return Registry(Rpc(url or registry.rpc.url, **rpc_options), registry.address)


# -- what is mirrored -------------------------------------------------------------------------------------


def test_every_table_matches_the_chain_and_the_next_run_adds_only_the_new(cli: Runner, rpc: Rpc,
                                                                         tmp_path: Path) -> None:
    admin = funded_account(rpc)
    registry = fresh_registry(rpc, admin)
    first = populate(registry, 3, 4)
    single = orders(1)[0]
    registry.register(*single)
    registry.annul(first[0].token_id, "Monto duplicado por error de digitación")
    replacement = orders(1, "R")[0]
    registry.supersede(first[1].token_id, *replacement)
    other = Account.create().address
    registry.grant("registrar", other)
    registry.revoke("registrar", other)
    out = tmp_path / "registro.sqlite"

    result = cli("mirror", "--registry", registry.address, "--out", str(out), "--json")
    assert result.code == 0, result.stderr
    summary = result.json()
    head = int(rpc.call("eth_blockNumber"), 16)
    assert summary["orders"] == summary["added"] == 14 and summary["block"] == head
    assert summary["status_changes"] == 2 and summary["unreadable"] == 0
    assert "mirroring blocks" in result.stderr  # the progress bar, on stderr only
    assert_same_as_show(out, reader(registry))

    changes = rows(out, "SELECT * FROM status_changes ORDER BY block_number")
    assert [(c["change"], c["reason"], c["replaced_by"], c["account"]) for c in changes] == [
        ("annulled", "Monto duplicado por error de digitación", None, admin.address),
        ("superseded", None, f"0x{replacement[0].token_id:064x}", admin.address)]
    roles = rows(out, "SELECT role, account, action FROM registrars ORDER BY block_number, log_index")
    assert [tuple(r) for r in roles] == [("admin", admin.address, "granted"), ("registrar", admin.address, "granted"),
                                         ("annuller", admin.address, "granted"), ("registrar", other, "granted"),
                                         ("registrar", other, "revoked")]
    entity = rows(out, "SELECT name FROM parties WHERE id = 'PE-RUC:20131370998'")
    assert [r["name"] for r in entity] == ["Hospital Regional de Piura"]  # the entity's name, not the buyer's
    # full-text search, accents folded: "logistica" finds "Logística", "nitrilo" an item's description
    assert len(rows(out, "SELECT rowid FROM orders_fts WHERE orders_fts MATCH 'logistica'")) == 14
    assert len(rows(out, "SELECT rowid FROM items_fts WHERE items_fts MATCH 'nitrilo'")) == 14
    plan = " ".join(r[3] for r in rows(out, "EXPLAIN QUERY PLAN SELECT * FROM orders WHERE supplier_id = ?",
                                       ("x",)))
    assert "idx_orders_supplier_id" in plan

    before = dump(out)
    more = populate(registry, 2, 3, "N")
    registry.annul(single[0].token_id, "Proveedor inhabilitado")
    again = cli("mirror", "--registry", registry.address, "--out", str(out), "--json")
    assert again.code == 0, again.stderr
    assert (again.json()["added"], again.json()["orders"], again.json()["status_changes"]) == (6, 20, 1)
    after = dump(out)
    assert set(before["items"]) <= set(after["items"]) and len(after["items"]) == len(before["items"]) + 18
    assert_same_as_show(out, reader(registry))
    assert {r["token_id"] for r in rows(out, "SELECT token_id FROM orders WHERE order_number LIKE 'OC-N-%'")} == {
        f"0x{r.token_id:064x}" for r in more}

    unchanged = cli("mirror", "--registry", registry.address, "--out", str(out), "--json")
    assert unchanged.code == 0 and unchanged.json()["added"] == 0 and dump(out) == after


def test_the_store_url_follows_the_registry_and_a_record_of_bad_bytes_is_named_on_its_row(
        rpc: Rpc, tmp_path: Path) -> None:
    from eth_abi.abi import encode as abi_encode

    from peru_compras.chain.client import REGISTER
    from peru_compras.chain.contract import selector

    admin = funded_account(rpc)
    registry = fresh_registry(rpc, admin)
    good = orders(1)[0]
    registry.register(*good)
    key = b"20131370998/OC-BAD-1"
    bad_entry = b"\x07" * 32 + bytes([len(key)]) + key + b"\x01" + b"not deflate"
    Transactor(rpc, admin, network("local")).transact(registry.address, REGISTER + abi_encode(["bytes"], [bad_entry]),
                                                      action="register bad bytes")
    out = tmp_path / "m.sqlite"
    summary = mirror(reader(registry), out)
    assert (summary.orders, summary.unreadable) == (2, 1)
    bad = rows(out, "SELECT * FROM orders WHERE record_error IS NOT NULL")
    assert len(bad) == 1 and "DEFLATE" in bad[0]["record_error"] and bad[0]["document_sha256"] == "07" * 32
    assert bad[0]["registrar"] == admin.address

    data = selector("setDocumentBaseURI(string)") + abi_encode(["string"], ["https://docs.example.pe/d/"])
    Transactor(rpc, admin, network("local")).transact(registry.address, data, action="set the base URI")
    mirror(reader(registry), out)
    (row,) = rows(out, "SELECT published_url, document_hashlink FROM orders WHERE record_error IS NULL")
    assert row["published_url"] == "https://docs.example.pe/d/" + row["document_hashlink"]
    assert row["published_url"] == reader(registry).read(good[0].token_id).document_url


# -- both LACNet models ---------------------------------------------------------------------------------


def test_orders_registered_through_the_lacnet_relay_hub_are_mirrored(lacnet_emulator: Any, tmp_path: Path) -> None:
    emu = lacnet_emulator
    signer: LocalAccount = Account.create()
    emu.permit(signer.address)
    relay = Transactor(Rpc(emu.url), signer, replace(network("lacnet-protestnet"), trusted_forwarder=emu.forwarder),
                       node_address=emu.node_address)
    registry, _ = Registry.deploy(relay, document_base_uri="https://oc.example.pe/d/")
    registry.register_many(orders(3, "RL"))
    first = orders(1, "RL")[0]
    registry.register(*first)
    registry.annul(first[0].token_id, "Anulada por la entidad")
    tx = Rpc(emu.url).call("eth_getTransactionByHash", [rows_tx(registry, first[0].token_id)])
    assert tx["to"].lower() != registry.address.lower()  # the node sent a hub call, not ours
    out = tmp_path / "relay.sqlite"
    summary = mirror(reader(registry, emu.url), out)
    assert (summary.orders, summary.unreadable, summary.status_changes) == (4, 0, 1)
    assert_same_as_show(out, reader(registry, emu.url))


def rows_tx(registry: Registry, token_id: int) -> str:
    return reader(registry).read(token_id).tx_hash


def test_orders_registered_through_the_erc2771_metatx_hub_are_mirrored(tmp_path: Path) -> None:
    from peru_compras.chain.metatx import MetaTxTransactor

    from .lacnet.metatx import MetaTxEmulator

    with MetaTxEmulator() as emu:
        signer: LocalAccount = Account.create()
        profile = replace(network("lacnet-protestnet"), metatx_hub=emu.hub)
        transactor = MetaTxTransactor(Rpc(emu.url), signer, emu.new_relayer(), profile)
        registry, _ = Registry.deploy(transactor, document_base_uri="https://oc.example.pe/d/")
        registry.register_many(orders(2, "MT"))
        old = orders(1, "MT")[0]
        registry.register(*old)
        registry.supersede(old[0].token_id, *orders(1, "MT")[0])
        tx = Rpc(emu.url).call("eth_getTransactionByHash", [rows_tx(registry, old[0].token_id)])
        assert tx["to"].lower() == emu.hub.lower()  # the relayer's execute() to the hub
        out = tmp_path / "metatx.sqlite"
        summary = mirror(reader(registry, emu.url), out)
        assert (summary.orders, summary.unreadable, summary.status_changes) == (4, 0, 1)
        assert_same_as_show(out, reader(registry, emu.url))
        (row,) = rows(out, "SELECT registrar FROM orders WHERE token_id = ?", (f"0x{old[0].token_id:064x}",))
        assert row["registrar"] == signer.address  # the Forward's signer, not the relayer


# -- kill -9 at any moment --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_killed_at_random_moments_resumes_with_nothing_lost_or_doubled(cli: Runner, rpc: Rpc,
                                                                            tmp_path: Path) -> None:
    registry = fresh_registry(rpc, funded_account(rpc))
    registered = populate(registry, 150, 2, "K")
    blocks = {r.token_id: r.block_number for r in registered}
    out = tmp_path / "killed.sqlite"
    args = [*CLI, "mirror", "--registry", registry.address, "--out", str(out), "--max-blocks", "1", "--json"]
    chance = random.Random(18)
    kills = 0

    def cursor() -> int:
        try:
            return int(rows(out, "SELECT last_block FROM mirror")[0]["last_block"])
        except (sqlite3.Error, IndexError):
            return -1

    for attempt in range(12):
        proc = subprocess.Popen(args, cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        if attempt == 0:
            time.sleep(chance.uniform(0.3, 1.2))  # while starting, finding the deployment, creating the schema
        else:  # some ranges further on, then at a random moment inside the next one
            target = cursor() + chance.randint(2, 12)
            while proc.poll() is None and cursor() < target:
                time.sleep(0.002)
            time.sleep(chance.uniform(0, 0.015))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
        if out.exists() and rows(out, "SELECT name FROM sqlite_master WHERE name = 'mirror'"):
            assert rows(out, "PRAGMA integrity_check")[0][0] == "ok"
            found = {int(r["token_id"], 16) for r in rows(out, "SELECT token_id FROM orders")}
            # exactly the orders of the blocks up to the cursor: no range half-written
            assert found == {token for token, block in blocks.items() if block <= cursor()}
    assert kills >= 8
    final = subprocess.run(args, cwd=cli.cwd, env=cli.env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["orders"] == 300
    assert json.loads(final.stdout)["added"] < 300  # the killed runs had written part of it
    whole = tmp_path / "whole.sqlite"
    mirror(reader(registry), whole)
    assert dump(out) == dump(whole)


# -- a node that pages its logs -------------------------------------------------------------------------


class Proxy(RpcProxy):
    """A JSON-RPC proxy in front of a node; `rule(request)` may answer instead (a dict) or return None."""

    def __init__(self, upstream: str, rule: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
        self.asked: list[tuple[int, int, bool]] = []  # (fromBlock, toBlock, refused) of every eth_getLogs

        def answer(request: dict[str, Any], forward: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            given = rule(request)
            if request["method"] == "eth_getLogs":
                query = request["params"][0]
                self.asked.append((int(query["fromBlock"], 16), int(query["toBlock"], 16), given is not None))
            return {"jsonrpc": "2.0", "id": request["id"], **given} if given else forward()

        super().__init__(upstream, answer)


@pytest.fixture
def proxy_for(rpc: Rpc) -> Iterator[Callable[..., Proxy]]:
    made: list[Proxy] = []

    def make(rule: Callable[[dict[str, Any]], dict[str, Any] | None]) -> Proxy:
        made.append(Proxy(rpc.url, rule))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


def width(request: dict[str, Any]) -> int:
    query = request["params"][0]
    return int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1


def test_a_node_that_refuses_wide_log_ranges_gets_smaller_ones(cli: Runner, rpc: Rpc, tmp_path: Path,
                                                               proxy_for: Callable[..., Proxy]) -> None:
    registry = fresh_registry(rpc, funded_account(rpc))
    populate(registry, 12, 2, "P")

    def refuse(request: dict[str, Any]) -> dict[str, Any] | None:
        if request["method"] == "eth_getLogs" and width(request) > 3:
            return {"error": {"code": -32005, "message": "query exceeds max block range 3"}}
        return None

    proxy = proxy_for(refuse)
    out = tmp_path / "paged.sqlite"
    result = cli("mirror", "--rpc", proxy.url, "--registry", registry.address, "--out", str(out), "--json")
    assert result.code == 0, result.stderr
    assert any(refused for *_, refused in proxy.asked) and all(b - a < 3 for a, b, refused in proxy.asked
                                                               if not refused)
    served = sorted((a, b) for a, b, refused in proxy.asked if not refused)
    assert all(served[i][1] + 1 == served[i + 1][0] for i in range(len(served) - 1))  # no gap, no overlap
    direct = tmp_path / "direct.sqlite"
    mirror(reader(registry), direct)
    assert dump(out) == dump(direct) and result.json()["orders"] == 24


def test_a_node_that_stalls_on_wide_ranges_gets_smaller_ones(rpc: Rpc, tmp_path: Path,
                                                             proxy_for: Callable[..., Proxy]) -> None:
    registry = fresh_registry(rpc, funded_account(rpc))
    populate(registry, 6, 2, "S")

    def stall(request: dict[str, Any]) -> dict[str, Any] | None:
        if request["method"] == "eth_getLogs" and width(request) > 2:
            time.sleep(1.5)  # past the client's time-out; the node still answers other calls
        return None

    proxy = proxy_for(stall)
    out = tmp_path / "stalled.sqlite"
    summary = mirror(reader(registry, proxy.url, timeout=0.5, attempts=1), out)
    assert summary.orders == 12
    assert_same_as_show(out, reader(registry))


def test_a_node_that_refuses_even_one_block_is_one_line_and_writes_nothing(cli: Runner, rpc: Rpc, tmp_path: Path,
                                                                           proxy_for: Callable[..., Proxy]) -> None:
    registry = fresh_registry(rpc, funded_account(rpc))
    populate(registry, 2, 2, "Z")

    def refuse_all(request: dict[str, Any]) -> dict[str, Any] | None:
        if request["method"] == "eth_getLogs":
            return {"error": {"code": -32000, "message": "logs are disabled on this node"}}
        return None

    proxy = proxy_for(refuse_all)
    out = tmp_path / "none.sqlite"
    result = cli("mirror", "--rpc", proxy.url, "--registry", registry.address, "--out", str(out))
    assert result.code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "refuses eth_getLogs even for block" in errors[0]
    assert "logs are disabled on this node" in errors[0] and "Traceback" not in result.stderr
    assert rows(out, "SELECT count(*) AS n FROM orders")[0]["n"] == 0
    (state,) = rows(out, "SELECT from_block, last_block FROM mirror")
    assert state["last_block"] == state["from_block"] - 1  # the cursor did not move


def test_a_node_that_goes_away_is_one_line(rpc: Rpc, tmp_path: Path) -> None:
    registry = fresh_registry(rpc, funded_account(rpc))
    gone = Registry(Rpc(f"http://127.0.0.1:{free_port()}", attempts=1), registry.address)  # nothing listens
    with pytest.raises(NodeUnavailable) as caught:
        mirror(gone, tmp_path / "x.sqlite")
    assert "cannot reach the node" in str(caught.value)
    assert not (tmp_path / "x.sqlite").exists()


# -- bad input ----------------------------------------------------------------------------------------------


def test_bad_input_is_one_line_with_exit_2_and_leaves_files_alone(cli: Runner, rpc: Rpc, tmp_path: Path) -> None:
    registry = fresh_registry(rpc, funded_account(rpc))
    populate(registry, 1, 2, "B")
    nobody = "0x" + "12" * 20
    no_contract = cli("mirror", "--registry", nobody, "--out", str(tmp_path / "a.sqlite"))
    assert no_contract.code == 2 and "no contract at registry address" in no_contract.stderr
    assert not (tmp_path / "a.sqlite").exists()

    text = tmp_path / "notes.sqlite"
    text.write_bytes(b"these are my notes, not a database\n" * 100)
    not_sqlite = cli("mirror", "--registry", registry.address, "--out", str(text))
    assert not_sqlite.code == 2 and "is not an SQLite file" in not_sqlite.stderr
    assert text.read_bytes() == b"these are my notes, not a database\n" * 100

    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE mine (x)")
    foreign = cli("mirror", "--registry", registry.address, "--out", str(other))
    assert foreign.code == 2 and "not a peru-compras mirror" in foreign.stderr

    mine = tmp_path / "mine.sqlite"
    assert cli("mirror", "--registry", registry.address, "--out", str(mine)).code == 0
    second = fresh_registry(rpc, funded_account(rpc))
    wrong = cli("mirror", "--registry", second.address, "--out", str(mine))
    assert wrong.code == 2 and f"mirrors registry {registry.address}" in wrong.stderr
    for result in (no_contract, not_sqlite, foreign, wrong):
        assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
        assert "Traceback" not in result.stderr


def test_a_reorganisation_below_the_cursor_is_refused(rpc: Rpc, tmp_path: Path) -> None:
    registry = fresh_registry(rpc, funded_account(rpc))
    populate(registry, 1, 2, "O")
    out = tmp_path / "reorg.sqlite"
    mirror(reader(registry), out)
    with sqlite3.connect(out) as db:  # as if the node had another block there now
        db.execute("UPDATE mirror SET last_block_hash = ?", ["0x" + "ab" * 32])
    with pytest.raises(ChainRefused, match="reorganised below the mirror"):
        mirror(reader(registry), out)



# -- Datasette: the public explorer -------------------------------------------------------------------------


def test_datasette_serves_the_mirror_with_the_shipped_metadata_and_its_canned_queries(rpc: Rpc,
                                                                                      tmp_path: Path) -> None:
    from .conftest import ROOT

    registry = fresh_registry(rpc, funded_account(rpc))
    registered = populate(registry, 2, 3, "D")
    other = parse_order(reference_order(order_number="OC-D-OTRO", supplier={"name": "Servicios Generales Lima "
                                                                            "E.I.R.L.", "ruc": "20100070970"}))
    registry.register(other, sha256(b"otro"))
    registry.annul(registered[0].token_id, "Duplicada")
    out = tmp_path / "registro.sqlite"
    mirror(reader(registry), out)
    metadata = ROOT / "peru_compras" / "data" / "datasette-metadata.json"
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "datasette", "serve", str(out), "-m", str(metadata),
                               "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/-/versions.json", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "datasette did not start"
            time.sleep(0.2)
        answer = httpx.get(base + "/registro/ordenes_de_un_proveedor.json",
                           params={"ruc": "20608712411", "_shape": "array"}, timeout=10)
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert sorted(row["orden"] for row in found) == sorted(r.order.order_number for r in registered)
        assert {row["estado"] for row in found} == {"valid", "annulled"}
        assert all(row["proveedor"] == "Distribuidora Andina del Perú S.A.C." for row in found)
        grouped = httpx.get(base + "/registro/ordenes_por_proveedor.json", params={"_shape": "array"}).json()
        assert [(g["proveedor_id"], g["ordenes"], g["anuladas"]) for g in grouped] == [
            ("PE-RUC:20608712411", 6, 1), ("PE-RUC:20100070970", 1, 0)]
        annulled = httpx.get(base + "/registro/anulaciones_por_entidad.json", params={"_shape": "array"}).json()
        assert [(a["entidad_id"], a["anulaciones"], a["ordenes"]) for a in annulled] == [
            ("PE-RUC:20131370998", 1, 7)]
        months = httpx.get(base + "/registro/ordenes_por_mes.json", params={"_shape": "array"}).json()
        assert [(m["mes"], m["ordenes"]) for m in months] == [("2026-11", 7)]
        page = httpx.get(base + "/registro/ordenes_de_un_proveedor", params={"ruc": "20608712411"}).text
        assert "Todas las órdenes de un proveedor" in page
        table = httpx.get(base + "/registro/orders").text
        assert "Órdenes de compra" in table and "Número de orden de compra" in table
        search = httpx.get(base + "/registro/orders.json", params={"_search": "logistica", "_shape": "array"}).json()
        assert len(search) == 7  # full-text search through Datasette, accents folded
    finally:
        server.terminate()
        server.wait(timeout=20)
