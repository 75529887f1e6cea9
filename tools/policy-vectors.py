#!/usr/bin/env python3
# tools/policy-vectors.py — writes spec/vectors/policy/*.json (policy.json v1 vectors; see spec/policy.md).
# Run through tools/gen-vectors. Each vector file is normative once committed; review diffs.
import json, copy, os, sys
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spec", "vectors", "policy")
HEX = {"alice": "a1"*32, "bob": "b0"*32, "carol": "c0"*32, "mallory": "ee"*32,
       "release-a": "1a"*32, "release-b": "1b"*32, "old-release": "0d"*32}
def grouped(h): return "SHA256:" + ":".join(h[i:i+4] for i in range(0, 64, 4))
FP = {k: grouped(v) for k, v in HEX.items()}
DIGEST = "sha256:" + "d1"*32
OTHER_DIGEST = "sha256:" + "00"*32
def sig(name, suite="CT-SIG-01", trusted=True, fp=None):
    return {"key_id": name, "fingerprint": fp or FP[name], "suite": suite, "trusted": trusted}
def facts(**kw):
    f = {"bundle_name": "nginx", "source_reference": "docker.io/library/nginx:1.25",
         "image_digest": DIGEST, "created": "2026-01-10T00:00:00Z", "now": "2026-02-01T00:00:00Z",
         "signatures": [sig("alice")], "attestations": []}
    f.update(kw); return f
STARTER = {"version": "1", "default_action": "deny",
           "signers": {"allowed": [{"key_id": "*"}], "denied": []},
           "suites": {"allowed": ["CT-SIG-01", "CT-SIG-02", "CT-SIG-03"]},
           "require_attestations": {"provenance": False, "sbom": False, "transparency_log": False},
           "time": {"clock_skew_tolerance_seconds": 300}}
def pol(**kw):
    p = {"version": "1", "signers": {"allowed": [{"key_id": "*"}]}}
    for k, v in kw.items():
        if v is None: p.pop(k, None)
        else: p[k] = v
    return p
names = set()
def emit(name, desc, policy, expect, f=None):
    assert name not in names, name; names.add(name)
    v = {"description": desc, "policy": policy}
    if f is not None: v["facts"] = f
    v["expect"] = expect
    with open(os.path.join(OUT, name + ".json"), "w") as fh:
        fh.write(json.dumps(v, indent=2, ensure_ascii=True) + "\n")
def acc(name, desc, policy, f, notes=None):
    e = {"verdict": "accept"}
    if notes: e["reason_contains"] = notes
    emit(name, desc, policy, e, f)
def rej(name, desc, policy, f, rule, contains=None, kind="policy"):
    e = {"verdict": "reject", "rule": rule, "kind": kind}
    if contains: e["reason_contains"] = contains
    emit(name, desc, policy, e, f)
def err(name, desc, policy, sub):
    emit(name, desc, policy, {"error": sub})

for f in os.listdir(OUT):
    if f.endswith(".json"): os.remove(os.path.join(OUT, f))

# --- signers.allowed, required, default_action
acc("accept-starter-policy", "The starter policy accepts a bundle signed by any trusted key.", STARTER, facts(),
    ["signers.allowed[0]", "alice"])
rej("reject-default-deny-untrusted-only", "Default deny: an untrusted signature satisfies no allow rule.", STARTER,
    facts(signatures=[sig("mallory", trusted=False)]), "default_action", ["mallory", FP["mallory"], "not trusted"])
rej("reject-default-deny-no-signatures", "Default deny: a bundle with no valid signatures is rejected.", STARTER,
    facts(signatures=[]), "default_action", ["no valid signatures"])
rej("reject-default-deny-no-allowed-match", "Default deny: a trusted signer that matches no signers.allowed entry is not enough.",
    pol(signers={"allowed": [{"key_id": "release-*"}]}), facts(signatures=[sig("bob")]), "default_action", ["bob", FP["bob"]])
rej("reject-default-deny-empty-allowed", "Default deny (the default) with no signers.allowed entries rejects every bundle.",
    {"version": "1"}, facts(), "default_action", ["signers.allowed is empty"])
acc("accept-default-allow-needs-no-signer", "Default allow: no signers.allowed match is needed, even with only an untrusted signature.",
    {"version": "1", "default_action": "allow"}, facts(signatures=[sig("mallory", trusted=False)]), ["default_action"])
