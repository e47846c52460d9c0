//! Zero-downtime upgrade (issue 5 "Shutdown, restart, upgrade"): a new lb takes over the
//! running one's listening sockets (SCM_RIGHTS over `--upgrade-socket`) and registry while
//! clients keep sending requests, and not one request fails; the old lb drains and exits 0.
//!
//! Why the sockets must be handed over rather than re-bound by a second process with
//! `SO_REUSEPORT` is shown by `lb-runtime`'s unit test
//! `closing_a_reuseport_listener_drops_its_queue_but_a_duplicate_keeps_it`: closing a socket of
//! a reuseport group resets the connections queued on it.
//!
//! The new lb also takes over the registry's run-time state: each route's round-robin position
//! (the order goes on instead of restarting at the first target), request counts and health.

use crate::routing::health::{entry, wait_healthy};
use crate::{addrs, backends, bin, lb, served_by, WAIT};
use lb_testkit::{
    get, poll_until, refused_addr, request, run_args, run_to_exit, Backend, Conn, LbProcess,
    ScratchDir, SwitchBackend,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Counts of a load run.
#[derive(Debug, Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Keep-alive requests resent on a new connection because the server had closed the idle
    /// one before reading them (what every HTTP client does for idempotent requests).
    resent: AtomicU64,
    first_error: parking_lot::Mutex<Option<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::SeqCst);
        self.first_error.lock().get_or_insert(what);
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits until `n` more requests succeeded than `from`.
    fn wait_for(&self, from: u64, n: u64) {
        poll_until(WAIT, &format!("{n} more requests served"), || {
            (self.ok() >= from + n).then_some(()).ok_or(self)
        });
    }
}

/// One request on a fresh connection.
fn fresh(addr: SocketAddr, tally: &Tally) {
    let result = Conn::connect(addr).and_then(|mut c| {
        c.send(&request("GET", "/load", &[("Connection", "close")], b""))?;
        c.read_response(false)
    });
    match result {
        Ok(r) if r.status == 200 => {
            tally.ok.fetch_add(1, Ordering::SeqCst);
        }
        Ok(r) => tally.fail(format!("fresh: status {}: {}", r.status, r.text())),
        Err(e) => tally.fail(format!("fresh: {e}")),
    }
}

/// Keep-alive requests; a request that finds its idle connection closed by the server (no
/// response byte) is resent once on a new connection, as HTTP clients do (RFC 9112 §9.3.1).
fn keep_alive(addr: SocketAddr, conn: &mut Option<Conn>, tally: &Tally) {
    let raw = request("GET", "/load-ka", &[], b"");
    let mut reused = conn.is_some();
    loop {
        if conn.is_none() {
            match Conn::connect(addr) {
                Ok(c) => *conn = Some(c),
                Err(e) => return tally.fail(format!("keep-alive connect: {e}")),
            }
        }
        let Some(c) = conn.as_mut() else { return };
        match c.send(&raw).and_then(|()| c.read_response(false)) {
            Ok(r) if r.status == 200 => {
                tally.ok.fetch_add(1, Ordering::SeqCst);
                if r.closes() {
                    *conn = None;
                }
                return;
            }
            Ok(r) => {
                *conn = None;
                return tally.fail(format!("keep-alive: status {}: {}", r.status, r.text()));
            }
            Err(_) if reused => {
                tally.resent.fetch_add(1, Ordering::SeqCst);
                *conn = None;
                reused = false;
            }
            Err(e) => {
                *conn = None;
                return tally.fail(format!("keep-alive on a new connection: {e}"));
            }
        }
    }
}

