//! `ct run` end to end with the real `runc` (and once with `podman`): the image's default command (with its Env and
//! WorkingDir) and a command after `--`, the container's exit status as ct's, `--user 65534`
//! reading a world-readable file and refused a 0600 one, writes to /tmp landing in the overlay
//! and never in the store, Ctrl-C passed to the container, a runtime that fails, and a bundle
//! whose signature fails stopping before anything is mounted. After every run nothing of it is
//! left: no mount, staging directory or container record (each test has its own run directory,
//! `CT_RUN_DIR`, so parallel tests are not confused; a guard stops and unmounts whatever a
//! failing run left). While a container runs, its mounts exist only in ct run's own mount
//! namespace, never in the host's.

use cerro_tests::run::{mounts_of, mounts_under, Background, RunEnv};
use cerro_tests::{rawtar, tool, TestEnv, TIMEOUT};
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn runs_the_default_command_with_the_image_env_and_workdir() {
    let e = RunEnv::new(&[
        "--config.cmd",
        "sh",
        "--config.cmd",
        "-c",
        "--config.cmd",
        "echo default-cmd-ran in $(pwd) as $(id -u) with GREETING=$GREETING; cat public",
        "--config.env",
        "GREETING=hello",
        "--config.workingdir",
        "/data",
    ]);
    let r = e.run(&["run.ctp"]);
    r.ok();
    assert!(
        r.stdout
            .contains("default-cmd-ran in /data as 0 with GREETING=hello\nfor everyone\n"),
        "{r:?}"
    );
}

#[test]
fn args_after_the_double_dash_replace_cmd_and_the_exit_status_is_ours() {
    let e = RunEnv::new(&[]);
    let r = e.run(&["run.ctp", "--", "sh", "-c", "echo from-args; exit 7"]);
    r.assert_code(7);
    assert_eq!(r.stdout, "from-args\n", "{r:?}");
    // By name, now that the store has it.
    e.run(&["run", "--", "sh", "-c", "exit 255"])
        .assert_code(255);
    e.run(&["run", "--", "true"]).ok();
}

