//! Content-addressed files: OCI blobs by SHA-256 and file objects by BLAKE3 root. New content is
//! written into a private staging directory under `tmp/` and moved into place only when the
//! import that wrote it has been verified (`Staging::commit`). Renames within one filesystem are
//! atomic, so a reader sees either no object or a whole one; a damaged object is replaced the
//! same way (re-import heals). Everything goes through descriptors (`dirs.rs`): no link in the
//! store is ever followed, and only what `lstat` shows to be ours is removed.

use crate::dirs::{create_new_at, list_at, remove_file_at, remove_tree_at, StoreDirs};
use crate::error::{Result, StoreError};
use cerro_core::rootfs::Blake3Root;
use cerro_core::Sha256Digest;
use rustix::fs::{mkdirat, Mode};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub const BLOBS_DIR: &str = "blobs/sha256";
pub const OBJECTS_DIR: &str = "objects";
pub const TMP_DIR: &str = "tmp";
/// Prefix of staging directories under `tmp/` (the only names cleanup removes).
const STAGING_PREFIX: &str = "import-";

/// Where an object lives, relative to the store root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectId {
    /// A verbatim OCI blob, by its SHA-256.
    Blob(Sha256Digest),
    /// A file's decompressed content, by its BLAKE3 root.
    File(Blake3Root),
}

impl ObjectId {
    pub fn blob(d: &Sha256Digest) -> Self {
        ObjectId::Blob(*d)
    }
    pub fn file(r: &Blake3Root) -> Self {
        ObjectId::File(*r)
    }
    /// `blobs/sha256/<64 hex>` or `objects/<2 hex>/<62 hex>`.
    pub fn relative_path_str(&self) -> String {
        match self {
            ObjectId::Blob(d) => format!("{BLOBS_DIR}/{}", d.hex()),
            ObjectId::File(r) => {
                let h = r.hex();
                format!("{OBJECTS_DIR}/{}/{}", &h[..2], &h[2..])
            }
        }
    }
    pub fn relative_path(&self) -> PathBuf {
        PathBuf::from(self.relative_path_str())
    }
    pub fn hex(&self) -> String {
        match self {
            ObjectId::Blob(d) => d.hex(),
            ObjectId::File(r) => r.hex(),
        }
    }
    /// The object's name while staged (flat, one directory).
    fn staged_name(&self) -> String {
        match self {
            ObjectId::Blob(d) => format!("b-{}", d.hex()),
            ObjectId::File(r) => format!("f-{}", r.hex()),
        }
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectId::Blob(d) => write!(f, "blob {d}"),
            ObjectId::File(r) => write!(f, "object {r}"),
        }
    }
}

/// What the store holds where an object should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Nothing.
    Absent,
    /// A regular file of the right size whose content hashes to the object's name.
    Sound,
    /// Something else: the reason. An import replaces it with the verified bytes.
    Damaged(String),
}

/// Check the object `id` the store holds against its name and `size`: type (a regular file,
/// reached without links), size, and content hash. Reads the whole object.
pub fn check_existing(dirs: &StoreDirs, id: &ObjectId, size: u64) -> Existing {
    let f = match dirs.open_sized(&id.relative_path_str(), size) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Existing::Absent,
        Err(e) => return Existing::Damaged(e.to_string()),
    };
    let r = io::BufReader::with_capacity(1 << 20, f.take(size + 1));
    let sound = match id {
        ObjectId::Blob(d) => {
            cerro_core::digest::hash_reader(r).map(|(got, n)| got == *d && n == size)
        }
        ObjectId::File(root) => {
            let mut h = blake3::Hasher::new();
            h.update_reader(r)
                .map(|h| Blake3Root::from_bytes(*h.finalize().as_bytes()) == *root)
        }
    };
    match sound {
        Ok(true) => Existing::Sound,
        Ok(false) => Existing::Damaged("its content does not hash to its name".into()),
        Err(e) => Existing::Damaged(format!("unreadable: {e}")),
    }
}

/// A temporary file in a staging directory, by name.
#[derive(Debug)]
pub struct Temp(String);

/// A private directory for one import's new objects. Held with an exclusive `flock` on its
/// `.lock` file so that cleanup can tell live staging directories from abandoned ones.
pub struct Staging {
    dirs: StoreDirs,
    name: String,
    dir: OwnedFd,
    _lock: File,
    staged: Vec<ObjectId>,
    counter: u64,
}