#[test]
fn a_takeover_under_steady_load_loses_no_request() {
    let dir = ScratchDir::new("upgrade-load");
    let sock = dir.join("upgrade.sock");
    let sock = sock.to_str().expect("utf-8 path");
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let mut old = lb(2, &[("/", &[a.addr()])], &["--upgrade-socket", sock]);
    old.admin().register_ok("/", b.addr()); // registered at run time: must be handed over
    let addr = old.addr();

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..4 {
        let (tally, stop) = (tally.clone(), stop.clone());
        clients.push(std::thread::spawn(move || {
            let mut conn = None;
            while !stop.load(Ordering::SeqCst) {
                if i == 0 {
                    keep_alive(addr, &mut conn, &tally);
                } else {
                    fresh(addr, &tally);
                }
            }
        }));
    }
    tally.wait_for(0, 300);

    let new = LbProcess::start(
        bin(),
        &run_args(2, &[], &["--upgrade-socket", sock, "--takeover"]),
    );
    assert_eq!(new.addr(), addr, "same data port: {}", new.ready_line());
    assert_eq!(new.admin_addr(), old.admin_addr(), "same admin port");
    let status = old.wait_exit(WAIT);
    assert_eq!(
        status.code(),
        Some(0),
        "old lb after the handover:\n{}",
        old.stderr()
    );
    assert!(old.stderr().contains("handed over"), "{}", old.stderr());
    let after_exit = tally.ok();
    tally.wait_for(after_exit, 300);

    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("client thread");
    }
    let (ok, failed) = (tally.ok(), tally.failed.load(Ordering::SeqCst));
    eprintln!(
        "handover under load: {} requests sent, {failed} failed, {} keep-alive requests resent \
         after an idle close",
        ok + failed,
        tally.resent.load(Ordering::SeqCst)
    );
    assert_eq!(
        failed,
        0,
        "requests failed during the handover; first: {:?}",
        tally.first_error.lock()
    );
    // The new lb has the registry, including the run-time registration, and serves both.
    let mut want = vec![
        ("/".to_string(), a.addr().to_string()),
        ("/".to_string(), b.addr().to_string()),
    ];
    want.sort();
    assert_eq!(new.admin().target_set(), want);
    let names: Vec<String> = (0..4).map(|_| served_by(&get(addr, "/"))).collect();
    assert!(
        names.contains(&"a".to_string()) && names.contains(&"b".to_string()),
        "{names:?}"
    );
}

/// Starts the successor of the lb serving the upgrade socket `sock`, with these routes and flags,
/// and waits until the old lb has exited 0.
fn take_over(
    old: &mut LbProcess,
    sock: &str,
    routes: &[(&str, &[SocketAddr])],
    extra: &[&str],
) -> LbProcess {
    let mut flags = vec!["--upgrade-socket", sock, "--takeover"];
    flags.extend_from_slice(extra);
    let new = LbProcess::start(bin(), &run_args(2, routes, &flags));
    let status = old.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "old lb:\n{}", old.stderr());
    new
}

/// Which backends served `n` requests sent one after the other, each on a new connection.
fn serve(addr: SocketAddr, n: usize) -> Vec<String> {
    (0..n).map(|_| served_by(&get(addr, "/"))).collect()
}

/// The round-robin order goes on across an upgrade: picks 0..3 in the old lb, picks 4.. in the
/// new one (not 0.. again), and `GET /targets` keeps counting.
#[test]
fn round_robin_continues_where_the_old_lb_stopped() {
    let dir = ScratchDir::new("upgrade-order");
    let sock = dir.join("upgrade.sock");
    let sock = sock.to_str().expect("utf-8 path");
    let backends = backends(&["a", "b", "c"]);
    let targets = addrs(&backends);
    let routes: &[(&str, &[SocketAddr])] = &[("/", &targets)];
    let mut old = lb(2, routes, &["--upgrade-socket", sock]);
    let addr = old.addr();
    assert_eq!(serve(addr, 4), ["a", "b", "c", "a"]);

    let new = take_over(&mut old, sock, routes, &[]);
    assert_eq!(serve(addr, 5), ["b", "c", "a", "b", "c"]);
    // Requests and 2xx responses per target: 2+1, 1+2, 1+2 (a response is counted once it is
    // passed on, so wait for the last one).
    poll_until(WAIT, "carried counts", || {
        let counts: Vec<(u64, u64)> = targets
            .iter()
            .map(|&t| {
                let t = entry(&new.admin(), "/", t);
                let n = |v: &lb_testkit::serde_json::Value| v.as_u64().unwrap_or(0);
                (n(&t["requests"]), n(&t["responses"]["2xx"]))
            })
            .collect();
        if counts == [(3, 3); 3] {
            Ok(())
        } else {
            Err(counts)
        }
    });
}

