//! The provenance `ct pack` puts in every signed bundle (attestation `provenance`): an in-toto
//! Statement v1 with a SLSA Provenance v1 predicate in a DSSE envelope. Checked by independent
//! tools: the statement and its predicate parse strictly with the `in-toto-attestation` Python
//! library (its protobuf definitions, from PyPI, in a virtual environment of the fixture cache)
//! and the envelope's Ed25519 signature verifies with OpenSSL over DSSE's pre-authentication
//! encoding, built here independently. `ct verify` checks the envelope's signatures (a forged one
//! is exit 2, a statement about another image exit 1), `ct explain` shows what it says, a hybrid
//! key signs it too, and `--no-provenance` leaves it out.

use base64::Engine as _;
use cerro_tests::fixtures::python_venv;
use cerro_tests::forge::{forge_provenance, forger_public_key, Layer, TarBuilder};
use cerro_tests::{attestation, Compression, TestEnv, TAG};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::Command;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// DSSE v1's pre-authentication encoding, written from the DSSE specification.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    m.extend_from_slice(payload);
    m
}

/// The statement and its predicate parsed strictly (unknown fields are errors) into the
/// in-toto-attestation library's protobuf messages and validated by it; prints what it read.
const CHECK_STATEMENT: &str = r#"
import json, sys
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
text = open(sys.argv[1]).read()
st = json_format.Parse(text, statement_pb2.Statement())
Statement.copy_from_pb(st).validate()
prov = json_format.ParseDict(json.loads(text)["predicate"], provenance_pb2.Provenance())
for rd in prov.build_definition.resolved_dependencies:
    ResourceDescriptor.copy_from_pb(rd).validate()
print(json.dumps({
    "type": st.type,
    "predicate_type": st.predicate_type,
    "subject": [dict(s.digest) for s in st.subject],
    "builder": prov.run_details.builder.id,
    "builder_version": dict(prov.run_details.builder.version),
    "build_type": prov.build_definition.build_type,
    "source": prov.build_definition.resolved_dependencies[0].uri,
}))
"#;

