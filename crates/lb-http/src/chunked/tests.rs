//! The chunked scanner: valid bodies whole and split, every rejection by name, and property tests
//! that splitting never changes the outcome.

use super::*;
use proptest::prelude::*;

/// Scans `input` in one call with a fresh scanner.
fn whole(input: &[u8]) -> Result<Scan, HttpError> {
    ChunkedDecoder::new().scan(input)
}

/// Scans `input` one byte at a time until done; returns the total consumed.
fn bytewise(input: &[u8]) -> Result<Scan, HttpError> {
    let mut dec = ChunkedDecoder::new();
    let mut consumed = 0;
    for b in input {
        let scan = dec.scan(std::slice::from_ref(b))?;
        consumed += scan.consumed;
        if scan.done {
            return Ok(Scan {
                consumed,
                done: true,
            });
        }
    }
    Ok(Scan {
        consumed,
        done: false,
    })
}

fn assert_rejects(input: &[u8], detail: &str) {
    for result in [whole(input), bytewise(input)] {
        match result {
            Err(e) => assert_eq!(
                (e.kind, e.detail),
                (ErrorKind::BadRequest, detail),
                "{:?}",
                String::from_utf8_lossy(input)
            ),
            Ok(scan) => panic!("{:?}: {scan:?}", String::from_utf8_lossy(input)),
        }
    }
}

fn done_at(n: usize) -> Result<Scan, HttpError> {
    Ok(Scan {
        consumed: n,
        done: true,
    })
}

#[test]
fn simple_body() {
    let body = b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n";
    assert_eq!(whole(body), done_at(body.len()));
    assert_eq!(bytewise(body), done_at(body.len()));
}

#[test]
fn stops_at_end_of_body() {
    let mut input = b"3\r\nabc\r\n0\r\n\r\n".to_vec();
    let end = input.len();
    input.extend_from_slice(b"GET /next HTTP/1.1\r\n");
    assert_eq!(whole(&input), done_at(end));
}

#[test]
fn incomplete_body_consumes_everything() {
    let input = b"a\r\n0123";
    assert_eq!(
        whole(input),
        Ok(Scan {
            consumed: input.len(),
            done: false
        })
    );
}

#[test]
fn counts_data_bytes() {
    let mut dec = ChunkedDecoder::new();
    dec.scan(b"4\r\nWi").unwrap();
    assert_eq!(dec.data_len(), 2);
    dec.scan(b"ki\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n")
        .unwrap();
    assert_eq!(dec.data_len(), 20);
}

#[test]
fn hex_sizes_any_case_with_leading_zeros() {
    let mut body = b"000A\r\n".to_vec();
    body.extend_from_slice(&[b'x'; 10]);
    body.extend_from_slice(b"\r\nb\r\n");
    body.extend_from_slice(&[b'y'; 11]);
    body.extend_from_slice(b"\r\n00000000000000000000\r\n\r\n");
    assert_eq!(whole(&body), done_at(body.len()));
}

#[test]
fn extensions_ignored() {
    let body = b"3;name=value;quoted=\"a b;c\"\r\nabc\r\n3 ; x\r\ndef\r\n0;last\r\n\r\n";
    assert_eq!(whole(body), done_at(body.len()));
    assert_eq!(bytewise(body), done_at(body.len()));
}

#[test]
fn trailers_accepted() {
    let body = b"3\r\nabc\r\n0\r\nX-Sum: 123\r\nX-Other:\tv\r\n\r\n";
    assert_eq!(whole(body), done_at(body.len()));
    assert_eq!(bytewise(body), done_at(body.len()));
}

#[test]
fn scan_after_done_consumes_nothing() {
    let mut dec = ChunkedDecoder::new();
    assert_eq!(dec.scan(b"0\r\n\r\n"), done_at(5));
    assert_eq!(dec.scan(b"more"), done_at(0));
}

#[test]
fn sixteen_significant_digits_fit() {
    let mut dec = ChunkedDecoder::new();
    let scan = dec.scan(b"00FFFFFFFFFFFFFFFF\r\nabc").unwrap();
    assert!(!scan.done);
    assert_eq!(dec.data_len(), 3);
}

