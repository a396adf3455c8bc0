#!/usr/bin/env node
// ERC-165 / ERC-721 checks of a deployed registry with ethers only (nothing from peru-compras):
//   node erc721-check.mjs RPC_URL REGISTRY_ADDRESS [TOKEN_ID ...]
// Interface ids are computed here from OpenZeppelin's interface ABIs (npm @openzeppelin/contracts
// build/contracts/*.json): the XOR of the selectors of the functions an interface itself declares, i.e.
// the XOR over its ABI, XOR-ed with the XOR over its parent's ABI (the inherited selectors cancel out).
// Prints {"ids": {name: id}, "supported": {name: bool}, "tokenURI": {tokenId: uri}} as JSON.
import { createRequire } from "node:module";
import { ethers } from "ethers";

const require = createRequire(import.meta.url);
const abiOf = (name) => require(`@openzeppelin/contracts/build/contracts/${name}.json`).abi;
const xorOf = (abi) => new ethers.Interface(abi).fragments
  .filter((fragment) => fragment.type === "function")
  .reduce((acc, fragment) => (acc ^ Number.parseInt(fragment.selector.slice(2), 16)) >>> 0, 0);
const own = (name, parent) => (xorOf(abiOf(name)) ^ (parent ? xorOf(abiOf(parent)) : 0)) >>> 0;
const hex4 = (n) => "0x" + n.toString(16).padStart(8, "0");

const ids = {
  ERC165: own("IERC165"),
  ERC721: own("IERC721", "IERC165"),
  ERC721Metadata: own("IERC721Metadata", "IERC721"),
  // EIP-5192's one function (OpenZeppelin 5.4 has no IERC5192): function locked(uint256) view returns (bool)
  ERC5192: xorOf(["function locked(uint256 tokenId) view returns (bool)"]),
  // IERC4906 declares only events, so its own XOR is 0 (printed as ERC4906_functions); EIP-4906 fixes
  // the id supportsInterface must answer for it as bytes4(0x49064906)
  ERC4906_functions: own("IERC4906", "IERC721"),
  ERC4906: 0x49064906,
  AccessControl: own("IAccessControl"),
  // not implemented: must be answered false
  ERC721Enumerable: own("IERC721Enumerable", "IERC721"),
  ERC721Receiver: own("IERC721Receiver"),
  invalid: 0xffffffff, // ERC-165: supportsInterface(0xffffffff) must be false
};

const [rpcUrl, address, ...tokens] = process.argv.slice(2);
const provider = new ethers.JsonRpcProvider(rpcUrl, undefined, { batchMaxCount: 1 });
const registry = new ethers.Contract(address, [
  "function supportsInterface(bytes4 interfaceId) view returns (bool)",
  "function tokenURI(uint256 tokenId) view returns (string)",
], provider);
const out = { ids: {}, supported: {}, tokenURI: {} };
for (const [name, id] of Object.entries(ids)) {
  out.ids[name] = hex4(id);
  if (name !== "ERC4906_functions") out.supported[name] = await registry.supportsInterface(hex4(id));
}
for (const token of tokens) out.tokenURI[token] = await registry.tokenURI(BigInt(token));
console.log(JSON.stringify(out));
