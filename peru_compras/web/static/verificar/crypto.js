// The EIP-712 digest of a signed QR's facts and the address that signed it (keccak-256 from @noble/hashes,
// public-key recovery from @noble/secp256k1, both served from vendor/ exactly as published on npm).
import { keccak_256 } from "./vendor/noble-hashes/sha3.js";
import { recoverPublicKey } from "./vendor/noble-secp256k1/index.js";

const utf8 = new TextEncoder();
const keccak = (bytes) => keccak_256(bytes);
const text = (s) => keccak(utf8.encode(s));

const DOMAIN_TYPE = text("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
const ORDER_TYPE = text("Order(string orderKey,string issuedOn,string supplier,string total,string currency," +
                        "uint16 items,bytes32 recordHash)");

function word(value) {  // a non-negative integer as one 32-byte ABI word
  const out = new Uint8Array(32);
  let v = BigInt(value);
  for (let i = 31; i >= 0 && v > 0n; i--) { out[i] = Number(v & 0xffn); v >>= 8n; }
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export function hex(bytes) {
  return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function addressBytes(address) {
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) { throw new Error("bad address"); }
  const out = new Uint8Array(32);
  for (let i = 0; i < 20; i++) { out[12 + i] = parseInt(address.substr(2 + 2 * i, 2), 16); }
  return out;
}

// keccak256("\x19\x01" || domainSeparator || hashStruct(Order))
export function orderDigest(orderKey, facts, chainId, registry) {
  const domain = keccak(concat(DOMAIN_TYPE, text("peru-compras"), text("1"), word(chainId), addressBytes(registry)));
  const struct = keccak(concat(ORDER_TYPE, text(orderKey), text(facts.issuedOn), text(facts.supplier),
                               text(facts.total), text(facts.currency), word(facts.items), facts.recordHash));
  return keccak(concat(Uint8Array.of(0x19, 0x01), domain, struct));
}

// The signer's address (lowercase 0x hex), or null when no public key comes out of the signature.
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

export function recoverSigner(digest, facts) {
  let s = 0n;
  for (const b of facts.s) { s = (s << 8n) | BigInt(b); }
  if (s > HALF_N) { return null; }  // high s: every signer we make writes low s (EIP-2), as the CLI checks
  try {
    const sig = concat(Uint8Array.of(facts.v - 27), facts.r, facts.s);
    const publicKey = recoverPublicKey(sig, digest, { prehash: false, isCompressed: false });
    return hex(keccak(publicKey.subarray(1)).subarray(12));
  } catch (e) {
    return null;
  }
}

// The token id of an order key: keccak256(key), as 0x + 64 hex digits.
export function tokenOfKey(orderKey) {
  return hex(text(orderKey));
}
