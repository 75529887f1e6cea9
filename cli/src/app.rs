//! Command-line definitions for `ct` (clap derive). Help text here is the man page: every
//! command says what it does, what it reads and writes, and how it can fail.

use crate::output::ColorChoice;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes (the same for every command):
  0 ok · 1 hash mismatch · 2 signature invalid · 3 key not trusted · 4 policy rejection
  5 required attestation missing · 10 malformed input · 11 I/O error · 12 network error
  64 usage error";

#[derive(Debug, Parser)]
#[command(
    name = "ct",
    version,
    about = "Cerro Torre: pack OCI images into signed bundles, verify them, and mount them verified",
    long_about = "Cerro Torre packs an OCI image into a signed, deterministic bundle (.ctp) that is also a valid \
oci-archive, and verifies bundles down to every blob: structure, signatures, trust and policy.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Print one machine-readable JSON document on stdout (errors too)
    #[arg(long, global = true)]
    pub json: bool,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always or never
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Configuration directory (keys, trust store, config.toml) [default: $XDG_CONFIG_HOME/cerro]
    #[arg(long, global = true, env = "CT_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Print only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The content-addressed store [default: /var/lib/cerro for root, else $XDG_DATA_HOME/cerro]
    #[arg(long, global = true, env = "CT_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create a signing key (Ed25519 by default, or post-quantum) and trust it
    #[command(after_help = KEYGEN_HELP)]
    Keygen(KeygenArgs),
    /// Manage keys and the trust store
    #[command(subcommand)]
    Key(KeyCmd),
    /// Pack an OCI image into a signed bundle
    #[command(
        after_help = "SOURCE is one of:\n  oci:DIR[:TAG]                 an OCI image layout (the image tagged TAG, or its only image)\n  \
docker-archive:FILE[:NAME:TAG] a `docker save` archive\n  \
docker://HOST/REPO[:TAG|@DIGEST] an image in a registry, pulled with the OCI distribution API (an image \
index is followed to linux/<this machine's architecture>; layers are staged in a temporary directory \
beside OUT and checked against their digests)\n\n\
The bundle is a deterministic tar that is also an oci-archive: packing the same image with the same \
key gives the same bytes. Every blob is re-hashed while it is copied; nothing is written to OUT unless \
the whole bundle was written. Registry failures exit with 12."
    )]
    Pack(PackArgs),
    /// Verify a bundle: structure, every blob digest, signatures, trust and policy
    #[command(
        after_help = "Checks, in order: the bundle layout and canonical manifest (10), the signatures (2; \
every suite: CT-SIG-01 Ed25519, CT-SIG-02 Ed25519 + ML-DSA-87 with both halves checked, CT-SIG-03 \
ML-DSA-87; an unknown suite is an invalid signature), that at least one signer is in the trust store \
and was valid for this bundle (3: a key with a validity window counts only for bundles created inside \
it), every blob's SHA-256 and size against the signed manifest (1), and the policy (4, or 5 for a \
missing attestation). The bundle is read once, in constant memory.\n\n\
The policy is --policy FILE, else default_policy from config.toml, else none (trust store only). \
--explain shows each signature and each of the policy's eight steps: which rule admitted or refused \
each signer, what each threshold counted, where the evaluation stopped.\n\n\
ostree:REPO:REF checks an OSTree commit written by `ct export --format ostree` (a deployed one, or one \
pulled from a mirror): the signed manifest and signatures in its metadata as above (2, 3, 4, 5), then \
the rootfs digest re-derived from the commit's own tree — every object checked against its OSTree \
checksum, every file's content hashed again — must equal the signed one; a difference exits 1 naming \
the first path that differs."
    )]
    Verify(VerifyArgs),
    /// Explain a bundle in plain words: package, source, layers, signers, verdict
    Explain(ExplainArgs),
    /// What changed between two bundles: layers, config, signers, files
    #[command(after_help = DIFF_HELP)]
    Diff(DiffArgs),
    /// Index the verified bundles of a directory (or of the store) for `ct search`
    #[command(after_help = INDEX_HELP)]
    Index(IndexArgs),
    /// Find indexed bundles by name, signer, fingerprint, digest, SBOM, licence or date
    #[command(after_help = SEARCH_HELP)]
    Search(SearchArgs),
    /// Write or check trust policies (policy.json v1)
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Replace or add signatures without changing any content digest (key rotation, co-signing)
    #[command(
        after_help = "Every blob is first checked against the signed manifest: content that does not match \
is never signed. Without --add-signature the bundle's signatures are replaced by the new ones; with it \
they are kept (each must still be valid) and the new ones added — in any suite, so a post-quantum \
(CT-SIG-02/03) signature can be added to a bundle signed with Ed25519. --attach FILE adds a signature \
file made elsewhere (an offline signer, another implementation) after checking it over the manifest \
(exit 2 if it does not verify); the message it signs is spec/signature.md §2. BUNDLE is rewritten \
atomically in place unless -o OUT is given. The bundle digest and every image digest stay the same.\n\n\
Keys are checked before anything is signed: a key whose validity window has ended (or not begun), or \
that would not be valid for the bundle's creation time, is refused."
    )]
    ReSign(ResignArgs),
    /// Push a bundle to an OCI registry: the image as an ordinary image, the Cerro files beside it
    #[command(after_help = PUSH_HELP)]
    Push(PushArgs),
    /// Fetch a bundle from an OCI registry, verify it, and write it as a .ctp
    #[command(after_help = FETCH_HELP)]
    Fetch(FetchArgs),
    /// Write bundles into one archive for an air-gapped site, or a bundle as an OSTree commit
    #[command(after_help = EXPORT_HELP)]
    Export(ExportArgs),
    /// Import a bundle into the store (verified first), or verify and unpack an export archive
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
    /// Inspect and maintain the content-addressed store (bundles imported with `ct import`)
    #[command(subcommand)]
    Store(StoreCmd),
    /// Mount a bundle's root filesystem read-only; every block is verified as it is read
    #[command(after_help = MOUNT_HELP)]
    Mount(MountArgs),
    /// Unmount what `ct mount` or `ct store mount` mounted (also when its daemon died)
    #[command(
        after_help = "Unmounts MOUNTPOINT and waits for its daemon to exit. A mount whose daemon died \
(\"Transport endpoint is not connected\") is cleaned up the same way. A mount in use fails with exit 11 \
and names what to do; --lazy detaches it at once (it goes away when the last user lets go). Only \
ct's own mounts are touched."
    )]
    Umount(UmountArgs),
    /// List what ct has mounted, with the state of each daemon
    #[command(
        after_help = "Status: ok (daemon serving), broken (the daemon died: `ct umount` cleans it up), \
stale (registration left behind, nothing mounted), unregistered (a Cerro mount this store does not know)."
    )]
    Mounts,
    /// Write a verified image out of the store: an OCI layout, a docker archive, or its rootfs
    #[command(after_help = UNPACK_HELP)]
    Unpack(UnpackArgs),
    /// Run a bundle's image as a container (runc, crun or podman) on its verified, mounted rootfs
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Stop containers that `ct run` started (detached or not), by name
    #[command(after_help = STOP_HELP)]
    Stop(StopArgs),
    /// Check this host: FUSE, runtimes, overlayfs, the store, keys, policy, clock — with fixes
    #[command(
        after_help = "Checks the FUSE device (`[doctor] fuse_device` in config.toml, default /dev/fuse) \
and fusermount3, runc/crun (and whether crun 1.8 can run on this host's cgroups), podman, slirp4netns \
(for `ct run -p` and --network private), overlayfs, the store \
(opens read-only, whether its lock is free, every bundle record consistent with its signed manifest; \
--quick skips that), the trust store (present, not writable by others), secret keys (0600), the default \
key, the default policy (parses) and the clock. Each problem is printed with what to do about it. \
Exit 0 when all is well, 1 when anything is wrong."
    )]
    Doctor {
        /// Skip the store's consistency check
        #[arg(long)]
        quick: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(
        after_help = "Generated from the same definitions as --help. For example:\n  \
ct completions bash > /usr/local/share/bash-completion/completions/ct\n  \
ct completions zsh > /usr/local/share/zsh/site-functions/_ct\n  \
ct completions fish > ~/.config/fish/completions/ct.fish\n\
tools/quickstart installs them (and the man pages) beside ct."
    )]
    Completions(CompletionsArgs),
    #[command(name = "__mount-daemon", hide = true)]
    MountDaemon(DaemonArgs),
    /// Write the man pages (ct.1, ct-mount.1, …) into DIR
    #[command(name = "__man", hide = true)]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Where to write them (made if absent)
    pub dir: std::path::PathBuf,
}

