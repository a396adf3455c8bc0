"""The test suite's CLI runner (tests/conftest.py): in-process runs answer as a real process does and leave
nothing behind for the next run or the next test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from peru_compras.order import parse_order

from .conftest import (
    CLI,
    DATA,
    REAL_PROCESS_ONLY,
    REFERENCE,
    Runner,
    RunTimeout,
    clean_env,
    reference_order,
    write_json,
)


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the in-process runs: PERU_COMPRAS_TEST_CLI=process does not apply here."""
    monkeypatch.delenv("PERU_COMPRAS_TEST_CLI", raising=False)


def test_in_process_and_a_real_process_answer_alike(cli: Runner, tmp_path: Path) -> None:
    """Same exit code, stdout and stderr, byte for byte: help, usage errors, bad input, an unreachable node,
    a negative answer from the chain, and JSON."""
    deployed = cli("deploy", "--json")
    assert deployed.code == 0, deployed.stderr
    registry = deployed.json()["registry"]
    bad_order = write_json(tmp_path / "mala.json", reference_order(order_number=" no "))
    order = write_json(tmp_path / "orden.json", reference_order(order_number="OC-RUNNER-1"))
    cases = [["--help"], ["no-such-command"], ["render", str(bad_order)], ["show", "1", "--rpc", "http://127.0.0.1:9"],
             ["--registry", registry, "show", "1"], ["--registry", registry, "show", "1", "--json"],
             ["qr", str(order), "--json"], ["--registry", registry, "roles", "list", "--json"]]
    codes = set()
    for args in cases:
        here, there = cli(*args), cli.run(*args)
        assert (here.code, here.stdout, here.stderr) == (there.code, there.stdout, there.stderr), args
        codes.add(here.code)
    assert codes == {0, 1, 2, 3}  # every kind of answer was compared


def test_a_run_leaves_the_process_as_it_found_it(cli: Runner, tmp_path: Path) -> None:
    before = (dict(os.environ), os.getcwd(), sys.stdin, sys.stdout, sys.stderr, signal.getsignal(signal.SIGALRM))
    cli("--json", "show", "1", "--rpc", "http://127.0.0.1:9", env={"PERU_COMPRAS_ONLY_IN_THE_RUN": "x"})
    cli("render", str(tmp_path / "missing.json"))
    after = (dict(os.environ), os.getcwd(), sys.stdin, sys.stdout, sys.stderr, signal.getsignal(signal.SIGALRM))
    assert after == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_run_sees_its_own_environment_and_folder(cli: Runner, tmp_path: Path) -> None:
    """The environment is exactly the runner's (none of the test process's PERU_COMPRAS_* variables), the
    working folder is the runner's (peru-compras.toml is read from there)."""
    order = write_json(tmp_path / "orden.json", reference_order(order_number="OC-RUNNER-2"))
    env = {k: v for k, v in cli.env.items() if k != "PERU_COMPRAS_BASE_URL"}
    (tmp_path / "peru-compras.toml").write_text('base-url = "https://toml.example.pe"\n', encoding="utf-8")
    elsewhere = tmp_path / "otra"
    elsewhere.mkdir()
    os.environ["PERU_COMPRAS_BASE_URL"] = "https://leaked.example"  # the test process's, not the run's
    try:
        given = cli("qr", str(order), "--json")
        from_file = Runner(tmp_path, env)("qr", str(order), "--json")
        default = Runner(elsewhere, env)("qr", str(order), "--json")
    finally:
        del os.environ["PERU_COMPRAS_BASE_URL"]
    assert given.json()["verify_url"] == "https://oc.example.pe/o/20131370998/OC-RUNNER-2", given.stderr
    assert from_file.json()["verify_url"] == "https://toml.example.pe/o/20131370998/OC-RUNNER-2", from_file.stderr
    assert default.json()["verify_url"] == "http://127.0.0.1:8000/o/20131370998/OC-RUNNER-2", default.stderr


def test_nothing_of_one_run_reaches_the_next(cli: Runner, tmp_path: Path) -> None:
    """--json, the global options and the workspace belong to one run (a leak would answer JSON here, or read
    the dead node of the run before)."""
    assert cli("deploy", "--json").code == 0
    assert cli("--rpc", "http://127.0.0.1:9", "roles", "list").code == 3
    text = cli("roles", "list")
    assert text.code == 0 and not text.stdout.startswith("{"), text.stderr
    from peru_compras.commands.base import state

    assert (state.workspace, state.json, state.flags) == (None, False, {})


def test_batch_pack_writers_do_not_outlive_the_run(cli: Runner, tmp_path: Path) -> None:
    """A batch with one worker prepares in this very process, whose pack writer is kept for the worker's life:
    the runner closes it, as the end of a real process would."""
    from peru_compras.batch import workers
    from peru_compras.store import LocalStore

    writer = LocalStore(tmp_path / "documents", "https://oc.example.pe").pack_writer()
    writer.add(b"%PDF-1.7 a document")
    workers._WRITERS[(tmp_path, "https://oc.example.pe", os.getpid())] = writer
    assert writer._fd is not None
    cli("--help")
    assert workers._WRITERS == {} and writer._fd is None


def test_a_run_that_hangs_is_stopped_at_its_timeout(cli: Runner) -> None:
    """A node that accepts and never answers: the run is cut at the runner's timeout, not the node's."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(RunTimeout):
            cli("show", "1", "--rpc", url, timeout=1.5)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert cli("--help").code == 0


def test_the_installed_command_and_python_dash_m(tmp_path: Path) -> None:
    """The console script installed beside this interpreter, and CLI (``python -m peru_compras``)."""
    script = Path(sys.executable).parent / "peru-compras"
    for command in ([str(script)], list(CLI)):
        done = subprocess.run([*command, "--help"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 0 and "register" in done.stdout, done.stderr


def test_the_reference_record_is_the_repositorys_copy() -> None:
    assert DATA == Path(__file__).resolve().parent / "data"
    assert parse_order(REFERENCE).order_number == REFERENCE["order_number"]


@pytest.mark.parametrize("args", [["serve"], ["--home", "h", "node", "--port", "1"], ["--json", "demo"]])
def test_commands_that_need_a_real_process_are_refused_in_process(cli: Runner, args: list[str]) -> None:
    with pytest.raises(AssertionError, match="needs a real process"):
        cli(*args)
    command = next(word for word in args if word in REAL_PROCESS_ONLY)
    assert cli(command, "--help").code == 0  # its help is fine in-process
