//! Harness for the end-to-end tests: runs the real `ct` binary (and umoci, skopeo) with a deadline,
//! in a private temporary config/home per test, with shared read-only fixtures built once per
//! test binary, and raw tar helpers that re-assemble bundles into hostile variants.
//!
//! Every child process is killed after [`TIMEOUT`], so no test can hang. Nothing a test does
//! touches the real user's configuration: `HOME`, `XDG_CONFIG_HOME` and `CT_CONFIG_DIR` always
//! point into the test's own directory.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Longest any child process may run; a test whose command takes longer fails instead of hanging.
pub const TIMEOUT: Duration = Duration::from_secs(120);
/// The passphrase of every key the tests make (also in each env's passphrase file).
pub const PASSPHRASE: &str = "correct horse battery staple";
/// The tag `tools/make-example-image` gives the example image.
pub const TAG: &str = "busybox";

// ---------------------------------------------------------------------------------------------
// Finding things

/// The `ct` binary under test: `$CT_BIN`, else `target/<profile>/ct` next to this test binary.
pub fn ct_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let p = match std::env::var_os("CT_BIN") {
            Some(p) => PathBuf::from(p),
            None => {
                // target/<profile>/deps/<test binary> → target/<profile>/ct
                let exe = std::env::current_exe().expect("the test binary knows its path");
                exe.parent()
                    .and_then(Path::parent)
                    .expect("test binary lives in target/<profile>/deps")
                    .join("ct")
            }
        };
        assert!(
            p.is_file(),
            "the ct binary is missing at {}; run `cargo test --workspace`, which builds ct \
             (or point CT_BIN at a ct binary)",
            p.display()
        );
        p
    })
}

/// The repository root (`tests/..`). Taken from the `CARGO_MANIFEST_DIR` that `cargo test` sets
/// at run time, not the compile-time one: the target directory is shared between clones (see
/// .cargo/config.toml), and cargo may reuse a test binary another clone built, whose baked-in
/// path points into that clone.
pub fn repo_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        dir.parent().expect("tests/ has a parent").to_path_buf()
    })
}

/// A directory private to this test process, under which every fixture and test directory
/// lives. Leftovers of test processes that no longer exist (killed, or static fixtures, which
/// are never dropped) are removed the first time it is asked for.
pub fn fixture_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir().join("cerro-e2e");
        fs::create_dir_all(&base).expect("create the fixture base directory");
        if let Ok(rd) = fs::read_dir(&base) {
            for ent in rd.flatten() {
                let name = ent.file_name();
                let pid = name.to_str().and_then(|n| n.strip_prefix("pid-"));
                if let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        let _ = fs::remove_dir_all(ent.path());
                    }
                }
            }
        }
        let dir = base.join(format!("pid-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the fixture directory");
        dir
    })
}

// ---------------------------------------------------------------------------------------------
// Running processes

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command line, for messages.
    pub cmdline: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn dump(&self) -> String {
        format!(
            "command: {}\nexit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--------------",
            self.cmdline, self.code, self.stdout, self.stderr
        )
    }

    /// Assert the exit code, printing everything the command said when it differs.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.dump());
        self
    }

    /// Assert success (exit 0).
    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.assert_code(0)
    }

    /// Assert the exit code and that stderr names every one of `needles` (the cause).
    #[track_caller]
    pub fn fails(&self, code: i32, needles: &[&str]) -> &Self {
        self.assert_code(code);
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr does not mention {n:?}\n{}",
                self.dump()
            );
        }
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout does not mention {needle:?}\n{}",
            self.dump()
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr does not mention {needle:?}\n{}",
            self.dump()
        );
        self
    }

    #[track_caller]
    pub fn stdout_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle),
            "stdout should not mention {needle:?}\n{}",
            self.dump()
        );
        self
    }

    /// stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document: {e}\n{}", self.dump()))
    }

    /// For a `--json` failure: the JSON says `ok: false` with this exit code, and its error
    /// message (or for verify/explain, the report's failure message) names every needle.
    #[track_caller]
    pub fn json_fails(&self, code: i32, needles: &[&str]) -> Value {
        self.assert_code(code);
        let v = self.json();
        assert_eq!(
            v["ok"],
            Value::Bool(false),
            "ok is not false\n{}",
            self.dump()
        );
        assert_eq!(
            v["exit_code"],
            code,
            "wrong exit_code in JSON\n{}",
            self.dump()
        );
        let msg = v["error"]["message"]
            .as_str()
            .or_else(|| v["report"]["failure"]["message"].as_str())
            .unwrap_or_else(|| panic!("no error message in JSON\n{}", self.dump()));
        for n in needles {
            assert!(
                msg.contains(n),
                "JSON message does not mention {n:?}\n{}",
                self.dump()
            );
        }
        v
    }
}

