"""The package's public face is small, sorted, and changes only on purpose."""

from __future__ import annotations

import subprocess
import sys

import peru_compras

EXPECTED = [
    "ChainRefused", "ConfigurationError", "DocumentStore", "InvalidDocument", "InvalidInput", "InvalidOrder",
    "LocalNode", "LocalStore", "Network", "NodeUnavailable", "NotAuthorized", "OnChainOrder", "Order",
    "OrderAlreadyRegistered", "OrderNotRegistered", "OrderNotValid", "OrderState", "PeruComprasError",
    "Registration", "Registry", "RegistryPaused", "RelayRefused", "Rpc", "Transactor", "Verdict", "hashlink",
    "load_order", "network", "parse_digest", "parse_order", "render_order", "ruc_is_valid", "sha256", "stamp_pdf",
    "verify_document",
]


def test_all_is_sorted_and_pinned() -> None:
    assert peru_compras.__all__ == sorted(peru_compras.__all__) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in peru_compras.__all__:
        assert getattr(peru_compras, name) is not None


def test_errors_share_one_root_and_their_builtin() -> None:
    assert issubclass(peru_compras.InvalidOrder, (peru_compras.PeruComprasError, ValueError))
    assert issubclass(peru_compras.NodeUnavailable, ConnectionError)
    assert issubclass(peru_compras.OrderNotRegistered, LookupError)


def test_importing_the_cli_does_not_load_web3() -> None:
    code = "import sys, peru_compras.cli; print('web3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_shipped_contract_artifact_is_up_to_date() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, str(root / "scripts/build_contracts.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
