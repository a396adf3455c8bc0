"""Mutation scores of the modules that decide whether an order, a hash or a download is valid (issue 19).

Runs mutmut 3 on each module with its own fast unit-test file, in a scratch copy of the repository (mutmut
writes a ``mutants/`` folder next to the code; nothing is written in the working tree but the results
file), and writes ``benchmarks/results/mutation.json``:

    .venv/bin/python benchmarks/mutation.py                 # the working tree
    .venv/bin/python benchmarks/mutation.py --ref d4cf098   # a commit (git archive), e.g. the "before"

Scores are ``killed / (killed + survived + no test reaches it)``; a timeout or a crash of the tests counts
as killed (the change was noticed). Mutants that only change a string that is a message (inside an
f-string, a ``raise``, a problem added with ``.add``, an error's ``hint``, or any literal of two words or
more) are counted apart, as the issue asks: their score is reported on its own line and left out of the
module's score. The on-chain decoder (``decode_entry``, ``_inflate``) is reported as a function subset;
the PDF acceptance checks are the modules ``peru_compras/pdf/open.py`` (limits, opening, damage),
``peru_compras/pdf/checked.py`` (reading one file or many) and ``peru_compras/pdf/checks.py`` (active content,
other addresses) with their own unit tests
(``tests/test_pdf_checks.py``). Not part of the test command: it takes several minutes (goal: all of it
under 10 minutes on the 2-CPU machine; the wall time is recorded as ``_about.seconds_total``).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import queue
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = ROOT / ".venv" / "bin" / "mutmut"
SCRATCH = Path(os.environ.get("PERU_COMPRAS_MUTATION_SCRATCH", "/work/scratch/h6-mut"))
RESULTS = ROOT / "benchmarks" / "results" / "mutation.json"

DECODER = ("decode_entry", "_inflate")


@dataclass
class Target:
    name: str
    modules: tuple[str, ...]  # paths of the files mutmut changes
    tests: list[str]
    functions: tuple[str, ...] = ()  # only these functions' mutants (all when empty)
    pytest_args: list[str] = field(default_factory=list)
    subsets: dict[str, tuple[str, ...]] = field(default_factory=dict)


TARGETS = [
    Target("order", ("peru_compras/order.py", "peru_compras/text_rules.py", "peru_compras/canonical.py"),
           ["tests/test_order.py"],
           subsets={"on-chain decoder (decode_entry, _inflate)": DECODER}),
    Target("hashing", ("peru_compras/hashing.py",), ["tests/test_hashing.py"]),
    Target("fetch", ("peru_compras/fetch.py",), ["tests/test_fetch_policy.py"]),
    Target("pdf acceptance checks",
           ("peru_compras/pdf/open.py", "peru_compras/pdf/checked.py", "peru_compras/pdf/checks.py"),
           ["tests/test_pdf_checks.py"]),
    Target("manifest (which file a row's pdf may name)", ("peru_compras/manifest.py",), ["tests/test_manifest.py"]),
    Target("safejson (the decoder's JSON reader)", ("peru_compras/safejson.py",), ["tests/test_safejson.py"],
           pytest_args=["-k", "not web3"]),  # the subprocess test costs 3 s a mutant; the others cover loads
]


# Constants mutmut leaves alone (module level), changed by hand as issue 19 lists: (file, tests, old, new, what).
HAND_MUTANTS = [
    ("peru_compras/order.py", "tests/test_order.py", "[0-9]{1,15}(?:", "[0-9]{1,16}(?:", "16 integer digits"),
    ("peru_compras/order.py", "tests/test_order.py", r"(?:\.[0-9]{1,6})?", r"(?:\.[0-9]{1,7})?", "7 decimals"),
    ("peru_compras/order.py", "tests/test_order.py", 'r"[A-Z]{2}-[A-Z0-9]{2,12}"', 'r"[A-Za-z]{2}-[A-Za-z0-9]{2,12}"',
     "a lower-case org-id scheme"),
    ("peru_compras/order.py", "tests/test_order.py", r'r"[A-Za-z0-9][A-Za-z0-9.\-]{0,39}"', r'r"[A-Za-z0-9.\-]{1,40}"',
     "identifier without its first-character rule"),
    ("peru_compras/order.py", "tests/test_order.py", r'r"[A-Za-z0-9][A-Za-z0-9._/\-]{0,39}"',
     r'r"[A-Za-z0-9.][A-Za-z0-9._/\-]{0,39}"', "order number may start with a dot ('.', '..')"),
    ("peru_compras/order.py", "tests/test_order.py", 'r"[0-9]{8,16}"', 'r"[0-9]{7,16}"', "7-digit CUBSO"),
    ("peru_compras/order.py", "tests/test_order.py", '"""AED AFN', '"""SOL AED AFN', "an extra currency"),
    ("peru_compras/terminal.py", "tests/test_order.py", '{"Cc", "Cf", "Zl"', '{"Cc", "Zl"',
     "printable check without Cf"),
    ("peru_compras/order.py", "tests/test_order.py", "MAX_ORDER_BYTES = 256 * 1024", "MAX_ORDER_BYTES = 512 * 1024",
     "MAX_ORDER_BYTES doubled"),
    ("peru_compras/order.py", "tests/test_order.py", 'keccak256(self.key.encode()), "big")',
     'keccak256(self.key.encode()), "little")', "token_id little-endian"),
    ("peru_compras/order.py", "tests/test_order.py", 'quote(self.order_number, safe="")',
     'quote(self.order_number, safe="/")', "verify_path keeps '/' in the order number"),
    ("peru_compras/order.py", "tests/test_order.py", 'r"https?://[!-~]{1,500}"', r'r"https?://[^\s]{1,500}"',
     "document_url takes any non-space character"),
    ("peru_compras/terminal.py", "tests/test_order.py", "\\u2800\\u3164\\uffa0", "\\u2800\\uffa0",
     "U+3164 (Hangul filler) allowed"),
    ("peru_compras/text_rules.py", "tests/test_order.py", "_MARKS_IN_A_ROW = 3", "_MARKS_IN_A_ROW = 4",
     "4 combining marks in a row"),
    ("peru_compras/order.py", "tests/test_order.py", "(5, 4, 3, 2, 7, 6, 5, 4, 3, 2)", "(5, 4, 3, 2, 7, 6, 5, 4, 2, 3)",
     "RUC weights swapped"),
    ("peru_compras/order.py", "tests/test_order.py", "MAX_ITEMS = 500", "MAX_ITEMS = 501", "501 items"),
    ("peru_compras/order.py", "tests/test_order.py", "if not _DECIMAL.fullmatch(text)",
     "if not re.match(_DECIMAL.pattern + '$', text)", "the old bug: '$' under re.match"),
    ("peru_compras/hashing.py", "tests/test_hashing.py", '_MULTIHASH_SHA256 = b"\\x12\\x20"',
     '_MULTIHASH_SHA256 = b"\\x1b\\x20"', "keccak-256 multihash prefix"),
    ("peru_compras/hashing.py", "tests/test_hashing.py", "_HASHLINK_LENGTH = 50", "_HASHLINK_LENGTH = 51",
     "hashlink length"),
    ("peru_compras/hashing.py", "tests/test_hashing.py", "([0-9a-fA-F]{64})", "([0-9a-fA-F ]{64})",
     "hex digest with spaces"),
    ("peru_compras/safejson.py", "tests/test_safejson.py", "MAX_JSON_DEPTH = 32", "MAX_JSON_DEPTH = 64", "depth 64"),
    ("peru_compras/safejson.py", "tests/test_safejson.py", "MAX_NUMBER_DIGITS = 100", "MAX_NUMBER_DIGITS = 4300",
     "4,300-digit integers"),
    ("peru_compras/pdf/open.py", "tests/test_pdf_checks.py", "_EOF_WINDOW = 1024", "_EOF_WINDOW = 2048",
     "%%EOF looked for in the last 2,048 bytes"),
    ("peru_compras/pdf/open.py", "tests/test_pdf_checks.py", "MAX_PAGE_AREA = 2 * 2384.0", "MAX_PAGE_AREA = 3 * 2384.0",
     "pages up to three times A0"),
    ("peru_compras/pdf/open.py", "tests/test_pdf_checks.py", '"/Fl", "/LZW", ', '"/Fl", ',
     "LZW (short name) not decoded"),
    ("peru_compras/pdf/checks.py", "tests/test_pdf_checks.py", "_MAX_ACTION_CHAIN = 64", "_MAX_ACTION_CHAIN = 65",
     "65 chained actions followed"),
    ("peru_compras/pdf/checks.py", "tests/test_pdf_checks.py", "_MIN_QR_PATHS = 40", "_MIN_QR_PATHS = 41",
     "41 path segments before a page is read for a QR"),
    ("peru_compras/pdf/checks.py", "tests/test_pdf_checks.py", '"/ImportData": "a data import",', '',
     "ImportData not active"),
    ("peru_compras/pdf/checks.py", "tests/test_pdf_checks.py", '"/Sound": "a sound", ', '',
     "Sound annotations allowed"),
    ("peru_compras/pdf/checks.py", "tests/test_pdf_checks.py", "[:64]:", "[:65]:", "65 streams looked at"),
]


def run_hand_mutants(ref: str | None, children: int) -> dict[str, Any]:
    """Each constant changed on its own in a scratch copy; killed when its unit-test file then fails. The
    changes run `children` at a time, each worker in its own copy."""
    folders = [SCRATCH / (f"hand{n}" + ("-" + ref if ref else "")) for n in range(max(1, children))]
    for folder in folders:
        prepare(folder, ref, TARGETS[0])
    work: queue.Queue[Path] = queue.Queue()
    for folder in folders:
        work.put(folder)

    def one(change: tuple[str, str, str, str, str]) -> dict[str, Any]:
        path, tests, old, new, what = change
        folder = work.get()
        try:
            source = (folder / path).read_text() if (folder / path).exists() else ""
            if source.count(old) != 1:
                return {"change": what, "status": "not applicable (constant not found)"}
            (folder / path).write_text(source.replace(old, new))
            try:
                done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *FAST,
                                       tests], cwd=folder, capture_output=True,
                                      env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
            finally:
                (folder / path).write_text(source)
            return {"change": what, "file": path, "status": "killed" if done.returncode else "survived"}
        finally:
            work.put(folder)

    with ThreadPoolExecutor(max_workers=len(folders)) as pool:
        rows = list(pool.map(one, HAND_MUTANTS))
    applicable = [r for r in rows if r["status"] in ("killed", "survived")]
    return {"killed": sum(r["status"] == "killed" for r in rows), "applicable": len(applicable), "changes": rows}


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: pytest plugins each mutant's run can do without. Measured 14:00 UTC: pytest.main in a forked child for one
#: test of tests/test_pdf_checks.py took 0.57-2.2 s, 0.82 s of it in the unraisableexception plugin's
#: gc.collect() calls on the big heap (web3 is imported); without these plugins 0.13 s.
FAST = ["-p", "no:unraisableexception", "-p", "no:threadexception", "-p", "no:xdist", "-p", "no:faulthandler",
        "-p", "no:legacypath", "-p", "no:doctest", "-p", "no:junitxml", "-p", "no:pastebin", "-p", "no:logging"]


def prepare(folder: Path, ref: str | None, target: Target) -> None:
    """A fresh copy of the package and tests (working tree, or `ref` from git) with mutmut's config."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if ref:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "peru_compras", "tests", "pyproject.toml"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    else:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
        shutil.copytree(ROOT / "peru_compras", folder / "peru_compras", ignore=ignore)
        shutil.copytree(ROOT / "tests", folder / "tests", ignore=ignore)
        shutil.copy2(ROOT / "pyproject.toml", folder / "pyproject.toml")
    (folder / "mutants").mkdir()  # tests that run the CLI find it at <root>/.venv, <root> being mutants/
    (folder / "mutants" / ".venv").symlink_to(ROOT / ".venv")
    pytest_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-x", "-q", *FAST, *target.pytest_args]
    (folder / "setup.cfg").write_text(
        "[mutmut]\nsource_paths=peru_compras/\n"
        "only_mutate=\n" + "".join(f"    {m}\n" for m in target.modules)
        + "pytest_add_cli_args_test_selection=\n" + "".join(f"    {t}\n" for t in target.tests)
        + "pytest_add_cli_args=\n" + "".join(f"    {a}\n" for a in pytest_args)
        + "use_git_change_detection=false\n"
    )


