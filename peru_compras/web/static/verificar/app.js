// peru-compras offline verifier (/verificar): read a signed QR (camera, photo or pasted text), check its
// signature and signer against the trust pack kept in this browser, and show the signed facts to compare
// with the paper. Works offline after one visit (sw.js). Text is only ever set with textContent.
import { readQr, QrError } from "./payload.js";
import { parsePack, judge, packAgeMs } from "./verdict.js";
import { STRINGS, fill, formatAge, formatTotal, formatDate } from "./strings.js";

const $ = (id) => document.getElementById(id);
const KEY_PACK = "pc-verificar-pack", KEY_LANG = "pc-verificar-lang", KEY_AGE = "pc-verificar-max-age";
const JSQR_URL = "/verificar/vendor/jsqr/jsQR.js";
const SW_URL = "/verificar/sw.js";
const MAX_PHOTO_BYTES = 25 * 1024 * 1024;
const MAX_SIDE = 1280;  // frames and photos are scaled down to this many pixels on their longer side

// Trusted Types (the CSP allows one policy): only the service worker and the QR decoder may be loaded.
const policy = window.trustedTypes ? window.trustedTypes.createPolicy("verificar", {
  createScriptURL(url) {
    if (url === SW_URL || url === JSQR_URL) { return url; }
    throw new TypeError("script URL not allowed: " + url);
  },
}) : null;
const scriptUrl = (url) => (policy ? policy.createScriptURL(url) : url);

const spanish = {};
document.querySelectorAll("[data-i18n]").forEach((e) => { spanish[e.dataset.i18n] = e.textContent; });
document.querySelectorAll("[data-i18n-label]").forEach((e) => { spanish[e.dataset.i18nLabel] = e.getAttribute("aria-label"); });

const query = new URLSearchParams(location.search).get("lang");
let lang = query === "en" || query === "es" ? query : (localStorage.getItem(KEY_LANG) === "en" ? "en" : "es");
const t = () => STRINGS[lang];
let crypto = null;
let decoder = null;    // (source, width, height) -> Promise<string | null>
let pack = null;
let packNote = "";
let last = null;       // {text} of the last verdict, to redraw it in the other language
let scanning = null;   // {stream, timer}
const notes = new Set();

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) { e.className = cls; }
  if (text !== undefined) { e.textContent = text; }
  return e;
}

function maxAgeDays() {
  const value = Number(localStorage.getItem(KEY_AGE) || "7");
  return Number.isInteger(value) && value >= 1 && value <= 365 ? value : 7;
}

// -- language -----------------------------------------------------------------------------------------

function applyLang() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((e) => {
    e.textContent = lang === "es" ? spanish[e.dataset.i18n] : (STRINGS.en[e.dataset.i18n] || spanish[e.dataset.i18n]);
  });
  document.querySelectorAll("[data-i18n-label]").forEach((e) => {
    e.setAttribute("aria-label", lang === "es" ? spanish[e.dataset.i18nLabel] : STRINGS.en[e.dataset.i18nLabel]);
  });
  const button = $("lang");
  button.textContent = t().lang_other;
  button.setAttribute("aria-label", t().lang_other_name);
  button.setAttribute("lang", t().lang_other_code);
  showPack();
  showNotes();
  if (last) { verify(last.text); }
}

function note(key) { notes.add(key); showNotes(); }
function showNotes() { $("notes").textContent = Array.from(notes, (key) => t()[key]).join(" "); }

// -- the trust pack -----------------------------------------------------------------------------------

function loadStoredPack() {
  const text = localStorage.getItem(KEY_PACK);
  if (!text) { return null; }
  try { return parsePack(text); } catch (e) { localStorage.removeItem(KEY_PACK); return null; }
}

function showPack() {
  const line = $("pack");
  line.removeAttribute("data-i18n");
  if (!pack) {
    line.className = "pack none";
    line.textContent = t().pack_none + (packNote ? " " + packNote : "");
    return;
  }
  const age = packAgeMs(pack, Date.now());
  const stale = age > maxAgeDays() * 86400000;
  line.className = "pack" + (stale ? " stale" : "");
  line.dataset.block = String(pack.block);
  line.dataset.stale = String(stale);
  const ageText = formatAge(age, t());
  line.textContent = (stale ? fill(t().pack_stale, { age: ageText, days: maxAgeDays() })
                            : fill(t().pack_line, { block: pack.block, age: ageText })) + (packNote ? " " + packNote : "");
}

