//! A zero-downtime upgrade of a cluster node: the new lb takes over the registry (round-robin
//! positions included), starts its own watch, and the re-read that follows changes nothing that
//! etcd still holds, so the order goes on where the old lb stopped.

use super::{etcd_bin, node, wait_connected, wait_revision, written_at};
use crate::{backends, bin, served_by, WAIT};
use lb_testkit::{get, run_args, EtcdProcess, LbProcess, ScratchDir};

#[test]
fn an_upgraded_node_keeps_its_round_robin_position_and_its_cluster_link() {
    let Some(etcd_bin) = etcd_bin() else { return };
    let etcd = EtcdProcess::start(&etcd_bin, &[]);
    let dir = ScratchDir::new("cluster-upgrade");
    let sock = dir.join("upgrade.sock");
    let sock = sock.to_str().expect("utf-8 path");
    let targets = backends(&["x", "y", "z"]);
    let urls = etcd.url();
    let cluster_flags = ["--cluster-etcd", urls.as_str(), "--node-name", "a"];
    let mut old = node(&urls, "a", &["--upgrade-socket", sock]);
    for t in &targets {
        old.admin().register_ok("/rr", t.addr());
    }
    let serve = |n: &LbProcess, k: usize| -> Vec<String> {
        (0..k).map(|_| served_by(&get(n.addr(), "/rr"))).collect()
    };
    assert_eq!(serve(&old, 4), ["x", "y", "z", "x"]);

    let mut flags = cluster_flags.to_vec();
    flags.extend(["--upgrade-socket", sock, "--takeover"]);
    let new = LbProcess::start(bin(), &run_args(2, &[], &flags));
    assert_eq!(
        old.wait_exit(WAIT).code(),
        Some(0),
        "old lb:\n{}",
        old.stderr()
    );
    wait_connected(&new.admin(), true);
    assert_eq!(serve(&new, 2), ["y", "z"], "the order goes on");

    let more = backends(&["w"]);
    let r = new.admin().register("/more", more[0].addr());
    assert_eq!(r.status, 201, "{}", r.text());
    wait_revision(&new.admin(), written_at(&r));
    assert_eq!(served_by(&get(new.addr(), "/more")), "w");
    assert_eq!(new.admin().target_set().len(), 4);
}