const UNPACK_HELP: &str = "\
BUNDLE is a .ctp file (verified and imported first, as `ct mount` does, and then written by its own \
digest), a bundle name in the store, or a bundle digest (sha256:HEX); the store record is verified \
(bound to its digest, signatures, trust, policy) before anything is written. oci: an OCI layout with \
the signed blobs, each re-hashed as it is copied, and cerro/ with the manifest and signatures. docker: \
a `docker save` archive at OUT. rootfs: the merged tree, every block verified; what could not be \
preserved with this process's privileges is listed. A mismatch exits 1 and leaves no output.

The output is staged beside OUT in a new private entry with an unpredictable name and written through \
directory descriptors, so no symbolic link (planted in advance or raced in) is ever followed, even when \
other users can write to OUT's directory. An existing OUT that is not an empty directory is refused \
unless --force, which swaps the new output in with one atomic exchange (OUT always names a whole \
output, old or new) and then removes the old.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnpackFormat {
    Oci,
    Docker,
    Rootfs,
}

/// The bundle a command reads from the store, as `ct mount`, `ct unpack` and `ct run` take it.
#[derive(Debug, Args)]
pub struct BundleSource {
    /// A bundle file (.ctp), the name of a bundle in the store, or a bundle digest (sha256:HEX)
    #[arg(value_name = "BUNDLE|NAME")]
    pub bundle: String,
    /// Store an imported bundle under this name [default: its package name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Evaluate this policy.json [default: default_policy from config.toml]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UnpackArgs {
    #[command(flatten)]
    pub source: BundleSource,
    /// Where to write (a directory; a file for --format docker)
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    #[arg(long, value_enum, default_value = "oci")]
    pub format: UnpackFormat,
    /// Replace an existing output
    #[arg(long)]
    pub force: bool,
}

const MOUNT_HELP: &str = "\
BUNDLE is a .ctp file, the name of a bundle in the store, or a bundle digest (sha256:HEX). A file is \
verified exactly as `ct verify` does (same exit codes), imported into the store if the store lacks it \
(`ct import`; a name that holds a newer version stays where it is), and then served by its own digest: \
exactly that bundle, whatever any name says. A name is resolved to a digest once, and the output says \
which digest and version is served. Either way the store's record of that digest is verified before \
anything is mounted, as if it were a bundle file: it must be stored under the digest of the manifest it \
holds, its signatures must verify with a signer in the trust store now, the policy (--policy, else \
default_policy from config.toml) must admit it, and its root record must match the signed rootfs \
digest (spec/store.md). The mount daemon is told the digest, checks all of it again, and serves \
nothing else.

The mount is read-only and lazy: it starts from the signed root record, checks each directory node \
against its digest the first time it is looked up, and each 64 KiB block of a file against the file's \
BLAKE3 root (through its Merkle outboard) before the kernel sees a byte of it. A block that fails is \
never served: the read fails with EIO and the failure is logged with bundle, path and block (then \
`ct store fsck` names the damaged object). Writes fail with EROFS. The kernel enforces the image's \
modes and owners (default_permissions); --allow-other lets other users in, within those modes.

ct mount returns once the mount answers; the daemon keeps serving it in the background, logging to \
STORE/log/mount-ID.log. --foreground keeps it attached (Ctrl-C unmounts). MOUNTPOINT is created if \
missing. End it with `ct umount MOUNTPOINT`; `ct mounts` lists mounts.";

#[derive(Debug, Args)]
pub struct MountArgs {
    #[command(flatten)]
    pub source: BundleSource,
    /// Where to mount it (created if missing)
    pub mountpoint: PathBuf,
    /// Stay attached to the terminal and log there; Ctrl-C unmounts
    #[arg(long)]
    pub foreground: bool,
    /// Let other users reach the mount (the image's modes and owners still apply)
    #[arg(long)]
    pub allow_other: bool,
    /// Threads serving requests [default: twice the cores, 4 to 16]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(usize))]
    pub threads: Option<usize>,
}

const RUN_HELP: &str = "\
Verifies BUNDLE (a .ctp is verified and imported; a name's store record is checked: signatures, trust, \
policy — the exit codes of `ct verify`, and nothing is mounted when that fails), mounts its rootfs with \
every block verified, puts a writable overlay on top (a tmpfs upper layer, nosuid,nodev) and runs the \
image's Entrypoint and Cmd (ARGS after -- replace Cmd, as with `docker run`) with its Env, WorkingDir and \
User. Writes land in the overlay and go with the container; nothing reaches the store. Every mount ct \
run makes lives in a private mount namespace, staged in a new 0700 directory under /run/cerro/run \
(CT_RUN_DIR overrides it; it must be a root-owned directory nobody else can write): other users on the \
host see none of it. The exit status is the container's.

Without root, ct run is rootless: it enters a user namespace of its own, where the user is root, and \
mounts and runs there (the user's store; the overlay with userxattr; runc only, its state with the rest \
under $XDG_RUNTIME_DIR/cerro/run, which CT_RUN_DIR overrides and which must be the user's, writable by \
nobody else). With a range for the user in /etc/subuid and /etc/subgid and newuidmap/newgidmap \
(uidmap) installed, ids 1 and up map to that range; otherwise only 0 (the user) exists, a note says \
so, files of other owners show as nobody and --user must be 0. There are no cgroup limits (no pids \
limit); --privileged and -p with a host port below net.ipv4.ip_unprivileged_port_start are refused \
(64).

