//! A zero-downtime upgrade hands the TLS sockets to the successor too (upgrade manifest
//! version 3): the new lb serves HTTPS on the very sockets of the old one.

use super::{client, make_cert, tls_flags, tls_open, BOTH};
use crate::{bin, served_by};
use lb_testkit::{run_args, Backend, LbProcess, ScratchDir, WAIT};

#[test]
fn an_upgrade_hands_over_the_tls_sockets() {
    let dir = ScratchDir::new("tls-upgrade");
    let cert = make_cert(&dir, "a", &["a.test"]);
    let sock = dir.join("upgrade.sock");
    let sock = sock.to_str().expect("utf-8 path");
    let b = Backend::start("up");
    let routes: &[(&str, &[std::net::SocketAddr])] = &[("/", &[b.addr()])];
    let mut flags = tls_flags(&[&cert]);
    flags.extend(["--upgrade-socket".to_string(), sock.to_string()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut old = LbProcess::start(bin(), &run_args(2, routes, &flags));
    let tls = old.tls_addr();
    let config = client(BOTH, &[]);
    let mut before = tls_open(tls, &config, Some("a.test"));
    assert_eq!(served_by(&before.get("/")), "up");
    drop(before);

    // The successor asks for port 0 too: only inherited sockets give it the old lb's port.
    let mut new_flags = flags.clone();
    new_flags.push("--takeover");
    let new = LbProcess::start(bin(), &run_args(2, routes, &new_flags));
    assert_eq!(
        old.wait_exit(WAIT).code(),
        Some(0),
        "old lb:\n{}",
        old.stderr()
    );
    assert_eq!(new.tls_addr(), tls, "{}", new.ready_line());
    for _ in 0..4 {
        let mut conn = tls_open(tls, &config, Some("a.test"));
        assert_eq!(served_by(&conn.get("/")), "up");
    }
}
