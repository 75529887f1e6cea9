//! `ct run`'s container defaults and options with the real runc and podman (issue 13, points 1
//! and 3): the capability set under runc equals podman's own default (CapEff), and the
//! --cap-add/--cap-drop/--privileged adjustments agree on both; podman's mounts, masked and
//! read-only paths, no_new_privileges and limits under runc; -e, --env-file, -v (ro and rw),
//! --workdir and --hostname on both runtimes, with nothing reaching the store; a detached
//! container stopped by `ct stop` leaving no mount, namespace or process behind; names that
//! clash; the help naming the log file.

use cerro_tests::run::{mounts_under, wait_for, RunEnv};
use cerro_tests::{tool, TestEnv, TIMEOUT};
use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

/// `ct run [--runtime R] EXTRA run.ctp -- sh -c SCRIPT`, which must succeed; its stdout.
fn sh(e: &RunEnv, runtime: &str, extra: &[&str], script: &str) -> String {
    let mut args = vec!["--runtime", runtime];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["run.ctp", "--", "sh", "-c", script]);
    let r = e.run(&args);
    r.ok();
    r.stdout
}

/// The value of `field` in /proc/self/status inside a container.
fn status(e: &RunEnv, runtime: &str, extra: &[&str], field: &str) -> String {
    let out = sh(
        e,
        runtime,
        extra,
        &format!("grep '^{field}:' /proc/self/status"),
    );
    out.trim()
        .strip_prefix(&format!("{field}:"))
        .unwrap_or_else(|| panic!("{out}"))
        .trim()
        .to_string()
}

fn bits(hex: &str) -> u64 {
    u64::from_str_radix(hex, 16).unwrap()
}

#[test]
fn runc_gives_podmans_default_capabilities_and_the_same_adjustments() {
    let e = RunEnv::new(&[]);
    let runc = status(&e, "runc", &[], "CapEff");
    let podman = status(&e, "podman", &[], "CapEff");
    assert_eq!(
        runc, podman,
        "CapEff under runc and under podman's defaults"
    );
    let set = bits(&runc);
    for (bit, name) in [
        (0, "CHOWN"),
        (6, "SETGID"),
        (7, "SETUID"),
        (10, "NET_BIND_SERVICE"),
    ] {
        assert!(set & (1 << bit) != 0, "{name} missing from {runc}");
    }
    assert!(
        set & (1 << 21) == 0,
        "SYS_ADMIN must not be a default: {runc}"
    );
    assert_eq!(
        status(&e, "runc", &[], "CapBnd"),
        status(&e, "podman", &[], "CapBnd")
    );
    // Adjustments, the same on both.
    let adjusted = ["--cap-add", "net_admin", "--cap-drop", "CAP_CHOWN"];
    let runc = status(&e, "runc", &adjusted, "CapEff");
    assert_eq!(runc, status(&e, "podman", &adjusted, "CapEff"));
    assert_eq!(bits(&runc), (set | 1 << 12) & !1);
    let only = ["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"];
    assert_eq!(bits(&status(&e, "runc", &only, "CapEff")), 1 << 10);
    // --privileged: every capability ct holds (its bounding set; root here lacks
    // CAP_SYS_RESOURCE, so no container can have it).
    let own = fs::read_to_string("/proc/self/status").unwrap();
    let all = bits(
        own.lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .unwrap()
            .trim(),
    );
    assert_eq!(bits(&status(&e, "runc", &["--privileged"], "CapEff")), all);
    e.run(&["--cap-add", "NO_SUCH_CAP", "run", "--", "true"])
        .fails(64, &["unknown capability", "NO_SUCH_CAP"]);
}

#[test]
fn runc_gets_podmans_mounts_masked_paths_and_limits() {
    let e = RunEnv::new(&[]);
    let probe = "set -u; \
        for p in /proc/kcore /proc/keys /proc/timer_list; do echo \"$p:$(head -c 1 $p 2>/dev/null | wc -c)\"; done; \
        ls /proc/acpi /sys/firmware 2>/dev/null | wc -l; \
        (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo sys-writable || echo sys-ro; \
        (touch /sys/kernel/x) 2>/dev/null && echo sysfs-writable || echo sysfs-ro; \
        grep NoNewPrivs /proc/self/status; ulimit -n; ulimit -u; \
        for m in /dev /dev/pts /dev/shm /dev/mqueue /sys/fs/cgroup /etc/hosts /etc/hostname; do \
          grep -q \" $m \" /proc/self/mounts && echo \"mounted $m\"; done; \
        touch /dev/shm/x && echo shm-ok";
    let runc = sh(&e, "runc", &[], probe);
    let podman = sh(&e, "podman", &[], probe);
    assert_eq!(runc, podman, "runc (first) and podman differ");
    for want in [
        "/proc/kcore:0\n",
        "/proc/keys:0\n",
        "sys-ro\n",
        "sysfs-ro\n",
        "NoNewPrivs:\t0\n",
        "mounted /dev/shm\n",
        "mounted /etc/hosts\n",
        "shm-ok\n",
    ] {
        assert!(runc.contains(want), "{want:?} in\n{runc}");
    }
    // ct's own open-file limit.
    let ours = tool("sh", &["-c", "ulimit -n"]).stdout;
    assert!(runc.contains(&ours), "{ours} in\n{runc}");
    // --privileged: nothing masked, /proc/sys writable from the container's point of view.
    let p = sh(
        &e,
        "runc",
        &["--privileged"],
        "head -c 1 /proc/timer_list | wc -c; grep -c ' /proc/sys ' /proc/self/mounts || true",
    );
    let mut lines = p.lines();
    assert_ne!(lines.next(), Some("0"), "{p}");
    assert_eq!(lines.next(), Some("0"), "{p}");
}

