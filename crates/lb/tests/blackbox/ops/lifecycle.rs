//! Start-up, shutdown and failure to start (SPEC command line and exit codes; issue 2 item 1).

use crate::{bin, lb, served_by, WAIT};
use lb_testkit::{
    get, is_refusing, poll_until, run_args, run_to_exit, Backend, Conn, LbProcess, Reply,
};
use std::net::TcpListener;

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
        // Once lb stopped accepting (its listeners closed) the drain has begun; the held
        // request must still be answered.
        terminate_and_wait_for_drain(&lb);
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
        "--log-format",
        "--tls-listen",
        "--tls-cert",
        "--tls-key",
        "--tls-min-version",
        "--tls-ticket-keys",
    ] {
        assert!(
            text.contains(flag),
            "`lb run --help` does not mention {flag}:\n{text}"
        );
    }
}

/// Sends SIGTERM and waits until lb stopped accepting: its workers are draining.
fn terminate_and_wait_for_drain(lb: &LbProcess) {
    lb.terminate();
    poll_until(WAIT, "lb refusing new connections", || {
        if is_refusing(lb.addr()) {
            Ok(())
        } else {
            Err(lb.stderr())
        }
    });
}

/// The response to a request in flight when the drain begins says `Connection: close`, so the
/// client does not send another request on a connection about to close.
#[test]
fn sigterm_puts_connection_close_on_the_response_in_flight() {
    let held = Backend::start_with("drain", Reply::Hold);
    let lb = lb(1, &[("/", &[held.addr()])], &[]);
    let mut conn = Conn::open(lb.addr());
    conn.send(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    assert!(held.wait_for_requests(1, WAIT), "never reached the backend");
    terminate_and_wait_for_drain(&lb);
    held.release();
    let r = conn.read_response(false).expect("the held response");
    assert_eq!(served_by(&r), "drain");
    assert_eq!(r.header("connection"), Some("close"), "{:?}", r.headers);
    assert!(conn.peer_closed_within(WAIT), "lb kept the connection open");
}

/// A keep-alive connection idle when the drain begins may still send one request (its client
/// may have sent it already): it is answered, with `Connection: close`, not cut off.
#[test]
fn sigterm_answers_the_next_request_of_an_idle_keep_alive_connection_then_closes() {
    let backend = Backend::start("d");
    let mut lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let mut conn = Conn::open(lb.addr());
    assert_eq!(served_by(&conn.get("/before")), "d");
    terminate_and_wait_for_drain(&lb);
    let r = conn.get("/after");
    assert_eq!(served_by(&r), "d");
    assert_eq!(r.header("connection"), Some("close"), "{:?}", r.headers);
    assert!(conn.peer_closed_within(WAIT), "lb kept the connection open");
    assert_eq!(lb.wait_exit(WAIT).code(), Some(0), "{}", lb.stderr());
}

/// An idle keep-alive connection that sends nothing is closed by the drain, which then ends.
#[test]
fn sigterm_closes_an_idle_keep_alive_connection_and_exits() {
    let backend = Backend::start("d");
    let mut lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let mut conn = Conn::open(lb.addr());
    assert_eq!(served_by(&conn.get("/only")), "d");
    terminate_and_wait_for_drain(&lb);
    assert!(
        conn.peer_closed_within(WAIT),
        "lb kept the idle connection open"
    );
    assert_eq!(lb.wait_exit(WAIT).code(), Some(0), "{}", lb.stderr());
}
