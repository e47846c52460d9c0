//! What lb logs about requests (issue 10, point 6): an unmatched path is no INFO line, a retry
//! that succeeded is one INFO line naming both targets, every 502/504 line names its upstream, a
//! tunnel's access-log line has its real bytes and lifetime, and a drain that times out says how
//! many connections it cut.

use crate::{lb, log_field, served_by, WAIT};
use lb_testkit::{get, refused_addr, serde_json, Backend, Conn, Reply, Scripted};
use std::net::Shutdown;
use std::time::{Duration, Instant};

/// Lines of `log` at INFO or above (the access log's lines are INFO too, so they are left out).
fn loud_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| !l.contains(" DEBUG ") && !l.contains(" TRACE ") && !l.contains(" request="))
        .collect()
}

/// A scanner probing paths nobody routes must not fill the log: the 503 is in the access log,
/// and nowhere at INFO.
#[test]
fn an_unmatched_path_is_in_the_access_log_but_no_info_line() {
    let backend = Backend::start("app");
    let lb = lb(1, &[("/app", &[backend.addr()])], &["--access-log"]);
    assert_eq!(get(lb.addr(), "/wp-login.php").status, 503);
    // The next request's access line comes after everything the first one logged.
    assert_eq!(served_by(&get(lb.addr(), "/app/x")), "app");
    let log = lb.wait_for_stderr(WAIT, &["request=\"GET /app/x\""]);
    assert!(
        log.contains("request=\"GET /wp-login.php\" status=503"),
        "{log}"
    );
    let loud = loud_lines(&log);
    assert!(
        !loud.iter().any(|l| l.contains("no route")),
        "an unmatched path logged at INFO: {loud:#?}"
    );
}

/// A connect that fails and is retried on the next target is one INFO line once the retry has
/// answered, naming the target that failed and the one that answered; nothing at INFO before.
#[test]
fn a_retry_that_succeeded_is_one_line_naming_both_targets() {
    let dead = refused_addr();
    let alive = Backend::start("alive");
    let lb = lb(1, &[("/", &[dead, alive.addr()])], &[]);
    // Round robin starts at the first target: the first request meets the dead one.
    assert_eq!(served_by(&get(lb.addr(), "/a")), "alive");
    let log = lb.wait_for_stderr(WAIT, &["retry succeeded"]);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("retry succeeded"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    let line = lines[0];
    assert!(line.contains(" INFO "), "{line}");
    assert_eq!(
        log_field(line, "failed"),
        Some(dead.to_string().as_str()),
        "{line}"
    );
    assert_eq!(
        log_field(line, "upstream"),
        Some(alive.addr().to_string().as_str()),
        "{line}"
    );
    assert!(
        !loud_lines(&log)
            .iter()
            .any(|l| l.contains("trying the next one")),
        "the attempt was logged at INFO before anyone knew how it ended:\n{log}"
    );
}

/// The log line of every 502 and 504 lb answers names the upstream it was waiting for.
#[test]
fn every_502_and_504_line_names_its_upstream() {
    let silent = Backend::start_with("silent", Reply::NeverAnswer);
    let dead = refused_addr();
    let lb = lb(
        1,
        &[("/slow", &[silent.addr()]), ("/dead", &[dead])],
        &["--upstream-timeout", "300"],
    );
    assert_eq!(get(lb.addr(), "/slow/x").status, 504);
    assert_eq!(get(lb.addr(), "/dead/x").status, 502);
    let log = lb.wait_for_stderr(WAIT, &["error=504 ", "error=502 "]);
    for (status, upstream) in [("504", silent.addr()), ("502", dead)] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!(" error={status} ")))
            .unwrap_or_else(|| panic!("no {status} line in {log}"));
        assert_eq!(
            log_field(line, "upstream"),
            Some(upstream.to_string().as_str()),
            "{line}"
        );
    }
}

