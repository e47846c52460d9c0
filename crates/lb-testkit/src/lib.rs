//! Test kit for lb's black-box tests: run the real binary on port 0, put recording backends
//! behind it, and talk to it over raw sockets.
//!
//! Why black-box: the SPEC (CLI, ready line, admin API, routing, status codes) is a promise about
//! the built binary, so the tests drive exactly that, the way a user or a script would. The kit
//! uses std threads and `std::net` only; no async runtime sits between a test and the bytes lb
//! sends, and the kit depends on no lb crate, so it compiles and its own tests pass even while
//! lb does not.
//!
//! - [`LbProcess`] / [`EchoProcess`]: start `lb run` / `lb echo`, wait for the ready line, kill on drop.
//! - [`Backend`]: a recording origin with configurable [`Reply`]s; [`SwitchBackend`]: one whose
//!   health endpoint a test switches; [`Scripted`]: one that runs a test's script byte by byte.
//! - [`Conn`], [`get`], [`send_raw`], [`upload_pattern`]: raw HTTP/1.1 client pieces; [`Head`]
//!   and [`split_response`] for answers read raw.
//! - [`wait_until`], [`poll_until`]: the one way to wait for a condition, with a deadline.
//! - [`Admin`]: the control-plane API.
//! - [`Checksum`], [`Pattern`]: compare 64 MiB bodies without holding them.
//! - [`EtcdProcess`] / [`EtcdCluster`]: real etcd members on free loopback ports (cluster mode);
//!   [`Relay`]: a TCP relay a test cuts to take etcd away from one node.
//! - [`tool::require`]: an external program a test drives (etcd, chromium, h2load), failing
//!   under `CI=true` when it is missing.
//! - [`webdriver::Browser`]: headless chromium driven through chromedriver (WebDriver over the
//!   kit's raw client), for the status page.
//! - `h2_client` (feature `h2`): an HTTP/2 client with prior knowledge (the `h2` crate) and a
//!   raw HTTP/2 frame writer for the flood tests.
//! - `tls_client` (feature `tls`, for the TLS black-box tests and the TLS load generator): a
//!   rustls client over a std socket as a [`Wire`] for [`Conn`].
//! - `tokio_conn` (feature `tokio`, for the in-process tests of lb-admin and lb-echo): a server
//!   task on the test's runtime and an async raw client.
//!
//! Conventions: every socket has timeouts, every wait has a deadline and syncs on an event (a
//! line printed, a request recorded, a port accepting), never on a fixed sleep.

#![forbid(unsafe_code)]

pub mod admin;
pub mod backend;
pub mod checksum;
pub mod client;
pub mod etcd;
#[cfg(feature = "h2")]
pub mod h2_client;
pub mod process;
pub mod relay;
pub mod scratch;
pub mod scripted;
pub mod switch;
#[cfg(feature = "tls")]
pub mod tls_client;
#[cfg(feature = "tokio")]
pub mod tokio_conn;
pub mod tool;
pub mod wait;
pub mod webdriver;
pub mod wire;

pub use admin::{find_metric_sample, metric_sample, target_json, Admin};
pub use backend::{Backend, Recorded, Reply};
pub use checksum::{Checksum, Pattern};
pub use client::{
    get, is_refusing, refused_addr, request, send_raw, upload_pattern, upload_pattern_on,
    wait_until_accepting, Conn, Response, Wire, IO_TIMEOUT,
};
pub use etcd::{EtcdCluster, EtcdProcess};
pub use process::{
    parse_ready_line, run_args, run_to_exit, EchoProcess, Finished, LbProcess, Proc, Ready,
    START_TIMEOUT,
};
pub use relay::Relay;
pub use scratch::ScratchDir;
pub use scripted::{Peer, Scripted};
pub use switch::SwitchBackend;
pub use wait::{poll_until, wait_until, WAIT};
pub use wire::{split_response, Framing, Head, Headers};

/// Re-exported so integration tests can read JSON without their own dependency on it.
pub use serde_json;

/// One MiB.
pub const MIB: u64 = 1024 * 1024;

#[cfg(test)]
mod tests {
    //! The kit's own pieces against each other (client <-> backend), no lb involved: when a
    //! black-box test fails, these say the kit is not the cause.
    use super::*;
    use std::time::Duration;

    #[test]
    fn backend_answers_and_records_keep_alive_requests() {
        let b = Backend::start("alpha");
        let mut c = Conn::open(b.addr());
        for i in 0..5 {
            let r = c.get(&format!("/p/{i}?q=1"));
            assert_eq!(r.status, 200);
            assert_eq!(r.header("X-Backend"), Some("alpha"));
            assert_eq!(r.header("X-Path"), Some(format!("/p/{i}?q=1").as_str()));
            assert_eq!(r.body, b"alpha");
        }
        assert_eq!(b.connections(), 1);
        let reqs = b.requests();
        assert_eq!(reqs.len(), 5);
        assert!(reqs.iter().all(|r| r.conn_id == 0));
        assert_eq!(reqs[4].seq_on_conn, 4);
        assert_eq!(reqs[0].header("host"), Some("lb.test"));
    }

