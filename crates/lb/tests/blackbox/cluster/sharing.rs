//! One registry, many nodes: a registration on node A routes on node B, how fast that is, ttl
//! leases expiring on every node, and a node that was down coming back with everything.

use super::{cluster, etcd_bin, node, percentile, wait_connected, wait_revision, written_at};
use crate::{lb, served_by, WAIT};
use lb_testkit::serde_json::Value;
use lb_testkit::{get, poll_until, wait_until, Backend, EtcdProcess, ScratchDir};
use std::time::{Duration, Instant};

#[test]
fn a_registration_on_one_node_routes_on_the_other_and_a_deregistration_everywhere() {
    let Some(etcd_bin) = etcd_bin() else { return };
    let etcd = EtcdProcess::start(&etcd_bin, &[]);
    let backend = Backend::start("x");
    let a = node(&etcd.url(), "a", &[]);
    let b = node(&etcd.url(), "b", &[]);

    let r = a.admin().register("/svc", backend.addr());
    assert_eq!(r.status, 201, "{}", r.text());
    let revision = written_at(&r);
    assert_eq!(
        cluster(&a.admin())["revision"].as_i64(),
        Some(revision),
        "A answered after its own watch applied it"
    );
    wait_revision(&b.admin(), revision);
    assert_eq!(served_by(&get(b.addr(), "/svc/x")), "x");
    assert_eq!(served_by(&get(a.addr(), "/svc/x")), "x");
    assert_eq!(backend.requests().len(), 2);
    let again = a.admin().register("/svc", backend.addr());
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(b.admin().target_set(), a.admin().target_set());
    assert_eq!(a.admin().target_set().len(), 1, "registered once");
    let heavier = format!(
        r#"{{"path":"/svc","ip":"127.0.0.1","port":{},"weight":5}}"#,
        backend.port()
    );
    let reweighed = b.admin().register_raw(&heavier);
    assert_eq!(reweighed.status, 200, "{}", reweighed.text());
    wait_revision(&a.admin(), written_at(&reweighed));
    assert_eq!(
        a.admin().targets()[0]["weight"],
        5,
        "the new weight reached A"
    );

    let gone = b.admin().deregister("/svc", backend.addr());
    assert_eq!(gone.status, 200, "{}", gone.text());
    wait_revision(&a.admin(), written_at(&gone));
    assert_eq!(get(a.addr(), "/svc/x").status, 503, "no route left on A");
    assert_eq!(get(b.addr(), "/svc/x").status, 503, "no route left on B");
    assert_eq!(b.admin().deregister("/svc", backend.addr()).status, 404);
    assert_eq!(
        backend.requests().len(),
        2,
        "nothing reached the backend after it left"
    );

    let view = cluster(&b.admin());
    assert_eq!(view["node"], "b");
    assert_eq!(view["etcd"][0], etcd.url());
    assert_eq!(view["connected"], true);
    let stats = b.admin().call("GET", "/stats", b"");
    assert_eq!(stats.status, 200, "{}", stats.text());
    assert_eq!(
        stats.json()["cluster"],
        cluster(&b.admin()),
        "the status page's data carries the GET /cluster body"
    );
}

/// Issue 14: p99 over 100 registrations from "A answers nothing yet" to "B applied it". The
/// issue's bound is etcd's own put-to-watch p99 + 2 ms (scripts/cluster-bench.sh measures both
/// on a release build); this debug build on a shared machine gets a generous bound.
#[test]
fn registration_to_routing_on_another_node_p99_over_100_registrations() {
    let Some(etcd_bin) = etcd_bin() else { return };
    let etcd = EtcdProcess::start(&etcd_bin, &[]);
    let backend = Backend::start("x");
    let a = node(&etcd.url(), "a", &[]);
    let b = node(&etcd.url(), "b", &[]);
    let (a_admin, b_admin) = (a.admin(), b.admin());
    let mut took = Vec::with_capacity(100);
    for i in 0..100 {
        let began = Instant::now();
        let revision = written_at(&a_admin.register(&format!("/p{i}"), backend.addr()));
        loop {
            if cluster(&b_admin)["revision"].as_i64().unwrap_or(0) >= revision {
                break;
            }
            assert!(began.elapsed() < WAIT, "B never applied registration {i}");
            std::thread::sleep(Duration::from_micros(200));
        }
        took.push(began.elapsed());
    }
    let (p50, p99) = (percentile(&mut took, 50), percentile(&mut took, 99));
    eprintln!("registration on A -> applied on B: p50 {p50:?}, p99 {p99:?}");
    assert!(p99 < Duration::from_millis(250), "p99 {p99:?}");
    assert_eq!(served_by(&get(b.addr(), "/p99")), "x");
    assert_eq!(b_admin.target_set().len(), 100);
}

