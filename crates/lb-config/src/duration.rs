//! The one duration syntax lb accepts, on the command line and in the config file: a whole
//! number followed by `ms`, `s` or `m` (`250ms`, `5s`, `2m`), or a bare whole number, which is
//! milliseconds (what the flags always took, so old command lines keep their meaning).
//!
//! Invariant: the error names the value as given and says what would be accepted, so each
//! caller only adds where the value came from (a flag, a file key).

use std::time::Duration;

/// What every duration error says is accepted.
pub const DURATION_FORMS: &str = "expected e.g. 250ms, 5s, 2m or milliseconds";

/// Parses `250ms`, `5s`, `2m` or a number of milliseconds; surrounding spaces and a space
/// before the unit are allowed. Fractions, signs and other units are refused rather than
/// guessed at.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let bad = || format!("invalid duration \"{s}\" ({DURATION_FORMS})");
    let n: u64 = number.parse().map_err(|_| bad())?;
    match unit.trim() {
        "" | "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// [`parse_duration`] for a setting where zero would mean "never" or "fail at once".
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("invalid duration \"{s}\": must be greater than 0")),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let ms = Duration::from_millis;
        let table = [
            ("250ms", ms(250)),
            ("5s", ms(5_000)),
            ("2m", ms(120_000)),
            ("1500", ms(1_500)),
            ("0", ms(0)),
            ("0ms", ms(0)),
            (" 7 s ", ms(7_000)),
            ("10 ms", ms(10)),
        ];
        for (text, want) in table {
            assert_eq!(parse_duration(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn refused_forms_name_the_value_and_the_accepted_forms() {
        let table = [
            "",
            "s",
            "ms",
            "5x",
            "5h",
            "-1s",
            "+1s",
            "1.5s",
            "5 s s",
            "s5",
            "99999999999999999999",
            "307445734561825861m",
        ];
        for text in table {
            let error = parse_duration(text).expect_err(text);
            assert_eq!(
                error,
                format!("invalid duration \"{text}\" ({DURATION_FORMS})"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn zero_is_refused_where_it_must_be_positive() {
        assert_eq!(parse_positive_duration("1ms"), Ok(Duration::from_millis(1)));
        for zero in ["0", "0s", "0ms"] {
            assert!(parse_positive_duration(zero)
                .expect_err(zero)
                .contains("greater than 0"));
        }
        assert!(parse_positive_duration("5x")
            .expect_err("5x")
            .contains(DURATION_FORMS));
    }
}
