//! The config file (issue 5 "Configuration"): `--config lb.toml` runs lb, flags override it,
//! unknown keys are errors with the key and the line (exit 2), and SIGHUP reloads the routes
//! and the timeouts without dropping a connection, while an invalid new file is rejected and the
//! old one stays.

use crate::{bin, served_by, WAIT};
use lb_testkit::{get, poll_until, run_to_exit, Backend, Conn, LbProcess, Reply, ScratchDir};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

fn config_text(routes: &[(&str, &[SocketAddr])], extra: &str) -> String {
    let mut text = String::from(
        "listen = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\nworkers = 1\npin = false\n",
    );
    text.push_str(extra);
    for (prefix, targets) in routes {
        let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        text.push_str(&format!(
            "\n[[route]]\nprefix = \"{prefix}\"\ntargets = [{}]\n",
            list.join(", ")
        ));
    }
    text
}

fn start(file: &Path, extra_flags: &[&str]) -> LbProcess {
    let mut args = vec!["run", "--config", file.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra_flags);
    LbProcess::start(bin(), &args)
}

/// `GET /targets` as `target_set` gives it: sorted (path, address) pairs.
fn target_set(targets: &[(&str, SocketAddr)]) -> Vec<(String, String)> {
    let mut set: Vec<(String, String)> = targets
        .iter()
        .map(|(path, addr)| (path.to_string(), addr.to_string()))
        .collect();
    set.sort();
    set
}

/// Writes `text` to `file`, sends SIGHUP and waits until `GET /targets` lists exactly `want`.
fn reload_to(lb: &mut LbProcess, file: &Path, text: &str, want: &[(String, String)]) {
    std::fs::write(file, text).expect("config file written");
    lb.process().signal("HUP");
    let admin = lb.admin();
    poll_until(WAIT, "routes after the reload", || {
        let now = admin.target_set();
        if now == want {
            Ok(())
        } else {
            Err(now)
        }
    });
}

/// Waits until lb logs that it applied a reload: everything the reload changes is in place.
fn wait_reloaded(lb: &LbProcess) {
    lb.wait_for_stderr(WAIT, &["configuration reloaded"]);
}

#[test]
fn a_config_file_runs_lb_and_flags_override_it() {
    let dir = ScratchDir::new("config-run");
    let file = dir.join("lb.toml");
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    std::fs::write(
        &file,
        config_text(&[("/", &[a.addr()]), ("/b", &[b.addr()])], ""),
    )
    .unwrap();
    let lb = start(&file, &["--workers", "2"]);
    assert_eq!(
        lb.workers(),
        2,
        "--workers overrides the file's workers = 1"
    );
    assert_eq!(served_by(&lb_testkit::get(lb.addr(), "/x")), "a");
    assert_eq!(served_by(&lb_testkit::get(lb.addr(), "/b/x")), "b");
    drop(lb);
    // A --route for a prefix of the file replaces that route.
    let lb = start(&file, &["--route", &format!("/={}", b.addr())]);
    assert_eq!(lb.workers(), 1);
    assert_eq!(served_by(&lb_testkit::get(lb.addr(), "/x")), "b");
}

