"""Compile the contracts with forge (solc-js behind scripts/solc) and export what the Python package ships:
peru_compras/chain/artifacts/PurchaseOrderRegistry.json (ABI, creation bytecode, compiler settings).

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


def build(out_dir: Path) -> dict[str, object]:
    subprocess.run(
        [str(FORGE), "build", "--skip", "test", "--out", str(out_dir), "--cache-path", str(out_dir / "cache")],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )
    compiled = json.loads((out_dir / f"{CONTRACT}.sol" / f"{CONTRACT}.json").read_text())
    return {
        "contractName": CONTRACT,
        "compiler": "solc-js 0.8.37, evmVersion berlin, optimizer 10000 runs, OpenZeppelin 5.4.0",
        "abi": compiled["abi"],
        "bytecode": compiled["bytecode"]["object"],
        "deployedBytecode": compiled["deployedBytecode"]["object"],
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build(Path(tmp))
    text = json.dumps(fresh, indent=1, sort_keys=True) + "\n"
    if "--check" in sys.argv:
        shipped = ARTIFACT.read_text() if ARTIFACT.exists() else ""
        if shipped != text:
            print(f"{ARTIFACT.relative_to(ROOT)} is stale: run .venv/bin/python scripts/build_contracts.py",
                  file=sys.stderr)
            return 1
        print("contract artifact is up to date")
        return 0
    ARTIFACT.write_text(text)
    print(f"wrote {ARTIFACT.relative_to(ROOT)} ({len(fresh['bytecode']) // 2 - 1} bytes of creation code)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
