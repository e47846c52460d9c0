//! `lb demo`: lb on 127.0.0.1:8080 in front of three built-in echo backends, for a first try.
//!
//! Invariant: both of the demo's ports are checked before anything is printed, so a taken port
//! is one clear error rather than instructions for a demo that never started; port 0 is
//! replaced by the free port the check found, so the printed commands work.

use clap::Args;
use lb_config::{Config, LiveConfig, RestartConfig, StaticRoute};
use lb_runtime::{run, RunError};
use lb_socket::plain;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// `lb demo` flags.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Data-plane address.
    #[arg(long, value_name = "ADDR", value_parser = lb_config::parse_bind_addr, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Control-plane address.
    #[arg(long, value_name = "ADDR", value_parser = lb_config::parse_bind_addr, default_value = "127.0.0.1:8081")]
    admin: SocketAddr,
}

/// `addr` if it is free, with port 0 made the port the kernel picked.
fn free(addr: SocketAddr) -> Result<SocketAddr, RunError> {
    TcpListener::bind(addr)
        .and_then(|probe| probe.local_addr())
        .map_err(|e| RunError::Runtime(format!("demo: cannot listen on {addr}: {}", plain(&e))))
}

/// Starts three echo backends on loopback ports, then runs lb in front of them until a signal.
pub fn run_demo(args: &DemoArgs) -> Result<(), RunError> {
    let listen = free(args.listen)?;
    let admin = free(args.admin)?;
    let mut backends = Vec::new();
    let mut listeners = Vec::new();
    for i in 1..=3 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| RunError::Runtime(format!("cannot start echo backend: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| RunError::Runtime(format!("cannot start echo backend: {e}")))?;
        backends.push(addr);
        listeners.push((listener, Arc::<str>::from(format!("echo-{i}"))));
    }
    std::thread::Builder::new()
        .name("lb-demo-echo".to_string())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let mut tasks = Vec::new();
                for (listener, name) in listeners {
                    if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                        tasks.push(tokio::spawn(lb_echo::serve(
                            listener,
                            name,
                            std::future::pending(),
                        )));
                    }
                }
                for task in tasks {
                    let _ = task.await;
                }
            });
        })
        .map_err(|e| RunError::Runtime(format!("cannot start echo backends: {e}")))?;

    let config = Config {
        restart: RestartConfig {
            listen,
            admin,
            ..RestartConfig::default()
        },
        live: LiveConfig {
            routes: vec![StaticRoute {
                host: None,
                prefix: "/".to_string(),
                targets: backends.clone(),
                weights: Vec::new(),
                health_check: None,
                strip_prefix: true,
                connect_timeout: None,
                upstream_timeout: None,
                balance: None,
                hash_key: None,
                max_fails: None,
                fail_statuses: None,
                retries: None,
            }],
            ..LiveConfig::default()
        },
        ..Config::default()
    };
    println!("demo: three echo backends on {backends:?}, registered on \"/\"");
    println!("try:");
    println!("  curl -i http://{listen}/hello");
    println!("  for i in 1 2 3 4 5 6; do curl -s http://{listen}/ ; done");
    println!("  curl -s http://{admin}/targets");
    println!("  the status page: http://{admin}/ in a browser");
    run(config)
}
