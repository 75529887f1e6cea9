//! `ct run` stages nothing another local user can reach (issue 12, points 1, 2 and 9's `--user`
//! lookup), as root with uid 65534 (`setpriv`) playing the local attacker: the container's
//! rootfs — including a setuid copy of busybox the container made — is reachable through no
//! path on the host; its mounts exist only in ct run's own mount namespace (the FUSE lower
//! without allow_other and nosuid, the tmpfs nosuid,nodev); the old predictable staging paths,
//! pre-created by another user, get nothing written into them; a run directory another user
//! could change is refused; and `--user NAME` never follows the image's symlinks to the host's
//! /etc/passwd.

use cerro_tests::run::{image_with, mountinfo_of, mounts_under, wait_for, Background, RunEnv};
use cerro_tests::{run_command, tool, Run, TestEnv, TIMEOUT};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Run `script` with `sh -c` as uid/gid 65534 with no supplementary groups.
fn as_nobody(script: &str) -> Run {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "sh",
        "-c",
        script,
    ]);
    run_command(c)
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// The test's directories traversable by others (as /run and /tmp are), so that only ct's own
/// modes decide what uid 65534 reaches.
fn open_up(e: &RunEnv) {
    let mut p = e.env.root().to_path_buf();
    while p != Path::new("/") {
        let m = fs::metadata(&p).unwrap().mode();
        if m & 0o005 != 0o005 {
            chmod(&p, (m & 0o7777) | 0o005);
        }
        p.pop();
    }
}

#[test]
fn a_setuid_file_the_container_makes_is_out_of_every_other_users_reach() {
    let e = RunEnv::new(&[]);
    open_up(&e);
    let running = Background::start(e.cmd(&[
        "run.ctp",
        "--",
        "sh",
        "-c",
        "cp /bin/busybox /tmp/ping && chmod 4755 /tmp/ping && touch /tmp/planted; \
         while :; do sleep 0.1; done",
    ]));
    let pid = running.pid().to_string();
    // The container's name is cerro-BUNDLE-PID; ask runc when it has planted the file.
    let id = format!("cerro-run-{pid}");
    wait_for("the planted setuid file", TIMEOUT, || {
        let mut c = Command::new("runc");
        c.args(["exec", &id, "test", "-e", "/tmp/planted"]);
        (run_command(c).code == 0).then_some(())
    });
    let container_pid = tool("runc", &["state", &id]).json()["pid"]
        .as_u64()
        .unwrap()
        .to_string();

    // Every way a local user could try: the run directory, the staging directories, the
    // paths ct used to stage at, and the /proc roots of ct run and of the container; each
    // path is tried with stat, ls and by running it.
    let run = e.run_dir.display();
    let tries = [
        format!("{run}/*/rootfs/tmp/ping"),
        format!("{run}/*/rw/upper/tmp/ping"),
        format!("{run}/*/lower/bin/busybox"),
        format!("{}/ct-run-*/rootfs/tmp/ping", e.tmp.display()),
        "/tmp/ct-run-*/rootfs/tmp/ping".to_string(),
        format!("/proc/{pid}/root{run}/*/rootfs/tmp/ping"),
        format!("/proc/{container_pid}/root/tmp/ping"),
        format!("/proc/{container_pid}/cwd/tmp/ping"),
    ];
    let mut script = String::from("found=0\n");
    for t in &tries {
        script.push_str(&format!(
            "for p in {t}; do if [ -e \"$p\" ] || ls \"$p\" >/dev/null 2>&1 || \"$p\" true 2>/dev/null; \
             then echo \"REACHED $p\"; found=1; fi; done\n"
        ));
    }
    script.push_str("echo checked; exit $found\n");
    let r = as_nobody(&script);
    assert!(
        r.code == 0 && r.stdout.trim_end().ends_with("checked"),
        "{r:?}"
    );

    // Nothing of it is mounted in the host's namespace; in ct run's, the FUSE lower is root's
    // alone (no allow_other) and nosuid, the writable tmpfs nosuid,nodev, the staging
    // directory 0700.
    let stage = e.stage();
    assert_eq!(mounts_under(&e.run_dir), Vec::<String>::new());
    assert!(!stage.join("rootfs/tmp/ping").exists());
    let ping = Path::new(&format!("/proc/{pid}/root"))
        .join(stage.strip_prefix("/").unwrap())
        .join("rootfs/tmp/ping");
    assert_eq!(fs::metadata(&ping).unwrap().mode() & 0o7777, 0o4755);
    let info = mountinfo_of(&pid, &stage);
    let line = |mp: &str| {
        info.iter()
            .find(|l| l.split(' ').nth(4) == Some(stage.join(mp).to_str().unwrap()))
            .unwrap_or_else(|| panic!("no mount at {mp}: {info:#?}"))
            .clone()
    };
    let lower = line("lower");
    assert!(lower.contains("nosuid"), "{lower}");
    assert!(!lower.contains("allow_other"), "{lower}");
    let rw = line("rw");
    assert!(rw.contains("nosuid") && rw.contains("nodev"), "{rw}");
    assert_eq!(fs::metadata(&stage).unwrap().mode() & 0o7777, 0o700);
    // The probe works: as root, through ct run's namespace, it reaches the file.
    let mut c = Command::new("sh");
    c.args(["-c", &format!("[ -e {} ] && echo reached", ping.display())]);
    assert_eq!(run_command(c).stdout, "reached\n");

    tool("kill", &["-TERM", &pid]);
    let r = running.wait();
    e.assert_clean(&r);
}

