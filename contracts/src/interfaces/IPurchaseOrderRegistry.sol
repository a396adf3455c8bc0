// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Purchase-order registry: one non-transferable ERC-721 token per public purchase order.
/// @notice A token's id is `uint256(keccak256(orderKey))`, where `orderKey` is the UTF-8 string
/// `"<entity>/<order number>"` (`<entity>` is the 11-digit RUC for Peruvian entities, otherwise
/// `"<SCHEME>:<id>"`). Anyone can therefore compute the id of an order before it is minted, and the
/// chain refuses a second order with the same entity and number.
///
/// What the chain holds, readable with a plain JSON-RPC endpoint:
/// - storage (`eth_call`): the PDF's SHA-256 and the order's status ({orderOf});
/// - logs (`eth_getLogs`): ERC-721 `Transfer(0, registry, tokenId)` indexed by token id, then right after
///   it in the same transaction {OrderRegistered} indexed by document hash and registrar;
///   {OrderAnnulled}, {OrderSuperseded};
/// - calldata (`eth_getTransactionByHash` of the registering transaction): the whole record, as the
///   `order` bytes described at {register}.
interface IPurchaseOrderRegistry {
    /// @notice Lifecycle of a registered order. `None` means "never registered".
    enum Status {
        None,
        Valid,
        Annulled,
        Superseded
    }

    /// @notice Everything storage holds about one order.
    /// @param documentHash SHA-256 of the registered (stamped) PDF.
    /// @param status Current status.
    /// @param statusChangedAt Block timestamp of the last status change (0 while valid).
    /// @param replacedBy Token that superseded this one (0 if none).
    /// @param replaces Token this one superseded (0 if none).
    struct OrderState {
        bytes32 documentHash;
        Status status;
        uint64 statusChangedAt;
        uint256 replacedBy;
        uint256 replaces;
    }

    /// @notice Emitted once per order, right after it is stored and right after its ERC-721 `Transfer`
    /// (which carries the token id: repeating it here would cost every order 375 gas more). The order whose
    /// entry in the transaction's calldata has this hash is the one registered.
    event OrderRegistered(bytes32 indexed documentHash, address indexed registrar);

    /// @notice Emitted when an order is annulled; the token stays, its status changes.
    event OrderAnnulled(uint256 indexed tokenId, address indexed annuller, string reason);

    /// @notice Emitted when `tokenId` is replaced by the corrected order `replacementTokenId`.
    event OrderSuperseded(uint256 indexed tokenId, uint256 indexed replacementTokenId, address indexed registrar);

    /// @notice ERC-4906: emitted when a token's metadata (its status) changes.
    event MetadataUpdate(uint256 _tokenId);

    /// @notice ERC-4906: emitted when the metadata of a range of tokens changes.
    event BatchMetadataUpdate(uint256 _fromTokenId, uint256 _toTokenId);

    /// @notice Emitted when the admin changes the base URL of the built-in document store.
    event DocumentBaseURIChanged(string uri);

    /// @notice Thrown when an order with the same entity and order number is already registered.
    error PurchaseOrderAlreadyRegistered(uint256 tokenId, string orderKey);

    /// @notice Thrown when `tokenId` names no registered order.
    error PurchaseOrderNotRegistered(uint256 tokenId);

    /// @notice Thrown when an order must be valid for the operation but is annulled or superseded.
    error PurchaseOrderNotValid(uint256 tokenId, Status status);

    /// @notice Thrown when an `order` entry is too short or its key is empty; `index` is its place in the batch.
    error PurchaseOrderMalformed(uint256 index);

    /// @notice Thrown when an entry's document hash is zero.
    error PurchaseOrderEmptyDocumentHash(uint256 tokenId);

    /// @notice Thrown when an annulment has no reason or a reason over 1,000 bytes.
    error PurchaseOrderInvalidReason(uint256 length);

    /// @notice Thrown on any attempt to transfer or approve a token: tokens are locked (ERC-5192).
    error PurchaseOrderTokenLocked(uint256 tokenId);

    /// @notice Registers one order and mints its token to the registry itself.
    /// @param order `documentHash (32 bytes) ‖ keyLength (1 byte) ‖ orderKey ‖ record`, where `record` is
    /// the encoded record (its first byte is the encoding version; see the project's README).
    /// Requirements: caller has REGISTRAR_ROLE; not paused; key unused; hash non-zero.
    /// Emits {IERC721-Transfer} and {OrderRegistered}.
    function register(bytes calldata order) external returns (uint256 tokenId);

    /// @notice Registers many orders in one transaction: `orders` is the concatenation of
    /// `length (2 bytes, big-endian) ‖ order` for each order. Reverts whole if any entry is refused.
    function registerBatch(bytes calldata orders) external returns (uint256 count);

    /// @notice Registers `order` as the corrected version of `supersededTokenId`, which becomes Superseded.
    /// Requirements: caller has REGISTRAR_ROLE; `supersededTokenId` is valid. Emits {OrderSuperseded}.
    function supersede(uint256 supersededTokenId, bytes calldata order) external returns (uint256 tokenId);

    /// @notice Marks `tokenId` annulled with `reason` (1 to 1,000 bytes).
    /// Requirements: caller has ANNULLER_ROLE; the order is valid. Emits {OrderAnnulled}.
    function annul(uint256 tokenId, string calldata reason) external;

    /// @notice Everything storage holds about `tokenId`; `status` is None when it was never registered.
    function orderOf(uint256 tokenId) external view returns (OrderState memory);

    /// @notice The token id of `orderKey` (`"<entity>/<order number>"`), registered or not.
    function tokenIdOf(string calldata orderKey) external pure returns (uint256);

    /// @notice Number of orders registered (all held by the registry).
    function totalSupply() external view returns (uint256);

    /// @notice Base URL of the built-in document store: a record without `document_url` is published
    /// at this base followed by the document's hashlink.
    function documentBaseURI() external view returns (string memory);

    /// @notice LACNet's gas-model trusted forwarder, whose RelayHub may speak for a signer; zero when none.
    /// (The ERC-2771 hub is ERC2771Context's `trustedForwarder()`.)
    function relayForwarder() external view returns (address);
}
