//! `lb check` (issue 10): validates what a start would, binds nothing, prints what would run,
//! exits 0 or 2, as `nginx -t` and `haproxy -c` do.

use crate::{bin, WAIT};
use lb_testkit::{run_to_exit, ScratchDir};
use std::net::TcpListener;

#[test]
fn check_prints_what_would_run_and_binds_nothing() {
    // Taken ports: a check that bound them would fail.
    let data = TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = ScratchDir::new("check");
    let file = dir.join("lb.toml");
    let token = dir.join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    std::fs::write(
        &file,
        format!(
            "listen = \"{}\"\nadmin = \"{}\"\nworkers = 2\nadmin_token_file = \"{}\"\n\
             [[route]]\nprefix = \"/api\"\ntargets = [\"localhost:9001\", \"10.0.0.2:80\"]\n",
            data.local_addr().unwrap(),
            admin.local_addr().unwrap(),
            token.display()
        ),
    )
    .unwrap();
    let path = file.to_str().expect("utf-8");
    let f = run_to_exit(
        bin(),
        &["check", "--config", path, "--connect-timeout", "2s"],
        WAIT,
    );
    assert_eq!(f.status.code(), Some(0), "{}", f.stderr);
    let out = f.stdout.join("\n");
    for needle in [
        format!("configuration ok: {path}"),
        format!(
            "listen {}, admin {}, workers 2",
            data.local_addr().unwrap(),
            admin.local_addr().unwrap()
        ),
        "routes: 1 with 2 targets".to_string(),
        "/api -> 127.0.0.1:9001, 10.0.0.2:80".to_string(),
        "timeouts: connect 2s".to_string(),
        "admin token: set".to_string(),
    ] {
        assert!(out.contains(&needle), "{needle:?} missing from:\n{out}");
    }
    assert!(!out.contains("t0ken"), "the token is never printed:\n{out}");

    std::fs::remove_file(&token).unwrap();
    let f = run_to_exit(bin(), &["check", "--config", path], WAIT);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr);
    assert!(f.stderr.contains("admin token file"), "{}", f.stderr);
    assert!(f.stdout.is_empty(), "{:?}", f.stdout);

    std::fs::write(
        &file,
        "[[route]]\nprefix = \"/a\"\ntargets = [\"no-such-host.invalid:1\"]\n",
    )
    .unwrap();
    let f = run_to_exit(bin(), &["check", "--config", path], WAIT);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr);
    assert!(f.stderr.contains("no-such-host.invalid:1"), "{}", f.stderr);
}

#[test]
fn check_reads_the_state_file_and_warns_as_a_start_would() {
    let dir = ScratchDir::new("check-state");
    let state = dir.join("state.json");
    std::fs::write(&state, "{\"version\":1,\"routes\":[").unwrap();
    let f = run_to_exit(
        bin(),
        &["check", "--state", state.to_str().expect("utf-8")],
        WAIT,
    );
    assert_eq!(
        f.status.code(),
        Some(2),
        "a corrupt state file fails the check: {}",
        f.stderr
    );
    assert!(
        f.stderr.contains(&state.display().to_string()),
        "{}",
        f.stderr
    );

    let many = (std::thread::available_parallelism().map_or(1, |n| n.get()) + 1).to_string();
    let f = run_to_exit(bin(), &["check", "--workers", &many], WAIT);
    assert_eq!(f.status.code(), Some(0), "{}", f.stderr);
    assert!(
        f.stdout
            .iter()
            .any(|l| l.starts_with(&format!("warning: {many} workers on"))),
        "{:?}",
        f.stdout
    );
}
