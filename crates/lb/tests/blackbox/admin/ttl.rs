//! Registrations with a ttl (SPEC part B; issue 10 "Control plane"): a heartbeat keeps a target,
//! its absence removes it from `/targets` and from routing, and a state file honours a ttl that
//! ran out while lb was down.

use crate::{lb, served_by, WAIT};
use lb_testkit::serde_json::{self, Value};
use lb_testkit::{get, poll_until, Admin, Backend, ScratchDir};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn with_ttl(path: &str, target: SocketAddr, ttl: u64) -> String {
    format!(
        r#"{{"path":"{path}","ip":"{}","port":{},"ttl":{ttl}}}"#,
        target.ip(),
        target.port()
    )
}

/// The `GET /targets` row of `target` on `path`, if listed.
fn row(admin: &Admin, path: &str, target: SocketAddr) -> Option<Value> {
    admin
        .targets()
        .as_array()
        .expect("a JSON array")
        .iter()
        .find(|t| {
            t["path"] == path
                && t["ip"] == target.ip().to_string()
                && t["port"] == u64::from(target.port())
        })
        .cloned()
}

#[test]
fn a_target_without_a_heartbeat_leaves_routing_after_its_ttl() {
    let (root, svc) = (Backend::start("root"), Backend::start("svc"));
    let lb = lb(2, &[("/", &[root.addr()])], &[]);
    let admin = lb.admin();
    assert_eq!(
        admin.register_raw(&with_ttl("/svc", svc.addr(), 1)).status,
        201
    );
    let listed = row(&admin, "/svc", svc.addr()).expect("listed");
    assert_eq!(listed["ttl_s"], 1);
    assert!(
        matches!(listed["ttl_left_s"].as_u64(), Some(0 | 1)),
        "{listed}"
    );
    // A target without a ttl shows null.
    assert_eq!(
        row(&admin, "/", root.addr()).expect("root")["ttl_left_s"],
        Value::Null
    );

    poll_until(WAIT, "the ttl to run out", || {
        row(&admin, "/svc", svc.addr()).map_or(Ok(()), Err)
    });
    assert_eq!(served_by(&get(lb.addr(), "/svc/x")), "root");
    assert_eq!(root.last_request().target, "/svc/x");
    lb.wait_for_stderr(WAIT, &["registration expired", "/svc"]);
}

/// Each registration again within the ttl starts it afresh: observed as the time left going
/// back up, over more than one ttl in all.
#[test]
fn registering_again_within_the_ttl_keeps_the_target() {
    let svc = Backend::start("svc");
    let lb = lb(1, &[], &[]);
    let admin = lb.admin();
    let body = with_ttl("/svc", svc.addr(), 2);
    assert_eq!(admin.register_raw(&body).status, 201);
    for beat in 0..3 {
        poll_until(WAIT, "the time left to drop to 1 s", || {
            match row(&admin, "/svc", svc.addr()) {
                Some(r) if r["ttl_left_s"] == 1 => Ok(()),
                Some(r) => Err(r.to_string()),
                None => panic!("beat {beat}: the target expired despite the heartbeat"),
            }
        });
        let r = admin.register("/svc", svc.addr());
        assert_eq!(
            r.status,
            200,
            "a heartbeat without a ttl keeps the stored one: {}",
            r.text()
        );
        let renewed = row(&admin, "/svc", svc.addr()).expect("still listed");
        assert_eq!(
            (&renewed["ttl_s"], &renewed["ttl_left_s"]),
            (&2.into(), &2.into())
        );
    }
    assert_eq!(served_by(&get(lb.addr(), "/svc/x")), "svc");
}

/// With `--state`, the file keeps each lease's end as wall-clock time: a restart after it does
/// not bring the target back, one before it does (with the time it has left).
#[test]
fn a_state_file_honours_a_ttl_across_a_restart() {
    let dir = ScratchDir::new("state-ttl");
    let file = dir.join("state.json");
    let state = file.to_str().expect("utf-8 path");
    let (short, long, plain) = (
        Backend::start("short"),
        Backend::start("long"),
        Backend::start("plain"),
    );

    let mut first = lb(1, &[], &["--state", state]);
    let admin = first.admin();
    assert_eq!(
        admin
            .register_raw(&with_ttl("/short", short.addr(), 3))
            .status,
        201
    );
    assert_eq!(
        admin
            .register_raw(&with_ttl("/long", long.addr(), 600))
            .status,
        201
    );
    admin.register_ok("/plain", plain.addr());
    first.terminate();
    assert_eq!(first.wait_exit(WAIT).code(), Some(0), "{}", first.stderr());

    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("state file")).expect("JSON");
    let short_target = &saved["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .find(|r| r["path"] == "/short")
        .expect("/short was saved while its lease ran")["targets"][0];
    assert_eq!(short_target["lease"]["ttl_s"], 3, "{saved}");
    let expires = short_target["lease"]["expires_unix_ms"]
        .as_u64()
        .expect("an expiry in ms");
    let expiry = UNIX_EPOCH + Duration::from_millis(expires);
    poll_until(WAIT, "the wall clock to pass /short's expiry", || {
        if SystemTime::now() > expiry {
            Ok(())
        } else {
            Err(expiry)
        }
    });

    let second = lb(1, &[], &["--state", state]);
    let admin = second.admin();
    assert!(
        row(&admin, "/short", short.addr()).is_none(),
        "an expired lease came back"
    );
    let left = row(&admin, "/long", long.addr()).expect("/long came back")["ttl_left_s"]
        .as_u64()
        .expect("time left");
    assert!((1..=600).contains(&left), "{left}");
    assert!(row(&admin, "/plain", plain.addr()).is_some());
    assert_eq!(
        get(second.addr(), "/short/x").status,
        503,
        "no route: nothing matches"
    );
    assert_eq!(served_by(&get(second.addr(), "/long/x")), "long");
}

/// An expiry the state file cannot take is retried every tick (200 ms) but logged once per
/// 30 s, not once per tick; the target keeps routing meanwhile, and once the file can be saved
/// again the expiry goes through and says so.
#[test]
fn an_expiry_that_cannot_be_saved_is_logged_once_and_applied_when_it_can() {
    const FAILED: &str = "expired registrations not removed";
    let dir = ScratchDir::new("ttl-unsaved");
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).expect("state dir");
    let file = sub.join("state.json");
    let state = file.to_str().expect("utf-8 path");
    let b = Backend::start("unsaved");
    let lb = lb(1, &[], &["--state", state]);
    let admin = lb.admin();
    assert_eq!(
        admin.register_raw(&with_ttl("/svc", b.addr(), 1)).status,
        201
    );
    std::fs::remove_dir_all(&sub).expect("state dir removed");

    lb.wait_for_stderr(WAIT, &[FAILED]);
    // Six ticks or more after the first failure: still one line, and the target still routes.
    let first = std::time::Instant::now();
    while first.elapsed() < Duration::from_millis(1_200) {
        assert_eq!(served_by(&get(lb.addr(), "/svc/x")), "unsaved");
    }
    assert_eq!(lb.stderr().matches(FAILED).count(), 1, "{}", lb.stderr());

    std::fs::create_dir(&sub).expect("state dir back");
    lb.wait_for_stderr(WAIT, &["saved and removed again", "registration expired"]);
    assert!(
        row(&admin, "/svc", b.addr()).is_none(),
        "the expiry went through"
    );
    assert!(file.exists(), "and was saved");
}
