"""The package's shape: no import cycle inside peru_compras, no module over 500 lines, and one ABI codec
(chain/abi.py: no module imports eth_abi or eth_utils; rlp only for lacnet's rlp.decode).

The import graph is read from the source (ast), not from what one run happens to import: every ``import``
and ``from … import`` anywhere in a module — at the top or inside a function, absolute or relative — is an
edge to the peru_compras module it names (``from .pkg import name`` also to ``pkg.name`` when that is a
module). Imports under ``if TYPE_CHECKING:`` are left out: they never run. The edge from a submodule to its
own package's ``__init__`` (Python runs it first, whatever the import) is not counted either: a package that
re-exports its submodules is not a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "peru_compras"
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported peru_compras module: the line of the first such import}."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skipped = _type_checking_lines(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skipped:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [source] + [f"{source}.{alias.name}" for alias in node.names]
            for target in targets:
                if target in modules and target != name and not name.startswith(target + "."):
                    graph[name].setdefault(target, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(_path_through(sorted(component), graph))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _path_through(component: list[str], graph: dict[str, dict[str, int]]) -> list[str]:
    """One cycle inside `component`, from its first module back to it (breadth-first)."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node]):
                if target not in members:
                    continue
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, node, start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    return component  # pragma: no cover — a component always holds a cycle


def test_no_import_cycle_inside_the_package() -> None:
    graph = import_graph()
    found = cycles(graph)
    shown = []
    for path in found:
        steps = [f"{a} -> {b} ({_modules()[a].relative_to(PACKAGE.parent)}:{graph[a][b]})"
                 for a, b in zip(path, path[1:], strict=False)]
        shown.append("\n    ".join(steps))
    assert not found, f"{len(found)} import cycle(s):\n  " + "\n  ".join(shown)


def test_no_module_over_500_lines() -> None:
    sizes = {path.relative_to(PACKAGE.parent): len(path.read_text(encoding="utf-8").splitlines())
             for path in _modules().values()}
    over = sorted(((lines, str(path)) for path, lines in sizes.items() if lines > MAX_LINES), reverse=True)
    assert not over, (f"{len(over)} module(s) over {MAX_LINES} lines:\n  "
                      + "\n  ".join(f"{path}: {lines} lines" for lines, path in over))


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The reader itself: relative, absolute and function-level imports are edges; TYPE_CHECKING ones are not;
    a made-up two-module cycle is found and shown as a closed path."""
    graph = import_graph()
    assert "peru_compras.errors" in graph["peru_compras.chain.rpc"]  # from ..errors import …
    assert "peru_compras.chain.rpc" in graph["peru_compras.chain.client"]  # from .rpc import …
    assert "peru_compras.chain.keys" in graph["peru_compras.settings"]  # a function-level import
    assert "peru_compras.workspace" not in graph["peru_compras"]  # only under TYPE_CHECKING
    made_up = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}}
    assert cycles(made_up) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


#: the one place each may still be imported (by a function, when it runs): rlp.decode for a relayed LACNet
#: transaction, eth_hash when pycryptodome's Keccak is missing; eth_abi and eth_utils nowhere (chain/abi.py)
ETH_IMPORTS_ALLOWED = {"rlp": {"peru_compras.chain.lacnet"}, "eth_hash": {"peru_compras.hashing"},
                       "eth_abi": set(), "eth_utils": set()}


def eth_imports(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """library (eth_abi, eth_utils, rlp, eth_hash) -> the package modules that import it, anywhere in them."""
    found: dict[str, set[str]] = {library: set() for library in ETH_IMPORTS_ALLOWED}
    for name, path in (modules or _modules()).items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skipped = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skipped:
                continue
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for imported in names:
                library = imported.split(".")[0]
                if library in found:
                    found[library].add(name)
    return found


def test_one_abi_codec_one_checksum_one_rlp_encoder() -> None:
    """eth_abi and eth_utils are imported by no module (chain/abi.py encodes, decodes and checksums), rlp only
    for rlp.decode in chain/lacnet (chain/keys.rlp_encode signs), eth_hash only as hashing's fallback."""
    assert eth_imports() == ETH_IMPORTS_ALLOWED


def test_the_eth_import_scan_sees_imports(tmp_path: Path) -> None:
    """The scan itself: lacnet's function-level ``import rlp`` is seen; in a made-up module a function's
    ``from eth_abi.abi import …`` and a top-level ``import eth_utils.address`` are, a TYPE_CHECKING one is not."""
    assert "peru_compras.chain.lacnet" in eth_imports()["rlp"]
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nimport eth_utils.address\nif TYPE_CHECKING:\n"
                      "    import rlp\n\ndef f():\n    from eth_abi.abi import decode\n", encoding="utf-8")
    assert eth_imports({"m": module}) == {"eth_abi": {"m"}, "eth_utils": {"m"}, "rlp": set(), "eth_hash": set()}
