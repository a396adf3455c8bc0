"""``python -m peru_compras``: the command line."""

from peru_compras.cli import main

main()
