//! Host names as route targets (issue 10 point 3): `--route /=localhost:PORT` and a file's
//! `targets = ["localhost:PORT"]` route to the backend, the resolution is logged with the name
//! and its addresses, a reload resolves again, and a name that does not resolve is a config
//! error naming it (exit 2 at start; at reload the running routes stay).

use crate::{bin, lb, served_by, WAIT};
use lb_testkit::{get, poll_until, run_args, run_to_exit, Backend, LbProcess, ScratchDir};

fn localhost(b: &Backend) -> String {
    format!("localhost:{}", b.addr().port())
}

#[test]
fn a_route_by_host_name_routes_and_logs_its_addresses() {
    let a = Backend::start("a");
    let route = format!("/=localhost:{}", a.addr().port());
    let lb = lb(1, &[], &["--route", &route]);
    assert_eq!(served_by(&get(lb.addr(), "/x")), "a");
    assert_eq!(a.requests().len(), 1);
    let log = lb.wait_for_stderr(WAIT, &["resolved host name localhost"]);
    assert!(
        log.contains(&format!("localhost to {}", a.addr())),
        "the log names the name and the address:\n{log}"
    );
}

#[test]
fn a_file_target_by_host_name_is_resolved_again_on_reload() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let dir = ScratchDir::new("host-names");
    let file = dir.join("lb.toml");
    let text = |target: &str| {
        format!(
            "listen = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\nworkers = 1\npin = false\n\
             [[route]]\nprefix = \"/\"\ntargets = [\"{target}\"]\n"
        )
    };
    std::fs::write(&file, text(&localhost(&a))).unwrap();
    let mut lb = LbProcess::start(bin(), &["run", "--config", file.to_str().expect("utf-8")]);
    assert_eq!(served_by(&get(lb.addr(), "/")), "a");

    std::fs::write(&file, text(&localhost(&b))).unwrap();
    lb.process().signal("HUP");
    let addr = lb.addr();
    poll_until(WAIT, "b after the reload", || {
        let by = get(addr, "/").header("X-Backend").map(String::from);
        if by.as_deref() == Some("b") {
            Ok(())
        } else {
            Err(by)
        }
    });

    std::fs::write(&file, text("no-such-host.invalid:80")).unwrap();
    lb.process().signal("HUP");
    let log = lb.wait_for_stderr(WAIT, &["no-such-host.invalid:80"]);
    assert!(log.contains("cannot resolve"), "{log}");
    assert_eq!(
        served_by(&get(lb.addr(), "/")),
        "b",
        "the running routes stay"
    );
}

#[test]
fn a_host_name_that_does_not_resolve_exits_2_naming_it() {
    let args = run_args(1, &[], &["--route", "/api=no-such-host.invalid:80"]);
    let f = run_to_exit(bin(), &args, WAIT);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr);
    assert!(
        f.stderr
            .contains("route /api: cannot resolve target \"no-such-host.invalid:80\""),
        "{}",
        f.stderr
    );
    assert!(f.stdout.is_empty(), "{:?}", f.stdout);
}
