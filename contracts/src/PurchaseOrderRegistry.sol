// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {Base64} from "@openzeppelin/contracts/utils/Base64.sol";
import {Context} from "@openzeppelin/contracts/utils/Context.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {IERC5192} from "./interfaces/IERC5192.sol";
import {IPurchaseOrderRegistry} from "./interfaces/IPurchaseOrderRegistry.sol";
import {IRelayHub, ITrustedForwarder} from "./interfaces/IRelayHub.sol";

/// @title PurchaseOrderRegistry
/// @notice One locked ERC-721 token per public purchase order.
///
/// Who owns the tokens, and why: every token is minted to, and held forever by, this registry. A purchase
/// order is a public record, not an asset: nobody (registrar, entity, supplier) may sell, transfer or burn
/// it, so tokens are locked from birth (ERC-5192 `locked` is always true; the `Locked` event is not emitted
/// because no token ever changes its lock state). Holding them here also means no owner slot per token:
/// a registration writes exactly one fresh storage slot (the document hash).
///
/// Who signs: on LACNet a transaction reaches the registry through one of two hubs, each fixed at deploy:
/// the gas model's RelayHub (named by `relayForwarder`, asked for the signer) and the open-standards
/// PermissionedMetaTxHub (ERC-2771: `trustedForwarder`, which appends the signer's 20 bytes to the calldata).
///
/// Gas: one fresh slot per order, the record itself travels only as calldata (readable with
/// `eth_getTransactionByHash`), and the registered counter shares a slot with Pausable's flag.
contract PurchaseOrderRegistry is IPurchaseOrderRegistry, IERC5192, ERC721, AccessControl, Pausable, ERC2771Context {
    using Strings for uint256;

    /// @notice May register and supersede orders.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice May annul orders.
    bytes32 public constant ANNULLER_ROLE = keccak256("ANNULLER_ROLE");

    uint256 private constant _MAX_REASON_LENGTH = 1000;
    // documentHash (32) + key length (1) + the shortest key "a/b" (3)
    uint256 private constant _MIN_ORDER_LENGTH = 36;

    address private immutable _relayForwarder;

    // Declared first so they pack into the slot of Pausable's `_paused`: one slot read per transaction.
    uint64 private _registered;
    // Set in the constructor so that slot is never zero: the first registration then pays 2,900 gas
    // for the counter instead of 20,000.
    // slither-disable-next-line immutable-states
    bool private _deployed;

    mapping(uint256 tokenId => bytes32 documentHash) private _documentHash;
    mapping(uint256 tokenId => StatusRecord record) private _status;
    mapping(uint256 tokenId => uint256 replacement) private _replacedBy;
    mapping(uint256 tokenId => uint256 original) private _replaces;

    string private _documentBaseURI;
    string private _tokenBaseURI;

    /// @dev Written only when an order stops being valid: one slot for both fields.
    struct StatusRecord {
        Status status;
        uint64 changedAt;
    }

    /// @param admin Receives DEFAULT_ADMIN_ROLE, REGISTRAR_ROLE and ANNULLER_ROLE.
    /// @param relayForwarder_ LACNet's gas-model trusted forwarder (it names the RelayHub), or zero.
    /// @param metaTxHub_ LACNet's ERC-2771 PermissionedMetaTxHub, or zero.
    /// @param documentBaseURI_ Base URL of the built-in document store (may be empty).
    // slither-disable-next-line missing-zero-check
    constructor(address admin, address relayForwarder_, address metaTxHub_, string memory documentBaseURI_)
        ERC721("Registro de Ordenes de Compra", "ORDEN")
        ERC2771Context(metaTxHub_)
    {
        _relayForwarder = relayForwarder_;
        _deployed = true;
        _documentBaseURI = documentBaseURI_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
        _grantRole(ANNULLER_ROLE, admin);
    }

    // ----------------------------------------------------------------------------------------------
    // Registration

    /// @inheritdoc IPurchaseOrderRegistry
    function register(bytes calldata order) external returns (uint256 tokenId) {
        address registrar = _authorizedRegistrar();
        tokenId = _register(order, registrar, 0);
        unchecked {
            _registered += 1;
        }
    }

    /// @inheritdoc IPurchaseOrderRegistry
    function registerBatch(bytes calldata orders) external returns (uint256 count) {
        address registrar = _authorizedRegistrar();
        uint256 offset = 0;
        uint256 end = orders.length;
        while (offset < end) {
            if (offset + 2 > end) revert PurchaseOrderMalformed(count);
            uint256 length = uint16(bytes2(orders[offset:offset + 2]));
            offset += 2;
            if (offset + length > end) revert PurchaseOrderMalformed(count);
            _register(orders[offset:offset + length], registrar, count);
            unchecked {
                offset += length;
                ++count;
            }
        }
        // casting to 'uint64' is safe because count is bounded by the calldata length
        // forge-lint: disable-next-line(unsafe-typecast)
        _registered += uint64(count);
    }

    /// @inheritdoc IPurchaseOrderRegistry
    function supersede(uint256 supersededTokenId, bytes calldata order) external returns (uint256 tokenId) {
        address registrar = _authorizedRegistrar();
        _requireValid(supersededTokenId);
        tokenId = _register(order, registrar, 0);
        unchecked {
            _registered += 1;
        }
        _status[supersededTokenId] = StatusRecord(Status.Superseded, uint64(block.timestamp));
        _replacedBy[supersededTokenId] = tokenId;
        _replaces[tokenId] = supersededTokenId;
        emit OrderSuperseded(supersededTokenId, tokenId, registrar);
        emit MetadataUpdate(supersededTokenId);
    }

    /// @inheritdoc IPurchaseOrderRegistry
    function annul(uint256 tokenId, string calldata reason) external whenNotPaused {
        address annuller = _msgSender();
        _checkRole(ANNULLER_ROLE, annuller);
        uint256 length = bytes(reason).length;
        if (length == 0 || length > _MAX_REASON_LENGTH) revert PurchaseOrderInvalidReason(length);
        _requireValid(tokenId);
        _status[tokenId] = StatusRecord(Status.Annulled, uint64(block.timestamp));
        emit OrderAnnulled(tokenId, annuller, reason);
        emit MetadataUpdate(tokenId);
    }

    // ----------------------------------------------------------------------------------------------
    // Administration

    /// @notice Stops registration, supersession and annulment. Requirements: caller is admin.
    function pause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _pause();
    }

    /// @notice Resumes after {pause}. Requirements: caller is admin.
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    /// @notice Sets the base URL of the built-in document store. Requirements: caller is admin.
    /// Emits {DocumentBaseURIChanged}.
    function setDocumentBaseURI(string calldata uri) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _documentBaseURI = uri;
        emit DocumentBaseURIChanged(uri);
    }

    /// @notice Sets where `tokenURI` points (the page's metadata API); empty means on-chain JSON.
    /// Requirements: caller is admin. Emits {BatchMetadataUpdate}.
    function setTokenBaseURI(string calldata uri) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _tokenBaseURI = uri;
        emit BatchMetadataUpdate(0, type(uint256).max);
    }

    // ----------------------------------------------------------------------------------------------
    // Reading

    /// @inheritdoc IPurchaseOrderRegistry
    function orderOf(uint256 tokenId) external view returns (OrderState memory state) {
        state.documentHash = _documentHash[tokenId];
        if (state.documentHash == bytes32(0)) return state;
        state.status = _currentStatus(tokenId);
        state.statusChangedAt = _status[tokenId].changedAt;
        state.replacedBy = _replacedBy[tokenId];
        state.replaces = _replaces[tokenId];
    }

    /// @inheritdoc IPurchaseOrderRegistry
    function tokenIdOf(string calldata orderKey) external pure returns (uint256) {
        return uint256(keccak256(bytes(orderKey)));
    }

    /// @inheritdoc IPurchaseOrderRegistry
    function totalSupply() external view returns (uint256) {
        return _registered;
    }

    /// @inheritdoc IPurchaseOrderRegistry
    function documentBaseURI() external view returns (string memory) {
        return _documentBaseURI;
    }

    /// @inheritdoc IPurchaseOrderRegistry
    function relayForwarder() external view returns (address) {
        return _relayForwarder;
    }

    /// @inheritdoc IERC5192
    function locked(uint256 tokenId) external view returns (bool) {
        _requireOwned(tokenId);
        return true;
    }

    /// @notice Tokens never move, so nobody may be approved to move one.
    function approve(address, uint256 tokenId) public pure override {
        revert PurchaseOrderTokenLocked(tokenId);
    }

    /// @notice Tokens never move, so no operator may be approved either.
    function setApprovalForAll(address, bool) public pure override {
        revert PurchaseOrderTokenLocked(0);
    }

    /// @notice The registry holds every token, so only its own balance is non-zero.
    function balanceOf(address owner) public view override returns (uint256) {
        if (owner == address(0)) revert ERC721InvalidOwner(address(0));
        return owner == address(this) ? _registered : 0;
    }

    /// @notice ERC-721 metadata: the page's API when a token base URI is set, otherwise a `data:` URI
    /// with the facts storage holds (document hash and status).
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireOwned(tokenId);
        if (bytes(_tokenBaseURI).length > 0) return string.concat(_tokenBaseURI, tokenId.toString());
        string memory json = string.concat(
            '{"name":"Orden de compra ',
            tokenId.toHexString(32),
            '","description":"Orden de compra registrada; el registro completo esta en la transaccion que la registro.",',
            '"attributes":[{"trait_type":"sha256","value":"',
            uint256(_documentHash[tokenId]).toHexString(32),
            '"},{"trait_type":"status","value":"',
            _statusName(_currentStatus(tokenId)),
            '"}]}'
        );
        return string.concat("data:application/json;base64,", Base64.encode(bytes(json)));
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721, AccessControl)
        returns (bool)
    {
        return interfaceId == type(IERC5192).interfaceId || interfaceId == bytes4(0x49064906)
            || super.supportsInterface(interfaceId);
    }

    // ----------------------------------------------------------------------------------------------
    // Internals

    /// @dev Stores one order. `index` only labels errors inside a batch.
    /// The key hash and the two logs are written in assembly: this path decides the gas per order, and
    /// Solidity's `keccak256(bytes)` and `emit` add memory bookkeeping (about 200 gas) that buys nothing
    /// here. The logs are exactly those declared: ERC-721 `Transfer(0, this, tokenId)` then
    /// {OrderRegistered}(documentHash, registrar).
    function _register(bytes calldata order, address registrar, uint256 index) private returns (uint256 tokenId) {
        if (order.length < _MIN_ORDER_LENGTH) revert PurchaseOrderMalformed(index);
        uint256 keyEnd = 33 + uint256(uint8(order[32]));
        if (keyEnd > order.length || keyEnd < _MIN_ORDER_LENGTH) revert PurchaseOrderMalformed(index);
        bytes32 documentHash;
        assembly ("memory-safe") {
            documentHash := calldataload(order.offset)
            let scratch := mload(0x40)
            calldatacopy(scratch, add(order.offset, 33), sub(keyEnd, 33))
            tokenId := keccak256(scratch, sub(keyEnd, 33))
        }
        if (documentHash == bytes32(0)) revert PurchaseOrderEmptyDocumentHash(tokenId);
        if (_documentHash[tokenId] != bytes32(0)) {
            revert PurchaseOrderAlreadyRegistered(tokenId, string(order[33:keyEnd]));
        }
        _documentHash[tokenId] = documentHash;
        bytes32 transferTopic = Transfer.selector;
        bytes32 registeredTopic = OrderRegistered.selector;
        assembly ("memory-safe") {
            log4(0, 0, transferTopic, 0, address(), tokenId)
            log3(0, 0, registeredTopic, documentHash, registrar)
        }
    }

    function _authorizedRegistrar() private view returns (address registrar) {
        _requireNotPaused();
        registrar = _msgSender();
        _checkRole(REGISTRAR_ROLE, registrar);
    }

    // Slither's incorrect-equality and timestamp findings on the status comparisons below are false
    // positives: the status shares a storage slot (StatusRecord) with the time it changed, so Slither
    // taints the enum with block.timestamp; no comparison here involves a time.

    function _requireValid(uint256 tokenId) private view {
        if (_documentHash[tokenId] == bytes32(0)) revert PurchaseOrderNotRegistered(tokenId);
        Status status = _currentStatus(tokenId);
        // slither-disable-next-line timestamp
        if (status != Status.Valid) revert PurchaseOrderNotValid(tokenId, status);
    }

    /// @dev Storage keeps None for a valid order so that registration writes no status slot.
    function _currentStatus(uint256 tokenId) private view returns (Status) {
        Status stored = _status[tokenId].status;
        // slither-disable-next-line incorrect-equality,timestamp
        return stored == Status.None ? Status.Valid : stored;
    }

    function _statusName(Status status) private pure returns (string memory) {
        // slither-disable-next-line incorrect-equality,timestamp
        if (status == Status.Annulled) return "annulled";
        // slither-disable-next-line incorrect-equality,timestamp
        if (status == Status.Superseded) return "superseded";
        return "valid";
    }

    /// @dev Tokens are held by the registry and never move: every transfer, mint or burn through
    /// ERC721's paths is refused. Registration emits its Transfer event directly.
    function _update(address, uint256 tokenId, address) internal pure override returns (address) {
        revert PurchaseOrderTokenLocked(tokenId);
    }

    /// @dev Stored in {_documentHash}: a token exists exactly when its hash is non-zero.
    function _ownerOf(uint256 tokenId) internal view override returns (address) {
        return _documentHash[tokenId] == bytes32(0) ? address(0) : address(this);
    }

    /// @dev The signer behind a hub, else msg.sender (LACNET.md):
    /// - the ERC-2771 hub (`trustedForwarder`, fixed at deploy): the last 20 bytes of calldata, by
    ///   OpenZeppelin's ERC2771Context (calldata shorter than 20 bytes: the hub itself);
    /// - the gas model's RelayHub, which the trusted forwarder names: the hub's `getMsgSender()`. Its calls
    ///   end with the 64-byte suffix abi.encode(node, expiration), never read as an address here.
    function _msgSender() internal view override(Context, ERC2771Context) returns (address) {
        if (msg.sender == trustedForwarder()) return ERC2771Context._msgSender();
        address forwarder = _relayForwarder;
        if (forwarder != address(0)) {
            (bool ok, bytes memory hub) = forwarder.staticcall(abi.encodeCall(ITrustedForwarder.getRelayHub, ()));
            if (ok && hub.length == 32 && abi.decode(hub, (address)) == msg.sender) {
                return IRelayHub(msg.sender).getMsgSender();
            }
        }
        return msg.sender;
    }

    /// @dev ERC2771Context's: calldata without the signer when the ERC-2771 hub calls (unused by the registry).
    function _msgData() internal view override(Context, ERC2771Context) returns (bytes calldata) {
        return ERC2771Context._msgData();
    }

    /// @dev ERC2771Context's 20 bytes.
    function _contextSuffixLength() internal view override(Context, ERC2771Context) returns (uint256) {
        return ERC2771Context._contextSuffixLength();
    }
}
