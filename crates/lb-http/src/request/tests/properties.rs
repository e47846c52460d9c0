//! Property tests: progressive parsing equals whole parsing, forwarded heads parse back to the
//! same framing, and no input panics.

use super::*;
use proptest::prelude::*;

/// A valid request head, its expected body kind, and some body bytes after it.
fn valid_request() -> impl Strategy<Value = (Vec<u8>, BodyKind)> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);
    let target = "/[a-zA-Z0-9/._~%-]{0,24}(\\?[a-z0-9=&]{0,12})?";
    let field = (
        "[A-Za-z][A-Za-z0-9-]{0,12}".prop_filter("not a framing or Host field", |n| {
            !["host", "content-length", "transfer-encoding", "connection"]
                .iter()
                .any(|f| n.eq_ignore_ascii_case(f))
        }),
        "[!-~]([ -~]{0,30}[!-~])?",
    );
    let framing = prop_oneof![
        Just(None),
        (1u64..100_000).prop_map(Some),
        Just(Some(u64::MAX)),
    ];
    (
        method,
        target,
        any::<bool>(),
        prop::collection::vec(field, 0..12),
        framing,
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(method, target, http11, fields, length, chunked, body)| {
            let version = if http11 { "HTTP/1.1" } else { "HTTP/1.0" };
            let mut raw = format!("{method} {target} {version}\r\n");
            if http11 {
                raw.push_str("Host: example.com\r\n");
            }
            for (name, value) in fields {
                raw.push_str(&format!("{name}: {value}\r\n"));
            }
            let kind = match length {
                Some(n) => {
                    raw.push_str(&format!("Content-Length: {n}\r\n"));
                    BodyKind::Length(n)
                }
                None if chunked && http11 => {
                    raw.push_str("Transfer-Encoding: chunked\r\n");
                    BodyKind::Chunked
                }
                None => BodyKind::Empty,
            };
            raw.push_str("\r\n");
            let mut raw = raw.into_bytes();
            raw.extend_from_slice(&body);
            (raw, kind)
        })
}

/// Fragments that make arbitrary input look enough like a head to reach the deeper checks.
const HEAD_PIECES: &[&[u8]] = &[
    b"GET / HTTP/1.1",
    b"HTTP/1.0",
    b"\r\n",
    b"\n",
    b"\r",
    b"Host: a",
    b"Content-Length: 5",
    b"Transfer-Encoding: chunked",
    b"Connection: close",
    b" ",
    b":",
    b",",
    b"\0",
];

proptest! {
    #[test]
    fn progressive_parse_matches_whole((raw, kind) in valid_request()) {
        let whole = ok(&raw);
        prop_assert_eq!(whole.body, kind);
        for end in 0..whole.head_len {
            prop_assert_eq!(parse(&raw[..end]), Ok(None), "prefix {}", end);
        }
        let exact = ok(&raw[..whole.head_len]);
        prop_assert_eq!(exact, whole);
    }

    #[test]
    fn forwarded_head_parses_to_same_framing((raw, kind) in valid_request()) {
        let mut out = Vec::new();
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let req = parse_request(&raw, &mut headers).unwrap().unwrap();
        write_request_head(&req, "", req.target, "192.0.2.1".parse().unwrap(), &mut out);
        let again = ok(&out);
        prop_assert_eq!(again.head_len, out.len());
        prop_assert_eq!(again.body, kind);
        prop_assert_eq!(again.version, Version::Http11);
        prop_assert_eq!(again.target, req.target);
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&raw);
    }

    #[test]
    fn head_like_bytes_never_panic(
        parts in prop::collection::vec(prop::sample::select(HEAD_PIECES), 0..24)
    ) {
        let raw = parts.concat();
        if let Ok(Some(p)) = parse(&raw) {
            prop_assert!(p.head_len <= raw.len());
        }
    }
}
