//! Content-addressed files: OCI blobs by SHA-256 and file objects by BLAKE3 root. New content is
//! written into a private staging directory under `tmp/` and moved into place only when the
//! import that wrote it has been verified (`Staging::commit`); an object that is already in the
//! store is never rewritten. Renames within one filesystem are atomic, so a reader sees either
//! no object or a whole one.

use crate::error::{Result, StoreError};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const BLOBS_DIR: &str = "blobs/sha256";
pub const OBJECTS_DIR: &str = "objects";
pub const TMP_DIR: &str = "tmp";

/// Where an object lives, relative to the store root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectId {
    /// A verbatim OCI blob, by its SHA-256 (64 hex digits).
    Blob(String),
    /// A file's decompressed content, by its BLAKE3 root (64 hex digits).
    File(String),
}

impl ObjectId {
    pub fn relative_path(&self) -> PathBuf {
        match self {
            ObjectId::Blob(h) => Path::new(BLOBS_DIR).join(h),
            ObjectId::File(h) => Path::new(OBJECTS_DIR).join(&h[..2]).join(&h[2..]),
        }
    }
    pub fn hex(&self) -> &str {
        match self {
            ObjectId::Blob(h) | ObjectId::File(h) => h,
        }
    }
}

/// Create the store's directories (idempotent).
pub fn create_layout(root: &Path) -> Result<()> {
    for d in [BLOBS_DIR, OBJECTS_DIR, TMP_DIR, "log"] {
        let p = root.join(d);
        fs::create_dir_all(&p)
            .map_err(|e| StoreError::io(format!("creating {}", p.display()), e))?;
    }
    Ok(())
}

/// A private directory for one import's new objects. Held with an exclusive `flock` on its
/// `.lock` file so that cleanup can tell live staging directories from abandoned ones.
pub struct Staging {
    root: PathBuf,
    dir: PathBuf,
    _lock: File,
    staged: Vec<ObjectId>,
    counter: u64,
}

