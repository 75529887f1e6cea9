//! `ct export --format ostree BUNDLE|NAME --repo REPO [--branch REF] [--mode archive|bare-user]
//! [--parent COMMIT] [-k KEY]`: one verified bundle as an OSTree commit (`cerro_ostree_export`),
//! signed with Ed25519 when asked, and the ref moved to it last — after every object is written
//! and synced, so a failure leaves the ref where it was.

use super::Ctx;
use crate::app::{BundleSource, ExportArgs, OstreeMode};
use crate::exit::{CmdResult, Failure, HASH_MISMATCH, IO_ERROR, MALFORMED};
use crate::output::{human_bytes, Progress};
use crate::steps::ostree::ostree_failure;
use crate::steps::sign::{signers, SigningKey};
use crate::steps::stored::{open_bundle, Checks};
use base64::Engine as _;
use cerro_core::rootfs::VerifiedTree;
use cerro_core::sign::Suite;
use cerro_ostree_export::export::{export, preflight, Bundle, ExportError, Options};
use cerro_ostree_export::{validate_ref, Checksum, Mode, Repo};
use std::path::{Path, PathBuf};

pub fn run(ctx: &Ctx, a: ExportArgs) -> CmdResult<u8> {
    let (bundle, repo_path, parent) = check_args(&a)?;
    // The key first: a wrong passphrase or a key OSTree cannot use stops before any work.
    let key = a
        .key
        .as_deref()
        .map(|k| commit_key(ctx, k, a.passphrase.passphrase_file.as_deref()))
        .transpose()?;
    let checks = Checks::load(ctx, a.policy.as_deref(), false)?;
    let src = BundleSource {
        bundle,
        name: None,
        policy: a.policy.clone(),
    };
    let what = format!("export to ostree {}", repo_path.display());
    let opened = open_bundle(ctx, &src, &checks, &what, "exported")?;
    let manifest = opened.bundle.manifest();
    let branch = a
        .branch
        .clone()
        .unwrap_or_else(|| format!("cerro/{}", manifest.package.name));
    validate_ref(&branch).map_err(|e| {
        Failure::usage(e.to_string()).hint("name the ref with --branch REF (e.g. --branch os/app)")
    })?;
    let mode = a.mode.map(|m| match m {
        OstreeMode::Archive => Mode::Archive,
        OstreeMode::BareUser => Mode::BareUser,
    });
    let tree = VerifiedTree::new(opened.store.clone());
    let root = &opened.bundle.subject().root;
    // Before the repository is touched: what OSTree cannot hold is refused (or, for devices and
    // FIFOs, skipped and said).
    let special = preflight(&tree, root).map_err(|e| export_failure(&opened.label(), e))?;
    if !special.is_empty() {
        let listed: Vec<String> = special.iter().map(|(p, k)| format!("{p} ({k})")).collect();
        if !a.skip_special {
            return Err(Failure::new(
                MALFORMED,
                format!(
                    "bundle {}: OSTree cannot hold {} of its entries (device nodes and FIFOs): {}",
                    opened.label(),
                    special.len(),
                    listed.join(", ")
                ),
            )
            .hint(
                "pass --skip-special to leave them out of the commit (they stay in its signed \
                 tree, and `ct verify ostree:` accounts for them), or use `ct unpack --format \
                 rootfs`, which keeps them",
            ));
        }
        eprintln!(
            "{} left out of the commit (OSTree holds no devices or FIFOs; kept in its signed tree): {}",
            ctx.out.warn("skipped:"),
            crate::output::safe(&listed.join(", "))
        );
    }
    let repo = match mode {
        Some(m) => Repo::create_or_open(&repo_path, m),
        None => Repo::create_or_open_any(&repo_path, Mode::Archive),
    }
    .map_err(ostree_failure)?;

    let mut progress = Progress::new(&ctx.out, "exporting", 0);
    let mut done = 0u64;
    let options = Options {
        parent,
        skip_special: a.skip_special,
    };
    let exported = export(
        &tree,
        &Bundle {
            manifest,
            manifest_bytes: opened.bundle.manifest_bytes(),
            signatures: opened.bundle.signatures(),
            root,
        },
        &repo,
        &options,
        &mut |n| {
            done += n;
            progress.update(done);
        },
    )
    .map_err(|e| export_failure(&opened.label(), e))?;
    progress.finish();
    let commit = exported.commit;
    let signed = key.map(|k| sign(&repo, &commit, &k)).transpose()?;
    // Last, once every object (and the signature) is written and synced.
    repo.set_ref(&branch, &commit).map_err(ostree_failure)?;

    print(
        ctx,
        &Report {
            ok: true,
            bundle: opened.label(),
            version: &manifest.package.version,
            bundle_digest: opened.bundle.digest().to_string(),
            rootfs: manifest.rootfs.digest.to_string(),
            repo: repo_path,
            mode: repo.mode().config_name(),
            branch: &branch,
            commit: commit.to_string(),
            objects_written: exported.stats.written,
            objects_present: exported.stats.already_present,
            files: exported.files,
            bytes: exported.bytes,
            skipped: &exported.skipped,
            signed_by: signed.as_ref().map(|(k, _)| k.as_str()),
            ed25519_public_key: signed.as_ref().map(|(_, p)| p.as_str()),
        },
    );
    Ok(0)
}

