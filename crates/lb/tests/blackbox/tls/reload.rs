//! SIGHUP re-reads every certificate and key: new handshakes get the new set, open
//! connections keep theirs, and a file that cannot be used keeps the set in force (SPEC).

use super::{client, make_cert, tls_connect, tls_lb, tls_open, write_atomically, BOTH};
use crate::served_by;
use lb_testkit::{poll_until, Backend, ScratchDir, WAIT};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const RELOADED: &str = "TLS certificates reloaded";
const REJECTED: &str = "TLS certificate reload rejected";

/// Waits until lb logged `n` lines holding `needle`.
fn wait_for_count(lb: &lb_testkit::LbProcess, needle: &str, n: usize) {
    poll_until(WAIT, &format!("{n} x {needle:?}"), || {
        let seen = lb.stderr().matches(needle).count();
        if seen >= n {
            Ok(())
        } else {
            Err(seen)
        }
    });
}

#[test]
fn a_reload_swaps_the_certificates_and_a_bad_one_keeps_the_old_set() {
    let dir = ScratchDir::new("tls-reload");
    let live = make_cert(&dir, "live", &["a.test"]);
    let first = live.der.clone();
    let b = Backend::start("rl");
    let mut lb = tls_lb(1, &[("/", &[b.addr()])], &[&live], &[]);
    let config = client(BOTH, &[]);
    let mut before = tls_open(lb.tls_addr(), &config, Some("a.test"));
    assert!(before.wire().leaf() == first);

    // A key that does not match its certificate: refused, naming the file; the old set stays.
    let other = make_cert(&dir, "other", &["a.test"]);
    std::fs::copy(&other.key, &live.key).expect("copy key");
    lb.process().signal("HUP");
    wait_for_count(&lb, REJECTED, 1);
    assert!(
        lb.stderr().contains(&live.key.display().to_string()),
        "{}",
        lb.stderr()
    );
    let conn = tls_open(lb.tls_addr(), &config, Some("a.test"));
    assert!(
        conn.wire().leaf() == first,
        "the previous certificate stays after a bad reload"
    );

    // A file that cannot be read: the same.
    std::fs::remove_file(&live.cert).expect("remove");
    lb.process().signal("HUP");
    wait_for_count(&lb, REJECTED, 2);
    assert!(lb.stderr().contains(&live.cert.display().to_string()));
    assert!(
        tls_open(lb.tls_addr(), &config, Some("a.test"))
            .wire()
            .leaf()
            == first
    );

    // A good pair: new handshakes get it; the connection opened before keeps working.
    let new = make_cert(&dir, "new", &["a.test"]);
    std::fs::copy(&new.cert, &live.cert).expect("copy cert");
    std::fs::copy(&new.key, &live.key).expect("copy key");
    lb.process().signal("HUP");
    wait_for_count(&lb, RELOADED, 1);
    assert!(
        tls_open(lb.tls_addr(), &config, Some("a.test"))
            .wire()
            .leaf()
            == new.der
    );
    assert_eq!(served_by(&before.get("/")), "rl");
    assert!(before.wire().leaf() == first);
}

/// 1,000 certificate swaps while a client keeps handshaking: not one handshake fails.
#[test]
fn a_thousand_swaps_under_handshakes_fail_none() {
    let dir = ScratchDir::new("tls-swaps");
    let live = make_cert(&dir, "live", &["a.test"]);
    let pairs = [
        make_cert(&dir, "a", &["a.test"]),
        make_cert(&dir, "b", &["a.test"]),
    ];
    let read = |path: &std::path::Path| std::fs::read(path).expect("read");
    let pems: Vec<(Vec<u8>, Vec<u8>)> = pairs
        .iter()
        .map(|p| (read(&p.cert), read(&p.key)))
        .collect();
    let known: Vec<Vec<u8>> = [&live, &pairs[0], &pairs[1]]
        .iter()
        .map(|c| c.der.clone())
        .collect();
    let b = Backend::start("swap");
    let mut lb = tls_lb(1, &[("/", &[b.addr()])], &[&live], &[]);
    let addr = lb.tls_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let client_thread = {
        let (stop, handshakes, known) = (stop.clone(), handshakes.clone(), known.clone());
        std::thread::spawn(move || {
            // Fresh sessions (no resumption): every connection is a full handshake.
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match tls_connect(addr, &client(BOTH, &[]), Some("a.test")) {
                    Ok(conn) if known.contains(&conn.wire().leaf()) => {}
                    Ok(_) => failures.push("an unknown certificate".to_string()),
                    Err(e) => failures.push(e.to_string()),
                }
                handshakes.fetch_add(1, Ordering::Relaxed);
            }
            failures
        })
    };
    for i in 0..1_000 {
        let (cert, key) = &pems[i % 2];
        write_atomically(&live.key, key);
        write_atomically(&live.cert, cert);
        lb.process().signal("HUP");
        // One reload per swap: the next files are written only once this one is in force.
        wait_for_count(&lb, RELOADED, i + 1);
    }
    stop.store(true, Ordering::Relaxed);
    let failures = client_thread.join().expect("client thread");
    let done = handshakes.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {done} handshakes failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(done >= 20, "only {done} handshakes during the swaps");
    assert_eq!(lb.stderr().matches(RELOADED).count(), 1_000);
    assert_eq!(lb.stderr().matches(REJECTED).count(), 0);
}