#[test]
fn bad_config_files_exit_2_naming_the_key_and_the_line() {
    let dir = ScratchDir::new("config-bad");
    let file = dir.join("lb.toml");
    let cases = [
        (
            "listen = \"127.0.0.1:0\"\n\n[timeouts]\nconect = \"1s\"\n",
            &["line 4", "conect"][..],
        ),
        (
            "workers = 1\nlistn = \"127.0.0.1:0\"\n",
            &["line 2", "listn"][..],
        ),
        ("[health]\nrise = \"often\"\n", &["line 2", "rise"][..]),
        ("[health]\ncheck = \"no-slash\"\n", &["no-slash"][..]),
        (
            "[[route]]\nprefix = \"/a\"\ntargets = []\n",
            &["no targets"][..],
        ),
    ];
    for (text, wanted) in cases {
        std::fs::write(&file, text).unwrap();
        let f = run_to_exit(
            bin(),
            &["run", "--config", file.to_str().expect("utf-8")],
            WAIT,
        );
        assert_eq!(f.status.code(), Some(2), "{text:?}: {}", f.stderr);
        for w in wanted {
            assert!(
                f.stderr.contains(w),
                "{text:?}: stderr lacks {w:?}:\n{}",
                f.stderr
            );
        }
        assert!(!f.stdout.iter().any(|l| l.contains("listening on")));
    }
    let missing = dir.join("missing.toml");
    let f = run_to_exit(
        bin(),
        &["run", "--config", missing.to_str().expect("utf-8")],
        WAIT,
    );
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr);
    assert!(
        f.stderr.contains("cannot read the config file"),
        "{}",
        f.stderr
    );
}

#[test]
fn sighup_reloads_routes_without_dropping_a_connection() {
    let dir = ScratchDir::new("config-reload");
    let file = dir.join("lb.toml");
    let (a, b, api) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("api"),
    );
    std::fs::write(&file, config_text(&[("/", &[a.addr()])], "")).unwrap();
    let mut lb = start(&file, &[]);
    let admin = lb.admin();
    admin.register_ok("/api", api.addr()); // registered at run time: kept across reloads
    let mut kept = Conn::open(lb.addr());
    assert_eq!(served_by(&kept.get("/one")), "a");

    let want = target_set(&[("/", b.addr()), ("/api", api.addr())]);
    reload_to(
        &mut lb,
        &file,
        &config_text(&[("/", &[b.addr()])], ""),
        &want,
    );
    assert_eq!(
        served_by(&kept.get("/two")),
        "b",
        "same connection, new route"
    );

    // An invalid file is rejected and the running routes stay.
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nbogus_key = 1\n").unwrap();
    lb.process().signal("HUP");
    lb.wait_for_stderr(WAIT, &["reload rejected", "bogus_key"]);
    assert_eq!(admin.target_set(), want);
    assert_eq!(served_by(&kept.get("/three")), "b");
    assert!(lb.try_exit().is_none(), "lb keeps running");

    // A setting that needs a restart is reported, the routes still apply.
    std::fs::write(&file, config_text(&[("/", &[a.addr()])], "backlog = 128\n")).unwrap();
    lb.process().signal("HUP");
    lb.wait_for_stderr(WAIT, &["backlog", "takes a restart"]);
    assert_eq!(served_by(&kept.get("/four")), "a");
}

/// Timeouts change on SIGHUP for the next request, on a connection that stays open: a silent
/// upstream is waited for 60 s before the reload and 300 ms after it.
#[test]
fn sighup_changes_timeouts_for_the_next_request() {
    let dir = ScratchDir::new("config-timeouts");
    let file = dir.join("lb.toml");
    let silent = Backend::start_with("silent", Reply::NeverAnswer);
    let quick = Backend::start("quick");
    let routes: &[(&str, &[SocketAddr])] = &[("/", &[quick.addr()]), ("/slow", &[silent.addr()])];
    std::fs::write(
        &file,
        config_text(routes, "[timeouts]\nupstream = \"60s\"\n"),
    )
    .unwrap();
    let mut lb = start(&file, &[]);
    let mut kept = Conn::open(lb.addr());
    assert_eq!(served_by(&kept.get("/")), "quick");

    std::fs::write(
        &file,
        config_text(routes, "[timeouts]\nupstream = \"300ms\"\n"),
    )
    .unwrap();
    lb.process().signal("HUP");
    wait_reloaded(&lb);
    assert!(
        !lb.stderr().contains("takes a restart"),
        "timeouts apply live: {}",
        lb.stderr()
    );
    let started = Instant::now();
    let r = get(lb.addr(), "/slow/x");
    assert_eq!(r.status, 504, "{:?}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "504 after {:?}: the 60 s timeout was still in force",
        started.elapsed()
    );
    assert_eq!(served_by(&kept.get("/again")), "quick", "same connection");
}

