//! The user's configuration directory: `config.toml` (default key, default policy, output
//! format, bounds on untrusted layers), secret keys under `keys/` (0600) and the trust store under `trust/`.
//! Location: `--config-dir`, else `CT_CONFIG_DIR`, else `$XDG_CONFIG_HOME/cerro`, else
//! `~/.config/cerro`. Every write is atomic (temporary file, then rename).

use crate::exit::{CmdResult, Failure};
use cerro_core::keys::{PublicKeyFile, SecretKeyFile};
use cerro_core::rootfs::Limits;
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
    /// `[limits]`: bounds on untrusted layers for `ct pack`, `ct verify --deep` and `ct import`.
    pub limits: Option<LimitsTable>,
    /// `[doctor]`: where `ct doctor` looks for what it checks.
    pub doctor: Option<DoctorTable>,
    /// `[run]`: defaults of `ct run`.
    pub run: Option<RunTable>,
}

/// The `[run]` table.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunTable {
    /// `runc`, `crun` or `podman` [default: the first of them that works].
    pub runtime: Option<String>,
}

/// The `[doctor]` table: paths `ct doctor` checks, for hosts that keep them elsewhere.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoctorTable {
    /// The FUSE device [default: /dev/fuse].
    pub fuse_device: Option<PathBuf>,
}

/// The `[limits]` table: each key overrides one bound of [`Limits`] (the defaults are generous
/// but finite). Exceeding one refuses the layer with exit 10, and the message names the key.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsTable {
    /// Decompressed bytes of one layer's tar stream (stops decompression bombs).
    pub max_layer_bytes: Option<u64>,
    /// Tar headers in one layer.
    pub max_layer_entries: Option<u64>,
    /// Inodes alive in the merged root filesystem.
    pub max_inodes: Option<u64>,
}

/// What `ct` says when `config.toml` does not parse.
const KNOWN_KEYS: &str = "known keys are default_key, default_policy, output, a [limits] \
table with max_layer_bytes, max_layer_entries and max_inodes, a [doctor] table with fuse_device, and a [run] table with runtime";

/// The config.toml key of the configurable limit that a layer refusal reports, if any. The
/// phrases are core's (`cerro_core::rootfs`); a unit test below keeps them in step.
pub fn exceeded_limit(message: &str) -> Option<&'static str> {
    if !message.contains("limit exceeded: ") {
        return None;
    }
    if message.contains("the layer decompresses to more than") {
        Some("max_layer_bytes")
    } else if message.contains("entries in one layer") {
        Some("max_layer_entries")
    } else if message.contains("inodes in the rootfs") {
        Some("max_inodes")
    } else {
        None
    }
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
                    .hint(format!("fix the file; {KNOWN_KEYS}"))
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
        if let Some(l) = &file.limits {
            for (k, v) in [
                ("max_layer_bytes", l.max_layer_bytes),
                ("max_layer_entries", l.max_layer_entries),
                ("max_inodes", l.max_inodes),
            ] {
                if v == Some(0) {
                    return Err(Failure::malformed(format!(
                        "{}: [limits] {k} = 0 (a limit must be at least 1)",
                        path.display()
                    ))
                    .hint(format!(
                        "remove the key to use the default, {}",
                        default_limit(k)
                    )));
                }
            }
        }
        Ok(Self { dir, file })
    }

    /// The bounds on untrusted layers: `[limits]` of config.toml over the defaults.
    pub fn limits(&self) -> Limits {
        let d = Limits::default();
        let l = self.file.limits.clone().unwrap_or_default();
        Limits {
            max_layer_bytes: l.max_layer_bytes.unwrap_or(d.max_layer_bytes),
            max_layer_entries: l.max_layer_entries.unwrap_or(d.max_layer_entries),
            max_inodes: l.max_inodes.unwrap_or(d.max_inodes),
        }
    }

    /// Add to `f`, when it is a layer refused for exceeding a configurable limit, a hint saying
    /// which key of which file raises it.
    pub fn limit_hint(&self, f: Failure) -> Failure {
        match exceeded_limit(&f.message) {
            Some(key) => {
                let now = match key {
                    "max_layer_bytes" => self.limits().max_layer_bytes,
                    "max_layer_entries" => self.limits().max_layer_entries,
                    _ => self.limits().max_inodes,
                };
                let path = self.dir.join(CONFIG_FILE);
                f.hint(format!(
                    "the limit is {key} = {now}; if this layer is legitimate, raise it in the \
                     [limits] table of {} (for example `{key} = {}`)",
                    path.display(),
                    now.saturating_mul(4)
                ))
            }
            None => f,
        }
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

    /// Trust lookup for verification: fingerprint → trust-store name, carrying the validity
    /// window the trust store gives the key (the verifier refuses its signatures on bundles
    /// created outside it).
    pub fn trust_lookup(&self) -> CmdResult<impl Fn(&Fingerprint) -> Option<KeyId>> {
        let keys = self.trusted_keys()?;
        Ok(move |fp: &Fingerprint| {
            keys.iter()
                .find(|k| k.fingerprint == *fp)
                .map(|k| k.key_id.clone().with_window(k.window()))
        })
    }
}

