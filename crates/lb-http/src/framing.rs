//! The body framing fields, Content-Length and Transfer-Encoding (RFC 9112 §6), validated the
//! same way for requests and responses. Request and response parsing then apply the rules of
//! RFC 9112 §6.3 that differ between them, and choose the error kind.
//!
//! Invariant: a head that two parsers could frame differently is an error here: malformed or
//! differing Content-Length values, and both fields at once (the classic smuggling pair). Errors
//! are plain sentences; the caller wraps them in its `ErrorKind`.

use httparse::Header;

/// What a head's Transfer-Encoding fields say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransferCoding {
    /// Exactly one field whose value is exactly `chunked` (any case).
    Chunked,
    /// One field listing codings that end in one `chunked`, with others before it
    /// (`gzip, chunked`): the body's end is known, but lb does not implement those codings
    /// (RFC 9112 §6.1: a server "SHOULD respond with 501 (Not Implemented)").
    Unimplemented,
    /// Anything else: `chunked` not last or twice, parameters, empty elements, several fields.
    /// lb never guesses at these; whether that is an error depends on whether a body follows.
    Other,
}

/// The framing fields of one head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framing {
    /// The Content-Length, identical across all fields and list elements.
    pub(crate) content_length: Option<u64>,
    /// The Transfer-Encoding, if any field is present.
    pub(crate) transfer_coding: Option<TransferCoding>,
}

/// Reads and checks the framing fields of `headers`.
pub(crate) fn framing(headers: &[Header<'_>]) -> Result<Framing, &'static str> {
    let mut content_length = None;
    let mut transfer_coding = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            // RFC 9110 §8.6: a list of identical values ("5, 5", or repeated fields) may be
            // accepted as that one value; anything else is unrecoverable.
            for element in h.value.split(|&b| b == b',') {
                let n = parse_length(crate::fields::trim_ows(element))
                    .ok_or("invalid Content-Length")?;
                if content_length.is_some_and(|seen| seen != n) {
                    return Err("differing Content-Length values");
                }
                content_length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_coding = Some(match transfer_coding {
                None => coding_list(h.value),
                Some(_) => TransferCoding::Other,
            });
        }
    }
    // RFC 9112 §6.3 rule 3: both fields "ought to be handled as an error"; lb always does.
    if content_length.is_some() && transfer_coding.is_some() {
        return Err("both Content-Length and Transfer-Encoding");
    }
    Ok(Framing {
        content_length,
        transfer_coding,
    })
}

/// What one Transfer-Encoding field value says: `chunked` alone, a list of plain codings
/// (tokens, no parameters) ending in a single `chunked`, or anything else.
fn coding_list(value: &[u8]) -> TransferCoding {
    if value.eq_ignore_ascii_case(b"chunked") {
        return TransferCoding::Chunked;
    }
    let mut codings = value
        .split(|&b| b == b',')
        .map(crate::fields::trim_ows)
        .peekable();
    let mut before = 0;
    while let Some(coding) = codings.next() {
        if coding.eq_ignore_ascii_case(b"chunked") {
            let last = codings.peek().is_none();
            return if last && before > 0 {
                TransferCoding::Unimplemented
            } else {
                TransferCoding::Other
            };
        }
        if coding.is_empty() || !coding.iter().all(|&b| crate::fields::is_tchar(b)) {
            return TransferCoding::Other;
        }
        before += 1;
    }
    TransferCoding::Other
}

/// The Content-Length of a head that already passed [`framing`], if it has one.
pub(crate) fn content_length(headers: &[Header<'_>]) -> Option<u64> {
    framing(headers).ok().and_then(|f| f.content_length)
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6): no sign, no inner whitespace, no overflow.
fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cl(values: &[&'static str]) -> Result<Framing, &'static str> {
        let headers: Vec<Header<'static>> = values
            .iter()
            .map(|v| Header {
                name: "Content-Length",
                value: v.as_bytes(),
            })
            .collect();
        framing(&headers)
    }

    #[test]
    fn length_digits_only() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"007"), Some(7));
        assert_eq!(parse_length(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"+5",
            b"-5",
            b"5 5",
            b"0x5",
            b"5a",
            b"18446744073709551616",
        ] {
            assert_eq!(parse_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn identical_lists_collapse() {
        assert_eq!(cl(&["5, 5"]).map(|f| f.content_length), Ok(Some(5)));
        assert_eq!(cl(&["5", "5"]).map(|f| f.content_length), Ok(Some(5)));
        assert_eq!(cl(&["5, 6"]), Err("differing Content-Length values"));
        assert_eq!(cl(&["5,"]), Err("invalid Content-Length"));
        assert_eq!(cl(&["5,,5"]), Err("invalid Content-Length"));
    }

    #[test]
    fn transfer_coding_kinds() {
        let te = |v: &'static str| Header {
            name: "Transfer-Encoding",
            value: v.as_bytes(),
        };
        let coding = |hs: &[Header<'_>]| framing(hs).map(|f| f.transfer_coding);
        assert_eq!(coding(&[te("chunked")]), Ok(Some(TransferCoding::Chunked)));
        assert_eq!(coding(&[te("CHUNKED")]), Ok(Some(TransferCoding::Chunked)));
        for list in [
            "gzip, chunked",
            "GZIP,chunked",
            "deflate , x-custom,\tchunked",
        ] {
            assert_eq!(
                coding(&[te(list)]),
                Ok(Some(TransferCoding::Unimplemented)),
                "{list}"
            );
        }
        for list in [
            "gzip",
            "chunked, gzip",
            "chunked, chunked",
            "gzip, chunked, chunked",
            "gzip;q=1, chunked",
            "gzip,, chunked",
            ", chunked",
            "chunked;x=1",
            "",
        ] {
            assert_eq!(
                coding(&[te(list)]),
                Ok(Some(TransferCoding::Other)),
                "{list}"
            );
        }
        assert_eq!(
            coding(&[te("chunked"), te("chunked")]),
            Ok(Some(TransferCoding::Other))
        );
        assert_eq!(coding(&[]), Ok(None));
    }
}