async function refreshPack() {
  if (!navigator.onLine) { packNote = pack ? t().pack_offline : ""; showPack(); return; }
  try {
    const response = await fetch("/trust-pack.json", { cache: "no-store", credentials: "omit",
                                                       headers: { Accept: "application/json" } });
    if (!response.ok) { throw new Error("HTTP " + response.status); }
    const text = await response.text();
    const fresh = parsePack(text);
    if (pack && fresh.registry.toLowerCase() === pack.registry.toLowerCase() && fresh.chain_id === pack.chain_id &&
        fresh.block < pack.block) {
      throw new Error("block " + fresh.block + " < " + pack.block);  // never go back to an older state
    }
    pack = fresh;
    packNote = "";
    try { localStorage.setItem(KEY_PACK, text); } catch (e) { /* full: kept for this visit only */ }
  } catch (e) {
    const offline = e instanceof TypeError;  // fetch's network failure
    packNote = offline ? (pack ? t().pack_offline : "") : fill(t().pack_refused, { detail: String(e.message).slice(0, 80) });
  }
  showPack();
  if (last) { verify(last.text); }
}

// -- the verdict --------------------------------------------------------------------------------------

function short(address) { return address ? address.slice(0, 10) + "…" + address.slice(-6) : ""; }

function headline(v) {
  const T = t();
  if (v.hostOk === false) {
    return ["bad", T.v_fake_host, fill(T.v_fake_host_body, { host: v.target.host, hosts: pack.hosts.join(", ") })];
  }
  if (v.status === "bad_signature") { return ["bad", T.v_bad_signature, T.v_bad_signature_body]; }
  if (v.status === "unknown_signer") {
    return v.revokedBlock !== null
      ? ["bad", T.v_revoked, fill(T.v_revoked_body, { signer: v.signer, block: v.revokedBlock })]
      : ["bad", T.v_unknown, T.v_unknown_body];
  }
  if (v.orderStatus === "annulled") { return ["bad", T.v_annulled, fill(T.v_annulled_body, { block: v.packBlock })]; }
  if (v.status === "not_signed") { return ["warn", T.v_not_signed, T.v_not_signed_body]; }
  if (v.status === "unchecked") { return ["warn", T.v_unchecked, T.v_unchecked_body]; }
  if (v.orderStatus === "superseded") {
    return ["warn", T.v_superseded, fill(T.v_superseded_body, { other: short(v.replacedBy) })];
  }
  if (v.packStale) { return ["warn", T.v_stale, T.v_stale_body]; }
  return ["ok", T.v_ok, T.v_ok_body];
}

function checkRow(kind, text) { const li = el("li", kind, text); li.dataset.kind = kind; return li; }

function factRow(key, value) {
  const li = el("li");
  const label = el("label");
  const box = el("input");
  box.type = "checkbox";
  const words = el("span");
  words.appendChild(el("span", "k", t()[key]));
  const v = el("span", "v", value);
  v.dir = "auto";
  words.appendChild(v);
  label.append(box, words);
  li.appendChild(label);
  li.dataset.fact = key;
  return li;
}

