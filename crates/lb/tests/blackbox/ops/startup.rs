//! Start-up (issue 10 points 5 and 11): one INFO line saying what runs, a warning for more
//! workers than usable CPUs, and a taken port named in the error, for lb and `lb echo`.

use crate::{bin, lb, WAIT};
use lb_testkit::{run_to_exit, Backend, LbProcess, ScratchDir};
use std::net::TcpListener;

#[test]
fn one_start_up_line_says_what_runs() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let dir = ScratchDir::new("startup-line");
    let file = dir.join("lb.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\nworkers = 1\npin = false\n\
             [health]\ncheck = \"/health\"\ninterval = \"3s\"\n\
             [[route]]\nprefix = \"/api\"\ntargets = [\"{}\", \"{}\"]\n",
            a.addr(),
            b.addr()
        ),
    )
    .unwrap();
    let lb = LbProcess::start(bin(), &["run", "--config", file.to_str().expect("utf-8")]);
    let log = lb.wait_for_stderr(WAIT, &["lb started"]);
    let line = log
        .lines()
        .find(|l| l.contains("lb started"))
        .expect("the line");
    for needle in [
        format!("version={}", env!("CARGO_PKG_VERSION")),
        format!("config={}", file.display()),
        format!("listen={}", lb.addr()),
        format!("admin={}", lb.admin_addr()),
        "workers=1".to_string(),
        "routes=1".to_string(),
        "targets=2".to_string(),
        "GET /health every 3s".to_string(),
    ] {
        assert!(line.contains(&needle), "{needle:?} missing from {line:?}");
    }
    assert_eq!(log.matches("lb started").count(), 1, "{log}");
}

#[test]
fn more_workers_than_usable_cpus_is_a_warning() {
    let usable = std::thread::available_parallelism().map_or(1, |n| n.get());
    let many = (usable + 1).to_string();
    let lb = lb(usable + 1, &[], &[]);
    let log = lb.wait_for_stderr(WAIT, &["lb started"]);
    assert!(
        log.contains(&format!("{many} workers on {usable} usable CPUs")) && log.contains("WARN"),
        "{log}"
    );
    let one = crate::lb(1, &[], &[]);
    let log = one.wait_for_stderr(WAIT, &["lb started"]);
    assert!(!log.contains("usable CPUs"), "{log}");
}

#[test]
fn a_taken_port_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let f = run_to_exit(
        bin(),
        &[
            "run",
            "--listen",
            &addr,
            "--admin",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--no-pin",
        ],
        WAIT,
    );
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(
        f.stderr
            .contains(&format!("cannot listen on {addr}: address already in use")),
        "{}",
        f.stderr
    );
    let f = run_to_exit(bin(), &["echo", "--listen", &addr], WAIT);
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(
        f.stderr
            .contains(&format!("cannot listen on {addr}: address already in use")),
        "{}",
        f.stderr
    );
    assert!(!f.stderr.contains("os error"), "{}", f.stderr);
}
