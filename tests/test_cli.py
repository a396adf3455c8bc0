"""The command line as users run it: a subprocess in a clean folder, SPEC's JSON fields and exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from peru_compras.order import parse_order
from peru_compras.pdf import stamp_pdf
from peru_compras.render import render_order

from .conftest import CLI, ROOT, Runner, clean_env, reference_order, run_cli, write_json

REGISTER_FIELDS = {"token_id", "order_number", "entity_ruc", "tx_hash", "block_number", "gas_used", "sha256",
                   "hashlink", "document_url", "verify_url", "stamped_pdf"}


def make_pdf(folder: Path, record: dict[str, object], name: str = "orden.pdf") -> Path:
    path = folder / name
    path.write_bytes(render_order(parse_order(record)))
    return path


@pytest.fixture
def deployed(cli: Runner) -> Runner:
    result = cli("deploy", "--json")
    assert result.code == 0, result.stderr
    assert set(result.json()) >= {"registry", "chain_id", "tx_hash", "block_number", "gas_used"}
    return cli


def test_register_show_verify_round_trip(deployed: Runner, tmp_path: Path) -> None:
    record = reference_order(order_number="OC-CLI-0001")
    order_file = write_json(tmp_path / "orden.json", record)
    pdf = make_pdf(tmp_path, record)
    result = deployed("register", str(order_file), str(pdf), "--out", str(tmp_path / "sellada.pdf"), "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert set(data) >= REGISTER_FIELDS
    assert data["verify_url"] == "https://oc.example.pe/o/20131370998/OC-CLI-0001"
    assert len(data["verify_url"]) <= 80
    assert data["gas_used"] <= 60_000

    shown = deployed("show", "20131370998/OC-CLI-0001", "--json")
    assert shown.code == 0, shown.stderr
    assert shown.json()["status"] == "valid"
    assert shown.json()["items"] == record["items"]
    assert deployed("show", data["hashlink"], "--json").json()["token_id"] == data["token_id"]

    ok = deployed("verify", str(tmp_path / "sellada.pdf"), "--json")
    assert (ok.code, ok.json()["status"]) == (0, "authentic")
    assert ok.json()["expected_sha256"] == data["sha256"]

    order = parse_order(record)
    forged_record = reference_order(order_number="OC-CLI-0001", total={"amount": "9890.00", "currency": "PEN"})
    forged = tmp_path / "alterada.pdf"
    forged.write_bytes(stamp_pdf(render_order(parse_order(forged_record)), data["verify_url"], order=order))
    bad = deployed("verify", str(forged), "--json")
    assert (bad.code, bad.json()["status"], bad.json()["order_number"]) == (1, "altered", "OC-CLI-0001")

    stranger = deployed("verify", str(pdf), "--json")
    assert (stranger.code, stranger.json()["status"]) == (1, "not_registered")

    annulled = deployed("annul", "20131370998/OC-CLI-0001", "--reason", "Monto mal digitado", "--json")
    assert annulled.code == 0, annulled.stderr
    after = deployed("verify", str(tmp_path / "sellada.pdf"), "--json")
    assert (after.code, after.json()["status"], after.json()["annul_reason"]) == (1, "annulled", "Monto mal digitado")


def test_duplicate_order_exits_1_with_one_line(deployed: Runner, tmp_path: Path) -> None:
    record = reference_order(order_number="OC-CLI-DUP")
    order_file = write_json(tmp_path / "orden.json", record)
    assert deployed("register", str(order_file), str(make_pdf(tmp_path, record))).code == 0
    # the very same inputs again finish an earlier run (issue 14: a crash after minting): not a duplicate
    same = deployed("register", str(order_file), str(make_pdf(tmp_path, record, "misma.pdf")), "--json")
    assert same.code == 0 and same.json()["resumed"] is True, same.stderr
    other = reference_order(order_number="OC-CLI-DUP", issued_on="2026-11-21")  # another PDF for that number
    other_file = write_json(tmp_path / "otra.json", other)
    again = deployed("register", str(other_file), str(make_pdf(tmp_path, other, "otra.pdf")))
    assert again.code == 1
    assert "already registered" in again.stderr and "Traceback" not in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_invalid_record_names_every_field_and_writes_nothing(deployed: Runner, tmp_path: Path) -> None:
    record = reference_order(order_number="", issued_on="ayer")
    record["supplier"] = {"name": "X", "ruc": "20123456789"}
    order_file = write_json(tmp_path / "orden.json", record)
    result = deployed("register", str(order_file), str(make_pdf(tmp_path, reference_order())),
                      "--out", str(tmp_path / "out.pdf"))
    assert result.code == 2
    for field in ("order_number: ''", "issued_on: 'ayer'", "supplier.ruc: '20123456789'"):
        assert field in result.stderr
    assert not (tmp_path / "out.pdf").exists()
    assert not (tmp_path / ".peru-compras" / "documents").exists()


def test_pdf_limits_from_the_config_file_and_the_environment_wins(deployed: Runner, tmp_path: Path) -> None:
    order_file = write_json(tmp_path / "orden.json", reference_order())
    pdf = make_pdf(tmp_path, reference_order())
    (tmp_path / "peru-compras.toml").write_text('max-pdf-bytes = "2KB"\nfetch-hosts = ["docs.example.pe"]\n')
    refused = deployed("register", str(order_file), str(pdf))
    assert refused.code == 2
    assert "over the 2,048-byte limit" in refused.stderr and "max-pdf-bytes" in refused.stderr
    assert not (tmp_path / ".peru-compras" / "documents").exists()
    taken = deployed("register", str(order_file), str(pdf), "--json", env={"PERU_COMPRAS_MAX_PDF_BYTES": "50MB"})
    assert taken.code == 0, taken.stderr


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["register", "no-such.json", "no-such.pdf"], 2, "no-such.json"),
        (["show", "banana"], 2, "'banana'"),
        (["annul", "1", "--reason", ""], 2, "--reason"),
        (["verify", "no-such.pdf"], 2, "no-such.pdf"),
        (["frobnicate"], 2, "frobnicate"),
    ],
)
def test_bad_input_exits_2_with_one_line(deployed: Runner, args: list[str], code: int, fragment: str) -> None:
    result = deployed(*args)
    assert result.code == code
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unreachable_node_exits_3_naming_the_url(cli: Runner) -> None:
    result = cli("show", "1", "--rpc", "http://127.0.0.1:9")
    assert result.code == 3
    assert "http://127.0.0.1:9" in result.stderr


def test_registry_without_contract_exits_2(cli: Runner) -> None:
    result = cli("show", "1", "--registry", "0x" + "ab" * 20)
    assert result.code == 2
    assert "no contract" in result.stderr


def test_malformed_key_is_refused_without_echoing_it(cli: Runner) -> None:
    secret = "deadbeef" * 7 + "zz"
    result = cli("deploy", env={"PERU_COMPRAS_PRIVATE_KEY": secret})
    assert result.code == 2
    assert "PERU_COMPRAS_PRIVATE_KEY" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_private_key_never_appears_in_any_output(deployed: Runner, tmp_path: Path) -> None:
    key = deployed.env["PERU_COMPRAS_PRIVATE_KEY"]
    record = reference_order(order_number="OC-CLI-KEY")
    order_file = write_json(tmp_path / "orden.json", record)
    pdf = make_pdf(tmp_path, record)
    outputs = [
        deployed("register", str(order_file), str(pdf)),
        deployed("register", str(order_file), str(pdf), "--json"),
        deployed("show", "20131370998/OC-CLI-KEY"),
        deployed("verify", str(pdf)),
        deployed("roles", "list", "--json"),
        deployed("roles", "grant", "registrar", "0x" + "12" * 20),
        deployed("annul", "20131370998/OC-CLI-KEY", "--reason", "prueba"),
        deployed("deploy", "--json"),
    ]
    for result in outputs:
        for form in (key, key.removeprefix("0x"), key.removeprefix("0x").upper()):
            assert form not in result.stdout + result.stderr


def test_roles_list_shows_the_deployer(deployed: Runner) -> None:
    roles = deployed("roles", "list", "--json").json()
    assert roles["admin"] == roles["registrar"] == roles["annuller"] == [deployed.account.address]  # type: ignore[attr-defined]


def _commands() -> list[str]:
    help_text = run_cli(["--help"], env=clean_env()).stdout
    section = help_text.split("Commands:")[1]
    return re.findall(r"^\s{2}([a-z][a-z-]+)\s", section, flags=re.M)


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = _commands()
    assert {"demo", "node", "deploy", "register", "verify", "show", "annul", "roles"} <= set(commands)
    for command in commands:
        result = run_cli([command, "--help"], env=clean_env())
        assert result.returncode == 0 and "Usage" in result.stdout
        assert f"peru-compras {command}" in readme, f"README does not show `peru-compras {command}`"


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([*CLI, "--help"], capture_output=True, text=True)  # CLI: sys.executable -m peru_compras
    assert result.returncode == 0 and "register" in result.stdout


def test_demo_on_the_embedded_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    try:
        first = subprocess.run([*CLI, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
        assert first.returncode == 0, first.stderr
        assert re.search(r"OC-2026-004512\.pdf: AUTHENTIC", first.stdout)
        assert re.search(r"ALTERADA\.pdf: ALTERED", first.stdout)
        again = subprocess.run([*CLI, "demo", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=180)
        assert again.returncode == 0, again.stderr
        assert [v["status"] for v in json.loads(again.stdout)["verify"]] == ["authentic", "altered"]
        assert "already registered" in again.stderr
        page = json.loads(again.stdout)["page_url"]
        assert page.endswith("/o/20131370998/OC-2026-004512")
        import httpx

        assert "OC-2026-004512" in httpx.get(page, timeout=10).text
    finally:
        from peru_compras.web.server import stop_detached

        stop_detached(tmp_path / ".peru-compras")
        info = tmp_path / ".peru-compras" / "node.json"
        if info.exists():
            os.kill(json.loads(info.read_text())["pid"], signal.SIGTERM)


def test_node_runs_until_stopped_and_keeps_its_state(tmp_path: Path) -> None:
    from peru_compras.chain.node import free_port
    from peru_compras.chain.rpc import Rpc

    env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
    port = free_port()

    def start() -> tuple[subprocess.Popen[str], dict[str, object]]:
        process = subprocess.Popen([*CLI, "node", "--port", str(port), "--json"], cwd=tmp_path, env=env,
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        return process, json.loads(process.stdout.readline())

    process, info = start()
    try:
        assert info == {"rpc": f"http://127.0.0.1:{port}", "chain_id": 31337}
        rpc = Rpc(str(info["rpc"]))
        rpc.call("anvil_setBalance", ["0x" + "ab" * 20, hex(12345)])
        rpc.call("evm_mine")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    process, info = start()
    try:
        assert int(Rpc(str(info["rpc"])).call("eth_getBalance", ["0x" + "ab" * 20, "latest"]), 16) == 12345
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
