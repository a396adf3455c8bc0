// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {PurchaseOrderRegistry} from "../../src/PurchaseOrderRegistry.sol";
import {IPurchaseOrderRegistry} from "../../src/interfaces/IPurchaseOrderRegistry.sol";
import {OrderBytes} from "../utils/OrderBytes.sol";
import {Test} from "../utils/Test.sol";

/// @title Drives the registry for the invariant tests and keeps a model of what it should hold.
/// @notice Every action picks a caller among five actors and never reverts itself: it predicts whether
/// the registry must accept the call, makes it, and counts any disagreement in {unexpectedOutcomes}.
/// Keys come from a small space (32 order numbers) so that duplicates are frequent.
contract RegistryHandler is Test {
    uint256 private constant KEY_SPACE = 32;

    PurchaseOrderRegistry public immutable registry;

    address[] private _actors;
    mapping(address actor => bool) public isRegistrar;
    mapping(address actor => bool) public isAnnuller;
    address public immutable admin;
    /// @dev The actor whose REGISTRAR_ROLE {toggleRegistrar} grants and revokes.
    address public immutable rotating;

    // ----------------------------------------------------------------------------------------------
    // The model

    bool public paused;
    uint256[] private _minted;
    mapping(uint256 tokenId => bytes32) public hashOf;
    mapping(uint256 tokenId => IPurchaseOrderRegistry.Status) public statusOf;
    mapping(uint256 tokenId => uint64) public changedAtOf;
    mapping(uint256 tokenId => uint256) public replacedByOf;
    uint256[] private _annulled;
    uint256[] private _superseded;

    uint256 public successfulRegistrations;
    uint256 public distinctKeys;
    /// @notice Successful register/registerBatch/supersede calls by an actor without REGISTRAR_ROLE.
    uint256 public unauthorizedMints;
    /// @notice Calls whose success or failure contradicted the model.
    uint256 public unexpectedOutcomes;
    /// @notice Transfer attempts that did not revert.
    uint256 public successfulTransfers;

    constructor(PurchaseOrderRegistry registry_, address admin_, address registrar, address annuller, address rotating_)
    {
        registry = registry_;
        admin = admin_;
        rotating = rotating_;
        _actors.push(admin_);
        _actors.push(registrar);
        _actors.push(annuller);
        _actors.push(rotating_);
        _actors.push(makeAddr("outsider"));
        isRegistrar[admin_] = true;
        isRegistrar[registrar] = true;
        isAnnuller[admin_] = true;
        isAnnuller[annuller] = true;
    }

    // ----------------------------------------------------------------------------------------------
    // Actions (the fuzzer's targets)

    function register(uint256 actorSeed, uint256 keySeed, uint256 hashSeed) external {
        address actor = _actor(actorSeed);
        bytes memory key = _key(keySeed);
        bytes32 documentHash = _hash(hashSeed);
        bool expected = isRegistrar[actor] && !paused && documentHash != bytes32(0) && !_taken(key);

        vm.prank(actor);
        try registry.register(OrderBytes.order(documentHash, key, hex"01")) returns (uint256 tokenId) {
            _recordMint(actor, expected, tokenId, documentHash);
        } catch {
            if (expected) unexpectedOutcomes++;
        }
    }

    function registerBatch(uint256 actorSeed, uint256 keySeed, uint256 stride, uint256 size, uint256 hashSeed)
        external
    {
        address actor = _actor(actorSeed);
        size = bound(size, 1, 5);
        stride = bound(stride, 0, 7);
        bytes[] memory orders = new bytes[](size);
        bytes32[] memory hashes = new bytes32[](size);
        bytes32[] memory keyHashes = new bytes32[](size);
        bool expected = isRegistrar[actor] && !paused;
        for (uint256 i; i < size; ++i) {
            bytes memory key = _key(keySeed % KEY_SPACE + i * stride);
            hashes[i] = _hash(uint256(keccak256(abi.encode(hashSeed, i))));
            keyHashes[i] = keccak256(key);
            orders[i] = OrderBytes.order(hashes[i], key, hex"01");
            if (hashes[i] == bytes32(0) || _taken(key)) expected = false;
            for (uint256 j; j < i; ++j) {
                if (keyHashes[j] == keyHashes[i]) expected = false;
            }
        }

        vm.prank(actor);
        try registry.registerBatch(OrderBytes.batch(orders)) returns (uint256 count) {
            if (count != size) unexpectedOutcomes++;
            for (uint256 i; i < size; ++i) {
                _recordMint(actor, expected, uint256(keyHashes[i]), hashes[i]);
            }
        } catch {
            if (expected) unexpectedOutcomes++;
        }
    }

    function annul(uint256 actorSeed, uint256 tokenSeed, uint256 reasonLength) external {
        address actor = _actor(actorSeed);
        uint256 tokenId = _pickToken(tokenSeed);
        reasonLength = bound(reasonLength, 0, 1001);
        bool expected = isAnnuller[actor] && !paused && reasonLength > 0 && reasonLength <= 1000
            && statusOf[tokenId] == IPurchaseOrderRegistry.Status.Valid;

        vm.prank(actor);
        try registry.annul(tokenId, string(new bytes(reasonLength))) {
            if (!expected) unexpectedOutcomes++;
            statusOf[tokenId] = IPurchaseOrderRegistry.Status.Annulled;
            changedAtOf[tokenId] = uint64(block.timestamp);
            _annulled.push(tokenId);
        } catch {
            if (expected) unexpectedOutcomes++;
        }
    }

    function supersede(uint256 actorSeed, uint256 tokenSeed, uint256 keySeed, uint256 hashSeed) external {
        address actor = _actor(actorSeed);
        uint256 original = _pickToken(tokenSeed);
        bytes memory key = _key(keySeed);
        bytes32 documentHash = _hash(hashSeed);
        bool expected = isRegistrar[actor] && !paused && statusOf[original] == IPurchaseOrderRegistry.Status.Valid
            && documentHash != bytes32(0) && !_taken(key);

        vm.prank(actor);
        try registry.supersede(original, OrderBytes.order(documentHash, key, hex"01")) returns (uint256 tokenId) {
            _recordMint(actor, expected, tokenId, documentHash);
            statusOf[original] = IPurchaseOrderRegistry.Status.Superseded;
            changedAtOf[original] = uint64(block.timestamp);
            replacedByOf[original] = tokenId;
            _superseded.push(original);
        } catch {
            if (expected) unexpectedOutcomes++;
        }
    }

    function tryTransfer(uint256 actorSeed, uint256 tokenSeed) external {
        address actor = _actor(actorSeed);
        uint256 tokenId = _pickToken(tokenSeed);
        vm.prank(actor);
        try registry.transferFrom(address(registry), actor, tokenId) {
            successfulTransfers++;
        } catch {}
    }

    /// @dev Unpauses at once, pauses one time in four: the registry spends most of the campaign running.
    function togglePause(uint256 seed) external {
        if (!paused && seed % 4 != 0) return;
        vm.prank(admin);
        if (paused) registry.unpause();
        else registry.pause();
        paused = !paused;
    }

    function toggleRegistrar() external {
        bytes32 role = registry.REGISTRAR_ROLE();
        vm.prank(admin);
        if (isRegistrar[rotating]) registry.revokeRole(role, rotating);
        else registry.grantRole(role, rotating);
        isRegistrar[rotating] = !isRegistrar[rotating];
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 30 days));
    }

    // ----------------------------------------------------------------------------------------------
    // Reading the model

    function minted() external view returns (uint256[] memory) {
        return _minted;
    }

    function annulled() external view returns (uint256[] memory) {
        return _annulled;
    }

    function superseded() external view returns (uint256[] memory) {
        return _superseded;
    }

    /// @notice The action selectors the fuzzer should call (the views above are left out).
    function actions() external pure returns (bytes4[] memory selectors) {
        selectors = new bytes4[](9);
        selectors[0] = this.register.selector;
        selectors[1] = this.register.selector; // twice: registrations drive everything else
        selectors[2] = this.registerBatch.selector;
        selectors[3] = this.annul.selector;
        selectors[4] = this.supersede.selector;
        selectors[5] = this.tryTransfer.selector;
        selectors[6] = this.togglePause.selector;
        selectors[7] = this.toggleRegistrar.selector;
        selectors[8] = this.warp.selector;
    }

    // ----------------------------------------------------------------------------------------------

    function _recordMint(address actor, bool expected, uint256 tokenId, bytes32 documentHash) private {
        if (!expected) unexpectedOutcomes++;
        if (!isRegistrar[actor]) unauthorizedMints++;
        if (hashOf[tokenId] == bytes32(0)) distinctKeys++;
        successfulRegistrations++;
        hashOf[tokenId] = documentHash;
        statusOf[tokenId] = IPurchaseOrderRegistry.Status.Valid;
        _minted.push(tokenId);
    }

    function _taken(bytes memory key) private view returns (bool) {
        return hashOf[uint256(keccak256(key))] != bytes32(0);
    }

    function _actor(uint256 seed) private view returns (address) {
        return _actors[seed % _actors.length];
    }

    /// @dev "20131370998/OC-2026-<0..31>"
    function _key(uint256 seed) private pure returns (bytes memory) {
        return bytes(string.concat("20131370998/OC-2026-", vm.toString(seed % KEY_SPACE)));
    }

    /// @dev Zero one time in sixteen, to exercise the refusal of an empty hash.
    function _hash(uint256 seed) private pure returns (bytes32) {
        return seed % 16 == 0 ? bytes32(0) : keccak256(abi.encode(seed));
    }

    /// @dev A minted token most of the time, otherwise the id of a key that may not be registered.
    function _pickToken(uint256 seed) private view returns (uint256) {
        if (_minted.length == 0 || seed % 8 == 0) return uint256(keccak256(_key(seed >> 3)));
        return _minted[(seed >> 3) % _minted.length];
    }
}