/// Run `cmd` to completion with piped output, killing it after [`TIMEOUT`].
pub fn run_command(cmd: Command) -> Run {
    run_command_timeout(cmd, TIMEOUT)
}

/// Run `cmd` to completion with piped output, killing it after `timeout` (for the few commands
/// that legitimately take longer than [`TIMEOUT`], such as building a fixture with debootstrap).
pub fn run_command_timeout(cmd: Command, timeout: Duration) -> Run {
    Running::start(cmd).wait(timeout)
}

/// A child process started with piped output, whose pipes are drained while it runs.
pub struct Running {
    cmdline: String,
    child: std::process::Child,
    out: std::sync::mpsc::Receiver<Vec<u8>>,
    err: std::sync::mpsc::Receiver<Vec<u8>>,
}

/// How long a finished process's output pipes may stay open: a leftover grandchild holding
/// them (a container a broken `ct run` left) fails the test instead of hanging it.
const PIPE_GRACE: Duration = Duration::from_secs(10);

impl Running {
    /// Start `cmd` (stdin closed, stdout and stderr piped).
    pub fn start(mut cmd: Command) -> Self {
        let cmdline = format!("{cmd:?}");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        // Drain both pipes while waiting, so a chatty child never blocks on a full pipe.
        let drain = |mut r: Box<dyn Read + Send>| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = r.read_to_end(&mut v);
                let _ = tx.send(v);
            });
            rx
        };
        let out = drain(Box::new(child.stdout.take().expect("stdout piped")));
        let err = drain(Box::new(child.stderr.take().expect("stderr piped")));
        Self {
            cmdline,
            child,
            out,
            err,
        }
    }

    /// The process id (to send it a signal).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the process, killing it (and failing the test) after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Run {
        let cmdline = self.cmdline;
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("{cmdline} did not finish within {timeout:?}; it was killed");
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("waiting for {cmdline}: {e}"),
            }
        };
        let text = |rx: std::sync::mpsc::Receiver<Vec<u8>>| {
            let v = rx.recv_timeout(PIPE_GRACE).unwrap_or_else(|_| {
                panic!(
                    "{cmdline} exited ({status}) but its output stayed open for {PIPE_GRACE:?}: \
                     a process it started is still running"
                )
            });
            String::from_utf8_lossy(&v).into_owned()
        };
        let (stdout, stderr) = (text(self.out), text(self.err));
        let code = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            panic!(
                "{cmdline} was killed by signal {:?}\n--- stderr ---\n{stderr}",
                status.signal()
            )
        });
        Run {
            cmdline,
            code,
            stdout,
            stderr,
        }
    }
}

/// Run an external tool (umoci, skopeo, …) and require success.
#[track_caller]
pub fn tool(program: &str, args: &[&str]) -> Run {
    let mut c = Command::new(program);
    c.args(args);
    let r = run_command(c);
    r.ok();
    r
}

// ---------------------------------------------------------------------------------------------
// The per-test environment

