//! A certificate's expiry date (the X.509 `notAfter`), and what lb says about it at load.
//!
//! The date is read by a small DER walk (RFC 5280 §4.1: `Certificate` -> `tbsCertificate` ->
//! skip `version`, `serialNumber`, `signature`, `issuer` -> `validity.notAfter`), so lb needs no
//! X.509 parser of its own. Pure: the time is passed in. Never panics on bytes from a file: a
//! certificate that cannot be walked has no date (`None`), and rustls judges it on its own.

/// A certificate expiring within this many days is logged as a warning at load.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// What the log says of a certificate's expiry date at `now` (seconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryNote {
    /// More than [`EXPIRY_WARNING_DAYS`] left.
    Fine { days_left: i64 },
    /// Within [`EXPIRY_WARNING_DAYS`]: renew it.
    Soon { days_left: i64 },
    /// Already expired: clients will refuse it.
    Expired,
}

impl ExpiryNote {
    /// The note for a certificate valid until `not_after` (both in Unix seconds).
    pub fn at(not_after: i64, now: i64) -> Self {
        let left = not_after - now;
        let days_left = left / 86_400;
        if left < 0 {
            ExpiryNote::Expired
        } else if days_left < EXPIRY_WARNING_DAYS {
            ExpiryNote::Soon { days_left }
        } else {
            ExpiryNote::Fine { days_left }
        }
    }
}

/// The `notAfter` of the DER certificate `der`, in seconds since the Unix epoch.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (tag, cert, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == VERSION {
        rest = after;
    }
    // serialNumber, signature, issuer.
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (tag, validity, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let not_before_rest = tlv(validity)?.2;
    let (tag, time, _) = tlv(not_before_rest)?;
    parse_time(tag, time)
}

/// One DER tag-length-value: (tag, content, what follows). Definite lengths only (DER).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(count)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b))
    };
    let (content, after) = rest.split_at_checked(len)?;
    Some((tag, content, after))
}

/// `YYMMDDHHMMSSZ` (UTCTime, RFC 5280 §4.1.2.5.1: YY < 50 is 20YY) or `YYYYMMDDHHMMSSZ`.
fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(&text[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        (GENERALIZED_TIME, 15) => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    if rest.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_both_forms() {
        let cases: [(u8, &[u8], Option<i64>); 6] = [
            (UTC_TIME, b"700101000000Z", Some(0)),
            (UTC_TIME, b"491231235959Z", Some(2_524_607_999)),
            (GENERALIZED_TIME, b"20261204200000Z", Some(1_796_414_400)),
            (UTC_TIME, b"7001010000Z", None),
            (UTC_TIME, b"701301000000Z", None),
            (GENERALIZED_TIME, b"2026120420000+Z", None),
        ];
        for (tag, text, want) in cases {
            assert_eq!(
                parse_time(tag, text),
                want,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn notes_by_days_left() {
        let day = 86_400;
        assert_eq!(
            ExpiryNote::at(100 * day, 0),
            ExpiryNote::Fine { days_left: 100 }
        );
        assert_eq!(
            ExpiryNote::at(14 * day, 0),
            ExpiryNote::Fine { days_left: 14 }
        );
        assert_eq!(
            ExpiryNote::at(13 * day, 0),
            ExpiryNote::Soon { days_left: 13 }
        );
        assert_eq!(ExpiryNote::at(0, 0), ExpiryNote::Soon { days_left: 0 });
        assert_eq!(ExpiryNote::at(0, 1), ExpiryNote::Expired);
    }

    #[test]
    fn the_date_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 3, 9);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(not_after(cert.der()), Some(1_930_780_800));
    }

    #[test]
    fn garbage_has_no_date() {
        for bytes in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x03\x30\x01\x00",
        ] {
            assert_eq!(not_after(bytes), None);
        }
    }
}
