//! `ct run nginx.ctp` serves nginx (issue 13, point 2 and the README's example): the Debian 12
//! nginx-light image (tools/make-debian-image), run detached with `-p PORT:80`, answers curl
//! with 200 under runc (slirp4netns) and under podman (its own slirp4netns mode); the port is
//! bound on 127.0.0.1 only; `ct stop` ends it and the port closes. A container with
//! `--network none` cannot reach it, one with `--network host` can (so the probe works), and
//! one with a private network cannot reach the host's loopback. Every test binds loopback only
//! and stops what it started, also when it fails (RunEnv's guard).

use cerro_tests::fixtures::{nginx_image, NGINX_TAG};
use cerro_tests::run::{free_port, wait_for, RunEnv};
use cerro_tests::{run_command, TestEnv, TIMEOUT};
use std::process::Command;

fn nginx_env() -> RunEnv {
    let env = TestEnv::new();
    let img = env.path("nginx-oci");
    cerro_tests::copy_dir(nginx_image(), &img);
    RunEnv::from_layout(env, &img, NGINX_TAG)
}

/// `curl` status code for http://127.0.0.1:PORT/ (000 when nothing answers).
fn curl(port: u16) -> String {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        &format!("http://127.0.0.1:{port}/"),
    ]);
    run_command(c).stdout
}

/// Local addresses listening on TCP `port` (from /proc/net/tcp: hex address:port, state 0A).
fn listeners(port: u16) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (addr, p) = f.get(1)?.split_once(':')?;
            (u16::from_str_radix(p, 16).ok()? == port && f.get(3) == Some(&"0A"))
                .then(|| addr.to_string())
        })
        .collect()
}

/// Serve nginx with `runtime`, published on a free port; check it answers 200 on 127.0.0.1
/// only; stop it and check the port is closed.
fn serves(runtime: &str) {
    let e = nginx_env();
    let port = free_port();
    let r = e
        .cmd(&[
            "--runtime",
            runtime,
            "-d",
            "--name",
            "web",
            "-p",
            &format!("{port}:80"),
            "run.ctp",
        ])
        .run();
    r.ok();
    assert_eq!(r.stdout, "web\n", "{r:?}");
    wait_for("nginx to answer 200", TIMEOUT, || {
        (curl(port) == "200").then_some(())
    });
    // 127.0.0.1 only (0100007F in /proc/net/tcp).
    assert_eq!(listeners(port), ["0100007F"], "{runtime}");
    let r = e.ct(&["stop", "web"]).run();
    r.ok();
    assert_eq!(curl(port), "000");
    assert_eq!(listeners(port), Vec::<String>::new());
    e.assert_clean(&r);
    if runtime == "podman" {
        let ps = cerro_tests::tool("podman", &["ps", "-a", "--format", "{{.Names}}"]);
        assert!(!ps.stdout.lines().any(|n| n == "web"), "{ps:?}");
    }
}

#[test]
fn nginx_answers_through_a_published_port_under_runc() {
    serves("runc");
}

#[test]
fn nginx_answers_through_a_published_port_under_podman() {
    serves("podman");
}

#[test]
fn network_none_cannot_reach_it_and_private_cannot_reach_the_hosts_loopback() {
    let e = nginx_env();
    let port = free_port();
    e.cmd(&[
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{port}:80"),
        "run.ctp",
    ])
    .run()
    .ok();
    wait_for("nginx to answer 200", TIMEOUT, || {
        (curl(port) == "200").then_some(())
    });
    // bash's /dev/tcp: connect, send a request, print the status line.
    let probe = |addr: &str| {
        format!(
            "exec 3<>/dev/tcp/{addr}/{port} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 \
             || echo unreachable"
        )
    };
    // (e.cmd, not e.run: nginx is running, so the run directory is not empty meanwhile.)
    let attempt = |network: &str, addr: &str| {
        let r = e
            .cmd(&[
                "--network",
                network,
                "run",
                "--",
                "bash",
                "-c",
                &probe(addr),
            ])
            .run();
        r.ok();
        r.stdout
    };
    assert!(attempt("host", "127.0.0.1").starts_with("HTTP/1.1 200"));
    assert_eq!(attempt("none", "127.0.0.1"), "unreachable\n");
    // 10.0.2.2 is the host as slirp4netns shows it; its loopback stays out of reach.
    assert_eq!(attempt("private", "10.0.2.2"), "unreachable\n");
    // Publishing needs a network to publish from.
    e.cmd(&["--network", "none", "-p", "1:2", "run", "--", "true"])
        .run()
        .fails(64, &["--network none"]);
    let r = e.ct(&["stop", "web"]).run();
    r.ok();
    assert_eq!(curl(port), "000");
    e.assert_clean(&r);
}
