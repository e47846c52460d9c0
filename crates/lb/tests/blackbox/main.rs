//! Black-box tests of the built `lb` binary: real processes, real sockets on 127.0.0.1, port 0.
//!
//! One folder per feature: `routing/` (which target a request goes to), `http/` (HTTP/1.1
//! through lb), `http2/` (HTTP/2 towards clients), `admin/` (the control plane), `ops/` (running lb: lifecycle, config, state,
//! respawn, upgrade, logs). Each file covers one part of the SPEC (`shared/SPEC.md`) and of the
//! issues' checklists. The helpers are `lb_testkit`'s; this file adds only the few that know the
//! binary (`bin`, `lb`) or the SPEC's answers (`served_by`, `assert_lb_error`). Tests
//! assert exact counts and exact bytes as seen by recording backends (`lb_testkit::Backend`), and
//! they synchronise on events (the ready line, a recorded request, a port that accepts), never on
//! fixed sleeps. They run in parallel: everything binds port 0, the demo too.
//!
//! One test binary (this directory) rather than one per file: one link instead of ten, which
//! matters on a 2-core CI machine.

mod admin;
mod cluster;
mod http;
mod http2;
mod ops;
mod routing;
mod tls;

use lb_testkit::{Backend, LbProcess, Response, ScratchDir};
use std::net::SocketAddr;
use std::path::Path;

pub use lb_testkit::WAIT;

/// The `lb` binary cargo built for these tests.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lb"))
}

/// `lb run` on port 0 with `workers` workers, `--no-pin`, the given routes and extra flags.
pub fn lb(workers: usize, routes: &[(&str, &[SocketAddr])], extra: &[&str]) -> LbProcess {
    LbProcess::run(bin(), workers, routes, extra)
}

/// Writes `dir/lb.toml` (listen and admin on port 0, `workers`, no pinning, then `routes`:
/// TOML `[[route]]` tables) and starts lb from it; a reload test rewrites that file.
pub fn lb_from_config(dir: &ScratchDir, workers: usize, routes: &str) -> LbProcess {
    let file = config_file(dir, workers, routes);
    LbProcess::start(bin(), &["run", "--config", file.to_str().expect("utf-8")])
}

/// Writes the config file of [`lb_from_config`] and returns its path.
pub fn config_file(dir: &ScratchDir, workers: usize, routes: &str) -> std::path::PathBuf {
    let file = dir.join("lb.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\nworkers = {workers}\npin = false\n{routes}"
    );
    std::fs::write(&file, text).expect("config written");
    file
}

/// The value of `key=` in a text log line (up to the next space; quotes kept), if it has one.
pub fn log_field<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    let needle = format!(" {key}=");
    let at = line.find(&needle)? + needle.len();
    line[at..].split(' ').next()
}

/// A head as text, less any `X-Request-ID` line (lb writes a new id on every request it
/// forwards; `ops/request_id.rs` tests them), so tests can compare the rest byte for byte.
pub fn head_without_request_id(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("X-Request-ID: "))
        .collect()
}

/// Starts one recording backend per name.
pub fn backends(names: &[&str]) -> Vec<Backend> {
    names.iter().map(|n| Backend::start(n)).collect()
}

/// The addresses of `backends`, in order.
pub fn addrs(backends: &[Backend]) -> Vec<SocketAddr> {
    backends.iter().map(Backend::addr).collect()
}

/// The `X-Backend` of a response, or a panic that shows the whole response.
pub fn served_by(r: &Response) -> String {
    match r.header("X-Backend") {
        Some(name) if r.status == 200 => name.to_string(),
        _ => panic!(
            "expected a 200 from a backend, got {} {:?} body {:?}",
            r.status,
            r.headers,
            r.text()
        ),
    }
}

/// Asserts that `r` is an error lb produced itself: this status, a `text/plain` body that is short
/// and not empty (SPEC: "Each comes with a short text/plain body saying why").
pub fn assert_lb_error(r: &Response, status: u16) {
    assert_eq!(
        r.status,
        status,
        "expected {status}, got {} {:?} body {:?}",
        r.status,
        r.headers,
        r.text()
    );
    let ct = r.header("content-type").unwrap_or("");
    assert!(
        ct.to_ascii_lowercase().starts_with("text/plain"),
        "{status} must be text/plain, got content-type {ct:?}"
    );
    assert!(
        !r.body.is_empty() && r.body.len() < 1024,
        "{status} body must be short and say why, got {:?}",
        r.text()
    );
    assert!(
        r.header("X-Backend").is_none(),
        "{status} must come from lb, not from a backend"
    );
}