#[test]
fn env_volumes_workdir_and_hostname_work_and_nothing_reaches_the_store() {
    let e = RunEnv::new(&["--config.env", "FROMIMAGE=image", "--config.env", "A=image"]);
    let rw = e.env.path("rw");
    let ro = e.env.path("ro");
    fs::create_dir(&rw).unwrap();
    fs::create_dir(&ro).unwrap();
    fs::write(ro.join("given"), "from the host\n").unwrap();
    let env_file = e.env.path("env");
    fs::write(&env_file, "# a comment\nB=from-file\nA=from-file\n").unwrap();
    // A first run imports it, so the store can be compared afterwards.
    e.run(&["run.ctp", "--", "true"]).ok();
    let before = TestEnv::snapshot(&e.store);
    for runtime in ["runc", "podman"] {
        let out_file = rw.join(format!("out-{runtime}"));
        let r = e
            .cmd(&[
                "--runtime",
                runtime,
                "-e",
                "A=arg",
                "-e",
                "FROMCT",
                "--env-file",
                env_file.to_str().unwrap(),
                "-v",
                &format!("{}:/mnt/rw", rw.display()),
                "-v",
                &format!("{}:/data/ro:ro", ro.display()),
                "-w",
                "/work/dir",
                "--hostname",
                "box1",
                "run",
                "--",
                "sh",
                "-c",
                &format!(
                    "echo \"$FROMIMAGE $A $B $FROMCT\"; pwd; hostname; echo \"$(cat /etc/hostname)\"; \
                     echo written > /mnt/rw/out-{runtime}; cat /data/ro/given; \
                     (echo no > /data/ro/x) 2>/dev/null && echo ro-writable || echo ro-refused; \
                     echo scratch > /data/public"
                ),
            ])
            .env("FROMCT", "ct-env")
            .run();
        e.assert_clean(&r);
        r.ok();
        assert_eq!(
            r.stdout,
            "image arg from-file ct-env\n/work/dir\nbox1\nbox1\nfrom the host\nro-refused\n",
            "{runtime}: {r:?}"
        );
        assert_eq!(fs::read_to_string(&out_file).unwrap(), "written\n");
        assert!(!ro.join("x").exists());
    }
    assert_eq!(TestEnv::snapshot(&e.store), before, "the store changed");
    // The mount points the volumes needed were made in the overlay, not in the image.
    let r = e.run(&[
        "run",
        "--",
        "sh",
        "-c",
        "ls -d /mnt/rw /data/ro /work 2>&1 | wc -l; ls /data/ro 2>&1",
    ]);
    assert!(r.stdout.contains("No such file"), "{r:?}");
    e.run(&["-v", "/no/such/dir:/x", "run", "--", "true"])
        .fails(64, &["/no/such/dir"]);
    e.run(&["-v", "/tmp:relative", "run", "--", "true"])
        .fails(64, &["must be absolute"]);
    e.run(&["-w", "relative", "run", "--", "true"])
        .fails(64, &["absolute"]);
    e.env
        .ct(&["--store", e.store.to_str().unwrap(), "store", "fsck"])
        .ok();
}

/// Inode of a namespace link (`/proc/PID/ns/KIND`), if the process exists.
fn ns(pid: &str, kind: &str) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Every process that is in namespace `link` (as `ns` gives it).
fn processes_in(kind: &str, link: &str) -> Vec<String> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|d| d.file_name().to_str().map(str::to_string))
        .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        .filter(|pid| ns(pid, kind).as_deref() == Some(link) && alive(pid))
        .collect()
}

/// Whether `pid` runs (a zombie has exited: it only waits for its parent, here init, to reap
/// it).
fn alive(pid: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// The pids whose parent is `pid`.
fn children(pid: &str) -> Vec<String> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|d| d.file_name().to_str().map(str::to_string))
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().nth(1))
                    == Some(pid)
            })
        })
        .collect()
}