def run_mutmut(folder: Path, target: Target, log: Path, children: int) -> float:
    patterns = [f"{m.removesuffix('.py').replace('/', '.')}.x_{name}__mutmut_*" for m in target.modules
                for name in target.functions]
    started = time.monotonic()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    anvil = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"  # tests/test_pdf.py
    if anvil.exists():  # uses a chain in one test; the scratch copy has no node_modules
        env.setdefault("PERU_COMPRAS_ANVIL", str(anvil))
    with log.open("wb") as out:
        subprocess.run([str(MUTMUT), "run", "--max-children", str(children), *patterns], cwd=folder, stdout=out,
                       stderr=subprocess.STDOUT, env=env, check=False)
    return time.monotonic() - started


STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no_tests", 33: "no_tests", 34: "skipped", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", -11: "crashed", -9: "crashed",
          None: "not_checked"}
_MESSAGE_CALLS = {"add", "InvalidInput", "InvalidOrder", "InvalidJSON", "InvalidDocument", "ValueError"}


def _functions(tree: ast.AST) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _is_message(node: ast.Constant, parents: dict[int, ast.AST]) -> bool:
    if isinstance(node.value, str) and len(node.value.split()) >= 2:
        return True
    current: ast.AST | None = node
    while current is not None:
        parent = parents.get(id(current))
        if isinstance(parent, ast.JoinedStr | ast.Raise):
            return True
        if isinstance(parent, ast.keyword) and parent.arg == "hint":
            return True
        if isinstance(parent, ast.Call) and current is not parent.func:
            name = parent.func.attr if isinstance(parent.func, ast.Attribute) else getattr(parent.func, "id", "")
            if name in _MESSAGE_CALLS:
                return True
        current = parent
    return False