Defaults, the same on every runtime (podman's, for a root container): the capabilities CHOWN, \
DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT; \
/proc, a tmpfs /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and /sys/fs/cgroup read-only, with podman's \
masked and read-only paths under /proc and /sys; no_new_privileges off (the image's setuid programs \
work); at most 2048 processes; ct's own open-file and process limits (podman's defaults raise them, \
which fails where root lacks CAP_SYS_RESOURCE); /etc/hosts and /etc/hostname (and /etc/resolv.conf \
with a network) made for the container.

--cap-add CAP grants one more capability (e.g. NET_ADMIN, SYS_PTRACE; ALL grants every one), \
--cap-drop CAP takes one away (ALL takes all). --privileged grants every capability, unmasks the \
/proc and /sys paths, makes /sys and the cgroups writable and lets the container use any device node \
(with runc and crun no host device is added — bind one with -v; podman's --privileged also adds the \
host's devices). Give them only to images you trust with the host.

--network none, the default without -p: its own network namespace with loopback only — the container \
reaches nothing and nothing reaches it, the safe default for a signed image run to compute or inspect. \
private, the default with -p: its own namespace with a user-space network (slirp4netns; with podman, \
podman's slirp4netns mode): outbound connections and published ports, never the host's loopback \
services. host: the host's network, no isolation. -p [ADDR:]HOSTPORT:CONTAINERPORT[/tcp|/udp] publishes \
a container port on the host at ADDR, 127.0.0.1 unless given (0.0.0.0 for every interface).

-e KEY=VALUE (or -e KEY for its value in ct's environment) and --env-file FILE (KEY=VALUE lines, # \
comments) add to the image's Env; later ones win. -v HOST:CONTAINER[:ro|:rw] bind-mounts HOST (which \
must exist) at CONTAINER, on the overlay — never into the verified layer. -w sets the working directory, \
--hostname the host name [default: the container's name].

-d (--detach) runs the container in the background: ct run prints its name once it started and \
returns; the container's output (and ct's) goes to RUN_DIR/logs/NAME.log (RUN_DIR: CT_RUN_DIR, else \
/run/cerro/run as root and $XDG_RUNTIME_DIR/cerro/run for other users). \
`ct stop NAME` stops it: SIGTERM, SIGKILL after 10 s, and waits until its mounts, namespaces and \
processes are gone. Names are unique among running containers [default: cerro-BUNDLE-PID]. Ctrl-C or \
SIGTERM to a foreground ct run stop it the same way.

The runtime is --runtime, else [run] runtime in config.toml, else the first of runc, crun, podman that \
works (crun 1.8 cannot run on hosts with hybrid cgroups; `ct doctor` says which this is). runc and crun \
get a runtime bundle written by ct; podman gets the same settings as `podman run --rm --rootfs` options.";

const STOP_HELP: &str = "\
Sends SIGTERM to each named container (through the `ct run` that supervises it, which passes it to the \
runtime), SIGKILL if it is still running 10 s later, and waits until ct run has taken down its mounts, \
network and runtime state (at most 30 s). Names are those `ct run -d` printed or --name gave. A name \
that is not running exits 64.";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A bundle file (.ctp), or the name of a bundle in the store
    #[arg(value_name = "BUNDLE|NAME")]
    pub bundle: String,
    /// Store an imported bundle under this name [default: its package name]
    #[arg(long, value_name = "NAME")]
    pub import_as: Option<String>,
    /// Evaluate this policy.json [default: default_policy from config.toml]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// runc, crun or podman [default: [run] runtime in config.toml, else the first that works]
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Skip the policy (signatures and trust are still checked against the trust store, and
    /// every block is still verified when read)
    #[arg(long)]
    pub no_verify: bool,
    /// Run as UID[:GID] (numbers, or names from the image's /etc/passwd and /etc/group)
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Run in the background; output to RUN_DIR/logs/NAME.log; `ct stop NAME` ends it
    #[arg(short, long)]
    pub detach: bool,
    /// The container's name, unique among running ones [default: cerro-BUNDLE-PID]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// none (loopback only), private (own user-space network) or host [default: none; private with -p]
    #[arg(long, value_enum, value_name = "MODE")]
    pub network: Option<Network>,
    /// Publish a container port on the host: [ADDR:]HOSTPORT:CONTAINERPORT[/tcp|/udp] (ADDR 127.0.0.1)
    #[arg(short, long, value_name = "PORTS")]
    pub publish: Vec<String>,
    /// Set an environment variable: KEY=VALUE, or KEY for its value here
    #[arg(short, long, value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from FILE (KEY=VALUE lines; # comments)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Bind-mount a host path into the container: HOST:CONTAINER[:ro|:rw]
    #[arg(short, long, value_name = "HOST:CONTAINER[:ro]")]
    pub volume: Vec<String>,
    /// The working directory in the container [default: the image's WorkingDir, else /]
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// The container's host name [default: its name]
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Grant a capability beyond the defaults (e.g. NET_ADMIN; ALL for every one)
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Take a capability from the defaults (e.g. CHOWN; ALL for every one)
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Every capability, no masked paths, writable /sys, any device node (see below)
    #[arg(long)]
    pub privileged: bool,
    /// Set by `ct run -d` for the process it starts in the background (not for people)
    #[arg(long, hide = true)]
    pub detached_child: bool,
    /// The command to run instead of the image's Cmd (after --)
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

impl RunArgs {
    /// The bundle, as the commands that read one from the store take it.
    pub fn source(&self) -> BundleSource {
        BundleSource {
            bundle: self.bundle.clone(),
            name: self.import_as.clone(),
            policy: self.policy.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Names of running containers
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StoreMountArgs {
    /// Where to mount the store (created if missing)
    pub mountpoint: PathBuf,
    /// Evaluate this policy.json for every bundle [default: default_policy from config.toml]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Stay attached to the terminal and log there; Ctrl-C unmounts
    #[arg(long)]
    pub foreground: bool,
    /// Let other users reach the mount (the images' modes and owners still apply)
    #[arg(long)]
    pub allow_other: bool,
    /// Threads serving requests [default: twice the cores, 4 to 16]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct UmountArgs {
    /// The mount point
    pub mountpoint: PathBuf,
    /// Detach now even if the mount is in use (it goes away when its last user lets go)
    #[arg(long)]
    pub lazy: bool,
}

/// Arguments of the detached daemon (`ct mount` passes them; not for people).
#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// The bundle digest to serve (kind bundle): the daemon refuses anything else.
    #[arg(long)]
    pub digest: Option<cerro_core::Sha256Digest>,
    /// How to label it in logs and /proc/mounts.
    #[arg(long)]
    pub label: Option<String>,
    #[arg(long)]
    pub mountpoint: PathBuf,
    #[arg(long)]
    pub allow_other: bool,
    #[arg(long)]
    pub suid: bool,
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Set by a supervisor for the serving process it starts (its pid): the process talks to
    /// it over the socket on its stdin (connection, INIT handshake, inode numbering).
    #[arg(long)]
    pub supervisor: Option<u32>,
    /// … and have the kernel re-send what a dead predecessor had read.
    #[arg(long, requires = "supervisor")]
    pub resend: bool,
}

#[derive(Debug, Subcommand)]
pub enum StoreCmd {
    /// List the bundles in the store
    Ls,
    /// Show one bundle: digests, signers, layers, rootfs, and whether its record checks out
    Info {
        /// A name in the store, or a bundle digest (sha256:HEX)
        #[arg(value_name = "NAME|DIGEST")]
        bundle: String,
    },
    /// Remove a name from the store (the bundle stays, by digest, until `ct store gc`)
    Rm { name: String },
    /// Remove every record, blob, file object and database node nothing references
    #[command(
        after_help = "What is kept: every bundle a name refers to, and every bundle a live reader holds \
a lease on (mount daemons, `ct run`, `ct unpack`, `ct store tree` take theirs before they resolve \
what they read, so gc never pulls content from under them). Everything else goes: the records of \
bundles no name refers to any more (older versions a name moved away from, names removed with \
`ct store rm`), and every blob, file object, directory node and outboard only they used. Takes the \
store's exclusive lock (waits for running imports). If anything a kept bundle depends on cannot be \
read, nothing is removed: run `ct store fsck --repair` first."
    )]
    Gc,
    /// Re-hash everything and check every binding; report each problem (exit 1 if any)
    #[command(
        after_help = "Bindings: every name must be a valid name that refers to a record the store has; \
every record must be stored under the digest of the manifest it holds, its root record must hash to \
the signed rootfs digest, and its signatures must verify (whether a signer is trusted is checked each \
time a bundle is served, not here). Content: every blob is re-hashed with SHA-256, every file object \
with BLAKE3 and its Merkle outboard recomputed, every directory node checked against its digest; \
objects must be regular files (no links, FIFOs or devices) of the signed size. Problems are reported \
by bundle and path. --repair removes what is corrupt (objects, nodes, records, names) and names the \
bundles that must be imported again; with --from BUNDLE.ctp (repeatable) it then imports those \
bundles, each verified as `ct import` does, which puts back every damaged part they contain."
    )]
    Fsck {
        /// Remove what is corrupt (takes the exclusive lock)
        #[arg(long)]
        repair: bool,
        /// With --repair: then import this bundle file to put back what it contains (repeatable)
        #[arg(long, value_name = "BUNDLE.ctp", requires = "repair")]
        from: Vec<PathBuf>,
        /// Evaluate this policy.json for the --from bundles [default: default_policy]
        #[arg(long, value_name = "FILE", requires = "from")]
        policy: Option<PathBuf>,
    },
    /// Logical size, stored size and the saving from deduplication
    Du,
    /// Mount the whole store read-only: bundles/NAME/{rootfs,manifest.toml,signatures}, by-digest/
    #[command(
        after_help = "For immutable-OS hosts that browse every verified image. Each bundle's record is \
checked as `ct mount NAME` checks it (signatures, trust, policy, root record); a bundle that fails is \
left out and named in the log. Every directory node and file block below bundles/NAME/rootfs/ is \
verified when read, exactly as in `ct mount`; manifest.toml and signatures/KEY.sig are the signed bytes \
themselves; by-digest/HEX links to bundles/NAME by bundle digest. The view is the store as it was at \
mount time. Same life cycle as `ct mount`: `ct umount MOUNTPOINT` ends it."
    )]
    Mount(StoreMountArgs),
    /// List every entry of a bundle's root filesystem, verified as it is walked
    #[command(after_help = STORE_TREE_HELP)]
    Tree {
        /// The bundle's name in the store (see `ct store ls`), or its digest (sha256:HEX)
        #[arg(value_name = "NAME|DIGEST")]
        name: String,
        /// Evaluate this policy.json [default: default_policy from config.toml]
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
}

const STORE_TREE_HELP: &str = "\
Walks the root filesystem that `ct import` recorded for NAME. The store record is verified first, as \
`ct mount NAME` verifies it (bound to its digest, signatures, trust, policy: same exit codes as \
`ct verify`), its root record is checked against the signed manifest's rootfs digest, and every \
directory node against the digest its parent names, before any entry of it is shown. A missing or corrupt node stops the walk with exit 1, naming the path. File \
contents are not re-hashed here (`ct store fsck` does that); each file's content hash is the signed \
one.

One line per entry, the root first, then sorted by path bytes: type and permissions, link count, \
uid, gid, size (or major,minor for a device), modification time (UTC), path, `-> target` for a \
symbolic link, and `[xattrs: NAME…]` when it has extended attributes.

With --json: {\"ok\", \"name\", \"rootfs\", \"entries\": [...]}, each entry with path, type (file, dir, \
symlink, char, block, fifo), mode (permission bits, as a number), uid, gid, mtime (seconds) and \
mtime_nsec, nlink (for a directory: 2 plus its subdirectories), and as they apply: size and content \
(blake3:HEX, what b3sum prints) for a file, link_group (shared by the paths of one hard-linked \
inode), target for a symlink, rdev {major, minor} for a device, xattrs {NAME: hex value}. Paths, \
targets and xattr names that are not plain UTF-8 are written with each byte outside a valid UTF-8 \
sequence (and any control character) as \\xNN, and a backslash as \\\\.";

const PUSH_HELP: &str = "\
DESTINATION is [docker://]HOST[:PORT]/REPO[:TAG] (TAG defaults to latest).

What is pushed: the image exactly as signed — its layers, config and manifest, unchanged, so skopeo, \
podman and crane see an ordinary image under REPO:TAG — and the Cerro files (signed manifest, summary, \
signatures, attestations) as an OCI artifact whose subject is that image (artifactType \
application/vnd.cerro-torre.bundle.v1). Registries with the OCI 1.1 referrers API list it there; every \
registry also gets the tag sha256-<image digest hex>.ctp pointing to it. `ct fetch` finds it either way.

Before anything is sent, the signed manifest is parsed and every signature must verify (exit 2; the \
trust store is not consulted). Blobs the registry already has are not sent again (HEAD first; a \
cross-repository mount is tried when the bundle was packed from the same registry); blobs over 16 MiB \
go in 64 MiB chunks that resume from the registry's offset after a failure; --jobs blobs go at once. The \
registry checks every blob's digest: a damaged bundle is refused there (exit 1).

Registries: anonymous, basic or bearer-token authentication, with credentials from --creds, --authfile, \
$REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json or \
~/.docker/config.json. https is used unless --tls-verify=false (which also allows plain http, as for \
loopback addresses). 429 and 5xx answers and dropped connections are retried with back-off (4 \
attempts); anything else exits with 12, naming the registry, the request and the HTTP status.";

const FETCH_HELP: &str = "\
IMAGE is [docker://]HOST[:PORT]/REPO[:TAG|@sha256:DIGEST] (TAG defaults to latest).

ct finds the Cerro artifact that refers to the image (the OCI referrers API, else the tag \
sha256-<image digest hex>.ctp), checks its signatures against your trust store before downloading \
the layers (exit 2 or 3), downloads everything — every blob is checked against its digest while it \
streams, in constant memory, blobs staged beside OUT — and reassembles the bundle with the same \
deterministic writer as `ct pack`, so OUT is byte for byte the bundle that was pushed. The bundle is \
then verified exactly as `ct verify` does (same report, same exit codes; --policy, else default_policy \
from config.toml), while it is written. OUT is only written (atomically) when it verifies: on any \
failure nothing is left behind.

With --create, IMAGE is any image (no Cerro artifact needed): it is pulled and packed and signed with \
-k KEY, exactly as `ct pack docker://IMAGE -o OUT`.

A blob whose bytes do not match its digest exits with 1; network and HTTP failures (an unreachable \
registry, 401 without valid credentials, 5xx after 4 attempts) exit with 12 and name the registry and \
the HTTP status. Authentication and TLS options are those of `ct push`.";

const EXPORT_HELP: &str = "\
Writes OUT (a tar, format cerro-torre/export/v1, specified in spec/export.md): an index \
cerro-export.json, each bundle's signed manifest and signatures under bundles/<bundle digest hex>/, and \
one pool blobs/sha256/<hex> in which a blob shared by several bundles (a common base layer) is stored \
once. With --include-keys the trust store's public keys of the bundles' trusted signers go under keys/; \
with --policy the policy goes in as policy.json. The archive is deterministic: the same bundles, keys \
and policy give the same bytes, in any argument order.

Every bundle is first verified exactly as `ct verify` does (with --policy when given); if one fails, \
its report is printed, the command exits with its code, and OUT is not written. OUT is written \
atomically. Nothing here touches the network. Carry OUT to the other site and run `ct import OUT -o DIR` \
there.

With --format ostree, writes one bundle (a file, verified and imported first, or a name in the store) \
as a commit in REPO: every directory and every block of every file comes through the store's verified \
walk, so a damaged store object stops the export (exit 1) and no ref is written. Objects already in \
REPO are not written again. The commit is deterministic — timestamp from the signed `created`, no \
parent unless --parent — and its metadata carries `version`, the bundle digest (cerro.bundle), the \
signed rootfs digest (cerro.rootfs), the signed manifest and its signatures, and the signed tree \
(cerro.tree: what OSTree cannot hold, such as mtimes, hard links, devices and FIFOs, which are left \
out of the commit's tree). `ct verify ostree:REPO:REF` checks a commit against all of it. With -k KEY \
the commit is also signed as OSTree signs with Ed25519; a host accepts it with `sign-verify=ed25519` \
and `verification-ed25519-key=` the base64 public key ct prints.";

const IMPORT_HELP: &str = "\
Reads an archive written by `ct export`. Every bundle is reassembled in a temporary directory inside \
DIR and verified exactly as `ct verify` does, against this machine's trust store — plus the archive's \
keys/ only with --trust-included-keys (check their fingerprints with the sender first) — and the policy \
given by --policy, else the archive's policy.json with --use-included-policy, else default_policy from \
config.toml. The archive's policy never silently replaces this machine's default_policy: with one \
configured, --use-included-policy also needs --replace-default-policy. Only when every bundle verifies are they written into DIR, byte for byte the bundles that \
were exported; if any fails, nothing is written and the exit code is that bundle's. A file already in \
DIR with other content is an error unless --force.

Without -o, the bundles go into the store: all of them are verified first, exactly as above, and only \
then imported one by one (each import is all or nothing; if one fails for an I/O reason, those imported \
before it stay). A single bundle (BUNDLE.ctp) is verified and imported into the store, under its package \
name or --name. Nothing here touches the network.";

/// How to reach registries (the flags skopeo and podman use).
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Registry credentials, instead of the auth files. Visible to every local user in the
    /// process list (`ps`) while ct runs: prefer --authfile (as written by `podman login`)
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// Auth file to read credentials from (containers auth.json or docker config.json format)
    /// [default: $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json,
    /// ~/.config/containers/auth.json, ~/.docker/config.json]
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Require https with a valid certificate; --tls-verify=false accepts any certificate and
    /// allows plain http (loopback registries may always use plain http)
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// Extra CA certificates (*.crt, added to the system's) and a client certificate (NAME.cert
    /// with NAME.key) for the registry, as in /etc/containers/certs.d/HOST/
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Blobs transferred at once
    #[arg(long, value_name = "N", default_value_t = DEFAULT_JOBS,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub jobs: u16,
}

/// Blobs transferred at once (push and fetch).
pub const DEFAULT_JOBS: u16 = 3;

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The bundle (.ctp) to push
    pub bundle: PathBuf,
    /// Where: [docker://]HOST[:PORT]/REPO[:TAG]
    #[arg(value_name = "DESTINATION")]
    pub destination: String,
    #[command(flatten, next_help_heading = "Registry access")]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The image: [docker://]HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]
    pub image: String,
    /// Where to write the bundle
    #[arg(short, long, value_name = "OUT.ctp")]
    pub output: PathBuf,
    /// Evaluate this policy.json [default: default_policy from config.toml]
    #[arg(long, value_name = "FILE", conflicts_with = "create")]
    pub policy: Option<PathBuf>,
    /// Replace OUT if it exists
    #[arg(long)]
    pub force: bool,
    /// Pull a plain image (no Cerro artifact needed) and pack it, as `ct pack docker://IMAGE`
    #[arg(long)]
    pub create: bool,
    /// With --create: sign with this key (repeat for several) [default: default_key]
    #[arg(short, long = "key", value_name = "KEY", requires = "create")]
    pub keys: Vec<String>,
    /// With --create: package name [default: the repository's last component]
    #[arg(long, requires = "create")]
    pub name: Option<String>,
    /// With --create: package version [default: the image's org.opencontainers.image.version label]
    #[arg(long = "version", value_name = "VERSION", requires = "create")]
    pub version: Option<String>,
    #[command(flatten)]
    pub passphrase: PassphraseArg,
    #[command(flatten, next_help_heading = "Registry access")]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The bundles (.ctp) to export; with --format ostree, one bundle file or store name
    #[arg(required = true, value_name = "BUNDLE")]
    pub bundles: Vec<PathBuf>,
    /// What to write: an archive for an air-gapped site, or an OSTree commit
    #[arg(long, value_enum, default_value = "archive")]
    pub format: ExportFormat,
    /// Where to write the archive (--format archive)
    #[arg(short, long, value_name = "OUT.tar")]
    pub output: Option<PathBuf>,
    /// Include the trust store's public keys of the bundles' trusted signers (keys/)
    #[arg(long)]
    pub include_keys: bool,
    /// Include this policy.json (and verify every bundle against it first); with --format
    /// ostree, evaluate it instead of default_policy from config.toml
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Replace OUT if it exists
    #[arg(long)]
    pub force: bool,
    /// The OSTree repository to write into (created, with its config, when absent)
    #[arg(long, value_name = "REPO", help_heading = "OSTree (--format ostree)")]
    pub repo: Option<PathBuf>,
    /// The ref to point at the commit [default: cerro/NAME, NAME the bundle's package name]
    #[arg(long, value_name = "REF", help_heading = "OSTree (--format ostree)")]
    pub branch: Option<String>,
    /// The repository mode when it is created [default: archive]; an existing repository keeps
    /// its own, and naming another mode for it is refused
    #[arg(long, value_enum, help_heading = "OSTree (--format ostree)")]
    pub mode: Option<OstreeMode>,
    /// The commit's parent (a checksum) [default: none, so the same bundle always gives the
    /// same commit]
    #[arg(long, value_name = "COMMIT", help_heading = "OSTree (--format ostree)")]
    pub parent: Option<String>,
    /// Leave device nodes and FIFOs out of the commit (OSTree holds neither) instead of
    /// refusing the bundle (exit 10); they are listed on stderr, named in the commit's
    /// cerro.skipped metadata, and kept in its signed tree, so `ct verify ostree:` still
    /// accounts for them
    #[arg(long, help_heading = "OSTree (--format ostree)")]
    pub skip_special: bool,
    /// Also sign the commit with this Ed25519 (or hybrid) key, as OSTree's ed25519 signing
    /// does (ostree.sign.ed25519 in the detached metadata)
    #[arg(
        short,
        long = "key",
        value_name = "KEY",
        help_heading = "OSTree (--format ostree)"
    )]
    pub key: Option<String>,
    #[command(flatten)]
    pub passphrase: PassphraseArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One deterministic tar of bundles for an air-gapped site (spec/export.md)
    Archive,
    /// A commit in an OSTree repository, for hosts that deploy OSTree commits
    Ostree,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OstreeMode {
    /// archive-z2: compressed objects, for serving over HTTP (ostree pull)
    Archive,
    /// bare-user: plain files with owner and mode in an xattr, for checkouts by any user
    BareUser,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A bundle (.ctp) to import into the store, or an archive written by `ct export`
    #[arg(value_name = "BUNDLE|ARCHIVE")]
    pub archive: PathBuf,
    /// Store the bundle under this name [default: the package name in its manifest]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Write the verified bundles (.ctp) into DIR (created if needed)
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Evaluate this policy.json [default: the archive's with --use-included-policy, else
    /// default_policy from config.toml]
    #[arg(long, value_name = "FILE", conflicts_with = "use_included_policy")]
    pub policy: Option<PathBuf>,
    /// Also trust the public keys the archive carries (keys/), for this import only
    #[arg(long)]
    pub trust_included_keys: bool,
    /// Evaluate the policy the archive carries (policy.json). Refused when config.toml names a
    /// default_policy, unless --replace-default-policy says to use the archive's instead
    #[arg(long)]
    pub use_included_policy: bool,
    /// With --use-included-policy: evaluate the archive's policy instead of config.toml's
    /// default_policy (for this import only)
    #[arg(long, requires = "use_included_policy")]
    pub replace_default_policy: bool,
    /// Move a name to a bundle even when its signed creation time is older than the bundle
    /// the name refers to now (by default that is refused with exit 4: a rollback)
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Replace files in DIR that have other content
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ResignArgs {
    /// The bundle (.ctp) to re-sign
    pub bundle: PathBuf,
    /// Sign with this key (repeat for several) [default: default_key from config.toml, unless
    /// --attach is given]
    #[arg(short, long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    /// Keep the existing signatures and add the new ones
    #[arg(long)]
    pub add_signature: bool,
    /// Add this signature file (cerro-torre/signature/v1, any suite), made elsewhere, after
    /// checking it over the manifest (repeatable; implies --add-signature)
    #[arg(long, value_name = "FILE.sig")]
    pub attach: Vec<PathBuf>,
    /// Write the re-signed bundle here instead of rewriting BUNDLE
    #[arg(short, long, value_name = "OUT.ctp")]
    pub output: Option<PathBuf>,
    /// Replace OUT if it exists
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArg,
}

#[derive(Debug, Args)]
pub struct PassphraseArg {
    /// Read the key's passphrase from FILE (a trailing newline is ignored)
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

const KEYGEN_HELP: &str = "\
Suites: CT-SIG-01 Ed25519 (the default; 32-byte public key, 64-byte signatures); CT-SIG-02 hybrid \
Ed25519 + ML-DSA-87 (FIPS 204): both signatures over the same message, valid only when both verify — \
for bundles that must stay trustworthy once quantum computers can forge Ed25519 (2624-byte public key, \
4691-byte signatures); CT-SIG-03 ML-DSA-87 alone (2592 / 4627 bytes). Every suite signs \
deterministically: the same image and key always give the same bundle.

The secret key is written to CONFIG/keys/NAME.key (mode 0600): its seed, encrypted with the passphrase \
through Argon2id and XChaCha20-Poly1305; the public key goes to the trust store as CONFIG/trust/NAME.pub. \
The first key becomes the default signing key. The fingerprint is the SHA-256 of the raw public key \
(for CT-SIG-02, of the Ed25519 key followed by the ML-DSA-87 key).

--expires limits the key's validity: its signatures count only for bundles created before then \
(verifiers refuse the others with exit 3, naming the window), and ct refuses to sign with it afterwards; \
`ct doctor` warns 30 days ahead, and `ct key rotate NAME` makes its successor. WHEN is a date \
(2027-06-30, or an RFC 3339 date-time) or a duration from now (90d, 12w, 2y).

The passphrase comes from --passphrase-file, else CT_PASSPHRASE, else a prompt on the terminal.";

/// A signature suite id, as `--suite` takes it.
pub fn parse_suite(s: &str) -> Result<cerro_core::sign::Suite, String> {
    cerro_core::sign::Suite::from_id(&s.to_ascii_uppercase()).ok_or_else(|| {
        format!(
            "unknown suite {s:?}; choose CT-SIG-01 (Ed25519), CT-SIG-02 (hybrid Ed25519 + \
             ML-DSA-87) or CT-SIG-03 (ML-DSA-87)"
        )
    })
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Name of the key (1-64 of A-Z a-z 0-9 . _ -)
    #[arg(long, value_name = "NAME")]
    pub id: String,
    /// Signature suite: CT-SIG-01 (Ed25519), CT-SIG-02 (hybrid Ed25519 + ML-DSA-87) or
    /// CT-SIG-03 (ML-DSA-87)
    #[arg(long, value_name = "SUITE", default_value = "CT-SIG-01", value_parser = parse_suite)]
    pub suite: cerro_core::sign::Suite,
    /// The key's signatures count only for bundles created before WHEN (a date, or a duration
    /// from now such as 90d, 12w, 2y)
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
    /// The key's signatures count only for bundles created at or after DATE
    #[arg(long, value_name = "DATE")]
    pub not_before: Option<String>,
    #[command(flatten)]
    pub passphrase: PassphraseArg,
}

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// List keys: trusted public keys and the secret keys you hold
    List,
    /// Trust a public key file (check its fingerprint with its owner first)
    Import {
        /// A public key file, as written by `ct key export NAME --public`
        file: PathBuf,
        /// Store it under this name instead of the key id in the file
        #[arg(long, value_name = "NAME")]
        id: Option<String>,
    },
    /// Write a key's public half (to stdout, or -o FILE)
    Export {
        name: String,
        /// Export the public key (the only kind that can be exported)
        #[arg(long)]
        public: bool,
        /// Write to FILE instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Make NAME the default signing key for `ct pack`
    Default { name: String },
    /// Make a successor for key NAME: a new key of the same suite (unless --suite), trusted, and
    /// the default signing key if NAME was
    #[command(after_help = ROTATE_HELP)]
    Rotate(RotateArgs),
    /// Stop trusting NAME (its secret key, if you hold it, is kept unless --delete-secret)
    Remove {
        name: String,
        /// Also delete the secret key file (this cannot be undone)
        #[arg(long)]
        delete_secret: bool,
    },
}

const ROTATE_HELP: &str = "\
The successor is named --id, else NAME with its trailing number raised (release-2 after release-1, \
alice-2 after alice). It gets the suite of NAME unless --suite says otherwise (rotating is the moment \
to move to CT-SIG-02), the validity given by --expires (none by default), and a passphrase like \
`ct keygen` asks for. With --expire-old WHEN, NAME's own window is closed at WHEN in this \
configuration (secret key and trust store): its signatures stop counting for bundles created from \
then on, and ct stops signing with it.

Nothing else changes by itself: bundles signed by NAME still verify. The command prints what to do \
next — give the new public key to verifiers (`ct key export NEW --public`), co-sign existing bundles \
(`ct re-sign BUNDLE -k NEW --add-signature`), admit it in policies (`ct policy add-signer NEW`), and \
when NAME must no longer count, deny it (`ct policy deny NAME --after DATE`).";

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The key to succeed (a secret key you hold)
    pub name: String,
    /// Name of the new key [default: NAME with its trailing number raised]
    #[arg(long, value_name = "NEW")]
    pub id: Option<String>,
    /// Suite of the new key [default: NAME's]
    #[arg(long, value_name = "SUITE", value_parser = parse_suite)]
    pub suite: Option<cerro_core::sign::Suite>,
    /// The new key's signatures count only for bundles created before WHEN (date or duration)
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
    /// Close NAME's validity window at WHEN (a date, a duration from now, or "now")
    #[arg(long, value_name = "WHEN")]
    pub expire_old: Option<String>,
    #[command(flatten)]
    pub passphrase: PassphraseArg,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The image to pack: oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG] or docker://HOST/REPO[:TAG]
    pub source: String,
    /// Where to write the bundle
    #[arg(short, long, value_name = "OUT.ctp")]
    pub output: PathBuf,
    /// Sign with this key (repeat for several signers) [default: default_key from config.toml]
    #[arg(short, long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    /// Package name [default: the source's tag or directory name]
    #[arg(long)]
    pub name: Option<String>,
    /// Package version [default: the image's org.opencontainers.image.version label]
    #[arg(long = "version", value_name = "VERSION")]
    pub version: Option<String>,
    /// Leave out the SBOM (an SPDX 2.3 document of the packages dpkg's or apk's database lists,
    /// signed with the bundle as attestation `sbom`; made by default)
    #[arg(long)]
    pub no_sbom: bool,
    /// Leave out the provenance (an in-toto statement with a SLSA Provenance v1 predicate:
    /// builder ct and its version, the source and its digest, these parameters; in a DSSE
    /// envelope signed by the bundle's keys, attestation `provenance`; made by default)
    #[arg(long)]
    pub no_provenance: bool,
    /// Replace OUT if it exists
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArg,
    #[command(flatten, next_help_heading = "Registry access (docker:// sources)")]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle (.ctp) to verify, or ostree:REPO:REF — an OSTree commit written by
    /// `ct export --format ostree` (REF a ref or a commit checksum)
    pub bundle: PathBuf,
    /// Evaluate this policy.json [default: default_policy from config.toml]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Also apply the layers (OCI layer rules) and check the merged root filesystem against the
    /// signed rootfs digest; a difference exits 1, a hostile layer 10
    #[arg(long)]
    pub deep: bool,
    /// Show each signature (suite, trust, validity window) and the policy's evaluation step by
    /// step: which rule admitted or refused each signer, each threshold counted
    #[arg(long)]
    pub explain: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older bundle: a file (.ctp), a name in the store, or a bundle digest (sha256:HEX)
    #[arg(value_name = "OLD")]
    pub old: String,
    /// The newer bundle, the same ways
    #[arg(value_name = "NEW")]
    pub new: String,
    /// Show the layers added and removed (all sections are shown when none is chosen)
    #[arg(long)]
    pub layers: bool,
    /// Show the image config's changes: Entrypoint, Cmd, Env, User, WorkingDir, ports, labels
    #[arg(long)]
    pub config: bool,
    /// Show the signers added and removed
    #[arg(long)]
    pub signers: bool,
    /// Show the files added, removed and changed (mode, owner, content, …)
    #[arg(long)]
    pub files: bool,
    /// Show the attestations added, removed and changed, and the SBOM's package changes
    #[arg(long)]
    pub attestations: bool,
    /// Evaluate this policy.json for both [default: default_policy from config.toml]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// The directory whose bundle files (*.ctp, in subdirectories too) to index [default: the
    /// bundles of the store, the one --store names]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep the entries of bundles that did not change since the last index (same size, mtime
    /// and inode; for the store, the same digest under the name); verify only the rest
    #[arg(long)]
    pub update: bool,
}

const INDEX_HELP: &str = "\
Each bundle is verified as `ct verify` does (signatures, trust store, every blob; no policy) and only \
one that verifies is indexed, with its digest, name, version, creation time, source, signers (key id, \
fingerprint, suite, trust-store name), whether it has an SBOM (its package count and stated licences) \
and provenance (its builder). The others are listed on stderr with the reason. The index is kept in \
$XDG_CACHE_HOME/cerro/index (else ~/.cache/cerro/index), one file per directory or store, never beside \
the bundles; indexing a place again replaces its file. It records what verified when it was built: \
verify a bundle before you use it.";

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Text to find in the name, version, source or location (case-insensitive)
    #[arg(value_name = "TEXT")]
    pub text: Option<String>,
    /// A signer's key id or trust-store name matches this glob (`*`, `?`, `[...]`)
    #[arg(long, value_name = "GLOB")]
    pub signer: Option<String>,
    /// A signer has this fingerprint (SHA256:…)
    #[arg(long, value_name = "F")]
    pub fingerprint: Option<String>,
    /// The bundle, image or source digest is this (sha256:HEX, or 8 or more hex digits of one)
    #[arg(long, value_name = "D")]
    pub digest: Option<String>,
    /// The bundle has an SBOM
    #[arg(long)]
    pub has_sbom: bool,
    /// The SBOM states a licence containing this text (case-insensitive)
    #[arg(long, value_name = "L")]
    pub license: Option<String>,
    /// Created at or after DATE (YYYY-MM-DD or RFC 3339)
    #[arg(long, value_name = "DATE")]
    pub after: Option<String>,
    /// Created before DATE
    #[arg(long, value_name = "DATE")]
    pub before: Option<String>,
}

