#!/usr/bin/env node
// A third-party check of a signed Forward with ethers only (nothing from peru-compras): reads one JSON
// object {"chainId", "hub", "execute"} on stdin, where "execute" is the hub call's input as 0x-hex, decodes it
// with the published signature execute((address,address,uint256,uint32,uint256,uint256,bytes32,address),bytes,bytes),
// and prints {"selector", "forward", "dataHashMatches", "digest", "recovered"}: the signer ethers' verifyTypedData
// recovers under the domain {name "PermissionedMetaTxHub", version "1", chainId, verifyingContract hub}.
import { ethers } from "ethers";

const FORWARD = [
  { name: "from", type: "address" },
  { name: "to", type: "address" },
  { name: "value", type: "uint256" },
  { name: "space", type: "uint32" },
  { name: "nonce", type: "uint256" },
  { name: "deadline", type: "uint256" },
  { name: "dataHash", type: "bytes32" },
  { name: "caller", type: "address" },
];
const hub = new ethers.Interface([
  "function execute((address from,address to,uint256 value,uint32 space,uint256 nonce,uint256 deadline,bytes32 dataHash,address caller) forward, bytes callData, bytes signature) payable",
]);

let input = "";
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);
const call = hub.parseTransaction({ data: request.execute });
const [forward, callData, signature] = call.args;
const message = Object.fromEntries(FORWARD.map(({ name }) => [name, forward[name]]));
const domain = { name: "PermissionedMetaTxHub", version: "1", chainId: request.chainId, verifyingContract: request.hub };
const types = { Forward: FORWARD };
process.stdout.write(JSON.stringify({
  selector: call.selector,
  forward: Object.fromEntries(Object.entries(message).map(([k, v]) => [k, typeof v === "bigint" ? v.toString() : v])),
  dataHashMatches: ethers.keccak256(callData) === forward.dataHash,
  digest: ethers.TypedDataEncoder.hash(domain, types, message),
  recovered: ethers.verifyTypedData(domain, types, message, signature),
}) + "\n");
