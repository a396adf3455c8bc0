// Hardhat 2 network for the portability tests (tests/test_portability.py): nothing to compile here.
const os = require("os");
const path = require("path");
module.exports = { paths: { cache: path.join(os.tmpdir(), "peru-compras-hardhat-cache"), artifacts: path.join(os.tmpdir(), "peru-compras-hardhat-artifacts") } };
