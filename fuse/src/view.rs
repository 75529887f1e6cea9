//! What a mount shows: one bundle's rootfs (`ct mount`), or the whole store (`ct store mount`:
//! `bundles/NAME/{rootfs/,manifest.toml,signatures/KEY.sig}` and `by-digest/HEX -> ../bundles/NAME`).
//! The caller has already checked each bundle's signatures and that its root record is the one
//! the signed manifest names; everything below the root records is verified here, lazily.

use cerro_core::rootfs::RootRecord;

/// One rootfs to show, with the label its events are logged under (the bundle name).
#[derive(Debug, Clone)]
pub struct TreeRoot {
    pub label: String,
    pub root: RootRecord,
}

/// One bundle of a store view.
#[derive(Debug, Clone)]
pub struct StoreBundle {
    pub name: String,
    /// Hex SHA-256 of the signed manifest (the bundle digest).
    pub digest_hex: String,
    pub root: RootRecord,
    /// The signed manifest bytes (verified by the caller).
    pub manifest: Vec<u8>,
    /// Signature files by key id (verified by the caller).
    pub signatures: Vec<(String, Vec<u8>)>,
}

/// What the filesystem's root is.
#[derive(Debug, Clone)]
pub enum View {
    Rootfs(TreeRoot),
    Store(Vec<StoreBundle>),
}
