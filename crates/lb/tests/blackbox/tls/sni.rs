//! SNI (SPEC: the certificate whose subjectAltName DNS names match the client's server name;
//! exact beats a one-label wildcard; no SNI or no match: the first certificate).

use super::{client, make_cert, tls_lb, tls_open, BOTH};
use crate::served_by;
use lb_testkit::{Backend, ScratchDir};

#[test]
fn the_certificate_is_chosen_by_server_name() {
    let dir = ScratchDir::new("tls-sni");
    let default = make_cert(&dir, "default", &["default.test"]);
    let wildcard = make_cert(&dir, "wildcard", &["*.wild.test"]);
    let exact = make_cert(&dir, "exact", &["exact.wild.test", "other.test"]);
    let b = Backend::start("sni");
    let lb = tls_lb(
        1,
        &[("/", &[b.addr()])],
        &[&default, &wildcard, &exact],
        &[],
    );
    let config = client(BOTH, &["http/1.1"]);
    let cases = [
        (Some("exact.wild.test"), &exact, "exact name"),
        (Some("other.test"), &exact, "second name of a certificate"),
        (
            Some("EXACT.Wild.Test"),
            &exact,
            "names compare without case",
        ),
        (Some("a.wild.test"), &wildcard, "one-label wildcard"),
        (
            Some("a.b.wild.test"),
            &default,
            "a wildcard covers one label only",
        ),
        (
            Some("wild.test"),
            &default,
            "a wildcard does not cover its parent",
        ),
        (Some("unknown.test"), &default, "no match"),
        (
            Some("default.test"),
            &default,
            "the first certificate by name",
        ),
        (None, &default, "no SNI"),
    ];
    for (sni, want, why) in cases {
        let mut conn = tls_open(lb.tls_addr(), &config, sni);
        assert!(
            conn.wire().leaf() == want.der,
            "{why}: {sni:?} got another certificate"
        );
        // The connection carries HTTP whichever certificate it got.
        assert_eq!(served_by(&conn.get("/")), "sni", "{why}");
    }
}
