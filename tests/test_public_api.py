"""The package's public face is small, sorted, and changes only on purpose."""

from __future__ import annotations

import subprocess
import sys

import pytest

import peru_compras

EXPECTED = [
    "BatchRegistrar", "ChainRefused", "ConfigurationError", "DocumentMissing", "DocumentStore", "FetchFailed",
    "FetchPolicy", "FetchRefused", "FetchTooLarge", "HubRefused", "InvalidDocument", "InvalidInput", "InvalidJSON",
    "InvalidNodeAnswer", "InvalidOrder", "InvalidReason", "LocalNode", "LocalStore", "MalformedOrder", "Network",
    "NodeUnavailable", "NotAuthorized", "NotChecked", "OnChainOrder", "Order", "OrderAlreadyRegistered",
    "OrderNotRegistered", "OrderNotValid", "OrderState", "PeruComprasError", "Prepared", "QrSigner", "Registered",
    "Registration", "Registry", "RegistryPaused", "RelayRefused", "Row", "Rpc", "RpcError", "Session", "Settings",
    "Signer", "Summary", "TokenLocked", "Transactor", "TrustPack", "Unavailable", "UnreadableRecord", "Verdict",
    "Workspace", "annul", "build_trust_pack", "count_rows", "deploy", "export_package", "hashlink", "load_order",
    "load_settings", "load_trust_pack", "manifest_kind", "network", "parse_digest", "parse_order", "prepare",
    "read_manifest", "record_json", "register", "render_order", "resolve", "ruc_is_valid", "sha256", "stamp_pdf",
    "token_hex", "verify_document", "verify_pdf", "verify_qr", "verify_url"
]


def test_all_is_sorted_and_pinned() -> None:
    assert peru_compras.__all__ == sorted(peru_compras.__all__) == EXPECTED


def test_the_type_checkers_imports_name_the_same_objects() -> None:
    """The TYPE_CHECKING imports in __init__.py (what mypy and editors see) list exactly the exported names,
    each from the module the lazy lookup uses."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(peru_compras.__file__).read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    seen = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        for alias in node.names:
            seen[alias.asname or alias.name] = node.module if alias.asname in (None, alias.name) else \
                f"{node.module}:{alias.name}"
    assert seen == peru_compras._EXPORTS


def test_every_public_name_resolves() -> None:
    for name in peru_compras.__all__:
        assert getattr(peru_compras, name) is not None


def test_errors_share_one_root_and_their_builtin() -> None:
    assert issubclass(peru_compras.InvalidOrder, (peru_compras.PeruComprasError, ValueError))
    assert issubclass(peru_compras.NodeUnavailable, ConnectionError)
    assert issubclass(peru_compras.OrderNotRegistered, LookupError)
    import peru_compras.errors as errors

    every = [value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, Exception)]
    assert every and all(issubclass(error, peru_compras.PeruComprasError) for error in every)
    assert all(error.__name__ in peru_compras.__all__ for error in every)  # the whole tree is public


def test_old_import_paths_name_the_same_errors() -> None:
    from peru_compras import errors, fetch
    from peru_compras.chain import lacnet, rpc

    assert rpc.RpcError is errors.RpcError and lacnet.HubRefused is errors.HubRefused
    assert (fetch.FetchRefused, fetch.FetchTooLarge, fetch.FetchFailed, fetch.DocumentMissing) == (
        errors.FetchRefused, errors.FetchTooLarge, errors.FetchFailed, errors.DocumentMissing)
    assert issubclass(errors.RpcError, errors.PeruComprasError) and issubclass(errors.Unavailable,
                                                                                 errors.NodeUnavailable)


def test_importing_the_cli_does_not_load_web3() -> None:
    code = "import sys, peru_compras.cli; print('web3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.slow
def test_shipped_contract_artifact_is_up_to_date() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, str(root / "scripts/build_contracts.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