/// A WebSocket tunnel's access-log line counts what went through it both ways and how long it
/// lived, not the 101 alone.
#[test]
fn a_tunnel_line_has_its_bytes_both_ways_and_its_lifetime() {
    let up = Scripted::start(|p| {
        p.read_head()?;
        p.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhi")?;
        loop {
            let got = p.read_some()?;
            if got.is_empty() {
                return p.stream().shutdown(Shutdown::Write);
            }
            // Twice what it got: the two directions differ, so the test can tell them apart.
            p.send(&got)?;
            p.send(&got)?;
        }
    });
    let lb = lb(1, &[("/", &[up.addr()])], &["--access-log"]);
    let opened = Instant::now();
    let mut c = Conn::open(lb.addr());
    c.send(b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        .expect("send the upgrade");
    assert_eq!(c.read_head().expect("read").expect("a 101").status(), 101);
    assert_eq!(c.read_exact(2).expect("early bytes"), b"hi");
    c.send(b"0123456789").expect("send through the tunnel");
    assert_eq!(c.read_exact(20).expect("echo").len(), 20);
    // The tunnel's lifetime is what is measured, so it has to last a while.
    std::thread::sleep(Duration::from_millis(300));
    c.stream().shutdown(Shutdown::Write).expect("half-close");
    let (_, closed) = c.read_until_close(WAIT);
    assert!(closed);
    let lived = opened.elapsed().as_secs_f64() * 1000.0;
    let log = lb.wait_for_stderr(WAIT, &["status=101"]);
    let line = log
        .lines()
        .find(|l| l.contains("status=101"))
        .expect("the 101 line");
    assert_eq!(log_field(line, "bytes"), Some("22"), "{line}");
    assert_eq!(log_field(line, "bytes_up"), Some("10"), "{line}");
    let ms: f64 = log_field(line, "duration_ms")
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {line}"));
    assert!(
        ms >= 300.0 && ms <= lived,
        "the tunnel lived {lived} ms at most and 300 at least: {line}"
    );
}

/// A drain that runs out of time says, per worker and in total, how many connections it cut.
#[test]
fn a_drain_that_times_out_says_how_many_connections_it_cut() {
    let held = Backend::start_with("held", Reply::Hold);
    let mut lb = lb(2, &[("/", &[held.addr()])], &["--drain-timeout", "300"]);
    let addr = lb.addr();
    std::thread::scope(|s| {
        let client = s.spawn(move || {
            let mut c = Conn::open(addr);
            c.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n").expect("send");
            c.read_until_close(WAIT)
        });
        assert!(
            held.wait_for_requests(1, WAIT),
            "the request never reached the backend"
        );
        lb.terminate();
        let status = lb.wait_exit(WAIT);
        held.release();
        let _ = client.join();
        assert_eq!(status.code(), Some(0), "{}", lb.stderr());
    });
    let log = lb.stderr();
    let worker_line = log
        .lines()
        .find(|l| l.contains("drain timeout reached") && l.contains("worker="))
        .unwrap_or_else(|| panic!("no worker line in {log}"));
    assert!(worker_line.contains(" WARN "), "{worker_line}");
    assert_eq!(log_field(worker_line, "cut"), Some("1"), "{worker_line}");
    let total = log
        .lines()
        .find(|l| l.contains("connections cut over all workers"))
        .unwrap_or_else(|| panic!("no total line in {log}"));
    assert!(
        total.contains(" WARN ") && total.contains("1 connections cut"),
        "{total}"
    );
}

/// `--log-format json`: every stderr line is one JSON object with time, level, target and
/// fields, and the access log's fields are JSON fields (numbers as numbers), not one string.
#[test]
fn json_logs_are_one_object_per_line_with_the_access_fields_as_fields() {
    let backend = Backend::start("j");
    let dead = refused_addr();
    let lb = lb(
        1,
        &[("/", &[backend.addr()]), ("/dead", &[dead])],
        &["--access-log", "--log-format", "json"],
    );
    assert_eq!(served_by(&get(lb.addr(), "/x?q=\"1\"")), "j");
    assert_eq!(get(lb.addr(), "/dead").status, 502);
    lb.wait_for_stderr(WAIT, &["GET /dead"]);
    let log = lb.stderr();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for event in &events {
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(event.get(key).is_some(), "no {key} in {event}");
        }
    }
    let access: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["target"] == "lb::access")
        .collect();
    assert_eq!(access.len(), 2, "{log}");
    let ok = &access[0]["fields"];
    assert_eq!(ok["request"], "GET /x?q=\"1\"", "{ok}");
    assert_eq!(ok["status"], 200, "{ok}");
    assert_eq!(ok["target"], backend.addr().to_string(), "{ok}");
    assert_eq!(ok["bytes"], 1, "the body \"j\": {ok}");
    assert!(ok["duration_ms"].is_f64(), "{ok}");
    assert!(ok["request_id"].is_string(), "{ok}");
    let failed = events
        .iter()
        .find(|e| e["fields"]["message"] == "request failed")
        .unwrap_or_else(|| panic!("no failure event in {log}"));
    assert_eq!(failed["level"], "INFO", "{failed}");
    assert_eq!(failed["fields"]["upstream"], dead.to_string(), "{failed}");
}
