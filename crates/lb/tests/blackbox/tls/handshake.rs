//! Handshakes: TLS 1.2 and 1.3, `min_version`, ALPN, resumption across workers, and clients
//! that are confused (plain HTTP on the TLS port) or hostile (garbage, a stalled handshake).

use super::{
    client, make_cert, tls_connect, tls_lb, tls_metric, tls_open, wait_for_tls_metric, BOTH,
};
use crate::{assert_lb_error, served_by};
use lb_testkit::{request, Backend, Conn, ScratchDir, WAIT};
use rustls::client::{Resumption, Tls12Resumption};
use rustls::version::{TLS12, TLS13};
use rustls::ProtocolVersion;
use std::time::{Duration, Instant};

#[test]
fn tls_1_2_and_1_3_are_served_and_min_version_refuses_1_2() {
    let dir = ScratchDir::new("tls-versions");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let b = Backend::start("v");
    let lb = tls_lb(1, &[("/", &[b.addr()])], &[&cert], &[]);
    for (versions, want) in [
        (&[&TLS12][..], ProtocolVersion::TLSv1_2),
        (&[&TLS13][..], ProtocolVersion::TLSv1_3),
        (BOTH, ProtocolVersion::TLSv1_3),
    ] {
        let mut conn = tls_open(lb.tls_addr(), &client(versions, &[]), Some("a.test"));
        assert_eq!(conn.wire().version(), Some(want));
        assert_eq!(served_by(&conn.get("/")), "v");
    }
    assert_eq!(
        tls_metric(
            &lb,
            "lb_tls_handshakes_total",
            "version=\"1.2\",kind=\"full\""
        ),
        1.0
    );
    assert_eq!(
        tls_metric(
            &lb,
            "lb_tls_handshakes_total",
            "version=\"1.3\",kind=\"full\""
        ),
        2.0
    );

    let strict = tls_lb(
        1,
        &[("/", &[b.addr()])],
        &[&cert],
        &["--tls-min-version", "1.3"],
    );
    let refused = tls_connect(strict.tls_addr(), &client(&[&TLS12], &[]), Some("a.test"));
    assert!(
        refused.is_err(),
        "a TLS 1.2 client must be refused with min_version 1.3"
    );
    let mut conn = tls_open(strict.tls_addr(), &client(BOTH, &[]), Some("a.test"));
    assert_eq!(conn.wire().version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(served_by(&conn.get("/")), "v");
    let protocol = "reason=\"protocol\"";
    wait_for_tls_metric(&strict, "lb_tls_handshake_failures_total", protocol, 1.0);
}

/// ALPN: `h2` first when the client offers it, `http/1.1` when only it is offered, HTTP/1.1
/// without ALPN, and a handshake failure when nothing is in common.
#[test]
fn alpn_prefers_h2_and_refuses_what_lb_does_not_speak() {
    let dir = ScratchDir::new("tls-alpn");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let b = Backend::start("alpn");
    let lb = tls_lb(1, &[("/", &[b.addr()])], &[&cert], &[]);
    let both = tls_open(lb.tls_addr(), &client(BOTH, &["http/1.1", "h2"]), None);
    assert_eq!(both.wire().alpn().as_deref(), Some(&b"h2"[..]));
    let mut conn = tls_open(lb.tls_addr(), &client(BOTH, &["http/1.1"]), None);
    assert_eq!(conn.wire().alpn().as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(served_by(&conn.get("/")), "alpn");
    let mut conn = tls_open(lb.tls_addr(), &client(BOTH, &[]), None);
    assert_eq!(conn.wire().alpn(), None);
    assert_eq!(served_by(&conn.get("/")), "alpn");
    let unknown = tls_connect(lb.tls_addr(), &client(BOTH, &["spdy/3"]), None);
    assert!(
        unknown.is_err(),
        "no protocol in common must fail the handshake"
    );
}

/// One ticket issuer for all workers: a reconnect resumes whichever worker it lands on.
#[test]
fn sessions_resume_across_workers() {
    let dir = ScratchDir::new("tls-resume");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let b = Backend::start("r");
    let lb = tls_lb(2, &[("/", &[b.addr()])], &[&cert], &[]);
    // TLS 1.2 by session ID too: the session cache is shared like the ticket keys.
    let mut by_id = (*client(&[&TLS12], &["http/1.1"])).clone();
    by_id.resumption =
        Resumption::in_memory_sessions(64).tls12_resumption(Tls12Resumption::SessionIdOnly);
    let by_id = std::sync::Arc::new(by_id);
    for (how, config) in [
        ("TLS 1.3 ticket", client(&[&TLS13], &["http/1.1"])),
        ("TLS 1.2 ticket", client(&[&TLS12], &["http/1.1"])),
        ("TLS 1.2 session id", by_id),
    ] {
        let mut first = tls_open(lb.tls_addr(), &config, Some("a.test"));
        // Reading the answer also reads the session ticket sent after the handshake.
        assert_eq!(served_by(&first.get("/")), "r");
        assert!(!first.wire().resumed());
        let resumed = (0..10)
            .filter(|_| {
                let mut conn = tls_open(lb.tls_addr(), &config, Some("a.test"));
                assert_eq!(served_by(&conn.get("/")), "r");
                conn.wire().resumed()
            })
            .count();
        assert!(resumed >= 9, "{how}: {resumed} of 10 reconnects resumed");
    }
    // Both workers resumed sessions: the reconnects spread over both (SO_REUSEPORT hashes
    // each new source port), so a session issued by one worker was resumed by the other.
    let admin = lb.admin();
    let resumed_on = |w: usize| {
        ["1.2", "1.3"]
            .iter()
            .map(|v| {
                admin.metric(&format!(
                    "lb_tls_handshakes_total{{worker=\"{w}\",version=\"{v}\",kind=\"resumed\"}}"
                ))
            })
            .sum::<f64>()
    };
    let config = client(BOTH, &[]);
    let mut warm = tls_open(lb.tls_addr(), &config, Some("a.test"));
    assert_eq!(served_by(&warm.get("/")), "r");
    let mut tries = 0;
    while (resumed_on(0) == 0.0 || resumed_on(1) == 0.0) && tries < 40 {
        let mut conn = tls_open(lb.tls_addr(), &config, Some("a.test"));
        assert_eq!(served_by(&conn.get("/")), "r");
        tries += 1;
    }
    assert!(
        resumed_on(0) > 0.0 && resumed_on(1) > 0.0,
        "resumed on worker 0: {}, on worker 1: {}",
        resumed_on(0),
        resumed_on(1)
    );
}

#[test]
fn plain_http_on_the_tls_port_gets_a_clear_text_400() {
    let dir = ScratchDir::new("tls-plain");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let b = Backend::start("p");
    let lb = tls_lb(1, &[("/", &[b.addr()])], &[&cert], &[]);
    let mut conn = Conn::open(lb.tls_addr());
    let r = conn.request(&request("GET", "/", &[], b""));
    assert_lb_error(&r, 400);
    assert!(r.text().contains("HTTPS"), "{}", r.text());
    assert!(r.closes(), "the answer says Connection: close");
    assert!(conn.peer_closed_within(WAIT), "lb closes after the 400");
    assert_eq!(b.request_count(), 0);
    let plain = "reason=\"plain_http\"";
    wait_for_tls_metric(&lb, "lb_tls_handshake_failures_total", plain, 1.0);
}

/// Garbage where a ClientHello should be costs that connection only.
#[test]
fn a_garbage_client_hello_closes_only_its_connection() {
    let dir = ScratchDir::new("tls-garbage");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let b = Backend::start("g");
    let lb = tls_lb(1, &[("/", &[b.addr()])], &[&cert], &[]);
    let config = client(BOTH, &[]);
    let mut open = tls_open(lb.tls_addr(), &config, Some("a.test"));
    for garbage in [
        &b"\x16\x03\x01\x00\x05hello"[..],
        b"\x16\x03\x01\xff\xff",
        b"\x00\x01\x02\x03\x04\x05\x06\x07",
        b"\x80\x2e\x01\x03\x01",
    ] {
        let mut bad = Conn::open(lb.tls_addr());
        bad.send(garbage).expect("send");
        assert!(bad.peer_closed_within(WAIT), "{garbage:?}: lb closes");
    }
    // The connection opened before is untouched, and new ones work.
    assert_eq!(served_by(&open.get("/")), "g");
    let mut fresh = tls_open(lb.tls_addr(), &config, Some("a.test"));
    assert_eq!(served_by(&fresh.get("/")), "g");
    let protocol = "reason=\"protocol\"";
    wait_for_tls_metric(&lb, "lb_tls_handshake_failures_total", protocol, 4.0);
}

/// A handshake that stalls is closed by the header timeout, counted from accept.
#[test]
fn a_stalled_handshake_is_closed_by_the_header_timeout() {
    let dir = ScratchDir::new("tls-stall");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let b = Backend::start("s");
    let lb = tls_lb(
        1,
        &[("/", &[b.addr()])],
        &[&cert],
        &["--header-timeout", "1s"],
    );
    let mut stalled = Conn::open(lb.tls_addr());
    let started = Instant::now();
    // A record header announcing a ClientHello that never comes.
    stalled.send(b"\x16\x03\x01\x01\x00\x01").expect("send");
    assert!(
        stalled.peer_closed_within(WAIT),
        "lb closes a stalled handshake"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}, before the timeout"
    );
    let timeout = "reason=\"timeout\"";
    wait_for_tls_metric(&lb, "lb_tls_handshake_failures_total", timeout, 1.0);
    // A client that completes the handshake and then says nothing has the same deadline (not
    // the idle timeout, 60 s by default).
    let mut silent = tls_open(lb.tls_addr(), &client(BOTH, &[]), Some("a.test"));
    let started = Instant::now();
    assert!(
        silent.peer_closed_within(WAIT),
        "lb closes a silent TLS client"
    );
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(10),
        "closed after {waited:?}: the idle timeout"
    );
    let mut fine = tls_open(lb.tls_addr(), &client(BOTH, &[]), Some("a.test"));
    assert_eq!(served_by(&fine.get("/")), "s");
}