/// `dir` holds what `before` says, and nothing else.
#[track_caller]
fn assert_unchanged(dir: &Path, before: &BTreeMap<PathBuf, Option<Vec<u8>>>, r: &Run) {
    let after = TestEnv::snapshot(dir);
    let changed: Vec<_> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .chain(before.keys().filter(|k| !after.contains_key(*k)))
        .collect();
    assert!(
        changed.is_empty(),
        "root wrote into another user's directories: {changed:?}\n{r:?}"
    );
}

#[test]
fn root_writes_nothing_into_staging_paths_another_user_made() {
    let e = RunEnv::new(&[]);
    open_up(&e);
    // TMPDIR shared like /tmp (1777), with the old predictable names pre-created by uid 65534
    // for the next few thousand pids.
    chmod(&e.tmp, 0o1777);
    let last: u32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (from, to) = (last + 1, last + 5000);
    let r = as_nobody(&format!(
        "cd {} && mkdir -m 0777 $(seq -f 'ct-run-%g' {from} {to})",
        e.tmp.display()
    ));
    r.ok();
    let before = TestEnv::snapshot(&e.tmp);
    let r = e.cmd(&["run.ctp", "--", "sh", "-c", "echo ran"]).run();
    r.ok();
    assert_eq!(r.stdout, "ran\n");
    // Every pre-created directory is as it was: empty and the other user's.
    assert_unchanged(&e.tmp, &before, &r);
    let r = e
        .cmd(&["-d", "--name", "bg", "run", "--", "sleep", "30"])
        .run();
    r.ok();
    e.ct(&["stop", "bg"]).run().ok();
    assert_unchanged(&e.tmp, &before, &r);
    for ent in fs::read_dir(&e.tmp).unwrap().flatten() {
        assert_eq!(ent.metadata().unwrap().uid(), 65534, "{:?}", ent.path());
    }
    assert_eq!(e.stages(), Vec::<PathBuf>::new());
    assert_eq!(e.records(), Vec::<String>::new());
}

#[test]
fn a_run_directory_another_user_could_change_is_refused() {
    let e = RunEnv::new(&[]);
    let st = e.store.to_str().unwrap().to_string();
    let attempt = |dir: &Path| {
        e.env
            .cmd(&["--store", &st, "run", "run.ctp", "--", "true"])
            .env("CT_RUN_DIR", dir)
            .run()
    };
    // Owned by another user.
    let theirs = e.env.path("theirs");
    fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    attempt(&theirs).fails(64, &["owned by uid 65534", "stages nothing"]);
    // Writable by everyone (not even sticky helps for the run directory itself).
    let open = e.env.path("open");
    fs::create_dir(&open).unwrap();
    chmod(&open, 0o1777);
    attempt(&open).fails(64, &["writable by others"]);
    // A symlink to a good directory.
    let link = e.env.path("link");
    std::os::unix::fs::symlink(&e.run_dir, &link).unwrap();
    attempt(&link).fails(64, &["symbolic link"]);
    // Under a directory another user owns.
    let under = theirs.join("run");
    fs::create_dir(&under).unwrap();
    attempt(&under).fails(64, &["owned by uid 65534"]);
    // Its records directory replaced by a symlink into a directory another user owns.
    std::os::unix::fs::symlink(&theirs, e.run_dir.join("containers")).unwrap();
    e.cmd(&["run.ctp", "--", "true"])
        .run()
        .fails(64, &["containers", "symbolic link"]);
    assert_eq!(fs::read_dir(&theirs).unwrap().count(), 1, "only run/");
    fs::remove_file(e.run_dir.join("containers")).unwrap();
    // Nothing was staged anywhere by the refused runs.
    for d in [&theirs, &open, &e.run_dir] {
        assert!(
            !fs::read_dir(d)
                .unwrap()
                .flatten()
                .any(|x| x.file_name().to_string_lossy().starts_with("stage-")),
            "{d:?}"
        );
    }
}

#[test]
fn user_names_are_looked_up_inside_the_image_never_on_the_host() {
    let env = TestEnv::new();
    // A "host" passwd the image points at, absolutely and by climbing out with ../.
    let host_passwd = env.path("host-passwd");
    fs::write(&host_passwd, "hostonly:x:4242:4343::/:/bin/sh\n").unwrap();
    let host_group = env.path("host-group");
    fs::write(&host_group, "hostgroup:x:4444:\n").unwrap();
    let hp = host_passwd.clone();
    let hg = host_group.clone();
    let img = image_with(env.root(), move |rootfs| {
        let etc = rootfs.join("etc");
        fs::remove_file(etc.join("passwd")).unwrap();
        std::os::unix::fs::symlink(&hp, etc.join("passwd")).unwrap();
        let _ = fs::remove_file(etc.join("group"));
        std::os::unix::fs::symlink(
            format!("../../../../../../../../..{}", hg.display()),
            etc.join("group"),
        )
        .unwrap();
    });
    let e = RunEnv::from_layout(env, &img, cerro_tests::TAG);
    e.run(&["--user", "hostonly", "run.ctp", "--", "id", "-u"])
        .fails(64, &["hostonly", "not in the image's /etc/passwd"]);
    e.run(&["--user", "0:hostgroup", "run", "--", "id", "-u"])
        .fails(64, &["hostgroup", "not in the image's /etc/group"]);
    // Numbers still work; the image's own view of the link target is what counts.
    let r = e.run(&[
        "--user",
        "4242:4343",
        "run",
        "--",
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    r.ok();
    assert_eq!(r.stdout, "4242\n4343\n");
}
