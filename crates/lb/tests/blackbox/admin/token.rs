//! Admin security (issue 5 "Observability"): with `--admin-token T`, every control-plane call
//! except `/healthz` needs `Authorization: Bearer T`; the data port is not affected.

use crate::{backends, lb, served_by};
use lb_testkit::{get, request, send_raw, target_json};

#[test]
fn admin_token_guards_every_call_but_healthz() {
    let bs = backends(&["a"]);
    let lb = lb(1, &[], &["--admin-token", "t0ken-42"]);
    let admin = lb.admin();
    let body = target_json("/", bs[0].addr());

    let refused = admin.register_raw(&body);
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert!(refused
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Bearer")));
    for path in ["/targets", "/metrics"] {
        assert_eq!(admin.call("GET", path, b"").status, 401, "{path}");
    }
    assert_eq!(admin.call("GET", "/healthz", b"").status, 200);

    let call = |method: &str, path: &str, auth: &str, body: &str| {
        send_raw(
            admin.addr(),
            &request(
                method,
                path,
                &[("Authorization", auth), ("Connection", "close")],
                body.as_bytes(),
            ),
        )
    };
    assert_eq!(
        call("POST", "/register", "Bearer t0ken-4", &body).status,
        401
    );
    assert_eq!(
        call("POST", "/register", "Basic t0ken-42", &body).status,
        401
    );
    assert_eq!(
        call("POST", "/register", "Bearer t0ken-42", &body).status,
        201
    );
    let listed = call("GET", "/targets", "Bearer t0ken-42", "");
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json().as_array().map(Vec::len), Some(1));
    assert_eq!(call("GET", "/metrics", "Bearer t0ken-42", "").status, 200);

    // The data plane needs no token.
    assert_eq!(served_by(&get(lb.addr(), "/")), "a");
}