/// A target in its passive back-off (a refused connect) is still out of round robin in the new
/// lb, until the back-off that began in the old one ends.
#[test]
fn a_target_in_its_back_off_stays_out_after_an_upgrade() {
    let dir = ScratchDir::new("upgrade-backoff");
    let sock = dir.join("upgrade.sock");
    let sock = sock.to_str().expect("utf-8 path");
    let (dead, live) = (refused_addr(), Backend::start("live"));
    let targets = [live.addr(), dead];
    let routes: &[(&str, &[SocketAddr])] = &[("/", &targets)];
    let backoff = ["--health-backoff", "60000"];
    let mut old = lb(
        2,
        routes,
        &["--upgrade-socket", sock, backoff[0], backoff[1]],
    );
    assert_eq!(serve(old.addr(), 2), ["live", "live"], "the second retried");
    assert_eq!(entry(&old.admin(), "/", dead)["healthy"], false);

    let new = take_over(&mut old, sock, routes, &backoff);
    let t = entry(&new.admin(), "/", dead);
    assert_eq!(t["healthy"], false, "{t}");
    assert_eq!(t["requests"], 1, "{t}");
    assert_eq!(serve(new.addr(), 3), ["live", "live", "live"]);
    assert_eq!(entry(&new.admin(), "/", dead)["requests"], 1, "not picked");
}

/// A target the active checks took out stays out in the new lb until the new lb's own probes
/// bring it back (`rise` good probes), instead of getting traffic at once.
#[test]
fn a_target_down_by_its_probes_stays_down_until_the_new_lb_sees_it_up() {
    let dir = ScratchDir::new("upgrade-probes");
    let sock = dir.join("upgrade.sock");
    let sock = sock.to_str().expect("utf-8 path");
    let (good, flaky) = (
        SwitchBackend::start("good", "/health"),
        SwitchBackend::start("flaky", "/health"),
    );
    let targets = [good.addr(), flaky.addr()];
    let routes: &[(&str, &[SocketAddr])] = &[("/", &targets)];
    let probes = |fall: &'static str| {
        [
            "--health-check",
            "/health",
            "--health-interval",
            "50",
            "--health-rise",
            "2",
            "--health-fall",
            fall,
        ]
    };
    let mut flags = vec!["--upgrade-socket", sock];
    flags.extend(probes("2"));
    let mut old = lb(2, routes, &flags);
    flaky.set_health(503);
    wait_healthy(&old.admin(), "/", flaky.addr(), false);

    // A `fall` the test never reaches: only the carried state can have it down in the new lb.
    let new = take_over(&mut old, sock, routes, &probes("1000"));
    let t = entry(&new.admin(), "/", flaky.addr());
    assert_eq!(t["healthy"], false, "{t}");
    let before = flaky.requests();
    assert_eq!(serve(new.addr(), 3), ["good", "good", "good"]);
    assert_eq!(flaky.requests(), before);
    flaky.set_health(200);
    wait_healthy(&new.admin(), "/", flaky.addr(), true);
    assert!(serve(new.addr(), 2).contains(&"flaky".to_string()));
}

/// Kills a process that the test did not start itself (the successor started by lb) on drop.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}