    #[test]
    fn connection_close_is_honoured_both_ways() {
        let b = Backend::start("beta");
        let mut c = Conn::open(b.addr());
        let r = c.request(&request("GET", "/", &[("Connection", "close")], b""));
        assert!(r.closes());
        assert!(c.peer_closed_within(Duration::from_secs(10)));
    }

    #[test]
    fn bodies_by_length_and_chunked_are_checksummed() {
        let b = Backend::start("gamma");
        let len = 3 * MIB + 7;
        for chunked in [false, true] {
            let r = upload_pattern(b.addr(), "/up", len, chunked);
            assert_eq!(r.status, 200);
            let rec = b.last_request();
            assert_eq!(rec.body_len, len);
            assert_eq!(rec.body_checksum, Pattern::checksum(len));
            assert_eq!(
                rec.framing,
                if chunked {
                    Framing::Chunked
                } else {
                    Framing::Length(len)
                }
            );
        }
    }

    #[test]
    fn big_replies_stream_intact() {
        let len = 2 * MIB + 3;
        for chunked in [false, true] {
            let b = Backend::start_with("big", Reply::Big { len, chunked });
            let mut c = Conn::open(b.addr());
            c.send(&request("GET", "/", &[], b"")).expect("send");
            let r = c.read_response_digest(false).expect("response");
            assert_eq!(r.body_len, len);
            assert_eq!(r.body_checksum, Pattern::checksum(len));
            // Keep-alive still works after a big body.
            assert_eq!(c.get("/again").status, 200);
        }
    }

    #[test]
    fn head_and_bodyless_statuses_have_no_body() {
        let b = Backend::start_with(
            "fixed",
            Reply::Fixed {
                status: 204,
                headers: vec![],
                body: b"ignored".to_vec(),
            },
        );
        let mut c = Conn::open(b.addr());
        assert_eq!(c.get("/").status, 204);
        assert_eq!(c.get("/").body_len, 0);
        let b = Backend::start("named");
        let mut c = Conn::open(b.addr());
        let r = c.request(&request("HEAD", "/", &[], b""));
        assert_eq!(r.header("content-length"), Some("5"));
        assert_eq!(r.body_len, 0);
        assert_eq!(c.get("/").body, b"named");
    }

    #[test]
    fn close_delimited_and_close_immediately() {
        let b = Backend::start_with(
            "cd",
            Reply::CloseDelimited {
                body: b"until close".to_vec(),
            },
        );
        let r = get(b.addr(), "/");
        assert_eq!(r.framing, Framing::UntilClose);
        assert_eq!(r.body, b"until close");

        let b = Backend::start_with("gone", Reply::CloseImmediately);
        let mut c = Conn::open(b.addr());
        let _ = c.send(&request("GET", "/", &[], b""));
        assert!(c.read_response(false).is_err());
        assert_eq!(b.connections(), 1);
    }

    #[test]
    fn hold_and_never_answer_are_released_by_drop() {
        let b = Backend::start_with("hold", Reply::Hold);
        let mut c = Conn::open(b.addr());
        c.send(&request("GET", "/", &[], b"")).expect("send");
        assert!(b.wait_for_requests(1, Duration::from_secs(10)));
        b.release();
        assert_eq!(c.read_response(false).expect("released").status, 200);

        let b = Backend::start_with("silent", Reply::NeverAnswer);
        let mut c = Conn::open(b.addr());
        c.send(&request("GET", "/", &[], b"")).expect("send");
        assert!(b.wait_for_requests(1, Duration::from_secs(10)));
        drop(b); // must not hang: the open connection is shut down
        assert!(c.read_response(false).is_err());
    }

    #[test]
    fn scripted_backend_reports_events_and_raw_reads_keep_every_byte() {
        let up = Scripted::start(|p| {
            let head = p.read_head()?.expect("a request head");
            let a = head.get("x-a").unwrap_or("-");
            p.event(format!("{} {} {a}", p.id, head.target()));
            let body = p.read_exact(3)?;
            p.event(String::from_utf8_lossy(&body));
            // Announces 9 bytes, sends 3, closes: a response cut short.
            p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ncut")
        });
        let mut c = Conn::open(up.addr());
        c.send(b"POST /s HTTP/1.1\r\nX-A: 1\r\nContent-Length: 3\r\n\r\nabc")
            .expect("send");
        up.expect_event("0 /s 1");
        up.expect_event("abc");
        let (raw, closed) = c.read_until_close(WAIT);
        assert!(closed, "the script's end closes the connection");
        let (head, body) = split_response(&raw);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head:?}");
        assert_eq!(body, b"cut");
        assert_eq!(up.connections(), 1);
    }

    #[test]
    fn refused_addr_refuses() {
        assert!(is_refusing(refused_addr()));
    }
}
