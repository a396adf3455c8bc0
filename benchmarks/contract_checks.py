"""Would the Foundry suite notice if a check in the registry were removed?

    .venv/bin/python benchmarks/contract_checks.py    # writes benchmarks/results/contract_checks.json

In a scratch copy outside the repo (``--scratch``, default /work/scratch/h4/contract-checks) each check in
contracts/src/PurchaseOrderRegistry.sol is removed in turn and ``forge test`` is run: a `revert` statement
(``if (c) revert E(…);`` keeps its condition and does nothing), a `require(…)`, a `_checkRole(…)` call, an
``onlyRole(…)`` / ``whenNotPaused`` modifier, and the calls that check for us (``_requireNotPaused()``,
``_requireOwned(…)``, ``_requireValid(…)``). A removal is *unnoticed* when every test still passes.
Custom errors declared in the interfaces but never raised by the contract are listed too.

Fast profile (a mutant only needs to fail, not to be optimized): no via-IR, no optimizer, 64 fuzz runs,
8 invariant runs of depth 16 — about 5 s per mutant instead of a minute.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = "contracts/src/PurchaseOrderRegistry.sol"
FORGE_BIN = ROOT / "node_modules/@foundry-rs/forge-linux-amd64/bin"
FAST = {"FOUNDRY_VIA_IR": "false", "FOUNDRY_OPTIMIZER": "false", "FOUNDRY_FUZZ_RUNS": "64",
        "FOUNDRY_INVARIANT_RUNS": "8", "FOUNDRY_INVARIANT_DEPTH": "16"}
# a statement starting with one of these, up to its `;` at bracket depth 0, is a removable check
_STATEMENTS = re.compile(r"\b(revert|require|_checkRole|_requireNotPaused|_requireOwned|_requireValid)\s*\(?")
_MODIFIERS = re.compile(r"\b(onlyRole\s*\([^)]*\)|whenNotPaused\b|whenPaused\b)")
_ERROR = re.compile(r"\berror\s+(\w+)\s*\(")
# weakened checks that change nothing a caller can see, with the reason (counted apart, not as gaps)
EQUIVALENT = {
    "offset + 2 > end -> offset + 2 >= end": "with exactly two bytes left the entry is empty, and an empty entry "
                                            "is refused with the same PurchaseOrderMalformed(count)",
}


@dataclass
class Check:
    line: int
    kind: str
    text: str
    start: int
    end: int
    replacement: str | None = None  # None: the check is removed; else the weakened text put in its place
    outcome: str = ""  # killed | unnoticed | equivalent | does_not_compile
    failing_tests: list[str] | None = None


def _mask(source: str) -> str:
    """`source` with comments and string literals blanked (same length), so only code is searched."""
    out = list(source)
    i = 0
    while i < len(source):
        if source.startswith("//", i):
            j = source.find("\n", i)
            j = len(source) if j < 0 else j
        elif source.startswith("/*", i):
            j = source.find("*/", i + 2) + 2
        elif source[i] in "\"'":
            j = i + 1
            while source[j] != source[i]:
                j += 2 if source[j] == "\\" else 1
            j += 1
        else:
            i += 1
            continue
        for k in range(i, j):
            if out[k] != "\n":
                out[k] = " "
        i = j
    return "".join(out)


def _statement_end(code: str, start: int) -> int:
    depth = 0
    for i in range(start, len(code)):
        if code[i] in "([{":
            depth += 1
        elif code[i] in ")]}":
            depth -= 1
        elif code[i] == ";" and depth == 0:
            return i + 1
    raise ValueError(f"no end for the statement at offset {start}")


def find_checks(source: str) -> list[Check]:
    code = _mask(source)
    checks = []
    for match in _STATEMENTS.finditer(code):
        name = match.group(1)
        before = code[: match.start()].rstrip()
        if name != "revert" and not before.endswith((";", "{", "}", ")")):
            continue  # a declaration or a use inside an expression, not a statement
        if re.search(r"\bfunction\s*$", before):
            continue
        end = _statement_end(code, match.start())
        checks.append(Check(source.count("\n", 0, match.start()) + 1, name, source[match.start():end],
                            match.start(), end))
    for match in _MODIFIERS.finditer(code):
        checks.append(Check(source.count("\n", 0, match.start()) + 1, "modifier " + match.group(1).split("(")[0],
                            match.group(1), match.start(), match.end()))
    return sorted(checks, key=lambda c: c.start)


def _conditions(code: str) -> list[tuple[int, int]]:
    """(start, end) of the condition of every `if` statement."""
    spans = []
    for match in re.finditer(r"\bif\s*\(", code):
        depth, i = 0, match.end() - 1
        for i in range(match.end() - 1, len(code)):
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            if depth == 0:
                break
        spans.append((match.end(), i))
    return spans


def _top_level(text: str, pattern: str) -> list[re.Match[str]]:
    depth, found = 0, []
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1, "[": 1, "]": -1}.get(char, 0)
        if depth == 0 and (match := re.compile(pattern).match(text, i)):
            found.append(match)
    return found


def weakened(source: str, roles: list[str]) -> list[Check]:
    """Checks made weaker instead of removed: another role asked for; in every `if`, one operand of an
    `a || b` or `a && b` condition dropped, a comparison's boundary moved (`>` ↔ `>=`, `<` ↔ `<=`), an
    equality negated."""
    code = _mask(source)
    out = []
    for match in re.finditer(r"\b(_checkRole\s*\(\s*|onlyRole\s*\(\s*)(\w+)", code):
        for role in roles:
            if role != match.group(2):
                out.append(Check(source.count("\n", 0, match.start()) + 1, "wrong role", match.group(0) + " -> " + role,
                                 match.start(2), match.end(2), role))
    for start, end in _conditions(code):
        condition = source[start:end]
        line = source.count("\n", 0, start) + 1
        joiner = "&&" if _top_level(condition, r"&&") else "||"
        operators = _top_level(condition, re.escape(joiner))
        operands = [0, *[m.end() for m in operators]]
        bounds = [*[m.start() for m in operators], len(condition)]
        parts = [condition[x:y].strip() for x, y in zip(operands, bounds, strict=True)]
        if len(parts) > 1:
            for k in range(len(parts)):
                kept = f" {joiner} ".join(part for j, part in enumerate(parts) if j != k)
                out.append(Check(line, "operand dropped", f"{condition} -> {kept}", start, end, kept))
        for m in _top_level(condition, r"(?<![<>=!])(>=|<=|>|<|==|!=)(?![<>=])"):
            flipped = {">": ">=", ">=": ">", "<": "<=", "<=": "<", "==": "!=", "!=": "=="}[m.group(1)]
            new = condition[: m.start()] + flipped + condition[m.end():]
            kind = "negated" if "=" in m.group(1) and m.group(1)[0] in "=!" else "boundary"
            out.append(Check(line, kind, f"{condition} -> {new}", start, end, new))
    return out


def remove(source: str, check: Check) -> str:
    if check.replacement is not None:
        return source[: check.start] + check.replacement + source[check.end:]
    # `{}` keeps `if (c) revert E();` a valid statement; a removed modifier leaves white space
    filler = "" if check.kind.startswith("modifier") else "{}"
    return source[: check.start] + filler + source[check.end:]


def prepare(scratch: Path) -> None:
    """A copy of what forge needs (contracts/, foundry.toml, scripts/solc) with node_modules linked."""
    if scratch.resolve().is_relative_to(ROOT.resolve()):
        sys.exit(f"--scratch {scratch} must be outside the repository")
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    shutil.copytree(ROOT / "contracts", scratch / "contracts",
                    ignore=shutil.ignore_patterns("out", "cache", "snapshots"))
    shutil.copy2(ROOT / "foundry.toml", scratch / "foundry.toml")
    (scratch / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts/solc", scratch / "scripts/solc")
    (scratch / "node_modules").symlink_to(ROOT / "node_modules")


def forge_test(scratch: Path, match_path: str | None = None) -> tuple[str, list[str]]:
    env = {**os.environ, **FAST, "PATH": f"{FORGE_BIN}{os.pathsep}{os.environ['PATH']}"}
    selection = ["--match-path", match_path] if match_path else []
    proc = subprocess.run(["forge", "test", "--fail-fast", *selection], cwd=scratch, env=env, capture_output=True,
                          text=True, timeout=900)
    output = proc.stdout + proc.stderr
    if proc.returncode == 0:
        return "unnoticed", []
    failing = sorted({m.group(1) for line in output.splitlines() if line.startswith("[FAIL")
                      for m in [re.search(r"\s(\w+)\([^()]*\)\s*\((?:gas|runs)", line)] if m})
    if not failing and ("Compiler run failed" in output or "Error (" in output):
        return "does_not_compile", [line for line in output.splitlines() if "Error" in line][:3]
    return "killed", failing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scratch", type=Path, default=Path("/work/scratch/h4/contract-checks"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/contract_checks.json")
    parser.add_argument("--label", default="", help="a note stored with the results (e.g. before/after)")
    parser.add_argument("--match-path", help="run only these test files (forge's --match-path glob), e.g. "
                        "contracts/test/PurchaseOrderRegistry.checks.t.sol")
    args = parser.parse_args()
    prepare(args.scratch)
    target = args.scratch / CONTRACT
    original = target.read_text()
    started = time.monotonic()
    baseline, failing = forge_test(args.scratch, args.match_path)
    if baseline != "unnoticed":
        sys.exit(f"the unmodified suite does not pass ({baseline}: {failing}); fix it first")
    roles = ["DEFAULT_ADMIN_ROLE", *re.findall(r"constant\s+(\w+_ROLE)\b", _mask(original))]
    removed, weaker = find_checks(original), weakened(original, roles)
    for check in removed + weaker:
        target.write_text(remove(original, check))
        check.outcome, check.failing_tests = forge_test(args.scratch, args.match_path)
        if check.outcome == "unnoticed" and check.text in EQUIVALENT:
            check.outcome = "equivalent"
        shown = ", ".join((check.failing_tests or [])[:2])
        print(f"line {check.line:4} {check.kind:22} {check.outcome:16} {check.text[:60]!r} {shown}", flush=True)
    target.write_text(original)
    sources = [ROOT / CONTRACT, *sorted((ROOT / "contracts/src/interfaces").glob("*.sol"))]
    declared = sorted({name for path in sources for name in _ERROR.findall(_mask(path.read_text()))})
    raised = set(re.findall(r"\brevert\s+(\w+)\s*\(", _mask(original)))

    def summary(checks: list[Check]) -> dict[str, object]:
        return {"checks": len(checks), "noticed": sum(c.outcome == "killed" for c in checks),
                "unnoticed": sum(c.outcome == "unnoticed" for c in checks),
                "does_not_compile": sum(c.outcome == "does_not_compile" for c in checks),
                "equivalent": {c.text: EQUIVALENT[c.text] for c in checks if c.outcome == "equivalent"},
                "unnoticed_checks": [f"line {c.line} {c.kind}: {c.text}" for c in checks if c.outcome == "unnoticed"]}

    results = {
        "command": " ".join([".venv/bin/python benchmarks/contract_checks.py", *sys.argv[1:]]),
        "label": args.label,
        "tests": args.match_path or "contracts/test (all)",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "contract_sha256": hashlib.sha256(original.encode()).hexdigest(),
        "profile": FAST,
        "removed": summary(removed),
        "weakened": summary(weaker),
        "errors_declared_not_raised_here": [name for name in declared if name not in raised],
        "seconds": round(time.monotonic() - started, 1),
        "details": [{k: v for k, v in asdict(c).items() if k not in ("start", "end", "replacement")}
                    for c in removed + weaker],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    for name in ("removed", "weakened"):
        part = results[name]
        assert isinstance(part, dict)
        print(f"{name}: {part['checks']} checks, {part['noticed']} noticed, {part['unnoticed']} unnoticed")
    print(f"({results['seconds']} s) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
