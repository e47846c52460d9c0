//! [`Summary`]: the effective configuration in a few lines, as `lb check` prints it and the
//! start-up log sums it up, so that what lb says it runs and what it runs are one text.

use crate::{Config, HealthConfig, Workers};
use std::fmt;
use std::time::Duration;

/// A [`Config`] shown for people: addresses, workers, routes with their targets, health and
/// timeouts. Never shows the admin token, only whether one is set.
#[derive(Debug, Clone, Copy)]
pub struct Summary<'a>(pub &'a Config);

impl Summary<'_> {
    /// `auto` or the number of workers asked for.
    pub fn workers(&self) -> String {
        match self.0.restart.workers {
            Workers::Auto => "auto".to_string(),
            Workers::Count(n) => n.to_string(),
        }
    }

    /// How many targets the routes have in all.
    pub fn target_count(&self) -> usize {
        self.0.live.routes.iter().map(|r| r.targets.len()).sum()
    }
}

impl HealthConfig {
    /// The health settings in one phrase.
    pub fn summary(&self) -> String {
        let HealthConfig {
            check,
            interval,
            timeout,
            rise,
            fall,
            backoff,
        } = self;
        let active = match check {
            Some(path) => format!(
                "GET {path} every {} (timeout {}, rise {rise}, fall {fall})",
                human(*interval),
                human(*timeout)
            ),
            None => "no active checks".to_string(),
        };
        format!(
            "{active}; a failed connect takes a target out for {}",
            human(*backoff)
        )
    }
}

/// A duration the way the flags take it: whole minutes, seconds or milliseconds.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms != 0 && ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms != 0 && ms % 1_000 == 0 {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (live, restart) = (&self.0.live, &self.0.restart);
        writeln!(
            f,
            "listen {}, admin {}, workers {}{}",
            restart.listen,
            restart.admin,
            self.workers(),
            if restart.pin {
                " (pinned)"
            } else {
                " (not pinned)"
            }
        )?;
        writeln!(
            f,
            "routes: {} with {} targets",
            live.routes.len(),
            self.target_count()
        )?;
        for route in &live.routes {
            let targets: Vec<String> = route.targets.iter().map(|t| t.to_string()).collect();
            let host = route.host.as_deref().unwrap_or("");
            writeln!(f, "  {host}{} -> {}", route.prefix, targets.join(", "))?;
        }
        writeln!(f, "health: {}", self.0.live.health.summary())?;
        if let Some(tls) = restart.tls.listen {
            let version = match restart.tls.min_version {
                crate::TlsVersion::Tls12 => "1.2",
                crate::TlsVersion::Tls13 => "1.3",
            };
            let tickets = match &restart.tls.ticket_keys {
                Some(path) => format!("ticket keys {}", path.display()),
                None => "ticket keys per process".to_string(),
            };
            writeln!(
                f,
                "tls: listen {tls}, min version {version}, {} certificates, {tickets}",
                restart.tls.certs.len()
            )?;
            for pair in &restart.tls.certs {
                writeln!(f, "  {} (key {})", pair.cert.display(), pair.key.display())?;
            }
        }
        writeln!(
            f,
            "timeouts: connect {}, upstream {}, header {}, idle {}, drain {}",
            human(live.connect_timeout),
            human(live.upstream_timeout),
            human(live.header_timeout),
            human(live.idle_timeout),
            human(restart.drain_timeout)
        )?;
        write!(
            f,
            "admin token: {}; state file: {}",
            if restart.admin_token.is_some() {
                "set"
            } else {
                "none"
            },
            restart
                .state
                .as_ref()
                .map_or("none".to_string(), |p| p.display().to_string())
        )?;
        let cluster = &restart.cluster;
        if !cluster.etcd.is_empty() {
            write!(
                f,
                "\ncluster: etcd {}, prefix {}, node {}",
                cluster.etcd.join(","),
                cluster.prefix,
                cluster.node_name.as_deref().unwrap_or("(the host name)")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_flags_take_them() {
        let ms = Duration::from_millis;
        for (d, want) in [
            (ms(0), "0ms"),
            (ms(250), "250ms"),
            (ms(1_500), "1500ms"),
            (ms(5_000), "5s"),
            (ms(120_000), "2m"),
            (ms(90_000), "90s"),
        ] {
            assert_eq!(human(d), want);
        }
    }

    #[test]
    fn a_summary_names_routes_and_hides_the_token() {
        let mut c = Config::default();
        c.live.routes = vec!["/api=10.0.0.1:80,10.0.0.2:80".parse().unwrap()];
        c.restart.admin_token = Some("s3cr3t".into());
        let text = Summary(&c).to_string();
        assert!(text.contains("routes: 1 with 2 targets\n  /api -> 10.0.0.1:80, 10.0.0.2:80\n"));
        assert!(
            text.contains("health: no active checks; a failed connect takes a target out for 5s")
        );
        assert!(text.contains("timeouts: connect 5s, upstream 1m, header 10s, idle 1m, drain 30s"));
        assert!(text.contains("admin token: set"));
        assert!(!text.contains("s3cr3t"));
        assert!(!text.contains("cluster"), "cluster mode off says nothing");
        c.restart.cluster.etcd = vec!["http://e1:2379".into(), "http://e2:2379".into()];
        let text = Summary(&c).to_string();
        assert!(
            text.ends_with(
                "\ncluster: etcd http://e1:2379,http://e2:2379, prefix /lb/, node (the host name)"
            ),
            "{text}"
        );
        assert!(!text.contains("tls:"));
        c.restart.tls.listen = Some("0.0.0.0:443".parse().unwrap());
        c.restart.tls.certs = crate::pair_certs(&["a.crt".into()], &["a.key".into()]).unwrap();
        let text = Summary(&c).to_string();
        assert!(
            text.contains(
                "tls: listen 0.0.0.0:443, min version 1.2, 1 certificates, ticket keys per process
  a.crt (key a.key)
"
            ),
            "{text}"
        );
    }
}
