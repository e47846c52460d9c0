//! Writes to etcd: a registration (put) and a deregistration (delete), each one transaction
//! that compares the key's state as read (or as assumed: a new registration first assumes the
//! key is absent), so a concurrent change by another node is never overwritten blindly: when
//! the compare fails, the transaction's other branch returns the key and the write is tried
//! again with it.
//!
//! A registration with a ttl puts its key with a lease of that length; registering it again with
//! the same terms only keeps the lease alive (a heartbeat writes nothing, so no watch event
//! and no work on any node); other terms put the key again with a fresh lease, and the old one
//! is revoked. A deregistration deletes the key and revokes its lease.
//!
//! Every call is bounded by the client's request timeout; any etcd or transport failure is
//! [`WriteError::Unreachable`], and nothing was written, with one exception no client can rule
//! out: etcd committed the transaction and its answer was lost (the connection broke, or the
//! timeout ran out just then); the watch then applies the write on every node like any other.

use crate::key::TargetKey;
use crate::value::StoredValue;
use etcd_client::{Client, Compare, CompareOp, KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse};
use lb_registry::Terms;
use std::time::SystemTime;
use tracing::debug;

/// How often a write whose compare failed (another node changed the key meanwhile) is tried:
/// each failed round means another writer won, so a few writers of one key all get through.
const ATTEMPTS: usize = 16;

/// Why a write did not happen; etcd holds what it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// etcd did not answer or refused; the text says what failed.
    Unreachable(String),
    /// Deregistration of a key etcd does not hold.
    NotFound,
    /// Other nodes kept changing the key through every attempt.
    Contended,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The cause (a gRPC status with its transport chain) is for the log, not the answer.
            WriteError::Unreachable(_) => f.write_str("etcd is unreachable; nothing was changed"),
            WriteError::NotFound => f.write_str("the target is not registered in the cluster"),
            WriteError::Contended => {
                f.write_str("the target kept changing in etcd; nothing was changed, try again")
            }
        }
    }
}

fn unreachable(e: etcd_client::Error) -> WriteError {
    WriteError::Unreachable(e.to_string())
}

/// What a successful write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The key did not exist before.
    pub created: bool,
    /// The etcd revision of the write; `None` when nothing needed writing (a heartbeat).
    pub revision: Option<i64>,
}

/// The key as read: its value (when it decodes), mod revision and lease.
struct Current {
    value: Option<StoredValue>,
    mod_revision: i64,
    lease: i64,
}

async fn read(client: &mut Client, key: &str) -> Result<Option<Current>, WriteError> {
    let got = client.get(key, None).await.map_err(unreachable)?;
    Ok(got.kvs().first().map(Current::of))
}

impl Current {
    fn of(kv: &KeyValue) -> Self {
        Current {
            value: StoredValue::decode(kv.value()).ok(),
            mod_revision: kv.mod_revision(),
            lease: kv.lease(),
        }
    }
}

/// Keeps `lease` alive once; `false` when it is gone (expired or revoked).
async fn refresh(client: &mut Client, lease: i64) -> Result<bool, WriteError> {
    let (mut keeper, mut answers) = client.lease_keep_alive(lease).await.map_err(unreachable)?;
    keeper.keep_alive().await.map_err(unreachable)?;
    let answer = answers.message().await.map_err(unreachable)?;
    Ok(answer.is_some_and(|a| a.ttl() > 0))
}

/// Revokes a lease nobody uses any more; a failure only leaves it to expire by itself.
async fn revoke(client: &mut Client, lease: i64) {
    if lease != 0 {
        if let Err(error) = client.lease_revoke(lease).await {
            debug!(lease, %error, "lease not revoked; it expires by itself");
        }
    }
}

/// The transaction's guard: the key is still as read (or still absent).
fn unchanged(key: &str, current: Option<&Current>) -> Compare {
    match current {
        Some(c) => Compare::mod_revision(key, CompareOp::Equal, c.mod_revision),
        None => Compare::version(key, CompareOp::Equal, 0),
    }
}

/// Registers `key` with `terms` (see the module docs).
pub async fn register(
    client: &Client,
    prefix: &str,
    key: &TargetKey,
    terms: Terms,
    node: &str,
    now: SystemTime,
) -> Result<Written, WriteError> {
    let mut client = client.clone();
    let raw = key.encode(prefix);
    // Without a ttl, the first attempt assumes a new key (one round trip; the transaction's
    // failure branch reads the key when it exists). With one, it is most likely a heartbeat:
    // read first, so that no lease is granted for nothing.
    let mut current = match terms.ttl {
        Some(_) => read(&mut client, &raw).await?,
        None => None,
    };
    for _ in 0..ATTEMPTS {
        let stored = current.as_ref().and_then(|c| c.value.as_ref());
        let value = StoredValue::merged(stored, terms, now, node);
        let old_lease = current.as_ref().map_or(0, |c| c.lease);
        let same = stored.is_some_and(|s| s.same_terms(&value));
        if same && value.ttl.is_none() {
            return Ok(Written {
                created: false,
                revision: None,
            });
        }
        if same && old_lease != 0 && refresh(&mut client, old_lease).await? {
            return Ok(Written {
                created: false,
                revision: None,
            });
        }
        // A put with a ttl takes a fresh lease (it starts afresh, as a heartbeat would).
        let lease = match value.ttl {
            Some(ttl) => {
                let ttl = i64::try_from(ttl).unwrap_or(i64::MAX);
                client
                    .lease_grant(ttl, None)
                    .await
                    .map_err(unreachable)?
                    .id()
            }
            None => 0,
        };
        let put = TxnOp::put(
            raw.clone(),
            value.encode(),
            Some(PutOptions::new().with_lease(lease)),
        );
        let txn = Txn::new()
            .when([unchanged(&raw, current.as_ref())])
            .and_then([put])
            .or_else([TxnOp::get(raw.clone(), None)]);
        let answer = client.txn(txn).await.map_err(unreachable)?;
        if answer.succeeded() {
            if old_lease != lease {
                revoke(&mut client, old_lease).await;
            }
            return Ok(Written {
                created: current.is_none(),
                revision: answer.header().map(|h| h.revision()),
            });
        }
        if lease != old_lease {
            revoke(&mut client, lease).await;
        }
        debug!(key = %raw, "key not as assumed; try again with what it holds");
        current = answer
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Get(got) => Some(got.kvs().first().map(Current::of)),
                _ => None,
            })
            .flatten();
    }
    Err(WriteError::Contended)
}

/// Deregisters `key` (see the module docs).
pub async fn deregister(
    client: &Client,
    prefix: &str,
    key: &TargetKey,
) -> Result<Written, WriteError> {
    let mut client = client.clone();
    let raw = key.encode(prefix);
    for _ in 0..ATTEMPTS {
        let Some(current) = read(&mut client, &raw).await? else {
            return Err(WriteError::NotFound);
        };
        let txn = Txn::new()
            .when([unchanged(&raw, Some(&current))])
            .and_then([TxnOp::delete(raw.clone(), None)]);
        let answer = client.txn(txn).await.map_err(unreachable)?;
        if answer.succeeded() {
            revoke(&mut client, current.lease).await;
            return Ok(Written {
                created: false,
                revision: answer.header().map(|h| h.revision()),
            });
        }
    }
    Err(WriteError::Contended)
}
