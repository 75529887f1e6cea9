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
    about = "Cerro Torre: pack OCI images into signed bundles and verify them",
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
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create an Ed25519 signing key (suite CT-SIG-01) and trust it
    #[command(
        after_help = "The secret key is written to CONFIG/keys/NAME.key (mode 0600), encrypted with the \
passphrase through Argon2id and XChaCha20-Poly1305; the public key goes to the trust store as \
CONFIG/trust/NAME.pub. The first key becomes the default signing key.\n\n\
The passphrase comes from --passphrase-file, else CT_PASSPHRASE, else a prompt on the terminal."
    )]
    Keygen(KeygenArgs),
    /// Manage keys and the trust store
    #[command(subcommand)]
    Key(KeyCmd),
    /// Pack an OCI image into a signed bundle
    #[command(
        after_help = "SOURCE is one of:\n  oci:DIR[:TAG]                 an OCI image layout (the image tagged TAG, or its only image)\n  \
docker-archive:FILE[:NAME:TAG] a `docker save` archive\n\n\
The bundle is a deterministic tar that is also an oci-archive: packing the same image with the same \
key gives the same bytes. Every blob is re-hashed while it is copied; nothing is written to OUT unless \
the whole bundle was written."
    )]
    Pack(PackArgs),
    /// Verify a bundle: structure, every blob digest, signatures, trust and policy
    #[command(
        after_help = "Checks, in order: the bundle layout and canonical manifest (10), the signatures (2), \
that at least one signer is in the trust store (3), every blob's SHA-256 and size against the signed \
manifest (1), and the policy (4, or 5 for a missing attestation). The bundle is read once, in constant memory.\n\n\
The policy is --policy FILE, else default_policy from config.toml, else none (trust store only)."
    )]
    Verify(VerifyArgs),
    /// Explain a bundle in plain words: package, source, layers, signers, verdict
    Explain(ExplainArgs),
    /// Write or check trust policies (policy.json v1)
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Replace or add signatures without changing any content digest (key rotation, co-signing)
    #[command(
        after_help = "Every blob is first checked against the signed manifest: content that does not match \
is never signed. Without --add-signature the bundle's signatures are replaced by the new ones; with it \
they are kept (each must still be valid) and the new ones added. BUNDLE is rewritten atomically in \
place unless -o OUT is given. The bundle digest and every image digest stay the same."
    )]
    ReSign(ResignArgs),
}

#[derive(Debug, Args)]
pub struct ResignArgs {
    /// The bundle (.ctp) to re-sign
    pub bundle: PathBuf,
    /// Sign with this key (repeat for several) [default: default_key from config.toml]
    #[arg(short, long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    /// Keep the existing signatures and add the new ones
    #[arg(long)]
    pub add_signature: bool,
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

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Name of the key (1-64 of A-Z a-z 0-9 . _ -)
    #[arg(long, value_name = "NAME")]
    pub id: String,
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
    /// Stop trusting NAME (its secret key, if you hold it, is kept unless --delete-secret)
    Remove {
        name: String,
        /// Also delete the secret key file (this cannot be undone)
        #[arg(long)]
        delete_secret: bool,
    },
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The image to pack: oci:DIR[:TAG] or docker-archive:FILE[:NAME:TAG]
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
    /// Replace OUT if it exists
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArg,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle (.ctp) to verify
    pub bundle: PathBuf,
    /// Evaluate this policy.json [default: default_policy from config.toml]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

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
}