rej("reject-default-allow-required-missing", "Default allow still enforces required entries.",
    {"version": "1", "default_action": "allow", "signers": {"allowed": [{"key_id": "release-*", "required": True}]}},
    facts(signatures=[sig("bob")]), "signers.allowed[0]", ["release-*", "bob"])
rej("reject-required-matched-only-by-untrusted", "A required entry matched only by an untrusted signature is not satisfied.",
    pol(signers={"allowed": [{"key_id": "*"}, {"key_id": "release-a", "required": True}]}),
    facts(signatures=[sig("alice"), sig("release-a", trusted=False)]), "signers.allowed[1]", ["release-a", "not trusted"])
acc("accept-required-and-optional-entries", "Required and optional entries both matched by trusted signers.",
    pol(signers={"allowed": [{"key_id": "*"}, {"key_id": "release-a", "required": True}]}),
    facts(signatures=[sig("alice"), sig("release-a")]), ["signers.allowed[1]", "release-a"])
acc("accept-allowed-by-fingerprint-uppercase-hex", "A fingerprint in plain uppercase hex matches the signer's fingerprint.",
    pol(signers={"allowed": [{"fingerprint": HEX["alice"].upper()}]}), facts(), ["signers.allowed[0]"])
acc("accept-allowed-by-fingerprint-spaced-groups", "A fingerprint written as lowercase sha256: with space-separated groups matches.",
    pol(signers={"allowed": [{"fingerprint": "sha256:" + " ".join(HEX["alice"][i:i+4] for i in range(0, 64, 4))}]}), facts())
rej("reject-allowed-needs-key-id-and-fingerprint", "An entry with key_id and fingerprint needs both to match the same signature.",
    pol(signers={"allowed": [{"key_id": "alice", "fingerprint": FP["bob"]}]}), facts(), "default_action")
rej("reject-allowed-key-id-glob-question-mark", "`?` matches exactly one character.",
    pol(signers={"allowed": [{"key_id": "release-?"}]}), facts(signatures=[sig("release-a", fp=FP["release-a"]) | {"key_id": "release-ab"}]),
    "default_action")
acc("accept-allowed-key-id-glob-class", "`[...]` matches one character of a set or range.",
    pol(signers={"allowed": [{"key_id": "release-[a-c]"}]}), facts(signatures=[sig("release-b")]), ["signers.allowed[0]"])
rej("reject-allowed-key-id-glob-case-sensitive", "Globs are case-sensitive.",
    pol(signers={"allowed": [{"key_id": "Alice"}]}), facts(), "default_action")

# --- suites
rej("reject-suites-minimum", "The only trusted signature uses a suite below suites.minimum.",
    pol(suites={"minimum": "CT-SIG-02"}), facts(), "suites.minimum", ["alice", "CT-SIG-01", "CT-SIG-02"])
rej("reject-suites-allowed", "The only trusted signature uses a suite not in suites.allowed.",
    pol(suites={"allowed": ["CT-SIG-02"]}), facts(signatures=[sig("alice", "CT-SIG-03")]), "suites.allowed", ["alice", "CT-SIG-03"])
rej("reject-suites-unknown-suite-in-facts", "A suite id the policy does not know is never accepted when suites.allowed is set.",
    pol(suites={"allowed": ["CT-SIG-01", "CT-SIG-02", "CT-SIG-03"]}), facts(signatures=[sig("alice", "CT-SIG-07")]), "suites.allowed")
acc("accept-suites-weak-signature-disregarded", "A trusted signature in a weak suite is disregarded when another trusted signature is acceptable.",
    pol(suites={"minimum": "CT-SIG-02"}), facts(signatures=[sig("alice", "CT-SIG-01"), sig("bob", "CT-SIG-02")]), ["disregarded", "alice"])
rej("reject-suites-disregarded-signature-satisfies-nothing", "A disregarded signature cannot satisfy a required entry.",
    pol(suites={"minimum": "CT-SIG-02"}, signers={"allowed": [{"key_id": "alice", "required": True}, {"key_id": "*"}]}),
    facts(signatures=[sig("alice", "CT-SIG-01"), sig("bob", "CT-SIG-02")]), "signers.allowed[0]")