#[test]
fn rejects_non_hex_size() {
    assert_rejects(b"g\r\n", "invalid chunk size");
    assert_rejects(b"4x\r\nWiki\r\n", "invalid chunk size");
    assert_rejects(b"-1\r\n", "invalid chunk size");
    assert_rejects(b"0x4\r\nWiki\r\n", "invalid chunk size");
}

#[test]
fn rejects_empty_size() {
    assert_rejects(b"\r\n", "invalid chunk size");
    assert_rejects(b";ext\r\n", "invalid chunk size");
    assert_rejects(b" 4\r\nWiki\r\n", "invalid chunk size");
}

#[test]
fn rejects_size_overflow() {
    assert_rejects(b"10000000000000000\r\n", "chunk size too large");
    assert_rejects(b"FFFFFFFFFFFFFFFFF\r\n", "chunk size too large");
}

#[test]
fn rejects_bare_lf_after_size() {
    assert_rejects(b"4\nWiki\r\n0\r\n\r\n", "invalid chunk size");
    assert_rejects(b"4;ext\nWiki\r\n0\r\n\r\n", "bare LF in chunked body");
}

#[test]
fn rejects_bare_cr_after_size() {
    assert_rejects(b"4\rWiki\r\n0\r\n\r\n", "bare CR in chunked body");
}

#[test]
fn rejects_whitespace_without_extension() {
    assert_rejects(b"4 \r\nWiki\r\n0\r\n\r\n", "invalid chunk extension");
}

#[test]
fn rejects_control_in_extension() {
    assert_rejects(b"4;a\0b\r\nWiki\r\n", "invalid chunk extension");
    assert_rejects(b"4;a\x7fb\r\nWiki\r\n", "invalid chunk extension");
}

#[test]
fn rejects_missing_crlf_after_data() {
    assert_rejects(b"4\r\nWikiX\r\n0\r\n\r\n", "missing CRLF after chunk data");
    assert_rejects(b"4\r\nWiki\n0\r\n\r\n", "missing CRLF after chunk data");
    assert_rejects(b"4\r\nWiki\rX0\r\n\r\n", "missing CRLF after chunk data");
}

#[test]
fn rejects_size_line_too_long() {
    let mut body = b"4;".to_vec();
    body.resize(MAX_SIZE_LINE + 10, b'a');
    assert_rejects(&body, "chunk size line too long");
    let mut zeros = vec![b'0'; MAX_SIZE_LINE + 1];
    zeros.extend_from_slice(b"4\r\n");
    assert_rejects(&zeros, "chunk size line too long");
}

#[test]
fn size_line_at_limit_accepted() {
    let mut body = b"4;".to_vec();
    body.resize(MAX_SIZE_LINE - 2, b'a');
    body.extend_from_slice(b"\r\nWiki\r\n0\r\n\r\n");
    assert_eq!(whole(&body), done_at(body.len()));
}

#[test]
fn rejects_trailer_too_large() {
    let mut body = b"0\r\n".to_vec();
    for _ in 0..(MAX_TRAILER / 16 + 1) {
        body.extend_from_slice(b"X-Pad: 12345678\r\n");
    }
    body.extend_from_slice(b"\r\n");
    assert_rejects(&body, "trailer section too large");
}

#[test]
fn rejects_nul_in_trailer() {
    assert_rejects(b"0\r\nX: a\0b\r\n\r\n", "invalid trailer field");
}

#[test]
fn rejects_bare_lf_in_trailer() {
    assert_rejects(b"0\r\nX: a\n\r\n", "bare LF in chunked body");
    assert_rejects(b"0\r\n\n", "bare LF in chunked body");
}

#[test]
fn rejects_bare_cr_in_trailer() {
    assert_rejects(b"0\r\nX: a\rb\r\n\r\n", "bare CR in chunked body");
    assert_rejects(b"0\r\n\rX", "bare CR in chunked body");
}

#[test]
fn rejects_trailer_without_colon() {
    assert_rejects(b"0\r\nX-Sum\r\n\r\n", "invalid trailer field");
}

#[test]
fn rejects_space_before_colon_in_trailer() {
    assert_rejects(b"0\r\nX-Sum : 1\r\n\r\n", "invalid trailer field");
    assert_rejects(b"0\r\nX-Sum\t: 1\r\n\r\n", "invalid trailer field");
}

