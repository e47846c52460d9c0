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
        write_request_head(&req, "", req.target, &ClientAddr::new("192.0.2.1".parse().unwrap()), b"id-1", &mut out);
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

/// Every `name` field of a head lb wrote, by value.
fn field_values(head: &[u8], name: &str) -> Vec<Vec<u8>> {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS + 8];
    let mut req = httparse::Request::new(&mut headers);
    assert!(matches!(req.parse(head), Ok(httparse::Status::Complete(_))));
    req.headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.to_vec())
        .collect()
}

proptest! {
    #[test]
    fn absolute_form_reads_like_origin_form(
        (raw, kind) in valid_request(),
        authority in "[a-z][a-z0-9.-]{0,20}(:[0-9]{1,5})?",
    ) {
        // The same request with its target in absolute-form: same path, same framing, and the
        // authority is the one Host lb forwards.
        let origin = ok(&raw);
        let line_end = raw.iter().position(|&b| b == b'\r').unwrap();
        let line = std::str::from_utf8(&raw[..line_end]).unwrap();
        let absolute = line.replacen(" /", &format!(" http://{authority}/"), 1);
        let mut abs_raw = absolute.into_bytes();
        abs_raw.extend_from_slice(&raw[line_end..]);
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let req = parse_request(&abs_raw, &mut headers).unwrap().unwrap();
        prop_assert_eq!(req.target, origin.target.as_str());
        prop_assert_eq!(req.body, kind);
        prop_assert_eq!(req.authority, Some(authority.as_bytes()));
        let mut out = Vec::new();
        write_request_head(&req, "", req.target, &ClientAddr::new("192.0.2.1".parse().unwrap()), b"id-1", &mut out);
        prop_assert_eq!(field_values(&out, "host"), vec![authority.as_bytes().to_vec()]);
    }

    #[test]
    fn forwarded_head_has_one_host_and_ends_with_our_via((raw, _) in valid_request()) {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let req = parse_request(&raw, &mut headers).unwrap().unwrap();
        let mut out = Vec::new();
        write_request_head(&req, "", req.target, &ClientAddr::new("192.0.2.1".parse().unwrap()), b"id-1", &mut out);
        prop_assert_eq!(field_values(&out, "host").len(), 1);
        let via = field_values(&out, "via");
        let ours: &[u8] = match req.version {
            Version::Http10 => b"1.0 lb",
            Version::Http11 => b"1.1 lb",
            Version::Http2 => b"2 lb",
        };
        prop_assert_eq!(via.last().map(Vec::as_slice), Some(ours));
    }

    #[test]
    fn mutated_requests_never_read_two_ways(
        (raw, _) in valid_request(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        // One byte changed anywhere: lb either rejects the head, or what it forwards reads back
        // exactly as lb read it (same method, target, framing): no second interpretation.
        let mut raw = raw;
        let at = at.index(raw.len());
        raw[at] = byte;
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        if let Ok(Some(req)) = parse_request(&raw, &mut headers) {
            let mut out = Vec::new();
            write_request_head(&req, "", req.target, &ClientAddr::new("192.0.2.1".parse().unwrap()), b"id-1", &mut out);
            let again = ok(&out);
            prop_assert_eq!(again.method.as_str(), req.method);
            prop_assert_eq!(again.target.as_str(), req.target);
            prop_assert_eq!(again.body, req.body);
            prop_assert_eq!(again.head_len, out.len());
        }
    }
}