fn check_with_in_toto(dir: &Path, statement: &[u8]) -> Value {
    let python = python_venv(&["in-toto-attestation==0.9.3"]);
    fs::write(dir.join("statement.json"), statement).unwrap();
    fs::write(dir.join("check.py"), CHECK_STATEMENT).unwrap();
    let mut c = Command::new(python);
    c.arg(dir.join("check.py")).arg(dir.join("statement.json"));
    let r = cerro_tests::run_command(c);
    r.ok();
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn a_packed_bundle_carries_slsa_provenance_that_independent_tools_accept() {
    let env = TestEnv::new();
    env.keygen("alice");
    env.image(Compression::Gzip, "img");
    let packed = env.pack(&format!("oci:img:{TAG}"), "a.ctp", &["--name", "app"]);
    let (body, media_type) = attestation(&env.path("a.ctp"), "provenance").expect("provenance");
    assert_eq!(media_type, "application/vnd.dsse.envelope.v1+json");
    let envelope: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    let payload = B64.decode(envelope["payload"].as_str().unwrap()).unwrap();
    let seen = check_with_in_toto(env.root(), &payload);
    assert_eq!(seen["type"], "https://in-toto.io/Statement/v1");
    assert_eq!(seen["predicate_type"], "https://slsa.dev/provenance/v1");
    let image = packed["image_digest"].as_str().unwrap();
    assert_eq!(
        seen["subject"],
        serde_json::json!([{"sha256": image.trim_start_matches("sha256:")}]),
        "the subject is the image manifest"
    );
    assert_eq!(seen["builder"], "https://cerro-torre.invalid/builders/ct");
    assert_eq!(
        seen["builder_version"]["ct"],
        env!("CARGO_PKG_VERSION"),
        "{seen}"
    );
    assert_eq!(seen["source"], packed["source"], "{seen}");
    // One signature, alice's, named by her fingerprint; OpenSSL verifies it over the PAE.
    let sigs = envelope["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1);
    let alice: Value =
        serde_json::from_slice(&fs::read(env.path("config/trust/alice.pub")).unwrap()).unwrap();
    assert_eq!(sigs[0]["keyid"], alice["fingerprint"]);
    let public = B64.decode(alice["public_key"].as_str().unwrap()).unwrap();
    let sig = B64.decode(sigs[0]["sig"].as_str().unwrap()).unwrap();
    let message = pae("application/vnd.in-toto+json", &payload);
    cerro_tests::openssl_ed25519_verify(env.root(), &public, &message, &sig)
        .ok()
        .stdout_has("Signature Verified Successfully");
    let mut other = payload.clone();
    other.push(b' ');
    assert_ne!(
        cerro_tests::openssl_ed25519_verify(
            env.root(),
            &public,
            &pae("application/vnd.in-toto+json", &other),
            &sig
        )
        .code,
        0,
        "the signature covers the payload"
    );
    // ct verify checked it; ct explain says what it says.
    let v = env.ct(&["--json", "verify", "a.ctp"]).ok().json();
    let note = v["report"]["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["role"] == "attestation provenance")
        .map(|b| b["note"].clone())
        .unwrap();
    assert!(note.as_str().unwrap().contains("valid, trusted"), "{v}");
    env.ct(&["explain", "a.ctp", "--attestations"])
        .ok()
        .stdout_has("provenance  SLSA v1, built by https://cerro-torre.invalid/builders/ct")
        .stdout_has(&format!("from {}", packed["source"].as_str().unwrap()));
    // Packing again gives the same bytes; --no-provenance leaves it out (the SBOM stays).
    env.pack(&format!("oci:img:{TAG}"), "b.ctp", &["--name", "app"]);
    assert_eq!(
        fs::read(env.path("a.ctp")).unwrap(),
        fs::read(env.path("b.ctp")).unwrap()
    );
    env.pack(
        &format!("oci:img:{TAG}"),
        "c.ctp",
        &["--name", "app", "--no-provenance"],
    );
    assert!(attestation(&env.path("c.ctp"), "provenance").is_none());
    assert!(attestation(&env.path("c.ctp"), "sbom").is_some());
}

#[test]
fn a_hybrid_key_signs_the_provenance_with_both_halves() {
    let env = TestEnv::new();
    env.ct(&["keygen", "--id", "rel", "--suite", "CT-SIG-02"])
        .ok();
    env.image(Compression::Gzip, "img");
    env.ct(&[
        "pack",
        &format!("oci:img:{TAG}"),
        "-o",
        "h.ctp",
        "-k",
        "rel",
    ])
    .ok();
    let (body, _) = attestation(&env.path("h.ctp"), "provenance").unwrap();
    let envelope: Value = serde_json::from_slice(&body).unwrap();
    let sig = B64
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    assert_eq!(sig.len(), 64 + 4627, "Ed25519 then ML-DSA-87");
    let v = env.ct(&["--json", "verify", "h.ctp"]).ok().json();
    assert!(v.to_string().contains("valid, trusted"), "{v}");
}

/// A one-file image for forged bundles.
fn layer() -> Layer {
    let mut t = TarBuilder::new();
    t.file(b"hello", b"hello\n");
    Layer::tar(t.finish())
}

#[test]
fn a_forged_envelope_signature_is_2_and_a_statement_about_another_image_is_1() {
    let env = TestEnv::new();
    env.trust(&forger_public_key(env.root()));
    // The envelope's signature replaced by one over other bytes; the manifest, naming the
    // changed envelope, is validly signed.
    let bad_sig = forge_provenance(env.root(), "badsig", &[layer()], |e| {
        let sig = B64
            .decode(e["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        let mut sig = sig;
        sig[5] ^= 1;
        e["signatures"][0]["sig"] = Value::String(B64.encode(sig));
    });
    env.ct(&["verify", bad_sig.to_str().unwrap()]).fails(
        2,
        &[
            "attestation provenance",
            "envelope's signature by forger",
            "does not verify",
        ],
    );
    // A statement about another image (its signature no longer matches either, but the
    // subject is checked first): 1.
    let other = forge_provenance(env.root(), "other", &[layer()], |e| {
        let payload = B64.decode(e["payload"].as_str().unwrap()).unwrap();
        let mut st: Value = serde_json::from_slice(&payload).unwrap();
        st["subject"][0]["digest"]["sha256"] = Value::String("ab".repeat(32));
        e["payload"] = Value::String(B64.encode(serde_json::to_vec(&st).unwrap()));
    });
    env.ct(&["verify", other.to_str().unwrap()]).fails(
        1,
        &[
            "attestation provenance",
            "is about abab",
            "not this bundle's image",
        ],
    );
    // Not an envelope at all: malformed, 10.
    let junk = forge_provenance(env.root(), "junk", &[layer()], |e| {
        e["payloadType"] = Value::String("text/plain".into());
    });
    env.ct(&["verify", junk.to_str().unwrap()]).fails(
        10,
        &["attestation provenance", "payload type \"text/plain\""],
    );
    // Untouched, it verifies.
    let good = forge_provenance(env.root(), "good", &[layer()], |_| {});
    env.ct(&["verify", good.to_str().unwrap()]).ok();
}
