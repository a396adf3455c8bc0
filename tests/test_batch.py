"""register-batch: manifests, refusals on their own line, and resuming after crashes without losing or
doubling an order. Real Anvil (the session's; one with a state file for the test that stops and restarts
it), real processes for the kills."""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import json
import os
import random
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pikepdf
import pytest
from eth_account import Account

from peru_compras.chain.client import ORDER_REGISTERED, Registry
from peru_compras.chain.node import LocalNode, set_balance
from peru_compras.chain.rpc import Rpc
from peru_compras.hashing import hashlink, sha256
from peru_compras.order import parse_order
from peru_compras.render import render_order
from peru_compras.store import LocalStore
from peru_compras.web.app import PageSettings, create_app

from .conftest import CLI, REFERENCE, run_cli

_BASE_PDF = render_order(parse_order(REFERENCE))


def make_orders(folder: Path, count: int, *, prefix: str = "OC-B") -> list[dict[str, object]]:
    """`count` copies of the reference record (different order numbers), each with its own small PDF."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        record = copy.deepcopy(REFERENCE)
        record["order_number"] = f"{prefix}-{index:06d}"
        with pikepdf.open(io.BytesIO(_BASE_PDF)) as pdf:
            pdf.docinfo["/Title"] = record["order_number"]
            buffer = io.BytesIO()
            pdf.save(buffer, deterministic_id=True)
        (folder / f"{index}.pdf").write_bytes(buffer.getvalue())
        record["pdf"] = f"{index}.pdf"
        rows.append(record)
    return rows


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


class Chain:
    """A node, a funded key and a deployed registry; the CLI environment to reach it. The node is the session's
    Anvil (`shared`, never stopped here), or with `shared=None` one of its own with a state file, for a test
    that stops and restarts it."""

    first_block = 0  #: transactions checked from this block on …
    only_from: str | None = None  #: … and only this sender's (on a shared node)

    def __init__(self, folder: Path, shared: LocalNode | None = None) -> None:
        self.state = folder / "chain-state.json"
        self.own_node = shared is None
        self.node = LocalNode(state=self.state).start() if shared is None else shared
        self.port = self.node.port
        self.rpc = Rpc(self.node.url)
        self.account = Account.create()
        set_balance(self.rpc, self.account.address, 10**24)
        if not self.own_node:
            self.first_block, self.only_from = int(self.rpc.call("eth_blockNumber"), 16), self.account.address
        self.home = folder / "home"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
        self.env.update(PERU_COMPRAS_RPC=self.node.url, PERU_COMPRAS_PRIVATE_KEY=self.account.key.hex(),
                        PERU_COMPRAS_BASE_URL="https://oc.example.pe")
        deployed = self.cli("deploy", "--json")
        assert deployed.returncode == 0, deployed.stderr
        info = json.loads(deployed.stdout)
        self.registry = Registry(self.rpc, info["registry"], from_block=info["block_number"])

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run_cli(["--home", str(self.home), *args], env=self.env, timeout=timeout)

    def start_batch(self, manifest: Path, *extra: str, output: Path | None = None) -> subprocess.Popen[str]:
        """The batch in a subprocess; its JSON lines go to `output` (and stderr beside it) if given: a pipe
        nobody reads would fill up and stall the run, so a kill would always land in the same place."""
        command = [*CLI, "--home", str(self.home), "register-batch", str(manifest), "--json", *extra]
        if output is None:
            return subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    start_new_session=True)
        with output.open("w") as out, output.with_suffix(".err").open("w") as err:
            return subprocess.Popen(command, env=self.env, stdout=out, stderr=err, text=True, start_new_session=True)

    def restart_node(self, *, down_for: float = 1.0) -> None:
        assert self.own_node, "the session's node is never restarted: use the own_chain fixture"
        self.node.stop()
        time.sleep(down_for)
        self.node = LocalNode(state=self.state, port=self.port).start()

    def all_transactions_succeeded(self) -> bool:
        """True when no transaction of the signer ever reverted (a re-sent order would have)."""
        latest = int(self.rpc.call("eth_blockNumber"), 16)
        for number in range(self.first_block, latest + 1):
            block = self.rpc.call("eth_getBlockByNumber", [hex(number), True])
            for tx in block["transactions"]:
                if self.only_from is not None and tx["from"].lower() != self.only_from.lower():
                    continue
                if int(self.rpc.call("eth_getTransactionReceipt", [tx["hash"]])["status"], 16) != 1:
                    return False
        return True

    def registered_count(self) -> int:
        logs = self.rpc.call("eth_getLogs", [{"address": self.registry.address, "fromBlock": "0x0",
                                              "toBlock": "latest", "topics": [ORDER_REGISTERED]}])
        return len(logs)

    def stop(self) -> None:
        if self.own_node:
            self.node.stop()


@pytest.fixture
def chain(tmp_path: Path, anvil: LocalNode) -> Chain:
    """A registry and key of the test's own on the session's Anvil."""
    return Chain(tmp_path, anvil)


@pytest.fixture
def own_chain(tmp_path: Path) -> Iterator[Chain]:
    """A node of the test's own (with a state file): for a test that stops and restarts it."""
    instance = Chain(tmp_path)
    yield instance
    instance.stop()