fn default_limit(key: &str) -> String {
    let d = Limits::default();
    let v = match key {
        "max_layer_bytes" => d.max_layer_bytes,
        "max_layer_entries" => d.max_layer_entries,
        _ => d.max_inodes,
    };
    format!("{key} = {v}")
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

#[cfg(test)]
mod tests {
    use super::*;
    use cerro_core::rootfs::{HashSink, RootfsBuilder};
    use cerro_core::source::Compression;

    /// An uncompressed layer of four 4 KiB files.
    fn layer() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..4 {
            let mut h = tar::Header::new_ustar();
            h.set_path(format!("f{i}")).unwrap();
            h.set_size(4096);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, &[b'x'; 4096][..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn refusal(limits: Limits) -> String {
        RootfsBuilder::new(limits)
            .apply_layer(&layer()[..], Compression::None, &mut HashSink)
            .expect_err("the layer exceeds the limit")
            .to_string()
    }

    #[test]
    fn each_configurable_limit_is_recognised_in_cores_refusal() {
        let d = Limits::default();
        let cases = [
            (
                Limits {
                    max_layer_bytes: 5000,
                    ..d
                },
                "max_layer_bytes",
            ),
            (
                Limits {
                    max_layer_entries: 2,
                    ..d
                },
                "max_layer_entries",
            ),
            (Limits { max_inodes: 2, ..d }, "max_inodes"),
        ];
        for (limits, key) in cases {
            let msg = refusal(limits);
            assert_eq!(exceeded_limit(&msg), Some(key), "{msg}");
        }
        assert_eq!(
            exceeded_limit("limit exceeded: 2000 xattrs on one entry (limit 1024)"),
            None
        );
    }

    fn load(text: &str) -> CmdResult<Config> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
        Config::load(dir.path().to_path_buf())
    }

    #[test]
    fn limits_table_overrides_the_defaults_key_by_key() {
        let c = load("[limits]\nmax_layer_bytes = 1048576\n").unwrap();
        let l = c.limits();
        assert_eq!(l.max_layer_bytes, 1 << 20);
        assert_eq!(l.max_layer_entries, Limits::default().max_layer_entries);
        assert_eq!(l.max_inodes, Limits::default().max_inodes);
        assert_eq!(load("").unwrap().limits(), Limits::default());
        let typo = load("[limits]\nmax_layer_byte = 1\n").err().unwrap();
        assert_eq!(typo.code, crate::exit::MALFORMED);
        assert!(typo.hint.unwrap().contains("max_layer_entries"));
        let zero = load("[limits]\nmax_inodes = 0\n").err().unwrap();
        assert!(zero.message.contains("max_inodes = 0"), "{}", zero.message);
        let negative = load("[limits]\nmax_inodes = -1\n").err().unwrap();
        assert_eq!(negative.code, crate::exit::MALFORMED);
    }
}
