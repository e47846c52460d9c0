//! Which certificate answers a client's server name (SNI): the pure lookup, built once per
//! certificate set.
//!
//! Rules (SPEC, TLS termination): a certificate whose subjectAltName DNS names hold the name
//! exactly wins; else one holding the one-label wildcard `*.parent` of it (`*.example.com`
//! covers `a.example.com`, never `a.b.example.com` nor `example.com`); no SNI or no match: the
//! first certificate. Between certificates naming the same name, the earlier one wins. Names
//! compare without regard to ASCII case and a trailing dot.

use std::collections::HashMap;

/// Certificate indexes by exact name and by wildcard parent, all lower-case.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SniTable {
    exact: HashMap<String, usize>,
    /// `*.example.com` is kept under `example.com`.
    wildcard: HashMap<String, usize>,
}

impl SniTable {
    /// The table of certificates whose DNS names are `names[i]` for certificate `i`.
    pub fn new<'a, I, N>(names: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: IntoIterator<Item = &'a str>,
    {
        let mut table = SniTable::default();
        for (i, cert) in names.into_iter().enumerate() {
            for name in cert {
                let name = normalize(name);
                let (map, key) = match name.strip_prefix("*.") {
                    Some(parent) => (&mut table.wildcard, parent.to_string()),
                    None => (&mut table.exact, name),
                };
                map.entry(key).or_insert(i);
            }
        }
        table
    }

    /// The index of the certificate for `server_name` (0 when none names it).
    pub fn pick(&self, server_name: Option<&str>) -> usize {
        let Some(name) = server_name else {
            return 0;
        };
        let name = normalize(name);
        if let Some(&i) = self.exact.get(&name) {
            return i;
        }
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent))
            .copied()
            .unwrap_or(0)
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_beats_wildcard_and_the_first_certificate_is_the_default() {
        let table = SniTable::new([
            vec!["default.test"],
            vec!["*.example.com"],
            vec!["api.example.com", "API2.example.com"],
            vec!["*.example.com", "other.test"],
        ]);
        let cases = [
            (None, 0),
            (Some("default.test"), 0),
            (Some("api.example.com"), 2),
            (Some("API.Example.com."), 2),
            (Some("api2.example.com"), 2),
            (Some("www.example.com"), 1),
            (Some("a.b.example.com"), 0),
            (Some("example.com"), 0),
            (Some("other.test"), 3),
            (Some("unknown.test"), 0),
            (Some(""), 0),
            (Some("com"), 0),
        ];
        for (name, want) in cases {
            assert_eq!(table.pick(name), want, "server name {name:?}");
        }
    }

    #[test]
    fn an_empty_table_picks_the_first() {
        assert_eq!(SniTable::default().pick(Some("a.test")), 0);
    }
}
