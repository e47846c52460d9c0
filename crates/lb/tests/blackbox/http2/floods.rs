//! Floods (SPEC: "the abusive connection gets GOAWAY and is closed within 1,024 frames of
//! abuse; other connections are unaffected"): Rapid Reset (CVE-2023-44487), CONTINUATION
//! (CVE-2024-27983 class), MadeYouReset (CVE-2025-8671), PING and SETTINGS floods, each written
//! frame by frame. Each test sends at most 1,024 abusive frames, then must read a GOAWAY, and a
//! second client's request meanwhile gets its answer. Rapid Reset comes in two forms: the burst
//! (`h2` refuses streams reset before lb accepted them) and the paced one, each stream reset only
//! once lb has forwarded it (lb's own reset budget, `h2/flood.rs`).

use crate::lb;
use lb_testkit::h2_client::http::Method;
use lb_testkit::h2_client::{
    connect, frame, get_block, goaway_code, kind, request, runtime, send, RawH2,
};
use lb_testkit::{Backend, Reply, WAIT};
use std::time::Duration;

const FLOOD_FRAMES: usize = 1024;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Sends `frames` (at most [`FLOOD_FRAMES`] abusive ones) on a fresh connection, checks lb
/// answers with GOAWAY (ENHANCE_YOUR_CALM or PROTOCOL_ERROR, never NO_ERROR) and closes, and
/// that another client is served meanwhile.
fn assert_flood_ends_connection(frames: Vec<Vec<u8>>, abusive: usize) {
    assert!(abusive <= FLOOD_FRAMES);
    let backend = Backend::start("a");
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let mut raw = RawH2::connect(lb.addr());
    for bytes in &frames {
        if !raw.try_send(bytes) {
            break; // lb closed the connection already
        }
    }
    let goaway = raw.until_goaway().expect("a GOAWAY after the flood");
    let code = goaway_code(&goaway).expect("a GOAWAY error code");
    assert_ne!(code, 0, "GOAWAY with NO_ERROR: {goaway:?}");
    assert!(code == ENHANCE_YOUR_CALM || code == 0x1, "code {code:#x}");
    while raw.read_frame().is_some() {}
    let rt = runtime();
    let r = rt.block_on(async {
        let mut client = connect(lb.addr()).await;
        send(&mut client, request(Method::GET, "h", "/second"), None).await
    });
    assert_eq!(r.expect("the second client's answer").status, 200);
}

fn headers(stream: u32, flags: u8) -> Vec<u8> {
    frame(kind::HEADERS, flags, stream, &get_block("h", "/"))
}

#[test]
fn rapid_reset_ends_the_connection() {
    let mut frames = Vec::new();
    for i in 0..FLOOD_FRAMES as u32 / 2 {
        let stream = 2 * i + 1;
        frames.push(headers(stream, END_HEADERS | END_STREAM));
        frames.push(frame(kind::RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
    }
    assert_flood_ends_connection(frames, FLOOD_FRAMES);
}

#[test]
fn continuation_flood_ends_the_connection() {
    let mut frames = vec![frame(kind::HEADERS, 0, 1, &get_block("h", "/"))];
    for _ in 0..FLOOD_FRAMES - 1 {
        // `x-a: b`, a literal without indexing with a new name, over and over.
        frames.push(frame(kind::CONTINUATION, 0, 1, b"\x00\x03x-a\x01b"));
    }
    assert_flood_ends_connection(frames, FLOOD_FRAMES);
}

/// MadeYouReset: each stream is made to fail on lb's side (a WINDOW_UPDATE of 0 is a stream
/// error lb answers with RST_STREAM), so lb, not the client, resets it.
#[test]
fn made_you_reset_ends_the_connection() {
    let mut frames = Vec::new();
    for i in 0..FLOOD_FRAMES as u32 / 2 {
        let stream = 2 * i + 1;
        frames.push(headers(stream, END_HEADERS | END_STREAM));
        frames.push(frame(kind::WINDOW_UPDATE, 0, stream, &0u32.to_be_bytes()));
    }
    assert_flood_ends_connection(frames, FLOOD_FRAMES);
}

#[test]
fn ping_flood_ends_the_connection() {
    let frames = (0..FLOOD_FRAMES)
        .map(|i| frame(kind::PING, 0, 0, &(i as u64).to_be_bytes()))
        .collect();
    assert_flood_ends_connection(frames, FLOOD_FRAMES);
}

#[test]
fn settings_flood_ends_the_connection() {
    let frames = (0..FLOOD_FRAMES)
        .map(|_| frame(kind::SETTINGS, 0, 0, &[]))
        .collect();
    assert_flood_ends_connection(frames, FLOOD_FRAMES);
}

/// A client that pings now and then and acknowledges lb's settings is no flood.
#[test]
fn a_few_pings_and_settings_are_no_flood() {
    let backend = Backend::start("a");
    let lb = lb(1, &[("/", &[backend.addr()])], &[]);
    let mut raw = RawH2::connect(lb.addr());
    raw.send(&frame(kind::SETTINGS, ACK, 0, &[]));
    for i in 0..16u64 {
        raw.send(&frame(kind::PING, 0, 0, &i.to_be_bytes()));
        raw.send(&frame(kind::SETTINGS, 0, 0, &[]));
    }
    raw.send(&headers(1, END_HEADERS | END_STREAM));
    let mut pongs = 0;
    loop {
        let frame = raw.read_frame().expect("a frame from lb");
        assert_ne!(frame.kind, kind::GOAWAY, "{frame:?}");
        if frame.kind == kind::PING && frame.flags & ACK != 0 {
            pongs += 1;
        }
        if frame.stream == 1 && frame.flags & END_STREAM != 0 {
            break;
        }
    }
    assert_eq!(pongs, 16);
}

/// Rapid Reset, paced: each stream is reset only after its request reached the backend, so
/// `h2`'s pending-accept limit never sees it; lb's budget of streams reset by the client ends
/// the connection before 512 such streams (1,024 frames).
#[test]
fn paced_rapid_reset_ends_the_connection() {
    let backend = Backend::start_with("slow", Reply::Slow(Duration::from_millis(100)));
    let lb = lb(
        1,
        &[("/", &[backend.addr()])],
        &["--h2-max-streams", "1000"],
    );
    let mut raw = RawH2::connect(lb.addr());
    let mut goaway = None;
    for i in 0..FLOOD_FRAMES as u32 / 2 {
        let stream = 2 * i + 1;
        if !raw.try_send(&headers(stream, END_HEADERS | END_STREAM)) {
            break;
        }
        if !backend.wait_for_requests(i as usize + 1, WAIT) {
            break; // lb stopped forwarding: the connection is going away
        }
        if !raw.try_send(&frame(kind::RST_STREAM, 0, stream, &CANCEL.to_be_bytes())) {
            break;
        }
        // Whatever lb sent so far, without waiting: a GOAWAY ends the flood.
        while let Some(frame) = raw.try_read_frame() {
            if frame.kind == kind::GOAWAY {
                goaway = Some(frame);
            }
        }
        if goaway.is_some() {
            break;
        }
    }
    let goaway = goaway
        .or_else(|| raw.until_goaway())
        .expect("a GOAWAY within 512 resets");
    assert_eq!(goaway_code(&goaway), Some(ENHANCE_YOUR_CALM));
    assert!(
        backend.request_count() < FLOOD_FRAMES / 2,
        "{}",
        backend.request_count()
    );
}