/// `strip_prefix = false` on a configured route forwards the request target unchanged; other
/// routes keep stripping (the SPEC's default).
#[test]
fn a_route_can_keep_its_prefix() {
    let dir = ScratchDir::new("config-strip");
    let file = dir.join("lb.toml");
    let (keep, cut) = (Backend::start("keep"), Backend::start("cut"));
    let mut text = config_text(&[("/cut", &[cut.addr()])], "");
    text.push_str(&format!(
        "\n[[route]]\nprefix = \"/keep\"\ntargets = [\"{}\"]\nstrip_prefix = false\n",
        keep.addr()
    ));
    std::fs::write(&file, text).unwrap();
    let lb = start(&file, &[]);
    assert_eq!(served_by(&get(lb.addr(), "/keep/a?b=1")), "keep");
    assert_eq!(keep.last_request().target, "/keep/a?b=1");
    assert_eq!(served_by(&get(lb.addr(), "/cut/a?b=1")), "cut");
    assert_eq!(cut.last_request().target, "/a?b=1");
}

/// `[route.timeouts]` gives one route its own upstream timeouts: a silent upstream on `/slow`
/// gets a 504 after the route's 300 ms while the process-wide upstream timeout is 60 s.
#[test]
fn a_route_can_have_its_own_upstream_timeout() {
    let dir = ScratchDir::new("config-route-timeouts");
    let file = dir.join("lb.toml");
    let silent = Backend::start_with("silent", Reply::NeverAnswer);
    let mut text = config_text(&[], "[timeouts]\nupstream = \"60s\"\n");
    text.push_str(&format!(
        "\n[[route]]\nprefix = \"/slow\"\ntargets = [\"{}\"]\n[route.timeouts]\nupstream = \"300ms\"\n",
        silent.addr()
    ));
    std::fs::write(&file, text).unwrap();
    let lb = start(&file, &[]);
    let started = Instant::now();
    let r = get(lb.addr(), "/slow/x");
    assert_eq!(r.status, 504, "{:?}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "504 after {:?}: the route's timeout was not used",
        started.elapsed()
    );
}

/// A target the config file lists and the operator also registered through the API stays when a
/// reload drops it from the file (the state file keeps it across a restart too), while one the
/// file alone held leaves; an API deregistration removes a configured target.
#[test]
fn a_reload_keeps_targets_registered_through_the_api() {
    let dir = ScratchDir::new("config-sources");
    let (file, state) = (dir.join("lb.toml"), dir.join("state.json"));
    let state_flag = ["--state", state.to_str().expect("utf-8 path")];
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );
    std::fs::write(&file, config_text(&[("/", &[a.addr(), b.addr()])], "")).unwrap();
    let mut lb = start(&file, &state_flag);
    let admin = lb.admin();
    let r = admin.register("/", a.addr());
    assert_eq!(r.status, 200, "already served: {}", r.text());
    let saved = || std::fs::read_to_string(&state).expect("state file");
    assert!(
        saved().contains(&a.addr().to_string()),
        "on disk before the answer: {}",
        saved()
    );

    reload_to(
        &mut lb,
        &file,
        &config_text(&[("/", &[c.addr()])], ""),
        &target_set(&[("/", a.addr()), ("/", c.addr())]),
    );
    let names: Vec<String> = (0..4).map(|_| served_by(&get(lb.addr(), "/x"))).collect();
    assert_eq!(names, ["a", "c", "a", "c"], "a still served, b gone");

    // The state file holds a (the API's), not c (the file's alone).
    lb.terminate();
    assert_eq!(lb.wait_exit(WAIT).code(), Some(0), "{}", lb.stderr());
    let on_disk = saved();
    assert!(on_disk.contains(&a.addr().to_string()), "{on_disk}");
    assert!(!on_disk.contains(&c.addr().to_string()), "{on_disk}");
    std::fs::write(&file, config_text(&[("/", &[b.addr()])], "")).unwrap();
    let lb = start(&file, &state_flag);
    let admin = lb.admin();
    assert_eq!(
        admin.target_set(),
        target_set(&[("/", a.addr()), ("/", b.addr())]),
        "a from the state file, b from the file"
    );

    // The API's word beats the file's: a configured target can be deregistered.
    admin.deregister_ok("/", b.addr());
    assert_eq!(admin.target_set(), target_set(&[("/", a.addr())]));
}

