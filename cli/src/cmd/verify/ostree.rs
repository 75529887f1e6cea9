//! `ct verify ostree:REPO:REF`: proves a commit (a deployed one, or one pulled from a mirror) is
//! exactly a signed bundle. The signed manifest and its signatures come from the commit's
//! metadata and are checked like any bundle's (signatures, trust, policy); then the rootfs
//! digest is re-derived from the commit's tree (`cerro_ostree_export::verify`) and must equal
//! the signed one. Exit 0 only then; 1 on a difference, naming the first differing path.

use super::Ctx;
use crate::exit::{CmdResult, Failure, HASH_MISMATCH, MALFORMED};
use crate::output::Progress;
use crate::steps::ostree::ostree_failure;
use crate::steps::verify::print_report_with;
use cerro_core::verify::VerifyContext;
use cerro_core::verify::{verify_signed_manifest, Failure as VerifyFailure, FailureKind};
use cerro_ostree_export::verify::{check_tree, read_claim, CheckError};
use cerro_ostree_export::Repo;
use std::path::{Path, PathBuf};

/// `REPO:REF` of an `ostree:REPO:REF` argument (the last `:` separates them: a ref has none).
pub fn parse(rest: &str) -> CmdResult<(PathBuf, String)> {
    match rest.rsplit_once(':') {
        Some((repo, reference)) if !repo.is_empty() && !reference.is_empty() => {
            Ok((PathBuf::from(repo), reference.to_string()))
        }
        _ => Err(Failure::usage(format!(
            "ostree:{rest}: expected ostree:REPO:REF (a ref or a commit checksum)"
        ))),
    }
}

pub fn run(
    ctx: &Ctx,
    arg: &str,
    repo_path: &Path,
    reference: &str,
    policy: Option<(&Path, &cerro_core::policy::Policy)>,
) -> CmdResult<u8> {
    if !repo_path.is_dir() {
        return Err(Failure::usage(format!(
            "{}: no such directory, so no OSTree repository",
            repo_path.display()
        )));
    }
    let repo = Repo::open(repo_path).map_err(ostree_failure)?;
    let claim = read_claim(&repo, reference).map_err(check_failure)?;
    let trust = ctx.cfg.trust_lookup()?;
    let mut rep = verify_signed_manifest(
        &claim.manifest_bytes,
        &claim.signatures,
        &VerifyContext {
            trust: &trust,
            policy: policy.map(|(_, p)| p),
            now: chrono::Utc::now(),
        },
    );
    let mut checked = None;
    if let (true, Some(m)) = (rep.ok(), rep.manifest.clone()) {
        let mut progress = Progress::new(&ctx.out, "checking the commit's tree", 0);
        let mut done = 0u64;
        let result = check_tree(&repo, &claim, &m.rootfs.digest, &mut |n| {
            done += n;
            progress.update(done);
        });
        progress.finish();
        match result {
            Ok(c) => checked = Some(c),
            Err(CheckError::Differs { path, what }) => {
                rep.failure = Some(VerifyFailure {
                    kind: FailureKind::HashMismatch,
                    exit_code: FailureKind::HashMismatch.exit_code(),
                    message: format!(
                        "commit {} is not the signed bundle: {path}: {what}",
                        claim.commit
                    ),
                    hint: "do not deploy this commit; export the bundle again (`ct export --format ostree`)".into(),
                })
            }
            Err(e) => return Err(check_failure(e)),
        }
    }
    ctx.out.json_doc(&serde_json::json!({
        "ok": rep.ok(),
        "exit_code": rep.exit_code(),
        "ostree": {
            "repo": repo_path,
            "ref": reference,
            "commit": claim.commit.to_string(),
            "files": checked.as_ref().map(|c| c.files),
            "bytes": checked.as_ref().map(|c| c.bytes),
            "skipped": checked.as_ref().map(|c| &c.skipped),
        },
        "report": rep,
    }));
    let passed = checked.filter(|_| rep.ok()).map(|c| {
        let mut s = format!(
            "commit {} re-derives the signed rootfs ({} files and links, {} read)",
            claim.commit,
            c.files,
            crate::output::human_bytes(c.bytes)
        );
        if !c.skipped.is_empty() {
            s.push_str(&format!(
                "; taken from its signed tree, as OSTree holds no devices or FIFOs: {}",
                c.skipped.join(", ")
            ));
        }
        s
    });
    print_report_with(ctx, Path::new(arg), &rep, policy.map(|(p, _)| p), passed);
    Ok(rep.exit_code())
}

fn check_failure(e: CheckError) -> Failure {
    match e {
        CheckError::Ostree(o) => ostree_failure(o),
        e @ CheckError::NotABundle { .. } => Failure::new(MALFORMED, e.to_string())
            .hint("only commits written by `ct export --format ostree` carry a bundle"),
        e @ CheckError::Differs { .. } => Failure::new(HASH_MISMATCH, e.to_string()),
    }
}