# --- suites in a signers.allowed entry
acc("accept-allowed-entry-suites-matches-hybrid", "An allowed entry with suites matches a signature in a listed suite.",
    pol(signers={"allowed": [{"key_id": "alice", "suites": ["CT-SIG-02"], "required": True}]}),
    facts(signatures=[sig("alice", "CT-SIG-01"), sig("alice", "CT-SIG-02", fp=FP["bob"])]),
    ["signers.allowed[0]", "suite CT-SIG-02"])
rej("reject-allowed-entry-suites-other-suite", "An allowed entry with suites does not match the same key id signing in another suite.",
    pol(signers={"allowed": [{"key_id": "alice", "suites": ["CT-SIG-02", "CT-SIG-03"], "required": True}]}),
    facts(), "signers.allowed[0]", ["suite CT-SIG-02 or CT-SIG-03", "alice", "CT-SIG-01"])
rej("reject-allowed-entry-suites-unknown-suite-in-facts", "A suite id the policy does not know never matches an entry's suites.",
    pol(signers={"allowed": [{"key_id": "*", "suites": ["CT-SIG-01", "CT-SIG-02", "CT-SIG-03"]}]}),
    facts(signatures=[sig("alice", "CT-SIG-07")]), "default_action")
err("error-allowed-entry-suites-empty", "An empty suites list in an allowed entry would match nothing; it is refused.",
    pol(signers={"allowed": [{"key_id": "*", "suites": []}]}), "signers.allowed[0].suites: empty list")
err("error-allowed-entry-suites-unknown", "Suite ids in an allowed entry must be known.",
    pol(signers={"allowed": [{"key_id": "*", "suites": ["CT-SIG-01", "ct-sig-02"]}]}),
    'signers.allowed[0].suites[1]: unknown suite "ct-sig-02"')
acc("accept-suites-untrusted-weak-signature-ignored", "Untrusted signatures do not take part in the suites step.",
    pol(suites={"minimum": "CT-SIG-02"}), facts(signatures=[sig("alice", "CT-SIG-03"), sig("mallory", "CT-SIG-01", trusted=False)]))

# --- signers.denied
rej("reject-denied-untrusted-fingerprint", "A denied key's signature rejects the bundle even though the key is not trusted.",
    pol(signers={"allowed": [{"key_id": "*"}], "denied": [{"fingerprint": FP["mallory"], "reason": "key reported stolen"}]}),
    facts(signatures=[sig("alice"), sig("mallory", trusted=False)]), "signers.denied[0]", ["mallory", FP["mallory"], "key reported stolen"])
DEN_AFTER = {"allowed": [{"key_id": "*"}], "denied": [{"key_id": "bob"}, {"key_id": "alice", "after": "2026-01-10"}]}
rej("reject-denied-after-is-inclusive", "`after` applies to bundles created at or after that instant (a date is midnight UTC).",
    pol(signers=DEN_AFTER), facts(created="2026-01-10T00:00:00Z"), "signers.denied[1]", ["alice", "2026-01-10T00:00:00Z"])
acc("accept-denied-after-not-reached", "A bundle created before `after` is not affected.",
    pol(signers=DEN_AFTER), facts(created="2026-01-09T23:59:59.999Z"))
DEN_BEFORE = {"allowed": [{"key_id": "*"}], "denied": [{"key_id": "alice", "before": "2026-01-10"}]}
acc("accept-denied-before-is-exclusive", "`before` applies only to bundles created strictly before that instant.",
    pol(signers=DEN_BEFORE), facts(created="2026-01-10T00:00:00Z"))
rej("reject-denied-before", "A bundle created before `before` is denied.",
    pol(signers=DEN_BEFORE), facts(created="2026-01-09T23:59:59Z"), "signers.denied[0]")
DEN_WIN = {"allowed": [{"key_id": "*"}], "denied": [{"key_id": "alice", "after": "2026-01-10T01:00:00+02:00", "before": "2026-01-10T00:30:00Z"}]}
rej("reject-denied-window-with-offset", "A window with an RFC 3339 offset: after 2026-01-09T23:00:00Z, before 2026-01-10T00:30:00Z.",
    pol(signers=DEN_WIN), facts(created="2026-01-10T00:00:00Z"), "signers.denied[0]", ["2026-01-09T23:00:00Z"])