function render(v, problem) {
  const T = t();
  let kind, title, body;
  if (problem) { [kind, title, body] = ["bad", T.v_not_order, fill(T.v_not_order_body, { detail: problem })]; }
  else { [kind, title, body] = headline(v); }
  const box = $("verdict");
  box.className = "verdict " + kind;
  box.dataset.overall = kind;
  box.dataset.status = v ? v.status : "not_order";
  $("verdict-title").textContent = title;
  $("verdict-body").textContent = body;
  const checks = $("checks");
  const facts = $("facts");
  checks.textContent = "";
  facts.textContent = "";
  if (v) {
    if (v.hostOk !== null) {
      checks.appendChild(checkRow(v.hostOk ? "ok" : "bad", fill(v.hostOk ? T.c_host_ok : T.c_host_bad, { host: v.target.host })));
    }
    if (v.status === "signed") { checks.appendChild(checkRow("ok", fill(T.c_sig_ok, { signer: v.signer }))); }
    else if (v.status !== "not_signed") { checks.appendChild(checkRow("bad", fill(T.c_sig_bad, { status: v.status }))); }
    if (v.orderStatus) {
      const row = { valid: ["ok", T.c_status_valid], annulled: ["bad", T.c_status_annulled],
                    superseded: ["warn", T.c_status_superseded] }[v.orderStatus];
      checks.appendChild(checkRow(row[0], fill(row[1], { block: v.packBlock, other: short(v.replacedBy) })));
    }
    if (v.packStale) { checks.appendChild(checkRow("bad", fill(T.c_pack_old, { age: formatAge(packAgeMs(pack, Date.now()), T) }))); }
    facts.appendChild(factRow("f_number", v.target.number));
    facts.appendChild(factRow("f_entity", /^\d{11}$/.test(v.target.entity) ? T.ruc + " " + v.target.entity : v.target.entity));
    if (v.facts) {
      const f = v.facts;
      facts.appendChild(factRow("f_supplier", f.supplierIsRuc ? T.ruc + " " + f.supplier : f.supplier));
      facts.appendChild(factRow("f_date", formatDate(f.issuedOn, lang)));
      facts.appendChild(factRow("f_total", formatTotal(f.total, f.currency)));
      facts.appendChild(factRow("f_items", String(f.items)));
    }
    if (v.hostOk) {
      const li = el("li", "link");
      const a = el("a", null, T.see_online);
      a.href = v.target.url;
      a.rel = "noopener noreferrer";
      li.appendChild(a);
      checks.appendChild(li);
    }
  }
  const shown = !!(v && v.facts);
  $("facts-h").hidden = !v;
  $("facts-intro").hidden = !shown;
  $("result").hidden = false;
}

async function verify(text, started) {
  const begun = started === undefined ? performance.now() : started;
  last = { text };
  if (notes.delete("photo_none") || notes.delete("photo_bad")) { showNotes(); }
  let qr;
  try { qr = readQr(text); } catch (e) {
    if (!(e instanceof QrError)) { throw e; }
    if (e.code.startsWith("fragment") || e.code.startsWith("payload")) {
      render({ target: safeTarget(text), facts: null, status: "bad_signature", hostOk: null, orderStatus: null,
               packStale: null, revokedBlock: null }, null);
    } else { render(null, e.code.replace("_", " ")); }
    finish(begun);
    return;
  }
  render(judge(qr, pack, await cryptoReady, { now: Date.now(), maxAgeDays: maxAgeDays() }), null);
  finish(begun);
}

function safeTarget(text) {  // the URL part of a QR whose payload cannot be read, for the facts we still have
  try { const target = readQr(text.split("#")[0]); return target.target; } catch (e) {
    return { host: "", hostname: "", entity: "", number: "", orderKey: "", url: "" };
  }
}

function finish(begun) {
  const box = $("verdict");
  box.dataset.ms = (performance.now() - begun).toFixed(1);
  $("result").scrollIntoView({ block: "start" });
  box.tabIndex = -1;
  box.focus({ preventScroll: true });  // keyboard and screen-reader users land on the verdict
}

// -- reading QR codes ---------------------------------------------------------------------------------

const canvas = $("frame");
const ctx = canvas.getContext("2d", { willReadFrequently: true });

function jsqrDecoder(source, width, height, crop) {
  const [sx, sy, sw, sh] = crop || [0, 0, width, height];
  const scale = Math.min(1, MAX_SIDE / Math.max(sw, sh));
  canvas.width = Math.round(sw * scale);
  canvas.height = Math.round(sh * scale);
  ctx.drawImage(source, sx, sy, sw, sh, 0, 0, canvas.width, canvas.height);
  const image = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const code = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "attemptBoth" });
  return Promise.resolve(code ? code.data : null);
}

// A photo of a whole page: the QR is small in it. Read the whole picture, then its corners and halves at
// their own resolution (the stamp sits in a corner), at most 9 tries of MAX_SIDE pixels.
async function decodePhoto(bitmap) {
  const w = bitmap.width, h = bitmap.height;
  const found = await decoder(bitmap, w, h);
  if (found || decoder !== jsqrDecoder) { return found; }
  const cw = Math.ceil(w * 0.6), ch = Math.ceil(h * 0.6);
  const tries = [[w - cw, h - ch], [0, h - ch], [w - cw, 0], [0, 0]].map(([x, y]) => [x, y, cw, ch])
    .concat([[0, Math.floor(h / 2), w, Math.ceil(h / 2)], [0, 0, w, Math.ceil(h / 2)]]);
  for (const crop of tries) {
    const text = await jsqrDecoder(bitmap, w, h, crop);
    if (text) { return text; }
  }
  return null;
}

