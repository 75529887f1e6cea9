//! `Store`: an opened store — its directory layout, lock, database and format check — and the
//! operations that need no tree walking (list, get, remove a bundle record, paths of objects).

use crate::db::{self, bundles, bundles::BundleRecord, Db};
use crate::error::{Result, StoreError};
use crate::lock::{LockMode, StoreLock};
use crate::objects::{self, ObjectId};
use std::path::{Path, PathBuf};

pub struct Store {
    root: PathBuf,
    /// A read-only view of the database as of `open`; writes go through [`Store::writer`].
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
        let path = root.join("db");
        // A new store, or one whose creation was cut short (a first import killed before every
        // column family or the format was recorded): create what is missing, then let go.
        if !Db::is_complete(&path) {
            db::meta::check_or_init(&Db::open(&path)?)?;
        }
        let mut db = Db::open_read_only(&path)?;
        if !db::meta::recorded(&db)? {
            db::meta::check_or_init(&Db::open(&path)?)?;
            db = Db::open_read_only(&path)?;
        }
        db::meta::check(&db)?;
        Ok(Self {
            root: root.to_path_buf(),
            db,
            _lock: lock,
        })
    }

    /// Open a store for reading only, without taking the store lock: for long-lived readers
    /// (mount daemons) that must not keep `gc` or `fsck --repair` waiting. Nothing is created;
    /// what is read is verified against signed digests as always.
    pub fn open_reader(root: &Path) -> Result<Self> {
        let lock = StoreLock::none();
        let db = Db::open_read_only(&root.join("db"))?;
        db::meta::check(&db)?;
        Ok(Self {
            root: root.to_path_buf(),
            db,
            _lock: lock,
        })
    }

    /// The database opened read-write, for one batch. Waits while another process writes; drop
    /// it as soon as the batch is written.
    pub fn writer(&self) -> Result<Db> {
        Db::open(&self.root.join("db"))
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
        let w = self.writer()?;
        let r = bundles::get(&w, name)?.ok_or_else(|| StoreError::NotFound(name.to_string()))?;
        let mut b = w.batch();
        bundles::delete(&mut b, name);
        b.write()?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database as a first import leaves it when killed while RocksDB creates the column
    /// families: only some of them exist, and no format is recorded.
    fn half_created(root: &Path, cfs: &[&str]) {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        drop(rocksdb::DB::open_cf(&o, root.join("db"), cfs).unwrap());
    }

    #[test]
    fn a_store_whose_creation_was_cut_short_opens_and_is_completed() {
        for cfs in [
            &[][..],
            &["meta"][..],
            &["bundles", "dirs", "outboards", "meta"][..],
        ] {
            let dir = tempfile::tempdir().unwrap();
            half_created(dir.path(), cfs);
            assert!(
                !Db::is_complete(&dir.path().join("db")) || cfs.len() == 4,
                "{cfs:?}"
            );
            let s = Store::open(dir.path(), LockMode::Shared)
                .unwrap_or_else(|e| panic!("{cfs:?}: {e}"));
            assert!(s.bundles().unwrap().is_empty());
            drop(s);
            assert!(Db::is_complete(&dir.path().join("db")));
            // Readers that create nothing open it now too.
            Store::open_reader(dir.path()).unwrap();
        }
    }
}
