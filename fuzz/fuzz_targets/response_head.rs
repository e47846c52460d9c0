//! Arbitrary bytes as a response head: parsing never panics, a parsed head is within its input,
//! and the head lb writes to the client parses back with the framing the client will see
//! (close-delimited when a chunked body is de-chunked for an HTTP/1.0 client) and the same
//! status.
#![no_main]

use lb_http::{
    dechunk_for, parse_response, write_response_head, BodyKind, ClientSide, Version, EMPTY_HEADER,
    MAX_HEADERS, MAX_HEAD_BYTES,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the request kind and the client side, the rest is the response.
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let head_request = flags & 1 != 0;
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let Ok(Some(resp)) = parse_response(data, &mut headers, head_request) else {
        return;
    };
    assert!(resp.head_len <= data.len() && resp.head_len <= MAX_HEAD_BYTES);
    if resp.status == 101 {
        assert!(!resp.reusable);
    }

    let client = ClientSide {
        version: if flags & 2 != 0 {
            Version::Http10
        } else {
            Version::Http11
        },
        keep_alive: flags & 4 != 0,
    };
    let mut out = Vec::new();
    write_response_head(&resp, client, &mut out);
    if out.len() > MAX_HEAD_BYTES {
        return;
    }
    let mut again = [EMPTY_HEADER; MAX_HEADERS + 4];
    match parse_response(&out, &mut again, head_request) {
        Ok(Some(fwd)) => {
            assert_eq!(fwd.head_len, out.len());
            assert_eq!(fwd.status, resp.status);
            let expected = if dechunk_for(client, resp.body) {
                BodyKind::CloseDelimited
            } else {
                resp.body
            };
            assert_eq!(fwd.body, expected);
        }
        other => panic!("written head does not parse: {other:?}"),
    }
});
