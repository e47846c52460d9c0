//! One worker's TLS counters: handshakes completed by version and kind (full or resumed), and
//! handshakes that failed, by reason. Written only by their worker, summed at scrape, like
//! [`crate::stats`].

use crate::histogram::add;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a TLS connection ended before its first request could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Handshake not complete within the header timeout.
    Timeout,
    /// The client spoke plain HTTP to the TLS port (answered with a clear-text 400).
    PlainHttp,
    /// The client closed or reset the connection during the handshake.
    Closed,
    /// The client's handshake was not acceptable (garbage, no common version, cipher or ALPN).
    Protocol,
}

const FAILURES: [(Failure, &str); 4] = [
    (Failure::Timeout, "timeout"),
    (Failure::PlainHttp, "plain_http"),
    (Failure::Closed, "closed"),
    (Failure::Protocol, "protocol"),
];

/// Negotiated version of a completed handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    Tls12,
    Tls13,
}

const VERSIONS: [(Version, &str); 2] = [(Version::Tls12, "1.2"), (Version::Tls13, "1.3")];

/// Counters of one worker's TLS listener.
#[derive(Debug, Default)]
pub(crate) struct TlsCounters {
    /// By [`VERSIONS`] index, then full (0) or resumed (1).
    handshakes: [[AtomicU64; 2]; 2],
    /// By [`FAILURES`] index.
    failures: [AtomicU64; 4],
}

impl TlsCounters {
    pub(crate) fn handshake(&self, version: Version, resumed: bool) {
        let v = VERSIONS
            .iter()
            .position(|(v, _)| *v == version)
            .unwrap_or(0);
        add(&self.handshakes[v][usize::from(resumed)], 1);
    }

    pub(crate) fn failed(&self, failure: Failure) {
        let f = FAILURES
            .iter()
            .position(|(f, _)| *f == failure)
            .unwrap_or(0);
        add(&self.failures[f], 1);
    }

    /// Appends both families for every worker, in Prometheus text format.
    pub(crate) fn render_all<'a>(
        workers: impl Iterator<Item = &'a TlsCounters> + Clone,
        out: &mut String,
    ) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.push_str(
            "# HELP lb_tls_handshakes_total TLS handshakes completed, by version and kind.\n\
             # TYPE lb_tls_handshakes_total counter\n",
        );
        for (w, tls) in workers.clone().enumerate() {
            for (v, (_, version)) in VERSIONS.iter().enumerate() {
                for (k, kind) in ["full", "resumed"].iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "lb_tls_handshakes_total{{worker=\"{w}\",version=\"{version}\",kind=\"{kind}\"}} {}",
                        load(&tls.handshakes[v][k])
                    );
                }
            }
        }
        out.push_str(
            "# HELP lb_tls_handshake_failures_total TLS connections that ended before their \
             first request, by reason.\n\
             # TYPE lb_tls_handshake_failures_total counter\n",
        );
        for (w, tls) in workers.enumerate() {
            for (f, (_, reason)) in FAILURES.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "lb_tls_handshake_failures_total{{worker=\"{w}\",reason=\"{reason}\"}} {}",
                    load(&tls.failures[f])
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_by_label() {
        let tls = TlsCounters::default();
        tls.handshake(Version::Tls13, true);
        tls.handshake(Version::Tls12, false);
        tls.failed(Failure::PlainHttp);
        let mut out = String::new();
        TlsCounters::render_all([&tls].into_iter(), &mut out);
        for line in [
            "lb_tls_handshakes_total{worker=\"0\",version=\"1.3\",kind=\"resumed\"} 1\n",
            "lb_tls_handshakes_total{worker=\"0\",version=\"1.3\",kind=\"full\"} 0\n",
            "lb_tls_handshakes_total{worker=\"0\",version=\"1.2\",kind=\"full\"} 1\n",
            "lb_tls_handshake_failures_total{worker=\"0\",reason=\"plain_http\"} 1\n",
            "lb_tls_handshake_failures_total{worker=\"0\",reason=\"timeout\"} 0\n",
        ] {
            assert!(out.contains(line), "{line} in\n{out}");
        }
    }
}
