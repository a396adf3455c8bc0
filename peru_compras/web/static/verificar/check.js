// The order page's fourth check: when the page was opened from a signed QR (its URL ends in #<payload>),
// check the signature in this browser and show it beside the chain record, the status and the document.
// The fragment never reaches the server. Nothing happens (and nothing more is loaded) for a plain QR. Text is
// set with textContent only.

const WORDS = {
  es: {
    title: "Firma del código QR", checking: "Comprobando la firma del QR…",
    signed: "El QR lleva una firma válida de un registrador y sus datos coinciden con este registro.",
    mismatch: "El QR está firmado, pero sus datos NO coinciden con este registro: {what}.",
    bad_signature: "El QR NO lleva una firma válida: sus datos pudieron ser alterados.",
    unknown_signer: "El QR lo firmó una cuenta que NO es registradora: no confíe en el papel.",
    revoked: "El QR lo firmó una cuenta que dejó de ser registradora en el bloque {block}: no confíe en el papel.",
    fake_host: "El QR apunta a {host}, que no es la página del registro.",
    unavailable: "No se pudo comprobar la firma ({detail}).",
    record: "el hash del registro", registrar: "el registrador", facts: "los datos", signer: "Firmado por",
  },
  en: {
    title: "The QR code's signature", checking: "Checking the QR's signature…",
    signed: "The QR carries a valid signature by a registrar and its facts match this record.",
    mismatch: "The QR is signed, but its facts do NOT match this record: {what}.",
    bad_signature: "The QR does NOT carry a valid signature: its facts may have been altered.",
    unknown_signer: "The QR was signed by an account that is NOT a registrar: do not trust the paper.",
    revoked: "The QR was signed by an account that stopped being a registrar at block {block}: do not trust the paper.",
    fake_host: "The QR points to {host}, which is not the registry's page.",
    unavailable: "The signature could not be checked ({detail}).",
    record: "the record hash", registrar: "the registrar", facts: "the facts", signer: "Signed by",
  },
};

function item() {
  let li = document.getElementById("firma");
  if (!li) {
    const list = document.querySelector("ul.checks");
    if (!list) { return null; }
    li = document.createElement("li");
    li.id = "firma";
    const h3 = document.createElement("h3");
    const mark = document.createElement("span");
    mark.className = "mark";
    mark.setAttribute("aria-hidden", "true");
    const title = document.createElement("span");
    title.id = "firma-title";
    h3.append(mark, " ", title);
    const text = document.createElement("p");
    text.id = "firma-text";
    text.setAttribute("aria-live", "polite");
    const detail = document.createElement("p");
    detail.id = "firma-detail";
    detail.className = "sub";
    li.append(h3, text, detail);
    list.appendChild(li);
  }
  return li;
}

function show(li, kind, state, text, signer, label) {
  li.hidden = false;
  li.className = kind;
  li.dataset.state = state;
  li.querySelector(".mark").textContent = kind === "ok" ? "✓" : kind === "bad" ? "✗" : kind === "warn" ? "!" : "?";
  document.getElementById("firma-text").textContent = text;
  const detail = document.getElementById("firma-detail");
  detail.textContent = signer ? label + ": " : "";
  if (signer) {  // the address in the page's hash style (it wraps)
    const code = document.createElement("code");
    code.className = "hash";
    code.textContent = signer;
    detail.appendChild(code);
  }
}

async function main() {
  // a signed payload has at least 104 bytes (139 characters): a shorter fragment is an anchor (#documento)
  if (location.hash.length < 101) { return; }
  const li = item();
  if (!li) { return; }
  const [{ readQr, QrError }, { parsePack, judge }, { fill }] = await Promise.all(
    [import("./payload.js"), import("./verdict.js"), import("./strings.js")]);
  const w = WORDS[document.documentElement.lang === "en" ? "en" : "es"];
  document.getElementById("firma-title").textContent = w.title;
  show(li, "info", "checking", w.checking);
  const node = document.getElementById("pc-data");
  const data = node ? JSON.parse(node.textContent) : {};
  let qr;
  try { qr = readQr(location.href); } catch (e) {
    if (!(e instanceof QrError)) { throw e; }
    show(li, "bad", "bad_signature", w.bad_signature);
    return;
  }
  let crypto, pack;
  try {
    crypto = await import("./crypto.js");
    const response = await fetch("/trust-pack.json", { credentials: "omit", headers: { Accept: "application/json" } });
    if (!response.ok) { throw new Error("HTTP " + response.status); }
    pack = parsePack(await response.text());
  } catch (e) {
    show(li, "warn", "unavailable", fill(w.unavailable, { detail: String(e.message).slice(0, 80) }));
    return;
  }
  const v = judge(qr, pack, crypto, { now: Date.now(), maxAgeDays: 36500 });
  const signer = v.signer || "";
  if (v.hostOk === false) { show(li, "bad", "fake_host", fill(w.fake_host, { host: v.target.host })); return; }
  if (v.status === "bad_signature") { show(li, "bad", v.status, w.bad_signature); return; }
  if (v.status === "unknown_signer") {
    show(li, "bad", v.revokedBlock !== null ? "revoked" : "unknown_signer",
         fill(v.revokedBlock !== null ? w.revoked : w.unknown_signer, { block: v.revokedBlock }), signer, w.signer);
    return;
  }
  // online, the page holds the record itself: the signed hash and signer must be this record's
  const wrong = [];
  if (data.record_hash && crypto.hex(v.facts.recordHash) !== data.record_hash.toLowerCase()) { wrong.push(w.record); }
  if (data.registrar && data.registrar.toLowerCase() !== signer) { wrong.push(w.registrar); }
  if (data.contract && data.contract.toLowerCase() !== pack.registry.toLowerCase()) { wrong.push(w.facts); }
  if (wrong.length) { show(li, "bad", "mismatch", fill(w.mismatch, { what: wrong.join(", ") }), signer, w.signer); return; }
  show(li, "ok", "signed", w.signed, signer, w.signer);
}

main();