/// The state file holds only what the API holds: a prefix that the config file alone created is
/// not saved, so after a restart with a file that no longer names it, its requests fall through
/// to the next shorter prefix (here `/`) rather than meeting an empty route that answers 503.
#[test]
fn a_prefix_only_the_config_file_created_is_not_saved_in_the_state_file() {
    let dir = ScratchDir::new("config-prefix-state");
    let (file, state) = (dir.join("lb.toml"), dir.join("state.json"));
    let state_flag = ["--state", state.to_str().expect("utf-8 path")];
    let (only, api, root) = (
        Backend::start("only"),
        Backend::start("api"),
        Backend::start("root"),
    );
    std::fs::write(&file, config_text(&[("/only-config", &[only.addr()])], "")).unwrap();
    let mut lb = start(&file, &state_flag);
    assert_eq!(served_by(&get(lb.addr(), "/only-config/x")), "only");
    // A registration through the API saves the registry.
    lb.admin().register_ok("/api", api.addr());
    let saved = std::fs::read_to_string(&state).expect("state file");
    assert!(!saved.contains("/only-config"), "{saved}");
    lb.terminate();
    assert_eq!(lb.wait_exit(WAIT).code(), Some(0), "{}", lb.stderr());

    std::fs::write(&file, config_text(&[("/", &[root.addr()])], "")).unwrap();
    let lb = start(&file, &state_flag);
    let mut conn = Conn::open(lb.addr());
    let reply = conn.request(b"GET /only-config/x HTTP/1.1\r\nHost: lb.test\r\n\r\n");
    assert_eq!(served_by(&reply), "root");
    assert_eq!(
        crate::head_without_request_id(&root.last_request().head),
        "GET /only-config/x HTTP/1.1\r\nHost: lb.test\r\nX-Forwarded-For: 127.0.0.1\r\n\
         X-Forwarded-Proto: http\r\nX-Forwarded-Host: lb.test\r\nVia: 1.1 lb\r\n\r\n",
        "the whole request, unrewritten: `/` rewrites nothing"
    );
    assert_eq!(
        only.request_count(),
        1,
        "only the request before the restart"
    );
    assert_eq!(
        served_by(&get(lb.addr(), "/api/x")),
        "api",
        "the API's route came back"
    );
}

/// A deregistration that cannot be saved is not applied (the `500` says "undone", as it always
/// has): a target the config file alone held is still the file's alone afterwards (not turned into an API registration), so a reload that
/// drops it removes it. The save fails for real: the state file's directory is replaced by a
/// plain file (a read-only directory would not stop root).
#[test]
fn a_deregistration_that_cannot_be_saved_leaves_a_configured_target_to_the_file() {
    let dir = ScratchDir::new("config-undo");
    let (file, state_dir) = (dir.join("lb.toml"), dir.join("state"));
    std::fs::create_dir(&state_dir).unwrap();
    let state = state_dir.join("state.json");
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    std::fs::write(&file, config_text(&[("/", &[a.addr(), b.addr()])], "")).unwrap();
    let mut lb = start(&file, &["--state", state.to_str().expect("utf-8 path")]);
    let admin = lb.admin();
    let both = target_set(&[("/", a.addr()), ("/", b.addr())]);

    let moved = dir.join("state.moved");
    std::fs::rename(&state_dir, &moved).unwrap();
    std::fs::write(&state_dir, "not a directory").unwrap();
    let r = admin.deregister("/", b.addr());
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("undone"), "{}", r.text());
    assert_eq!(admin.target_set(), both);
    std::fs::remove_file(&state_dir).unwrap();
    std::fs::rename(&moved, &state_dir).unwrap();

    reload_to(
        &mut lb,
        &file,
        &config_text(&[("/", &[a.addr()])], ""),
        &target_set(&[("/", a.addr())]),
    );
}

