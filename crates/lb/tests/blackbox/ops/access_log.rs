//! The access log (issue 5, "Observability"): off by default; with `--access-log`, one line per
//! request with method, path, status, target, bytes and duration, for proxied requests and for
//! the answers lb gives itself.

use crate::{lb, log_field, served_by, WAIT};
use lb_testkit::{get, refused_addr, Backend, Reply};

#[test]
fn each_request_gets_one_line_with_its_outcome() {
    let backend = Backend::start("logged");
    let lb = lb(1, &[("/app", &[backend.addr()])], &["--access-log"]);
    assert_eq!(served_by(&get(lb.addr(), "/app/x?y=1")), "logged");
    assert_eq!(get(lb.addr(), "/nowhere").status, 503);

    let proxied = format!(
        "\"GET /app/x?y=1\" status=200 target={} bytes=6 bytes_up=0 duration_ms=",
        backend.addr()
    );
    let refused = "\"GET /nowhere\" status=503 target=- bytes=";
    let log = lb.wait_for_stderr(WAIT, &[&proxied, refused]);
    assert_eq!(log.matches(" status=").count(), 2, "{log}");
}

#[test]
fn nothing_is_logged_without_the_flag() {
    let backend = Backend::start("quiet");
    let mut lb = lb(1, &[("/", &[backend.addr()])], &[]);
    assert_eq!(served_by(&get(lb.addr(), "/a")), "quiet");
    lb.terminate();
    assert!(lb.wait_exit(WAIT).success());
    let log = lb.stderr();
    assert!(!log.contains(" status="), "{log}");
}

/// lb's own answers name the target they were meant for and how long the request took: a 504
/// shows the upstream wait, a 502 the target that refused.
#[test]
fn own_answers_log_their_target_and_their_real_duration() {
    let silent = Backend::start_with("silent", Reply::NeverAnswer);
    let dead = refused_addr();
    let lb = lb(
        1,
        &[("/slow", &[silent.addr()]), ("/dead", &[dead])],
        &["--access-log", "--upstream-timeout", "500"],
    );
    assert_eq!(get(lb.addr(), "/slow/x").status, 504);
    assert_eq!(get(lb.addr(), "/dead/x").status, 502);
    let timed_out = format!("\"GET /slow/x\" status=504 target={} bytes=", silent.addr());
    let refused = format!("\"GET /dead/x\" status=502 target={dead} bytes=");
    let log = lb.wait_for_stderr(WAIT, &[&timed_out, &refused]);
    assert_eq!(log.matches(" status=").count(), 2, "{log}");
    let line = log
        .lines()
        .find(|l| l.contains(&timed_out))
        .expect("the 504's line");
    let ms: f64 = log_field(line, "duration_ms")
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {line}"));
    assert!(
        ms >= 450.0,
        "the 504 waited 500 ms, the log says {ms} ms: {line}"
    );
}
