//! A store attacker for the end-to-end tests: two signed versions of one package (`app` 1 and
//! 2, each with a `/version` file and a busybox to run), and a raw writer of database values
//! that plays someone who can write the store (what ct itself never does: it writes only
//! through its typed modules). Tests then check that every command serves exactly the bundle
//! the user named or verified, or refuses, naming the record.

use crate::forge::{
    forge_package, forger_public_key, Forged, Layer, PackageSpec, RootfsClaim, TarBuilder,
};
use crate::TestEnv;
use cerro_store::db::{Db, CF_INLINE, CF_NAMES, CF_RECORDS};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Creation times of the two versions: 2 is the newer.
pub const CREATED_V1: &str = "2025-01-01T00:00:00Z";
pub const CREATED_V2: &str = "2026-01-01T00:00:00Z";

/// The two versions, forged once per test binary.
pub struct Versions {
    _dir: tempfile::TempDir,
    pub v1: Forged,
    pub v2: Forged,
    /// Bundle digests (`sha256:…`) of v1 and v2.
    pub d1: String,
    pub d2: String,
}

fn layer(version: &str) -> Layer {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed (tools/setup)");
    let mut t = TarBuilder::new();
    t.dir(b"bin/");
    let mut h = crate::forge::Header::new(b"bin/busybox", crate::forge::kind::FILE);
    h.mode = 0o755;
    t.entry(h, &busybox);
    t.symlink(b"bin/sh", b"busybox")
        .symlink(b"bin/cat", b"busybox")
        .symlink(b"bin/sleep", b"busybox")
        .dir(b"data/")
        .file(b"data/shared", b"the same in every version\n")
        .file(b"version", format!("version-{version}\n").as_bytes());
    Layer::gzip(&t.finish())
}

/// `app` version ONE (older) and TWO (newer), signed by the forger key.
pub fn versions() -> &'static Versions {
    static V: OnceLock<Versions> = OnceLock::new();
    V.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("versions-")
            .tempdir_in(crate::fixture_root())
            .unwrap();
        let make = |file: &str, v: &str, created: &str| {
            forge_package(
                dir.path(),
                file,
                &[layer(v)],
                RootfsClaim::Derived,
                &PackageSpec {
                    name: "app".into(),
                    version: v.into(),
                    created: created.into(),
                },
            )
        };
        let v1 = make("app-1", "ONE", CREATED_V1);
        let v2 = make("app-2", "TWO", CREATED_V2);
        let digest = |f: &Forged| {
            let entries = crate::rawtar::read(&f.bundle);
            crate::sha256(&entries[crate::rawtar::find(&entries, "cerro/manifest.toml")].data)
        };
        Versions {
            d1: digest(&v1),
            d2: digest(&v2),
            v1,
            v2,
            _dir: dir,
        }
    })
}

/// A test environment that trusts the forger, with both versions copied in as `v1.ctp` and
/// `v2.ctp`, and a store path.
pub fn env_with_versions() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    let v = versions();
    let pk = forger_public_key(env.root());
    env.ct(&["key", "import", pk.to_str().unwrap()]).ok();
    std::fs::copy(&v.v1.bundle, env.path("v1.ctp")).unwrap();
    std::fs::copy(&v.v2.bundle, env.path("v2.ctp")).unwrap();
    let store = env.path("store");
    (env, store)
}

/// Raw access to a store's database, as an attacker who can write the store has it.
pub struct RawStore {
    db: PathBuf,
}

fn key_of(digest: &str) -> Vec<u8> {
    hex_bytes(digest.trim_start_matches("sha256:"))
}

fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

impl RawStore {
    pub fn new(store: &Path) -> Self {
        Self {
            db: store.join("db"),
        }
    }

    fn with_db<T>(&self, f: impl FnOnce(&Db) -> T) -> T {
        let db = Db::open(&self.db).expect("open the store database read-write");
        f(&db)
    }

    /// The raw value of the record under `digest` (`sha256:…`).
    pub fn record(&self, digest: &str) -> Vec<u8> {
        let key = key_of(digest);
        self.with_db(|db| {
            db.scan_raw(CF_RECORDS)
                .into_iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
                .expect("the record exists")
        })
    }

    /// Write `value` as the record under `digest`.
    pub fn put_record(&self, digest: &str, value: &[u8]) {
        self.with_db(|db| db.put_raw(CF_RECORDS, &key_of(digest), value).unwrap());
    }

    /// Every small file's content the database holds (store format 3, spec/store.md §5.1): raw
    /// key (a BLAKE3 root) and value.
    pub fn inline_values(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.with_db(|db| db.scan_raw(CF_INLINE))
    }

    /// Write `value` as the database's copy of the small file whose BLAKE3 root is `root`.
    pub fn put_inline(&self, root: &[u8; 32], value: &[u8]) {
        self.with_db(|db| db.put_raw(CF_INLINE, root, value).unwrap());
    }

    /// Remove the database's copy of the small file whose BLAKE3 root is `root`.
    pub fn delete_inline(&self, root: &[u8; 32]) {
        self.with_db(|db| db.delete_raw(CF_INLINE, root).unwrap());
    }

    /// Point the name key `name` (any bytes) at `digest`.
    pub fn put_name(&self, name: &[u8], digest: &str) {
        let v = serde_json::json!({"format": "cerro-torre/store-name/v1", "digest": digest, "updated_at": 0});
        self.with_db(|db| {
            db.put_raw(CF_NAMES, name, &serde_json::to_vec(&v).unwrap())
                .unwrap()
        });
    }
}