const SEARCH_HELP: &str = "\
Searches every index `ct index` made, all criteria together; each bundle is listed once (by location), \
sorted by name and creation time. --json gives {\"ok\", \"count\", \"bundles\": [entry…]}, each entry as \
the index holds it: location, file (size, mtime_ns, inode), bundle_digest, name, version, created, source, \
source_digest, image_digest, signers [{key_id, fingerprint, suite, trusted_as}], has_sbom, packages, \
licenses, has_provenance, builder. Exit 0 whether or not anything matches.";

const DIFF_HELP: &str = "\
Both bundles are verified first, as `ct mount` verifies them (a bundle file is imported into the \
store): signatures, trust store, policy; the first that fails decides the exit code. Then: layers by \
digest; the image config's run settings and labels, field by field; the trusted signers (name and \
fingerprint); the attestations, with the packages added, removed or upgraded between the two SBOMs; \
and the files of the two root filesystems, walking both Merkle DAGs together and \
reading only directories whose digests differ, so two large images that share most of their tree \
are compared quickly (--json reports how many directory pairs were read). A directory added or \
removed stands for everything below it. Exit 0 whether or not they differ.";

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The bundle (.ctp) to explain
    pub bundle: PathBuf,
    /// Show the signers section (all sections are shown when none is chosen)
    #[arg(long)]
    pub signers: bool,
    /// Show the layers section
    #[arg(long)]
    pub layers: bool,
    /// Show what each attestation says (an SBOM: its packages and stated licences)
    #[arg(long)]
    pub attestations: bool,
    /// Evaluate this policy.json [default: default_policy from config.toml]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Write a starter policy: deny by default, allow any signer in the trust store
    Init {
        /// Where to write it
        #[arg(short, long, value_name = "FILE", default_value = "policy.json")]
        output: PathBuf,
        /// Replace FILE if it exists
        #[arg(long)]
        force: bool,
    },
    /// Check that a policy file is valid and summarise its rules
    Check { file: PathBuf },
    /// Show a policy: every rule with the name `ct policy remove` takes, and the file itself
    #[command(after_help = POLICY_FILE_HELP)]
    Show {
        #[command(flatten)]
        file: PolicyFileArg,
    },
    /// Allow a signer: a key in your trust store (by fingerprint), a fingerprint, or a key-id glob
    #[command(after_help = ADD_SIGNER_HELP)]
    AddSigner(AddSignerArgs),
    /// Allow a source registry or repository: HOST, HOST/REPO, or a glob
    #[command(after_help = ADD_REGISTRY_HELP)]
    AddRegistry(AddRegistryArgs),
    /// Deny a signer (revocation): a key in your trust store, a fingerprint, or a key-id glob
    #[command(after_help = DENY_HELP)]
    Deny(DenyArgs),
    /// Pin a bundle name to an image digest and/or signers
    #[command(after_help = PIN_HELP)]
    Pin(PinArgs),
    /// Remove a rule: by the name `ct policy show` gives it, or by what it names
    #[command(after_help = REMOVE_HELP)]
    Remove(RemoveArgs),
}