#[test]
fn rejects_folded_or_nameless_trailer() {
    assert_rejects(b"0\r\nX: a\r\n b\r\n\r\n", "invalid trailer field");
    assert_rejects(b"0\r\n: a\r\n\r\n", "invalid trailer field");
    assert_rejects(b"0\r\nX(y): a\r\n\r\n", "invalid trailer field");
}

#[test]
fn trailer_value_may_be_empty_or_hold_obs_text() {
    let body = b"0\r\nX-Empty:\r\nX-Text: caf\xc3\xa9\t!\r\n\r\n";
    assert_eq!(whole(body), done_at(body.len()));
}

// ---- decoding (for HTTP/1.0 clients) ----

/// Decodes `input` in one call: the scan result and the payload.
fn decode_whole(input: &[u8]) -> (Result<Scan, HttpError>, Vec<u8>) {
    let mut out = Vec::new();
    let scan = ChunkedDecoder::new().decode(input, &mut out);
    (scan, out)
}

#[test]
fn decode_yields_payload_only() {
    let body = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Sum: 1\r\n\r\nNEXT";
    let (scan, out) = decode_whole(body);
    assert_eq!(scan, done_at(body.len() - 4));
    assert_eq!(out, b"Wikipedia");
}

#[test]
fn decode_bytewise_matches_whole() {
    let body = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
    let mut dec = ChunkedDecoder::new();
    let mut out = Vec::new();
    for b in body {
        dec.decode(std::slice::from_ref(b), &mut out).unwrap();
    }
    assert_eq!(out, b"abc0123456789abcdef");
    assert_eq!(dec.data_len(), 19);
}

#[test]
fn decode_appends_to_what_out_holds() {
    let mut out = b"kept|".to_vec();
    ChunkedDecoder::new()
        .decode(b"2\r\nhi\r\n0\r\n\r\n", &mut out)
        .unwrap();
    assert_eq!(out, b"kept|hi");
}

#[test]
fn decode_rejects_like_scan() {
    for bad in [
        &b"g\r\n"[..],
        b"4\r\nWikiX",
        b"0\r\nX : y\r\n\r\n",
        b"4\rWiki",
    ] {
        let (scan, _) = decode_whole(bad);
        assert_eq!(scan, whole(bad), "{:?}", String::from_utf8_lossy(bad));
        assert!(scan.is_err());
    }
}

#[test]
fn decode_after_done_appends_nothing() {
    let mut dec = ChunkedDecoder::new();
    let mut out = Vec::new();
    assert_eq!(dec.decode(b"1\r\nx\r\n0\r\n\r\n", &mut out), done_at(11));
    assert_eq!(dec.decode(b"1\r\ny\r\n", &mut out), done_at(0));
    assert_eq!(out, b"x");
}

// ---- properties ----

