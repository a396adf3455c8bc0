// The verifier's words, Spanish first. The page's fixed texts are in index.html (Spanish) and under `en`
// here; the messages the scripts write are in both. {name} is filled by fill().
export const STRINGS = {
  es: {
    lang_other: "EN", lang_other_name: "Switch to English", lang_other_code: "en",
    pack_none: "Sin paquete de confianza todavía: abra esta página una vez con conexión.",
    pack_line: "Paquete de confianza del bloque {block}, de hace {age}.",
    pack_stale: "El paquete de confianza tiene {age}: más de {days} días. Conéctese para actualizarlo antes de aceptar.",
    pack_refreshing: "Actualizando el paquete de confianza…",
    pack_offline: "Sin conexión: se usa el paquete guardado.",
    pack_refused: "El servidor envió un paquete de confianza que no se puede usar ({detail}); se mantiene el guardado.",
    age_minutes: "{n} min", age_hours: "{n} h", age_days: "{n} días", age_day: "1 día",
    no_decoder: "Este servidor no tiene instalado el lector de QR: la cámara funciona solo en navegadores con lector propio (BarcodeDetector). Puede pegar el texto del QR.",
    no_camera_reader: "Este navegador no puede leer códigos QR con la cámara aquí: use una foto o pegue el texto.",
    no_crypto: "Este servidor no tiene instalado el verificador de firmas: se muestran los datos, pero la firma NO se comprobó.",
    camera_looking: "Buscando el código QR…",
    camera_denied: "No se pudo abrir la cámara ({detail}). Use una foto o pegue el texto.",
    photo_none: "No se encontró un código QR en la foto. Acérquese y evite reflejos.",
    photo_bad: "No se pudo leer la imagen.",
    v_ok: "Firma válida: compare los datos con el papel",
    v_ok_body: "Firmada por un registrador de la entidad. La orden está vigente según el paquete.",
    v_fake_host: "QR FALSO: apunta a otro sitio",
    v_fake_host_body: "El código lleva a {host}, que no es la página del registro ({hosts}). No confíe en ese sitio.",
    v_bad_signature: "Firma NO válida",
    v_bad_signature_body: "El código no lleva una firma correcta: puede haber sido alterado o copiado mal.",
    v_unknown: "Firma de alguien que NO es registrador",
    v_unknown_body: "Los datos fueron alterados o los firmó una cuenta sin permiso. No acepte este papel.",
    v_revoked: "Firma de un registrador que perdió el permiso",
    v_revoked_body: "La cuenta {signer} dejó de ser registradora en el bloque {block}: su clave pudo ser robada.",
    v_annulled: "Orden ANULADA",
    v_annulled_body: "La firma es válida, pero la orden fue anulada (según el paquete del bloque {block}).",
    v_superseded: "Orden REEMPLAZADA",
    v_superseded_body: "La firma es válida, pero la orden fue reemplazada por otra ({other}). Pida la nueva orden.",
    v_stale: "Firma válida, pero el paquete de confianza es viejo",
    v_stale_body: "Actualice el paquete con conexión: la orden pudo ser anulada después.",
    v_not_signed: "QR sin firma: verifique con conexión",
    v_not_signed_body: "Este código solo lleva la dirección de la orden. Ábralo con conexión para verificarla.",
    v_unchecked: "Firma NO comprobada",
    v_unchecked_body: "Faltan el verificador de firmas o el paquete de confianza. Los datos de abajo no están comprobados.",
    v_not_order: "Este código no es de una orden de compra",
    v_not_order_body: "El texto leído no es la dirección de una orden ({detail}).",
    c_host_ok: "Apunta a la página del registro ({host})",
    c_host_bad: "Apunta a otro sitio: {host}",
    c_sig_ok: "Firmada por el registrador {signer}",
    c_sig_bad: "Firma: {status}",
    c_status_valid: "Vigente según el bloque {block}",
    c_status_annulled: "Anulada según el bloque {block}",
    c_status_superseded: "Reemplazada por {other} según el bloque {block}",
    c_pack_old: "Paquete de confianza viejo ({age})",
    f_number: "Número de orden", f_entity: "Entidad", f_supplier: "Proveedor", f_date: "Fecha",
    f_total: "Total", f_items: "Número de ítems", ruc: "RUC",
    see_online: "Ver la orden en línea",
  },
  en: {
    lang_other: "ES", lang_other_name: "Cambiar a español", lang_other_code: "es",
    title: "Verify a purchase order",
    facts_h: "Compare with the paper",
    facts_intro: "Tick each fact that matches the print.",
    camera_label: "Camera",
    stop: "Stop the camera",
    paste_h: "Paste the QR's text",
    paste_label: "Text read from the QR code",
    paste_go: "Verify this text",
    settings_h: "Settings",
    max_age_label: "Warn when the trust pack is older than (days)",
    refresh: "Refresh the trust pack now",
    scan: "Scan with the camera",
    photo: "Use a photo of the paper",
    pack_none: "No trust pack yet: open this page once while online.",
    pack_line: "Trust pack as of block {block}, {age} old.",
    pack_stale: "The trust pack is {age} old: over {days} days. Go online to refresh it before accepting.",
    pack_refreshing: "Refreshing the trust pack…",
    pack_offline: "Offline: using the saved trust pack.",
    pack_refused: "The server sent a trust pack that cannot be used ({detail}); keeping the saved one.",
    age_minutes: "{n} min", age_hours: "{n} h", age_days: "{n} days", age_day: "1 day",
    no_decoder: "This server has no QR decoder installed: the camera works only in browsers with their own reader (BarcodeDetector). You can paste the QR's text.",
    no_camera_reader: "This browser cannot read QR codes with the camera here: use a photo or paste the text.",
    no_crypto: "This server has no signature checker installed: the facts are shown but the signature was NOT checked.",
    camera_looking: "Looking for the QR code…",
    camera_denied: "The camera could not be opened ({detail}). Use a photo or paste the text.",
    photo_none: "No QR code found in the photo. Move closer and avoid glare.",
    photo_bad: "The image could not be read.",
    v_ok: "Valid signature: compare the facts with the paper",
    v_ok_body: "Signed by a registrar of the entity. The order is valid as of the trust pack.",
    v_fake_host: "FAKE QR: it points to another site",
    v_fake_host_body: "The code leads to {host}, which is not the registry's page ({hosts}). Do not trust that site.",
    v_bad_signature: "Signature NOT valid",
    v_bad_signature_body: "The code does not carry a correct signature: it may have been altered or miscopied.",
    v_unknown: "Signed by someone who is NOT a registrar",
    v_unknown_body: "The facts were altered or an account without permission signed them. Do not accept this paper.",
    v_revoked: "Signed by a registrar who lost the role",
    v_revoked_body: "Account {signer} stopped being a registrar at block {block}: its key may have been stolen.",
    v_annulled: "Order ANNULLED",
    v_annulled_body: "The signature is valid, but the order was annulled (as of the pack's block {block}).",
    v_superseded: "Order SUPERSEDED",
    v_superseded_body: "The signature is valid, but the order was replaced by another ({other}). Ask for the new order.",
    v_stale: "Valid signature, but the trust pack is old",
    v_stale_body: "Refresh the pack while online: the order may have been annulled since.",
    v_not_signed: "Unsigned QR: verify online",
    v_not_signed_body: "This code only carries the order's address. Open it while online to verify it.",
    v_unchecked: "Signature NOT checked",
    v_unchecked_body: "The signature checker or the trust pack is missing. The facts below are not verified.",
    v_not_order: "This code is not a purchase order's",
    v_not_order_body: "The text read is not an order's address ({detail}).",
    c_host_ok: "Points to the registry's page ({host})",
    c_host_bad: "Points to another site: {host}",
    c_sig_ok: "Signed by registrar {signer}",
    c_sig_bad: "Signature: {status}",
    c_status_valid: "Valid as of block {block}",
    c_status_annulled: "Annulled as of block {block}",
    c_status_superseded: "Superseded by {other} as of block {block}",
    c_pack_old: "Old trust pack ({age})",
    f_number: "Order number", f_entity: "Entity", f_supplier: "Supplier", f_date: "Date",
    f_total: "Total", f_items: "Number of items", ruc: "RUC",
    see_online: "See the order online",
  },
};

export function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

export function formatAge(ms, t) {
  const minutes = Math.floor(ms / 60000);
  if (minutes < 60) { return fill(t.age_minutes, { n: minutes }); }
  const hours = Math.floor(minutes / 60);
  if (hours < 48) { return fill(t.age_hours, { n: hours }); }
  const days = Math.floor(hours / 24);
  return days === 1 ? t.age_day : fill(t.age_days, { n: days });
}

// Amounts and dates as the order page writes them: "S/ 5,890.00" and "14/03/2026" in both languages.
export function formatTotal(total, currency) {
  const [whole, frac] = total.split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const symbol = currency === "PEN" ? "S/" : currency;
  return symbol + " " + grouped + (frac !== undefined ? "." + frac : "");
}

export function formatDate(iso, lang) {
  const [y, m, d] = iso.split("-");
  return lang === "en" ? `${y}-${m}-${d}` : `${d}/${m}/${y}`;
}