#[test]
fn a_ttl_expires_on_every_node_and_a_heartbeat_on_any_node_keeps_it() {
    let Some(etcd_bin) = etcd_bin() else { return };
    let etcd = EtcdProcess::start(&etcd_bin, &[]);
    let backend = Backend::start("x");
    let a = node(&etcd.url(), "a", &[]);
    let b = node(&etcd.url(), "b", &[]);
    let body = format!(
        r#"{{"path":"/beat","ip":"127.0.0.1","port":{},"ttl":2}}"#,
        backend.addr().port()
    );
    let r = a.admin().register_raw(&body);
    assert_eq!(r.status, 201, "{}", r.text());
    wait_revision(&b.admin(), written_at(&r));

    // Heartbeats from both nodes for 3 x the ttl: it never leaves either node.
    let began = Instant::now();
    let mut last_beat = Instant::now();
    while began.elapsed() < Duration::from_secs(6) {
        for n in [&a, &b] {
            assert_eq!(
                served_by(&get(n.addr(), "/beat")),
                "x",
                "kept by its heartbeat"
            );
        }
        if last_beat.elapsed() > Duration::from_millis(500) {
            let beat = b.admin().register_raw(&body);
            assert_eq!(beat.status, 200, "{}", beat.text());
            last_beat = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // No more heartbeats: etcd's lease ends and the delete reaches both nodes.
    let stopped = Instant::now();
    for n in [&a, &b] {
        wait_until(WAIT, "the lease expires", || {
            n.admin().target_set().is_empty()
        });
    }
    let after = stopped.elapsed();
    assert!(
        after >= Duration::from_millis(1500),
        "expired {after:?} after the last heartbeat, before its ttl"
    );
    assert_eq!(get(a.addr(), "/beat").status, 503);
    assert_eq!(get(b.addr(), "/beat").status, 503);
}

#[test]
fn a_node_that_was_down_comes_back_with_every_registration_made_meanwhile() {
    let Some(etcd_bin) = etcd_bin() else { return };
    let etcd = EtcdProcess::start(&etcd_bin, &[]);
    let backend = Backend::start("x");
    let dir = ScratchDir::new("cluster-down");
    let state = dir.join("b.json");
    let state = state.to_str().expect("utf-8 path");
    let a = node(&etcd.url(), "a", &[]);
    let mut b = node(&etcd.url(), "b", &["--state", state]);
    a.admin().register_ok("/old", backend.addr());
    a.admin().register_ok("/leaves", backend.addr());
    wait_until(WAIT, "B has both", || b.admin().target_set().len() == 2);
    b.process().kill();

    let mut last = 0;
    for i in 0..20 {
        last = written_at(&a.admin().register(&format!("/new{i}"), backend.addr()));
    }
    last = last.max(written_at(&a.admin().deregister("/leaves", backend.addr())));

    let b = node(&etcd.url(), "b", &["--state", state]);
    wait_revision(&b.admin(), last);
    assert_eq!(b.admin().target_set(), a.admin().target_set());
    assert_eq!(b.admin().target_set().len(), 21);
    assert_eq!(served_by(&get(b.addr(), "/new19")), "x");
    assert_eq!(
        get(b.addr(), "/leaves").status,
        503,
        "deregistered while B was down"
    );
}

#[test]
fn with_a_state_file_a_node_starting_while_etcd_is_down_serves_its_last_registry() {
    let Some(etcd_bin) = etcd_bin() else { return };
    let mut etcd = EtcdProcess::start(&etcd_bin, &[]);
    let backend = Backend::start("x");
    let dir = ScratchDir::new("cluster-etcd-down");
    let state = dir.join("a.json");
    let state = state.to_str().expect("utf-8 path");
    let mut a = node(&etcd.url(), "a", &["--state", state]);
    a.admin().register_ok("/kept", backend.addr());
    a.process().kill();
    etcd.kill();

    let urls = etcd.url();
    let a = lb(
        2,
        &[],
        &[
            "--cluster-etcd",
            &urls,
            "--node-name",
            "a",
            "--state",
            state,
        ],
    );
    assert_eq!(cluster(&a.admin())["connected"], false);
    assert_eq!(
        served_by(&get(a.addr(), "/kept")),
        "x",
        "served from the state file"
    );
    let refused = a.admin().register("/more", backend.addr());
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(
        refused.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("etcd")),
        "{}",
        refused.text()
    );

    etcd.restart();
    wait_connected(&a.admin(), true);
    let r = a.admin().register("/more", backend.addr());
    assert_eq!(r.status, 201, "{}", r.text());
    poll_until(WAIT, "both routes", || {
        let set = a.admin().target_set();
        if set.len() == 2 {
            Ok(())
        } else {
            Err(set)
        }
    });
}

/// Without `--cluster-etcd`, `GET /cluster` is a 404 that says so; a bad cluster flag stops lb
/// with exit 2 and a sentence naming the flag.
#[test]
fn cluster_mode_off_and_bad_cluster_flags() {
    let plain = lb(1, &[], &[]);
    let r = plain.admin().call("GET", "/cluster", b"");
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains("cluster mode"), "{}", r.text());
    let table: [(&[&str], &str); 3] = [
        (
            &["--cluster-etcd", "https://127.0.0.1:2379"],
            "--cluster-etcd",
        ),
        (
            &[
                "--cluster-etcd",
                "http://127.0.0.1:2379",
                "--cluster-prefix",
                "lb",
            ],
            "--cluster-prefix",
        ),
        (
            &[
                "--cluster-etcd",
                "http://127.0.0.1:2379",
                "--node-name",
                "a b",
            ],
            "--node-name",
        ),
    ];
    for (flags, named) in table {
        let mut args = vec!["run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"];
        args.extend_from_slice(flags);
        let f = lb_testkit::run_to_exit(crate::bin(), &args, WAIT);
        assert_eq!(f.status.code(), Some(2), "{flags:?}: {}", f.stderr);
        assert!(f.stderr.contains(named), "{flags:?}: {}", f.stderr);
    }
}