const POLICY_FILE_HELP: &str = "\
The policy file is --policy FILE, else default_policy from config.toml, else ./policy.json (what \
`ct policy init` writes). --json prints the policy itself (canonical form) and its rules.";

const ADD_SIGNER_HELP: &str = concat!(
    // How every helper edits the file is said once, here; the others point to it.
    "SIGNER is one of: the name of a key in your trust store — the entry then names its key id and its \
fingerprint, so only that exact key matches; a fingerprint (SHA256:ab12:… or 64 hex digits); or a \
key-id glob such as release-* (matches the key id a signature carries, which its signer chose: \
pair it with the trust store, or prefer a fingerprint). --suite limits the entry to signatures in \
that suite (repeatable); --required makes a matching signature mandatory.\n\n",
    "Every helper edits the policy file in place: it reads it (it must be valid), makes the change, writes \
it back in canonical form (spec/policy.md §11) atomically, and refuses — writing nothing, exit 64 — \
when the result is a policy `ct policy check` would reject. It prints the rule it wrote and its name; \
a rule that is already there is left as it is (exit 0, \"unchanged\"). The file is --policy FILE, else \
default_policy from config.toml, else ./policy.json."
);

const ADD_REGISTRY_HELP: &str = "\
What a policy matches is the source reference a bundle records: `ct pack docker://HOST/REPO:TAG` \
records docker://HOST/REPO:TAG (or …@DIGEST). So HOST allows every image pulled from that registry \
(glob docker://HOST/*), and HOST/REPO that repository at any tag or digest (glob \
docker://HOST/REPO[:@]*, which matches neither HOST/REPO-other nor HOST/REPO/sub). A value with a \
scheme (docker://, oci:, docker-archive:) or containing * ? [ is taken as a glob, exactly. The first \
registries.allowed entry turns \"any source\" into \"only these\" — the command says so. --block adds \
to registries.blocked instead.

