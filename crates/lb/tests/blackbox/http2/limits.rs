//! Per-stream limits and errors, written frame by frame: REFUSED_STREAM beyond
//! `--h2-max-streams`, a connection-specific field as a stream error (RFC 9113 §8.2.2) that
//! leaves the connection usable, GOAWAY on SIGTERM and on an upgrade with the stream in flight
//! finishing, and the flow-control windows lb advertises.

use crate::{bin, lb};
use lb_testkit::h2_client::http::Method;
use lb_testkit::h2_client::{
    connect, frame, get_block, goaway_code, kind, request, runtime, send, Frame, RawH2,
};
use lb_testkit::{run_args, Backend, LbProcess, Reply, ScratchDir, WAIT};
use std::time::{Duration, Instant};

/// END_STREAM | END_HEADERS.
const END_HEADERS_AND_STREAM: u8 = 0x5;
const END_STREAM: u8 = 0x1;
const REFUSED_STREAM: u32 = 0x7;
const PROTOCOL_ERROR: u32 = 0x1;
const NO_ERROR: u32 = 0x0;

fn get(raw: &mut RawH2, stream: u32, path: &str) {
    raw.send(&frame(
        kind::HEADERS,
        END_HEADERS_AND_STREAM,
        stream,
        &get_block("h", path),
    ));
}

fn rst_code(frame: &Frame) -> u32 {
    u32::from_be_bytes(frame.payload[..4].try_into().expect("4 bytes"))
}

/// Reads frames until one of `stream` of type `kind` (returned), skipping the rest.
fn next_on(raw: &mut RawH2, stream: u32, kind: u8) -> Frame {
    loop {
        let frame = raw.read_frame().expect("a frame from lb");
        if frame.stream == stream && frame.kind == kind {
            return frame;
        }
        assert_ne!(frame.kind, kind::GOAWAY, "unexpected GOAWAY: {frame:?}");
    }
}

/// Reads frames until every stream in `streams` ended (a frame with END_STREAM), in whatever
/// order, or panics.
fn until_end(raw: &mut RawH2, streams: &[u32]) {
    let mut open = streams.to_vec();
    while !open.is_empty() {
        let frame = raw.read_frame().expect("a frame from lb");
        let ends =
            matches!(frame.kind, kind::DATA | kind::HEADERS) && frame.flags & END_STREAM != 0;
        if ends {
            open.retain(|&s| s != frame.stream);
        }
    }
}

#[test]
fn streams_beyond_the_limit_are_refused_and_the_others_answered() {
    let held = Backend::start_with("held", Reply::Hold);
    let lb = lb(1, &[("/", &[held.addr()])], &["--h2-max-streams", "2"]);
    let mut raw = RawH2::connect(lb.addr());
    let settings = next_on(&mut raw, 0, kind::SETTINGS);
    // SETTINGS_MAX_CONCURRENT_STREAMS (0x3) = 2 among lb's settings.
    let advertised = settings
        .payload
        .chunks(6)
        .find(|s| s[..2] == [0, 3])
        .map(|s| u32::from_be_bytes(s[2..].try_into().expect("4 bytes")));
    assert_eq!(advertised, Some(2));
    raw.send(&frame(kind::SETTINGS, 0x1, 0, &[])); // ACK
    get(&mut raw, 1, "/one");
    get(&mut raw, 3, "/two");
    assert!(
        held.wait_for_requests(2, WAIT),
        "both streams reached the backend"
    );
    get(&mut raw, 5, "/three");
    let refused = next_on(&mut raw, 5, kind::RST_STREAM);
    assert_eq!(rst_code(&refused), REFUSED_STREAM);
    held.release();
    until_end(&mut raw, &[1, 3]);
    assert_eq!(held.request_count(), 2);
}

#[test]
fn a_connection_specific_field_is_a_stream_error_only() {
    let backend = Backend::start("a");
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let mut raw = RawH2::connect(lb.addr());
    let mut block = get_block("h", "/bad");
    // `connection: close`, a literal with a new name (RFC 7541 §6.2.2).
    block.extend_from_slice(b"\x00\x0aconnection\x05close");
    raw.send(&frame(kind::HEADERS, END_HEADERS_AND_STREAM, 1, &block));
    let reset = next_on(&mut raw, 1, kind::RST_STREAM);
    assert_eq!(rst_code(&reset), PROTOCOL_ERROR);
    get(&mut raw, 3, "/good");
    let head = next_on(&mut raw, 3, kind::HEADERS);
    assert_eq!(
        head.payload.first(),
        Some(&0x88),
        ":status 200 (static index 8)"
    );
    assert_eq!(backend.request_count(), 1);
    assert_eq!(backend.last_request().target, "/good");
}

