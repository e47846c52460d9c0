//! Arbitrary bytes as a chunked body, split in two at a fuzzer-chosen point: scanning never
//! panics; the split never changes where the body ends, how much data it holds, or whether it
//! is rejected; and decoding (for HTTP/1.0 clients) reads the grammar exactly as scanning does,
//! handing out exactly `data_len` payload bytes whatever the split.
#![no_main]

use lb_http::{ChunkedDecoder, HttpError, Scan};
use libfuzzer_sys::fuzz_target;

/// Feeds `body` in two pieces, stopping once the body is done, through `step`.
fn in_two(
    body: &[u8],
    cut: usize,
    mut step: impl FnMut(&[u8]) -> Result<Scan, HttpError>,
) -> Result<Scan, HttpError> {
    let first = step(&body[..cut])?;
    if first.done {
        return Ok(first);
    }
    let second = step(&body[cut..])?;
    Ok(Scan {
        consumed: first.consumed + second.consumed,
        done: second.done,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(body.len());

    let mut whole = ChunkedDecoder::new();
    let whole_scan = whole.scan(body);

    let mut split = ChunkedDecoder::new();
    let split_scan = in_two(body, cut, |piece| split.scan(piece));

    let mut decoder = ChunkedDecoder::new();
    let mut payload = Vec::new();
    let whole_decode = decoder.decode(body, &mut payload);

    let mut split_decoder = ChunkedDecoder::new();
    let mut split_payload = Vec::new();
    let split_decode = in_two(body, cut, |piece| {
        split_decoder.decode(piece, &mut split_payload)
    });

    match (&whole_scan, &split_scan) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            assert!(a.consumed <= body.len());
            assert_eq!(whole.data_len(), split.data_len());
        }
        (Err(a), Err(b)) => assert_eq!(a.detail, b.detail),
        (a, b) => panic!("split changed the outcome: {a:?} vs {b:?}"),
    }
    assert_eq!(whole_decode, whole_scan, "decode and scan disagree");
    assert_eq!(
        split_decode, split_scan,
        "split decode and split scan disagree"
    );
    if whole_scan.is_ok() {
        assert_eq!(payload.len() as u64, whole.data_len());
        assert_eq!(payload, split_payload, "split changed the payload");
    }
});
