//! The admin token: `Authorization: Bearer <token>` compared in constant time.
//!
//! The comparison touches every byte of the longer of the two values whatever they hold, so the
//! answer time does not tell an attacker how many leading bytes were right. (The token's length
//! may still show; it is not a secret worth hiding at that cost.)

/// Does the `Authorization` value carry `token`? `None` (missing or repeated field) is no.
pub(crate) fn authorized(authorization: Option<&[u8]>, token: &str) -> bool {
    let Some(value) = authorization else {
        return false;
    };
    let value = value.trim_ascii();
    // RFC 9110 §11.1: the auth-scheme is case-insensitive; one or more spaces before the token.
    let Some((scheme, credentials)) = value.split_at_checked(6) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case(b"Bearer") || !credentials.starts_with(b" ") {
        return false;
    }
    constant_time_eq(credentials.trim_ascii_start(), token.as_bytes())
}

/// `a == b`, in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    // black_box keeps the optimizer from turning the loop into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_checks() {
        let t = "s3cret";
        assert!(authorized(Some(b"Bearer s3cret"), t));
        assert!(authorized(Some(b"bearer   s3cret "), t));
        assert!(!authorized(Some(b"Bearer s3cre"), t));
        assert!(!authorized(Some(b"Bearer s3cret2"), t));
        assert!(!authorized(Some(b"Bearers3cret"), t));
        assert!(!authorized(Some(b"Basic s3cret"), t));
        assert!(!authorized(Some(b"Bearer"), t));
        assert!(!authorized(Some(b""), t));
        assert!(!authorized(None, t));
    }

    #[test]
    fn equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abc\0"));
        assert!(!constant_time_eq(b"", b"\0"));
    }
}
