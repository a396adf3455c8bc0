#!/usr/bin/env node
// Reading a purchase order from the peru-compras registry without peru-compras: only a JSON-RPC node,
// the registry's address, ethers v6 and Node's zlib. It follows the README's "The record on chain".
//
//   node read-registry.mjs RPC_URL REGISTRY_ADDRESS ENTITY/ORDER_NUMBER|TOKEN_ID [DICTIONARY_FILE]
//
// DICTIONARY_FILE is the published preset dictionary (record-dictionary-v1.txt, in the package's data/
// folder; default: the copy next to this repository's package). Prints the record and the chain's facts
// about it as JSON on stdout; exits 1 when no order is registered under the key.
import { readFileSync } from "node:fs";
import { inflateRawSync } from "node:zlib";
import { ethers } from "ethers";

const [rpcUrl, registryAddress, ref, dictionaryFile] = process.argv.slice(2);
if (!rpcUrl || !registryAddress || !ref) {
  console.error("usage: node read-registry.mjs RPC_URL REGISTRY_ADDRESS ENTITY/ORDER_NUMBER|TOKEN_ID [DICTIONARY]");
  process.exit(2);
}
const dictionary = readFileSync(
  dictionaryFile ?? new URL("../peru_compras/data/record-dictionary-v1.txt", import.meta.url));

const abi = new ethers.Interface([
  // the calls that carry records (their `bytes` is the entry, or `uint16 length ‖ entry` repeated)
  "function register(bytes order)",
  "function registerBatch(bytes orders)",
  "function supersede(uint256 supersededTokenId, bytes order)",
  // on LACNet the node returns the RelayHub's call (two forms); signingData is the original transaction's RLP
  "function relayMetaTx(uint256 gasLimit, bytes signingData, uint8 v, bytes32 r, bytes32 s)",
  "function relayMetaTx(bytes signingData, uint8 v, bytes32 r, bytes32 s)",
  // LACNet's open-standards model: a relayer calls the ERC-2771 hub, which calls the registry with callData
  "function execute(tuple(address from, address to, uint256 value, uint32 space, uint256 nonce, uint256 deadline, bytes32 dataHash, address caller) forward, bytes callData, bytes signature)",
  // what storage says: status 0 not registered, 1 valid, 2 annulled, 3 superseded
  "function orderOf(uint256 tokenId) view returns (tuple(bytes32 documentHash, uint8 status, uint64 statusChangedAt, uint256 replacedBy, uint256 replaces))",
  "function documentBaseURI() view returns (string)",
  "event Transfer(address indexed from, address indexed to, uint256 indexed tokenId)",
  "event OrderRegistered(bytes32 indexed documentHash, address indexed registrar)",
  "event OrderAnnulled(uint256 indexed tokenId, address indexed annuller, string reason)",
]);
const STATUS = ["not_registered", "valid", "annulled", "superseded"];
const MAX_RECORD_BYTES = 256 * 1024; // the longest canonical record; a bigger one is not ours
const hex32 = (n) => ethers.toBeHex(n, 32);

// batchMaxCount 1: LACNet's writer nodes refuse JSON-RPC batches
const provider = new ethers.JsonRpcProvider(rpcUrl, undefined, { batchMaxCount: 1 });
const registry = new ethers.Contract(registryAddress, abi, provider);

// 1. The token id is uint256(keccak256(UTF-8 order key)), the key being "<entity>/<order number>".
const tokenId = /^(0x[0-9a-fA-F]{64}|[0-9]+)$/.test(ref) ? BigInt(ref) : BigInt(ethers.id(ref));

// 2. Storage: the document's SHA-256, status and supersede links.
const state = await registry.orderOf(tokenId);
if (state.status === 0n) {
  console.error(`no order is registered as token ${hex32(tokenId)}`);
  process.exit(1);
}

// 3. The minting Transfer(0, registry, tokenId) log names the transaction that carries the record.
const [mint] = await registry.queryFilter(registry.filters.Transfer(ethers.ZeroAddress, null, tokenId), 0);
const tx = await provider.getTransaction(mint.transactionHash);

