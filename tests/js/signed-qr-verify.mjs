#!/usr/bin/env node
// A third party's check of a peru-compras signed QR, written from the README's "Signed QR" section alone: ethers
// and Node only, nothing from peru-compras. Reads one JSON object {"qr", "chainId", "registry"} on stdin, decodes
// the fragment after "#" (base64url, no padding), rebuilds the EIP-712 Order struct and prints
// {"facts", "digest", "recovered"} where "recovered" is what ethers' verifyTypedData returns; or {"error"}.
import { ethers } from "ethers";

const ORDER = [
  { name: "orderKey", type: "string" },
  { name: "issuedOn", type: "string" },
  { name: "supplier", type: "string" },
  { name: "total", type: "string" },
  { name: "currency", type: "string" },
  { name: "items", type: "uint16" },
  { name: "recordHash", type: "bytes32" },
];

function decode(qr) {
  const hash = qr.indexOf("#");
  const url = new URL(qr.slice(0, hash));
  const segments = url.pathname.split("/");
  if (segments.length < 4 || segments[segments.length - 3] !== "o") throw new Error("not an order's verify URL");
  const orderKey = decodeURIComponent(segments[segments.length - 2]) + "/" + decodeURIComponent(segments[segments.length - 1]);
  const bytes = Buffer.from(qr.slice(hash + 1), "base64url");
  let at = 0;
  const take = (n) => {
    if (at + n > bytes.length) throw new Error("cut short");
    const out = bytes.subarray(at, at + n);
    at += n;
    return out;
  };
  const varint = () => {
    let value = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = take(1)[0];
      value |= BigInt(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
  };
  const header = take(1)[0];
  if (header >> 5 !== 1) throw new Error("unknown version");
  const days = take(2).readUInt16BE(0);
  const issuedOn = new Date(days * 86400000).toISOString().slice(0, 10);
  let supplier;
  if (header & 0b1000) {
    const length = take(1)[0];
    supplier = take(length).toString("utf8");
  } else {
    supplier = BigInt("0x" + take(5).toString("hex")).toString().padStart(11, "0");
  }
  const currency = header & 0b100 ? take(3).toString("ascii") : "PEN";
  const scale = take(1)[0];
  const digits = varint().toString().padStart(scale + 1, "0");
  const total = scale ? digits.slice(0, -scale) + "." + digits.slice(-scale) : digits;
  const items = Number(varint());
  const recordHash = "0x" + take(32).toString("hex");
  const r = "0x" + take(32).toString("hex");
  const s = "0x" + take(32).toString("hex");
  if (at !== bytes.length) throw new Error("trailing bytes");
  const signature = ethers.Signature.from({ r, s, v: 27 + (header & 1) }).serialized;
  return { message: { orderKey, issuedOn, supplier, total, currency, items, recordHash }, signature };
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);
try {
  const { message, signature } = decode(request.qr);
  const domain = { name: "peru-compras", version: "1", chainId: request.chainId, verifyingContract: request.registry };
  const types = { Order: ORDER };
  process.stdout.write(JSON.stringify({
    facts: message,
    digest: ethers.TypedDataEncoder.hash(domain, types, message),
    recovered: ethers.verifyTypedData(domain, types, message, signature),
  }) + "\n");
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error.message || error) }) + "\n");
}