def read_line_unbuffered(process: subprocess.Popen[str]) -> str:
    """One line of the process's stdout, read byte by byte from the pipe: `readline()` would buffer more, and
    `communicate()` reads the pipe itself, so whatever that buffer held would be lost."""
    assert process.stdout is not None
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(process.stdout.fileno(), 1)
        if not chunk:
            break
        data += chunk
    return data.decode()


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_exactly_registered(chain: Chain, rows: list[dict[str, object]], folder: Path) -> None:
    """Each row on chain once, with its PDF's hash, and that PDF served by the store (batches keep it in
    packs: no file per order)."""
    assert chain.registry.total_supply() == len(rows)
    assert chain.registered_count() == len(rows)
    store = LocalStore(chain.home / "documents", "https://oc.example.pe")
    for row in rows:
        state = chain.registry.state(parse_order({k: v for k, v in row.items() if k != "pdf"}).token_id)
        assert state.status == "valid"
        document = (folder / str(row["pdf"])).read_bytes()
        assert state.document_hash == sha256(document)
        assert store.get(state.document_hash) == document
    assert list((chain.home / "documents").glob("??/*.pdf")) == []
    assert chain.all_transactions_succeeded()


def test_refused_rows_get_their_own_line_and_the_rest_go_on(chain: Chain, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    rows = make_orders(folder, 4)
    duplicate = dict(rows[0])
    missing = dict(copy.deepcopy(rows[1]), order_number="OC-X-MISSING", pdf="nope.pdf")
    bad_ruc = copy.deepcopy(rows[2])
    bad_ruc.update(order_number="OC-X-BADRUC", supplier={"name": "X", "ruc": "20123456789"})
    same_pdf = dict(copy.deepcopy(rows[3]), order_number="OC-X-SAMEPDF")
    manifest = write_jsonl(folder / "manifest.jsonl", [*rows, duplicate, missing, bad_ruc, same_pdf])
    (folder / "broken.jsonl").write_text("{not json\n")

    first = chain.cli("register-batch", str(manifest), "--no-stamp", "--json")
    assert first.returncode == 1, first.stderr
    out = lines(first.stdout)
    assert out[-1] == {"summary": {"registered": 4, "already_registered": 1, "failed": 3}}
    errors = {str(line["order_number"]): str(line["error"]) for line in out if "error" in line}
    assert "nope.pdf" in errors["OC-X-MISSING"]
    assert "20123456789" in errors["OC-X-BADRUC"]
    assert "same PDF" in errors["OC-X-SAMEPDF"]
    registered = [line for line in out if line.get("status") == "registered"]
    assert {line["tx_orders"] for line in registered} == {4}
    assert all(int(str(line["gas_used"])) < 60_000 for line in registered)
    # stderr is no terminal here: no bar redrawn, one line at the end with the rows done (all 8) and the rate
    assert re.search(r"^registering 8/8 [0-9]+ orders/s [0-9.]+ s$", first.stderr, re.MULTILINE), first.stderr

    again = chain.cli("register-batch", str(manifest), "--no-stamp", "--json")
    assert lines(again.stdout)[-1] == {"summary": {"registered": 0, "already_registered": 5, "failed": 3}}
    assert chain.registry.total_supply() == 4

    unreadable = chain.cli("register-batch", str(tmp_path / "no-such.jsonl"))
    assert unreadable.returncode == 2 and "no-such.jsonl" in unreadable.stderr


def test_csv_manifest_with_a_column_per_field(chain: Chain, tmp_path: Path) -> None:
    folder = tmp_path / "c"
    rows = make_orders(folder, 3, prefix="OC-CSV")
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_number", "issued_on", "entity_name", "entity_ruc", "buyer_name", "buyer_ruc",
                         "supplier_name", "supplier_ruc", "items", "total_amount", "total_currency",
                         "delivery_place", "delivery_term_days", "pdf"])
        for row in rows:
            e, b, s = row["entity"], row["buyer"], row["supplier"]
            writer.writerow([row["order_number"], row["issued_on"], e["name"], e["ruc"], b["name"], b["ruc"],  # type: ignore[index]
                             s["name"], s["ruc"], json.dumps(row["items"], ensure_ascii=False),  # type: ignore[index]
                             row["total"]["amount"], "PEN", row["delivery"]["place"],  # type: ignore[index]
                             row["delivery"]["term_days"], row["pdf"]])  # type: ignore[index]
    result = chain.cli("register-batch", str(folder / "manifest.csv"), "--no-stamp", "--json")
    assert result.returncode == 0, result.stderr
    assert_exactly_registered(chain, rows, folder)
    record = chain.registry.read(parse_order({k: v for k, v in rows[1].items() if k != "pdf"}).token_id)
    assert record.order.entity.name == "Hospital Regional de Piura"
    assert_page_serves_batch_documents(chain, rows, folder)