def string_only(original: ast.AST, mutant: ast.AST) -> bool:
    """True when `mutant` differs from `original` only in string literals that are messages."""
    a, b = list(ast.walk(original)), list(ast.walk(mutant))
    if len(a) != len(b):
        return False
    parents = _parents(original)
    changed = False
    for x, y in zip(a, b, strict=True):
        if type(x) is not type(y):
            return False
        for name, value in ast.iter_fields(x):
            other = getattr(y, name, None)
            if isinstance(value, ast.AST | list) or (x is a[0] and name == "name"):
                continue
            if value != other or type(value) is not type(other):
                if not (isinstance(x, ast.Constant) and isinstance(value, str) and isinstance(other, str)):
                    return False
                if not _is_message(x, parents):
                    return False
                changed = True
    return changed


def _diff(original: ast.AST, mutant: ast.AST) -> list[str]:
    lines = difflib.unified_diff(ast.unparse(original).splitlines(), ast.unparse(mutant).splitlines(), n=0,
                                 lineterm="")
    return [line.strip()[:160] for line in lines
            if line[:1] in "+-" and line[:3] not in ("+++", "---") and not line[1:].startswith("def ")][:4]


def _function_of(key: str) -> str:
    """`peru_compras.order.x_decode_entry__mutmut_3` → `decode_entry`; methods: `Order.encode_entry`."""
    mangled = key.rsplit(".", 1)[-1].rsplit("__mutmut_", 1)[0]
    return mangled.removeprefix("x").lstrip("_ǁ").replace("ǁ", ".") if "ǁ" in mangled else mangled[2:]