impl Staging {
    pub fn new(dirs: &StoreDirs) -> Result<Self> {
        let tmp = dirs.open_dir(TMP_DIR)?;
        for attempt in 0..100u32 {
            let name = format!(
                "{STAGING_PREFIX}{}-{}-{attempt}",
                std::process::id(),
                nanos()
            );
            match mkdirat(&tmp, name.as_str(), Mode::from_raw_mode(0o700)) {
                Ok(()) => {
                    let dir = dirs.open_dir(&format!("{TMP_DIR}/{name}"))?;
                    let lock = create_new_at(&dir, ".lock", 0o600)
                        .map_err(|e| StoreError::io(format!("creating the lock of {name}"), e))?;
                    lock.lock()
                        .map_err(|e| StoreError::io(format!("locking {name}"), e))?;
                    return Ok(Self {
                        dirs: dirs.clone(),
                        name,
                        dir,
                        _lock: lock,
                        staged: vec![],
                        counter: 0,
                    });
                }
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => {
                    return Err(StoreError::io(
                        format!(
                            "creating {}",
                            dirs.join(&format!("{TMP_DIR}/{name}")).display()
                        ),
                        io::Error::from(e),
                    ))
                }
            }
        }
        Err(StoreError::Busy(
            "could not create a staging directory".into(),
        ))
    }

    fn shown(&self, leaf: &str) -> PathBuf {
        self.dirs.join(&format!("{TMP_DIR}/{}/{leaf}", self.name))
    }

    /// A new temporary file in the staging directory.
    pub fn temp_file(&mut self) -> Result<(Temp, File)> {
        self.counter += 1;
        let name = format!("t{}", self.counter);
        let f = create_new_at(&self.dir, &name, 0o644)
            .map_err(|e| StoreError::io(format!("creating {}", self.shown(&name).display()), e))?;
        Ok((Temp(name), f))
    }

    /// A new, empty file in the staging directory, by path, for a writer that only takes paths
    /// (RocksDB's table writer, `db::inline::write_table`, which opens it again to write). It is
    /// created here through the directory's descriptor, exclusively and without following a
    /// link, so the name is this import's own regular file; the directory is this import's own
    /// too (0700, under the store's `tmp/`, reached without links).
    pub fn table_path(&mut self) -> Result<PathBuf> {
        self.counter += 1;
        let name = format!("table-{}.sst", self.counter);
        create_new_at(&self.dir, &name, 0o600)
            .map_err(|e| StoreError::io(format!("creating {}", self.shown(&name).display()), e))?;
        Ok(self.shown(&name))
    }

    /// Drop a temporary file that will not become an object.
    pub fn discard(&mut self, t: Temp) -> Result<()> {
        remove_file_at(&self.dir, &t.0)
            .map(|_| ())
            .map_err(|e| StoreError::io(format!("removing {}", self.shown(&t.0).display()), e))
    }

    /// File a finished temporary file as object `id` (still in staging). A second copy within
    /// one import is dropped. The caller has decided that the store needs it (absent or
    /// damaged there).
    pub fn stage(&mut self, t: Temp, id: ObjectId) -> Result<()> {
        if self.staged.contains(&id) {
            return self.discard(t);
        }
        let to = id.staged_name();
        StoreDirs::rename(&self.dir, &t.0, &self.dir, &to)
            .map_err(|e| StoreError::io(format!("staging {}", self.shown(&to).display()), e))?;
        self.staged.push(id);
        Ok(())
    }

    /// Whether this import has staged `id` already.
    pub fn has_staged(&self, id: &ObjectId) -> bool {
        self.staged.contains(id)
    }

    /// Objects staged so far.
    pub fn staged(&self) -> &[ObjectId] {
        &self.staged
    }

