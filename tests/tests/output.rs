//! Output conventions end to end: `--json` gives exactly one JSON document on stdout for every
//! command, failures included (`ok: false`, `exit_code`); colour follows `--color` and `NO_COLOR`
//! (checked on a real pseudo-terminal); `--help` works for every command, and shell completions
//! and man pages are generated from the same definitions.

use cerro_tests::{has_sgr, signed_bundle, Compression, TestEnv};
use std::fs;

#[test]
fn every_command_speaks_json_on_success() {
    let env = TestEnv::new();
    let other = TestEnv::new();
    let j = |e: &TestEnv, args: &[&str]| {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let v = e.ct(&a).ok().json();
        assert!(v.is_object(), "{args:?}: {v}");
        v
    };
    let ok = |v: &serde_json::Value| assert_eq!(v["ok"], true, "{v}");
    ok(&j(&env, &["keygen", "--id", "alice"]));
    ok(&j(&env, &["keygen", "--id", "bob"]));
    ok(&j(&env, &["key", "list"]));
    ok(&j(
        &env,
        &["key", "export", "alice", "--public", "-o", "alice.pub"],
    ));
    let exported = j(&env, &["key", "export", "alice", "--public"]);
    assert_eq!(exported["key_id"], "alice");
    ok(&j(
        &other,
        &["key", "import", env.path("alice.pub").to_str().unwrap()],
    ));
    ok(&j(&env, &["key", "default", "bob"]));
    env.image(Compression::Gzip, "img");
    ok(&j(
        &env,
        &["pack", "oci:img:busybox", "-o", "b.ctp", "-k", "alice"],
    ));
    ok(&j(&env, &["verify", "b.ctp"]));
    ok(&j(&env, &["explain", "b.ctp"]));
    ok(&j(&env, &["explain", "b.ctp", "--layers"]));
    ok(&j(&env, &["policy", "init", "-o", "p.json"]));
    ok(&j(&env, &["policy", "check", "p.json"]));
    ok(&j(&env, &["verify", "b.ctp", "--policy", "p.json"]));
    let rs = j(
        &env,
        &[
            "re-sign",
            "b.ctp",
            "-k",
            "bob",
            "--add-signature",
            "-o",
            "c.ctp",
        ],
    );
    ok(&rs);
    assert_eq!(rs["signatures"].as_array().unwrap().len(), 2);
    ok(&j(&env, &["key", "remove", "bob"]));
    // output = "json" in config.toml does the same as --json.
    fs::write(
        env.config.join("config.toml"),
        "default_key = \"alice\"\noutput = \"json\"\n",
    )
    .unwrap();
    let v = env.ct(&["key", "list"]).ok().json();
    ok(&v);
}

#[test]
fn every_failure_speaks_json_too() {
    let env = TestEnv::new();
    env.keygen("alice");
    fs::write(env.path("exists.ctp"), "x").unwrap();
    fs::write(env.path("bad.json"), "{\"version\": \"1\", \"nope\": 1}").unwrap();
    let untrusted = TestEnv::new();
    let shared = signed_bundle().bundle.to_str().unwrap().to_string();
    let cases: Vec<(&TestEnv, Vec<&str>, i32, &str)> = vec![
        (&env, vec!["keygen", "--id", "alice"], 64, "already exists"),
        (
            &env,
            vec!["key", "import", "missing.pub"],
            11,
            "missing.pub",
        ),
        (&env, vec!["key", "export", "alice"], 64, "--public"),
        (&env, vec!["key", "default", "zed"], 64, "zed"),
        (&env, vec!["key", "remove", "zed"], 64, "zed"),
        (
            &env,
            vec!["pack", "oci:img:busybox", "-o", "exists.ctp"],
            64,
            "already exists",
        ),
        (
            &env,
            vec!["pack", "oci:nowhere", "-o", "new.ctp"],
            11,
            "nowhere",
        ),
        (&env, vec!["pack", "ftp:x", "-o", "new.ctp"], 64, "ftp"),
        (&env, vec!["verify", "missing.ctp"], 11, "missing.ctp"),
        (&untrusted, vec!["verify", &shared], 3, "alice"),
        (&untrusted, vec!["explain", &shared], 3, "alice"),
        (
            &env,
            vec!["policy", "init", "-o", "bad.json"],
            64,
            "already exists",
        ),
        (&env, vec!["policy", "check", "bad.json"], 10, "nope"),
        (&env, vec!["re-sign", "missing.ctp"], 11, "missing.ctp"),
        // Usage errors found by the argument parser speak JSON as well.
        (&env, vec!["verify", "--bogus", "x.ctp"], 64, "--bogus"),
        (&env, vec!["frobnicate"], 64, "frobnicate"),
        (&env, vec![], 64, "subcommand"),
    ];
    for (e, args, code, needle) in cases {
        let mut a = vec!["--json"];
        a.extend(args.iter().copied());
        let r = e.ct(&a);
        r.json_fails(code, &[needle]);
        // And a readable message on stderr for people.
        assert!(!r.stderr.is_empty(), "{a:?}: nothing on stderr");
    }
}

#[test]
fn color_always_paints_and_never_does_not() {
    let s = signed_bundle();
    let env = TestEnv::new();
    env.trust(&s.public_key);
    let b = s.bundle.to_str().unwrap();
    let always = env.ct(&["--color", "always", "verify", b]);
    always.ok();
    assert!(
        has_sgr(&always.stdout),
        "no colour with --color=always:\n{always:#?}"
    );
    // --color=always wins over NO_COLOR (an explicit flag beats the environment).
    let r = env.ct(&["--color=always", "verify", b]);
    assert!(has_sgr(&r.stdout));
    // Failures are painted on stderr.
    let err = env.ct(&["--color", "always", "verify", "missing.ctp"]);
    err.assert_code(11);
    assert!(has_sgr(&err.stderr), "{err:#?}");
    // Not a terminal and no flag: plain, even without NO_COLOR.
    let plain = env.cmd(&["verify", b]).env_remove("NO_COLOR").run();
    plain.ok();
    assert!(
        !has_sgr(&plain.stdout) && !has_sgr(&plain.stderr),
        "{plain:#?}"
    );
    let never = env.ct(&["--color", "never", "verify", "missing.ctp"]);
    assert!(!has_sgr(&never.stderr));
}

