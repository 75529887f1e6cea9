//! What a mount shows: one bundle's rootfs (`ct mount`), or the whole store (`ct store mount`:
//! `bundles/NAME/{rootfs/,manifest.toml,signatures/KEY.sig}` and `by-digest/HEX -> ../bundles/NAME`).
//! A view is made only from `Verified<StoredBundle>` witnesses — records the store re-verified
//! (signatures, trust, policy, binding to their digest, root record) when the mount was made —
//! so there is no way to serve a record nobody checked; everything below the root records is
//! verified here, lazily, as it is read.

use cerro_core::manifest::is_valid_name;
use cerro_core::rootfs::RootRecord;
use cerro_core::verified::{StoredBundle, Verified};

/// One rootfs to show, with the label its events are logged under (the bundle name).
#[derive(Debug, Clone)]
pub struct TreeRoot {
    pub(crate) label: String,
    pub(crate) root: RootRecord,
}

impl TreeRoot {
    /// The rootfs of a verified bundle, logged as `label`.
    pub fn new(label: impl Into<String>, bundle: &Verified<StoredBundle>) -> Self {
        Self {
            label: label.into(),
            root: bundle.subject().root.clone(),
        }
    }
}

/// One bundle of a store view.
#[derive(Debug, Clone)]
pub struct StoreBundle {
    /// The names it is shown under (`bundles/NAME`): only valid bundle names are kept.
    pub(crate) names: Vec<String>,
    pub(crate) bundle: Verified<StoredBundle>,
}

impl StoreBundle {
    /// A verified bundle shown under `names`. Names that are not valid bundle names (which
    /// could not come from ct, but the store is untrusted) are dropped; a bundle left with no
    /// name is not shown.
    pub fn new(names: Vec<String>, bundle: Verified<StoredBundle>) -> Self {
        Self {
            names: names.into_iter().filter(|n| is_valid_name(n)).collect(),
            bundle,
        }
    }
}

/// What the filesystem's root is.
#[derive(Debug, Clone)]
pub enum View {
    Rootfs(TreeRoot),
    Store(Vec<StoreBundle>),
}
