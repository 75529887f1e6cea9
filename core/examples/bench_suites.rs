//! Micro-benchmark of the signature suites, run by `tools/bench/signature-suites` (release
//! build): key generation from a fresh seed, signing and verifying a manifest-sized message, per
//! suite — the cryptography alone, without key-file sealing (Argon2id) or bundle I/O. Prints one
//! JSON object per suite: median and mean microseconds per operation.
//!
//! Usage: bench_suites [ITERATIONS]   (default 200; keygen runs ITERATIONS/4 times)

use cerro_core::sign::{signed_message, SignatureFile, Signer, Suite};
use cerro_core::KeyId;
use std::time::Instant;

/// A message the size of a typical canonical manifest (a few layers, no attestations).
const MESSAGE_BYTES: usize = 1200;

fn stats(mut us: Vec<f64>) -> (f64, f64) {
    us.sort_by(|a, b| a.total_cmp(b));
    let median = us[us.len() / 2];
    let mean = us.iter().sum::<f64>() / us.len() as f64;
    (median, mean)
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64() * 1e6)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("ITERATIONS is a number"))
        .unwrap_or(200)
        .max(4);
    let id = KeyId::new("bench").unwrap();
    for suite in Suite::ALL {
        let keygen: Vec<f64> = (0..n / 4)
            .map(|_| time(|| Signer::generate(id.clone(), suite).unwrap()).1)
            .collect();
        let (signer, _) = Signer::generate(id.clone(), suite).unwrap();
        // Distinct messages: ML-DSA's rejection sampling takes a message-dependent number of
        // rounds, so one message repeated would measure one point of that distribution.
        let manifests: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let mut m = vec![b'x'; MESSAGE_BYTES];
                m[..8].copy_from_slice(&(i as u64).to_le_bytes());
                m
            })
            .collect();
        let mut files: Vec<SignatureFile> = Vec::with_capacity(n);
        let mut sign = Vec::with_capacity(n);
        for m in &manifests {
            let (f, us) = time(|| signer.sign(m));
            files.push(f);
            sign.push(us);
        }
        let verify: Vec<f64> = files
            .iter()
            .zip(&manifests)
            .map(|(f, m)| {
                let (r, us) = time(|| f.verify(m));
                assert_eq!(r.unwrap(), suite);
                us
            })
            .collect();
        let (kg_med, kg_mean) = stats(keygen);
        let (s_med, s_mean) = stats(sign);
        let (v_med, v_mean) = stats(verify);
        let sig_file = files[0].encode().len();
        let msg = signed_message(suite, &manifests[0]).len();
        println!(
            "{}",
            serde_json::json!({
                "suite": suite.id(), "iterations": n, "message_bytes": msg,
                "signature_file_bytes": sig_file,
                "keygen_us": {"median": kg_med, "mean": kg_mean},
                "sign_us": {"median": s_med, "mean": s_mean},
                "verify_us": {"median": v_med, "mean": v_mean},
            })
        );
    }
}
