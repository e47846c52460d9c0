//! Streams of one connection are independent: lb's own 502/503/504 on one stream while the others
//! succeed, a slow stream never holds up a fast one, large bodies both ways under flow control
//! (checksummed), and a client's RST_STREAM mid-response cuts that exchange only, its upstream
//! connection not pooled.

use crate::lb;
use lb_testkit::h2_client::http::Method;
use lb_testkit::h2_client::{connect, read_body, request, runtime, send, send_body, tokio, Bytes};
use lb_testkit::{refused_addr, Backend, Pattern, Reply, WAIT};
use std::time::Duration;

#[test]
fn lb_errors_go_to_their_own_stream_while_the_others_succeed() {
    let ok = Backend::start("ok");
    let hang = Backend::start_with("hang", Reply::NeverAnswer);
    let dead = refused_addr();
    let routes: &[(&str, &[_])] = &[
        ("/ok", &[ok.addr()]),
        ("/dead", &[dead]),
        ("/hang", &[hang.addr()]),
    ];
    let lb = lb(1, routes, &["--upstream-timeout", "1s"]);
    let rt = runtime();
    let statuses = rt.block_on(async {
        let client = connect(lb.addr()).await;
        let (mut a, mut b, mut c, mut d) = (client.clone(), client.clone(), client.clone(), client);
        let (a, b, c, d) = tokio::join!(
            send(&mut a, request(Method::GET, "h", "/hang"), None),
            send(&mut b, request(Method::GET, "h", "/dead"), None),
            send(&mut c, request(Method::GET, "h", "/nowhere"), None),
            send(&mut d, request(Method::GET, "h", "/ok"), None),
        );
        [a, b, c, d].map(|r| {
            let r = r.expect("a response on every stream");
            if r.status != 200 {
                assert_eq!(r.header("content-type"), Some("text/plain"));
                assert!(!r.body.is_empty() && r.body.len() < 200, "{}", r.text());
            }
            r.status
        })
    });
    assert_eq!(statuses, [504, 502, 503, 200]);
}

/// A stream whose upstream holds its answer does not delay a later stream on the same
/// connection: the fast one completes while the slow one is still waiting.
#[test]
fn a_slow_stream_does_not_hold_up_a_fast_one() {
    let slow = Backend::start_with("slow", Reply::Hold);
    let fast = Backend::start("fast");
    let lb = lb(
        1,
        &[("/slow", &[slow.addr()]), ("/fast", &[fast.addr()])],
        &[],
    );
    let rt = runtime();
    rt.block_on(async {
        let client = connect(lb.addr()).await;
        let mut first = client.clone();
        let slow_stream = tokio::spawn(async move {
            send(&mut first, request(Method::GET, "h", "/slow"), None).await
        });
        let held = tokio::task::spawn_blocking(move || {
            assert!(
                slow.wait_for_requests(1, WAIT),
                "the slow request reached its backend"
            );
            slow
        })
        .await
        .expect("wait");
        let mut second = client;
        let r = send(&mut second, request(Method::GET, "h", "/fast"), None)
            .await
            .expect("fast stream");
        assert_eq!(r.text(), "fast");
        assert!(
            !slow_stream.is_finished(),
            "the slow stream is still waiting"
        );
        held.release();
        let r = slow_stream.await.expect("task").expect("slow stream");
        assert_eq!(r.text(), "slow");
    });
}

/// 64 MiB down (chunked and sized) and 16 MiB up (streamed, so chunked upstream), each compared
/// by checksum: the windows move, nothing is lost or reordered.
#[test]
fn large_bodies_stream_both_ways_intact() {
    const DOWN: u64 = 64 << 20;
    const UP: u64 = 16 << 20;
    let chunked = Backend::start_with(
        "chunked",
        Reply::Big {
            len: DOWN,
            chunked: true,
        },
    );
    let sized = Backend::start_with(
        "sized",
        Reply::Big {
            len: DOWN,
            chunked: false,
        },
    );
    let sink = Backend::start("sink");
    let routes: &[(&str, &[_])] = &[
        ("/chunked", &[chunked.addr()]),
        ("/sized", &[sized.addr()]),
        ("/up", &[sink.addr()]),
    ];
    let lb = lb(1, routes, &[]);
    let rt = runtime();
    rt.block_on(async {
        let mut client = connect(lb.addr()).await;
        for path in ["/chunked", "/sized"] {
            let r = send(&mut client, request(Method::GET, "h", path), None)
                .await
                .expect("download");
            assert_eq!(r.status, 200, "{path}");
            assert_eq!(r.checksum.len(), DOWN, "{path}");
            assert_eq!(r.checksum.value(), Pattern::checksum(DOWN), "{path}");
        }
        let mut body = Vec::with_capacity(UP as usize);
        let mut pattern = Pattern::new(UP);
        while let Some(piece) = pattern.next_piece(1 << 20) {
            body.extend_from_slice(piece);
        }
        let r = send(
            &mut client,
            request(Method::POST, "h", "/up"),
            Some(body.into()),
        )
        .await
        .expect("upload");
        assert_eq!(r.status, 200);
    });
    let seen = sink.last_request();
    assert_eq!(seen.body_len, UP);
    assert_eq!(seen.body_checksum, Pattern::checksum(UP));
}