function loadScript(url) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.onload = resolve;
    script.onerror = reject;
    script.src = scriptUrl(url);
    document.head.appendChild(script);
  });
}

async function setUpDecoder() {
  if ("BarcodeDetector" in window) {
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (formats.includes("qr_code")) {
        const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        decoder = async (source) => { const found = await detector.detect(source); return found.length ? found[0].rawValue : null; };
        document.body.dataset.decoder = "barcodedetector";
        return;
      }
    } catch (e) { /* fall through to jsQR */ }
  }
  try {
    await loadScript(JSQR_URL);
    if (typeof window.jsQR !== "function") { throw new Error("jsQR missing"); }
    decoder = jsqrDecoder;
    document.body.dataset.decoder = "jsqr";
  } catch (e) {
    document.body.dataset.decoder = "none";
    note("no_decoder");
  }
}

function stopCamera() {
  if (!scanning) { return; }
  clearTimeout(scanning.timer);
  scanning.stream.getTracks().forEach((track) => track.stop());
  scanning = null;
  $("camera").hidden = true;
  $("scan").disabled = false;
}

async function startCamera() {
  if (scanning) { return; }
  if (!decoder) { note("no_camera_reader"); return; }
  const status = $("camera-status");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (e) {
    status.textContent = fill(t().camera_denied, { detail: e.name || "error" });
    $("camera").hidden = false;
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  scanning = { stream, timer: 0 };
  $("camera").hidden = false;
  $("scan").disabled = true;
  status.textContent = t().camera_looking;
  await video.play().catch(() => {});
  const look = async () => {
    if (!scanning) { return; }
    if (video.readyState >= 2 && video.videoWidth) {
      let text = null;
      try { text = await decoder(video, video.videoWidth, video.videoHeight); } catch (e) { text = null; }
      if (text && scanning) {
        const found = performance.now();
        stopCamera();
        verify(text, found);
        return;
      }
    }
    if (scanning) { scanning.timer = setTimeout(look, 60); }
  };
  look();
}

async function readPhoto(file) {
  if (!file) { return; }
  if (!decoder || file.size > MAX_PHOTO_BYTES) { note(decoder ? "photo_bad" : "no_camera_reader"); return; }
  let bitmap;
  try { bitmap = await createImageBitmap(file); } catch (e) { note("photo_bad"); return; }
  let text = null;
  try { text = await decodePhoto(bitmap); } catch (e) { text = null; }
  const found = performance.now();
  bitmap.close();
  if (text) { verify(text, found); } else { note("photo_none"); }
}

// -- start --------------------------------------------------------------------------------------------

const cryptoReady = import("./crypto.js").catch(() => { note("no_crypto"); return null; });

$("lang").addEventListener("click", () => {
  lang = lang === "es" ? "en" : "es";
  localStorage.setItem(KEY_LANG, lang);
  applyLang();
});
$("scan").addEventListener("click", startCamera);
$("stop").addEventListener("click", stopCamera);
$("photo").addEventListener("change", (event) => { readPhoto(event.target.files[0]); event.target.value = ""; });
$("paste-go").addEventListener("click", () => verify($("paste").value.trim()));
$("refresh").addEventListener("click", refreshPack);
$("max-age").value = String(maxAgeDays());
$("max-age").addEventListener("change", (event) => {
  const value = Number(event.target.value);
  if (Number.isInteger(value) && value >= 1 && value <= 365) { localStorage.setItem(KEY_AGE, String(value)); }
  event.target.value = String(maxAgeDays());
  showPack();
  if (last) { verify(last.text); }
});
window.addEventListener("online", refreshPack);
setInterval(() => { if (document.visibilityState === "visible") { refreshPack(); } }, 10 * 60 * 1000);
window.addEventListener("offline", () => { packNote = pack ? t().pack_offline : ""; showPack(); });

pack = loadStoredPack();
applyLang();
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register(scriptUrl(SW_URL), { scope: "/verificar" }).catch(() => {});
}
Promise.all([setUpDecoder(), cryptoReady, refreshPack()]).then(() => { document.body.dataset.ready = "1"; });