See `ct policy add-signer --help` for how the file is edited.";

const DENY_HELP: &str = "\
SIGNER is the name of a key in your trust store (denied by fingerprint, so whatever key id it signs \
under), a fingerprint, or a key-id glob (--key-id forces that reading). --after DATE denies it only \
for bundles created at or after DATE (a retired or leaked key whose earlier bundles stay good); \
--before DATE only for bundles created before DATE. A denied key's signature rejects a bundle even \
when other trusted keys signed it too (exit 4).

See `ct policy add-signer --help` for how the file is edited.";

const PIN_HELP: &str = "\
A bundle whose package name is NAME must then have exactly this image digest (the image manifest's \
sha256, as `ct explain` shows it — not the bundle digest), and/or a trusted signature from one of the \
--signer keys (a trust-store name, pinned by fingerprint; a fingerprint; or an exact key id). An \
existing pin for NAME is replaced; the command shows the old one.

See `ct policy add-signer --help` for how the file is edited.";

const REMOVE_HELP: &str = "\
RULE is a name as `ct policy show` and rejections print it: signers.allowed[1], signers.denied[0], \
registries.allowed[2], registries.blocked[0], suites.allowed[1], pin[\"nginx\"] (or pin.nginx), \
signers.threshold, suites.minimum, time.max_age_days. Or name what to remove: --signer SIGNER, \
--deny SIGNER (every entry naming that key id or fingerprint), --registry HOST[/REPO], --pin NAME. \
Removing the last entry of a list that must not be empty (suites.allowed, registries.allowed) is \
refused: it would widen the policy, so say so explicitly by removing the whole rule \
(`ct policy remove suites.allowed`).