/// A valid chunked body and its payload.
fn valid_body() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let chunk = (
        prop::collection::vec(any::<u8>(), 1..64),
        0usize..3,
        prop::option::of("[a-z]{1,8}(=[a-z0-9]{1,8})?"),
    );
    let trailer = ("[A-Za-z][A-Za-z0-9-]{0,10}", "[ -~]{0,20}");
    (
        prop::collection::vec(chunk, 0..8),
        prop::option::of("[a-z]{1,8}"),
        prop::collection::vec(trailer, 0..3),
    )
        .prop_map(|(chunks, last_ext, trailers)| {
            let mut body = Vec::new();
            let mut payload = Vec::new();
            for (data, zeros, ext) in chunks {
                body.extend_from_slice("0".repeat(zeros).as_bytes());
                body.extend_from_slice(format!("{:x}", data.len()).as_bytes());
                if let Some(ext) = ext {
                    body.extend_from_slice(format!(";{ext}").as_bytes());
                }
                body.extend_from_slice(b"\r\n");
                body.extend_from_slice(&data);
                body.extend_from_slice(b"\r\n");
                payload.extend_from_slice(&data);
            }
            body.push(b'0');
            if let Some(ext) = last_ext {
                body.extend_from_slice(format!(";{ext}").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            for (name, value) in trailers {
                body.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            (body, payload)
        })
}

proptest! {
    #[test]
    fn any_split_scans_the_same(
        (body, payload) in valid_body(),
        after in prop::collection::vec(any::<u8>(), 0..16),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut input = body.clone();
        input.extend_from_slice(&after);
        prop_assert_eq!(whole(&input), done_at(body.len()));

        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        cuts.push(input.len());
        cuts.sort_unstable();
        let mut dec = ChunkedDecoder::new();
        let (mut start, mut consumed, mut done_after) = (0, 0, None);
        for cut in cuts {
            let scan = dec.scan(&input[start..cut]).unwrap();
            consumed += scan.consumed;
            if scan.done && done_after.is_none() {
                // The body ends inside this piece; the caller stops feeding here.
                done_after = Some(consumed);
                break;
            }
            prop_assert_eq!(scan.consumed, cut - start);
            start = cut;
        }
        prop_assert_eq!(done_after, Some(body.len()));
        prop_assert_eq!(dec.data_len(), payload.len() as u64);
    }

    #[test]
    fn any_split_decodes_to_the_payload(
        (body, payload) in valid_body(),
        after in prop::collection::vec(any::<u8>(), 0..16),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut input = body.clone();
        input.extend_from_slice(&after);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        cuts.push(input.len());
        cuts.sort_unstable();
        let mut dec = ChunkedDecoder::new();
        let mut scanner = ChunkedDecoder::new();
        let (mut start, mut out, mut consumed) = (0, Vec::new(), 0);
        for cut in cuts {
            let piece = &input[start..cut];
            let scan = dec.decode(piece, &mut out).unwrap();
            // Decoding reads the grammar exactly as scanning does.
            prop_assert_eq!(scanner.scan(piece).unwrap(), scan);
            consumed += scan.consumed;
            if scan.done {
                break;
            }
            start = cut;
        }
        prop_assert_eq!(consumed, body.len());
        prop_assert_eq!(out, payload);
    }

    #[test]
    fn mutated_bodies_decode_and_scan_alike(
        (body, _) in valid_body(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        // One byte changed: whatever the outcome, both readings and every split agree on it.
        let mut input = body;
        let at = at.index(input.len());
        input[at] = byte;
        let (decoded, out) = decode_whole(&input);
        prop_assert_eq!(&decoded, &whole(&input));
        let cut = cut.index(input.len() + 1);
        let mut dec = ChunkedDecoder::new();
        let mut split_out = Vec::new();
        let split = dec.decode(&input[..cut], &mut split_out).and_then(|first| {
            if first.done {
                return Ok(first);
            }
            let second = dec.decode(&input[cut..], &mut split_out)?;
            Ok(Scan { consumed: first.consumed + second.consumed, done: second.done })
        });
        match (&decoded, &split) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a, b);
                prop_assert_eq!(&out, &split_out);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.detail, b.detail),
            _ => prop_assert!(false, "split changed the outcome: {:?} vs {:?}", decoded, split),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..512),
        cut in any::<prop::sample::Index>(),
    ) {
        let cut = cut.index(input.len() + 1);
        let mut dec = ChunkedDecoder::new();
        if let Ok(first) = dec.scan(&input[..cut]) {
            prop_assert!(first.consumed <= cut);
            if !first.done {
                if let Ok(second) = dec.scan(&input[cut..]) {
                    prop_assert!(second.consumed <= input.len() - cut);
                }
            }
        }
    }

    #[test]
    fn chunk_like_bytes_agree_whole_and_bytewise(
        parts in prop::collection::vec(prop::sample::select(CHUNK_PIECES), 0..24)
    ) {
        let input = parts.concat();
        let whole = whole(&input).map_err(|e| e.detail);
        let bytewise = bytewise(&input).map_err(|e| e.detail);
        prop_assert_eq!(whole, bytewise);
    }
}

/// Fragments that make arbitrary input look enough like a chunked body to reach every state.
const CHUNK_PIECES: &[&[u8]] = &[
    b"0", b"1", b"a", b"F", b"\r\n", b"\r", b"\n", b";", b" ", b"x", b"X: y", b"\0", b"=",
];
