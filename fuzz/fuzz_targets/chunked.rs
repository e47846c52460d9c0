//! Arbitrary bytes as a chunked body, split in two at a fuzzer-chosen point: scanning never
//! panics, and the split never changes where the body ends, how much data it holds, or whether it
//! is rejected.
#![no_main]

use lb_http::ChunkedDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(body.len());

    let mut whole = ChunkedDecoder::new();
    let whole_scan = whole.scan(body);

    let mut split = ChunkedDecoder::new();
    let split_scan = split.scan(&body[..cut]).and_then(|first| {
        if first.done {
            return Ok(first);
        }
        let second = split.scan(&body[cut..])?;
        Ok(lb_http::Scan {
            consumed: first.consumed + second.consumed,
            done: second.done,
        })
    });

    match (whole_scan, split_scan) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            assert!(a.consumed <= body.len());
            assert_eq!(whole.data_len(), split.data_len());
        }
        (Err(a), Err(b)) => assert_eq!(a.detail, b.detail),
        (a, b) => panic!("split changed the outcome: {a:?} vs {b:?}"),
    }
});
