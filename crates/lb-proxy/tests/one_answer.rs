//! "Exactly one answer per request, and the connection either stays in sync or closes", tested
//! for every fault kind in-process: one lb worker (`lb_proxy::serve`) and its backends on the
//! test's own runtime, on loopback.
//!
//! The clock is real: tokio's paused clock jumps to the next timer whenever the runtime looks
//! idle, and a loopback write whose delivery the kernel defers makes it look idle, so a paused
//! clock fired the client's read timeout while an answer was on its way. The timeouts that the
//! faults need are short instead (an upstream timeout of one second), and no good request waits
//! on any of them. The timer logic itself is tested on the paused clock in `timer.rs`.
//!
//! For each fault a keep-alive client sends the faulting request and then good ones, once one
//! after the other and once pipelined in a single write, and must read exactly one answer for
//! each request, in order, with the echoed path proving which request an answer belongs to; where
//! the fault leaves the byte stream unknown, the one answer is followed by a clean close.

use lb_proxy::{
    access_log, serve, Tuning, TuningValues, WorkerConfig, WorkerSettings, WorkerStats,
};
use lb_registry::Registry;
use lb_testkit::tokio_conn::AsyncConn;
use parking_lot::Mutex;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{spawn_local, LocalSet};

/// The upstream timeout of the worker under test: what the silent backend costs each time.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(1);

/// The header timeout of the worker under test.
const HEADER_TIMEOUT: Duration = Duration::from_millis(500);

/// How a test backend answers.
#[derive(Debug, Clone, Copy)]
enum Backend {
    /// `200` with the request target as its body, keep-alive.
    Echo,
    /// Reads the request head and closes without a byte.
    Reset,
    /// Reads the request head and never answers.
    Silent,
    /// Answers with a head that is not HTTP.
    Invalid,
}

/// Starts `kind` on `127.0.0.1:0` as a task of the current `LocalSet`.
async fn backend(kind: Backend) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    spawn_local(async move {
        while let Ok((stream, _)) = listener.accept().await {
            spawn_local(answer(kind, stream));
        }
    });
    addr
}

/// One backend connection: request after request, as `kind` says.
async fn answer(kind: Backend, mut stream: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("content-length: ")
                    .or(l.strip_prefix("Content-Length: "))
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + length);
        let target = head.split(' ').nth(1).unwrap_or("?").to_string();
        let reply = match kind {
            Backend::Echo => format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{target}",
                target.len()
            ),
            Backend::Reset => return,
            Backend::Silent => {
                std::future::pending::<()>().await;
                return;
            }
            Backend::Invalid => "HTTP/1.1 two hundred\r\n\r\n".to_string(),
        };
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// An address where nothing listens: connecting to it is refused.
fn refused() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

/// A running worker: its address, its registry, the access log lines it wrote, and its stop.
struct Lb {
    addr: SocketAddr,
    registry: Arc<Registry>,
    log: Arc<Mutex<Vec<String>>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Lb {
    /// One worker with `routes`, on the current `LocalSet`.
    async fn start(routes: &[(&str, &[SocketAddr])]) -> Lb {
        let registry = Arc::new(Registry::new(1));
        for (prefix, targets) in routes {
            for &target in *targets {
                registry.register(prefix, target).expect("register");
            }
        }
        let secs = Duration::from_secs;
        let settings = WorkerSettings {
            drain_timeout: secs(30),
            pool_idle_per_target: 64,
            pool_idle_timeout: secs(60),
            max_connections: 1024,
            read_at_accept: true,
            splice: true,
            h2: Default::default(),
        };
        let tuning = Tuning::new(TuningValues {
            connect: secs(5),
            upstream: UPSTREAM_TIMEOUT,
            header: HEADER_TIMEOUT,
            idle: secs(60),
            max_body: None,
        });
        let (log, writer) = access_log();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || writer.run(|line| sink.lock().push(line)));
        let cfg = WorkerConfig::new(0, settings, Arc::new(tuning)).with_access_log(log);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let worker_registry = registry.clone();
        spawn_local(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            serve(
                listener.into(),
                worker_registry,
                cfg,
                Arc::new(WorkerStats::default()),
                shutdown,
            )
            .await;
        });
        Lb {
            addr,
            registry,
            log: lines,
            stop: Some(stop),
        }
    }

    async fn connect(&self) -> AsyncConn {
        AsyncConn::connect(self.addr).await
    }
}

