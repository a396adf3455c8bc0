"""The verification page (``peru-compras serve``): Starlette + Jinja2, no build step, no front-end framework.

:func:`~peru_compras.web.app.create_app` builds the ASGI app for a registry (:mod:`.app` only wires the parts:
:mod:`.security`, :mod:`.page`, :mod:`.presenters`, :mod:`.views`, :mod:`.api`, :mod:`.verifier`);
:func:`~peru_compras.web.server.serve` runs it with uvicorn; :func:`~peru_compras.web.server.start_detached`
leaves it running in the background (for ``peru-compras demo``).
"""