impl Staging {
    pub fn new(root: &Path) -> Result<Self> {
        let tmp = root.join(TMP_DIR);
        fs::create_dir_all(&tmp)
            .map_err(|e| StoreError::io(format!("creating {}", tmp.display()), e))?;
        for attempt in 0..100u32 {
            let dir = tmp.join(format!(
                "import-{}-{}-{attempt}",
                std::process::id(),
                nanos()
            ));
            match fs::create_dir(&dir) {
                Ok(()) => {
                    let lockp = dir.join(".lock");
                    let lock = OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(&lockp)
                        .map_err(|e| StoreError::io(format!("creating {}", lockp.display()), e))?;
                    lock.lock()
                        .map_err(|e| StoreError::io(format!("locking {}", lockp.display()), e))?;
                    return Ok(Self {
                        root: root.to_path_buf(),
                        dir,
                        _lock: lock,
                        staged: vec![],
                        counter: 0,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io(format!("creating {}", dir.display()), e)),
            }
        }
        Err(StoreError::Busy(
            "could not create a staging directory".into(),
        ))
    }

    /// A new temporary file in the staging directory.
    pub fn temp_file(&mut self) -> Result<(PathBuf, File)> {
        self.counter += 1;
        let p = self.dir.join(format!("t{}", self.counter));
        let f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .read(true)
            .open(&p)
            .map_err(|e| StoreError::io(format!("creating {}", p.display()), e))?;
        Ok((p, f))
    }

    /// True when the store already has this object (so it need not be written again).
    pub fn exists_in_store(&self, id: &ObjectId) -> bool {
        self.root.join(id.relative_path()).exists()
    }

    /// File a finished temporary file as object `id` (still in staging). Duplicates within one
    /// import and objects the store already has are dropped.
    pub fn stage(&mut self, temp: &Path, id: ObjectId) -> Result<()> {
        let dest = self.dir.join("o").join(id.relative_path());
        if self.exists_in_store(&id) || dest.exists() {
            fs::remove_file(temp)
                .map_err(|e| StoreError::io(format!("removing {}", temp.display()), e))?;
            return Ok(());
        }
        let parent = dest.parent().expect("object paths have parents");
        fs::create_dir_all(parent)
            .map_err(|e| StoreError::io(format!("creating {}", parent.display()), e))?;
        fs::rename(temp, &dest)
            .map_err(|e| StoreError::io(format!("staging {}", dest.display()), e))?;
        self.staged.push(id);
        Ok(())
    }

    /// Number of objects staged so far.
    pub fn staged(&self) -> &[ObjectId] {
        &self.staged
    }

    /// Move every staged object into the store. Objects that appeared meanwhile (another import
    /// wrote the same content) are kept and the staged copy dropped. After this, the caller
    /// makes the objects durable (`sync_store`) and then writes the database batch.
    pub fn commit(&mut self) -> Result<()> {
        for id in std::mem::take(&mut self.staged) {
            let from = self.dir.join("o").join(id.relative_path());
            let to = self.root.join(id.relative_path());
            if to.exists() {
                let _ = fs::remove_file(&from);
                continue;
            }
            let parent = to.parent().expect("object paths have parents");
            fs::create_dir_all(parent)
                .map_err(|e| StoreError::io(format!("creating {}", parent.display()), e))?;
            fs::rename(&from, &to).map_err(|e| {
                StoreError::io(format!("moving {} into the store", to.display()), e)
            })?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Remove staging directories left by imports that died (their `.lock` is free). Live imports
/// hold theirs, so this is safe to run at any time.
pub fn clean_abandoned_staging(root: &Path) -> Result<usize> {
    let tmp = root.join(TMP_DIR);
    let Ok(rd) = fs::read_dir(&tmp) else {
        return Ok(0);
    };
    let mut removed = 0;
    for ent in rd.flatten() {
        let dir = ent.path();
        let lockp = dir.join(".lock");
        let free = match File::open(&lockp) {
            Ok(f) => matches!(f.try_lock(), Ok(())),
            Err(_) => true,
        };
        if free && fs::remove_dir_all(&dir).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Write all of `data` to a new file and sync it (for small objects written whole).
pub fn write_all_synced(f: &mut File, data: &[u8], path: &Path) -> Result<()> {
    f.write_all(data)
        .and_then(|_| f.sync_data())
        .map_err(|e| StoreError::io(format!("writing {}", path.display()), e))
}

/// Flush everything written to the store's filesystem to stable storage (one `syncfs`, instead
/// of an fsync per object): called after objects are in place and before the database batch that
/// makes them reachable, so a power loss can never leave a bundle pointing at lost data.
pub fn sync_store(root: &Path) -> Result<()> {
    let f =
        File::open(root).map_err(|e| StoreError::io(format!("opening {}", root.display()), e))?;
    nix::unistd::syncfs(&f)
        .map_err(|e| StoreError::io(format!("syncing {}", root.display()), io::Error::from(e)))
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_commit_and_dedup() {
        let d = tempfile::tempdir().unwrap();
        create_layout(d.path()).unwrap();
        let id = ObjectId::File("ab".repeat(32));
        {
            let mut s = Staging::new(d.path()).unwrap();
            let (p, mut f) = s.temp_file().unwrap();
            write_all_synced(&mut f, b"hello", &p).unwrap();
            s.stage(&p, id.clone()).unwrap();
            assert!(
                !d.path().join(id.relative_path()).exists(),
                "staged objects are invisible"
            );
            s.commit().unwrap();
        }
        assert_eq!(
            fs::read(d.path().join(id.relative_path())).unwrap(),
            b"hello"
        );
        let mut s = Staging::new(d.path()).unwrap();
        let (p, mut f) = s.temp_file().unwrap();
        write_all_synced(&mut f, b"hello", &p).unwrap();
        s.stage(&p, id).unwrap();
        assert!(
            s.staged().is_empty(),
            "an object the store has is not staged again"
        );
        sync_store(d.path()).unwrap();
    }

    #[test]
    fn abandoned_staging_is_cleaned_live_is_not() {
        let d = tempfile::tempdir().unwrap();
        create_layout(d.path()).unwrap();
        let live = Staging::new(d.path()).unwrap();
        fs::create_dir_all(d.path().join(TMP_DIR).join("import-dead")).unwrap();
        assert_eq!(clean_abandoned_staging(d.path()).unwrap(), 1);
        assert!(live.dir.exists());
    }
}