acc("accept-denied-window-end", "The end of a window is exclusive.", pol(signers=DEN_WIN), facts(created="2026-01-10T00:30:00Z"))
rej("reject-denied-key-id-glob", "A deny entry's key_id is a glob.",
    pol(signers={"allowed": [{"key_id": "*"}], "denied": [{"key_id": "old-*"}]}),
    facts(signatures=[sig("alice"), sig("old-release")]), "signers.denied[0]", ["old-release"])
acc("accept-denied-needs-key-id-and-fingerprint", "A deny entry with key_id and fingerprint needs both to match the same signature.",
    pol(signers={"allowed": [{"key_id": "*"}], "denied": [{"key_id": "alice", "fingerprint": FP["bob"]}]}), facts())
rej("reject-denied-applies-to-disregarded-suite", "Deny entries apply to signatures whatever their suite.",
    pol(suites={"minimum": "CT-SIG-02"}, signers={"allowed": [{"key_id": "*"}], "denied": [{"key_id": "mallory"}]}),
    facts(signatures=[sig("alice", "CT-SIG-02"), sig("mallory", "CT-SIG-01")]), "signers.denied[0]")

# --- registries
rej("reject-registries-blocked", "A source reference matching a blocked glob is rejected; the rule names the entry.",
    pol(registries={"blocked": ["docker.io/library/redis*", "*.evil.example/*"]}),
    facts(source_reference="cdn.evil.example/library/nginx:1.25"), "registries.blocked[1]", ["cdn.evil.example/library/nginx:1.25", "*.evil.example/*"])
rej("reject-registries-not-allowed", "When registries.allowed is set the source reference must match one entry.",
    pol(registries={"allowed": ["docker.io/library/*", "ghcr.io/acme/*"]}), facts(source_reference="quay.io/acme/nginx:1"),
    "registries.allowed", ["quay.io/acme/nginx:1"])
acc("accept-registries-star-matches-slash", "`*` matches any characters, `/` included.",
    pol(registries={"allowed": ["docker.io/*"]}), facts(), ["registries.allowed[0]"])
rej("reject-registries-case-sensitive", "Reference globs are case-sensitive.",
    pol(registries={"allowed": ["docker.io/*"]}), facts(source_reference="Docker.io/library/nginx:1.25"), "registries.allowed")
acc("accept-registries-class-and-question-mark", "`[0-9]` and `?` in a reference glob.",
    pol(registries={"allowed": ["registry-[0-9].example/app?/*"]}),
    facts(source_reference="registry-7.example/app2/nginx@sha256:" + "d1"*32))
rej("reject-registries-blocked-before-allowed", "registries.blocked is checked before registries.allowed.",
    pol(registries={"allowed": ["docker.io/*"], "blocked": ["docker.io/library/nginx:latest"]}),
    facts(source_reference="docker.io/library/nginx:latest"), "registries.blocked[0]")
acc("accept-registries-literal-star-in-brackets", "`[*]` matches a literal `*` only.",
    pol(registries={"blocked": ["docker.io/[*]"]}), facts())

# --- pin
rej("reject-pin-digest-mismatch", "A pinned digest must equal the image digest.",
    pol(pin={"nginx": {"digest": OTHER_DIGEST}}), facts(), 'pin["nginx"]', [OTHER_DIGEST, DIGEST])
rej("reject-pin-signer-missing", "A pin's signers need a trusted signature from one of them.",
    pol(pin={"nginx": {"signers": ["release-a"]}}), facts(), 'pin["nginx"]', ["release-a", "alice"])
acc("accept-pin-digest-and-fingerprint-signer", "Pin signers may be fingerprints or key ids; one match is enough.",
    pol(pin={"nginx": {"digest": DIGEST, "signers": [FP["release-a"], "bob"]}}),
    facts(signatures=[sig("alice"), sig("release-a")]), ['pin["nginx"]'])
rej("reject-pin-signer-untrusted", "An untrusted signature from a pinned signer does not satisfy the pin.",
    pol(pin={"nginx": {"signers": ["release-a"]}}), facts(signatures=[sig("alice"), sig("release-a", trusted=False)]), 'pin["nginx"]')
acc("accept-pin-for-another-bundle", "A pin applies only to the bundle with exactly that name.",
    pol(pin={"redis": {"digest": OTHER_DIGEST}, "Nginx": {"digest": OTHER_DIGEST}}), facts())
