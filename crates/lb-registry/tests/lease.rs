//! Weights and leases through the registry's one door, with the wall-clock time injected: a
//! lease ends at its ttl unless renewed, an expiry follows the deregistration rules, a state
//! file keeps the lease's end, and a bad value changes nothing.

use lb_registry::{
    Expiry, Export, ExportedTarget, Holder, Lease, Registered, Registration, Registry,
    RegistryError, Scope, Terms,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn at(ms: u64) -> SystemTime {
    t0() + Duration::from_millis(ms)
}

fn terms(weight: Option<u16>, ttl_s: Option<u64>) -> Terms {
    Terms {
        weight,
        ttl: ttl_s.map(Duration::from_secs),
    }
}

fn register(reg: &Registry, path: &str, port: u16, t: Terms, now: SystemTime) -> Registered {
    reg.apply(&Registration::api(path, addr(port), t, now))
        .expect("a valid registration")
}

fn ports(reg: &Registry) -> Vec<(String, u16)> {
    reg.targets()
        .iter()
        .map(|t| (t.path.clone(), t.addr.port()))
        .collect()
}

#[test]
fn a_lease_ends_at_its_ttl_and_its_prefix_goes_with_it() {
    let reg = Registry::new(1);
    register(&reg, "/", 1, Terms::default(), t0());
    register(&reg, "/svc", 2, terms(None, Some(2)), t0());
    // Each row: ms after the registration, expiry due, what is left afterwards.
    type Left = &'static [(&'static str, u16)];
    let table: [(u64, bool, Left); 3] = [
        (1_000, false, &[("/", 1), ("/svc", 2)]),
        (1_999, false, &[("/", 1), ("/svc", 2)]),
        (2_000, true, &[("/", 1)]),
    ];
    for (ms, due, left) in table {
        assert_eq!(reg.expiry_due(at(ms)), due, "{ms} ms");
        let expired = reg.apply(&Expiry { now: at(ms) }).unwrap();
        assert_eq!(expired.len(), usize::from(due), "{ms} ms");
        let want: Vec<_> = left.iter().map(|(p, n)| (p.to_string(), *n)).collect();
        assert_eq!(ports(&reg), want, "{ms} ms");
    }
    let snap = reg.snapshot();
    assert_eq!(snap.lookup("/svc/x").unwrap().route.prefix(), "/");
}

#[test]
fn registering_again_renews_and_replaces_only_what_it_gives() {
    let reg = Registry::new(1);
    assert_eq!(
        register(&reg, "/a", 1, terms(Some(5), Some(2)), t0()),
        Registered::New
    );
    // Each row: ms, the terms sent, the outcome, then the stored weight, ttl and expiry.
    let table = [
        (1_500, terms(None, None), Registered::Renewed, 5, 2, 3_500),
        (1_500, terms(None, None), Registered::Existing, 5, 2, 3_500),
        (
            2_000,
            terms(Some(7), None),
            Registered::Renewed,
            7,
            2,
            4_000,
        ),
        (
            2_000,
            terms(None, Some(10)),
            Registered::Renewed,
            7,
            10,
            12_000,
        ),
    ];
    for (ms, sent, outcome, weight, ttl, expires) in table {
        assert_eq!(register(&reg, "/a", 1, sent, at(ms)), outcome, "{sent:?}");
        let row = &reg.targets()[0];
        assert_eq!(row.weight, weight, "{sent:?}");
        assert_eq!(
            row.lease,
            Some(Lease {
                ttl: Duration::from_secs(ttl),
                expires: at(expires)
            }),
            "{sent:?}"
        );
    }
    assert!(reg.apply(&Expiry { now: at(11_999) }).unwrap().is_empty());
    assert_eq!(
        reg.apply(&Expiry { now: at(12_000) }).unwrap(),
        [("/a".to_string(), addr(1))]
    );
}

#[test]
fn an_expired_lease_keeps_a_target_the_configuration_names_too() {
    let reg = Registry::new(1);
    reg.register_as("/c", addr(1), Holder::Config).unwrap();
    assert_eq!(
        register(&reg, "/c", 1, terms(None, Some(1)), t0()),
        Registered::Adopted
    );
    assert!(reg.apply(&Expiry { now: at(1_000) }).unwrap().is_empty());
    let row = &reg.targets()[0];
    assert_eq!((row.addr, row.lease), (addr(1), None));
    assert_eq!(
        reg.routes()[0].config_only,
        [addr(1)],
        "the API's claim went"
    );
}

#[test]
fn a_bad_weight_or_ttl_changes_nothing() {
    let reg = Registry::new(1);
    register(&reg, "/a", 1, terms(Some(3), None), t0());
    let before = reg.targets();
    let generation = reg.generation();
    let bad = [
        (terms(Some(0), None), "weight"),
        (terms(Some(1001), None), "weight"),
        (terms(None, Some(0)), "ttl"),
        (terms(None, Some(86_401)), "ttl"),
    ];
    for (sent, field) in bad {
        for port in [1, 2] {
            let refused = reg.apply(&Registration::api("/a", addr(port), sent, t0()));
            match refused {
                Err(RegistryError::InvalidValue(m)) => assert!(m.starts_with(field), "{m}"),
                other => panic!("{sent:?}: {other:?}"),
            }
        }
    }
    assert_eq!(reg.targets(), before);
    assert_eq!(reg.generation(), generation);
}

/// The state file keeps the lease's end as wall-clock time: read back before it, the target is
/// there with its lease and weight; after it, it is not, and its prefix neither.
#[test]
fn a_state_file_honours_a_lease_across_a_restart() {
    let reg = Registry::new(1);
    register(&reg, "/a", 1, Terms::default(), t0());
    register(&reg, "/a", 2, terms(Some(4), Some(5)), t0());
    register(&reg, "/b", 3, terms(None, Some(5)), t0());
    let json = serde_json::to_string(&reg.export(Scope::Saved)).unwrap();
    let file: Export = serde_json::from_str(&json).unwrap();
    assert!(matches!(
        file.routes[0].targets[0],
        ExportedTarget::Address(_)
    ));
    assert!(matches!(
        file.routes[0].targets[1],
        ExportedTarget::Registered(_)
    ));

    let import = |wall: SystemTime| {
        let reg = Registry::new(1);
        reg.apply(&lb_registry::Import {
            export: file.clone(),
            now: Instant::now(),
            wall,
            probed: &|_| false,
        })
        .unwrap();
        reg
    };
    let early = import(at(4_999));
    assert_eq!(
        ports(&early),
        [
            ("/a".to_string(), 1),
            ("/a".to_string(), 2),
            ("/b".to_string(), 3)
        ]
    );
    assert_eq!(early.targets()[1].weight, 4);
    assert_eq!(early.targets()[1].lease.map(|l| l.expires), Some(at(5_000)));
    let late = import(at(5_000));
    assert_eq!(ports(&late), [("/a".to_string(), 1)]);
    assert_eq!(late.routes().len(), 1, "/b went with its last target");
}
