"""Compile the contracts with forge (solc-js behind scripts/solc) and export what the Python package ships:
peru_compras/chain/artifacts/PurchaseOrderRegistry.json (ABI, creation bytecode, compiler settings), and
the LACNet emulator's contracts the tests deploy (contracts/emulator/ -> tests/lacnet/artifacts/).

    .venv/bin/python scripts/build_contracts.py            # rebuild and write the artifact
    .venv/bin/python scripts/build_contracts.py --check    # rebuild and fail if the shipped one is stale
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORGE = ROOT / "node_modules/@foundry-rs/forge-linux-amd64/bin/forge"
ARTIFACT = ROOT / "peru_compras/chain/artifacts/PurchaseOrderRegistry.json"
CONTRACT = "PurchaseOrderRegistry"
EMULATOR = ("EmulatedRelayHub", "EmulatedForwarder", "EmulatedMetaTxHub")
EMULATOR_ARTIFACTS = ROOT / "tests/lacnet/artifacts"
SETTINGS = "solc-js 0.8.37, evmVersion berlin, optimizer 10000 runs"


def _export(out_dir: Path, name: str, compiler: str) -> str:
    compiled = json.loads((out_dir / f"{name}.sol" / f"{name}.json").read_text())
    data = {
        "contractName": name,
        "compiler": compiler,
        "abi": compiled["abi"],
        "bytecode": compiled["bytecode"]["object"],
        "deployedBytecode": compiled["deployedBytecode"]["object"],
    }
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def build(out_dir: Path) -> dict[Path, str]:
    """Every shipped artifact: its path and fresh text."""
    subprocess.run(
        [str(FORGE), "build", "contracts/src", "contracts/emulator", "--skip", "test", "--out", str(out_dir),
         "--cache-path", str(out_dir / "cache")],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )
    out = {ARTIFACT: _export(out_dir, CONTRACT, SETTINGS + ", OpenZeppelin 5.4.0")}
    for name in EMULATOR:
        out[EMULATOR_ARTIFACTS / f"{name}.json"] = _export(out_dir, name, SETTINGS + " (LACNet emulator, tests only)")
    return out


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build(Path(tmp))
    if "--check" in sys.argv:
        stale = [path for path, text in fresh.items() if (path.read_text() if path.exists() else "") != text]
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run .venv/bin/python scripts/build_contracts.py",
                  file=sys.stderr)
        if stale:
            return 1
        print("contract artifacts are up to date")
        return 0
    for path, text in fresh.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)} ({len(json.loads(text)['bytecode']) // 2 - 1} bytes of creation code)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
