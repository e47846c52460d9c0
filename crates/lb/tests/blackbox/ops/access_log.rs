//! The access log (issue 5, "Observability"): off by default; with `--access-log`, one line per
//! request with method, path, status, target, bytes and duration, for proxied requests and for
//! the answers lb gives itself.

use crate::{lb, served_by, WAIT};
use lb_testkit::{get, Backend};

#[test]
fn each_request_gets_one_line_with_its_outcome() {
    let backend = Backend::start("logged");
    let lb = lb(1, &[("/app", &[backend.addr()])], &["--access-log"]);
    assert_eq!(served_by(&get(lb.addr(), "/app/x?y=1")), "logged");
    assert_eq!(get(lb.addr(), "/nowhere").status, 503);

    let proxied = format!(
        "\"GET /app/x?y=1\" status=200 target={} bytes=6 duration_ms=",
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
