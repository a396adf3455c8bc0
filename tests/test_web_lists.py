"""The page's list pages from a mirror (``PERU_COMPRAS_MIRROR``): ``/entidad/{ruc}`` and ``/proveedor/{ruc}``
with paging, the search box's answer to a RUC; against a mirror `peru-compras mirror` built from a real Anvil
registry. Without the setting the URLs are 404 and search is unchanged."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from peru_compras.chain.client import Registry
from peru_compras.hashing import sha256
from peru_compras.mirror import mirror
from peru_compras.order import parse_order
from peru_compras.settings import load_settings
from peru_compras.web.app import PageSettings, create_app
from peru_compras.web.lists import MirrorReader, MirrorUnreadable

from .conftest import reference_order
from .test_web import Client, page_text

BASE = "https://oc.example.pe"
SUPPLIER = "20100000009"  # 5 orders at the hospital, one of them annulled
HOSTILE_SUPPLIER = "20100000017"  # 2 orders at a hostile entity
HOSTILE_ENTITY = "20200000006"
HOSPITAL = "20131370998"
SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(1)">'


@dataclass
class Mirrored:
    registry: Registry
    path: Path
    paths: list[str]  # the supplier's order pages, in the order they were registered
    last_block: int


def order(number: str, supplier: dict[str, str], entity: dict[str, str] | None = None) -> tuple[Any, bytes]:
    record = reference_order(order_number=number, supplier=supplier)
    if entity is not None:
        record["entity"] = entity
    return parse_order(record), sha256(number.encode())


@pytest.fixture(scope="module")
def mirrored(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Mirrored:
    supplier = {"name": "Proveedor Uno S.A.C.", "ruc": SUPPLIER}
    first = registry.register_many([order(f"OC-L-{n}", supplier) for n in range(3)])
    registry.register_many([order("OC-H-1", {"name": "Prov " + SCRIPT, "ruc": HOSTILE_SUPPLIER},
                                  {"name": "Entidad " + IMG, "ruc": HOSTILE_ENTITY}),
                            order("OC-H-2", {"name": "Prov " + SCRIPT, "ruc": HOSTILE_SUPPLIER},
                                  {"name": "Entidad " + IMG, "ruc": HOSTILE_ENTITY})])
    # the hospital is a supplier once too: the search box prefers the supplier's list, the entity field the entity's
    registry.register(*order("OC-X-1", {"name": "Hospital Regional de Piura", "ruc": HOSPITAL},
                             {"name": "Entidad " + IMG, "ruc": HOSTILE_ENTITY}))
    later = [registry.register(*order(f"OC-L-{n}", supplier)) for n in range(3, 5)]
    registry.annul(first[0].token_id, "Duplicada")
    path = tmp_path_factory.mktemp("lists") / "registro.sqlite"
    mirror(registry, path)
    with sqlite3.connect(path) as db:
        last_block = db.execute("SELECT last_block FROM mirror").fetchone()[0]
    return Mirrored(registry, path, [r.order.verify_path for r in first + later], last_block)


def app(mirrored: Mirrored, **settings: Any) -> Client:
    return Client(create_app(lambda: mirrored.registry, PageSettings(base_url=BASE, sync_interval=0, **settings)))


@pytest.fixture(scope="module")
def client(mirrored: Mirrored) -> Iterator[Client]:
    web = app(mirrored, mirror=mirrored.path, mirror_page_size=2)
    yield web
    web.close()


def links(html: str, prefix: str) -> list[str]:
    return [href.replace("&amp;", "&") for href in re.findall(r'href="([^"]+)"', html) if href.startswith(prefix)]


def test_a_suppliers_list_pages_through_exactly_its_orders_newest_first_with_working_links(
        client: Client, mirrored: Mirrored) -> None:
    url: str | None = f"/proveedor/{SUPPLIER}"
    seen, pages = [], 0
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200, response.text
        text = page_text(response.text)
        pages += 1
        assert f"Órdenes del proveedor Proveedor Uno S.A.C. RUC {SUPPLIER}" in text
        assert f"5 órdenes · página {pages} de 3" in text
        assert f"Según la copia al bloque {mirrored.last_block}." in text
        assert response.headers["content-security-policy"] and response.headers["x-content-type-options"] == "nosniff"
        seen += links(response.text, "/o/")
        previous = re.search(r'rel="prev" href="([^"]+)"', response.text)
        assert (previous[1] if previous else None) == (f"/proveedor/{SUPPLIER}?pagina={pages - 1}" if pages > 1
                                                       else None)
        following = re.search(r'rel="next" href="([^"]+)"', response.text)
        url = following[1] if following else None
    assert pages == 3
    assert seen == list(reversed(mirrored.paths))  # exactly its orders, newest first
    annulled = client.get(f"/proveedor/{SUPPLIER}?pagina=3")
    assert "OC-L-0" in annulled.text and "anulada" in page_text(annulled.text)
    for path in seen:  # each row leads to the order's own page, which reads the chain
        number = path.rsplit("/", 1)[1]
        assert number in page_text(client.get(path).text)


def test_an_entitys_list_and_english(client: Client) -> None:
    response = client.get(f"/entidad/{HOSPITAL}?lang=en")
    text = page_text(response.text)
    assert response.status_code == 200 and "Orders of the entity Hospital Regional de Piura" in text
    assert "5 orders · page 1 of 3" in text and "From the copy up to block" in text
    assert f'rel="next" href="/entidad/{HOSPITAL}?pagina=2&amp;lang=en"' in response.text
    assert all(link.endswith("?lang=en") for link in links(response.text, "/o/"))


@pytest.mark.parametrize(("url", "status", "message"), [
    ("/proveedor/12345", 400, "«12345» no es un RUC: son 11 dígitos con el dígito verificador de SUNAT."),
    ("/entidad/2010000000x", 400, "«2010000000x» no es un RUC"),
    ("/entidad/20100000008", 400, "«20100000008» no es un RUC"),  # the check digit
    ("/proveedor/20999999990", 404, "La copia del registro no tiene órdenes del proveedor con RUC 20999999990."),
    (f"/proveedor/{SUPPLIER}?pagina=0", 400, "«0» no es un número de página (1 a 10000)."),
    (f"/proveedor/{SUPPLIER}?pagina=dos", 400, "«dos» no es un número de página"),
    (f"/proveedor/{SUPPLIER}?pagina=10001", 400, "«10001» no es un número de página"),
    (f"/proveedor/{SUPPLIER}?pagina=4", 404, "No hay página 4: la lista tiene 3."),
])
def test_a_bad_ruc_or_page_is_one_clear_message(client: Client, url: str, status: int, message: str) -> None:
    response = client.get(url)
    assert response.status_code == status and message in page_text(response.text)


def test_hostile_names_from_the_mirror_are_escaped(client: Client) -> None:
    for url in (f"/proveedor/{HOSTILE_SUPPLIER}", f"/entidad/{HOSTILE_ENTITY}", "/proveedor/%3Cscript%3E"):
        response = client.get(url)
        assert "<script>alert" not in response.text and "<img" not in response.text
        assert "onerror=" not in response.text.replace("onerror=&#34;", "")  # only as escaped text
    supplier = client.get(f"/proveedor/{HOSTILE_SUPPLIER}")
    assert "Prov &lt;script&gt;alert(1)&lt;/script&gt;" in supplier.text
    assert "Entidad &lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in supplier.text
    assert "Prov " + SCRIPT in page_text(supplier.text)


def test_a_ruc_in_the_search_box_leads_to_its_list(client: Client) -> None:
    for query, target in ((f"?q={SUPPLIER}", f"/proveedor/{SUPPLIER}"), (f"?q=+{HOSPITAL}+", f"/proveedor/{HOSPITAL}"),
                          (f"?entidad={HOSPITAL}", f"/entidad/{HOSPITAL}"),
                          (f"?q={HOSTILE_SUPPLIER}&lang=en", f"/proveedor/{HOSTILE_SUPPLIER}?lang=en")):
        response = client.get("/buscar" + query)
        assert (response.status_code, response.headers["location"]) == (303, target)
    unknown = client.get("/buscar?q=20999999990")  # a RUC the mirror does not know: searched as before
    assert unknown.status_code == 404 and "No se encontró ninguna orden" in page_text(unknown.text)


def test_without_the_setting_there_are_no_lists_and_search_is_unchanged(mirrored: Mirrored) -> None:
    web = app(mirrored)
    try:
        for url in (f"/proveedor/{SUPPLIER}", f"/entidad/{HOSPITAL}", "/proveedor/12345"):
            assert web.get(url).status_code == 404
        search = web.get(f"/buscar?q={SUPPLIER}")
        assert search.status_code == 404 and "No se encontró ninguna orden" in page_text(search.text)
        assert web.get(f"/buscar?entidad={HOSPITAL}").status_code == 400
    finally:
        web.close()


def test_a_missing_mirror_file_is_a_503_and_is_not_created(mirrored: Mirrored, tmp_path: Path) -> None:
    missing = tmp_path / "nada.sqlite"
    web = app(mirrored, mirror=missing)
    try:
        response = web.get(f"/proveedor/{SUPPLIER}")
        assert response.status_code == 503
        assert "La copia del registro no se puede leer" in page_text(response.text)
        assert web.get(f"/buscar?q={SUPPLIER}").status_code == 404  # search goes on without the lists
    finally:
        web.close()
    assert not missing.exists()


def test_the_mirror_is_read_only_and_every_query_is_bounded_in_time(mirrored: Mirrored) -> None:
    before = hashlib.sha256(mirrored.path.read_bytes()).hexdigest()
    reader = MirrorReader(mirrored.path, seconds=0.2)
    with pytest.raises(MirrorUnreadable, match="readonly"):
        reader._run("DELETE FROM orders", ())
    # 10^8 rows: half a minute without the bound, a fifth of a second with it
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000000) SELECT count(*) FROM c"
    with pytest.raises(MirrorUnreadable, match="interrupt"):
        reader._run(endless, ())
    assert hashlib.sha256(mirrored.path.read_bytes()).hexdigest() == before


def test_the_setting_is_read_from_the_environment_and_the_file(tmp_path: Path) -> None:
    assert load_settings(env={}, cwd=tmp_path).mirror is None
    assert load_settings(env={"PERU_COMPRAS_MIRROR": "a.sqlite"}, cwd=tmp_path).mirror == Path("a.sqlite")
    (tmp_path / "peru-compras.toml").write_text('mirror = "registro.sqlite"\n', encoding="utf-8")
    assert load_settings(env={}, cwd=tmp_path).mirror == Path("registro.sqlite")
