//! The etcd value of one registration: `{"weight":N,"ttl":S,"registered_unix_ms":T,"node":"a"}`.
//!
//! `weight` is what routing uses; `ttl` says the key is held by a lease of that length (etcd
//! expires it, so the nodes never run a clock for it); `registered_unix_ms` is when the value
//! was written (the watch-lag metric reads it) and `node` which lb node wrote it (for people).
//! [`StoredValue::merged`] is the re-registration rule of the API: a field the request gives
//! replaces the stored one, a field it omits keeps it. Pure.

use lb_registry::{Terms, DEFAULT_WEIGHT};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A registration as etcd stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredValue {
    /// The target's weight.
    pub weight: u16,
    /// The lease length in seconds, when a lease holds the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// When this value was written, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub registered_unix_ms: u64,
    /// The node that wrote it.
    #[serde(default)]
    pub node: String,
}

impl StoredValue {
    /// The value a registration with `terms` writes over `stored` (none: a new key) at `now`.
    pub fn merged(stored: Option<&StoredValue>, terms: Terms, now: SystemTime, node: &str) -> Self {
        StoredValue {
            weight: terms
                .weight
                .or(stored.map(|s| s.weight))
                .unwrap_or(DEFAULT_WEIGHT),
            ttl: terms
                .ttl
                .map(|t| t.as_secs())
                .or(stored.and_then(|s| s.ttl)),
            registered_unix_ms: unix_ms(now),
            node: node.to_string(),
        }
    }

    /// Same weight and ttl: writing it again would change nothing but the time (a heartbeat).
    pub fn same_terms(&self, other: &StoredValue) -> bool {
        self.weight == other.weight && self.ttl == other.ttl
    }

    /// The JSON text written to etcd.
    pub fn encode(&self) -> String {
        // A struct of integers and a string always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The value read back; the error is one sentence.
    pub fn decode(raw: &[u8]) -> Result<Self, String> {
        let value: StoredValue =
            serde_json::from_slice(raw).map_err(|e| format!("value is not a registration: {e}"))?;
        lb_registry::check_weight(u64::from(value.weight)).map_err(|e| e.to_string())?;
        Ok(value)
    }

    /// When it was written.
    pub fn registered(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.registered_unix_ms)
    }
}

/// `time` in milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(time: SystemTime) -> u64 {
    let ms = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn value(weight: u16, ttl: Option<u64>, ms: u64) -> StoredValue {
        StoredValue {
            weight,
            ttl,
            registered_unix_ms: ms,
            node: "a".into(),
        }
    }

    /// Each row: what is stored, the terms sent, the value written.
    #[test]
    fn merge_table() {
        let secs = |s| Some(Duration::from_secs(s));
        let table = [
            (None, Terms::default(), value(1, None, 5)),
            (
                None,
                Terms {
                    weight: Some(3),
                    ttl: secs(10),
                },
                value(3, Some(10), 5),
            ),
            (
                Some(value(3, Some(10), 1)),
                Terms::default(),
                value(3, Some(10), 5),
            ),
            (
                Some(value(3, Some(10), 1)),
                Terms {
                    weight: Some(7),
                    ttl: None,
                },
                value(7, Some(10), 5),
            ),
            (
                Some(value(3, None, 1)),
                Terms {
                    weight: None,
                    ttl: secs(4),
                },
                value(3, Some(4), 5),
            ),
        ];
        for (stored, terms, written) in table {
            assert_eq!(
                StoredValue::merged(stored.as_ref(), terms, at(5), "a"),
                written
            );
        }
    }

    #[test]
    fn json_round_trip_and_refusals() {
        let v = value(2, Some(30), 1_700_000_000_000);
        assert_eq!(StoredValue::decode(v.encode().as_bytes()), Ok(v.clone()));
        assert_eq!(v.registered(), at(1_700_000_000_000));
        assert_eq!(
            StoredValue::decode(br#"{"weight":1}"#),
            Ok(StoredValue {
                weight: 1,
                ttl: None,
                registered_unix_ms: 0,
                node: String::new()
            })
        );
        for raw in [
            &b"{}"[..],
            b"{\"weight\":0}",
            b"{\"weight\":1001}",
            b"nope",
            b"",
        ] {
            assert!(StoredValue::decode(raw).is_err(), "{raw:?}");
        }
    }
}
