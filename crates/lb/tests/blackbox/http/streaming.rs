//! Bodies are streamed, never buffered whole (issue 2 item 5, "Streaming"): 64 MiB each way passes
//! through intact (length and FNV-1a checksum compared) while lb's peak RSS stays under 64 MiB.
//! A proxy that buffered a whole body would need at least 64 MiB for it alone.

use crate::{lb, served_by};
use lb_testkit::{request, upload_pattern, Backend, Conn, LbProcess, Pattern, Reply, MIB};

const BODY: u64 = 64 * MIB;
const RSS_LIMIT_KIB: u64 = 64 * 1024;

fn assert_rss_below_limit(lb: &LbProcess) {
    let peak = lb.peak_rss_kib();
    eprintln!("lb peak RSS after a 64 MiB body: {peak} KiB");
    assert!(
        peak < RSS_LIMIT_KIB,
        "lb's peak RSS (VmHWM) was {peak} KiB after a 64 MiB body: it is buffering bodies"
    );
}

fn upload(chunked: bool) {
    let b = Backend::start("sink");
    let lb = lb(1, &[("/up", &[b.addr()])], &[]);
    let r = upload_pattern(lb.addr(), "/up/data", BODY, chunked);
    assert_eq!(served_by(&r), "sink");
    let rec = b.last_request();
    assert_eq!(rec.target, "/data");
    assert_eq!(rec.body_len, BODY, "request body length at the backend");
    assert_eq!(
        rec.body_checksum,
        Pattern::checksum(BODY),
        "request body bytes at the backend"
    );
    assert_rss_below_limit(&lb);
}

#[test]
fn request_body_64_mib_with_content_length() {
    upload(false);
}

#[test]
fn request_body_64_mib_chunked() {
    upload(true);
}

fn download(chunked: bool) {
    let b = Backend::start_with("source", Reply::Big { len: BODY, chunked });
    let lb = lb(1, &[("/", &[b.addr()])], &[]);
    let mut c = Conn::open(lb.addr());
    c.send(&request("GET", "/big", &[], b"")).expect("send");
    let r = c
        .read_response_digest(false)
        .expect("64 MiB response through lb");
    assert_eq!(r.status, 200);
    assert_eq!(r.body_len, BODY, "response body length at the client");
    assert_eq!(
        r.body_checksum,
        Pattern::checksum(BODY),
        "response body bytes at the client"
    );
    // The connection is still in sync after the body: a HEAD on it works and has no body.
    let head = c.request(&request("HEAD", "/again", &[], b""));
    assert_eq!(head.status, 200);
    assert_eq!(head.body_len, 0);
    assert_eq!(b.request_count(), 2);
    assert_rss_below_limit(&lb);
}

#[test]
fn response_body_64_mib_with_content_length() {
    download(false);
}

#[test]
fn response_body_64_mib_chunked() {
    download(true);
}
