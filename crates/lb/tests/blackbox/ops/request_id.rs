//! `X-Request-ID` (issue 10, point 6): kept when the client sent a sane one, else lb's own,
//! unique across workers and restarts; sent upstream once and written in the access log.

use crate::{lb, log_field, served_by, WAIT};
use lb_testkit::{request, send_raw, Backend};
use std::collections::HashSet;

/// The one `X-Request-ID` the backend got with its last request.
fn id_upstream(backend: &Backend) -> String {
    let got = backend.last_request();
    let ids = got.headers.get_all("x-request-id");
    assert_eq!(
        ids.len(),
        1,
        "exactly one X-Request-ID upstream: {:?}",
        got.headers
    );
    ids[0].to_string()
}

/// A shape lb's own ids have: hex, `-`, hex, `-`, hex.
fn is_own(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn a_sane_client_id_is_kept_upstream_and_in_the_access_log() {
    let backend = Backend::start("b");
    let lb = lb(1, &[("/", &[backend.addr()])], &["--access-log"]);
    let raw = request(
        "GET",
        "/a",
        &[("X-Request-ID", "trace-4bf92f3577b34da6")],
        b"",
    );
    assert_eq!(served_by(&send_raw(lb.addr(), &raw)), "b");
    assert_eq!(id_upstream(&backend), "trace-4bf92f3577b34da6");
    let log = lb.wait_for_stderr(WAIT, &["request=\"GET /a\""]);
    let line = log
        .lines()
        .find(|l| l.contains("request=\"GET /a\""))
        .expect("line");
    assert_eq!(
        log_field(line, "request_id"),
        Some("\"trace-4bf92f3577b34da6\""),
        "{line}"
    );
}

/// An id that is too long, or that two fields disagree on, is replaced by lb's own.
#[test]
fn an_insane_client_id_is_replaced() {
    let backend = Backend::start("b");
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let long = "x".repeat(129);
    let cases: [&[(&str, &str)]; 3] = [
        &[("X-Request-ID", &long)],
        &[("X-Request-ID", "a"), ("X-Request-ID", "b")],
        &[("X-Request-ID", "two words")],
    ];
    for headers in cases {
        assert_eq!(
            served_by(&send_raw(lb.addr(), &request("GET", "/", headers, b""))),
            "b"
        );
        let id = id_upstream(&backend);
        assert!(is_own(&id), "{headers:?} reached the backend as {id:?}");
    }
}

/// Without one, every request gets a new id: none repeats across the workers of one lb, nor
/// across a restart (which starts its counters again).
#[test]
fn generated_ids_are_unique_across_workers_and_restarts() {
    let backend = Backend::start("b");
    let mut seen = HashSet::new();
    for _run in 0..2 {
        let mut lb = lb(2, &[("/", &[backend.addr()])], &["--access-log"]);
        let mut workers = HashSet::new();
        // New connections land on either worker; go on until both have served some.
        for i in 0..200 {
            let target = format!("/r{i}");
            assert_eq!(served_by(&lb_testkit::get(lb.addr(), &target)), "b");
            let id = id_upstream(&backend);
            assert!(is_own(&id), "{id}");
            assert!(seen.insert(id.clone()), "id {id} was given twice");
            let log = lb.wait_for_stderr(WAIT, &[&format!("request=\"GET {target}\"")]);
            let line = log
                .lines()
                .find(|l| l.contains(&format!("request=\"GET {target}\"")))
                .expect("line");
            assert_eq!(
                log_field(line, "request_id"),
                Some(format!("\"{id}\"").as_str())
            );
            workers.insert(log_field(line, "worker").map(str::to_string));
            if workers.len() == 2 && i >= 3 {
                break;
            }
        }
        assert_eq!(workers.len(), 2, "all 200 connections landed on one worker");
        lb.terminate();
        assert!(lb.wait_exit(WAIT).success());
    }
}
