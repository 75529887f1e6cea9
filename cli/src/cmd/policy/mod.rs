//! `ct policy init` writes a starter policy; `ct policy check FILE` validates one and
//! summarises it; `ct policy show` lists its rules by name; the editing helpers live in
//! `policy_edit`.

mod edit;

use super::Ctx;
use crate::app::PolicyCmd;
use crate::config::write_atomic;
use crate::exit::{CmdResult, Failure};
use cerro_core::policy::{starter_policy, Policy};
use edit as policy_edit;

pub fn run(ctx: &Ctx, cmd: PolicyCmd) -> CmdResult {
    match cmd {
        PolicyCmd::Init { output, force } => {
            if output.exists() && !force {
                return Err(
                    Failure::usage(format!("{} already exists", output.display()))
                        .hint("pass --force to replace it"),
                );
            }
            let text = starter_policy();
            Policy::parse(text.as_bytes()).map_err(|e| {
                Failure::malformed(format!("internal: the starter policy does not parse: {e}"))
            })?;
            write_atomic(&output, text.as_bytes(), 0o644)?;
            ctx.out
                .json_doc(&serde_json::json!({"ok": true, "path": output}));
            ctx.out.line(format!("wrote starter policy {}: deny by default, allow bundles signed by any key in your trust store", output.display()));
            ctx.out.line(format!(
                "Use it with `ct verify BUNDLE --policy {}`, or set default_policy in config.toml.",
                output.display()
            ));
            Ok(())
        }
        PolicyCmd::Check { file } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| Failure::io(format!("reading policy {}", file.display()), e))?;
            let p = Policy::parse(&bytes).map_err(|e| {
                Failure::malformed(format!("policy {}: {e}", file.display()))
                    .hint("spec/policy.md lists every field and its rules")
            })?;
            let summary = p.summary();
            ctx.out
                .json_doc(&serde_json::json!({"ok": true, "path": file, "rules": summary}));
            ctx.out.line(format!(
                "{} {} is a valid policy (version 1)",
                ctx.out.good("ok"),
                file.display()
            ));
            for r in summary {
                ctx.out.line(format!("  {r}"));
            }
            Ok(())
        }
        PolicyCmd::Show { file } => policy_edit::show(ctx, file.policy.as_deref()),
        PolicyCmd::AddSigner(a) => policy_edit::add_signer(ctx, a),
        PolicyCmd::AddRegistry(a) => policy_edit::add_registry(ctx, a),
        PolicyCmd::Deny(a) => policy_edit::deny(ctx, a),
        PolicyCmd::Pin(a) => policy_edit::pin(ctx, a),
        PolicyCmd::Remove(a) => policy_edit::remove(ctx, a),
    }
}
