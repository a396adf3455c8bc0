// peru-compras signed QR: reading the QR text (verify URL + "#" + base64url payload) into the facts it
// carries. No dependencies and no network: everything here is pure and bounded, and every refusal is an
// Error whose `code` names what was wrong (the page turns codes into sentences).
//
// Payload (big-endian), as fixed in the project's plan and README:
//   byte 0 header: bits 7-5 version 0b001; bit 3 supplier is text (not PE-RUC); bit 2 currency follows
//          (not PEN); bit 0 = signature v - 27; bits 4 and 1 are 0
//   2 bytes issuedOn, days since 1970-01-01
//   supplier: PE-RUC -> 5 bytes (uint40, 11 digits zero-padded); text -> 1 length byte (1..60) + UTF-8
//   currency (only with bit 2): 3 ASCII A-Z bytes
//   total: 1 byte scale (0..6) + unsigned LEB128 of total * 10^scale
//   items: unsigned LEB128 (1..65535)
//   32 bytes recordHash, 32 bytes r, 32 bytes s; nothing after.

export const MAX_QR_TEXT = 1024;   // a signed QR text is at most 200 characters; a scan of anything longer is refused
export const MAX_FRAGMENT = 240;   // base64url characters (the reference payload is 146; the CLI has the same limit)

export class QrError extends Error {
  constructor(code, detail) {
    super(code + (detail ? ": " + detail : ""));
    this.code = code;
    this.detail = detail || "";
  }
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64_INDEX = new Map(Array.from(B64, (c, i) => [c, i]));

// Strict base64url without padding: any other character, or a length that cannot come from whole bytes, is refused.
export function base64urlDecode(text) {
  if (text.length % 4 === 1) { throw new QrError("fragment_bad", "length"); }
  const out = new Uint8Array(Math.floor(text.length * 3 / 4));
  let bits = 0, value = 0, j = 0;
  for (const c of text) {
    const v = B64_INDEX.get(c);
    if (v === undefined) { throw new QrError("fragment_bad", "character"); }
    value = (value << 6) | v;
    bits += 6;
    if (bits >= 8) { bits -= 8; out[j++] = (value >> bits) & 0xff; }
  }
  if (bits > 0 && (value & ((1 << bits) - 1)) !== 0) { throw new QrError("fragment_bad", "padding bits"); }
  return out;
}

// The verify URL's parts: origin host, and the order key "<entity>/<number>" from its path "…/o/<entity>/<number>".
export function parseQrText(text) {
  if (typeof text !== "string" || text.length === 0) { throw new QrError("empty"); }
  if (text.length > MAX_QR_TEXT) { throw new QrError("too_long", String(text.length)); }
  const trimmed = text.trim();
  let url;
  try { url = new URL(trimmed); } catch (e) { throw new QrError("not_url"); }
  if (url.protocol !== "https:" && url.protocol !== "http:") { throw new QrError("not_url", url.protocol); }
  const parts = url.pathname.split("/");
  const n = parts.length;
  if (n < 4 || parts[n - 3] !== "o" || !parts[n - 2] || !parts[n - 1]) { throw new QrError("not_order_url"); }
  let entity, number;
  try {
    entity = decodeURIComponent(parts[n - 2]);
    number = decodeURIComponent(parts[n - 1]);
  } catch (e) { throw new QrError("not_order_url", "escape"); }
  const hash = url.hash.startsWith("#") ? url.hash.slice(1) : "";
  if (hash.length > MAX_FRAGMENT) { throw new QrError("fragment_too_long", String(hash.length)); }
  url.hash = "";
  return {
    url: url.href, host: url.host.toLowerCase(), hostname: url.hostname.toLowerCase(),
    entity, number, orderKey: entity + "/" + number, fragment: hash,
  };
}

class Reader {
  constructor(bytes) { this.bytes = bytes; this.at = 0; }
  take(n) {
    if (this.at + n > this.bytes.length) { throw new QrError("payload_short"); }
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  byte() { return this.take(1)[0]; }
  uint(n) { let v = 0n; for (const b of this.take(n)) { v = (v << 8n) | BigInt(b); } return v; }
  // unsigned LEB128, at most `maxBytes` bytes, no redundant trailing zero groups
  varint(maxBytes) {
    let v = 0n, shift = 0n;
    for (let i = 0; i < maxBytes; i++) {
      const b = this.byte();
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) { throw new QrError("payload_bad", "varint"); }
        return v;
      }
    }
    throw new QrError("payload_bad", "varint too long");
  }
}

function isoDate(days) {
  const d = new Date(Number(days) * 86400000);
  return d.toISOString().slice(0, 10);
}

function decimal(value, scale) {
  if (scale === 0) { return value.toString(); }
  const digits = value.toString().padStart(scale + 1, "0");
  return digits.slice(0, digits.length - scale) + "." + digits.slice(digits.length - scale);
}

// The facts and the signature from the payload bytes; QrError for anything that is not exactly the format.
export function decodePayload(bytes) {
  const r = new Reader(bytes);
  const header = r.byte();
  if ((header >> 5) !== 0b001) { throw new QrError("payload_version", String(header >> 5)); }
  if (header & 0b00010010) { throw new QrError("payload_bad", "reserved bits"); }
  const supplierText = (header & 0b1000) !== 0;
  const hasCurrency = (header & 0b100) !== 0;
  const v = 27 + (header & 1);
  const issuedOn = isoDate(r.uint(2));
  let supplier;
  if (supplierText) {
    const n = r.byte();
    if (n < 1 || n > 60) { throw new QrError("payload_bad", "supplier length"); }
    try { supplier = new TextDecoder("utf-8", { fatal: true }).decode(r.take(n)); } catch (e) {
      if (e instanceof QrError) { throw e; }
      throw new QrError("payload_bad", "supplier text");
    }
  } else {
    supplier = r.uint(5).toString().padStart(11, "0");
    if (supplier.length > 11) { throw new QrError("payload_bad", "RUC"); }
  }
  let currency = "PEN";
  if (hasCurrency) {
    currency = String.fromCharCode(...r.take(3));
    if (!/^[A-Z]{3}$/.test(currency)) { throw new QrError("payload_bad", "currency"); }
  }
  const scale = r.byte();
  if (scale > 6) { throw new QrError("payload_bad", "scale"); }
  const total = decimal(r.varint(10), scale);
  const items = Number(r.varint(3));
  if (items < 1 || items > 65535) { throw new QrError("payload_bad", "items"); }
  const recordHash = r.take(32).slice();
  const rr = r.take(32).slice();
  const ss = r.take(32).slice();
  if (r.at !== bytes.length) { throw new QrError("payload_trailing", String(bytes.length - r.at)); }
  return { issuedOn, supplier, supplierIsRuc: !supplierText, currency, total, items, recordHash, r: rr, s: ss, v };
}

// QR text -> {target (URL parts), facts (or null when the QR is a plain, unsigned one)}.
export function readQr(text) {
  const target = parseQrText(text);
  if (!target.fragment) { return { target, facts: null }; }
  return { target, facts: decodePayload(base64urlDecode(target.fragment)) };
}
