//! Issue 16 target 4, zero-copy bodies: large clear-text Content-Length and close-delimited
//! bodies move with `splice(2)`, both ways, byte for byte (length and checksum compared), with
//! the same timeouts and connection rules as the copy path. Every test reads
//! `lb_worker_spliced_bytes_total`, so none can pass on the copy path by accident.

use crate::{lb, log_field, served_by, WAIT};
use lb_testkit::{
    request, split_response, upload_pattern, wait_until, Backend, Checksum, Conn, LbProcess,
    Pattern, Reply, Scripted, MIB,
};

/// Bytes a body may carry along with its head (not spliced): the copy path's first reads.
const WITH_HEAD: u64 = 256 * 1024;

const SPLICED: &str = "lb_worker_spliced_bytes_total{worker=\"0\"}";

fn spliced(lb: &LbProcess) -> u64 {
    lb.admin().metric(SPLICED) as u64
}

/// Asserts that the splice path moved all of a `len`-byte body but what came with its head.
fn assert_spliced(moved: u64, len: u64) {
    assert!(
        moved <= len && moved + WITH_HEAD >= len,
        "{moved} of a {len}-byte body went through splice(2)"
    );
}

/// The first `len` bytes of the test pattern, whole (for scripted upstreams).
fn pattern(len: u64) -> Vec<u8> {
    let mut p = Pattern::new(len);
    let mut out = Vec::new();
    while let Some(piece) = p.next_piece(usize::MAX) {
        out.extend_from_slice(piece);
    }
    out
}

#[test]
fn a_large_response_is_spliced_intact_and_the_connections_stay_open() {
    let len = 8 * MIB;
    let b = Backend::start_with(
        "source",
        Reply::Big {
            len,
            chunked: false,
        },
    );
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    for round in 1..=2 {
        c.send(&request("GET", "/big", &[], b"")).expect("send");
        let r = c.read_response_digest(false).expect("the response");
        assert_eq!(r.status, 200);
        assert_eq!(r.body_len, len, "body length at the client, round {round}");
        assert_eq!(
            r.body_checksum,
            Pattern::checksum(len),
            "body bytes, round {round}"
        );
        assert_spliced(spliced(&lb) / round, len);
    }
    // Keep-alive after a spliced response, on both sides: one client connection (the loop
    // above) and one upstream connection, back in the pool after the first body.
    assert_eq!(
        b.connections(),
        1,
        "upstream connections for two spliced responses"
    );
}

#[test]
fn a_large_request_body_is_spliced_intact() {
    let len = 8 * MIB;
    let b = Backend::start("sink");
    let lb = lb(1, &[("/up", &[b.addr()])], &[]);
    let r = upload_pattern(lb.addr(), "/up/data", len, false);
    assert_eq!(served_by(&r), "sink");
    let rec = b.last_request();
    assert_eq!(rec.body_len, len, "request body length at the backend");
    assert_eq!(
        rec.body_checksum,
        Pattern::checksum(len),
        "request body bytes"
    );
    assert_spliced(spliced(&lb), len);
}

/// The bytes that took the splice path count in the access log like copied ones.
#[test]
fn spliced_bodies_are_logged_with_their_byte_counts() {
    let (up_len, down_len) = (3 * MIB, 2 * MIB);
    let b = Backend::start_with(
        "both",
        Reply::Big {
            len: down_len,
            chunked: false,
        },
    );
    let lb = lb(1, &[("/", &[b.addr()])], &["--access-log"]);
    let r = upload_pattern(lb.addr(), "/both", up_len, false);
    assert_eq!((r.status, r.body.len() as u64), (200, down_len));
    assert_eq!(r.body_checksum, Pattern::checksum(down_len));
    assert_eq!(b.last_request().body_checksum, Pattern::checksum(up_len));
    let log = lb.wait_for_stderr(WAIT, &["status=200"]);
    let line = log
        .lines()
        .find(|l| l.contains("status=200"))
        .expect("the request's line");
    assert_eq!(
        log_field(line, "bytes"),
        Some(&*down_len.to_string()),
        "{line}"
    );
    assert_eq!(
        log_field(line, "bytes_up"),
        Some(&*up_len.to_string()),
        "{line}"
    );
    let moved = spliced(&lb);
    assert!(
        moved <= up_len + down_len && moved + 2 * WITH_HEAD >= up_len + down_len,
        "{moved} bytes spliced of {up_len} up and {down_len} down"
    );
}