rej("reject-pin-name-needs-escaping", "The rule of a pin is pin[<JSON string of the name>].",
    pol(pin={'my "app"': {"digest": OTHER_DIGEST}}), facts(bundle_name='my "app"'), 'pin["my \\"app\\""]')

# --- time
rej("reject-time-max-age", "A bundle created more than max_age_days before now is rejected.",
    pol(time={"max_age_days": 90}), facts(created="2025-11-02T23:59:59Z"), "time.max_age_days", ["2025-11-02T23:59:59Z", "90"])
acc("accept-time-max-age-boundary", "Exactly max_age_days old is still accepted.",
    pol(time={"max_age_days": 90}), facts(created="2025-11-03T00:00:00Z"), ["time.max_age_days"])
rej("reject-time-future-beyond-skew", "A bundle created later than now + skew is rejected.",
    pol(time={"clock_skew_tolerance_seconds": 300}), facts(created="2026-02-01T00:05:01Z"),
    "time.clock_skew_tolerance_seconds", ["2026-02-01T00:05:01Z", "301 seconds"])
acc("accept-time-future-within-skew", "A bundle created exactly now + skew is accepted.",
    pol(time={"clock_skew_tolerance_seconds": 300}), facts(created="2026-02-01T00:05:00Z"))
rej("reject-time-future-default-skew", "Without a time section the skew tolerance is 300 seconds.",
    pol(), facts(created="2026-02-01T00:05:00.001Z"), "time.clock_skew_tolerance_seconds")
rej("reject-time-zero-skew", "A skew tolerance of 0 rejects any bundle created after now.",
    pol(time={"clock_skew_tolerance_seconds": 0}), facts(created="2026-02-01T00:00:01Z"), "time.clock_skew_tolerance_seconds")

# --- threshold
TH = lambda **kw: pol(signers=dict({"allowed": [{"key_id": "*"}], "threshold": 2}, **kw))
rej("reject-threshold-duplicate-fingerprint", "Two key ids with one fingerprint are one signer.",
    TH(), facts(signatures=[sig("release-a"), sig("release-b", fp=FP["release-a"])]), "signers.threshold", ["requires 2", "has 1"])
acc("accept-threshold-two-distinct", "Two distinct trusted fingerprints meet a threshold of 2.",
    TH(), facts(signatures=[sig("release-a"), sig("release-b")]), ["signers.threshold"])
rej("reject-threshold-from-narrows-who-counts", "Only signers whose key id matches threshold_from count.",
    TH(threshold_from=["release-*"]), facts(signatures=[sig("release-a"), sig("bob")]), "signers.threshold", ["release-*"])
rej("reject-threshold-untrusted-not-counted", "Untrusted signatures never count towards the threshold.",
    TH(), facts(signatures=[sig("release-a"), sig("release-b", trusted=False)]), "signers.threshold")
acc("accept-threshold-with-default-allow", "The threshold applies under default allow too, without any allowed entry.",
    {"version": "1", "default_action": "allow", "signers": {"threshold": 1}}, facts())
rej("reject-threshold-with-default-allow", "Default allow does not lift the threshold.",
    {"version": "1", "default_action": "allow", "signers": {"threshold": 1}}, facts(signatures=[sig("mallory", trusted=False)]), "signers.threshold")
rej("reject-threshold-disregarded-suite-not-counted", "Signatures in a suite the policy does not accept do not count.",
    pol(suites={"minimum": "CT-SIG-02"}, signers={"allowed": [{"key_id": "*"}], "threshold": 2}),
    facts(signatures=[sig("release-a", "CT-SIG-02"), sig("release-b", "CT-SIG-01")]), "signers.threshold")

# --- attestations
rej("reject-attestation-provenance-missing", "A required provenance attestation is missing (exit 5).",
    pol(require_attestations={"provenance": True, "sbom": True}), facts(attestations=["sbom"]),
    "require_attestations.provenance", ["provenance", "sbom"], kind="attestation_missing")
rej("reject-attestation-sbom-missing", "A required SBOM is missing.",
    pol(require_attestations={"sbom": True}), facts(attestations=["provenance"]), "require_attestations.sbom", kind="attestation_missing")
