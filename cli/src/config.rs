//! The user's configuration directory: `config.toml` (default key, default policy, output
//! format), secret keys under `keys/` (0600) and the trust store under `trust/`.
//! Location: `--config-dir`, else `CT_CONFIG_DIR`, else `$XDG_CONFIG_HOME/cerro`, else
//! `~/.config/cerro`. Every write is atomic (temporary file, then rename).

use crate::exit::{CmdResult, Failure};
use cerro_core::keys::{PublicKeyFile, SecretKeyFile};
use cerro_core::{Fingerprint, KeyId};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.toml";
pub const KEYS_DIR: &str = "keys";
pub const TRUST_DIR: &str = "trust";

/// `config.toml`. Unknown keys are an error so that typos are not silently ignored.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Key used by `ct pack` when no `-k` is given.
    pub default_key: Option<String>,
    /// Policy used by `ct verify`/`ct explain` when no `--policy` is given.
    pub default_policy: Option<PathBuf>,
    /// `human` (default) or `json`.
    pub output: Option<String>,
}

#[derive(Clone)]
pub struct Config {
    pub dir: PathBuf,
    pub file: ConfigFile,
}

/// Where the configuration lives when nothing is given on the command line.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("cerro");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".config").join("cerro")
}

impl Config {
    pub fn load(dir: PathBuf) -> CmdResult<Self> {
        let path = dir.join(CONFIG_FILE);
        let file = match std::fs::read_to_string(&path) {
            Ok(s) => toml::from_str(&s).map_err(|e| {
                Failure::malformed(format!("{}: {}", path.display(), e.message()))
                    .hint("fix the file; known keys are default_key, default_policy, output")
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(e) => return Err(Failure::io(format!("reading {}", path.display()), e)),
        };
        if let Some(o) = &file.output {
            if o != "human" && o != "json" {
                return Err(Failure::malformed(format!(
                    "{}: output = {o:?} (expected \"human\" or \"json\")",
                    path.display()
                )));
            }
        }
        Ok(Self { dir, file })
    }

    pub fn save(&self) -> CmdResult {
        let text = toml::to_string(&self.file).expect("config serializes");
        write_atomic(&self.dir.join(CONFIG_FILE), text.as_bytes(), 0o644)
    }

    pub fn secret_key_path(&self, id: &KeyId) -> PathBuf {
        self.dir.join(KEYS_DIR).join(format!("{id}.key"))
    }
    pub fn public_key_path(&self, id: &KeyId) -> PathBuf {
        self.dir.join(TRUST_DIR).join(format!("{id}.pub"))
    }

    pub fn read_secret_key(&self, id: &KeyId) -> CmdResult<SecretKeyFile> {
        let p = self.secret_key_path(id);
        let bytes = std::fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Failure::usage(format!(
                    "no secret key {:?} in {}",
                    id.as_str(),
                    self.dir.join(KEYS_DIR).display()
                ))
                .hint("list keys with `ct key list`, or create one with `ct keygen --id NAME`")
            } else {
                Failure::io(format!("reading {}", p.display()), e)
            }
        })?;
        SecretKeyFile::parse(&bytes).map_err(|e| Failure::from(e).context(p.display()))
    }

    /// Every trusted public key, by trust-store name. Unreadable entries are errors, not skipped.
    pub fn trusted_keys(&self) -> CmdResult<Vec<PublicKeyFile>> {
        let dir = self.dir.join(TRUST_DIR);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Failure::io(format!("reading {}", dir.display()), e)),
        };
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| Failure::io(format!("reading {}", dir.display()), e))?;
            let p = ent.path();
            if p.extension().and_then(|e| e.to_str()) != Some("pub") {
                continue;
            }
            let bytes = std::fs::read(&p)
                .map_err(|e| Failure::io(format!("reading {}", p.display()), e))?;
            let k = PublicKeyFile::parse(&bytes).map_err(|e| {
                Failure::from(e)
                    .context(p.display())
                    .hint("remove or replace the damaged trust-store entry")
            })?;
            out.push(k);
        }
        out.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Ok(out)
    }

    /// Trust lookup for verification: fingerprint → trust-store name.
    pub fn trust_lookup(&self) -> CmdResult<impl Fn(&Fingerprint) -> Option<KeyId>> {
        let keys = self.trusted_keys()?;
        Ok(move |fp: &Fingerprint| {
            keys.iter()
                .find(|k| k.fingerprint == *fp)
                .map(|k| k.key_id.clone())
        })
    }
}

/// Make `dir` (and parents) with mode `mode` where it is created.
pub fn ensure_dir(dir: &Path, mode: u32) -> CmdResult {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| Failure::io(format!("creating {}", dir.display()), e))
}

/// Write `data` to `path` atomically with permissions `mode` (set before any byte is written).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> CmdResult {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure_dir(parent, 0o700)?;
    write_file_atomic(path, mode, |f| {
        (&*f)
            .write_all(data)
            .map_err(|e| Failure::io(format!("writing {}", path.display()), e))
    })
    .map(|_| ())
}

/// Create `path` atomically: `fill` writes the whole content into a temporary file beside it,
/// created with permissions `mode` before any byte is written; only when `fill` succeeds is the
/// file synced and renamed into place. On any failure `path` is untouched and the temporary file
/// is removed. Returns the file's size.
pub fn write_file_atomic(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&std::fs::File) -> CmdResult,
) -> CmdResult<u64> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".ct-tmp-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(parent)
        .map_err(|e| {
            Failure::io(
                format!("creating a temporary file in {}", parent.display()),
                e,
            )
        })?;
    fill(tmp.as_file())?;
    let io_err = |e| Failure::io(format!("writing {}", path.display()), e);
    tmp.as_file().sync_all().map_err(io_err)?;
    let size = tmp.as_file().metadata().map(|m| m.len()).map_err(io_err)?;
    tmp.persist(path).map_err(|e| io_err(e.error))?;
    Ok(size)
}
