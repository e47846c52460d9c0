//! Start-up, shutdown and failure to start (SPEC command line and exit codes; issue 2 item 1).

use crate::{bin, lb, served_by, WAIT};
use lb_testkit::{get, is_refusing, run_args, run_to_exit, Backend, Conn, Reply};
use std::net::TcpListener;
use std::time::{Duration, Instant};

#[test]
fn ready_line_reports_real_ports_and_worker_count() {
    let lb = lb(3, &[], &[]);
    assert_eq!(lb.workers(), 3, "{}", lb.ready_line());
    assert_ne!(lb.addr().port(), 0);
    assert_ne!(lb.admin_addr().port(), 0);
    assert_ne!(lb.addr(), lb.admin_addr());
    // Every worker shares the one port: fresh connections (spread over workers) all get answers.
    for _ in 0..12 {
        assert_eq!(get(lb.addr(), "/").status, 503);
    }
    let ready_lines = lb
        .stdout_lines()
        .iter()
        .filter(|l| l.contains("listening on"))
        .count();
    assert_eq!(
        ready_lines,
        1,
        "exactly one ready line: {:?}",
        lb.stdout_lines()
    );
}

#[test]
fn sigterm_exits_zero() {
    let b = Backend::start("term");
    let mut lb = lb(2, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    assert_eq!(served_by(&c.get("/")), "term");
    drop(c);
    lb.terminate();
    let status = lb.wait_exit(WAIT);
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM: {status}\nstderr:\n{}",
        lb.stderr()
    );
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let held = Backend::start_with("drain", Reply::Hold);
    let mut lb = lb(1, &[("/", &[held.addr()])], &[]);
    let addr = lb.addr();
    std::thread::scope(|s| {
        let client = s.spawn(move || get(addr, "/in-flight"));
        assert!(
            held.wait_for_requests(1, WAIT),
            "the request never reached the backend"
        );
        lb.terminate();
        // Wait until lb stopped accepting (its listeners closed) or give up after a while: either
        // way the held request must still be answered.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_refusing(addr) && Instant::now() < deadline && lb.try_exit().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            lb.try_exit().is_none(),
            "lb exited with a request in flight"
        );
        held.release();
        let r = client.join().expect("client thread");
        assert_eq!(served_by(&r), "drain");
    });
    let status = lb.wait_exit(WAIT);
    assert_eq!(
        status.code(),
        Some(0),
        "exit after drain: {status}\nstderr:\n{}",
        lb.stderr()
    );
}

/// Starts lb with `flag` (`--listen` or `--admin`) on a port a plain listener holds: a port
/// without SO_REUSEPORT cannot be shared, so lb must exit 1, say why in plain words, and print no
/// ready line.
fn assert_address_in_use(flag: &str, workers: usize) {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut args = run_args(workers, &[], &[]);
    let value = args
        .iter()
        .position(|arg| arg == flag)
        .map(|at| at + 1)
        .expect("run_args passes the flag");
    args[value] = taken.local_addr().expect("addr").to_string();
    let f = run_to_exit(bin(), &args, WAIT);
    assert!(
        !f.status.success(),
        "lb started on a taken port: {:?}",
        f.stdout
    );
    assert_eq!(
        f.status.code(),
        Some(1),
        "a bind failure is a runtime failure (exit 1)"
    );
    assert!(
        f.stderr
            .to_ascii_lowercase()
            .contains("address already in use"),
        "stderr should say the address is in use:\n{}",
        f.stderr
    );
    assert!(
        !f.stdout.iter().any(|l| l.contains("listening on")),
        "no ready line on failure"
    );
}

#[test]
fn data_port_in_use_fails_with_a_clear_message() {
    assert_address_in_use("--listen", 2);
}

#[test]
fn admin_port_in_use_fails_with_a_clear_message() {
    assert_address_in_use("--admin", 1);
}

/// Bad arguments: exit code 2 with the reason on stderr, and nothing started.
#[test]
fn bad_arguments_exit_2() {
    let cases: Vec<Vec<String>> = vec![
        vec!["--no-such-flag".into()],
        run_args(0, &[], &[]),
        vec!["run".into(), "--workers".into(), "many".into()],
        vec!["run".into(), "--listen".into(), "not-an-address".into()],
        run_args(1, &[], &["--route", "no-equals-sign"]),
        run_args(1, &[], &["--route", "nope=127.0.0.1:80"]),
        run_args(1, &[], &["--route", "/x=127.0.0.1:0"]),
        run_args(1, &[], &["--upstream-timeout", "soon"]),
        vec!["echo".into()],
        vec!["no-such-subcommand".into()],
    ];
    for args in cases {
        let f = run_to_exit(bin(), &args, WAIT);
        assert_eq!(
            f.status.code(),
            Some(2),
            "`lb {}` should exit 2, got {}\nstderr:\n{}",
            args.join(" "),
            f.status,
            f.stderr
        );
        assert!(
            !f.stderr.trim().is_empty(),
            "`lb {}`: no reason on stderr",
            args.join(" ")
        );
        assert!(
            !f.stdout.iter().any(|l| l.contains("listening on")),
            "`lb {}` started",
            args.join(" ")
        );
    }
}

#[test]
fn help_lists_the_flags() {
    let f = run_to_exit(bin(), &["--help"], WAIT);
    assert_eq!(f.status.code(), Some(0));
    let text = f.stdout.join("\n");
    for word in ["echo", "demo"] {
        assert!(
            text.contains(word),
            "`lb --help` does not mention {word}:\n{text}"
        );
    }
    let f = run_to_exit(bin(), &["run", "--help"], WAIT);
    let text = f.stdout.join("\n");
    for flag in [
        "--listen",
        "--admin",
        "--workers",
        "--no-pin",
        "--route",
        "--upstream-timeout",
    ] {
        assert!(
            text.contains(flag),
            "`lb run --help` does not mention {flag}:\n{text}"
        );
    }
}