#[test]
fn user_65534_reads_a_world_readable_file_and_is_refused_a_0600_one() {
    let e = RunEnv::new(&[]);
    let r = e.run(&[
        "--user",
        "65534",
        "run.ctp",
        "--",
        "sh",
        "-c",
        "id -u; id -g; cat /data/public; cat /data/secret",
    ]);
    r.assert_code(1);
    assert_eq!(r.stdout, "65534\n65534\nfor everyone\n", "{r:?}");
    assert!(
        r.stderr
            .contains("can't open '/data/secret': Permission denied"),
        "{r:?}"
    );
    // Root reads it (the kernel enforces the image's modes, not a blanket refusal).
    let r = e.run(&["run", "--", "cat", "/data/secret"]);
    r.ok();
    assert_eq!(r.stdout, "top secret\n");
    // Names come from the image's /etc/passwd and /etc/group.
    let r = e.run(&[
        "--user",
        "nobody:nogroup",
        "run",
        "--",
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    r.ok();
    assert_eq!(r.stdout, "65534\n65534\n", "{r:?}");
    e.run(&["--user", "nosuchuser", "run", "--", "true"])
        .fails(64, &["nosuchuser", "/etc/passwd"]);
}

#[test]
fn writes_land_in_the_overlay_and_never_in_the_store() {
    let e = RunEnv::new(&[]);
    e.run(&["run.ctp", "--", "true"]).ok();
    let before = TestEnv::snapshot(&e.store);
    let r = e.run(&[
        "run",
        "--",
        "sh",
        "-c",
        "echo scratch > /tmp/new && cat /tmp/new && echo more >> /data/public && cat /data/public \
         && rm /data/secret && ls /data/secret",
    ]);
    r.assert_code(1); // ls of the removed file
    assert_eq!(r.stdout, "scratch\nfor everyone\nmore\n", "{r:?}");
    assert_eq!(TestEnv::snapshot(&e.store), before, "the store changed");
    // A new container starts from the image again.
    let r = e.run(&[
        "run",
        "--",
        "sh",
        "-c",
        "cat /data/public /data/secret; ls /tmp",
    ]);
    r.ok();
    assert_eq!(r.stdout, "for everyone\ntop secret\n", "{r:?}");
    e.env
        .ct(&["--store", e.store.to_str().unwrap(), "store", "fsck"])
        .ok();
}

#[test]
fn ctrl_c_reaches_the_container_and_everything_is_taken_down() {
    let e = RunEnv::new(&[]);
    let running = Background::start(e.cmd(&[
        "run.ctp",
        "--",
        "sh",
        "-c",
        "trap 'echo got-int; exit 42' INT; touch /started; while :; do sleep 0.1; done",
    ]));
    // The container's first write appears in the overlay's upper layer, which exists only in
    // ct run's mount namespace: look through its /proc/PID/root.
    let pid = running.pid().to_string();
    let deadline = Instant::now() + TIMEOUT;
    let started = loop {
        let hit = e
            .stages()
            .into_iter()
            .map(|d| {
                Path::new(&format!("/proc/{pid}/root"))
                    .join(d.strip_prefix("/").unwrap())
                    .join("rw/upper/started")
            })
            .find(|p| p.exists());
        if let Some(p) = hit {
            break p;
        }
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Mounted in ct run's namespace, and nothing of it in the host's.
    assert!(!mounts_of(&pid, &e.run_dir).is_empty());
    assert_eq!(mounts_under(&e.run_dir), Vec::<String>::new());
    tool("kill", &["-INT", &pid]);
    let r = running.wait();
    r.assert_code(42);
    assert_eq!(r.stdout, "got-int\n", "{r:?}");
    assert!(!started.exists());
    e.assert_clean(&r);
}

#[test]
fn a_runtime_that_fails_leaves_nothing_behind() {
    let e = RunEnv::new(&[]);
    let r = e.run(&["run.ctp", "--", "/no/such/program"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("/no/such/program"), "{r:?}");
    e.run(&["--runtime", "podman-ish", "run", "--", "true"])
        .fails(64, &["unknown runtime", "podman-ish"]);
}

#[test]
fn no_verify_warns_and_still_runs_verified_blocks() {
    let e = RunEnv::new(&[]);
    e.run(&["run.ctp", "--", "true"]).ok();
    let r = e.run(&["--no-verify", "run", "--", "cat", "/data/public"]);
    r.ok();
    assert_eq!(r.stdout, "for everyone\n");
    assert!(r.stderr.contains("warning: --no-verify"), "{r:?}");
}

#[test]
fn a_bundle_whose_signature_fails_stops_before_anything_is_mounted() {
    let e = RunEnv::new(&[]);
    let mut entries = rawtar::read(&e.env.path("run.ctp"));
    let i = rawtar::find(&entries, "cerro/signatures/alice.sig");
    let mut sig: serde_json::Value = serde_json::from_slice(&entries[i].data).unwrap();
    let mut raw = sig["signature"].as_str().unwrap().to_string().into_bytes();
    raw[3] = if raw[3] == b'A' { b'B' } else { b'A' };
    sig["signature"] = String::from_utf8(raw).unwrap().into();
    entries[i].set_data(&serde_json::to_vec_pretty(&sig).unwrap());
    let bad = e.env.path("bad.ctp");
    rawtar::write(&bad, &entries);
    let r = e.run(&[
        bad.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "echo should-not-run",
    ]);
    r.fails(2, &["alice", "does not match", "nothing was mounted"]);
    assert!(!r.stdout.contains("should-not-run"), "{r:?}");
    // Nothing was imported either.
    let v = e
        .env
        .ct(&[
            "--json",
            "--store",
            e.store.to_str().unwrap(),
            "store",
            "ls",
        ])
        .json();
    assert!(!v.to_string().contains("\"run\""), "{v}");
}

#[test]
fn podman_runs_it_too() {
    let e = RunEnv::new(&[]);
    let r = e.run(&[
        "--runtime",
        "podman",
        "--user",
        "65534",
        "run.ctp",
        "--",
        "sh",
        "-c",
        "id -u; cat /data/public; cat /data/secret; echo scratch > /tmp/x && cat /tmp/x; exit 3",
    ]);
    r.assert_code(3);
    assert_eq!(r.stdout, "65534\nfor everyone\nscratch\n", "{r:?}");
    assert!(
        r.stderr
            .contains("can't open '/data/secret': Permission denied"),
        "{r:?}"
    );
    // podman keeps nothing of it (run --rm; ct removes it on every path).
    // (Only this test runs podman; its containers are named cerro-run-PID.)
    let ps = tool("podman", &["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !ps.stdout.lines().any(|n| n.starts_with("cerro-run-")),
        "{ps:?}"
    );
}