// 4. The entries in its calldata.
function entries(data) {
  const call = abi.parseTransaction({ data });
  if (call?.name === "relayMetaTx") { // LACNet: [nonce, gasPrice, gas, to, value, data ‖ 64-byte suffix]
    const original = ethers.decodeRlp(call.args.signingData)[5];
    return entries(ethers.dataSlice(original, 0, ethers.dataLength(original) - 64));
  }
  if (call?.name === "execute" && ethers.keccak256(call.args.callData) === call.args.forward.dataHash) {
    return entries(call.args.callData); // the signer's call, as the registrar signed it (EIP-712 Forward)
  }
  if (call?.name === "register" || call?.name === "supersede") return [ethers.getBytes(call.args.order)];
  if (call?.name !== "registerBatch") return [];
  const packed = ethers.getBytes(call.args.orders), out = [];
  for (let at = 0; at + 2 <= packed.length; ) {
    const length = (packed[at] << 8) | packed[at + 1];
    out.push(packed.subarray(at + 2, at + 2 + length));
    at += 2 + length;
  }
  return out;
}

// 5. Our entry: sha256 (32) ‖ len(key) (1) ‖ key ‖ 0x01 ‖ raw DEFLATE(canonical JSON, preset dictionary).
const keyOf = (entry) => entry.subarray(33, 33 + entry[32]);
const entry = entries(tx.data).find((e) => e.length > 34 && BigInt(ethers.keccak256(keyOf(e))) === tokenId);
if (!entry) throw new Error(`the record of token ${hex32(tokenId)} is not in transaction ${tx.hash}`);
const sha256 = ethers.hexlify(entry.subarray(0, 32));
if (sha256 !== state.documentHash) throw new Error("calldata and storage disagree on the document hash");
const key = ethers.toUtf8String(keyOf(entry));
const version = entry[33 + entry[32]];
if (version !== 1) throw new Error(`unknown record encoding version ${version}`);
const record = JSON.parse(inflateRawSync(entry.subarray(34 + entry[32]),
  { dictionary, maxOutputLength: MAX_RECORD_BYTES }).toString("utf8"));

// 6. The two fields the key carries are left out of the compressed JSON: put them back.
const slash = key.indexOf("/");
const [entityKey, orderNumber] = [key.slice(0, slash), key.slice(slash + 1)];
record.order_number = orderNumber;
if (entityKey.includes(":")) { // "SCHEME:id" outside Peru, the 11-digit RUC in Peru
  const colon = entityKey.indexOf(":");
  Object.assign(record.entity, { scheme: entityKey.slice(0, colon), id: entityKey.slice(colon + 1) });
} else {
  record.entity.ruc = entityKey;
}

// 7. The chain's facts: who registered it (OrderRegistered in the same transaction), its status, where the
//    document is published (document_url, else the registry's documentBaseURI() + the hashlink).
const registered = (await registry.queryFilter(registry.filters.OrderRegistered(sha256), mint.blockNumber, mint.blockNumber))
  .find((log) => log.transactionHash === tx.hash);
const hashlink = "hl:z" + ethers.encodeBase58(ethers.concat(["0x1220", sha256])); // multihash sha2-256
const out = {
  ...record,
  token_id: hex32(tokenId),
  status: STATUS[Number(state.status)],
  tx_hash: tx.hash,
  block_number: mint.blockNumber,
  registrar: registered ? registered.args.registrar : "unknown",
  sha256: sha256.slice(2),
  hashlink,
  document_url: record.document_url ?? (await registry.documentBaseURI()) + hashlink,
};
if (out.status === "annulled") {
  const annulled = await registry.queryFilter(registry.filters.OrderAnnulled(tokenId), 0);
  out.annul_reason = annulled.at(-1)?.args.reason;
}
if (state.replacedBy !== 0n) out.replaced_by = hex32(state.replacedBy);
if (state.replaces !== 0n) out.supersedes = hex32(state.replaces);
console.log(JSON.stringify(out, null, 2));