/// One test's world: a temporary directory holding its config dir, home and passphrase file.
pub struct TestEnv {
    dir: tempfile::TempDir,
    /// `CT_CONFIG_DIR` for every `ct` run.
    pub config: PathBuf,
    /// Holds [`PASSPHRASE`] and a newline.
    pub pass_file: PathBuf,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("t-")
            .tempdir_in(fixture_root())
            .expect("create a test directory");
        let root = dir.path().to_path_buf();
        fs::create_dir_all(root.join("home")).unwrap();
        let pass_file = root.join("passphrase");
        fs::write(&pass_file, format!("{PASSPHRASE}\n")).unwrap();
        Self {
            config: root.join("config"),
            pass_file,
            dir,
        }
    }

    /// The test's directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the test's directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// A `ct` command with a controlled environment; change it, then `.run()`.
    pub fn cmd(&self, args: &[&str]) -> CtCmd {
        let mut env = BTreeMap::new();
        let home = self.path("home");
        env.insert("HOME".into(), home.clone().into_os_string());
        env.insert("XDG_CONFIG_HOME".into(), home.join("xdg").into_os_string());
        env.insert("CT_CONFIG_DIR".into(), self.config.clone().into_os_string());
        env.insert("CT_PASSPHRASE".into(), PASSPHRASE.into());
        env.insert("NO_COLOR".into(), "1".into());
        if let Some(p) = std::env::var_os("PATH") {
            env.insert("PATH".into(), p);
        }
        CtCmd {
            args: args.iter().map(OsString::from).collect(),
            env,
            cwd: self.root().to_path_buf(),
            user: None,
        }
    }

    /// Run `ct ARGS` in the test's directory.
    pub fn ct(&self, args: &[&str]) -> Run {
        self.cmd(args).run()
    }

    /// `ct keygen --id ID`; returns the fingerprint it reports.
    pub fn keygen(&self, id: &str) -> String {
        let v = self.ct(&["--json", "keygen", "--id", id]).ok().json();
        v["fingerprint"]
            .as_str()
            .expect("keygen --json gives a fingerprint")
            .to_string()
    }

    /// A copy of the example image layout in this test's directory, at `rel` (whose base name
    /// becomes part of the source reference, so keep it the same where bytes are compared).
    pub fn image(&self, c: Compression, rel: &str) -> PathBuf {
        let dst = self.path(rel);
        copy_dir(example_image(c), &dst);
        dst
    }

    /// `ct pack SOURCE -o OUT EXTRA…` (with the env's passphrase), asserting success; returns
    /// the pack report (`--json`).
    pub fn pack(&self, source: &str, out: &str, extra: &[&str]) -> Value {
        let mut args = vec!["--json", "pack", source, "-o", out];
        args.extend_from_slice(extra);
        self.ct(&args).ok().json()
    }

    /// Trust a public key file (`ct key import FILE`).
    pub fn trust(&self, pubkey: &Path) {
        self.ct(&["key", "import", pubkey.to_str().unwrap()]).ok();
    }

    /// Every file and directory under `dir` with its contents, for before/after comparisons.
    pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
        let mut out = BTreeMap::new();
        fn walk(base: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
            let Ok(rd) = fs::read_dir(d) else { return };
            for ent in rd.flatten() {
                let p = ent.path();
                let rel = p.strip_prefix(base).unwrap().to_path_buf();
                if p.is_dir() {
                    out.insert(rel, None);
                    walk(base, &p, out);
                } else {
                    out.insert(rel, Some(fs::read(&p).unwrap()));
                }
            }
        }
        walk(dir, dir, &mut out);
        out
    }
}

/// A `ct` invocation being prepared.
pub struct CtCmd {
    args: Vec<OsString>,
    env: BTreeMap<String, OsString>,
    cwd: PathBuf,
    /// Run as this (uid, gid) instead of the test's own user (`setpriv`).
    user: Option<(u32, u32)>,
}

