//! Which target a request goes to: prefix matching and rewriting, exact round robin across
//! workers, and health checks and retries that take targets out of the rotation.

// `ops::upgrade` checks that health states survive an upgrade with these tests' helpers.
pub(crate) mod health;
mod hosts;
mod policies;
mod prefix;
mod round_robin;
mod weighted;
