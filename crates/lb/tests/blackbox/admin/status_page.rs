//! The status page `GET /` in a real headless browser (issue 15): Debian's chromium through
//! chromedriver (`lb_testkit::webdriver`). What is asserted is the rendered DOM, after the page's
//! own script fetched `/stats` and built its rows: routes and target addresses are there, a
//! registered target appears within 3 s and a deregistered one goes, and with `--admin-token`
//! only the prompt shows until the token is typed.
//!
//! Each test saves a screenshot under `target/test-artifacts/` (docs/img/status.png is one).

use crate::{backends, lb, served_by};
use lb_testkit::serde_json::{json, Value};
use lb_testkit::webdriver::Browser;
use lb_testkit::{get, poll_until, LbProcess, WAIT};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the page may take to show a registry change (the figure).
const FOLLOWS: Duration = Duration::from_secs(3);

/// The browser's deadline for a first render: chromium starting on a loaded 2-core machine.
const FIRST_RENDER: Duration = Duration::from_secs(60);

/// What the page rendered: route names, target addresses, whether the prompt and the data show.
const RENDERED: &str = "
    const text = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent);
    return {
        routes: text('#routes section.route .name'),
        targets: text('#routes tr.target td.addr'),
        prompt: !document.getElementById('login').hidden,
        data: !document.getElementById('main').hidden,
        workers: document.querySelectorAll('#workers tbody tr').length,
        rps: text('#routes section.route .rate'),
        sparkline: Math.min(...[...document.querySelectorAll('#routes polyline')]
            .map((p) => p.getAttribute('points').split(' ').length)),
        render_ms: Number(document.body.dataset.renderMs || 'NaN'),
    };";

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Saves `png` as `target/test-artifacts/NAME.png`.
fn save(name: &str, png: &[u8]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    eprintln!("screenshot: {}", path.display());
}