/// A request sent right behind a spliced body is the connection's next request, whole.
#[test]
fn a_request_pipelined_behind_a_spliced_body_is_served_next() {
    let len = MIB;
    let b = Backend::start("sink");
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    let length = len.to_string();
    let mut raw = request("POST", "/first", &[("Content-Length", &length)], b"");
    raw.extend_from_slice(&pattern(len));
    raw.extend_from_slice(&request("GET", "/second", &[], b""));
    c.send(&raw).expect("send both requests");
    assert_eq!(
        served_by(&c.read_response(false).expect("first answer")),
        "sink"
    );
    assert_eq!(
        served_by(&c.read_response(false).expect("second answer")),
        "sink"
    );
    let recs = b.requests();
    let targets: Vec<&str> = recs.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["/first", "/second"]);
    assert_eq!(recs[0].body_len, len);
    assert_eq!(recs[0].body_checksum, Pattern::checksum(len));
    assert_eq!(recs[1].body_len, 0);
    assert_spliced(spliced(&lb), len);
}

/// After a spliced request body the connection's next wait is an idle keep-alive wait, not a
/// header wait: the splice path leaves no stale readiness behind (see
/// `deferred_accept::after_a_request_read_at_accept_the_idle_timeout_applies`).
#[test]
fn after_a_spliced_request_body_the_idle_timeout_applies() {
    let len = MIB;
    let b = Backend::start("sink");
    let extra = ["--header-timeout", "300", "--idle-timeout", "600000"];
    let lb = lb(1, &[("/", &[b.addr()])], &extra);
    let mut idle = Conn::open(lb.addr());
    let length = len.to_string();
    let mut raw = request("POST", "/first", &[("Content-Length", &length)], b"");
    raw.extend_from_slice(&pattern(len));
    assert_eq!(served_by(&idle.request(&raw)), "sink");
    assert_spliced(spliced(&lb), len);
    // A head started after `idle`'s wait began gets its 408 once the header timeout passed, so
    // by then a header deadline on `idle` would have passed too.
    let mut slow = Conn::open(lb.addr());
    slow.send(b"GET /slow HTTP/1.1\r\n").expect("send");
    assert_eq!(slow.read_response(false).expect("408 from lb").status, 408);
    assert_eq!(served_by(&idle.get("/second")), "sink");
}

#[test]
fn a_small_body_takes_the_copy_path() {
    let b = Backend::start_with(
        "source",
        Reply::Big {
            len: 1000,
            chunked: false,
        },
    );
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.send(&request("GET", "/small", &[], b"")).expect("send");
    let r = c.read_response_digest(false).expect("the response");
    assert_eq!((r.status, r.body_len), (200, 1000));
    assert_eq!(spliced(&lb), 0, "a 1000-byte body is copied");
}

#[test]
fn a_close_delimited_response_is_spliced_to_its_end() {
    let len = 4 * MIB;
    let b = Backend::start_with("source", Reply::CloseDelimited { body: pattern(len) });
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.send(&request("GET", "/stream", &[], b"")).expect("send");
    let (raw, closed) = c.read_until_close(WAIT);
    assert!(closed, "a close-delimited body ends with the connection");
    let (head, body) = split_response(&raw);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body.len() as u64, len, "body length at the client");
    assert_eq!(Checksum::of(&body), Pattern::checksum(len), "body bytes");
    assert_spliced(spliced(&lb), len);
}

/// A client that stops reading a spliced body is cut at the write timeout (the idle timeout),
/// like on the copy path, and lb lets go of both connections.
#[test]
fn a_client_that_stops_reading_is_cut_at_the_write_timeout() {
    let len = 256 * MIB;
    let b = Backend::start_with(
        "source",
        Reply::Big {
            len,
            chunked: false,
        },
    );
    let lb = lb(1, &[("/", &[b.addr()])], &["--idle-timeout", "1s"]);
    let mut c = Conn::open(lb.addr());
    c.send(&request("GET", "/big", &[], b"")).expect("send");
    wait_until(WAIT, "bytes spliced toward the client", || spliced(&lb) > 0);
    let active = "lb_worker_connections_active{worker=\"0\"}";
    wait_until(WAIT, "lb closes the stalled client connection", || {
        lb.admin().metric(active) == 0.0
    });
    let (raw, closed) = c.read_until_close(WAIT);
    assert!(closed, "lb closed the connection");
    assert!(
        (raw.len() as u64) < len,
        "the client got {} bytes of a body it stopped reading",
        raw.len()
    );
    let open = "lb_worker_upstream_connections_open{worker=\"0\"}";
    assert_eq!(
        lb.admin().metric(open),
        0.0,
        "the upstream connection is closed"
    );
}

