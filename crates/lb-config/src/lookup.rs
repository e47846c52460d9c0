//! [`Lookup`]: what loading a configuration needs from outside this crate (host-name
//! resolution, the admin token file), passed in so that layering stays a pure function that
//! tests drive with a table instead of a DNS server and a file system.
//!
//! Resolution keeps the operator's order: a route's targets are its written targets in turn,
//! a name standing for every address it resolves to (as nginx's `server` does), duplicates
//! dropped. A name that resolves to nothing is an error naming it, never an empty route.

use crate::{ConfigError, HostPort, StaticRoute};
use std::net::SocketAddr;
use std::path::Path;

/// The outside world as configuration loading sees it.
pub trait Lookup {
    /// The addresses of host name `host` (never an IP literal) with `port`; the error is one
    /// plain sentence (the resolver's reason).
    fn resolve(&mut self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String>;
    /// The whole content of the file at `path`; the error is one plain sentence.
    fn read_file(&mut self, path: &Path) -> Result<String, String>;
}

/// A [`Lookup`] for test configurations that name no host names and no token file: every
/// lookup fails, saying so.
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LiteralsOnly;

#[cfg(test)]
impl Lookup for LiteralsOnly {
    fn resolve(&mut self, host: &str, _port: u16) -> Result<Vec<SocketAddr>, String> {
        Err(format!("host names are not resolved here ({host})"))
    }

    fn read_file(&mut self, path: &Path) -> Result<String, String> {
        Err(format!("files are not read here ({})", path.display()))
    }
}

/// One host name's resolution, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The route's prefix.
    pub prefix: String,
    /// The target as written.
    pub target: HostPort,
    /// What it resolved to, in order.
    pub addrs: Vec<SocketAddr>,
}

/// Resolves every target of `routes`, in order; also returns each host name's resolution.
pub(crate) fn resolve_routes(
    routes: &[StaticRoute<HostPort>],
    lookup: &mut dyn Lookup,
) -> Result<(Vec<StaticRoute>, Vec<Resolved>), ConfigError> {
    let mut resolved = Vec::new();
    let mut out = Vec::with_capacity(routes.len());
    for route in routes {
        let mut targets: Vec<SocketAddr> = Vec::new();
        let mut weights: Vec<(SocketAddr, u16)> = Vec::new();
        for target in &route.targets {
            let weight = route
                .weights
                .iter()
                .find(|(t, _)| t == target)
                .map(|&(_, w)| w);
            let addrs = match target.literal() {
                Some(addr) => vec![addr],
                None => {
                    let addrs = lookup
                        .resolve(&target.host, target.port)
                        .and_then(|a| {
                            if a.is_empty() {
                                Err("it has no address".to_string())
                            } else {
                                Ok(a)
                            }
                        })
                        .map_err(|e| {
                            ConfigError(format!(
                                "route {}: cannot resolve target \"{target}\": {e}",
                                route.prefix
                            ))
                        })?;
                    resolved.push(Resolved {
                        prefix: route.prefix.clone(),
                        target: target.clone(),
                        addrs: addrs.clone(),
                    });
                    addrs
                }
            };
            for addr in addrs {
                if !targets.contains(&addr) {
                    targets.push(addr);
                    if let Some(weight) = weight {
                        weights.push((addr, weight));
                    }
                }
            }
        }
        out.push(route.with_targets(targets, weights));
    }
    Ok((out, resolved))
}

/// The admin token held in `path`: its content without the trailing line end, never empty.
pub(crate) fn read_token(path: &Path, lookup: &mut dyn Lookup) -> Result<String, ConfigError> {
    let name = path.display();
    let text = lookup
        .read_file(path)
        .map_err(|e| ConfigError(format!("admin token file {name}: {e}")))?;
    let token = text.trim_end_matches(['\n', '\r']);
    if token.is_empty() {
        return Err(ConfigError(format!(
            "admin token file {name} is empty (expected the token on one line)"
        )));
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A resolver and file system from tables.
    #[derive(Default)]
    struct Table {
        hosts: HashMap<&'static str, Vec<&'static str>>,
        files: HashMap<&'static str, &'static str>,
    }

    impl Lookup for Table {
        fn resolve(&mut self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
            let ips = self.hosts.get(host).ok_or("no such host")?;
            Ok(ips
                .iter()
                .map(|ip| SocketAddr::new(ip.parse().unwrap(), port))
                .collect())
        }

        fn read_file(&mut self, path: &Path) -> Result<String, String> {
            let key = path.to_str().unwrap_or("");
            self.files
                .get(key)
                .map(|s| s.to_string())
                .ok_or_else(|| "No such file or directory".to_string())
        }
    }

    fn table() -> Table {
        let mut t = Table::default();
        t.hosts.insert("two", vec!["10.0.0.1", "10.0.0.2"]);
        t.hosts.insert("one", vec!["10.0.0.2"]);
        t.hosts.insert("none", vec![]);
        t.files.insert("good", "s3cr3t\n");
        t.files.insert("crlf", "s3cr3t\r\n");
        t.files.insert("bare", "s3cr3t");
        t.files.insert("empty", "");
        t.files.insert("newline", "\n");
        t.files.insert("lines", "s3cr3t\n\n");
        t
    }

    #[test]
    fn names_stand_for_their_addresses_in_order_without_duplicates() {
        let table_ = [
            ("/a=10.0.0.9:1", Ok(vec!["10.0.0.9:1"])),
            ("/a=two:80", Ok(vec!["10.0.0.1:80", "10.0.0.2:80"])),
            (
                "/a=10.0.0.2:80,two:80,one:80",
                Ok(vec!["10.0.0.2:80", "10.0.0.1:80"]),
            ),
            (
                "/a=nowhere:80",
                Err("route /a: cannot resolve target \"nowhere:80\": no such host"),
            ),
            (
                "/a=none:80",
                Err("route /a: cannot resolve target \"none:80\": it has no address"),
            ),
        ];
        for (route, want) in table_ {
            let spec: StaticRoute<HostPort> = route.parse().unwrap();
            let got = resolve_routes(&[spec], &mut table()).map(|(routes, _)| {
                routes[0]
                    .targets
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
            });
            let want = want
                .map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
                .map_err(|e| ConfigError(e.to_string()));
            assert_eq!(got, want, "{route}");
        }
        let spec: StaticRoute<HostPort> = "/a=10.0.0.9:1,two:80".parse().unwrap();
        let (_, resolved) = resolve_routes(&[spec], &mut table()).unwrap();
        assert_eq!(resolved.len(), 1, "literals are not logged as resolutions");
        assert_eq!(resolved[0].target.to_string(), "two:80");
        assert_eq!(resolved[0].addrs.len(), 2);
    }

    #[test]
    fn the_token_file_is_one_trimmed_non_empty_line() {
        let table_ = [
            ("good", Ok("s3cr3t")),
            ("crlf", Ok("s3cr3t")),
            ("bare", Ok("s3cr3t")),
            ("lines", Ok("s3cr3t")),
            (
                "empty",
                Err("admin token file empty is empty (expected the token on one line)"),
            ),
            (
                "newline",
                Err("admin token file newline is empty (expected the token on one line)"),
            ),
            (
                "missing",
                Err("admin token file missing: No such file or directory"),
            ),
        ];
        for (path, want) in table_ {
            let got = read_token(Path::new(path), &mut table());
            assert_eq!(
                got,
                want.map(String::from).map_err(|e| ConfigError(e.into())),
                "{path}"
            );
        }
    }
}