/// Requests sent in the background until dropped, so that rates and sparklines move.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(lb: &LbProcess, paths: &'static [&'static str]) -> Traffic {
        let (stop, addr) = (Arc::new(AtomicBool::new(false)), lb.addr());
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for i in 0.. {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let _ = get(addr, paths[i % paths.len()]);
                // Phases of heavier and lighter load, so that sparklines have a shape.
                if i % 4 == 0 {
                    std::thread::sleep(Duration::from_millis(2 + 4 * ((i / 600) % 3) as u64));
                }
            }
        });
        Traffic {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An address nothing listens on (bound once, then closed).
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

#[test]
fn the_page_shows_routes_and_targets_and_follows_registrations() {
    let Some(browser) = Browser::start(1360, 1020) else {
        return;
    };
    let bs = backends(&["a", "b", "c", "d"]);
    let (a, b, c, d) = (bs[0].addr(), bs[1].addr(), bs[2].addr(), bs[3].addr());
    // Active checks too, so that targets show their last check.
    let checks = ["--health-check", "/healthz", "--health-interval", "1s"];
    let lb = lb(2, &[("/api", &[a, b]), ("/web", &[c])], &checks);
    let admin = lb.admin();
    admin.register_ok("/static", d);
    let dead = dead_addr();
    admin.register_ok("/web", dead);
    // Once a sample has seen it registered, requests to /web reach the dead target, whose
    // connect fails (retried on c) and takes it down: the page then lists a fall.
    poll_until(WAIT, "the registration sampled", || {
        let s = admin.call("GET", "/stats", b"").json();
        let changes = s["changes"].to_string();
        changes
            .contains(&dead.to_string())
            .then_some(())
            .ok_or(changes)
    });
    for _ in 0..2 {
        let _ = get(lb.addr(), "/web/");
    }
    served_by(&get(lb.addr(), "/api/"));
    let _traffic = Traffic::start(&lb, &["/api/users", "/api/orders", "/web/", "/static/x"]);

    browser.open(&format!("http://{}/", lb.admin_addr()));
    let want: Vec<String> = [a, b, c, dead, d].iter().map(|t| t.to_string()).collect();
    poll_until(FIRST_RENDER, "routes and targets in the DOM", || {
        let seen = browser.run(RENDERED);
        let (routes, targets) = (strings(&seen["routes"]), strings(&seen["targets"]));
        let all = ["/api", "/static", "/web"]
            .iter()
            .all(|r| routes.iter().any(|x| x == r))
            && want.iter().all(|t| targets.contains(t));
        if all && seen["data"] == true && seen["prompt"] == false && seen["workers"] == 2 {
            Ok(())
        } else {
            Err(seen)
        }
    });

    let extra = dead_addr();
    admin.register_ok("/api", extra);
    poll_until(FOLLOWS, "the registered target in the DOM", || {
        let targets = strings(&browser.run(RENDERED)["targets"]);
        targets
            .contains(&extra.to_string())
            .then_some(())
            .ok_or(targets)
    });
    admin.deregister_ok("/api", extra);
    poll_until(FOLLOWS, "the deregistered target gone from the DOM", || {
        let targets = strings(&browser.run(RENDERED)["targets"]);
        (!targets.contains(&extra.to_string()))
            .then_some(())
            .ok_or(targets)
    });

    // Rates have moved by now (the traffic thread): wait until the page shows them and every
    // sparkline has a quarter of its minute, then keep the picture.
    poll_until(
        FIRST_RENDER,
        "request rates and sparklines on the page",
        || {
            let seen = browser.run(RENDERED);
            let rps = strings(&seen["rps"]);
            let moving = rps
                .iter()
                .any(|r| !r.starts_with("0.0 ") && r.contains("p99 ") && !r.contains("p99 –"));
            if moving && seen["sparkline"].as_u64() >= Some(15) {
                Ok(())
            } else {
                Err(seen)
            }
        },
    );
    save("status", &browser.screenshot());

    // What other features add to /stats (virtual hosts, policies, cluster mode) is rendered
    // once present: the page's own render() fed today's /stats with those fields added.
    let mut stats = admin.call("GET", "/stats", b"").json();
    stats["cluster"] = json!({"node": "node-a", "etcd": "http://127.0.0.1:2379",
                              "connected": true, "revision": 42});
    stats["routes"][0]["host"] = json!("api.example.com");
    stats["routes"][0]["balance"] = json!("least_conn");
    stats["routes"][0]["targets"][0]["weight"] = json!(5);
    stats["routes"][0]["targets"][0]["in_flight"] = json!(7);
    let seen = browser.run_with(
        "clearTimeout(timer);
         render(arguments[0]);
         const row = document.querySelector('#routes tr.target');
         return {
             about: document.getElementById('about').textContent,
             head: document.querySelector('#routes section.route h2').textContent,
             cells: [...row.children].map((td) => td.textContent),
             in_flight_shown: getComputedStyle(row.querySelector('td.if')).display !== 'none',
         };",
        &[stats],
    );
    let about = seen["about"].as_str().unwrap_or_default();
    assert!(
        about.contains("node-a") && about.contains("connected") && about.contains("rev 42"),
        "{seen}"
    );
    let head = seen["head"].as_str().unwrap_or_default();
    assert!(
        head.contains("api.example.com/api") && head.contains("least_conn"),
        "{seen}"
    );
    let cells = strings(&seen["cells"]);
    assert_eq!((cells[3].as_str(), cells[4].as_str()), ("5", "7"), "{seen}");
    assert_eq!(seen["in_flight_shown"], true, "{seen}");
}

/// 1,000 targets on 100 routes: every row is rendered, and an update (rows reused, only changed
/// cells written) takes well under the page's one-second poll, so the page never freezes. A
/// prefix holding markup is shown as text.
#[test]
fn the_page_renders_a_thousand_targets_without_freezing() {
    let Some(browser) = Browser::start(1200, 900) else {
        return;
    };
    let lb = lb(1, &[], &[]);
    let admin = lb.admin();
    for i in 0..1000u16 {
        let target = SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8 + 1], 8000));
        admin.register_ok(&format!("/svc{}", i % 100), target);
    }
    // A prefix may hold markup (only whitespace, controls, `?` and `#` are refused): it must
    // show as text, never become elements.
    let markup = "/x<b>y</b><img/src=x/onerror=document.title='owned'>";
    admin.register_ok(markup, SocketAddr::from(([10, 9, 9, 9], 80)));
    browser.open(&format!("http://{}/", lb.admin_addr()));
    let first = poll_until(FIRST_RENDER, "1,000 target rows", || {
        let seen = browser.run(RENDERED);
        let rows = seen["targets"].as_array().map_or(0, Vec::len);
        if rows == 1001 && seen["routes"].as_array().map(Vec::len) == Some(101) {
            Ok(seen["render_ms"].as_f64().unwrap_or(f64::NAN))
        } else {
            Err(rows)
        }
    });
    // Wait for an update after the first full render (the status line names the time of each
    // update), then read what it cost.
    const LAST_UPDATE: &str = "return {at: document.getElementById('state').textContent,
                                       ms: Number(document.body.dataset.renderMs)};";
    let at = browser.run(LAST_UPDATE)["at"].clone();
    let update = poll_until(FIRST_RENDER, "a later update", || {
        let seen = browser.run(LAST_UPDATE);
        if seen["at"] != at {
            Ok(seen["ms"].as_f64().unwrap_or(f64::NAN))
        } else {
            Err(seen)
        }
    });
    eprintln!("1,000 targets: first render {first} ms, an update {update} ms");
    let injected = browser.run(
        "return {b: document.querySelectorAll('#routes b, #routes img').length,
                 title: document.title,
                 names: [...document.querySelectorAll('#routes .name')].map((e) => e.textContent)};",
    );
    assert_eq!(injected["b"], 0, "markup in a prefix became elements");
    assert_eq!(injected["title"], "lb status");
    assert!(
        strings(&injected["names"]).iter().any(|n| n == markup),
        "{injected}"
    );
    // Half the poll interval: generous for a loaded machine, far from a freeze.
    assert!(update < 500.0, "an update of 1,000 rows took {update} ms");
    save("status-1000", &browser.screenshot());
}