impl CtCmd {
    pub fn env(mut self, k: &str, v: impl Into<OsString>) -> Self {
        self.env.insert(k.to_string(), v.into());
        self
    }
    pub fn env_remove(mut self, k: &str) -> Self {
        self.env.remove(k);
        self
    }
    /// Run as another user (uid, gid), with no supplementary groups and no capabilities.
    pub fn as_user(mut self, user: (u32, u32)) -> Self {
        self.user = Some(user);
        self
    }
    pub fn run(self) -> Run {
        self.start().wait(TIMEOUT)
    }
    /// Start `ct` without waiting for it (for tests that run several at once).
    pub fn start(self) -> Running {
        let mut c = match self.user {
            None => Command::new(ct_bin()),
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(ct_bin());
                c
            }
        };
        c.args(&self.args)
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.cwd);
        Running::start(c)
    }
    /// Run under a pseudo-terminal (util-linux `script`), so stdin, stdout and stderr are a tty.
    /// Returns what the terminal showed (stdout and stderr interleaved, CR LF line ends).
    pub fn run_on_tty(self) -> Run {
        let mut line = shell_quote(ct_bin().as_os_str().to_str().unwrap());
        for a in &self.args {
            line.push(' ');
            line.push_str(&shell_quote(a.to_str().unwrap()));
        }
        let mut c = Command::new("script");
        c.args(["-q", "-e", "-c", &line, "/dev/null"])
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.cwd);
        run_command(c)
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------------------------
// Image fixtures

/// How the example image's one layer is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    pub fn arg(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }
    /// The OCI layer media type the layout declares.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// The example busybox layout (`tools/make-example-image`), built once per test process.
/// Read-only: copy it ([`TestEnv::image`]) before changing anything.
pub fn example_image(c: Compression) -> &'static Path {
    static IMAGES: [OnceLock<PathBuf>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match c {
        Compression::Gzip => 0,
        Compression::Zstd => 1,
        Compression::None => 2,
    };
    IMAGES[slot].get_or_init(|| {
        let out = fixture_root()
            .join(format!("image-{}", c.arg()))
            .join("img");
        let script = repo_root().join("tools/make-example-image");
        tool(
            script.to_str().unwrap(),
            &["--compression", c.arg(), out.to_str().unwrap()],
        );
        out
    })
}

/// A `docker save`-style archive of the gzip example image (`busybox:1.0`), written by
/// `skopeo copy`, once per test process. Read-only.
pub fn example_docker_archive() -> &'static Path {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let dir = fixture_root().join("docker-archive");
        fs::create_dir_all(&dir).unwrap();
        let out = dir.join("busybox.tar");
        docker_archive(example_image(Compression::Gzip), &out);
        out
    })
}

/// `skopeo copy oci:LAYOUT:busybox docker-archive:OUT:busybox:1.0`.
pub fn docker_archive(layout: &Path, out: &Path) {
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{}:{TAG}", layout.display()),
            &format!("docker-archive:{}:busybox:1.0", out.display()),
        ],
    );
}

/// Copy a directory tree (regular files, directories and symlinks).
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for ent in fs::read_dir(src).unwrap() {
        let ent = ent.unwrap();
        let (s, d) = (ent.path(), dst.join(ent.file_name()));
        let ft = ent.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&s, &d);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&s).unwrap(), &d).unwrap();
        } else {
            fs::copy(&s, &d).unwrap();
        }
    }
}

/// A bundle signed by one key, packed once per test process from the gzip example image, with
/// the environment that holds (and trusts) the key. Read-only: verify it, copy it, never change it.
pub struct Signed {
    pub env: TestEnv,
    pub bundle: PathBuf,
    /// The `ct pack --json` report.
    pub pack: Value,
    pub key_id: String,
    pub fingerprint: String,
    /// The signer's public key file (`ct key export … --public`).
    pub public_key: PathBuf,
}

