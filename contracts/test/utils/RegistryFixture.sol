// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {PurchaseOrderRegistry} from "../../src/PurchaseOrderRegistry.sol";
import {IPurchaseOrderRegistry} from "../../src/interfaces/IPurchaseOrderRegistry.sol";
import {OrderBytes} from "./OrderBytes.sol";
import {Test} from "./Test.sol";

/// @title Shared setup: a registry without trusted forwarder and four people.
/// admin: DEFAULT_ADMIN_ROLE, REGISTRAR_ROLE, ANNULLER_ROLE (the constructor's grants);
/// registrar: REGISTRAR_ROLE only; annuller: ANNULLER_ROLE only; outsider: nothing.
abstract contract RegistryFixture is Test {
    string internal constant DOCUMENT_BASE_URI = "https://ordenes.example.pe/doc/";
    /// @dev A realistic key: 11-digit RUC, "/", order number.
    string internal constant KEY = "20131370998/OC-2026-004512";
    bytes32 internal constant HASH = keccak256("the stamped PDF");
    /// @dev Encoding version 1, then some bytes: the registry never reads the record.
    bytes internal constant RECORD = hex"01a1646e616d65";

    /// @dev The longest key the registry accepts: its length is one byte. (A key of 223 to 255 bytes once
    /// panicked, `33 + uint8(order[32])` being evaluated in uint8: the register tests keep those lengths.)
    uint256 internal constant LONGEST_KEY = 255;

    PurchaseOrderRegistry internal registry;
    bytes32 internal registrarRole;
    bytes32 internal annullerRole;
    bytes32 internal adminRole;

    address internal admin;
    address internal registrar;
    address internal annuller;
    address internal outsider;

    function setUp() public virtual {
        admin = makeAddr("admin");
        registrar = makeAddr("registrar");
        annuller = makeAddr("annuller");
        outsider = makeAddr("outsider");

        registry = new PurchaseOrderRegistry(admin, address(0), address(0), DOCUMENT_BASE_URI);
        vm.label(address(registry), "registry");
        registrarRole = registry.REGISTRAR_ROLE();
        annullerRole = registry.ANNULLER_ROLE();
        adminRole = registry.DEFAULT_ADMIN_ROLE();

        vm.startPrank(admin);
        registry.grantRole(registrarRole, registrar);
        registry.grantRole(annullerRole, annuller);
        vm.stopPrank();
    }

    // ----------------------------------------------------------------------------------------------
    // Orders

    function _order(bytes32 documentHash, string memory key) internal pure returns (bytes memory) {
        return OrderBytes.order(documentHash, bytes(key), RECORD);
    }

    /// @dev The order for `key` with the document hash {_documentHashOf}(key).
    function _order(string memory key) internal pure returns (bytes memory) {
        return _order(_documentHashOf(key), key);
    }

    /// @dev A stand-in for the SHA-256 of `key`'s PDF. Distinct from the token id (keccak256(key)), so a
    /// mix-up of the two fails the tests; not sha256 itself, because a precompile call would consume a
    /// pending vm.prank.
    function _documentHashOf(string memory key) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("PDF of ", key));
    }

    /// @dev The n-th order of the fixture's entity: "20131370998/OC-2026-<n>".
    function _key(uint256 n) internal pure returns (string memory) {
        return string.concat("20131370998/OC-2026-", _decimal(n));
    }

    function _tokenId(string memory key) internal pure returns (uint256) {
        return uint256(keccak256(bytes(key)));
    }

    /// @dev Registers `key` as `registrar` and returns its token id.
    function _register(string memory key) internal returns (uint256 tokenId) {
        vm.prank(registrar);
        tokenId = registry.register(_order(key));
    }

    function _batchOf(uint256 first, uint256 count) internal pure returns (bytes memory) {
        bytes[] memory orders = new bytes[](count);
        for (uint256 i; i < count; ++i) {
            orders[i] = _order(_key(first + i));
        }
        return OrderBytes.batch(orders);
    }

    function _state(uint256 tokenId) internal view returns (IPurchaseOrderRegistry.OrderState memory) {
        return registry.orderOf(tokenId);
    }

    function _status(uint256 tokenId) internal view returns (uint256) {
        return uint256(registry.orderOf(tokenId).status);
    }

    // ----------------------------------------------------------------------------------------------
    // Expected reverts

    function _unauthorized(address account, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role);
    }

    function _decimal(uint256 value) internal pure returns (string memory) {
        return vm.toString(value);
    }
}