def collect(folder: Path, target: Target) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for module in target.modules:
        rows += _rows(folder, module, target)
    out = summarize(rows)
    if len(target.modules) > 1:
        out["by_module"] = {module: summarize([r for r in rows if r["module"] == module], survivors=False)
                            for module in target.modules}
    for label, names in target.subsets.items():
        out.setdefault("subsets", {})[label] = summarize([r for r in rows if r["function"] in names],
                                                        survivors=True)
    return out


def _rows(folder: Path, module: str, target: Target) -> list[dict[str, Any]]:
    meta_path = folder / "mutants" / (module + ".meta")
    if not meta_path.exists():  # a module of the target that this commit does not have
        return []
    meta = json.loads(meta_path.read_text())
    tree = ast.parse((folder / "mutants" / module).read_text())
    defs = _functions(tree)
    rows = []
    for key, code in meta["exit_code_by_key"].items():
        function = _function_of(key)
        if target.functions and function not in target.functions:
            continue
        mangled = key.rsplit(".", 1)[-1]
        original = defs.get(mangled.rsplit("__mutmut_", 1)[0] + "__mutmut_orig")
        mutant = defs.get(mangled)
        status = STATUS.get(code, "suspicious")
        message = bool(original and mutant and string_only(original, mutant))
        rows.append({"mutant": mangled, "module": module, "function": function, "status": status,
                     "string_only": message,
                     "diff": _diff(original, mutant) if original and mutant and status in ("survived", "no_tests")
                     else []})
    return rows


