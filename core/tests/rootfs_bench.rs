//! Micro-benchmark behind `VERIFY_BLOCK_SIZE_V1` (spec/rootfs.md §4.3): hashing with an
//! outboard, verifying every block in order, and verifying one block per small random read, at
//! 16, 32 and 64 KiB blocks. Ignored in the test suite; run on demand:
//! `cargo test --release -p cerro-core --test rootfs_bench -- --ignored --nocapture`.

use cerro_core::rootfs::outboard::{verify_block_with_block_size, Outboard};
use cerro_core::rootfs::BlockIndex;
use std::time::Instant;

const FILE_LEN: usize = 256 << 20;
const ROUNDS: usize = 3;

fn gib_per_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / (1u64 << 30) as f64
}

fn best<F: FnMut()>(mut f: F) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "benchmark: run on demand with --ignored --nocapture"]
fn block_size_measurement() {
    let data: Vec<u8> = (0..FILE_LEN)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
        .collect();
    let plain = best(|| {
        std::hint::black_box(blake3::hash(&data));
    });
    println!(
        "blake3::hash (one call, whole file): {:.2} GiB/s",
        gib_per_s(FILE_LEN, plain)
    );
    for bs in [16u64 << 10, 32 << 10, 64 << 10] {
        let mut out = None;
        let compute = best(|| {
            out = Some(Outboard::compute_with_block_size(&data[..], bs).unwrap());
        });
        let (root, ob, size) = out.unwrap();
        let n = FILE_LEN / bs as usize;
        let verify_all = best(|| {
            for (i, b) in data.chunks(bs as usize).enumerate() {
                verify_block_with_block_size(
                    &root,
                    size,
                    ob.as_bytes(),
                    BlockIndex(i as u64),
                    b,
                    bs,
                )
                .unwrap();
            }
        });
        // A 4 KiB random read verifies the one block that holds it.
        let picks: Vec<usize> = (0..2000).map(|i| (i * 7919) % n).collect();
        let random = best(|| {
            for &i in &picks {
                let b = &data[i * bs as usize..(i + 1) * bs as usize];
                verify_block_with_block_size(
                    &root,
                    size,
                    ob.as_bytes(),
                    BlockIndex(i as u64),
                    b,
                    bs,
                )
                .unwrap();
            }
        });
        println!(
            "block {:>2} KiB: compute+outboard {:.2} GiB/s, verify all blocks {:.2} GiB/s, \
             one 4 KiB read {:.1} µs, outboard {} bytes/GiB ({:.3} %)",
            bs >> 10,
            gib_per_s(FILE_LEN, compute),
            gib_per_s(FILE_LEN, verify_all),
            random / picks.len() as f64 * 1e6,
            (((1u64 << 30) / bs) - 1) * 64,
            64.0 / bs as f64 * 100.0,
        );
    }
}