/// The client resets a stream after the first bytes of a 64 MiB answer: that stream ends, the
/// connection and its other streams go on, and the upstream connection that carried the cut
/// answer is closed rather than pooled (the next request to that backend opens a new one).
#[test]
fn a_client_reset_mid_response_cuts_that_exchange_only() {
    let big = Backend::start_with(
        "big",
        Reply::Big {
            len: 64 << 20,
            chunked: false,
        },
    );
    let lb = lb(1, &[("/", &[big.addr()])], &[]);
    let rt = runtime();
    rt.block_on(async {
        let mut client = connect(lb.addr()).await;
        let ready = client.clone().ready().await.expect("ready");
        let mut ready = ready;
        let (response, _) = ready
            .send_request(request(Method::GET, "h", "/cut"), true)
            .expect("send");
        let response = response.await.expect("head");
        let mut recv = response.into_body();
        let first = recv
            .data()
            .await
            .expect("a first DATA frame")
            .expect("data");
        assert!(!first.is_empty());
        drop(recv); // RST_STREAM(CANCEL)
        let r = send(&mut client, request(Method::GET, "h", "/after"), None)
            .await
            .expect("the connection goes on");
        assert_eq!(r.status, 200);
        assert_eq!(r.checksum.len(), 64 << 20);
    });
    let seen = big.requests();
    assert_eq!(seen.len(), 2);
    assert_ne!(
        seen[0].conn_id, seen[1].conn_id,
        "the cut exchange's upstream connection was reused"
    );
}

/// A client that sends a body slower than lb reads it still gets its whole body through, the
/// window given back as the upstream takes the bytes.
#[test]
fn a_body_sent_in_pieces_arrives_whole() {
    let sink = Backend::start("sink");
    let lb = lb(1, &[("/", &[sink.addr()])], &[]);
    let rt = runtime();
    rt.block_on(async {
        let client = connect(lb.addr()).await;
        let mut ready = client.ready().await.expect("ready");
        let (response, mut stream) = ready
            .send_request(request(Method::PUT, "h", "/pieces"), false)
            .expect("send");
        for piece in [&b"one "[..], b"two ", b"three"] {
            stream
                .send_data(Bytes::from_static(piece), false)
                .expect("piece");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        send_body(&mut stream, Bytes::new()).await.expect("end");
        let response = response.await.expect("head");
        assert_eq!(response.status(), 200);
        read_body(response.into_body()).await.expect("body");
    });
    assert_eq!(sink.last_request().body, b"one two three");
}

/// A client that stops reading one stream (its window stays full) stalls that stream alone: a
/// second stream on the same connection and an HTTP/1.1 request to the same backend are served
/// meanwhile, and after the idle timeout lb gives the stalled stream up (its upstream connection
/// closed, not pooled).
#[test]
fn a_stream_whose_client_stops_reading_stalls_only_itself() {
    let big = Backend::start_with(
        "big",
        Reply::Big {
            len: 64 << 20,
            chunked: false,
        },
    );
    let lb = lb(1, &[("/", &[big.addr()])], &["--idle-timeout", "1s"]);
    let rt = runtime();
    rt.block_on(async {
        // A connection window far larger than the stream window: the stalled stream's unread
        // bytes must not take the other stream's credit on the client's side either.
        let mut builder = lb_testkit::h2_client::h2::client::Builder::new();
        builder
            .initial_window_size(65_535)
            .initial_connection_window_size(16 << 20);
        let client = lb_testkit::h2_client::connect_with(lb.addr(), &builder).await;
        let mut ready = client.clone().ready().await.expect("ready");
        let (stalled, _) = ready
            .send_request(request(Method::GET, "h", "/stalled"), true)
            .expect("send");
        let stalled = stalled.await.expect("the stalled stream's head");
        let mut stalled = stalled.into_body(); // never read: its window fills and stays full
        let mut other = client;
        let r = send(&mut other, request(Method::GET, "h", "/other"), None)
            .await
            .expect("the other stream");
        assert_eq!(r.checksum.len(), 64 << 20);
        let h1 = tokio::task::spawn_blocking({
            let addr = lb.addr();
            move || lb_testkit::get(addr, "/h1").status
        });
        assert_eq!(h1.await.expect("h1 request"), 200);
        // The idle timeout ends the stalled stream: what is left of it is a reset, not 64 MiB.
        let mut received = 0u64;
        let ended = loop {
            match tokio::time::timeout(WAIT, stalled.data()).await {
                Ok(Some(Ok(data))) => received += data.len() as u64,
                Ok(Some(Err(error))) => break Some(error),
                Ok(None) => break None,
                Err(_) => panic!("the stalled stream was never given up"),
            }
        };
        assert!(
            ended.is_some(),
            "the stalled stream ended cleanly after {received} bytes"
        );
        assert!(received < 1 << 20, "{received} bytes");
    });
    let seen = big.requests();
    assert_eq!(seen.len(), 3);
    let stalled_conn = seen
        .iter()
        .find(|r| r.target == "/stalled")
        .expect("stalled")
        .conn_id;
    assert!(seen.iter().filter(|r| r.conn_id == stalled_conn).count() == 1);
}