/// Upstream connection 0 answers with `head` and `body`, then closes (event `cut`) when
/// `then_close` says so; any later connection answers `200 ok`. Reports `"<conn> <target>"` per
/// request, so a request on connection 0 after its answer shows that lb pooled it.
fn upstream(head: String, body: Vec<u8>, then_close: bool) -> Scripted {
    Scripted::start(move |p| loop {
        let Some(req) = p.read_head()? else {
            return Ok(());
        };
        p.event(format!("{} {}", p.id, req.target()));
        if p.id > 0 {
            p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")?;
            continue;
        }
        let mut answer = head.clone().into_bytes();
        answer.extend_from_slice(&body);
        p.send(&answer)?;
        if then_close {
            p.event("cut");
            return Ok(());
        }
    })
}

#[test]
fn an_upstream_that_dies_mid_body_cuts_the_client_and_is_not_pooled() {
    let len = 4 * MIB;
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
    let up = upstream(head, pattern(len / 2), true);
    let lb = lb(1, &[("/", &[up.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.send(&request("GET", "/cut", &[], b"")).expect("send");
    up.expect_event("0 /cut");
    up.expect_event("cut");
    let (raw, closed) = c.read_until_close(WAIT);
    assert!(
        closed,
        "lb closes the client connection of a body cut short"
    );
    let (head, body) = split_response(&raw);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        body.len() as u64,
        len / 2,
        "the client gets what the upstream sent"
    );
    assert_eq!(Checksum::of(&body), Pattern::checksum(len / 2));
    assert_spliced(spliced(&lb), len / 2);
    // The next request needs a new upstream connection.
    let mut c = Conn::open(lb.addr());
    assert_eq!(c.get("/next").status, 200);
    up.expect_event("1 /next");
}

/// A client that leaves mid-way through a spliced request body: the upstream sees its
/// connection end mid-body, and the next request opens a new upstream connection.
#[test]
fn a_client_that_leaves_mid_body_aborts_the_spliced_upload() {
    let len = 4 * MIB;
    let up = Scripted::start(move |p| loop {
        let Some(req) = p.read_head()? else {
            return Ok(());
        };
        let want: usize = req
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if p.read_exact(want).is_err() {
            let (rest, _) = p.read_until_close(WAIT);
            p.event(format!("{} eof after {}", p.id, rest.len()));
            return Ok(());
        }
        p.event(format!("{} {} {want}", p.id, req.target()));
        p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")?;
    });
    let lb = lb(1, &[("/", &[up.addr()])], &[]);
    {
        let mut c = Conn::open(lb.addr());
        let length = len.to_string();
        let mut raw = request("POST", "/up", &[("Content-Length", &length)], b"");
        raw.extend_from_slice(&pattern(len / 4));
        c.send(&raw).expect("the head and a quarter of the body");
        wait_until(WAIT, "bytes spliced toward the upstream", || {
            spliced(&lb) > 0
        });
    }
    let event = up.next_event(WAIT).expect("the upstream request ends");
    let sent: u64 = event
        .strip_prefix("0 eof after ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the upstream must see its connection end mid-body: {event:?}"));
    assert_eq!(
        sent,
        len / 4,
        "the upstream got what the client sent, then the end"
    );
    let mut c = Conn::open(lb.addr());
    assert_eq!(c.get("/next").status, 200);
    up.expect_event("1 /next 0");
}

#[test]
fn bytes_past_content_length_keep_the_upstream_out_of_the_pool() {
    let len = MIB;
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
    let mut body = pattern(len);
    body.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nforge");
    let up = upstream(head, body, false);
    let lb = lb(1, &[("/", &[up.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.send(&request("GET", "/long", &[], b"")).expect("send");
    let r = c.read_response_digest(false).expect("the response");
    assert_eq!(
        r.body_len, len,
        "exactly Content-Length bytes reach the client"
    );
    assert_eq!(r.body_checksum, Pattern::checksum(len));
    assert_spliced(spliced(&lb), len);
    up.expect_event("0 /long");
    // The same client connection goes on; its next request must not meet the stray bytes.
    let r = c.get("/next");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    up.expect_event("1 /next");
}
