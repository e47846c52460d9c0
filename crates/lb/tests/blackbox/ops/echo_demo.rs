//! The built-in backend and the demo (issue 2 item 6; SPEC command line).

use crate::{bin, lb, served_by, WAIT};
use lb_testkit::{request, Conn, EchoProcess, Proc, START_TIMEOUT};
use std::net::TcpListener;

#[test]
fn echo_answers_with_its_name_path_and_body_size_on_one_connection() {
    let echo = EchoProcess::start(bin(), "e1");
    let mut c = Conn::open(echo.addr());
    let r = c.get("/a/b?c=d");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Backend"), Some("e1"));
    assert_eq!(r.header("X-Path"), Some("/a/b?c=d"));
    assert_eq!(r.header("X-Body-Bytes"), Some("0"));
    assert_eq!(r.body, b"e1\n");

    let r = c.request(&request("POST", "/post", &[], b"12345"));
    assert_eq!(r.header("X-Path"), Some("/post"));
    assert_eq!(r.header("X-Body-Bytes"), Some("5"));
    assert_eq!(r.body, b"e1\n");

    let chunked = b"POST /chunked HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
    let r = c.request(chunked);
    assert_eq!(r.header("X-Body-Bytes"), Some("7"));

    // All of that on one connection: keep-alive works, and a last request still gets answered.
    assert_eq!(c.get("/last").header("X-Path"), Some("/last"));
}

#[test]
fn lb_in_front_of_two_echo_backends_alternates() {
    let e1 = EchoProcess::start(bin(), "one");
    let e2 = EchoProcess::start(bin(), "two");
    let lb = lb(2, &[("/", &[e1.addr(), e2.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let got: Vec<String> = (0..6).map(|_| served_by(&c.get("/x"))).collect();
    assert_eq!(got, ["one", "two", "one", "two", "one", "two"]);
    let r = c.get("/echo/path?q=1");
    assert_eq!(
        r.header("X-Path"),
        Some("/echo/path?q=1"),
        "a `/` route rewrites nothing"
    );
}

/// `lb demo --listen 127.0.0.1:0 --admin 127.0.0.1:0`: the printed commands carry the real
/// ports, which are the ready line's.
#[test]
fn demo_serves_three_backends_round_robin() {
    let mut demo = Proc::spawn(
        bin(),
        &["demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
    );
    let curls = demo.wait_for_lines(3, START_TIMEOUT, |l| l.contains("curl"));
    let curls = match curls {
        Ok(lines) => lines,
        Err(why) => {
            demo.kill();
            panic!(
                "lb demo printed no three curl lines: {why}\nstdout: {:?}\nstderr:\n{}",
                demo.stdout_lines(),
                demo.stderr()
            );
        }
    };
    // The ready line comes after lb installed its signal handlers: SIGTERM is safe from then on.
    let ready = demo.wait_for_line(START_TIMEOUT, lb_testkit::parse_ready_line);
    let ready = ready.unwrap_or_else(|why| {
        demo.kill();
        panic!(
            "lb demo printed no ready line: {why}\nstderr:\n{}",
            demo.stderr()
        )
    });
    let (data, admin) = (ready.listen, ready.admin);
    assert_ne!(data.port(), 0);
    assert!(
        curls.iter().any(|l| l.contains(&format!("http://{data}/"))),
        "the curl lines point at the demo's data port {data}: {curls:?}"
    );
    assert!(
        curls
            .iter()
            .any(|l| l.contains(&format!("http://{admin}/targets"))),
        "and at its admin port {admin}: {curls:?}"
    );
    let mut c = Conn::open(data);
    let got: Vec<String> = (0..6).map(|_| served_by(&c.get("/"))).collect();
    let mut first_three = got[..3].to_vec();
    first_three.sort();
    first_three.dedup();
    assert_eq!(
        first_three.len(),
        3,
        "three different backends in three requests: {got:?}"
    );
    assert_eq!(got[..3], got[3..], "the order repeats exactly: {got:?}");
    let health = lb_testkit::Admin::new(admin).call("GET", "/healthz", b"");
    assert_eq!(health.status, 200);
    demo.terminate();
    let status = demo.wait_exit(WAIT);
    assert!(
        status.success(),
        "lb demo exited with {status} after SIGTERM\nstderr:\n{}",
        demo.stderr()
    );
}

/// A taken port stops the demo before it prints anything: no instructions for a demo that
/// never started.
#[test]
fn demo_on_a_taken_port_fails_before_printing() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    for args in [
        ["demo", "--listen", addr.as_str(), "--admin", "127.0.0.1:0"],
        ["demo", "--listen", "127.0.0.1:0", "--admin", addr.as_str()],
    ] {
        let f = lb_testkit::run_to_exit(bin(), &args, WAIT);
        assert_eq!(f.status.code(), Some(1), "{args:?}: {}", f.stderr);
        assert!(f.stdout.is_empty(), "{args:?}: printed {:?}", f.stdout);
        assert!(
            f.stderr.contains(&format!(
                "demo: cannot listen on {addr}: address already in use"
            )),
            "{args:?}: {}",
            f.stderr
        );
    }
}

/// The README's first command is `cargo run --release -- demo`, typed at the top of the
/// workspace. That only works while `cargo run` there has exactly one binary to choose: the
/// workspace's `default-members` keep it on lb although `benches` has a binary too
/// (`null_proxy`). Checked with the dev profile and `--version`, which the test build has
/// already compiled, so it costs no build.
#[test]
fn cargo_run_at_the_top_of_the_workspace_runs_lb() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["run", "-q", "--", "--version"])
        .current_dir(&root)
        .output()
        .expect("run cargo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("lb "),
        "`cargo run -- --version` at {}: {}\nstdout: {stdout}\nstderr: {}",
        root.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
