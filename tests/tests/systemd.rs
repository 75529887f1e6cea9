//! The service unit template (`tools/systemd/ct-mount@.service`) and what it relies on:
//! `systemd-analyze verify` accepts it without a single complaint (and does complain about a
//! broken copy, so the check can fail), and `ct mount --foreground` tells the service manager
//! when the mount answers (`READY=1` on `$NOTIFY_SOCKET`, as Type=notify needs).

use cerro_tests::mount::pack_mount_image;
use cerro_tests::{ct_bin, repo_root, run_command, TestEnv};
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `systemd-analyze verify` of an instance of `unit` (the template's text), with the unit's
/// `ct` pointing at the binary under test; answers what it printed.
fn verify(dir: &Path, name: &str, unit: &str) -> cerro_tests::Run {
    let text = unit.replace("/usr/local/bin/ct", ct_bin().to_str().unwrap());
    fs::write(dir.join(format!("{name}@.service")), text).unwrap();
    // The unit's Documentation= names ct's man pages: the ones of the binary under test, made
    // here (a fresh machine has none installed), which `man` finds through MANPATH.
    let man = dir.join("man");
    if !man.join("man1").join("ct-mount.1").exists() {
        let mut c = Command::new(ct_bin());
        c.arg("__man").arg(man.join("man1"));
        run_command(c).ok();
    }
    let mut c = Command::new("systemd-analyze");
    c.arg("verify")
        .arg(dir.join(format!("{name}@example.service")))
        .env("MANPATH", &man)
        .current_dir(dir);
    run_command(c)
}

#[test]
fn the_unit_template_passes_systemd_analyze_verify() {
    let env = TestEnv::new();
    let unit = fs::read_to_string(repo_root().join("tools/systemd/ct-mount@.service")).unwrap();
    for want in [
        "Type=notify",
        "KillMode=process",
        "EnvironmentFile=/etc/cerro/mounts/%i.conf",
        "mount --foreground",
    ] {
        assert!(unit.contains(want), "{want}");
    }
    let r = verify(env.root(), "ct-mount", &unit);
    r.ok();
    assert_eq!(r.stderr.trim(), "", "systemd-analyze complained");
    assert_eq!(r.stdout.trim(), "", "systemd-analyze complained");
    // The check is not blind: a broken copy is reported.
    let broken = unit.replace("Type=notify", "Type=sometimes");
    let r = verify(env.root(), "broken", &broken);
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("Failed to parse service type"),
        "a bad Type= went unnoticed: {} {}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn a_foreground_mount_tells_the_service_manager_when_it_answers() {
    let env = TestEnv::new();
    env.keygen("alice");
    pack_mount_image(&env, "mnt.ctp", "mnt");
    let store = env.path("store");
    let mp = env.path("mnt");
    let sock_path = env.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    // The guard unmounts whatever happens; the foreground ct ends once the mount is gone.
    let guard = cerro_tests::mount::Mounted::guard(&env, &store, &mp);
    let running = env
        .cmd(&[
            "--store",
            store.to_str().unwrap(),
            "mount",
            "--foreground",
            "mnt.ctp",
            mp.to_str().unwrap(),
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        .start();
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("READY=1 within a minute");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.starts_with("READY=1\n"), "{msg}");
    assert!(
        msg.contains(&format!("STATUS=serving {}", mp.display())),
        "{msg}"
    );
    // Ready means answering.
    assert_eq!(fs::read(mp.join("data/public")).unwrap(), b"for everyone\n");
    env.ct(&[
        "--store",
        store.to_str().unwrap(),
        "umount",
        mp.to_str().unwrap(),
    ])
    .ok();
    running.wait(Duration::from_secs(30)).ok();
    drop(guard);
}