See `ct policy add-signer --help` for how the file is edited.";

/// Where a policy helper reads and writes.
#[derive(Debug, Args)]
pub struct PolicyFileArg {
    /// The policy file [default: default_policy from config.toml, else ./policy.json]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AddSignerArgs {
    /// A trusted key's name, a fingerprint, or a key-id glob
    #[arg(value_name = "SIGNER")]
    pub signer: String,
    /// Match only signatures in this suite (repeatable)
    #[arg(long, value_name = "SUITE", value_parser = parse_suite)]
    pub suite: Vec<cerro_core::sign::Suite>,
    /// A matching signature is mandatory
    #[arg(long)]
    pub required: bool,
    /// Read SIGNER as a key-id glob even if a trusted key has that name
    #[arg(long)]
    pub key_id: bool,
    #[command(flatten)]
    pub file: PolicyFileArg,
}

#[derive(Debug, Args)]
pub struct AddRegistryArgs {
    /// HOST, HOST/REPO, or a glob
    #[arg(value_name = "HOST[/REPO]")]
    pub registry: String,
    /// Add to registries.blocked instead of registries.allowed
    #[arg(long)]
    pub block: bool,
    #[command(flatten)]
    pub file: PolicyFileArg,
}

#[derive(Debug, Args)]
pub struct DenyArgs {
    /// A trusted key's name, a fingerprint, or a key-id glob
    #[arg(value_name = "SIGNER")]
    pub signer: String,
    /// Deny only for bundles created at or after DATE
    #[arg(long, value_name = "DATE")]
    pub after: Option<String>,
    /// Deny only for bundles created before DATE
    #[arg(long, value_name = "DATE")]
    pub before: Option<String>,
    /// Why (repeated in every rejection)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Read SIGNER as a key-id glob even if a trusted key has that name
    #[arg(long)]
    pub key_id: bool,
    #[command(flatten)]
    pub file: PolicyFileArg,
}

