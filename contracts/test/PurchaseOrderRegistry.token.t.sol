// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Metadata} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Metadata.sol";
import {Base64} from "@openzeppelin/contracts/utils/Base64.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

import {IERC5192} from "../src/interfaces/IERC5192.sol";
import {IPurchaseOrderRegistry} from "../src/interfaces/IPurchaseOrderRegistry.sol";
import {RegistryFixture} from "./utils/RegistryFixture.sol";

/// @title The ERC-721 surface: locked tokens, refused transfers and approvals, metadata, ERC-165.
contract TokenTest is RegistryFixture {
    using Strings for uint256;

    string internal constant TOKEN_BASE_URI = "https://ordenes.example.pe/api/token/";

    uint256 internal tokenId;
    address internal buyer;

    function setUp() public override {
        super.setUp();
        tokenId = _register(KEY);
        buyer = makeAddr("buyer");
    }

    function test_NameAndSymbol() public view {
        assertEq(registry.name(), "Registro de Ordenes de Compra", "name");
        assertEq(registry.symbol(), "ORDEN", "symbol");
    }

    function test_Locked_IsTrue() public view {
        assertTrue(registry.locked(tokenId), "locked");
    }

    // ----------------------------------------------------------------------------------------------
    // Transfers: every path is refused and ownership never changes

    function test_RevertWhen_TransferFrom() public {
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderTokenLocked.selector, tokenId));
        vm.prank(admin);
        registry.transferFrom(address(registry), buyer, tokenId);
    }

    function test_RevertWhen_TransferFromByRegistryItself() public {
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderTokenLocked.selector, tokenId));
        vm.prank(address(registry));
        registry.transferFrom(address(registry), buyer, tokenId);
    }

    function test_RevertWhen_SafeTransferFrom() public {
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderTokenLocked.selector, tokenId));
        vm.prank(address(registry));
        registry.safeTransferFrom(address(registry), buyer, tokenId);
    }

    function test_RevertWhen_SafeTransferFromWithData() public {
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderTokenLocked.selector, tokenId));
        vm.prank(address(registry));
        registry.safeTransferFrom(address(registry), buyer, tokenId, "data");
    }

    function test_RevertWhen_TransferFromUnknownToken() public {
        // The lock is checked before existence: an unknown token is "locked" too.
        uint256 unknown = _tokenId(_key(99));

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderTokenLocked.selector, unknown));
        registry.transferFrom(address(registry), buyer, unknown);
    }

    function test_RevertWhen_TransferToZeroAddress() public {
        // ERC721's own check comes first: the burn-like transfer is refused as an invalid receiver.
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721InvalidReceiver.selector, address(0)));
        vm.prank(address(registry));
        registry.transferFrom(address(registry), address(0), tokenId);
    }

    function test_RevertWhen_AnyoneTransfers() public {
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderTokenLocked.selector, tokenId));
        vm.prank(outsider);
        registry.transferFrom(address(registry), buyer, tokenId);
    }

    function test_TransferAttemptsLeaveOwnership() public {
        address[3] memory callers = [admin, buyer, address(registry)];
        for (uint256 i; i < callers.length; ++i) {
            vm.startPrank(callers[i]);
            try registry.transferFrom(address(registry), buyer, tokenId) {} catch {}
            try registry.safeTransferFrom(address(registry), buyer, tokenId) {} catch {}
            try registry.safeTransferFrom(address(registry), buyer, tokenId, "") {} catch {}
            vm.stopPrank();
        }

        assertEq(registry.ownerOf(tokenId), address(registry), "ownerOf");
        assertEq(registry.balanceOf(address(registry)), 1, "balanceOf(registry)");
        assertEq(registry.balanceOf(buyer), 0, "balanceOf(buyer)");
    }

    // ----------------------------------------------------------------------------------------------
    // Approvals

    function test_RevertWhen_ApproveByAnyone() public {
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderTokenLocked.selector, tokenId));
        vm.prank(admin);
        registry.approve(buyer, tokenId);
    }

    /// @dev Not even the registry, which holds every token, can approve anyone.
    function test_RevertWhen_RegistryItselfApproves() public {
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderTokenLocked.selector, tokenId));
        vm.prank(address(registry));
        registry.approve(buyer, tokenId);
    }

    function test_RevertWhen_ApproveUnknownToken() public {
        uint256 unknown = _tokenId(_key(99));

        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderTokenLocked.selector, unknown));
        vm.prank(admin);
        registry.approve(buyer, unknown);
    }

    function test_RevertWhen_SetApprovalForAll() public {
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderTokenLocked.selector, 0));
        vm.prank(buyer);
        registry.setApprovalForAll(outsider, true);

        assertFalse(registry.isApprovedForAll(buyer, outsider), "isApprovedForAll(buyer)");
    }

    function test_GetApproved_IsZero() public view {
        assertEq(registry.getApproved(tokenId), address(0), "getApproved");
    }

    function test_RevertWhen_GetApprovedOfUnknownToken() public {
        uint256 unknown = _tokenId(_key(99));

        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, unknown));
        registry.getApproved(unknown);
    }

    // ----------------------------------------------------------------------------------------------
    // tokenURI

    function test_TokenURI_IsDataURIWithoutBase() public view {
        bytes memory uri = bytes(registry.tokenURI(tokenId));
        bytes memory prefix = "data:application/json;base64,";

        assertTrue(uri.length > prefix.length, "length");
        for (uint256 i; i < prefix.length; ++i) {
            assertTrue(uri[i] == prefix[i], "prefix");
        }
    }

    function test_TokenURI_EncodesHashAndValidStatus() public view {
        assertEq(registry.tokenURI(tokenId), _dataURI(tokenId, _documentHashOf(KEY), "valid"), "tokenURI");
    }

    function test_TokenURI_ShowsAnnulled() public {
        vm.prank(annuller);
        registry.annul(tokenId, "anulada");

        assertEq(registry.tokenURI(tokenId), _dataURI(tokenId, _documentHashOf(KEY), "annulled"), "tokenURI");
    }

    function test_TokenURI_ShowsSuperseded() public {
        vm.prank(registrar);
        registry.supersede(tokenId, _order(_key(2)));

        assertEq(registry.tokenURI(tokenId), _dataURI(tokenId, _documentHashOf(KEY), "superseded"), "tokenURI");
    }

    function test_TokenURI_IsBasePlusDecimalId() public {
        vm.prank(admin);
        registry.setTokenBaseURI(TOKEN_BASE_URI);

        assertEq(registry.tokenURI(tokenId), string.concat(TOKEN_BASE_URI, tokenId.toString()), "tokenURI");
    }

    function test_TokenURI_EmptyBaseRestoresDataURI() public {
        vm.startPrank(admin);
        registry.setTokenBaseURI(TOKEN_BASE_URI);
        registry.setTokenBaseURI("");
        vm.stopPrank();

        assertEq(registry.tokenURI(tokenId), _dataURI(tokenId, _documentHashOf(KEY), "valid"), "tokenURI");
    }

    function test_SetTokenBaseURI_EmitsBatchMetadataUpdate() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit IPurchaseOrderRegistry.BatchMetadataUpdate(0, type(uint256).max);

        vm.prank(admin);
        registry.setTokenBaseURI(TOKEN_BASE_URI);
    }

    function test_RevertWhen_TokenURIOfUnknownToken() public {
        uint256 unknown = _tokenId(_key(99));

        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, unknown));
        registry.tokenURI(unknown);
    }

    function test_RevertWhen_NonAdminSetsTokenBaseURI() public {
        vm.expectRevert(_unauthorized(registrar, adminRole));
        vm.prank(registrar);
        registry.setTokenBaseURI(TOKEN_BASE_URI);
    }

    // ----------------------------------------------------------------------------------------------
    // ERC-165

    function test_SupportsInterface_ERC721() public view {
        assertTrue(registry.supportsInterface(0x80ac58cd), "ERC-721");
        assertTrue(registry.supportsInterface(type(IERC721).interfaceId), "type(IERC721)");
    }

    function test_SupportsInterface_ERC721Metadata() public view {
        assertTrue(registry.supportsInterface(0x5b5e139f), "ERC-721 metadata");
        assertTrue(registry.supportsInterface(type(IERC721Metadata).interfaceId), "type(IERC721Metadata)");
    }

    function test_SupportsInterface_ERC5192() public view {
        assertTrue(registry.supportsInterface(0xb45a3c0e), "ERC-5192");
        assertTrue(type(IERC5192).interfaceId == bytes4(0xb45a3c0e), "IERC5192 id");
    }

    function test_SupportsInterface_ERC4906() public view {
        assertTrue(registry.supportsInterface(0x49064906), "ERC-4906");
    }

    function test_SupportsInterface_AccessControl() public view {
        assertTrue(registry.supportsInterface(0x7965db0b), "AccessControl");
        assertTrue(registry.supportsInterface(type(IAccessControl).interfaceId), "type(IAccessControl)");
    }

    function test_SupportsInterface_ERC165() public view {
        assertTrue(registry.supportsInterface(0x01ffc9a7), "ERC-165");
        assertTrue(registry.supportsInterface(type(IERC165).interfaceId), "type(IERC165)");
    }

    function test_SupportsInterface_RefusesInvalidId() public view {
        assertFalse(registry.supportsInterface(0xffffffff), "0xffffffff");
    }

    function test_SupportsInterface_RefusesEnumerable() public view {
        // totalSupply exists, but tokenByIndex/tokenOfOwnerByIndex do not: ERC721Enumerable is not claimed.
        assertFalse(registry.supportsInterface(0x780e9d63), "ERC721Enumerable");
    }

    function testFuzz_SupportsInterface_OnlyKnownIds(bytes4 interfaceId) public view {
        vm.assume(
            interfaceId != 0x80ac58cd && interfaceId != 0x5b5e139f && interfaceId != 0xb45a3c0e
                && interfaceId != 0x49064906 && interfaceId != 0x7965db0b && interfaceId != 0x01ffc9a7
        );

        assertFalse(registry.supportsInterface(interfaceId), "unexpected interface");
    }

    // ----------------------------------------------------------------------------------------------

    /// @dev The `data:` URI the registry promises, written out from its template.
    function _dataURI(uint256 id, bytes32 documentHash, string memory status) internal pure returns (string memory) {
        string memory json = string.concat(
            '{"name":"Orden de compra ',
            id.toHexString(32),
            '","description":"Orden de compra registrada; el registro completo esta en la transaccion que la registro.",',
            '"attributes":[{"trait_type":"sha256","value":"',
            uint256(documentHash).toHexString(32),
            '"},{"trait_type":"status","value":"',
            status,
            '"}]}'
        );
        return string.concat("data:application/json;base64,", Base64.encode(bytes(json)));
    }
}