/// Two lb processes with one `--tls-ticket-keys` file resume each other's sessions; without
/// it, each has keys of its own and a session from one is a full handshake on the other.
#[test]
fn nodes_sharing_a_ticket_key_file_resume_each_others_sessions() {
    let dir = ScratchDir::new("tls-ticket-keys");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let keys = dir.join("ticket.keys");
    std::fs::write(
        &keys,
        "# newest first\n\
         1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100\n",
    )
    .expect("write keys");
    let b = Backend::start("tk");
    let keys_flag = keys.display().to_string();
    let shared = ["--tls-ticket-keys", keys_flag.as_str()];
    for (extra, resumes) in [(&shared[..], true), (&[][..], false)] {
        let one = tls_lb(1, &[("/", &[b.addr()])], &[&cert], extra);
        let two = tls_lb(1, &[("/", &[b.addr()])], &[&cert], extra);
        for versions in [&[&TLS13][..], &[&TLS12][..]] {
            let config = client(versions, &[]);
            let mut first = tls_open(one.tls_addr(), &config, Some("a.test"));
            assert_eq!(served_by(&first.get("/")), "tk");
            let mut other = tls_open(two.tls_addr(), &config, Some("a.test"));
            assert_eq!(served_by(&other.get("/")), "tk");
            assert_eq!(
                other.wire().resumed(),
                resumes,
                "{versions:?}, shared keys: {resumes}"
            );
        }
    }
}
