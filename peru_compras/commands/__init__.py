"""The command line's commands, one group a module; :mod:`peru_compras.cli` holds the Typer app, the global
options and ``main``, and registers these. Each command parses, calls :mod:`peru_compras.service`, prints.

- :mod:`.base` — what every command shares: the workspace of this run, ``--json`` output, one-line errors;
- :mod:`.orders` — deploy, register, register-batch, export-ocds, qr, render, annul;
- :mod:`.reading` — show, verify;
- :mod:`.local` — node, demo, serve, status, stop (what runs for this folder);
- :mod:`.roles` — roles grant / revoke / list.
"""
