//! `Store`: an opened store — its directory layout, lock, database and format check — and the
//! operations that need no tree walking (list, get, remove a bundle record, paths of objects).

use crate::db::{self, bundles, bundles::BundleRecord, Db};
use crate::error::{Result, StoreError};
use crate::lock::{LockMode, StoreLock};
use crate::objects::{self, ObjectId};
use std::path::{Path, PathBuf};

pub struct Store {
    root: PathBuf,
    db: Db,
    _lock: StoreLock,
}

impl Store {
    /// Open (creating if needed) the store at `root`, holding its lock in `mode`. Staging left
    /// by dead imports is removed.
    pub fn open(root: &Path, mode: LockMode) -> Result<Self> {
        std::fs::create_dir_all(root)
            .map_err(|e| StoreError::io(format!("creating the store {}", root.display()), e))?;
        let lock = StoreLock::acquire(root, mode, true)?;
        objects::create_layout(root)?;
        objects::clean_abandoned_staging(root)?;
        let db = Db::open(&root.join("db"))?;
        db::meta::check_or_init(&db)?;
        Ok(Self {
            root: root.to_path_buf(),
            db,
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn db(&self) -> &Db {
        &self.db
    }
    pub fn object_path(&self, id: &ObjectId) -> PathBuf {
        self.root.join(id.relative_path())
    }

    pub fn bundle(&self, name: &str) -> Result<BundleRecord> {
        bundles::get(&self.db, name)?.ok_or_else(|| StoreError::NotFound(name.to_string()))
    }

    /// Every bundle record; a record that does not decode is reported, not skipped.
    pub fn bundles(&self) -> Result<Vec<(String, Result<BundleRecord>)>> {
        bundles::all(&self.db)
    }

    /// Remove a bundle's record. Its objects stay until `gc` finds them unreferenced.
    pub fn remove_bundle(&self, name: &str) -> Result<BundleRecord> {
        let r = self.bundle(name)?;
        let mut b = self.db.batch();
        bundles::delete(&mut b, name);
        b.write()?;
        Ok(r)
    }
}