    /// Move every staged object into the store, replacing whatever is there (a damaged object,
    /// or the same bytes another import wrote meanwhile) in one atomic rename each. After this,
    /// the caller makes the objects durable (`sync_store`) and then writes the database batch.
    pub fn commit(&mut self) -> Result<()> {
        for id in std::mem::take(&mut self.staged) {
            let (dir, leaf) = match &id {
                ObjectId::Blob(d) => (self.dirs.open_dir(BLOBS_DIR)?, d.hex()),
                ObjectId::File(r) => {
                    let h = r.hex();
                    (
                        self.dirs.ensure_dir(OBJECTS_DIR, &h[..2])?,
                        h[2..].to_string(),
                    )
                }
            };
            StoreDirs::rename(&self.dir, &id.staged_name(), &dir, &leaf).map_err(|e| {
                StoreError::io(
                    format!(
                        "moving {} into the store",
                        self.dirs.join(&id.relative_path_str()).display()
                    ),
                    e,
                )
            })?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Ok(tmp) = self.dirs.open_dir(TMP_DIR) {
            let _ = remove_tree_at(&tmp, &self.name);
        }
    }
}

/// Remove staging directories left by imports that died (their `.lock` is free). Live imports
/// hold theirs, so this is safe to run at any time. Only real directories named `import-…`
/// are touched, through descriptors: a link planted in `tmp/` is never followed.
pub fn clean_abandoned_staging(dirs: &StoreDirs) -> Result<usize> {
    let tmp = dirs.open_dir(TMP_DIR)?;
    let mut removed = 0;
    for name in list_at(&tmp).map_err(|e| StoreError::io("reading the store's tmp/", e))? {
        if !name.starts_with(STAGING_PREFIX) {
            continue;
        }
        // Not a real directory (a link, a file): leave it; open_dir refuses links.
        if dirs.open_dir(&format!("{TMP_DIR}/{name}")).is_err() {
            continue;
        }
        let free = match dirs.open_regular(&format!("{TMP_DIR}/{name}"), ".lock") {
            Ok(Some(f)) => f.try_lock().is_ok(),
            Ok(None) => true,
            Err(_) => false,
        };
        if free && remove_tree_at(&tmp, &name).is_ok() {
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
pub fn sync_store(dirs: &StoreDirs) -> Result<()> {
    rustix::fs::syncfs(dirs.root()).map_err(|e| {
        StoreError::io(
            format!("syncing {}", dirs.path().display()),
            io::Error::from(e),
        )
    })
}

pub(crate) fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn stage_commit_check_and_heal() {
        let d = tempfile::tempdir().unwrap();
        let dirs = StoreDirs::create(d.path()).unwrap();
        let id = ObjectId::File(Blake3Root::of(b"hello"));
        assert_eq!(check_existing(&dirs, &id, 5), Existing::Absent);
        {
            let mut s = Staging::new(&dirs).unwrap();
            let (t, mut f) = s.temp_file().unwrap();
            f.write_all(b"hello").unwrap();
            s.stage(t, id).unwrap();
            assert!(
                !d.path().join(id.relative_path()).exists(),
                "staged objects are invisible"
            );
            s.commit().unwrap();
        }
        let p = d.path().join(id.relative_path());
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        assert_eq!(check_existing(&dirs, &id, 5), Existing::Sound);
        assert!(matches!(
            check_existing(&dirs, &id, 6),
            Existing::Damaged(_)
        ));
        fs::write(&p, b"HELLO").unwrap();
        assert!(matches!(
            check_existing(&dirs, &id, 5),
            Existing::Damaged(_)
        ));
        // A damaged object is replaced by staging the verified bytes again.
        let mut s = Staging::new(&dirs).unwrap();
        let (t, mut f) = s.temp_file().unwrap();
        f.write_all(b"hello").unwrap();
        s.stage(t, id).unwrap();
        s.commit().unwrap();
        assert_eq!(check_existing(&dirs, &id, 5), Existing::Sound);
        // A link where the object should be is damaged, never followed, and replaced.
        fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &p).unwrap();
        assert!(matches!(
            check_existing(&dirs, &id, 5),
            Existing::Damaged(_)
        ));
        let (t, mut f) = s.temp_file().unwrap();
        f.write_all(b"hello").unwrap();
        s.stage(t, id).unwrap();
        s.commit().unwrap();
        assert!(fs::symlink_metadata(&p).unwrap().is_file());
        sync_store(&dirs).unwrap();
    }

    #[test]
    fn abandoned_staging_is_cleaned_live_is_not_and_links_are_left() {
        let d = tempfile::tempdir().unwrap();
        let dirs = StoreDirs::create(d.path()).unwrap();
        let live = Staging::new(&dirs).unwrap();
        fs::create_dir_all(d.path().join(TMP_DIR).join("import-dead/o/ab")).unwrap();
        let victim = d.path().join("victim");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("keep"), b"x").unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join(TMP_DIR).join("import-link")).unwrap();
        assert_eq!(clean_abandoned_staging(&dirs).unwrap(), 1);
        assert!(d.path().join(TMP_DIR).join(&live.name).exists());
        assert!(victim.join("keep").exists());
    }
}
