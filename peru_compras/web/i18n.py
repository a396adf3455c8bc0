"""The page's words in Spanish (es-PE, the default) and English, and how dates and amounts are written.

Messages are plain text: templates escape them like any other value, and placeholders are filled with
:func:`fill` (whose result is escaped too), so no message can carry markup.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace

LANGUAGES = ("es", "en")
DEFAULT = "es"
LIMA = timezone(timedelta(hours=-5), "PET")

MESSAGES: dict[str, dict[str, str]] = {
    "es": {
        "html_lang": "es-PE",
        "site": "Verificación de órdenes de compra",
        "switch_lang": "English",
        "switch_lang_code": "en",
        "switch_lang_name": "Read this page in English",
        "nav_search": "Buscar",
        "title_order": "Orden de compra {number} — {entity}",
        "verdict_valid": "Orden de compra registrada y vigente",
        "verdict_valid_body": "Registrada en blockchain; no fue anulada ni reemplazada. Compare los datos de "
                              "abajo con su documento.",
        "verdict_annulled": "Orden de compra ANULADA",
        "verdict_annulled_body": "La orden fue registrada, pero la anularon el {date}. Motivo: «{reason}». "
                                 "No tiene validez.",
        "verdict_superseded": "Orden de compra REEMPLAZADA",
        "verdict_superseded_body": "Esta orden fue reemplazada el {date} por una orden corregida. "
                                   "No la use: vea la orden vigente.",
        "see_replacement": "Ver la orden que la reemplaza",
        "verdict_missing": "Orden no registrada",
        "verdict_missing_body": "No hay ninguna orden registrada con el número {number} para la entidad "
                                "{entity}. Un documento que diga lo contrario puede ser falso.",
        "file_h": "Verifique el PDF que tiene",
        "file_intro": "Su teléfono calcula la huella digital (SHA-256) del PDF y la compara con la "
                      "registrada. El archivo no se envía.",
        "file_label": "Elegir el PDF de la orden",
        "file_reading": "Calculando la huella…",
        "file_ok": "Documento auténtico",
        "file_ok_body": "Es exactamente el documento registrado.",
        "file_ok_annulled": "Documento auténtico, pero la orden fue ANULADA",
        "file_ok_superseded": "Documento auténtico, pero la orden fue REEMPLAZADA",
        "file_ok_not_valid_body": "El archivo es el registrado, pero la orden ya no está vigente.",
        "file_bad": "El documento NO coincide con el registrado: fue alterado",
        "file_bad_body": "Todo cambio, por mínimo que sea, cambia la huella. No lo acepte.",
        "file_not_pdf": "El archivo elegido no es un PDF.",
        "file_too_big": "El archivo es demasiado grande para verificarlo aquí (más de 100 MB).",
        "file_error": "No se pudo leer el archivo.",
        "hash_yours": "Huella de su archivo",
        "file_name": "Archivo",
        "hash_registered": "Huella registrada",
        "no_subtle": "Esta página no se abrió por una conexión segura (HTTPS), así que su navegador no ofrece "
                     "WebCrypto. La huella se calculará con un método de respaldo; para una verificación "
                     "confiable abra la dirección con https://.",
        "noscript": "Para verificar un archivo aquí se necesita JavaScript. También puede calcular la huella "
                    "SHA-256 del archivo en su computadora (por ejemplo con sha256sum) y compararla con la "
                    "huella registrada:",
        "record_h": "Datos registrados",
        "order_number": "N° de orden",
        "lookalike_warning": "Atención: el número de orden o un RUC de esta orden tiene caracteres que no son "
                             "ASCII (marcados con su código U+). Pueden imitar a los de otra orden: compárelos "
                             "letra por letra con el papel.",
        "issued_on": "Fecha de emisión",
        "entity": "Entidad",
        "buyer": "Comprador",
        "supplier": "Proveedor",
        "items_h": "Ítems",
        "item_description": "Descripción",
        "item_quantity": "Cantidad",
        "item_unit": "Unidad",
        "item_price": "P. unitario",
        "total": "Total",
        "delivery_term": "Plazo de entrega",
        "term_days": "{days} días calendario",
        "term_day": "1 día calendario",
        "deadline": "hasta el {date}",
        "delivery_place": "Lugar de entrega",
        "document_h": "Documento original",
        "download": "Descargar el PDF original",
        "document_url_not_link": "Dirección publicada (no es un enlace web válido):",
        "hashlink": "Huella del documento (hashlink)",
        "checks_h": "Comprobaciones",
        "check_chain": "Registrada en blockchain",
        "block": "Bloque",
        "transaction": "Transacción",
        "registrar": "Registrador",
        "contract": "Contrato",
        "chain": "Red (chain id)",
        "registered_at": "Fecha de registro",
        "token": "Token",
        "check_status_valid": "Estado: vigente",
        "check_status_annulled": "Estado: anulada",
        "check_status_superseded": "Estado: reemplazada",
        "status_valid_body": "No fue anulada ni reemplazada.",
        "annul_reason": "Motivo",
        "annul_date": "Fecha de anulación",
        "replaced_on": "Fecha del reemplazo",
        "replaced_by": "Reemplazada por",
        "replaces": "Reemplaza a",
        "order_token": "orden {number}",
        "check_document": "Documento publicado",
        "doc_pending": "Aún no comprobado.",
        "doc_check_now": "Comprobar ahora",
        "doc_original": "El PDF publicado es el original registrado.",
        "doc_altered": "El PDF publicado NO coincide con el registrado.",
        "doc_missing": "El PDF ya no está en la dirección publicada.",
        "doc_unreachable": "No se pudo descargar el PDF publicado.",
        "doc_too_large": "El PDF publicado es demasiado grande para comprobarlo.",
        "doc_refused": "La dirección publicada no se comprueba automáticamente.",
        "doc_rate_limited": "Demasiadas comprobaciones seguidas: intente de nuevo en un minuto.",
        "doc_checked_at": "Comprobado el {date}.",
        "explorer": "Ver en el explorador de bloques",
        "api": "Datos en JSON",
        "footer": "Datos leídos directamente de la blockchain. Esta página no guarda ni recibe sus archivos.",
        "search_h": "Buscar una orden de compra",
        "search_by_order": "Por entidad y número de orden",
        "search_entity": "RUC de la entidad",
        "search_number": "N° de orden",
        "search_by_ref": "Por token o por huella del documento",
        "search_ref": "Token ID (decimal o 0x…) o huella (hl:… o SHA-256)",
        "search_submit": "Buscar",
        "search_not_found": "No se encontró ninguna orden registrada para «{query}».",
        "search_bad": "«{query}» no es un token ID ni una huella válida.",
        "search_bad_entity": "Indique el RUC (o identificador) de la entidad y el número de orden.",
        "error_h": "No se pudo atender la solicitud",
        "error_unavailable": "No se puede consultar la blockchain en este momento. Intente de nuevo en unos "
                             "minutos.",
        "error_not_found": "Esta página no existe.",
        "error_generic": "Ocurrió un error.",
        "error_not_checked_h": "No se pudo comprobar",
        "error_not_checked": "Los nodos de la blockchain no dan la misma respuesta ({node}: {reason}): esta orden "
                             "no se pudo comprobar. No la tome por válida ni por falsa; intente de nuevo más tarde.",
        "error_unreadable": "El registro de esta orden en la blockchain está mal formado y no se puede leer: "
                            "no la tome por válida.",
        "back_home": "Ir a la búsqueda",
        "list_entidad_h": "Órdenes de la entidad {name}",
        "list_proveedor_h": "Órdenes del proveedor {name}",
        "list_source": "Según la copia al bloque {block}. La copia puede estar atrasada: la página de cada orden "
                       "lee la blockchain y es la verificación.",
        "list_count": "{count} órdenes · página {page} de {pages}",
        "list_status": "Estado",
        "list_status_valid": "vigente",
        "list_status_annulled": "anulada",
        "list_status_superseded": "reemplazada",
        "list_pages": "Páginas",
        "list_prev": "Anterior",
        "list_next": "Siguiente",
        "list_bad_ruc": "«{ruc}» no es un RUC: son 11 dígitos con el dígito verificador de SUNAT.",
        "list_bad_page": "«{page}» no es un número de página (1 a {most}).",
        "list_no_page": "No hay página {page}: la lista tiene {pages}.",
        "list_none_entidad": "La copia del registro no tiene órdenes de la entidad con RUC {ruc}.",
        "list_none_proveedor": "La copia del registro no tiene órdenes del proveedor con RUC {ruc}.",
        "list_unreadable": "La copia del registro no se puede leer en este momento. Intente de nuevo en unos "
                           "minutos.",
    },
    "en": {
        "html_lang": "en",
        "site": "Purchase order verification",
        "switch_lang": "Español",
        "switch_lang_code": "es",
        "switch_lang_name": "Ver esta página en español",
        "nav_search": "Search",
        "title_order": "Purchase order {number} — {entity}",
        "verdict_valid": "Purchase order registered and valid",
        "verdict_valid_body": "Registered on the blockchain; neither annulled nor replaced. Compare the details "
                              "below with your document.",
        "verdict_annulled": "Purchase order ANNULLED",
        "verdict_annulled_body": "The order was registered but annulled on {date}. Reason: “{reason}”. "
                                 "It is not valid.",
        "verdict_superseded": "Purchase order REPLACED",
        "verdict_superseded_body": "This order was replaced on {date} by a corrected order. Do not use it: "
                                   "see the valid order.",
        "see_replacement": "See the order that replaces it",
        "verdict_missing": "Order not registered",
        "verdict_missing_body": "No order is registered with number {number} for entity {entity}. A document "
                                "claiming otherwise may be forged.",
        "file_h": "Check the PDF you have",
        "file_intro": "Your phone computes the PDF's fingerprint (SHA-256) and compares it with the registered "
                      "one. The file is not sent anywhere.",
        "file_label": "Choose the order's PDF",
        "file_reading": "Computing the fingerprint…",
        "file_ok": "Authentic document",
        "file_ok_body": "It is exactly the registered document.",
        "file_ok_annulled": "Authentic document, but the order was ANNULLED",
        "file_ok_superseded": "Authentic document, but the order was REPLACED",
        "file_ok_not_valid_body": "The file is the registered one, but the order is no longer valid.",
        "file_bad": "The document does NOT match the registered one: it was altered",
        "file_bad_body": "Any change, however small, changes the fingerprint. Do not accept this document.",
        "file_not_pdf": "The chosen file is not a PDF.",
        "file_too_big": "The file is too large to check here (over 100 MB).",
        "file_error": "The file could not be read.",
        "hash_yours": "Your file's fingerprint",
        "file_name": "File",
        "hash_registered": "Registered fingerprint",
        "no_subtle": "This page was not opened over a secure connection (HTTPS), so your browser offers no "
                     "WebCrypto. The fingerprint will be computed with a fallback; for a trustworthy check "
                     "open the address with https://.",
        "noscript": "Checking a file here needs JavaScript. You can also compute the file's SHA-256 "
                    "fingerprint on your computer (for instance with sha256sum) and compare it with the "
                    "registered fingerprint:",
        "record_h": "The registered order",
        "order_number": "Order number",
        "lookalike_warning": "Warning: this order's number or an id has characters that are not ASCII (marked "
                             "with their U+ code). They can imitate another order's: compare them letter by "
                             "letter with the paper.",
        "issued_on": "Issue date",
        "entity": "Entity",
        "buyer": "Buyer",
        "supplier": "Supplier",
        "items_h": "Items",
        "item_description": "Description",
        "item_quantity": "Quantity",
        "item_unit": "Unit",
        "item_price": "Unit price",
        "total": "Total",
        "delivery_term": "Delivery term",
        "term_days": "{days} calendar days",
        "term_day": "1 calendar day",
        "deadline": "by {date}",
        "delivery_place": "Delivery place",
        "document_h": "Original document",
        "download": "Download the original PDF",
        "document_url_not_link": "Published address (not a valid web link):",
        "hashlink": "Document fingerprint (hashlink)",
        "checks_h": "Checks",
        "check_chain": "Registered on the blockchain",
        "block": "Block",
        "transaction": "Transaction",
        "registrar": "Registrar",
        "contract": "Contract",
        "chain": "Network (chain id)",
        "registered_at": "Registered on",
        "token": "Token",
        "check_status_valid": "Status: valid",
        "check_status_annulled": "Status: annulled",
        "check_status_superseded": "Status: replaced",
        "status_valid_body": "Neither annulled nor replaced.",
        "annul_reason": "Reason",
        "annul_date": "Annulled on",
        "replaced_on": "Replaced on",
        "replaced_by": "Replaced by",
        "replaces": "Replaces",
        "order_token": "order {number}",
        "check_document": "Published document",
        "doc_pending": "Not checked yet.",
        "doc_check_now": "Check now",
        "doc_original": "The published PDF is the registered original.",
        "doc_altered": "The published PDF does NOT match the registered one.",
        "doc_missing": "The PDF is no longer at the published address.",
        "doc_unreachable": "The published PDF could not be downloaded.",
        "doc_too_large": "The published PDF is too large to check.",
        "doc_refused": "The published address is not checked automatically.",
        "doc_rate_limited": "Too many checks in a row: try again in a minute.",
        "doc_checked_at": "Checked on {date}.",
        "explorer": "View in the block explorer",
        "api": "Data as JSON",
        "footer": "Data read directly from the blockchain. This page neither keeps nor receives your files.",
        "search_h": "Find a purchase order",
        "search_by_order": "By entity and order number",
        "search_entity": "Entity's RUC (or identifier)",
        "search_number": "Order number",
        "search_by_ref": "By token or document fingerprint",
        "search_ref": "Token ID (decimal or 0x…) or fingerprint (hl:… or SHA-256)",
        "search_submit": "Search",
        "search_not_found": "No registered order was found for “{query}”.",
        "search_bad": "“{query}” is neither a token ID nor a valid fingerprint.",
        "search_bad_entity": "Give the entity's RUC (or identifier) and the order number.",
        "error_h": "The request could not be served",
        "error_unavailable": "The blockchain cannot be read right now. Please try again in a few minutes.",
        "error_not_found": "This page does not exist.",
        "error_generic": "Something went wrong.",
        "error_not_checked_h": "Could not be checked",
        "error_not_checked": "The blockchain nodes do not give one answer ({node}: {reason}): this order could not "
                             "be checked. Take it as neither valid nor false; please try again later.",
        "error_unreadable": "This order's record on the blockchain is malformed and cannot be read: do not "
                            "take it as valid.",
        "back_home": "Go to search",
        "list_entidad_h": "Orders of the entity {name}",
        "list_proveedor_h": "Orders of the supplier {name}",
        "list_source": "From the copy up to block {block}. The copy may lag behind: each order's page reads the "
                       "blockchain and is the check.",
        "list_count": "{count} orders · page {page} of {pages}",
        "list_status": "Status",
        "list_status_valid": "valid",
        "list_status_annulled": "annulled",
        "list_status_superseded": "replaced",
        "list_pages": "Pages",
        "list_prev": "Previous",
        "list_next": "Next",
        "list_bad_ruc": "“{ruc}” is not a RUC: 11 digits with SUNAT's check digit.",
        "list_bad_page": "“{page}” is not a page number (1 to {most}).",
        "list_no_page": "There is no page {page}: the list has {pages}.",
        "list_none_entidad": "The registry's copy has no orders of the entity with RUC {ruc}.",
        "list_none_proveedor": "The registry's copy has no orders of the supplier with RUC {ruc}.",
        "list_unreadable": "The registry's copy cannot be read right now. Please try again in a few minutes.",
    },
}

#: the messages as attributes for templates (a dict's own methods, like ``items``, cannot shadow a key)
WORDS = {lang: SimpleNamespace(**words) for lang, words in MESSAGES.items()}

_MONTHS = {
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}
_SYMBOLS = {"PEN": "S/", "USD": "US$", "EUR": "€"}


def pick_language(query: str | None, accept_language: str | None) -> tuple[str, bool]:
    """(language, chosen explicitly by ``?lang=``). Else the best of Accept-Language, else Spanish."""
    if query in LANGUAGES:
        return query, True
    best, best_q = DEFAULT, 0.0
    for part in (accept_language or "")[:200].split(","):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        code = tag.strip().lower()[:2]
        if code in LANGUAGES and weight > best_q:
            best, best_q = code, weight
    return best, False


def fill(template: str, **values: object) -> str:
    """`template` with ``{name}`` placeholders filled (plain text: the template engine escapes it)."""
    return template.format_map({key: str(value) for key, value in values.items()})


def format_date(value: str | date, lang: str) -> str:
    """``20 de noviembre de 2026`` / ``20 November 2026``; the text as given if it is not a date."""
    try:
        day = value if isinstance(value, date) else date.fromisoformat(value)
    except ValueError:
        return str(value)
    month = _MONTHS[lang][day.month - 1]
    return f"{day.day} de {month} de {day.year}" if lang == "es" else f"{day.day} {month} {day.year}"


def format_timestamp(seconds: int, lang: str) -> str:
    """A block timestamp as a date and time in Lima (UTC−5)."""
    moment = datetime.fromtimestamp(seconds, UTC).astimezone(LIMA)
    return f"{format_date(moment.date(), lang)}, {moment:%H:%M} (UTC−5)"


def format_amount(amount: str, currency: str | None = None) -> str:
    """``S/ 5,890.00`` (Peru writes a comma for thousands and a point for decimals)."""
    try:
        number = Decimal(amount)
    except InvalidOperation:
        return amount
    exponent = number.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    text = f"{number:,.{places}f}"
    if currency is None:
        return text
    return f"{_SYMBOLS.get(currency, currency)} {text}"


def format_quantity(amount: str) -> str:
    try:
        number = Decimal(amount)
    except InvalidOperation:
        return amount
    return f"{number:,f}"
