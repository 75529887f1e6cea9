//! The step-by-step account of one policy evaluation (`ct verify --explain`): for each of the
//! eight steps of spec/policy.md §7.2, whether it passed, rejected or was not reached, and what
//! it looked at — which rule admitted or refused each signer, what each threshold counted. The
//! evaluation that produces it is the same one `Policy::evaluate` runs, so the two never differ.

use super::{Policy, PolicyFacts, Verdict};
use serde::Serialize;

/// Names of the eight steps, in evaluation order (spec/policy.md §7.2).
pub const STEP_NAMES: [&str; 8] = [
    "suites",
    "signers.denied",
    "registries",
    "pin",
    "time",
    "signers.allowed",
    "signers.threshold",
    "require_attestations",
];

/// What happened at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Passed,
    Rejected,
    /// An earlier step rejected the bundle.
    NotReached,
}

/// One step of the evaluation and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExplainStep {
    /// 1 to 8.
    pub step: u8,
    pub name: &'static str,
    pub outcome: StepOutcome,
    /// One line per rule or signature the step looked at.
    pub details: Vec<String>,
}

/// Every step and the verdict (identical to what [`Policy::evaluate`] returns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub steps: Vec<ExplainStep>,
    pub verdict: Verdict,
}

/// Collects the lines of the step being evaluated.
#[derive(Default)]
pub(super) struct Trace {
    steps: Vec<ExplainStep>,
}

impl Trace {
    /// Start step `n` (1-based); later lines go to it.
    pub(super) fn begin(&mut self, n: u8) {
        self.steps.push(ExplainStep {
            step: n,
            name: STEP_NAMES[usize::from(n - 1)],
            outcome: StepOutcome::Passed,
            details: Vec::new(),
        });
    }

    pub(super) fn line(&mut self, s: impl Into<String>) {
        if let Some(step) = self.steps.last_mut() {
            step.details.push(s.into());
        }
    }

    /// Close the evaluation: the last step begun rejected if the verdict is a rejection, and
    /// the steps after it were not reached.
    pub(super) fn finish(mut self, verdict: Verdict) -> Explanation {
        if matches!(verdict, Verdict::Reject(_)) {
            if let Some(last) = self.steps.last_mut() {
                last.outcome = StepOutcome::Rejected;
            }
        }
        for n in self.steps.len() + 1..=STEP_NAMES.len() {
            self.steps.push(ExplainStep {
                step: n as u8,
                name: STEP_NAMES[n - 1],
                outcome: StepOutcome::NotReached,
                details: Vec::new(),
            });
        }
        Explanation {
            steps: self.steps,
            verdict,
        }
    }
}

impl Policy {
    /// Evaluate as [`Policy::evaluate`] does, and say what each step found.
    pub fn explain(&self, facts: &PolicyFacts) -> Explanation {
        let mut trace = Trace::default();
        let verdict = super::eval::evaluate_traced(self, facts, &mut trace);
        trace.finish(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::super::vectors::{facts_from, policy_bytes, vector_files};
    use super::*;
    use serde_json::Value;

    /// On every vector, the explanation's verdict is `evaluate`'s, exactly one step rejects
    /// when the verdict does (the step the rule belongs to, spec/policy.md §8), and every step
    /// before it passed with something to say.
    #[test]
    fn explanations_agree_with_evaluate_on_every_vector() {
        let mut n = 0;
        for f in vector_files() {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            let Ok(policy) = Policy::parse(&policy_bytes(&v["policy"])) else {
                continue;
            };
            let facts = facts_from(&v["facts"]).unwrap();
            let e = policy.explain(&facts);
            let name = f.display();
            assert_eq!(e.verdict, policy.evaluate(&facts), "{name}");
            assert_eq!(e.steps.len(), 8, "{name}");
            let rejected: Vec<&ExplainStep> = e
                .steps
                .iter()
                .filter(|s| s.outcome == StepOutcome::Rejected)
                .collect();
            match &e.verdict {
                Verdict::Accept { .. } => {
                    assert!(rejected.is_empty(), "{name}");
                    assert!(e.steps.iter().all(|s| s.outcome == StepOutcome::Passed));
                }
                Verdict::Reject(r) => {
                    assert_eq!(rejected.len(), 1, "{name}");
                    let step = rejected[0];
                    let expected = match r.rule.as_str() {
                        r if r.starts_with("suites.") => "suites",
                        r if r.starts_with("signers.denied") => "signers.denied",
                        r if r.starts_with("registries.") => "registries",
                        r if r.starts_with("pin[") => "pin",
                        r if r.starts_with("time.") => "time",
                        r if r.starts_with("signers.allowed") || r == "default_action" => {
                            "signers.allowed"
                        }
                        "signers.threshold" => "signers.threshold",
                        _ => "require_attestations",
                    };
                    assert_eq!(step.name, expected, "{name}: rule {}", r.rule);
                    for s in &e.steps[..usize::from(step.step) - 1] {
                        assert_eq!(s.outcome, StepOutcome::Passed, "{name}");
                    }
                    for s in &e.steps[usize::from(step.step)..] {
                        assert_eq!(s.outcome, StepOutcome::NotReached, "{name}");
                        assert!(s.details.is_empty());
                    }
                }
            }
            for s in e
                .steps
                .iter()
                .filter(|s| s.outcome != StepOutcome::NotReached)
            {
                assert!(
                    !s.details.is_empty(),
                    "{name}: step {} says nothing",
                    s.name
                );
            }
            n += 1;
        }
        assert!(n > 50, "only {n} evaluable vectors");
    }
}
