//! Whole numbers on the command line (`--backlog`, `--max-connections`, `--max-body`,
//! `--health-rise`, `--health-fall`), with errors that name the value and what is accepted
//! instead of the standard library's `invalid digit found in string`.

use std::str::FromStr;

/// A whole number of at least 1 that fits `T`.
pub fn parse_count<T: FromStr + Default + PartialEq>(s: &str) -> Result<T, String> {
    match s.trim().parse::<T>() {
        Ok(n) if n != T::default() => Ok(n),
        _ => Err(format!(
            "invalid number \"{s}\" (expected a whole number of at least 1)"
        )),
    }
}

/// A size in bytes: a whole number, 0 included.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("invalid size \"{s}\" (expected a whole number of bytes)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_sizes() {
        assert_eq!(parse_count::<u32>("4096"), Ok(4096));
        assert_eq!(parse_count::<usize>(" 3 "), Ok(3));
        for bad in ["0", "-1", "1.5", "x", "", "4294967296"] {
            assert_eq!(
                parse_count::<u32>(bad),
                Err(format!(
                    "invalid number \"{bad}\" (expected a whole number of at least 1)"
                )),
                "{bad:?}"
            );
        }
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        for bad in ["1MiB", "-1", "x", ""] {
            assert_eq!(
                parse_bytes(bad),
                Err(format!(
                    "invalid size \"{bad}\" (expected a whole number of bytes)"
                )),
                "{bad:?}"
            );
        }
    }
}