/// The arguments an OSTree export takes: one bundle, `--repo`, a parent checksum; nothing that
/// only an archive takes.
fn check_args(a: &ExportArgs) -> CmdResult<(String, PathBuf, Option<Checksum>)> {
    let archive_only = [
        ("-o", a.output.is_some()),
        ("--include-keys", a.include_keys),
        ("--force", a.force),
    ];
    if let Some((flag, _)) = archive_only.iter().find(|(_, given)| *given) {
        return Err(Failure::usage(format!(
            "{flag} is for archives; --format ostree writes into --repo REPO"
        )));
    }
    let [bundle] = a.bundles.as_slice() else {
        return Err(Failure::usage(
            "--format ostree exports one bundle at a time (one commit, one ref)",
        ));
    };
    let Some(repo) = a.repo.clone() else {
        return Err(Failure::usage("--format ostree needs --repo REPO")
            .hint("the repository is created (with its config) when it does not exist"));
    };
    let parent = a
        .parent
        .as_deref()
        .map(|p| {
            p.parse::<Checksum>().map_err(|_| {
                Failure::usage(format!(
                    "--parent {p:?} is not a commit checksum (64 hex digits)"
                ))
            })
        })
        .transpose()?;
    Ok((bundle.to_string_lossy().into_owned(), repo, parent))
}

/// The key `-k` names, unlocked; OSTree signs with Ed25519, so an ML-DSA-only key is refused.
fn commit_key(ctx: &Ctx, name: &str, pass_file: Option<&Path>) -> CmdResult<SigningKey> {
    let key = signers(ctx, &[name.to_string()], pass_file)?.remove(0);
    if key.signer.suite() == Suite::CtSig03 {
        return Err(Failure::usage(format!(
            "key {name} is ML-DSA-87 only (CT-SIG-03); OSTree signs commits with Ed25519"
        ))
        .hint("sign with a CT-SIG-01 or CT-SIG-02 key"));
    }
    Ok(key)
}

/// Sign the commit as OSTree's ed25519 signing does; answers the key's name and its base64
/// Ed25519 public key (what a host configures).
fn sign(repo: &Repo, commit: &Checksum, key: &SigningKey) -> CmdResult<(String, String)> {
    let bytes = repo.read_commit_bytes(commit).map_err(ostree_failure)?;
    let (sig, public) = key
        .signer
        .sign_ostree_commit(&bytes)
        .expect("an Ed25519 or hybrid key signs an OSTree commit");
    repo.add_ed25519_signature(commit, &sig, &public)
        .map_err(ostree_failure)?;
    Ok((
        key.signer.key_id.to_string(),
        base64::engine::general_purpose::STANDARD.encode(public),
    ))
}

fn print(ctx: &Ctx, r: &Report<'_>) {
    if ctx.out.json {
        ctx.out.json_doc(r);
        return;
    }
    ctx.out.line(format!(
        "exported {} {} ({}) to {} as {}: commit {}",
        r.bundle,
        r.version,
        r.bundle_digest,
        r.repo.display(),
        r.branch,
        r.commit
    ));
    ctx.out.line(format!(
        "  {} new objects, {} already there; {} files and links, {} of content verified",
        r.objects_written,
        r.objects_present,
        r.files,
        human_bytes(r.bytes)
    ));
    if let (Some(k), Some(public)) = (r.signed_by, r.ed25519_public_key) {
        ctx.out.line(format!(
            "  signed with {k}; a host accepts it with: ostree remote add --set=sign-verify=ed25519 \
             --set=verification-ed25519-key={public} NAME URL"
        ));
    }
}

#[derive(serde::Serialize)]
struct Report<'a> {
    ok: bool,
    bundle: String,
    version: &'a str,
    bundle_digest: String,
    rootfs: String,
    repo: PathBuf,
    mode: &'static str,
    branch: &'a str,
    commit: String,
    objects_written: u64,
    objects_present: u64,
    files: u64,
    bytes: u64,
    skipped: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    signed_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ed25519_public_key: Option<&'a str>,
}

fn export_failure(label: &str, e: ExportError) -> Failure {
    let hint =
        "nothing points at what was written (no ref moved); run `ct store fsck`, then import \
                the bundle again from its file";
    match e {
        ExportError::Walk(w) if !matches!(*w.source, cerro_core::rootfs::TreeError::Io { .. }) => {
            Failure::new(HASH_MISMATCH, format!("bundle {label}, {w}")).hint(hint)
        }
        ExportError::File { path, source }
            if !matches!(*source, cerro_core::rootfs::TreeError::Io { .. }) =>
        {
            Failure::new(HASH_MISMATCH, format!("bundle {label}, {path}: {source}")).hint(hint)
        }
        e @ (ExportError::Walk(_) | ExportError::File { .. }) => {
            Failure::new(IO_ERROR, format!("bundle {label}: {e}"))
        }
        e @ ExportError::Special { .. } => Failure::new(MALFORMED, format!("bundle {label}, {e}"))
            .hint("pass --skip-special to leave device nodes and FIFOs out of the commit"),
        ExportError::NotRepresentable { .. } => Failure::usage(format!("bundle {label}, {e}"))
            .hint(
                "OSTree names and symlink targets are UTF-8; `ct unpack --format rootfs` keeps any",
            ),
        ExportError::Ostree(o) => ostree_failure(o),
    }
}