rej("reject-attestation-transparency-log-missing", "Kinds are checked in the order provenance, sbom, transparency_log.",
    pol(require_attestations={"provenance": True, "sbom": True, "transparency_log": True}), facts(attestations=["provenance", "sbom"]),
    "require_attestations.transparency_log", kind="attestation_missing")
acc("accept-attestations-present", "All required attestations present.",
    pol(require_attestations={"provenance": True, "sbom": True, "transparency_log": True}),
    facts(attestations=["provenance", "sbom", "transparency_log"]), ["require_attestations"])

# --- evaluation order
rej("reject-order-suites-before-denied", "Step 1 (suites) runs before step 2 (signers.denied).",
    pol(suites={"minimum": "CT-SIG-02"}, signers={"allowed": [{"key_id": "*"}], "denied": [{"key_id": "alice"}]}), facts(), "suites.minimum")
rej("reject-order-first-denied-entry-wins", "Deny entries are checked in file order; the first entry that applies fires.",
    pol(signers={"allowed": [{"key_id": "*"}], "denied": [{"key_id": "bob"}, {"key_id": "alice"}]}),
    facts(signatures=[sig("alice"), sig("bob")]), "signers.denied[0]", ["bob"])
rej("reject-order-denied-before-registries", "Step 2 (signers.denied) runs before step 3 (registries).",
    pol(signers={"allowed": [{"key_id": "*"}], "denied": [{"key_id": "alice"}]}, registries={"blocked": ["*"]}), facts(), "signers.denied[0]")
rej("reject-order-registries-before-pin", "Step 3 (registries) runs before step 4 (pin).",
    pol(registries={"blocked": ["*"]}, pin={"nginx": {"digest": OTHER_DIGEST}}), facts(), "registries.blocked[0]")
rej("reject-order-pin-before-time", "Step 4 (pin) runs before step 5 (time).",
    pol(pin={"nginx": {"digest": OTHER_DIGEST}}, time={"max_age_days": 1}), facts(), 'pin["nginx"]')
rej("reject-order-time-before-signers", "Step 5 (time) runs before step 6 (signers.allowed).",
    {"version": "1", "time": {"max_age_days": 1}}, facts(), "time.max_age_days")
rej("reject-order-required-before-default", "Within step 6, required entries are checked before the default action.",
    pol(signers={"allowed": [{"key_id": "release-*", "required": True}]}), facts(signatures=[sig("bob")]), "signers.allowed[0]")
rej("reject-order-allowed-before-threshold", "Step 6 runs before step 7 (threshold).",
    pol(signers={"allowed": [{"key_id": "release-*"}], "threshold": 2}), facts(), "default_action")
rej("reject-order-policy-before-attestations", "Policy rules (exit 4) are checked before attestations (exit 5).",
    pol(signers={"allowed": [{"key_id": "release-*"}]}, require_attestations={"sbom": True}), facts(), "default_action")

# --- invalid policies
err("error-version-missing", "version is required.", {"default_action": "deny"}, "version: missing")
err("error-version-unsupported", "Only version \"1\" is understood; the version is checked before unknown fields.",
    {"version": "2", "signers_v2": {}}, 'version: unsupported policy version "2"')
err("error-version-not-a-string", "version is the string \"1\", not a number.", {"version": 1}, 'version: expected the string "1"')
err("error-unknown-top-level-field", "Unknown fields are errors, never ignored.", {"version": "1", "signer": {}}, "signer: unknown field")
err("error-unknown-field-in-allowed-entry", "A misspelt field inside a list entry is named with its index.",
    pol(signers={"allowed": [{"key_id": "*", "requried": True}]}), "signers.allowed[0].requried: unknown field")
err("error-unknown-field-in-denied-entry", "denied entries have no `until` field.",
    pol(signers={"denied": [{"key_id": "x", "until": "2026-01-01"}]}), "signers.denied[0].until: unknown field")
err("error-unknown-field-in-signers", "signers has four fields.", pol(signers={"allow": []}), "signers.allow: unknown field")
err("error-unknown-field-in-registries", "registries has `allowed` and `blocked`.", pol(registries={"allow": ["*"]}), "registries.allow: unknown field")
err("error-unknown-field-in-suites", "suites has `allowed` and `minimum`.", pol(suites={"maximum": "CT-SIG-03"}), "suites.maximum: unknown field")
err("error-unknown-attestation-kind", "Only provenance, sbom and transparency_log can be required.",
    pol(require_attestations={"slsa": True}), "require_attestations.slsa: unknown field")