/// The shared signed bundle (key `alice`, source `oci:img:busybox`).
pub fn signed_bundle() -> &'static Signed {
    static SIGNED: OnceLock<Signed> = OnceLock::new();
    SIGNED.get_or_init(|| {
        let env = TestEnv::new();
        let fingerprint = env.keygen("alice");
        env.image(Compression::Gzip, "img");
        let pack = env.pack(&format!("oci:img:{TAG}"), "busybox.ctp", &[]);
        let public_key = env.path("alice.pub");
        env.ct(&["key", "export", "alice", "--public", "-o", "alice.pub"])
            .ok();
        Signed {
            bundle: env.path("busybox.ctp"),
            env,
            pack,
            key_id: "alice".into(),
            fingerprint,
            public_key,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Layout and digest helpers

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Check an Ed25519 signature over `message` with OpenSSL (`pkeyutl -verify -rawin`), an
/// implementation independent of ct's: the public key, message and signature go through files
/// in `dir`. Success prints "Signature Verified Successfully".
pub fn openssl_ed25519_verify(dir: &Path, public: &[u8], message: &[u8], sig: &[u8]) -> Run {
    let mut spki = ED25519_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(public);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        B64.encode(&spki)
    );
    let (key, msg, sigf) = (
        dir.join("ed25519.pem"),
        dir.join("ed25519.msg"),
        dir.join("ed25519.sig"),
    );
    fs::write(&key, pem).unwrap();
    fs::write(&msg, message).unwrap();
    fs::write(&sigf, sig).unwrap();
    let mut c = Command::new("openssl");
    c.args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
        .arg(&key)
        .arg("-in")
        .arg(&msg)
        .arg("-sigfile")
        .arg(&sigf);
    run_command(c)
}

/// The attestation of `kind` that `bundle`'s signed manifest names: its bytes, checked against
/// the digest the manifest gives, and its media type.
pub fn attestation(bundle: &Path, kind: &str) -> Option<(Vec<u8>, String)> {
    let entries = crate::rawtar::read(bundle);
    let m = String::from_utf8(
        entries[crate::rawtar::find(&entries, "cerro/manifest.toml")]
            .data
            .clone(),
    )
    .unwrap();
    let table = m
        .split("\n[[attestations]]\n")
        .skip(1)
        .find(|t| t.contains(&format!("kind = \"{kind}\"")))?;
    let field = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split('"').nth(1))
            .unwrap()
            .to_string()
    };
    let digest = field("digest");
    let hex = digest.trim_start_matches("sha256:");
    let body = entries[crate::rawtar::find(&entries, &format!("cerro/attestations/{hex}"))]
        .data
        .clone();
    assert_eq!(sha256(&body), digest);
    Some((body, field("media_type")))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let mut s = String::from("sha256:");
    for b in Sha256::digest(bytes) {
        write!(s, "{b:02x}").unwrap();
    }
    s
}

/// The grouped fingerprint (`SHA256:ab12:cd34:…`) of a public key file, computed here from the
/// file's base64 `public_key`, independently of ct.
pub fn fingerprint_of_public_key_file(path: &Path) -> String {
    let v: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    let raw = B64
        .decode(v["public_key"].as_str().expect("public_key field"))
        .expect("public_key is base64");
    assert_eq!(raw.len(), 32, "an Ed25519 public key is 32 bytes");
    let hex = &sha256(&raw)["sha256:".len()..];
    let groups: Vec<&str> = (0..16).map(|i| &hex[i * 4..i * 4 + 4]).collect();
    format!("SHA256:{}", groups.join(":"))
}

