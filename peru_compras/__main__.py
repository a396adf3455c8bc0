"""``python -m peru_compras``: the command line."""

from peru_compras.launch import main

main()