err("error-unknown-field-in-pin", "A pin has `digest` and `signers`.", pol(pin={"nginx": {"tag": "1.25"}}), 'pin["nginx"].tag: unknown field')
err("error-unknown-field-in-time", "time has max_age_days and clock_skew_tolerance_seconds.", pol(time={"max_age": 3}), "time.max_age: unknown field")
err("error-default-action-invalid", "default_action is allow or deny.", pol(default_action="reject"), 'default_action: expected "allow" or "deny"')
err("error-denied-invalid-month", "Dates are checked as calendar dates.",
    pol(signers={"denied": [{"key_id": "a"}, {"key_id": "b", "after": "2026-13-01"}]}), 'signers.denied[1].after: invalid date "2026-13-01"')
err("error-denied-invalid-day", "2026 is not a leap year.", pol(signers={"denied": [{"key_id": "a", "before": "2026-02-29"}]}),
    'signers.denied[0].before: invalid date "2026-02-29"')
err("error-denied-date-time-without-offset", "An RFC 3339 date-time needs Z or an offset.",
    pol(signers={"denied": [{"key_id": "a", "before": "2026-01-01T00:00:00"}]}), "signers.denied[0].before: invalid date")
err("error-denied-date-with-space", "The date and time are separated by T, not a space.",
    pol(signers={"denied": [{"key_id": "a", "after": "2026-01-01 00:00:00Z"}]}), "signers.denied[0].after: invalid date")
err("error-denied-leap-second", "Leap seconds are not accepted.",
    pol(signers={"denied": [{"key_id": "a", "after": "2016-12-31T23:59:60Z"}]}), "signers.denied[0].after: invalid date")
err("error-denied-empty-window", "`after` must be earlier than `before`.",
    pol(signers={"denied": [{"key_id": "a", "after": "2026-02-01", "before": "2026-01-01"}]}), 'signers.denied[0]: "after"')
err("error-denied-date-not-a-string", "Dates are strings.", pol(signers={"denied": [{"key_id": "a", "after": 20260101}]}),
    "signers.denied[0].after: expected a string")
err("error-allowed-bad-fingerprint", "A fingerprint is 64 hex digits.", pol(signers={"allowed": [{"fingerprint": "SHA256:a1a1:a1a1"}]}),
    "signers.allowed[0].fingerprint: invalid fingerprint")
err("error-allowed-entry-without-key-id-or-fingerprint", "An entry that names no signer is refused.",
    pol(signers={"allowed": [{"required": True}]}), 'signers.allowed[0]: needs "key_id", "fingerprint" or both')
err("error-required-not-boolean", "required is a boolean.", pol(signers={"allowed": [{"key_id": "*", "required": "true"}]}),
    "signers.allowed[0].required: expected true or false")
err("error-bad-key-id-glob", "An unclosed `[` is an invalid glob.", pol(signers={"allowed": [{"key_id": "release-["}]}),
    'signers.allowed[0].key_id: invalid glob "release-["')
err("error-double-star-glob", "`**` is refused: `*` already matches `/`.", pol(registries={"allowed": ["docker.io/**"]}),
    'registries.allowed[0]: invalid glob "docker.io/**"')
err("error-empty-glob", "An empty glob is refused.", pol(signers={"allowed": [{"key_id": "*"}], "threshold": 1, "threshold_from": [""]}),
    "signers.threshold_from[0]: empty glob")
err("error-threshold-negative", "threshold is a whole number, 0 or more.", pol(signers={"threshold": -1}), "signers.threshold: expected a whole number")
err("error-threshold-fraction", "threshold is a whole number.", pol(signers={"threshold": 1.5}), "signers.threshold: expected a whole number")
err("error-threshold-from-without-threshold", "threshold_from without threshold would do nothing.",
    pol(signers={"allowed": [{"key_id": "*"}], "threshold_from": ["release-*"]}), "signers.threshold_from: has no effect without signers.threshold")
err("error-registries-allowed-empty", "An empty registries.allowed would reject everything; it is refused.",
    pol(registries={"allowed": []}), "registries.allowed: empty list")