#[test]
fn lb_upgrade_starts_the_successor_and_the_old_lb_drains_and_exits() {
    let dir = ScratchDir::new("upgrade-cmd");
    let sock = dir.join("upgrade.sock");
    let sock = sock.to_str().expect("utf-8 path");
    let a = Backend::start("a");
    let mut old = lb(1, &[("/", &[a.addr()])], &["--upgrade-socket", sock]);
    let addr = old.addr();
    let f = run_to_exit(bin(), &["upgrade", "--upgrade-socket", sock], WAIT);
    let pid: Option<u32> = f
        .stdout
        .iter()
        .find_map(|l| l.split("(pid ").nth(1)?.split(')').next()?.parse().ok());
    let _successor = pid.map(KillOnDrop);
    assert_eq!(
        f.status.code(),
        Some(0),
        "{:?}\n{}\nold:\n{}",
        f.stdout,
        f.stderr,
        old.stderr()
    );
    assert!(pid.is_some(), "no pid in {:?}", f.stdout);
    assert_eq!(old.wait_exit(WAIT).code(), Some(0), "{}", old.stderr());
    // The successor inherited the old lb's stdout and printed its own ready line there.
    let lines = old
        .process()
        .wait_for_lines(2, WAIT, |l| l.contains("listening on"))
        .unwrap_or_else(|e| panic!("{e}: {:?}", old.stdout_lines()));
    assert_eq!(lines[0], lines[1], "same addresses");
    assert_eq!(served_by(&get(addr, "/")), "a");
    // A second upgrade of the successor works the same way.
    let f = run_to_exit(bin(), &["upgrade", "--upgrade-socket", sock], WAIT);
    let pid2: Option<u32> = f
        .stdout
        .iter()
        .find_map(|l| l.split("(pid ").nth(1)?.split(')').next()?.parse().ok());
    let _third = pid2.map(KillOnDrop);
    assert_eq!(f.status.code(), Some(0), "{:?} {}", f.stdout, f.stderr);
    assert_ne!(pid, pid2);
    assert_eq!(served_by(&get(addr, "/")), "a");
}

#[test]
fn upgrade_socket_misuse_is_refused() {
    let dir = ScratchDir::new("upgrade-misuse");
    let sock = dir.join("upgrade.sock");
    let sock = sock.to_str().expect("utf-8 path");
    // Nobody to take over from.
    let f = run_to_exit(
        bin(),
        &run_args(1, &[], &["--upgrade-socket", sock, "--takeover"]),
        WAIT,
    );
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(f.stderr.contains("no running lb answers"), "{}", f.stderr);
    let f = run_to_exit(bin(), &["upgrade", "--upgrade-socket", sock], WAIT);
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    // --takeover without a socket is a bad argument.
    let f = run_to_exit(bin(), &run_args(1, &[], &["--takeover"]), WAIT);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr);

    // A second lb started (without --takeover) on a live upgrade socket refuses to start.
    let first = lb(1, &[], &["--upgrade-socket", sock]);
    let f = run_to_exit(bin(), &run_args(1, &[], &["--upgrade-socket", sock]), WAIT);
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(f.stderr.contains("--takeover"), "{}", f.stderr);
    assert_eq!(
        get(first.addr(), "/").status,
        503,
        "the first lb is unaffected"
    );
    // A stale socket file (its lb was killed) is replaced at start.
    drop(first);
    let again = lb(1, &[], &["--upgrade-socket", sock]);
    assert_eq!(get(again.addr(), "/").status, 503);
}

/// A child process killed and reaped on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Under systemd (`Type=notify`, `NotifyAccess=all`), lb reports `READY=1` with its pid as
/// `MAINPID`, so that after an upgrade systemd follows the new process; `STOPPING=1` on SIGTERM.
#[test]
fn systemd_is_told_about_readiness_and_the_new_main_pid() {
    use std::os::unix::net::UnixDatagram;
    use std::process::{Command, Stdio};
    let dir = ScratchDir::new("upgrade-notify");
    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("bind notify socket");
    notify.set_read_timeout(Some(WAIT)).expect("timeout");
    let receive = || {
        let mut buf = [0u8; 512];
        let n = notify.recv(&mut buf).expect("a notification from lb");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let sock = dir.join("upgrade.sock");
    let sock = sock.to_str().expect("utf-8 path");
    let spawn = |extra: &[&str]| {
        let mut flags = vec!["--upgrade-socket", sock];
        flags.extend_from_slice(extra);
        Child(
            Command::new(bin())
                .args(run_args(1, &[], &flags))
                .env("NOTIFY_SOCKET", &notify_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn lb"),
        )
    };
    let mut old = spawn(&[]);
    assert_eq!(receive(), format!("READY=1\nMAINPID={}\n", old.0.id()));
    let new = spawn(&["--takeover"]);
    assert_eq!(receive(), format!("READY=1\nMAINPID={}\n", new.0.id()));
    let status = old.0.wait().expect("old lb exits");
    assert_eq!(status.code(), Some(0));
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &new.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert_eq!(receive(), "STOPPING=1\n");
}