def assert_page_serves_batch_documents(chain: Chain, rows: list[dict[str, object]], folder: Path) -> None:
    """The verification page reads the packs a batch wrote: each PDF at /d/<hashlink>, checked original."""
    app = create_app(lambda: chain.registry, PageSettings(
        base_url="https://oc.example.pe", store=LocalStore(chain.home / "documents", "https://oc.example.pe"),
        sync_interval=0))

    async def fetch_all() -> None:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for row in rows:
                document = (folder / str(row["pdf"])).read_bytes()
                response = await http.get(f"/d/{hashlink(sha256(document))}")
                assert response.status_code == 200 and response.content == document
                token_id = parse_order({k: v for k, v in row.items() if k != "pdf"}).token_id
                check = (await http.get(f"/api/orders/0x{token_id:064x}/document")).json()
                assert check["outcome"] == "original", check

    asyncio.run(fetch_all())


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(chain: Chain, tmp_path: Path) -> None:
    """Killed four times (once while starting, then at random moments once orders are flowing), then run to
    the end: every order on chain exactly once, with its document in the store."""
    folder = tmp_path / "k"
    rows = make_orders(folder, 3000, prefix="OC-KILL")
    manifest = write_jsonl(folder / "manifest.jsonl", rows)
    rng = random.Random(20261124)
    on_chain = [0]
    for attempt in range(4):
        output = tmp_path / f"{attempt}.out"
        process = chain.start_batch(manifest, "--no-stamp", "--batch-size", "50", output=output)
        if attempt > 0:  # wait until this run puts orders on chain: past its start-up and its re-reporting
            deadline = time.monotonic() + 60
            while (chain.registry.total_supply() == on_chain[-1] and process.poll() is None
                   and time.monotonic() < deadline):  # one cheap eth_call per poll
                time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.25) if attempt > 0 else rng.uniform(0.2, 1.0))
        process.send_signal(signal.SIGKILL)  # the batch process only: its workers must die with it
        process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL
        on_chain.append(chain.registry.total_supply())
    # The kills landed at different moments, while orders were going on chain, and before the end.
    assert on_chain == sorted(on_chain) and on_chain[-1] < 3000, on_chain
    assert len(set(on_chain)) >= 3, on_chain
    final = chain.start_batch(manifest, "--no-stamp", "--batch-size", "50")
    stdout, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr
    summary = lines(stdout)[-1]["summary"]
    assert summary["failed"] == 0
    assert summary["registered"] + summary["already_registered"] == 3000
    assert_exactly_registered(chain, rows, folder)