/// A prefix that only the config file created leaves with the reload that drops it from the
/// file: its requests fall through to the longest remaining prefix (here `/`), as after an nginx
/// or HAProxy reload, rather than meeting an empty route that answers 503 until a restart.
#[test]
fn a_reload_that_drops_a_prefix_from_the_file_lets_its_requests_fall_through() {
    let dir = ScratchDir::new("config-drop-prefix");
    let file = dir.join("lb.toml");
    let (root, gone) = (Backend::start("root"), Backend::start("gone"));
    let both: &[(&str, &[SocketAddr])] = &[("/", &[root.addr()]), ("/gone", &[gone.addr()])];
    std::fs::write(&file, config_text(both, "")).unwrap();
    let mut lb = start(&file, &[]);
    assert_eq!(served_by(&get(lb.addr(), "/gone/x")), "gone");

    let only_root = target_set(&[("/", root.addr())]);
    reload_to(
        &mut lb,
        &file,
        &config_text(&[("/", &[root.addr()])], ""),
        &only_root,
    );
    wait_reloaded(&lb);
    let log = lb.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("route removed") && l.contains("route=/gone")),
        "{log}"
    );
    let mut conn = Conn::open(lb.addr());
    let reply = conn.request(b"GET /gone/x HTTP/1.1\r\nHost: lb.test\r\n\r\n");
    assert_eq!(served_by(&reply), "root", "not a 503 from an empty /gone");
    let seen = root.last_request();
    assert_eq!(seen.target, "/gone/x", "`/` rewrites nothing");
    assert_eq!(
        crate::head_without_request_id(&seen.head),
        "GET /gone/x HTTP/1.1\r\nHost: lb.test\r\nX-Forwarded-For: 127.0.0.1\r\n\
         X-Forwarded-Proto: http\r\nX-Forwarded-Host: lb.test\r\nVia: 1.1 lb\r\n\r\n",
    );
    assert_eq!(root.request_count(), 1);
    assert_eq!(
        gone.request_count(),
        1,
        "only the request before the reload"
    );
    assert_eq!(
        lb.admin().target_set(),
        only_root,
        "nothing listed on /gone"
    );
}

/// The API's claim on a prefix goes with its last target there (SPEC part B): once the API's
/// target on `/shared` left, a reload that drops `/shared` from the file removes the prefix,
/// and its requests fall through to `/` (before issue 10 it answered 503 forever).
#[test]
fn a_reload_drops_a_prefix_the_api_no_longer_holds_a_target_on() {
    let dir = ScratchDir::new("config-keep-api-prefix");
    let file = dir.join("lb.toml");
    let (root, configured, api) = (
        Backend::start("root"),
        Backend::start("configured"),
        Backend::start("api"),
    );
    let both: &[(&str, &[SocketAddr])] =
        &[("/", &[root.addr()]), ("/shared", &[configured.addr()])];
    std::fs::write(&file, config_text(both, "")).unwrap();
    let mut lb = start(&file, &[]);
    let admin = lb.admin();
    admin.register_ok("/shared", api.addr());
    admin.deregister_ok("/shared", api.addr());

    reload_to(
        &mut lb,
        &file,
        &config_text(&[("/", &[root.addr()])], ""),
        &target_set(&[("/", root.addr())]),
    );
    wait_reloaded(&lb);
    assert_eq!(served_by(&get(lb.addr(), "/shared/x")), "root");
    assert_eq!(root.last_request().target, "/shared/x");
    assert_eq!(configured.request_count(), 0);
}