impl Drop for Lb {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs `test` on a current-thread runtime inside a `LocalSet` (the worker is `!Send` by
/// design).
fn run<F: Future<Output = ()>>(test: impl FnOnce() -> F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(LocalSet::new().run_until(test()));
}

/// `GET path` on a keep-alive connection.
fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: lb\r\n\r\n").into_bytes()
}

/// What the client must see after the faulting request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// The connection goes on: the good requests get their own answers.
    KeepsGoing,
    /// The connection closes after the one answer: nothing else arrives.
    Closes,
}

/// A fault, the one status it is answered with, and what the connection does next.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    status: u16,
    then: Then,
}

/// Every fault a request can meet, on one worker with a route for each.
async fn cases() -> (Lb, Vec<Case>) {
    let echo = backend(Backend::Echo).await;
    let reset = backend(Backend::Reset).await;
    let silent = backend(Backend::Silent).await;
    let invalid = backend(Backend::Invalid).await;
    let emptied = backend(Backend::Echo).await;
    let lb = Lb::start(&[
        ("/ok", &[echo]),
        ("/dead", &[refused()]),
        ("/dead2", &[refused(), refused()]),
        ("/reset", &[reset]),
        ("/silent", &[silent]),
        ("/invalid", &[invalid]),
        ("/emptied", &[emptied]),
    ])
    .await;
    lb.registry
        .deregister("/emptied", emptied)
        .expect("deregister");
    let oversized = format!(
        "GET /ok/big HTTP/1.1\r\nHost: lb\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let case = |name, request: &[u8], status, then| Case {
        name,
        request: request.to_vec(),
        status,
        then,
    };
    let cases = vec![
        case("refused", &get("/dead/x"), 502, Then::KeepsGoing),
        case("refused twice", &get("/dead2/x"), 502, Then::KeepsGoing),
        case("reset", &get("/reset/x"), 502, Then::KeepsGoing),
        case("timed out", &get("/silent/x"), 504, Then::KeepsGoing),
        case(
            "invalid response head",
            &get("/invalid/x"),
            502,
            Then::KeepsGoing,
        ),
        case("no route", &get("/nowhere"), 503, Then::KeepsGoing),
        case(
            "no healthy target",
            &get("/emptied/x"),
            503,
            Then::KeepsGoing,
        ),
        case(
            "invalid head",
            b"GET /ok/x HTTP/1.1\r\nHost: lb\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
            Then::Closes,
        ),
        case("oversized head", oversized.as_bytes(), 431, Then::Closes),
        case(
            "body left unread",
            b"POST /nowhere HTTP/1.1\r\nHost: lb\r\nContent-Length: 5\r\n\r\nhello",
            503,
            Then::Closes,
        ),
    ];
    (lb, cases)
}

/// Reads the answers to `/ok/next` and `/ok/after`, in that order, as the very next bytes.
async fn good_answers_follow(conn: &mut AsyncConn, case: &str) {
    for path in ["/next", "/after"] {
        let reply = conn.reply(false).await;
        assert_eq!(reply.status, 200, "{case}: the answer to /ok{path}");
        assert_eq!(
            reply.text(),
            path,
            "{case}: the answer belongs to /ok{path}"
        );
    }
}

#[test]
fn every_fault_gets_one_answer_and_the_next_requests_their_own() {
    run(|| async {
        let (lb, cases) = cases().await;
        for case in &cases {
            let mut conn = lb.connect().await;
            conn.send(&case.request).await;
            let reply = conn.reply(false).await;
            assert_eq!(reply.status, case.status, "{}", case.name);
            match case.then {
                Then::KeepsGoing => {
                    assert_eq!(reply.header("connection"), None, "{}", case.name);
                    conn.send(&get("/ok/next")).await;
                    conn.send(&get("/ok/after")).await;
                    good_answers_follow(&mut conn, case.name).await;
                }
                Then::Closes => {
                    assert_eq!(reply.header("connection"), Some("close"), "{}", case.name);
                    conn.assert_closed().await;
                }
            }
        }
    });
}