/// SIGTERM: lb sends GOAWAY within a second, the stream in flight still gets its whole answer,
/// then the connection closes and lb exits cleanly.
#[test]
fn sigterm_sends_goaway_and_the_stream_in_flight_finishes() {
    let held = Backend::start_with("held", Reply::Hold);
    let mut lb = lb(1, &[("/", &[held.addr()])], &[]);
    let mut raw = RawH2::connect(lb.addr());
    get(&mut raw, 1, "/in-flight");
    assert!(
        held.wait_for_requests(1, WAIT),
        "the request reached the backend"
    );
    let asked = Instant::now();
    lb.terminate();
    let goaway = raw.until_goaway().expect("a GOAWAY");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "GOAWAY after {:?}",
        asked.elapsed()
    );
    assert_eq!(goaway_code(&goaway), Some(NO_ERROR));
    held.release();
    until_end(&mut raw, &[1]);
    // Whatever lb still sends (the final GOAWAY), the connection then ends.
    while raw.read_frame().is_some() {}
    assert!(lb.wait_exit(WAIT).success());
}

/// The premise of the windows arithmetic in docs/http.md: lb advertises a stream window that
/// lets one stream carry more than 1 Gbit/s at 10 ms of round trip (window / RTT), and raises
/// the connection window to two of them.
#[test]
fn windows_allow_one_gigabit_per_stream_at_10_ms() {
    let backend = Backend::start("a");
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let mut raw = RawH2::connect(lb.addr());
    let settings = next_on(&mut raw, 0, kind::SETTINGS);
    // SETTINGS_INITIAL_WINDOW_SIZE (0x4).
    let stream_window = settings
        .payload
        .chunks(6)
        .find(|s| s[..2] == [0, 4])
        .map(|s| u64::from(u32::from_be_bytes(s[2..].try_into().expect("4 bytes"))))
        .expect("an initial window size");
    let rtt_s = 0.010;
    let bits_per_second = stream_window as f64 * 8.0 / rtt_s;
    assert!(
        bits_per_second > 1e9,
        "{stream_window} B per 10 ms is {bits_per_second} bit/s"
    );
    let update = next_on(&mut raw, 0, kind::WINDOW_UPDATE);
    let increment = u32::from_be_bytes(update.payload[..4].try_into().expect("4 bytes"));
    let connection_window = 65_535 + u64::from(increment);
    assert_eq!(connection_window, 2 * stream_window);
}

/// An upgrade: the old lb sends GOAWAY within a second of its successor taking over, the stream
/// in flight on the old lb finishes, and a new connection is served by the new lb.
#[test]
fn an_upgrade_sends_goaway_and_the_new_lb_takes_new_connections() {
    let dir = ScratchDir::new("h2-upgrade");
    let sock = dir.join("upgrade.sock");
    let sock = sock.to_str().expect("utf-8 path");
    let held = Backend::start_with("held", Reply::Hold);
    let routes: &[(&str, &[_])] = &[("/", &[held.addr()])];
    let mut old = lb(1, routes, &["--upgrade-socket", sock]);
    let addr = old.addr();
    let mut raw = RawH2::connect(addr);
    get(&mut raw, 1, "/in-flight");
    assert!(
        held.wait_for_requests(1, WAIT),
        "the request reached the backend"
    );
    let flags = ["--upgrade-socket", sock, "--takeover"];
    let _new = LbProcess::start(bin(), &run_args(1, routes, &flags));
    let ready = Instant::now();
    let goaway = raw.until_goaway().expect("a GOAWAY from the old lb");
    assert!(
        ready.elapsed() < Duration::from_secs(1),
        "GOAWAY {:?} after the takeover",
        ready.elapsed()
    );
    assert_eq!(goaway_code(&goaway), Some(NO_ERROR));
    held.release();
    until_end(&mut raw, &[1]);
    assert_eq!(
        old.wait_exit(WAIT).code(),
        Some(0),
        "old lb:\n{}",
        old.stderr()
    );
    let rt = runtime();
    let r = rt.block_on(async {
        let mut client = connect(addr).await;
        send(&mut client, request(Method::GET, "h", "/after"), None).await
    });
    assert_eq!(r.expect("the new lb answers").status, 200);
    assert_eq!(held.request_count(), 2);
}
