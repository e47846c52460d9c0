//! Arbitrary bytes as a request head: parsing never panics, a parsed head is within its input,
//! and the head lb forwards parses back to the same framing (lb never emits what it would reject).
#![no_main]

use lb_http::{parse_request, write_request_head, EMPTY_HEADER, MAX_HEADERS, MAX_HEAD_BYTES};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};

fuzz_target!(|data: &[u8]| {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let Ok(Some(req)) = parse_request(data, &mut headers) else {
        return;
    };
    assert!(req.head_len <= data.len() && req.head_len <= MAX_HEAD_BYTES);

    let mut out = Vec::new();
    let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    write_request_head(&req, "", req.target, client, &mut out);
    // lb adds up to five fields (Host, X-Forwarded-*, framing) and may outgrow the limit.
    if out.len() > MAX_HEAD_BYTES {
        return;
    }
    let mut again = [EMPTY_HEADER; MAX_HEADERS + 5];
    match parse_request(&out, &mut again) {
        Ok(Some(fwd)) => {
            assert_eq!(fwd.head_len, out.len());
            assert_eq!(fwd.body, req.body);
            assert_eq!(fwd.method, req.method);
            assert_eq!(fwd.target, req.target);
        }
        other => panic!("forwarded head does not parse: {other:?}"),
    }
});