#[test]
fn every_fault_gets_one_answer_when_the_next_requests_are_pipelined_behind_it() {
    run(|| async {
        let (lb, cases) = cases().await;
        for case in &cases {
            let mut conn = lb.connect().await;
            let mut burst = case.request.clone();
            burst.extend_from_slice(&get("/ok/next"));
            burst.extend_from_slice(&get("/ok/after"));
            conn.send(&burst).await;
            let reply = conn.reply(false).await;
            assert_eq!(reply.status, case.status, "{}", case.name);
            match case.then {
                Then::KeepsGoing => good_answers_follow(&mut conn, case.name).await,
                Then::Closes => conn.assert_closed().await,
            }
        }
    });
}

/// The reproduction: a route whose only target is down, then a good route, on one
/// keep-alive connection, each time the dead target's passive back-off has ended.
#[test]
fn a_dead_single_target_is_answered_once_each_time_its_back_off_ends() {
    run(|| async {
        let echo = backend(Backend::Echo).await;
        let lb = Lb::start(&[("/dead", &[refused()]), ("/ok", &[echo])]).await;
        let mut conn = lb.connect().await;
        for round in 0..3 {
            conn.send(&get("/dead/x")).await;
            conn.send(&get("/ok/y")).await;
            conn.send(&get("/ok/z")).await;
            let reply = conn.reply(false).await;
            assert_eq!(reply.status, 502, "round {round}: /dead/x");
            for path in ["/y", "/z"] {
                let reply = conn.reply(false).await;
                assert_eq!(reply.status, 200, "round {round}: /ok{path}");
                assert_eq!(reply.text(), path, "round {round}");
            }
            // End the back-off, so the next round meets the target as healthy again.
            let later = std::time::Instant::now() + Duration::from_secs(3600);
            assert_eq!(lb.registry.revive_due(later), 1, "round {round}");
        }
    });
}

#[test]
fn a_client_that_leaves_mid_body_gets_nothing_and_hurts_no_other_connection() {
    run(|| async {
        let echo = backend(Backend::Echo).await;
        let lb = Lb::start(&[("/ok", &[echo])]).await;
        let mut gone = lb.connect().await;
        gone.send(b"POST /ok/x HTTP/1.1\r\nHost: lb\r\nContent-Length: 100\r\n\r\nonly ten b")
            .await;
        gone.shutdown_write().await;
        gone.assert_closed().await;
        let mut other = lb.connect().await;
        other.send(&get("/ok/next")).await;
        other.send(&get("/ok/after")).await;
        good_answers_follow(&mut other, "after a client left").await;
    });
}

#[test]
fn a_head_that_never_ends_gets_one_408_and_a_close() {
    run(|| async {
        let echo = backend(Backend::Echo).await;
        let lb = Lb::start(&[("/ok", &[echo])]).await;
        let mut conn = lb.connect().await;
        conn.send(b"GET /ok/x HTTP/1.1\r\nHost: lb\r\n").await;
        let reply = conn.reply(false).await;
        assert_eq!(reply.status, 408);
        assert_eq!(reply.header("connection"), Some("close"));
        conn.assert_closed().await;
    });
}

/// Waits until `lb` has written `n` access log lines (the writer is a thread of its own), at
/// most a minute.
async fn log_lines(lb: &Lb, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while lb.log.lock().len() < n && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lb.log.lock().clone()
}

/// The `duration_ms` of an access log line.
fn duration_ms(line: &str) -> f64 {
    line.rsplit("duration_ms=")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {line}"))
}

#[test]
fn the_access_log_has_one_line_per_request_with_its_target_and_real_duration() {
    run(|| async {
        let echo = backend(Backend::Echo).await;
        let silent = backend(Backend::Silent).await;
        let dead = refused();
        let lb = Lb::start(&[("/dead", &[dead]), ("/silent", &[silent]), ("/ok", &[echo])]).await;
        let mut conn = lb.connect().await;
        for path in ["/dead/x", "/silent/x", "/ok/y"] {
            conn.send(&get(path)).await;
            conn.reply(false).await;
        }
        let lines = log_lines(&lb, 3).await;
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[0].contains("\"GET /dead/x\" status=502"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains(&format!("target={dead} ")),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("\"GET /silent/x\" status=504"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].contains(&format!("target={silent} ")),
            "{}",
            lines[1]
        );
        let waited = duration_ms(&lines[1]);
        assert!((1000.0..30_000.0).contains(&waited), "{}", lines[1]);
        assert!(
            lines[2].contains("\"GET /ok/y\" status=200"),
            "{}",
            lines[2]
        );
        assert!(
            lines[2].contains(&format!("target={echo} ")),
            "{}",
            lines[2]
        );
    });
}