/// The ordinary user tests run `ct` as (created once per machine, as a system user without a
/// home or a shell; CI runs as root, which may create it): its (uid, gid).
pub fn ordinary_user() -> (u32, u32) {
    static USER: OnceLock<(u32, u32)> = OnceLock::new();
    *USER.get_or_init(|| {
        const NAME: &str = "cerro-e2e";
        // Test binaries run in parallel: one creates the user, under a lock.
        let mut c = Command::new("flock");
        c.args(["/tmp/cerro-e2e-useradd.lock", "sh", "-c"]).arg(format!(
            "id -u {NAME} >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin {NAME}"
        ));
        run_command(c).ok();
        let id = |flag: &str| -> u32 {
            let mut c = Command::new("id");
            c.args([flag, NAME]);
            run_command(c).ok().stdout.trim().parse().expect("a numeric id")
        };
        (id("-u"), id("-g"))
    })
}

/// The store object holding `path` of a rootfs, from `ct store tree --json` output: its content
/// root names the file under `STORE/objects/`.
pub fn store_object(store: &Path, tree: &Value, path: &str) -> PathBuf {
    let hex = tree["entries"]
        .as_array()
        .expect("ct store tree --json has entries")
        .iter()
        .find(|e| e["path"] == path)
        .unwrap_or_else(|| panic!("{path} is not in the tree"))["content"]
        .as_str()
        .expect("a regular file has a content root")
        .trim_start_matches("blake3:")
        .to_string();
    store.join("objects").join(&hex[..2]).join(&hex[2..])
}

/// Path of a blob in an OCI layout.
pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    layout.join("blobs/sha256").join(hex)
}

/// The image manifest (JSON) of the only image in a layout, and its digest.
pub fn layout_manifest(layout: &Path) -> (String, Value) {
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let m = serde_json::from_slice(&fs::read(blob_path(layout, &digest)).unwrap()).unwrap();
    (digest, m)
}

/// Write `bytes` as a blob of `layout`; returns its digest.
pub fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let d = sha256(bytes);
    fs::write(blob_path(layout, &d), bytes).unwrap();
    d
}

/// Replace the image manifest of the only image in `layout` by `edit(manifest)`, and point
/// `index.json` at the new manifest blob: a consistent layout whose manifest says what `edit` made
/// it say.
pub fn rewrite_layout_manifest(layout: &Path, edit: impl FnOnce(&mut Value)) {
    let (_, mut m) = layout_manifest(layout);
    edit(&mut m);
    let bytes = serde_json::to_vec(&m).unwrap();
    let digest = put_blob(layout, &bytes);
    let ip = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&ip).unwrap()).unwrap();
    index["manifests"][0]["digest"] = Value::String(digest);
    index["manifests"][0]["size"] = Value::from(bytes.len());
    fs::write(ip, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Flip one byte of a file in place (its size stays the same).
pub fn flip_byte(path: &Path, offset: u64) {
    let mut b = fs::read(path).unwrap();
    b[offset as usize] ^= 0x55;
    fs::write(path, b).unwrap();
}

/// The permission bits of a file.
pub fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The name of the bundle entry holding the blob `digest`.
pub fn blob_entry(digest: &str) -> String {
    format!(
        "blobs/sha256/{}",
        digest.strip_prefix("sha256:").expect("a sha256 digest")
    )
}

/// The layer digests of a bundle, read with `skopeo inspect` (not with ct).
pub fn skopeo_layers(bundle: &Path) -> Vec<String> {
    let r = tool(
        "skopeo",
        &["inspect", &format!("oci-archive:{}", bundle.display())],
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["Layers"]
        .as_array()
        .expect("skopeo inspect lists Layers")
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

/// True when `s` holds an ANSI SGR (colour/style) escape sequence.
pub fn has_sgr(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len()).any(|i| {
        if b[i] != 0x1b || b.get(i + 1) != Some(&b'[') {
            return false;
        }
        let rest = &b[i + 2..];
        let n = rest
            .iter()
            .take_while(|c| c.is_ascii_digit() || **c == b';')
            .count();
        rest.get(n) == Some(&b'm')
    })
}

pub mod fixtures;
pub mod forge;
pub mod hostile_store;
pub mod mount;
pub mod rawtar;
pub mod registry;
pub mod run;
pub mod tree;
