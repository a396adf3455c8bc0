// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {PurchaseOrderRegistry} from "../src/PurchaseOrderRegistry.sol";
import {IPurchaseOrderRegistry} from "../src/interfaces/IPurchaseOrderRegistry.sol";
import {MockRelayHub} from "./mocks/MockRelayHub.sol";
import {OrderBytes} from "./utils/OrderBytes.sol";
import {RegistryFixture} from "./utils/RegistryFixture.sol";

/// @dev A forwarder whose getRelayHub() fails, with the hub's address as its revert data: a failed call
/// must never be read as an answer.
contract RevertingForwarder {
    address private immutable _hub;

    constructor(address hub) {
        _hub = hub;
    }

    fallback() external {
        bytes memory data = abi.encode(_hub);
        assembly ("memory-safe") {
            revert(add(data, 0x20), mload(data))
        }
    }
}

/// @title Every check of the registry, one at a time, with the exact error and arguments it must give.
/// benchmarks/contract_checks.py removes or weakens each check in a scratch copy and runs the suite:
/// these tests are the ones written so that every such change fails at least one test.
contract RegistryChecksTest is RegistryFixture {
    uint256 private _next = 1000;

    function _fresh() private returns (string memory key) {
        key = _key(_next++);
    }

    /// @dev `data` sent by `who`: passes when `who` holds `role`, else reverts with exactly
    /// AccessControlUnauthorizedAccount(who, role).
    function _expectRole(address who, bool holds, bytes32 role, bytes memory data) private {
        vm.prank(who);
        (bool ok, bytes memory returned) = address(registry).call(data);
        if (holds) {
            assertTrue(ok, "the role holder is let through");
        } else {
            assertFalse(ok, "anyone else is refused");
            assertEq(returned, _unauthorized(who, role), "with the role it lacks named");
        }
    }

    function _people() private view returns (address[4] memory people) {
        people = [admin, registrar, annuller, outsider];
    }

    // ----------------------------------------------------------------------------------------------
    // Role checks: each restricted function, for each of the fixture's four people

    function test_RoleMatrix_RegistrarFunctions() public {
        address[4] memory people = _people();
        for (uint256 i; i < people.length; ++i) {
            bool holds = registry.hasRole(registrarRole, people[i]);
            _expectRole(people[i], holds, registrarRole, abi.encodeCall(registry.register, (_order(_fresh()))));
            _expectRole(people[i], holds, registrarRole, abi.encodeCall(registry.registerBatch, (_batchOf(_next, 2))));
            _next += 2;
            uint256 old = _register(_fresh());
            _expectRole(people[i], holds, registrarRole, abi.encodeCall(registry.supersede, (old, _order(_fresh()))));
        }
    }

    function test_RoleMatrix_AnnullerFunction() public {
        address[4] memory people = _people();
        for (uint256 i; i < people.length; ++i) {
            uint256 tokenId = _register(_fresh());
            bool holds = registry.hasRole(annullerRole, people[i]);
            _expectRole(people[i], holds, annullerRole, abi.encodeCall(registry.annul, (tokenId, "motivo")));
            assertEq(_status(tokenId), holds ? 2 : 1, "annulled only by an annuller");
        }
    }

    function test_RoleMatrix_AdminFunctions() public {
        address[4] memory people = _people();
        for (uint256 i; i < people.length; ++i) {
            bool holds = registry.hasRole(adminRole, people[i]);
            _expectRole(people[i], holds, adminRole, abi.encodeCall(registry.setDocumentBaseURI, ("https://x/d/")));
            _expectRole(people[i], holds, adminRole, abi.encodeCall(registry.setTokenBaseURI, ("")));
            _expectRole(people[i], holds, adminRole, abi.encodeCall(registry.pause, ()));
            if (!holds) {
                vm.prank(admin);
                registry.pause();
            }
            _expectRole(people[i], holds, adminRole, abi.encodeCall(registry.unpause, ()));
            if (!holds) {
                vm.prank(admin);
                registry.unpause();
            }
            assertFalse(registry.paused(), "unpaused again");
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Pause: every state-changing call of registrars and annullers, and nothing else

    function test_Paused_StopsRegistrationSupersessionAndAnnulment() public {
        uint256 tokenId = _register(_fresh());
        vm.prank(admin);
        registry.pause();
        bytes[4] memory calls = [
            abi.encodeCall(registry.register, (_order(_fresh()))),
            abi.encodeCall(registry.registerBatch, (_batchOf(_next, 1))),
            abi.encodeCall(registry.supersede, (tokenId, _order(_fresh()))),
            abi.encodeCall(registry.annul, (tokenId, "motivo"))
        ];
        for (uint256 i; i < calls.length; ++i) {
            vm.prank(admin); // holds every role: only the pause can refuse
            (bool ok, bytes memory returned) = address(registry).call(calls[i]);
            assertFalse(ok, "refused while paused");
            assertEq(returned, abi.encodeWithSelector(Pausable.EnforcedPause.selector), "EnforcedPause");
        }
        vm.prank(admin);
        registry.setDocumentBaseURI("https://still.example/d/"); // administration goes on
        assertEq(registry.documentBaseURI(), "https://still.example/d/", "admin works while paused");
    }

    // ----------------------------------------------------------------------------------------------
    // Custom errors, with their arguments

    function test_Malformed_NamesTheEntryInABatch() public {
        bytes[] memory orders = new bytes[](3);
        orders[0] = _order(_fresh());
        orders[1] = _order(_fresh());
        orders[2] = hex"00"; // too short
        _expectBatchError(OrderBytes.batch(orders), 2);
        orders[2] = abi.encodePacked(bytes32(uint256(1)), uint8(200), "a/b"); // key runs past the entry
        _expectBatchError(OrderBytes.batch(orders), 2);
        orders[2] = abi.encodePacked(bytes32(uint256(1)), uint8(2), "a/b"); // key of 2 bytes
        _expectBatchError(OrderBytes.batch(orders), 2);
        // a length header that promises more bytes than follow, and a lone header byte
        _expectBatchError(abi.encodePacked(OrderBytes.batch(_two()), uint16(50), bytes3(0x000000)), 2);
        _expectBatchError(abi.encodePacked(OrderBytes.batch(_two()), uint8(0)), 2);
        // exactly two bytes left: an empty entry
        _expectBatchError(abi.encodePacked(OrderBytes.batch(_two()), uint16(0)), 2);
    }

    function _two() private returns (bytes[] memory orders) {
        orders = new bytes[](2);
        orders[0] = _order(_fresh());
        orders[1] = _order(_fresh());
    }

    function _expectBatchError(bytes memory batch, uint256 index) private {
        vm.prank(registrar);
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, index));
        registry.registerBatch(batch);
    }

    function test_Malformed_SingleOrderAtTheLengthEdges() public {
        // 36 bytes (hash, length 3, "a/b") is the shortest order; 35 is refused
        bytes memory shortest = abi.encodePacked(keccak256("pdf"), uint8(3), "a/b");
        vm.prank(registrar);
        registry.register(shortest);
        bytes memory tooShort = abi.encodePacked(keccak256("pdf2"), uint8(2), "ab");
        vm.prank(registrar);
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        registry.register(tooShort);
        // a key that ends exactly at the end of the order is accepted, one byte more is refused
        bytes memory exact = abi.encodePacked(keccak256("pdf3"), uint8(4), "a/bc");
        vm.prank(registrar);
        registry.register(exact);
        bytes memory over = abi.encodePacked(keccak256("pdf4"), uint8(5), "a/bd");
        vm.prank(registrar);
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderMalformed.selector, 0));
        registry.register(over);
    }

    function test_EmptyDocumentHash_NamesTheToken() public {
        string memory key = _fresh();
        vm.prank(registrar);
        vm.expectRevert(
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderEmptyDocumentHash.selector, _tokenId(key))
        );
        registry.register(_order(bytes32(0), key));
    }

    function test_AlreadyRegistered_NamesTokenAndKey() public {
        string memory key = _fresh();
        _register(key);
        vm.prank(registrar);
        vm.expectRevert(
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderAlreadyRegistered.selector, _tokenId(key), key)
        );
        registry.register(_order(keccak256("another PDF"), key));
    }

    function test_NotRegistered_OnAnnulAndSupersede() public {
        uint256 unknown = _tokenId("20131370998/NUNCA");
        bytes memory expected =
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderNotRegistered.selector, unknown);
        vm.prank(admin);
        vm.expectRevert(expected);
        registry.annul(unknown, "motivo");
        vm.prank(admin);
        vm.expectRevert(expected);
        registry.supersede(unknown, _order(_fresh()));
    }

    function test_NotValid_NamesTheStatus_OnAnnulAndSupersede() public {
        uint256 annulled = _register(_fresh());
        vm.prank(annuller);
        registry.annul(annulled, "motivo");
        uint256 superseded = _register(_fresh());
        vm.prank(registrar);
        registry.supersede(superseded, _order(_fresh()));
        uint256[2] memory tokens = [annulled, superseded];
        IPurchaseOrderRegistry.Status[2] memory statuses =
            [IPurchaseOrderRegistry.Status.Annulled, IPurchaseOrderRegistry.Status.Superseded];
        for (uint256 i; i < 2; ++i) {
            bytes memory expected = abi.encodeWithSelector(
                IPurchaseOrderRegistry.PurchaseOrderNotValid.selector, tokens[i], statuses[i]
            );
            vm.prank(admin);
            vm.expectRevert(expected);
            registry.annul(tokens[i], "otra vez");
            vm.prank(admin);
            vm.expectRevert(expected);
            registry.supersede(tokens[i], _order(_fresh()));
        }
    }

    function test_InvalidReason_AtBothEdges() public {
        uint256 tokenId = _register(_fresh());
        uint256[2] memory refused = [uint256(0), 1001];
        for (uint256 i; i < 2; ++i) {
            vm.prank(annuller);
            vm.expectRevert(
                abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderInvalidReason.selector, refused[i])
            );
            registry.annul(tokenId, string(new bytes(refused[i])));
        }
        vm.prank(annuller);
        registry.annul(tokenId, string(new bytes(1000))); // 1000 bytes is allowed
        assertEq(_status(tokenId), 2, "annulled with a 1000-byte reason");
    }

    function test_TokenLocked_OnEveryWayToMoveOrApprove() public {
        uint256 tokenId = _register(_fresh());
        bytes memory locked =
            abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderTokenLocked.selector, tokenId);
        address self = address(registry);
        vm.prank(self);
        vm.expectRevert(locked);
        registry.transferFrom(self, outsider, tokenId);
        vm.prank(self);
        vm.expectRevert(locked);
        registry.safeTransferFrom(self, outsider, tokenId);
        vm.prank(self);
        vm.expectRevert(locked);
        registry.approve(outsider, tokenId);
        vm.prank(self);
        vm.expectRevert(abi.encodeWithSelector(IPurchaseOrderRegistry.PurchaseOrderTokenLocked.selector, 0));
        registry.setApprovalForAll(outsider, true);
        assertEq(registry.ownerOf(tokenId), self, "still held by the registry");
    }

    function test_ERC721Errors_ForUnknownTokensAndTheZeroOwner() public {
        uint256 unknown = _tokenId("20131370998/NUNCA");
        bytes memory nonexistent = abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, unknown);
        vm.expectRevert(nonexistent);
        registry.tokenURI(unknown);
        vm.expectRevert(nonexistent);
        registry.locked(unknown);
        vm.expectRevert(nonexistent);
        registry.ownerOf(unknown);
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721InvalidOwner.selector, address(0)));
        registry.balanceOf(address(0));
        _register(_fresh());
        assertEq(registry.balanceOf(address(registry)), registry.totalSupply(), "the registry holds all");
        assertEq(registry.balanceOf(outsider), 0, "nobody else holds any");
    }

    function test_OrderOf_UnknownTokenIsAllZero() public {
        IPurchaseOrderRegistry.OrderState memory state = registry.orderOf(_tokenId("20131370998/NUNCA"));
        assertEq(state.documentHash, bytes32(0), "no hash");
        assertEq(uint256(state.status), 0, "status None");
        string memory key = _fresh();
        uint256 tokenId = _register(key);
        assertEq(_state(tokenId).documentHash, _documentHashOf(key), "the registered hash");
        assertEq(uint256(_state(tokenId).status), 1, "valid");
    }

    function test_TokenURI_IsOnChainJsonUntilABaseIsSet() public {
        uint256 tokenId = _register(_fresh());
        string memory uri = registry.tokenURI(tokenId);
        assertEq(_prefix(uri, 29), "data:application/json;base64,", "on-chain JSON by default");
        vm.prank(admin);
        registry.setTokenBaseURI("https://api.example.pe/t/");
        assertEq(registry.tokenURI(tokenId), string.concat("https://api.example.pe/t/", vm.toString(tokenId)), "base");
    }

    function _prefix(string memory text, uint256 length) private pure returns (string memory) {
        bytes memory out = new bytes(length);
        for (uint256 i; i < length; ++i) {
            out[i] = bytes(text)[i];
        }
        return string(out);
    }

    function test_RelayHub_AFailedForwarderAnswerIsNoAnswer() public {
        MockRelayHub hub = new MockRelayHub();
        RevertingForwarder forwarder = new RevertingForwarder(address(hub));
        PurchaseOrderRegistry lacnet =
            new PurchaseOrderRegistry(admin, address(forwarder), address(0), DOCUMENT_BASE_URI);
        address signer = makeAddr("signer");
        vm.prank(admin);
        lacnet.grantRole(registrarRole, signer);
        // the hub is then an ordinary caller without the role, whoever it says signed
        vm.expectRevert(_unauthorized(address(hub), registrarRole));
        hub.relay(address(lacnet), abi.encodeCall(lacnet.register, (_order(_fresh()))), signer);
    }
}
