//! `ct verify --explain`: each signature (suite, validity, trust, window) and the policy's
//! evaluation step by step — which rule admitted or refused each signer, what each threshold
//! counted, where evaluation stopped. The steps come from `Policy::explain`, the same
//! evaluation the verdict comes from.

use crate::cmd::Ctx;
use crate::output::safe;
use cerro_core::policy::{Explanation, Policy, RejectionKind, StepOutcome, Verdict};
use cerro_core::sign::Suite;
use cerro_core::verify::{policy_facts, VerifyReport};
use serde::Serialize;
use std::path::Path;

/// What `--explain` adds to the report.
#[derive(Serialize)]
pub struct Explain {
    /// One sentence per signature.
    pub signatures: Vec<String>,
    /// The policy's evaluation, when a policy was given and reached.
    pub policy: Option<Explanation>,
    /// Why the policy was not evaluated, when it was not.
    pub policy_not_evaluated: Option<String>,
}

pub fn explain(
    rep: &VerifyReport,
    policy: Option<&Policy>,
    now: chrono::DateTime<chrono::Utc>,
) -> Explain {
    let signatures = rep.signatures.iter().map(signature_line).collect();
    let (policy, why_not) = match (policy, &rep.manifest) {
        (None, _) => (
            None,
            Some("no policy was given: any valid signature by a key in the trust store, within its validity window, is enough".to_string()),
        ),
        (Some(_), _) if rep.policy.is_none() => (
            None,
            Some(format!(
                "verification stopped before the policy: {}",
                rep.failure
                    .as_ref()
                    .map_or("(no reason recorded)", |f| f.message.as_str())
            )),
        ),
        (Some(p), Some(m)) => match policy_facts(m, &rep.signatures, now) {
            Ok(facts) => (Some(p.explain(&facts)), None),
            Err(e) => (None, Some(format!("the manifest's creation time: {e}"))),
        },
        (Some(_), None) => (None, Some("the bundle has no readable manifest".into())),
    };
    Explain {
        signatures,
        policy,
        policy_not_evaluated: why_not,
    }
}

fn signature_line(s: &cerro_core::verify::SignatureReport) -> String {
    let raw = s.suite.as_deref().unwrap_or("?");
    let algo = Suite::from_id(raw).map_or("unknown suite", Suite::description);
    // The suite string is the signature file's, unvalidated: shown escaped and bounded.
    let suite = cerro_core::text::show_text(raw, 64);
    let who = format!(
        "{} {} with {suite} ({algo})",
        s.key_id,
        s.fingerprint.map(|f| f.to_string()).unwrap_or_default()
    );
    let window = match (&s.not_before, &s.expires) {
        (None, None) => String::new(),
        (Some(a), None) => format!("; the trust store counts it for bundles created from {a}"),
        (None, Some(b)) => format!("; the trust store counts it for bundles created before {b}"),
        (Some(a), Some(b)) => {
            format!("; the trust store counts it for bundles created from {a} until {b}")
        }
    };
    match (s.valid, s.trusted, &s.trusted_as) {
        (false, _, _) => format!(
            "{who}: INVALID: {}",
            s.problem.as_deref().unwrap_or("does not verify")
        ),
        (true, true, Some(name)) => {
            let halves = if raw == Suite::CtSig02.id() {
                " (both halves verify)"
            } else {
                ""
            };
            format!("{who}: valid{halves}, trusted as {name}{window}")
        }
        (true, _, _) => format!(
            "{who}: valid, NOT trusted: {}{window}",
            s.problem.as_deref().unwrap_or("not in the trust store")
        ),
    }
}

pub fn print(ctx: &Ctx, e: &Explain, policy: Option<&Path>) {
    let o = &ctx.out;
    if o.json {
        return;
    }
    o.line(o.bold("Signatures"));
    if e.signatures.is_empty() {
        o.line("  none");
    }
    for s in &e.signatures {
        o.line(format!("  {}", safe(s)));
    }
    match (&e.policy, policy) {
        (Some(x), Some(path)) => {
            o.line(o.bold(&format!("Policy {}, step by step", path.display())));
            for step in &x.steps {
                let outcome = match step.outcome {
                    StepOutcome::Passed => o.good("passed"),
                    StepOutcome::Rejected => o.bad("REJECTED"),
                    StepOutcome::NotReached => o.dim("not reached"),
                };
                o.line(format!("  {}. {} — {outcome}", step.step, step.name));
                for d in &step.details {
                    o.line(format!("       {}", safe(d)));
                }
            }
            match &x.verdict {
                Verdict::Accept { .. } => o.line(format!("  verdict: {}", o.good("accept"))),
                Verdict::Reject(r) => o.line(format!(
                    "  verdict: {} by {} ({}): {}",
                    o.bad("reject"),
                    r.rule,
                    match r.kind {
                        RejectionKind::Policy => "exit 4",
                        RejectionKind::AttestationMissing => "exit 5",
                    },
                    safe(&r.reason)
                )),
            }
        }
        _ => {
            if let Some(why) = &e.policy_not_evaluated {
                o.line(format!("{} {}", o.bold("Policy:"), safe(why)));
            }
        }
    }
    o.line("");
}