@pytest.mark.slow
def test_node_stopped_and_restarted_mid_run(own_chain: Chain, tmp_path: Path) -> None:
    chain = own_chain
    folder = tmp_path / "n"
    rows = make_orders(folder, 800, prefix="OC-NODE")
    manifest = write_jsonl(folder / "manifest.jsonl", rows)
    process = chain.start_batch(manifest, "--no-stamp", "--batch-size", "20")
    assert process.stdout is not None
    first = read_line_unbuffered(process)  # the run is under way: its first order is confirmed
    assert '"status": "registered"' in first, first
    chain.restart_node(down_for=2.0)
    stdout, stderr = process.communicate(timeout=300)
    stdout = first + stdout
    assert process.returncode == 0, stderr
    assert lines(stdout)[-1]["summary"]["failed"] == 0
    assert_exactly_registered(chain, rows, folder)


@pytest.mark.slow
def test_ten_thousand_orders(chain: Chain, tmp_path: Path) -> None:
    folder = tmp_path / "t"
    rows = make_orders(folder, 10_000, prefix="OC-10K")
    manifest = write_jsonl(folder / "manifest.jsonl", rows)
    result = chain.cli("register-batch", str(manifest), "--no-stamp", "--batch-size", "200", "--json", timeout=600)
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout)[-1] == {"summary": {"registered": 10_000, "already_registered": 0, "failed": 0}}
    assert chain.registry.total_supply() == 10_000
    assert chain.registered_count() == 10_000


def test_duplicate_memory_forgets_only_its_oldest_rows() -> None:
    from peru_compras.batch.registrar import _evict_oldest

    seen = {f"row-{i}": i for i in range(10)}
    _evict_oldest(seen, 4)
    assert list(seen) == ["row-6", "row-7", "row-8", "row-9"]  # the newest (the batch being filled) stay


class RelayChain(Chain):
    """The same helpers through the LACNet relay emulator (tests/lacnet/emulator.py): a registry deployed by the
    CLI with the lacnet-protestnet profile, the relay front as the node."""

    def __init__(self, emulator: Any, folder: Path) -> None:  # no Anvil of its own: the emulator's
        self.emulator = emulator
        self.rpc = Rpc(emulator.url)
        self.account = Account.create()
        emulator.permit(self.account.address)
        self.home = folder / "home"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
        self.env.update(PERU_COMPRAS_RPC=emulator.url, PERU_COMPRAS_PRIVATE_KEY=self.account.key.hex(),
                        PERU_COMPRAS_BASE_URL="https://oc.example.pe", PERU_COMPRAS_NETWORK="lacnet-protestnet",
                        PERU_COMPRAS_NODE_ADDRESS=emulator.node_address,
                        PERU_COMPRAS_TRUSTED_FORWARDER=emulator.forwarder)
        deployed = self.cli("deploy", "--json")
        assert deployed.returncode == 0, deployed.stderr
        info = json.loads(deployed.stdout)
        self.registry = Registry(self.rpc, info["registry"], from_block=info["block_number"])

    def stop(self) -> None:
        pass


