// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {PurchaseOrderRegistry} from "../src/PurchaseOrderRegistry.sol";
import {IPurchaseOrderRegistry} from "../src/interfaces/IPurchaseOrderRegistry.sol";
import {MockForwarder} from "./mocks/MockForwarder.sol";
import {MockRelayHub} from "./mocks/MockRelayHub.sol";
import {RegistryFixture} from "./utils/RegistryFixture.sol";

/// @title LACNet's trusted forwarder: a call relayed by the forwarder's hub acts for the hub's signer.
/// The fixture's registry (forwarder 0) is the contrast case.
contract TrustedForwarderTest is RegistryFixture {
    MockRelayHub internal hub;
    MockForwarder internal forwarder;
    PurchaseOrderRegistry internal lacnetRegistry;
    address internal signer;

    function setUp() public override {
        super.setUp();
        signer = makeAddr("signer");
        hub = new MockRelayHub();
        forwarder = new MockForwarder(address(hub));
        vm.label(address(hub), "hub");
        vm.label(address(forwarder), "forwarder");

        lacnetRegistry = new PurchaseOrderRegistry(admin, address(forwarder), address(0), DOCUMENT_BASE_URI);
        vm.prank(admin);
        lacnetRegistry.grantRole(registrarRole, signer);
    }

    function _relay(address as_, bytes memory data) internal returns (bytes memory) {
        return hub.relay(address(lacnetRegistry), data, as_);
    }

    function _relayRegister(address as_, string memory key) internal returns (uint256) {
        return abi.decode(_relay(as_, abi.encodeCall(PurchaseOrderRegistry.register, (_order(key)))), (uint256));
    }

    /// @dev For calls expected to revert. A typed call would fail to decode what vm.expectRevert hands back, so
    /// this is a low-level call; forge reports the expectation through it: `ok` is true when the expected
    /// revert happened and false ("call did not revert as expected", or another revert) otherwise.
    function _relayRaw(address as_, bytes memory data) internal {
        (bool ok,) = address(hub).call(abi.encodeCall(MockRelayHub.relay, (address(lacnetRegistry), data, as_)));
        assertTrue(ok, "the expected revert did not happen");
    }

    function _relayRegisterRaw(address as_, string memory key) internal {
        _relayRaw(as_, abi.encodeCall(PurchaseOrderRegistry.register, (_order(key))));
    }

    function test_TrustedForwarder_IsStored() public view {
        assertEq(lacnetRegistry.relayForwarder(), address(forwarder), "relayForwarder");
        assertEq(lacnetRegistry.trustedForwarder(), address(0), "no ERC-2771 hub");
    }

    // ----------------------------------------------------------------------------------------------
    // Relayed calls act for the signer

    function test_Relay_RegisterBySignerSucceeds() public {
        uint256 tokenId = _relayRegister(signer, KEY);

        assertEq(tokenId, _tokenId(KEY), "tokenId");
        assertEq(lacnetRegistry.ownerOf(tokenId), address(lacnetRegistry), "ownerOf");
    }

    function test_Relay_EventNamesSignerNotHub() public {
        vm.expectEmit(true, true, true, true, address(lacnetRegistry));
        emit IPurchaseOrderRegistry.OrderRegistered(_documentHashOf(KEY), signer);

        _relayRegister(signer, KEY);
    }

    function test_RevertWhen_RelayedSignerIsNotRegistrar() public {
        vm.expectRevert(_unauthorized(outsider, registrarRole));
        _relayRegisterRaw(outsider, KEY);
    }

    function test_RevertWhen_HubRelaysWithoutSigner() public {
        // The hub's own registrar-less identity is never used: a zero signer is just another non-registrar.
        vm.expectRevert(_unauthorized(address(0), registrarRole));
        _relayRegisterRaw(address(0), KEY);
    }

    function test_Relay_RegisterBatchBySigner() public {
        bytes memory data = abi.encodeCall(PurchaseOrderRegistry.registerBatch, (_batchOf(1, 3)));

        uint256 count = abi.decode(_relay(signer, data), (uint256));

        assertEq(count, 3, "count");
        assertEq(lacnetRegistry.totalSupply(), 3, "totalSupply");
    }

    function test_Relay_AnnulNamesSigner() public {
        uint256 tokenId = _relayRegister(signer, KEY);
        vm.prank(admin);
        lacnetRegistry.grantRole(annullerRole, signer);

        vm.expectEmit(true, true, true, true, address(lacnetRegistry));
        emit IPurchaseOrderRegistry.OrderAnnulled(tokenId, signer, "anulada");
        _relay(signer, abi.encodeCall(PurchaseOrderRegistry.annul, (tokenId, "anulada")));
    }

    function test_RevertWhen_RelayedSignerIsNotAnnuller() public {
        uint256 tokenId = _relayRegister(signer, KEY);

        vm.expectRevert(_unauthorized(signer, annullerRole));
        _relayRaw(signer, abi.encodeCall(PurchaseOrderRegistry.annul, (tokenId, "anulada")));
    }

    function test_Relay_AdminPausesThroughHub() public {
        _relay(admin, abi.encodeCall(PurchaseOrderRegistry.pause, ()));

        assertTrue(lacnetRegistry.paused(), "paused");
    }

    function test_RevertWhen_RelayedSignerIsNotAdmin() public {
        vm.expectRevert(_unauthorized(signer, adminRole));
        _relayRaw(signer, abi.encodeCall(PurchaseOrderRegistry.pause, ()));
    }

    function test_Relay_GrantRoleThroughHub() public {
        _relay(admin, abi.encodeWithSignature("grantRole(bytes32,address)", registrarRole, outsider));

        assertTrue(lacnetRegistry.hasRole(registrarRole, outsider), "hasRole");
    }

    function test_RevertWhen_RelayedWhilePaused() public {
        vm.prank(admin);
        lacnetRegistry.pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        _relayRegisterRaw(signer, KEY);
    }

    // ----------------------------------------------------------------------------------------------
    // Direct calls keep msg.sender

    function test_DirectCall_BySignerUsesMsgSender() public {
        vm.expectEmit(true, true, true, true, address(lacnetRegistry));
        emit IPurchaseOrderRegistry.OrderRegistered(_documentHashOf(KEY), signer);

        vm.prank(signer);
        lacnetRegistry.register(_order(KEY));
    }

    function test_RevertWhen_DirectCallByNonRegistrar() public {
        vm.expectRevert(_unauthorized(outsider, registrarRole));
        vm.prank(outsider);
        lacnetRegistry.register(_order(KEY));
    }

    function test_RevertWhen_ForwarderCallsDirectly() public {
        // Only the forwarder's hub speaks for others; the forwarder itself is an ordinary caller.
        vm.expectRevert(_unauthorized(address(forwarder), registrarRole));
        vm.prank(address(forwarder));
        lacnetRegistry.register(_order(KEY));
    }

    function test_RevertWhen_HubCallsOutsideARelay() public {
        // Outside relay() the hub reports no signer, and the registry asks the hub, not msg.sender.
        vm.expectRevert(_unauthorized(address(0), registrarRole));
        vm.prank(address(hub));
        lacnetRegistry.register(_order(KEY));
    }

    // ----------------------------------------------------------------------------------------------
    // Registries that do not trust this hub

    function test_NoForwarder_HubIsAnOrdinaryCaller() public {
        // The fixture's registry has forwarder 0: the hub relaying for admin is seen as the hub.
        vm.expectRevert(_unauthorized(address(hub), registrarRole));
        hub.relay(address(registry), abi.encodeCall(PurchaseOrderRegistry.register, (_order(KEY))), admin);
    }

    function test_NoForwarder_UsesMsgSender() public {
        vm.expectEmit(true, true, true, true, address(registry));
        emit IPurchaseOrderRegistry.OrderRegistered(_documentHashOf(KEY), registrar);

        vm.prank(registrar);
        registry.register(_order(KEY));
    }

    function test_OtherHub_IsAnOrdinaryCaller() public {
        MockRelayHub otherHub = new MockRelayHub();

        vm.expectRevert(_unauthorized(address(otherHub), registrarRole));
        otherHub.relay(address(lacnetRegistry), abi.encodeCall(PurchaseOrderRegistry.register, (_order(KEY))), admin);
    }

    function test_ForwarderWithoutCode_UsesMsgSender() public {
        PurchaseOrderRegistry bare = new PurchaseOrderRegistry(admin, makeAddr("not a contract"), address(0), "");

        vm.expectEmit(true, true, true, true, address(bare));
        emit IPurchaseOrderRegistry.OrderRegistered(_documentHashOf(KEY), admin);

        vm.prank(admin);
        bare.register(_order(KEY));
    }

    function test_ForwarderWithoutGetRelayHub_UsesMsgSender() public {
        // A contract without getRelayHub (here a hub) makes the staticcall fail: msg.sender is used.
        PurchaseOrderRegistry odd = new PurchaseOrderRegistry(admin, address(new MockRelayHub()), address(0), "");

        vm.expectEmit(true, true, true, true, address(odd));
        emit IPurchaseOrderRegistry.OrderRegistered(_documentHashOf(KEY), admin);

        vm.prank(admin);
        odd.register(_order(KEY));
    }

    function testFuzz_Relay_ActsForAnySigner(address anyone) public {
        vm.assume(anyone != admin && anyone != signer);

        vm.expectRevert(_unauthorized(anyone, registrarRole));
        _relayRegisterRaw(anyone, KEY);

        vm.prank(admin);
        lacnetRegistry.grantRole(registrarRole, anyone);
        vm.expectEmit(true, true, true, true, address(lacnetRegistry));
        emit IPurchaseOrderRegistry.OrderRegistered(_documentHashOf(KEY), anyone);
        _relayRegister(anyone, KEY);
    }
}