/// Two nodes registering the same target at once, with different weights: exactly one `201`,
/// every other answer a `200`, and both nodes end with the weight of etcd's last write.
#[test]
fn concurrent_registrations_of_one_target_on_two_nodes_lose_no_write() {
    let Some(etcd_bin) = etcd_bin() else { return };
    let etcd = EtcdProcess::start(&etcd_bin, &[]);
    let backend = Backend::start("x");
    let a = node(&etcd.url(), "a", &[]);
    let b = node(&etcd.url(), "b", &[]);
    let port = backend.port();
    let threads: Vec<_> = [a.admin(), b.admin(), a.admin(), b.admin()]
        .into_iter()
        .enumerate()
        .map(|(i, admin)| {
            std::thread::spawn(move || {
                (0..10)
                    .map(|k| {
                        let w = 1 + i * 10 + k;
                        let body = format!(
                            r#"{{"path":"/race","ip":"127.0.0.1","port":{port},"weight":{w}}}"#
                        );
                        admin.register_raw(&body).status
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let statuses: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 201)),
        "{statuses:?}"
    );
    let (stored, revision) = etcd
        .get(&format!("/lb/targets/_/%2Frace/127.0.0.1:{port}"))
        .expect("the key exists");
    for n in [&a, &b] {
        wait_revision(&n.admin(), revision);
        let weight = n.admin().targets()[0]["weight"].as_u64().expect("weight");
        assert!(
            stored.contains(&format!("\"weight\":{weight},")),
            "{stored} vs {weight}"
        );
    }
}

/// The `lb_cluster_*` series move with the watch, and promtool finds the text clean.
#[test]
fn cluster_metrics_move_and_promtool_finds_them_clean() {
    let Some(etcd_bin) = etcd_bin() else { return };
    let etcd = EtcdProcess::start(&etcd_bin, &[]);
    let backend = Backend::start("x");
    let a = node(&etcd.url(), "a", &[]);
    let b = node(&etcd.url(), "b", &[]);
    let revision = written_at(&a.admin().register("/m", backend.addr()));
    wait_revision(&b.admin(), revision);
    let text = b.admin().call("GET", "/metrics", b"").text();
    let sample = |s| lb_testkit::metric_sample(&text, s);
    assert_eq!(sample("lb_cluster_connected"), 1.0);
    assert_eq!(sample("lb_cluster_revision"), revision as f64);
    assert_eq!(sample("lb_cluster_events_total"), 1.0);
    assert_eq!(sample("lb_cluster_resyncs_total"), 1.0);
    assert_eq!(sample("lb_cluster_reconnects_total"), 0.0);
    let lag = sample("lb_cluster_watch_lag_seconds");
    assert!((0.0..5.0).contains(&lag), "{lag}");
    let Some(said) = lb_testkit::tool::promtool_check(&text) else {
        return;
    };
    assert!(said.is_empty(), "promtool: {said}\n{text}");
}

/// Round robin is exact per node, and each node starts at an offset from its name: with three
/// targets, node "a" starts at the first (its seed is 0 mod 3) and node "b" at the second
/// (1 mod 3; lb-cluster's `seeds_spread_names_over_the_targets` pins both).
#[test]
fn each_node_runs_exact_round_robin_from_an_offset_of_its_name() {
    let Some(etcd_bin) = etcd_bin() else { return };
    let etcd = EtcdProcess::start(&etcd_bin, &[]);
    let targets = crate::backends(&["x", "y", "z"]);
    let a = node(&etcd.url(), "a", &[]);
    let b = node(&etcd.url(), "b", &[]);
    let mut last = 0;
    for t in &targets {
        last = written_at(&a.admin().register("/rr", t.addr()));
    }
    wait_revision(&b.admin(), last);
    let picks = |n: &lb_testkit::LbProcess| -> Vec<String> {
        (0..6).map(|_| served_by(&get(n.addr(), "/rr"))).collect()
    };
    assert_eq!(picks(&a), ["x", "y", "z", "x", "y", "z"]);
    assert_eq!(picks(&b), ["y", "z", "x", "y", "z", "x"]);
}

/// A host-bound registration on node A is a host-bound route on node B: requests with that
/// Host reach it, others fall through to the host-less route; deregistering it on B (with its
/// host) removes it from A.
#[test]
fn a_host_bound_registration_routes_by_host_on_every_node() {
    let Some(etcd_bin) = etcd_bin() else { return };
    let etcd = EtcdProcess::start(&etcd_bin, &[]);
    let (api, plain) = (Backend::start("api"), Backend::start("plain"));
    let a = node(&etcd.url(), "a", &[]);
    let b = node(&etcd.url(), "b", &[]);
    let bound = format!(
        r#"{{"host":"api.test","path":"/svc","ip":"127.0.0.1","port":{}}}"#,
        api.port()
    );
    let r = a.admin().register_raw(&bound);
    assert_eq!(r.status, 201, "{}", r.text());
    let r = a.admin().register("/svc", plain.addr());
    assert_eq!(r.status, 201, "{}", r.text());
    wait_revision(&b.admin(), written_at(&r));
    let via = |lb: &lb_testkit::LbProcess, host: &str| {
        let raw = lb_testkit::request(
            "GET",
            "/svc/x",
            &[("Host", host), ("Connection", "close")],
            b"",
        );
        lb_testkit::send_raw(lb.addr(), &raw)
    };
    assert_eq!(served_by(&via(&b, "api.test")), "api");
    assert_eq!(served_by(&via(&b, "other.test")), "plain");
    let targets = b.admin().targets();
    let hosts: Vec<&Value> = targets
        .as_array()
        .expect("/targets is a list")
        .iter()
        .map(|t| &t["host"])
        .collect();
    assert!(hosts.contains(&&Value::from("api.test")), "{hosts:?}");

    let unbind = format!(
        r#"{{"host":"api.test","path":"/svc","ip":"127.0.0.1","port":{}}}"#,
        api.port()
    );
    let gone = b.admin().call("POST", "/deregister", unbind.as_bytes());
    assert_eq!(gone.status, 200, "{}", gone.text());
    wait_revision(&a.admin(), written_at(&gone));
    assert_eq!(
        served_by(&via(&a, "api.test")),
        "plain",
        "the host-bound route left A"
    );
}
