//! HTTP/1.1 through lb (RFC 9110, RFC 9112): framing and smuggling, header handling, interim
//! responses and upgrades, limits and timeouts, streaming (zero-copy included), upstream
//! connection reuse, and the errors lb answers itself when the upstream side fails.

mod deferred_accept;
mod error_statuses;
mod framing;
mod headers;
mod interim;
mod limits;
mod mid_exchange_faults;
mod semantics;
mod smuggling;
mod streaming;
mod upstream_reuse;
mod zero_copy;
