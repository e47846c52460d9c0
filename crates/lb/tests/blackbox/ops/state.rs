//! The state file (issue 5 "Registry that survives restarts"): every change is on disk before the
//! admin API answers, a restart or a crash (SIGKILL) loses no registration, and a corrupt or
//! unreadable file stops lb with exit code 1 and a clear message.

use crate::{bin, lb, served_by, WAIT};
use lb_testkit::serde_json::{self, Value};
use lb_testkit::{get, run_args, run_to_exit, Backend, ScratchDir};
use std::net::SocketAddr;
use std::path::Path;

/// `(path, [targets])` as the state file holds them.
fn saved(file: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(file).expect("state file exists");
    let v: Value = serde_json::from_str(&text).expect("state file is JSON");
    assert_eq!(v["version"], 1, "{v}");
    v["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .map(|r| {
            let targets = r["targets"]
                .as_array()
                .expect("targets")
                .iter()
                .map(|t| t.as_str().expect("address string").to_string())
                .collect();
            (r["path"].as_str().expect("path").to_string(), targets)
        })
        .collect()
}

fn s(addr: SocketAddr) -> String {
    addr.to_string()
}

#[test]
fn every_change_is_saved_before_the_answer_and_survives_a_restart() {
    let dir = ScratchDir::new("state-restart");
    let file = dir.join("state.json");
    let state = file.to_str().expect("utf-8 path");
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );

    let mut first = lb(2, &[], &["--state", state]);
    assert_eq!(saved(&file), vec![], "written at start, empty");
    let admin = first.admin();
    admin.register_ok("/api", a.addr());
    // Read right after the answer: the change is already on disk.
    assert_eq!(saved(&file), vec![("/api".into(), vec![s(a.addr())])]);
    admin.register_ok("/api", b.addr());
    admin.register_ok("/old", c.addr());
    admin.deregister_ok("/old", c.addr());
    // The API's last target on /old left, and the prefix with it (SPEC part B): not saved.
    assert_eq!(
        saved(&file),
        vec![("/api".into(), vec![s(a.addr()), s(b.addr())])]
    );
    let before = admin.target_set();
    first.terminate();
    assert_eq!(first.wait_exit(WAIT).code(), Some(0), "{}", first.stderr());

    let second = lb(2, &[("/extra", &[c.addr()])], &["--state", state]);
    let mut expected = before.clone();
    expected.push(("/extra".into(), s(c.addr())));
    expected.sort();
    assert_eq!(
        second.admin().target_set(),
        expected,
        "state first, then --route on top"
    );
    assert_eq!(
        saved(&file)[0],
        ("/api".into(), vec![s(a.addr()), s(b.addr())]),
        "round-robin order kept"
    );
    let names: Vec<String> = (0..4)
        .map(|_| served_by(&get(second.addr(), "/api/x")))
        .collect();
    assert_eq!(names.iter().filter(|n| *n == "a").count(), 2, "{names:?}");
    // The emptied prefix did not come back.
    let routes = second.admin().call("GET", "/routes", b"").json();
    let paths: Vec<&str> = routes
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|r| r["path"].as_str())
        .collect();
    assert_eq!(paths, ["/api", "/extra"]);
}

#[test]
fn a_crash_loses_no_registration() {
    let dir = ScratchDir::new("state-crash");
    let file = dir.join("state.json");
    let state = file.to_str().expect("utf-8 path");
    let a = Backend::start("a");
    let mut first = lb(1, &[], &["--state", state]);
    first.admin().register_ok("/api", a.addr());
    first.process().kill(); // SIGKILL: no chance to save anything on the way out
    let second = lb(1, &[], &["--state", state]);
    assert_eq!(
        second.admin().target_set(),
        vec![("/api".to_string(), s(a.addr()))]
    );
    assert_eq!(served_by(&get(second.addr(), "/api")), "a");
}

#[test]
fn a_corrupt_or_unreadable_state_file_stops_lb_with_exit_1() {
    let dir = ScratchDir::new("state-corrupt");
    let file = dir.join("state.json");
    let cases = [
        ("{\"version\":1,\"routes\":[", "corrupt"),
        (
            "{\"version\":1,\"routes\":[],\"typo\":true}",
            "unknown field `typo`",
        ),
        ("{\"version\":9,\"routes\":[]}", "version 9"),
        (
            "{\"version\":1,\"routes\":[{\"path\":\"/a\",\"targets\":[\"10.0.0.1:0\"]}]}",
            "port",
        ),
        ("", "corrupt"),
    ];
    for (text, why) in cases {
        std::fs::write(&file, text).expect("write state file");
        let f = run_to_exit(
            bin(),
            &run_args(1, &[], &["--state", file.to_str().expect("utf-8")]),
            WAIT,
        );
        assert_eq!(f.status.code(), Some(1), "{text:?}: {}", f.stderr);
        assert!(
            f.stderr.contains(&file.display().to_string()) && f.stderr.contains(why),
            "{text:?}: stderr should name the file and say {why:?}:\n{}",
            f.stderr
        );
        assert!(!f.stdout.iter().any(|l| l.contains("listening on")));
        assert_eq!(
            std::fs::read_to_string(&file).expect("still there"),
            text,
            "a refused file is left as it was"
        );
    }
    // A directory where the file should be: unreadable.
    let f = run_to_exit(
        bin(),
        &run_args(1, &[], &["--state", dir.path().to_str().expect("utf-8")]),
        WAIT,
    );
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(
        f.stderr.contains("cannot read the state file"),
        "{}",
        f.stderr
    );
}