@pytest.mark.slow
def test_sigkill_then_resume_through_the_lacnet_relay_with_not_enough_gas_and_bad_nonce(
        lacnet_emulator: Any, tmp_path: Path) -> None:
    """The SIGKILL test through the relay: while the hub keeps finding the node's allowance used up
    (NotEnoughGas, status 1 and no hub event) and the relay keeps answering BAD NONCE, the batch is killed
    three times, then run to the end: every order on chain exactly once."""
    import threading

    emu = lacnet_emulator
    chain = RelayChain(emu, tmp_path)
    folder = tmp_path / "k"
    rows = make_orders(folder, 400, prefix="OC-RKILL")
    manifest = write_jsonl(folder / "manifest.jsonl", rows)
    rng = random.Random(20261201)
    starved, refused = emu.relayed, emu.refused_nonces
    stop = threading.Event()
    injected = [0, 0]

    def inject(every: int) -> None:  # after every few relays a fault, NotEnoughGas and BAD NONCE in turn
        last = emu.relayed
        while not stop.wait(0.01):
            if emu.relayed >= last + every:
                last = emu.relayed
                if sum(injected) % 2 == 0:
                    emu.starve_next, injected[0] = 1, injected[0] + 1
                else:
                    emu.refuse_nonce_next, injected[1] = 1, injected[1] + 1

    injector = threading.Thread(target=inject, args=(3,), daemon=True)
    injector.start()
    on_chain = [0]
    try:
        for attempt in range(3):
            output = tmp_path / f"{attempt}.out"
            process = chain.start_batch(manifest, "--no-stamp", "--batch-size", "20", output=output)
            deadline = time.monotonic() + 60
            while (chain.registry.total_supply() == on_chain[-1] and process.poll() is None
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.6))
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=60)
            assert process.returncode == -signal.SIGKILL, output.with_suffix(".err").read_text()[-2000:]
            on_chain.append(chain.registry.total_supply())
        assert on_chain == sorted(on_chain) and on_chain[-1] < 400, on_chain
        assert len(set(on_chain)) >= 3, on_chain
        summaries = []
        for _ in range(3):  # a run the faults outlast stops with one line and is run again
            final = chain.start_batch(manifest, "--no-stamp", "--batch-size", "20")
            stdout, stderr = final.communicate(timeout=600)
            if final.returncode == 0:
                summaries.append(lines(stdout)[-1]["summary"])
                break
            errors = [x for x in stderr.splitlines() if x.startswith("error:")]
            assert len(errors) == 1 and ("NotEnoughGas" in errors[0] or "BAD NONCE" in errors[0]), stderr
        else:
            pytest.fail("the batch never finished")
    finally:
        stop.set()
        injector.join()
        emu.starve_next = emu.refuse_nonce_next = 0
    assert injected[0] >= 2 and injected[1] >= 2, injected  # both faults really happened during the runs
    assert emu.refused_nonces > refused and emu.relayed > starved
    assert summaries[-1]["failed"] == 0
    assert chain.registry.total_supply() == 400
    assert chain.registered_count() == 400
    store = LocalStore(chain.home / "documents", "https://oc.example.pe")
    for row in rows:
        state = chain.registry.state(parse_order({k: v for k, v in row.items() if k != "pdf"}).token_id)
        assert state.status == "valid"
        assert state.document_hash == sha256((folder / str(row["pdf"])).read_bytes())
        assert store.get(state.document_hash) == (folder / str(row["pdf"])).read_bytes()


class ProbedSigner:
    """A QR signer that notes, in the process where it signs, that process and whether the key shows in its
    command line or environment (it must reach workers through the pool initializer only)."""

    def __init__(self, inner: Any, report: Path) -> None:
        self.inner, self.report = inner, report

    def __call__(self, order: Any) -> str | None:
        seen = (Path("/proc/self/cmdline").read_bytes() + Path("/proc/self/environ").read_bytes()).lower()
        shown = self.inner.private_key.hex().encode() in seen
        with self.report.open("a") as out:
            out.write(json.dumps({"pid": os.getpid(), "key_shown": shown}) + "\n")
        fragment: str | None = self.inner(order)
        return fragment


def library_session(chain: Chain) -> Any:
    """A Session for `chain` built as a back-office program does: settings in code, the key in this process."""
    from peru_compras.chain.transactions import Transactor
    from peru_compras.settings import account_from_key, load_settings
    from peru_compras.workspace import Session

    settings = load_settings({"home": chain.home, "rpc": chain.node.url, "registry": chain.registry.address,
                              "base_url": "https://oc.example.pe"}, env={}, read_file=False)
    return Session(settings, transactor=Transactor(Rpc(chain.node.url), account_from_key(bytes(chain.account.key)),
                                                   settings.network))


