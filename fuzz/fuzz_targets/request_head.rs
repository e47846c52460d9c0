//! Arbitrary bytes as a request head: parsing never panics, a parsed head is within its input,
//! and the head lb forwards parses back to the same reading (method, target, framing, upgrade,
//! expectation), with exactly one Host (the effective host) and lb's Via last: lb never emits
//! what it would reject, and never what the next hop could read differently.
#![no_main]

use lb_http::{
    parse_request, write_request_head, ClientAddr, Version, EMPTY_HEADER, MAX_HEADERS, MAX_HEAD_BYTES,
    MAX_REQUEST_LINE,
};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};

fuzz_target!(|data: &[u8]| {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let Ok(Some(req)) = parse_request(data, &mut headers) else {
        return;
    };
    assert!(req.head_len <= data.len() && req.head_len <= MAX_HEAD_BYTES);
    assert!(req.target.len() <= MAX_REQUEST_LINE);
    assert!(req.target.starts_with('/') || req.target == "*" || req.method == "CONNECT");
    if req.authority.is_some() {
        assert_eq!(req.host, req.authority);
    }

    let mut out = Vec::new();
    let client = ClientAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    write_request_head(&req, "", req.target, &client, b"fuzz-1", &mut out);
    // lb adds a few fields (Host, X-Forwarded-*, Via, framing) and may outgrow the limit.
    if out.len() > MAX_HEAD_BYTES {
        return;
    }
    let mut again = [EMPTY_HEADER; MAX_HEADERS + 8];
    match parse_request(&out, &mut again) {
        Ok(Some(fwd)) => {
            assert_eq!(fwd.head_len, out.len());
            assert_eq!(fwd.body, req.body);
            assert_eq!(fwd.method, req.method);
            assert_eq!(fwd.target, req.target);
            assert_eq!(fwd.version, Version::Http11);
            assert_eq!(fwd.upgrade, req.upgrade);
            assert_eq!(fwd.expect_continue, req.expect_continue);
            assert_eq!(fwd.host.unwrap_or_default(), req.host.unwrap_or_default());
            let hosts = fwd
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("host"))
                .count();
            assert_eq!(hosts, 1, "Host forwarded {hosts} times");
            let via = fwd
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("via"))
                .last()
                .map(|h| h.value);
            assert!(via == Some(b"1.1 lb") || via == Some(b"1.0 lb"), "{via:?}");
        }
        other => panic!("forwarded head does not parse: {other:?}"),
    }
});