#[derive(Debug, Args)]
pub struct PinArgs {
    /// The bundle (package) name
    pub name: String,
    /// The image digest (sha256:HEX) the bundle must have
    pub digest: Option<String>,
    /// A signer one of whom must have signed (repeatable)
    #[arg(long, value_name = "SIGNER")]
    pub signer: Vec<String>,
    #[command(flatten)]
    pub file: PolicyFileArg,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// A rule name, as `ct policy show` prints it
    #[arg(value_name = "RULE", required_unless_present_any = ["signer", "deny", "registry", "pin"])]
    pub rule: Option<String>,
    /// Remove the signers.allowed entries naming this signer
    #[arg(long, value_name = "SIGNER", conflicts_with = "rule")]
    pub signer: Option<String>,
    /// Remove the signers.denied entries naming this signer
    #[arg(long, value_name = "SIGNER", conflicts_with = "rule")]
    pub deny: Option<String>,
    /// Remove this registry from registries.allowed and registries.blocked
    #[arg(long, value_name = "HOST[/REPO]", conflicts_with = "rule")]
    pub registry: Option<String>,
    /// Remove the pin of this bundle name
    #[arg(long, value_name = "NAME", conflicts_with = "rule")]
    pub pin: Option<String>,
    #[command(flatten)]
    pub file: PolicyFileArg,
}

/// What a mount daemon serves (`--kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// One bundle's rootfs.
    Bundle,
    /// The whole store.
    Store,
}

/// How the container reaches the network (`--network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Network {
    /// Its own network namespace with loopback only.
    None,
    /// Its own namespace with a user-space network (slirp4netns): outbound and published ports.
    Private,
    /// The host's network namespace.
    Host,
}

impl FetchArgs {
    /// `ct fetch --create IMAGE`: the `ct pack docker://IMAGE` it stands for.
    pub fn into_pack(self) -> PackArgs {
        let source = if self.image.starts_with("docker://") {
            self.image
        } else {
            format!("docker://{}", self.image)
        };
        PackArgs {
            source,
            output: self.output,
            keys: self.keys,
            name: self.name,
            version: self.version,
            no_sbom: false,
            no_provenance: false,
            force: self.force,
            passphrase: self.passphrase,
            registry: self.registry,
        }
    }
}