#[test]
fn a_detached_container_stops_cleanly_and_leaves_nothing() {
    let e = RunEnv::new(&[]);
    let r = e
        .cmd(&[
            "-d",
            "--name",
            "bg1",
            "-p",
            &format!("{}:8080", cerro_tests::run::free_port()),
            "run.ctp",
            "--",
            "sh",
            "-c",
            "trap 'echo got-term; exit 0' TERM; echo started; while :; do sleep 0.1; done",
        ])
        .run();
    r.ok();
    assert_eq!(r.stdout, "bg1\n", "{r:?}");
    let log = e.run_dir.join("logs/bg1.log");
    wait_for("the container's output", TIMEOUT, || {
        fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("started"))
    });
    let rec = e.record("bg1");
    assert_eq!(rec["log"], log.to_str().unwrap());
    let supervisor = rec["pid"].as_u64().unwrap().to_string();
    let container = tool("runc", &["state", "bg1"]).json()["pid"]
        .as_u64()
        .unwrap()
        .to_string();
    let mnt_ns = ns(&supervisor, "mnt").unwrap();
    let net_ns = ns(&container, "net").unwrap();
    // Held open until the end, so neither namespace is freed and its inode number cannot be
    // given to a namespace another test creates meanwhile (which made the checks below see
    // that test's processes, once, under CI's parallel load).
    let _held = (
        fs::File::open(format!("/proc/{supervisor}/ns/mnt")).unwrap(),
        fs::File::open(format!("/proc/{container}/ns/net")).unwrap(),
    );
    assert_ne!(
        mnt_ns,
        ns("self", "mnt").unwrap(),
        "a private mount namespace"
    );
    assert_ne!(
        net_ns,
        ns("self", "net").unwrap(),
        "a private network namespace"
    );
    // slirp4netns (a child of ct run; it sandboxes itself in a mount namespace of its own).
    let slirp: Vec<String> = children(&supervisor)
        .into_iter()
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "slirp4netns")
        })
        .collect();
    assert_eq!(slirp.len(), 1, "one slirp4netns for the published port");
    assert_eq!(mounts_under(&e.run_dir), Vec::<String>::new());
    // The name is taken while it runs.
    e.cmd(&["--name", "bg1", "run", "--", "true"])
        .run()
        .fails(64, &["bg1", "is running"]);

    let r = e.ct(&["stop", "bg1"]).run();
    r.ok();
    assert_eq!(r.stdout, "stopped bg1\n");
    // Gone: ct run, the container, slirp4netns, both namespaces, runc's state, the record.
    for pid in [&supervisor, &container, &slirp[0]] {
        assert!(!alive(pid), "pid {pid} left");
    }
    assert_eq!(processes_in("mnt", &mnt_ns), Vec::<String>::new());
    assert_eq!(processes_in("net", &net_ns), Vec::<String>::new());
    let list = tool("runc", &["list", "-q"]).stdout;
    assert!(!list.lines().any(|l| l == "bg1"), "{list}");
    e.assert_clean(&r);
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("got-term"), "{text}");
    assert!(text.contains("bg1 exited with status 0"), "{text}");
    e.ct(&["stop", "bg1"])
        .run()
        .fails(64, &["no container named bg1"]);
}

#[test]
fn a_detached_run_that_fails_reports_why_and_leaves_nothing() {
    let e = RunEnv::new(&[]);
    // A failure before the container starts comes back with its exit code.
    let r = e.cmd(&["-d", "--user", "nosuchuser", "run.ctp"]).run();
    r.fails(64, &["nosuchuser"]);
    e.assert_clean(&r);
    let r = e
        .cmd(&["-d", "-p", "1:2", "--network", "none", "run"])
        .run();
    r.fails(64, &["--network none"]);
    // The default name, printed; a container that exits by itself takes everything down.
    let r = e.cmd(&["-d", "run", "--", "true"]).run();
    r.ok();
    let name = r.stdout.trim().to_string();
    assert!(name.starts_with("cerro-run-"), "{r:?}");
    wait_for("the detached run to end", TIMEOUT, || {
        e.records().is_empty().then_some(())
    });
    std::thread::sleep(Duration::from_millis(200));
    e.assert_clean(&r);
    let log = fs::read_to_string(e.run_dir.join(format!("logs/{name}.log"))).unwrap();
    assert!(log.contains("exited with status 0"), "{log}");
}

#[test]
fn help_names_the_log_file_and_the_defaults() {
    let e = RunEnv::new(&[]);
    let r = e.env.ct(&["run", "--help"]);
    r.ok();
    let text = r.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "RUN_DIR/logs/NAME.log",
        "/run/cerro/run as root and $XDG_RUNTIME_DIR/cerro/run for other users",
        "ct stop NAME",
        "--network none, the default without -p",
        "CHOWN, DAC_OVERRIDE",
        "--privileged grants every capability",
    ] {
        assert!(text.contains(want), "{want:?} in\n{}", r.stdout);
    }
    let names: BTreeSet<&str> = ["-e", "--env-file", "-v", "-w", "--hostname", "-d", "-p"]
        .into_iter()
        .collect();
    for n in names {
        assert!(r.stdout.contains(n), "{n}");
    }
}