#[test]
fn on_a_terminal_auto_colours_unless_no_color_is_set() {
    let s = signed_bundle();
    let env = TestEnv::new();
    env.trust(&s.public_key);
    let b = s.bundle.to_str().unwrap();
    let tty = env
        .cmd(&["verify", b])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .run_on_tty();
    tty.ok();
    assert!(tty.stdout.contains("VERIFIED"), "{tty:#?}");
    assert!(
        has_sgr(&tty.stdout),
        "auto on a terminal should colour:\n{tty:#?}"
    );

    let no_color = env
        .cmd(&["verify", b])
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .run_on_tty();
    no_color.ok();
    assert!(no_color.stdout.contains("VERIFIED"), "{no_color:#?}");
    assert!(
        !has_sgr(&no_color.stdout),
        "NO_COLOR=1 must turn colour off:\n{no_color:#?}"
    );

    let never = env
        .cmd(&["--color", "never", "verify", b])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .run_on_tty();
    never.ok();
    assert!(!has_sgr(&never.stdout), "{never:#?}");

    // An error on a terminal is coloured too, and NO_COLOR turns that off as well.
    let err = env
        .cmd(&["verify", "missing.ctp"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .run_on_tty();
    err.assert_code(11);
    assert!(has_sgr(&err.stdout), "{err:#?}");
    let err = env
        .cmd(&["verify", "missing.ctp"])
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .run_on_tty();
    err.assert_code(11);
    assert!(!has_sgr(&err.stdout), "{err:#?}");
}

#[test]
fn help_works_for_every_command() {
    let env = TestEnv::new();
    let commands: &[&[&str]] = &[
        &[],
        &["keygen"],
        &["key"],
        &["key", "list"],
        &["key", "import"],
        &["key", "export"],
        &["key", "default"],
        &["key", "remove"],
        &["pack"],
        &["verify"],
        &["explain"],
        &["policy"],
        &["policy", "init"],
        &["policy", "check"],
        &["re-sign"],
    ];
    for c in commands {
        let mut a: Vec<&str> = c.to_vec();
        a.push("--help");
        let r = env.ct(&a);
        r.ok().stdout_has("Usage: ct");
        if let Some(last) = c.last() {
            r.stdout_has(last);
        }
        let mut h = vec!["help"];
        h.extend_from_slice(c);
        env.ct(&h).ok().stdout_has("Usage: ct");
    }
    let top = env.ct(&["--help"]);
    top.stdout_has("Exit codes").stdout_has("64 usage error");
    let v = env.ct(&["--version"]);
    v.ok().stdout_has(env!("CARGO_PKG_VERSION"));
}

#[test]
fn quiet_prints_only_errors() {
    let env = TestEnv::new();
    let q = env.ct(&["-q", "keygen", "--id", "alice"]);
    q.ok();
    assert_eq!(q.stdout, "", "{q:#?}");
    env.image(Compression::Gzip, "img");
    let p = env.ct(&["-q", "pack", "oci:img:busybox", "-o", "b.ctp"]);
    p.ok();
    assert_eq!(p.stdout, "");
    let f = env.ct(&["-q", "verify", "missing.ctp"]);
    f.fails(11, &["missing.ctp"]);
}

#[test]
fn completions_and_man_pages_come_from_the_same_definitions_as_help() {
    let env = TestEnv::new();
    for (shell, needle) in [
        ("bash", "_ct()"),
        ("zsh", "#compdef ct"),
        ("fish", "complete -c ct"),
    ] {
        let r = env.ct(&["completions", shell]);
        r.ok().stdout_has(needle).stdout_has("store");
        assert!(
            !r.stdout.contains("__mount-daemon"),
            "{shell}: hidden command offered"
        );
    }
    env.ct(&["completions", "tcsh"]).fails(64, &["tcsh"]);
    let dir = env.path("man1");
    env.ct(&["__man", dir.to_str().unwrap()]).ok();
    for page in [
        "ct.1",
        "ct-mount.1",
        "ct-store.1",
        "ct-store-ls.1",
        "ct-run.1",
    ] {
        let text = fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {text}"
        );
    }
    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains("__") && !n.ends_with("-help.1")),
        "{names:?}"
    );
    // A link planted where a page goes is replaced, never followed.
    let victim = env.path("victim");
    fs::write(&victim, "keep\n").unwrap();
    fs::remove_file(dir.join("ct-verify.1")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("ct-verify.1")).unwrap();
    env.ct(&["__man", dir.to_str().unwrap()]).ok();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep\n");
    assert!(!fs::symlink_metadata(dir.join("ct-verify.1"))
        .unwrap()
        .file_type()
        .is_symlink());
    // A directory someone else owns, or others may write to, is refused.
    let shared = env.path("shared-man");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    env.ct(&["__man", shared.to_str().unwrap()])
        .fails(11, &["is not a directory only you can write to"]);
    assert_eq!(fs::read_dir(&shared).unwrap().count(), 0);
    // The page says what --help says (the run help names the log directory).
    let run = fs::read_to_string(dir.join("ct-run.1")).unwrap();
    assert!(run.contains("detach"), "{run}");
}