#[test]
fn with_a_token_only_the_prompt_shows_until_it_is_typed() {
    let Some(browser) = Browser::start(1200, 700) else {
        return;
    };
    let bs = backends(&["a"]);
    let lb = lb(
        1,
        &[("/api", &[bs[0].addr()])],
        &["--admin-token", "s3cret-7"],
    );
    browser.open(&format!("http://{}/", lb.admin_addr()));
    poll_until(FIRST_RENDER, "the token prompt alone", || {
        let seen = browser.run(RENDERED);
        let alone = seen["prompt"] == true && seen["data"] == false;
        if alone && strings(&seen["targets"]).is_empty() {
            Ok(())
        } else {
            Err(seen)
        }
    });
    save("status-prompt", &browser.screenshot());

    browser.type_into("#token", "wrong\n");
    poll_until(FIRST_RENDER, "a refused token asked again", || {
        let seen = browser.run(
            "return {prompt: !document.getElementById('login').hidden,
                     msg: document.getElementById('loginmsg').textContent,
                     stored: sessionStorage.getItem('lb-admin-token')};",
        );
        let refused = seen["prompt"] == true && seen["msg"] != "" && seen["stored"].is_null();
        refused.then_some(()).ok_or(seen)
    });

    browser.type_into("#token", "s3cret-7\n");
    let addr = bs[0].addr().to_string();
    poll_until(FIRST_RENDER, "the data once the token is typed", || {
        let seen = browser.run(RENDERED);
        let shown = seen["data"] == true && seen["prompt"] == false;
        if shown && strings(&seen["targets"]).contains(&addr) {
            Ok(())
        } else {
            Err(seen)
        }
    });
    let stored = browser.run("return sessionStorage.getItem('lb-admin-token');");
    assert_eq!(stored, "s3cret-7", "kept for the tab");
}