def test_a_stamped_batch_signs_each_qr_in_the_workers(chain: Chain, tmp_path: Path) -> None:
    """With a qr_fragment signer each stamped PDF's QR reads verify URL + "#" + that order's signed facts
    (decoded from the stored PDF by pdftoppm and zbarimg); the signing happens in the worker processes, which
    got the signer without it showing in their argv or environment. --no-stamp PDFs are not signed again."""
    from peru_compras import qr
    from peru_compras.batch import BatchRegistrar
    from peru_compras.manifest import read_manifest
    from peru_compras.signed_qr import QrSigner, qr_text

    folder = tmp_path / "signed"
    rows = make_orders(folder, 4, prefix="OC-SIGNED")
    manifest = write_jsonl(folder / "manifest.jsonl", rows)
    key = bytes(chain.account.key)  # in this process only: neither in its environment nor on a command line
    session = library_session(chain)
    inner = QrSigner(key, int(chain.rpc.call("eth_chainId"), 16), chain.registry.address)
    report = tmp_path / "signed-where.jsonl"
    out: list[dict[str, Any]] = []
    summary = BatchRegistrar(session, batch_size=2, workers=2, emit=out.append,
                             qr_fragment=ProbedSigner(inner, report)).run(read_manifest(manifest))
    assert summary.registered == 4 and summary.failed == 0, out
    store = LocalStore(chain.home / "documents", "https://oc.example.pe")
    for line in out:
        order = parse_order({k: v for k, v in rows[int(str(line["row"])) - 1].items() if k != "pdf"})
        expected, _ = qr_text(str(line["verify_url"]), order, inner)
        assert "#" in expected and expected.startswith(str(line["verify_url"]))
        document = store.get(bytes.fromhex(str(line["sha256"])))
        assert document is not None
        assert expected in qr.decode_page(document, 1), line["order_number"]
    signed_in = [json.loads(text) for text in report.read_text().splitlines()]
    assert len(signed_in) == 4
    assert {entry["pid"] for entry in signed_in}.isdisjoint({os.getpid()})
    assert not any(entry["key_shown"] for entry in signed_in)

    report.unlink()
    again = tmp_path / "unstamped"
    unstamped = write_jsonl(again / "manifest.jsonl", make_orders(again, 2, prefix="OC-UNSIGNED"))
    summary = BatchRegistrar(session, stamp=False, workers=2, emit=out.append,
                             qr_fragment=ProbedSigner(inner, report)).run(read_manifest(unstamped))
    assert summary.registered == 2 and not report.exists()


def test_start_prepares_before_run_and_close_stops_the_workers(chain: Chain, tmp_path: Path) -> None:
    """The CLI starts the workers (BatchRegistrar.start) before it draws its progress bar, then runs: the same
    orders are registered as by run(rows) alone, and a registrar started but never run leaves no worker alive."""
    import multiprocessing

    from peru_compras.batch import BatchRegistrar
    from peru_compras.manifest import read_manifest

    session = library_session(chain)
    folder = tmp_path / "started"
    rows = make_orders(folder, 5, prefix="OC-START")
    out: list[dict[str, Any]] = []
    registrar = BatchRegistrar(session, batch_size=2, stamp=False, workers=2, emit=out.append)
    registrar.start(read_manifest(write_jsonl(folder / "manifest.jsonl", rows)))
    assert len(multiprocessing.active_children()) == 2  # preparing already, before the chain is reached
    summary = registrar.run()
    assert summary.registered == 5 and summary.failed == 0, out
    assert sorted(int(str(line["row"])) for line in out) == [1, 2, 3, 4, 5]
    assert_exactly_registered(chain, rows, folder)
    assert multiprocessing.active_children() == []

    idle = BatchRegistrar(session, stamp=False, workers=2, emit=out.append)
    other = tmp_path / "never-run"
    idle.start(read_manifest(write_jsonl(other / "manifest.jsonl", make_orders(other, 3, prefix="OC-IDLE"))))
    assert len(multiprocessing.active_children()) == 2
    idle.close()
    assert multiprocessing.active_children() == []
    assert len(out) == 5  # nothing of the three was reported, registered or journaled


def test_a_stamped_batch_through_the_console_entry_gets_a_pool_with_its_signer(chain: Chain, tmp_path: Path) -> None:
    """`python -m peru_compras register-batch` forks its workers before the command line is parsed (launch.py);
    stamping needs the QR signer, which never travels through a pipe, so those workers are stopped and a pool
    forked with the signer prints each signed QR: read back from the stored PDFs by pdftoppm and zbarimg."""
    from peru_compras import qr

    folder = tmp_path / "entry"
    manifest = write_jsonl(folder / "manifest.jsonl", make_orders(folder, 3, prefix="OC-ENTRY"))
    process = chain.start_batch(manifest)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    out = lines(stdout)
    assert out[-1] == {"summary": {"registered": 3, "already_registered": 0, "failed": 0}}
    store = LocalStore(chain.home / "documents", "https://oc.example.pe")
    for line in out[:-1]:
        document = store.get(bytes.fromhex(str(line["sha256"])))
        assert document is not None
        (printed,) = qr.decode_page(document, 1)
        assert printed.startswith(str(line["verify_url"]) + "#"), printed  # signed: the worker had the signer
