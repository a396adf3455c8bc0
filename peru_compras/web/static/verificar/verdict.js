// The verdict on a scanned QR against a trust pack (PLAN/README "Trust pack JSON"): who signed it, whether
// that address holds the registrar role as of the pack's block, whether the QR points to the registry's
// page, and the order's status as of that block. Never green on a guess: green needs all of them.

export const PACK_FORMAT = "peru-compras-trust-pack/1";
export const MAX_PACK_CHARS = 4 * 1024 * 1024;
const HEX64 = /^0x[0-9a-f]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

function isBlock(value) { return Number.isSafeInteger(value) && value >= 0; }

// A pack from JSON text, checked field by field; throws Error("pack: …") naming the first bad field.
export function parsePack(text) {
  if (typeof text !== "string" || text.length > MAX_PACK_CHARS) { throw new Error("pack: too large"); }
  const p = JSON.parse(text);
  const bad = (field) => { throw new Error("pack: bad " + field); };
  if (!p || typeof p !== "object" || p.format !== PACK_FORMAT) { bad("format"); }
  if (!Number.isSafeInteger(p.chain_id) || p.chain_id <= 0) { bad("chain_id"); }
  if (typeof p.registry !== "string" || !ADDRESS.test(p.registry)) { bad("registry"); }
  if (!Array.isArray(p.hosts) || !p.hosts.every((h) => typeof h === "string" && h.length <= 255)) { bad("hosts"); }
  if (!isBlock(p.block)) { bad("block"); }
  if (typeof p.time !== "string" || Number.isNaN(Date.parse(p.time))) { bad("time"); }
  if (!Array.isArray(p.registrars) || !p.registrars.every((r) => r && typeof r.address === "string" &&
      ADDRESS.test(r.address) && isBlock(r.from_block) && (r.until_block === null || isBlock(r.until_block)))) {
    bad("registrars");
  }
  if (!Array.isArray(p.annulled) || !p.annulled.every((t) => typeof t === "string" && HEX64.test(t))) { bad("annulled"); }
  if (!p.superseded || typeof p.superseded !== "object" || Array.isArray(p.superseded) ||
      !Object.entries(p.superseded).every(([k, v]) => HEX64.test(k) && typeof v === "string" && HEX64.test(v))) {
    bad("superseded");
  }
  return p;
}

export function packAgeMs(pack, now) {
  return Math.max(0, now - Date.parse(pack.time));
}

function hostOk(target, pack) {
  // URL.host: lowercase, the port only when not the scheme's default (the pack writes hosts the same way)
  return pack.hosts.some((h) => h.toLowerCase() === target.host);
}

function signerStanding(signer, pack) {
  const periods = pack.registrars.filter((r) => r.address.toLowerCase() === signer);
  if (periods.length === 0) { return { known: false, revokedBlock: null }; }
  if (periods.some((r) => r.until_block === null)) { return { known: true, revokedBlock: null }; }
  return { known: false, revokedBlock: Math.max(...periods.map((r) => r.until_block)) };
}

// qr: readQr()'s result; crypto: the crypto.js module or null (not installed); pack: parsePack()'s or null.
export function judge(qr, pack, crypto, options) {
  const now = options.now;
  const maxAgeMs = options.maxAgeDays * 86400000;
  const out = {
    target: qr.target, facts: qr.facts, status: "not_signed", signer: null, revokedBlock: null,
    hostOk: null, orderStatus: null, replacedBy: null, tokenId: null,
    packBlock: pack ? pack.block : null, packTime: pack ? pack.time : null,
    packStale: pack ? packAgeMs(pack, now) > maxAgeMs : null, overall: "warn",
  };
  if (pack) {
    out.hostOk = hostOk(qr.target, pack);
  }
  if (crypto && pack) {
    out.tokenId = crypto.tokenOfKey(qr.target.orderKey);
    if (pack.annulled.includes(out.tokenId)) { out.orderStatus = "annulled"; }
    else if (Object.prototype.hasOwnProperty.call(pack.superseded, out.tokenId)) {
      out.orderStatus = "superseded";
      out.replacedBy = pack.superseded[out.tokenId];
    } else { out.orderStatus = "valid"; }
  }
  if (qr.facts) {
    if (!crypto || !pack) {
      out.status = "unchecked";
    } else {
      const digest = crypto.orderDigest(qr.target.orderKey, qr.facts, pack.chain_id, pack.registry);
      out.signer = crypto.recoverSigner(digest, qr.facts);
      if (out.signer === null) { out.status = "bad_signature"; }
      else {
        const standing = signerStanding(out.signer, pack);
        out.status = standing.known ? "signed" : "unknown_signer";
        out.revokedBlock = standing.revokedBlock;
      }
    }
  }
  if (out.hostOk === false || out.status === "bad_signature" || out.status === "unknown_signer" ||
      out.orderStatus === "annulled") {
    out.overall = "bad";
  } else if (out.status === "signed" && out.hostOk && !out.packStale && out.orderStatus === "valid") {
    out.overall = "ok";
  }
  return out;
}