def summarize(rows: list[dict[str, Any]], *, survivors: bool = True) -> dict[str, Any]:
    def count(selected: list[dict[str, Any]]) -> dict[str, Any]:
        killed = sum(r["status"] in ("killed", "timeout", "crashed") for r in selected)
        survived = sum(r["status"] in ("survived", "suspicious") for r in selected)
        untested = sum(r["status"] == "no_tests" for r in selected)
        tested = killed + survived + untested
        return {"mutants": len(selected), "killed": killed, "survived": survived, "no_test_reaches_it": untested,
                "score_percent": round(100 * killed / tested, 1) if tested else None}

    logic = [r for r in rows if not r["string_only"]]
    result = count(logic)
    result["string_only"] = count([r for r in rows if r["string_only"]])
    if survivors:
        result["surviving"] = [{"mutant": r["mutant"], "module": r["module"], "diff": r["diff"]} for r in logic
                               if r["status"] in ("survived", "no_tests", "suspicious")]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="a git commit to measure instead of the working tree (e.g. the 'before')")
    parser.add_argument("--only", action="append",
                        help="target name(s) to run, or 'constants' for the hand-changed ones (default: all)")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--reuse", action="store_true",
                        help="read the results of an earlier run in the scratch folders again (no mutmut run)")
    parser.add_argument("--note", help="a note kept with the run (e.g. how loaded the machine was)")
    parser.add_argument("--seconds", type=json.loads, default={},
                        help='with --reuse: wall seconds of that earlier run, e.g. \'{"order": 268}\'')
    args = parser.parse_args()
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    label = args.ref or "working tree"
    runs = previous.get("runs", {})
    run: dict[str, Any] = runs.get(label, {}) if args.only else {}
    started = time.monotonic()
    load_at_start = [round(x, 1) for x in os.getloadavg()]
    for target in TARGETS:
        if args.only and not any(target.name.split()[0] == only.split()[0] for only in args.only):
            continue
        if args.ref and subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{args.ref}:{target.tests[0]}"],
                                       capture_output=True).returncode:
            continue  # the commit has no such test file
        folder = SCRATCH / (target.name.split()[0] + ("-" + args.ref if args.ref else ""))
        seconds = cpu = None
        if not args.reuse:
            prepare(folder, args.ref, target)
            cpu_before = _cpu_seconds()
            seconds = run_mutmut(folder, target, SCRATCH / f"{folder.name}.log", args.children)
            cpu = round(_cpu_seconds() - cpu_before, 1)
        result = collect(folder, target)
        run[target.name] = {"modules": list(target.modules), "tests": target.tests,
                            "seconds": round(seconds, 1) if seconds is not None else run.get(target.name, {}).get(
                                "seconds", args.seconds.get(target.name.split()[0])),
                            "cpu_seconds": cpu if cpu is not None else run.get(target.name, {}).get("cpu_seconds"),
                            **({"functions": list(target.functions)} if target.functions else {}), **result}
        sub = result.get("subsets", {})
        print(f"{target.name:40} {result['score_percent']}% ({result['killed']}/"
              f"{result['killed'] + result['survived'] + result['no_test_reaches_it']}), string-only "
              f"{result['string_only']['killed']}/{result['string_only']['mutants']}, {seconds or 0:.0f} s"
              + "".join(f"; {k}: {v['score_percent']}%" for k, v in sub.items()), flush=True)
    if not args.only or "constants" in args.only:
        hand_started, cpu_before = time.monotonic(), _cpu_seconds()
        run["hand-changed constants"] = hand = run_hand_mutants(args.ref, args.children)
        hand["seconds"] = round(time.monotonic() - hand_started, 1)
        hand["cpu_seconds"] = round(_cpu_seconds() - cpu_before, 1)
        print(f"{'hand-changed constants':40} {hand['killed']}/{hand['applicable']} killed, {hand['seconds']:.0f} s")
    runs[label] = run
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.ref or "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    run["_about"] = {"commit": commit + ("" if args.ref else " + working tree"), "mutmut": "3.8.1",
                     "cpus": os.cpu_count(), "children": args.children,
                     "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
                     "seconds_total": round(time.monotonic() - started, 1),
                     "cpu_seconds_total": round(_cpu_seconds(), 1),
                     "load_average_at_start": load_at_start,
                     "command": " ".join(["benchmarks/mutation.py", *sys.argv[1:]]),
                     **({"note": args.note} if args.note else {})}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"about": __doc__.split("\n\n")[0], "runs": runs}, indent=1,
                                   ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
