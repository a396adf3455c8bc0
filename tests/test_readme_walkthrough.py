"""The README, walked as a newcomer walks it: every line of "Using the command line" typed in order in one
fresh folder, each documented output line checked; then the library example exactly as the README prints
it, then `stop`. Around the walk: what the README promises about the embedded default (one folder, one
chain; reads never start one; a second demo agrees with the first; stop leaves no process behind).

The only changes to what the README says: its ports (8545 for the chain, 8000 for the page) become free
ports here (the page's also of four digits, so the base URL and the deploy gas keep their length), and
the library section's `0x…` registry placeholder becomes the address `deploy` printed. In an output line
the README shows, `…` stands for any text.

Cost: about 50 CLI runs (each pays ~1 s of Python start-up), three demos, the chain started five times.
Measured on this shared 2-core machine under load (load average 7-9): the walk-through test 2-3 min, the
other tests 15-40 s each (3-5 s each in the run of 2026-12-01 14:40, two xdist workers, load ~7). The
walk-through is marked `slow` (`-m "not slow"` leaves it out; the default suite runs it).
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from peru_compras.chain.node import free_port, pid_alive

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
VENV_BIN = ROOT / ".venv" / "bin"


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def blocks(text: str, kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```", text, flags=re.S | re.M)


@dataclass
class Step:
    command: str
    comment: str = ""
    expected: list[str] = field(default_factory=list)

    @property
    def background(self) -> bool:
        return self.command.endswith("&")

    @property
    def exit_code(self) -> int:
        found = re.search(r"\bexit (\d)", self.comment)
        return int(found.group(1)) if found else 0


def steps(console: str) -> list[Step]:
    """`$ command   # comment` lines and the output lines under each."""
    out: list[Step] = []
    for line in console.splitlines():
        if line.startswith("$ "):
            command, comment = _split_comment(line[2:])
            out.append(Step(command.strip(), comment))
        elif line.strip() and out:
            out[-1].expected.append(line.strip())
    return out


def _split_comment(text: str) -> tuple[str, str]:
    """A command and its comment (after two or more spaces and `# `)."""
    found = re.search(r"\s{2,}#\s(.*)$", text)
    if found is None:
        return text, ""
    return text[: found.start()], found.group(1)


GAS = re.compile(r'\d{1,3}(?:,\d{3})+(?= gas)|(?<="gas_used": )\d+')


def matches(expected: str, line: str) -> bool:
    """`line` is what the README shows: `…` is any text; a gas figure may differ by 1 % (a transaction's
    data costs 4 gas per zero byte and 16 per other byte, and the PDF's hash is part of it)."""
    figures: list[int] = []
    regex = ""
    position = 0
    for found in GAS.finditer(expected):
        regex += re.escape(expected[position:found.start()]).replace("…", ".*") + r"([\d,]+)"
        figures.append(int(found.group().replace(",", "")))
        position = found.end()
    regex += re.escape(expected[position:]).replace("…", ".*")
    match = re.fullmatch(regex, line)
    if match is None:
        return False
    got = [int(value.replace(",", "")) for value in match.groups()]
    return all(abs(g - f) <= f / 100 for g, f in zip(got, figures, strict=True))


def four_digit_port() -> int:
    for _ in range(200):
        port = random.randint(2000, 9999)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free four-digit port")


class Shell:
    """A user's shell in one folder: PATH has .venv/bin, `export` lines persist, `&` runs in the background."""

    def __init__(self, cwd: Path, chain_port: int, page_port: int) -> None:
        self.cwd = cwd
        self.ports = {"8545": str(chain_port), "8000": str(page_port)}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PERU_COMPRAS_")}
        self.env["PATH"] = f"{VENV_BIN}:{self.env.get('PATH', '')}"
        self.env["PERU_COMPRAS_BASE_URL"] = f"http://127.0.0.1:{page_port}"
        self.background: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.timings: list[tuple[str, float]] = []
        self.placeholders: dict[str, str] = {}

    def local(self, text: str) -> str:
        for old, new in self.ports.items():
            text = text.replace(old, new)
        return text

    def run(self, step: Step) -> str:
        command = self.local(step.command)
        for old, new in self.placeholders.items():
            command = command.replace(old, new)
        started = time.monotonic()
        if step.background:
            output = self._background(command.removesuffix("&").strip(), step)
        elif command.startswith("export "):
            done = subprocess.run(["bash", "-c", f"{command} && env -0"], cwd=self.cwd, env=self.env,
                                  capture_output=True, check=True)
            self.env = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
            output = ""
        else:
            done = subprocess.run(["bash", "-c", command], cwd=self.cwd, env=self.env, capture_output=True,
                                  text=True, timeout=180, stdin=subprocess.DEVNULL)
            output = done.stdout + done.stderr
            assert done.returncode == step.exit_code, f"$ {command}\nexit {done.returncode}\n{output}"
            self._check(step, output)
        self.timings.append((step.command, time.monotonic() - started))
        return output

    def _background(self, command: str, step: Step) -> str:
        log = self.cwd / f".background-{len(self.background)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(["bash", "-c", "exec " + command], cwd=self.cwd, env=self.env, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.background.append((process, log))
        deadline = time.monotonic() + 60
        while True:
            output = log.read_text(errors="replace")
            try:
                self._check(step, output)
                return output
            except AssertionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _check(self, step: Step, output: str) -> None:
        lines = [line.strip() for line in output.splitlines()]
        for expected in step.expected:
            assert any(matches(self.local(expected), line) for line in lines), (
                f"$ {step.command}\nREADME shows: {expected}\nbut the output was:\n{output}")

    def cli(self, *args: str, without: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in self.env.items() if k not in without}
        return subprocess.run([str(VENV_BIN / "peru-compras"), *args], cwd=self.cwd, env=env,
                              capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)

    def stop_all(self) -> None:
        print("\n".join(f"{seconds:6.2f} s  {command}" for command, seconds in self.timings))
        self.cli("stop")
        for process, _ in self.background:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    user = Shell(tmp_path, free_port(), four_digit_port())
    try:
        yield user
    finally:
        user.stop_all()


def status(shell: Shell) -> dict[str, object]:
    done = shell.cli("status", "--json")
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


@pytest.mark.slow
def test_the_readme_walkthrough(shell: Shell) -> None:
    walk = steps(blocks(section("Using the command line"), "console")[0])
    library = section("Using it as a library")
    setup, stop = (steps(block) for block in blocks(library, "console"))
    assert [s.command.split()[:2] for s in walk[:3]] == [["peru-compras", "demo"], ["peru-compras", "status"],
                                                        ["peru-compras", "stop"]]
    demo, status_step, stop_step, *rest = walk
    begun = time.monotonic()

    # Reads never start a chain: in the fresh folder, `show` says so and nothing runs afterwards.
    show = shell.cli("show", "20131370998/OC-2026-004512")
    assert show.returncode == 3 and "is not running (nothing was started here yet)" in show.stderr
    assert status(shell)["chain"] is None

    shell.run(demo)
    shell.run(status_step)
    first = status(shell)
    chain = first["chain"]
    page = first["page_server"]
    assert isinstance(chain, dict) and isinstance(page, dict)
    assert first["running"] is True and first["rpc"] == chain["rpc"] and first["page"] == page["url"]
    assert all(pid_alive(int(pid)) for pid in (chain["pid"], chain["anvil_pid"], page["pid"]))

    # One folder, one chain: `node` refuses while the demo's chain runs, in one line naming it.
    refused = shell.cli("node", "--port", str(free_port()))
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0 and f"already runs at {chain['rpc']}" in refused.stderr

    shell.run(stop_step)
    assert not any(pid_alive(int(pid)) for pid in (chain["pid"], chain["anvil_pid"], page["pid"]))
    assert json.loads((shell.cwd / ".peru-compras/chain/state.json").read_text())["block"]

    for step in rest:
        output = shell.run(step)
        if step.command.startswith("peru-compras deploy"):
            shell.placeholders["PERU_COMPRAS_REGISTRY=0x…"] = (
                "PERU_COMPRAS_REGISTRY=" + json.loads(output.splitlines()[0])["registry"])

    # The library example, exactly as printed, after its setup lines.
    for step in setup:
        shell.run(step)
    (python_code,) = blocks(library, "python")
    (shell.cwd / "example.py").write_text(python_code, encoding="utf-8")
    example = subprocess.run([str(VENV_BIN / "python"), "example.py"], cwd=shell.cwd, env=shell.env,
                             capture_output=True, text=True, timeout=120)
    assert example.returncode == 0, example.stderr
    printed = re.fullmatch(r"authentic (http://127\.0\.0\.1:\d+/d/hl:zQm\w+)\n", example.stdout)
    assert printed, example.stdout
    published = httpx.get(printed.group(1), timeout=10)
    assert published.status_code == 200 and published.content.startswith(b"%PDF")
    fetched = shell.cli("verify", "--fetch", "--token", "20131370998/OC-2026-004514")
    assert fetched.returncode == 0 and "the published PDF is the registered original" in fetched.stdout

    # A file asked about as another order: the verdict says what the file is.
    other = shell.cli("verify", "orden-sellada.pdf", "--order-number", "OC-2026-999999", "--entity", "20131370998")
    assert other.returncode == 1
    assert other.stdout.startswith("NOT REGISTERED: this file is not 20131370998/OC-2026-999999; it is registered "
                                   "as OC-2026-004512 of 20131370998 (superseded")

    # A total that disagrees with the items: registered, with a one-line warning saying by how much.
    record = json.loads((shell.cwd / "orden.json").read_text())
    record.update(order_number="OC-2026-004599", total={"amount": "100.00", "currency": "PEN"})
    (shell.cwd / "total.json").write_text(json.dumps(record))
    assert shell.cli("render", "total.json", "--out", "total.pdf").returncode == 0
    warned = shell.cli("register", "total.json", "total.pdf")
    assert warned.returncode == 0, warned.stderr
    assert ("warning: OC-2026-004599: the total 100.00 PEN differs from the items' sum 5,890.00 by -5,790.00"
            in warned.stderr)

    # A batch row that breaks a rule: one line that names its row once.
    record.update(order_number="OC-2026-004600", items=[{**record["items"][0], "quantity": "0"}], pdf="orden.pdf")
    (shell.cwd / "bad.jsonl").write_text(json.dumps(record) + "\n")
    batch = shell.cli("register-batch", "bad.jsonl")
    assert batch.returncode == 1
    (line,) = [text for text in batch.stderr.splitlines() if text.startswith("row ")]
    assert line.startswith("row 1: OC-2026-004600: invalid order (1 problem): items[0].quantity") and line.count(
        "row 1") == 1

    # The demo again, with `node` and `serve` running in this folder: the same chain, registry and page,
    # and the page agrees with the demo's verdict.
    now = status(shell)
    again = shell.cli("demo", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert isinstance(now["chain"], dict) and summary["rpc"] == now["chain"]["rpc"]
    assert summary["registry"] == now["registry"]
    assert summary["verify"][0]["status"] == "superseded"
    assert summary["page_url"] == shell.local("http://127.0.0.1:8000/o/20131370998/OC-2026-004512")
    token = summary["orders"][0]["token_id"]
    api = httpx.get(shell.local(f"http://127.0.0.1:8000/api/orders/{token}"), timeout=10).json()
    assert api["status"] == "superseded"
    assert status(shell)["page_server"] == now["page_server"]  # the page server was reused, not replaced

    # deploy --rpc naming this folder's own chain signs with the embedded signer; another node needs a key.
    own = shell.cli("deploy", "--rpc", shell.local("http://127.0.0.1:8545"), "--json")
    assert own.returncode == 0, own.stderr
    foreign = shell.cli("deploy", "--rpc", f"http://127.0.0.1:{free_port()}", without=("PERU_COMPRAS_PRIVATE_KEY",))
    assert foreign.returncode == 2 and "signs only on this folder's local chain" in foreign.stderr

    # The README's last line: stop. Nothing it started is left, and the chain is kept.
    now = status(shell)
    running = [now["chain"]["pid"], now["chain"]["anvil_pid"], now["page_server"]["pid"]]  # type: ignore[index]
    shell.env.pop("PERU_COMPRAS_RPC", None)
    for step in stop:
        shell.run(step)
    assert not any(pid_alive(int(pid)) for pid in running)
    for process, _ in shell.background:  # `serve` ends by uvicorn re-raising the SIGTERM it handled
        assert process.wait(timeout=20) in (0, -15)
    registry = json.loads((shell.cwd / "ordenes-ocds.json").read_text())["releases"][0]["chainRegistration"][
        "registry"]
    after = shell.cli("show", "20131370998/OC-2026-004513", "--registry", registry)
    assert after.returncode == 3 and not (shell.cwd / ".peru-compras/node.json").exists()

    restarted = subprocess.Popen([str(VENV_BIN / "peru-compras"), "node", "--port", str(free_port())], cwd=shell.cwd,
                                 env=shell.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert restarted.stdout is not None and b"local chain running at" in restarted.stdout.readline()
        for key, wanted in (("20131370998/OC-2026-004513", "annulled"), ("20131370998/OC-2026-300003", "valid"),
                            ("20131370998/OC-2026-004514", "valid")):
            shown = shell.cli("show", key, "--registry", registry, "--json")
            assert shown.returncode == 0 and json.loads(shown.stdout)["status"] == wanted, shown.stderr
        unreachable = shell.cli("verify", "--fetch", "--token", "20131370998/OC-2026-004514", "--registry", registry)
        assert unreachable.returncode == 3  # the page is stopped: the download error is said once
        assert (unreachable.stdout + unreachable.stderr).count("cannot download") == 1, unreachable
    finally:
        assert shell.cli("stop").returncode == 0
        assert restarted.wait(timeout=20) == 0
    print(f"walkthrough: {time.monotonic() - begun:.1f} s")


def test_the_demo_with_the_page_port_taken(shell: Shell) -> None:
    """The QR codes' page is the base URL: with its port held by another program the demo says so in one
    line and serves nothing elsewhere; `serve` refuses the busy port in one line (exit 3) and warns when
    told to listen where the QR codes do not point."""
    page_port = int(shell.ports["8000"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", page_port))
        squatter.listen()
        demo = shell.cli("demo")
        assert demo.returncode == 0, demo.stderr
        assert f"warning: port {page_port} is in use by another program" in demo.stderr
        assert "verification page is at" not in demo.stdout and "peru-compras stop" in demo.stdout
        assert status(shell)["page_server"] is None
        busy = shell.cli("serve")
        assert busy.returncode == 3
        assert busy.stderr.strip() == (f"error: port {page_port} on 127.0.0.1 is already in use by another program "
                                       "— stop it (`peru-compras stop` ends this folder's) or pick another with --port")
    other = free_port()
    serving = subprocess.Popen([str(VENV_BIN / "peru-compras"), "serve", "--port", str(other)], cwd=shell.cwd,
                               env=shell.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert serving.stderr is not None
        first = serving.stderr.readline()
        assert first.startswith(f"warning: the QR codes point to http://127.0.0.1:{page_port}, not to this server "
                                f"(port {other})")
    finally:
        stopped = shell.cli("stop")
        assert stopped.returncode == 0 and "the page server" in stopped.stdout and "the local chain" in stopped.stdout
        assert serving.wait(timeout=20) in (0, -15)  # uvicorn re-raises the SIGTERM it handled
    after = status(shell)
    assert after["running"] is False and after["chain"] is None and after["page"] is None


def test_messages_a_newcomer_meets(shell: Shell) -> None:
    (shell.cwd / "empty.json").write_text("{}")
    keystore = shell.cli("--keystore", "empty.json", "deploy")
    assert keystore.returncode == 2 and "is JSON but not a keystore" in keystore.stderr
    assert "password" not in keystore.stderr
    missing = shell.cli("register", "orden.json")
    assert missing.returncode == 2 and missing.stderr.strip() == (
        "error: Missing argument 'pdf'. — see `peru-compras register --help`")
    export_help = shell.cli("export-ocds", "--help").stdout
    assert export_help.count("release-package.json") == 1
    for command in ("show", "verify", "stop", "status", "export-ocds"):
        text = " ".join(shell.cli(command, "--help").stdout.split())
        assert all(flag in text for flag in ("--json", "--rpc", "--registry", "--network", "--home", "--lacnet-model",
                                             "--metatx-hub", "--relayer-keystore")), command
    nothing = shell.cli("stop")
    assert nothing.returncode == 0 and nothing.stdout.strip() == "nothing was running for this folder"
    assert not (shell.cwd / ".peru-compras" / "node.json").exists()


def test_the_readme_names_what_the_repository_holds() -> None:
    usage = section("Using the command line")
    assert ".venv/bin/peru-compras" in usage and 'export PATH="$PWD/.venv/bin:$PATH"' in usage
    assert "peru_compras/samples/" in usage and (ROOT / "peru_compras" / "samples").is_dir()
    for link in re.findall(r"\]\((docs/[^)]+)\)", README):
        assert (ROOT / link).is_file(), link
    assert "docs/record.md" in usage
    record = (ROOT / "docs" / "record.md").read_text(encoding="utf-8")
    for name in ("order_number", "issued_on", "entity", "buyer", "supplier", "items", "total", "delivery",
                 "document_url"):
        assert f"| `{name}` |" in record, name


def test_a_killed_chain_owner_leaves_no_anvil_and_a_whole_state(shell: Shell) -> None:
    """SIGKILL of the owner (a crash): Anvil ends with it, state.json is whole JSON (written by rename),
    and the chain comes back with the registry deployed before the crash."""
    deployed = shell.cli("deploy", "--json")
    assert deployed.returncode == 0, deployed.stderr
    chain = status(shell)["chain"]
    assert isinstance(chain, dict)
    state = shell.cwd / ".peru-compras/chain/state.json"
    deadline = time.monotonic() + 20
    while not (state.exists() and int(json.loads(state.read_text())["block"]["number"], 16) >= 1):
        assert time.monotonic() < deadline, "the deploy block never reached state.json"
        time.sleep(0.1)
    os.kill(int(chain["pid"]), 9)
    deadline = time.monotonic() + 10
    while pid_alive(int(chain["anvil_pid"])) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(int(chain["anvil_pid"])) and not pid_alive(int(chain["pid"]))
    assert status(shell)["running"] is False
    assert shell.cli("roles", "list").returncode == 3  # a read: says it is not running, starts nothing
    assert status(shell)["running"] is False
    restarted = subprocess.Popen([str(VENV_BIN / "peru-compras"), "node", "--port", str(free_port())], cwd=shell.cwd,
                                 env=shell.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert restarted.stdout is not None and b"local chain running at" in restarted.stdout.readline()
        roles = shell.cli("roles", "list", "--json")
        assert roles.returncode == 0, roles.stderr
        assert len(json.loads(roles.stdout)["registrar"]) == 1
    finally:
        shell.cli("stop")
        restarted.wait(timeout=20)


def test_a_second_demo_serves_the_registry_it_reports(shell: Shell) -> None:
    """The demo's page server is reused only while it reads the registry the demo uses: after `deploy`
    made this folder use a new registry, the second demo restarts it, and page and demo agree."""
    first = shell.cli("demo", "--json")
    assert first.returncode == 0, first.stderr
    before = status(shell)["page_server"]
    assert isinstance(before, dict)
    deployed = shell.cli("deploy", "--json")
    assert deployed.returncode == 0, deployed.stderr
    again = shell.cli("demo", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["registry"] == json.loads(deployed.stdout)["registry"] != json.loads(first.stdout)["registry"]
    after = status(shell)["page_server"]
    assert isinstance(after, dict) and after["pid"] != before["pid"] and not pid_alive(int(before["pid"]))
    health = httpx.get(shell.local("http://127.0.0.1:8000/healthz"), timeout=10).json()
    assert health["registry"] == summary["registry"]