err("error-suite-unknown", "Suite ids are CT-SIG-01, CT-SIG-02, CT-SIG-03 exactly.",
    pol(suites={"allowed": ["CT-SIG-01", "CT-SIG-04"]}), 'suites.allowed[1]: unknown suite "CT-SIG-04"')
err("error-suites-minimum-above-allowed", "A minimum above every allowed suite leaves nothing to accept.",
    pol(suites={"allowed": ["CT-SIG-01", "CT-SIG-02"], "minimum": "CT-SIG-03"}), "suites.minimum: CT-SIG-03 is above every suite")
err("error-pin-bad-digest", "Pinned digests are sha256: with 64 lowercase hex digits.",
    pol(pin={"nginx": {"digest": "sha256:" + "D1"*32}}), 'pin["nginx"].digest: invalid sha256 digest')
err("error-pin-bad-signer", "A pin signer must be a key id or a fingerprint.",
    pol(pin={"nginx": {"signers": ["release a"]}}), 'pin["nginx"].signers[0]: "release a" is neither a key id')
err("error-pin-empty", "A pin must constrain something.", pol(pin={"nginx": {}}), 'pin["nginx"]: a pin needs')
err("error-pin-not-an-object", "pin maps names to objects.", pol(pin={"nginx": DIGEST}), 'pin["nginx"]: expected an object')
err("error-max-age-zero", "max_age_days is at least 1.", pol(time={"max_age_days": 0}), "time.max_age_days: must be at least 1")
err("error-clock-skew-too-large", "Skew tolerance is at most one day.", pol(time={"clock_skew_tolerance_seconds": 86401}),
    "time.clock_skew_tolerance_seconds: 86401 is too large")
err("error-null-instead-of-object", "null is not a way to omit a field.", pol(signers=None) | {"signers": None}, "signers: expected an object, found null")
err("error-duplicate-key", "Duplicate keys are refused (given as raw text).",
    '{"version": "1", "default_action": "allow", "default_action": "deny"}', 'duplicate key "default_action"')
err("error-not-json", "A trailing comma is not JSON (given as raw text).", '{"version": "1",}', "not valid JSON")
err("error-top-level-not-object", "The policy is a JSON object.", ["version", "1"], "policy: expected an object, found an array")
err("error-denied-reason-not-string", "reason is a string.", pol(signers={"denied": [{"key_id": "a", "reason": ["leaked"]}]}),
    "signers.denied[0].reason: expected a string, found an array")
err("error-denied-bad-fingerprint", "A deny entry's fingerprint is checked like any other.",
    pol(signers={"denied": [{"fingerprint": HEX["mallory"][:62]}]}), "signers.denied[0].fingerprint: invalid fingerprint")
err("error-signers-allowed-not-array", "signers.allowed is an array of entries.", pol(signers={"allowed": {"key_id": "*"}}),
    "signers.allowed: expected an array, found an object")
err("error-registries-blocked-not-array", "registries.blocked is an array of globs.", pol(registries={"blocked": "*.evil.example/*"}),
    'registries.blocked: expected an array, found string "*.evil.example/*"')
err("error-attestation-flag-not-boolean", "Attestation requirements are booleans.", pol(require_attestations={"sbom": "yes"}),
    'require_attestations.sbom: expected true or false, found string "yes"')
err("error-pin-empty-name", "A pin needs a bundle name.", pol(pin={"": {"digest": DIGEST}}), 'pin[""]: a pin needs a bundle name')
err("error-pin-signers-empty", "An empty signers list is refused; omit it instead.", pol(pin={"nginx": {"signers": []}}),
    'pin["nginx"].signers: empty list')
err("error-threshold-too-large", "threshold fits in 32 bits.", pol(signers={"threshold": 4294967296}),
    "signers.threshold: 4294967296 is too large")
err("error-max-age-too-large", "max_age_days is at most 36500.", pol(time={"max_age_days": 36501}), "time.max_age_days: 36501 is too large")
err("error-glob-too-long", "Globs are at most 1024 characters.", pol(registries={"blocked": ["a" * 1025]}),
    "registries.blocked[0]: glob is longer than 1024 characters")
err("error-byte-order-mark", "A byte-order mark is not JSON (given as raw text).", "\ufeff" + '{"version": "1"}', "not valid JSON")
print(len(names), "vectors")
