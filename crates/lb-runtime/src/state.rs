//! The state file (`--state FILE`): the registry as it was after the last change, so that a
//! restart or a crash loses no registration.
//!
//! Format (JSON, versioned, unknown fields refused):
//!
//! ```json
//! {"version":1,"routes":[{"path":"/api","targets":["10.0.0.5:9001","10.0.0.6:9001"]}]}
//! ```
//!
//! It holds what the API holds: every prefix the API registered a target on, also one whose
//! targets all left since (it answers 503 rather than letting its traffic fall through), with
//! the API's targets in round-robin order, healthy or not. What only the configuration holds is
//! left out, targets and prefixes: the configuration brings them back at start, saving a target
//! would turn it into a registration that a reload could no longer remove, and saving a prefix
//! would bring it back as an empty route answering 503 after a restart with a configuration
//! that dropped it, where its requests belong to a shorter prefix.
//!
//! Writes are atomic and durable: a temporary file in the same directory is written and
//! fsynced, renamed over the file, and the directory is fsynced, so after a crash the file is
//! either the old or the new version, never a mix. The control plane calls [`StateFile::save`]
//! after each change and answers only when it returned `Ok`. A missing file is a first start
//! (empty registry); a file that cannot be read or parsed stops lb: starting silently empty would
//! drop every registration at the next save.

use lb_registry::{Registry, Source};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file format's version; a different one is refused.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    version: u32,
    routes: Vec<SavedRoute>,
}

/// One prefix and its targets in round-robin order (also the registry part of an upgrade).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SavedRoute {
    path: String,
    targets: Vec<SocketAddr>,
    /// Those of `targets` only the configuration holds: an upgrade hands them over (they keep
    /// their place in round-robin order), a state file never has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    config_only: Vec<SocketAddr>,
}

/// The registry as a list of routes.
pub(crate) fn snapshot(registry: &Registry) -> Vec<SavedRoute> {
    registry
        .routes()
        .into_iter()
        .map(|r| SavedRoute {
            path: r.path,
            targets: r.targets,
            config_only: r.config_only,
        })
        .collect()
}

/// Registers `routes` (also the empty ones) into `registry`, each target for the source that
/// held it; the error says which one failed. A route with targets is the API's when one of them
/// is; an empty one is kept as the API's (who created it is not said, and keeping it loses
/// nothing).
pub(crate) fn restore(registry: &Registry, routes: Vec<SavedRoute>) -> Result<(), String> {
    for route in routes {
        if route.targets.is_empty() {
            registry
                .ensure_route(&route.path)
                .map_err(|e| format!("route {:?}: {e}", route.path))?;
        }
        for target in route.targets {
            let source = if route.config_only.contains(&target) {
                Source::Config
            } else {
                Source::Api
            };
            registry
                .register_as(&route.path, target, source)
                .map_err(|e| format!("route {:?}, target {target}: {e}", route.path))?;
        }
    }
    Ok(())
}

/// The state file of one lb process.
#[derive(Debug)]
pub(crate) struct StateFile {
    path: PathBuf,
    /// One writer at a time: the snapshot of the registry is taken under this lock, so the file
    /// written last holds every change made before it.
    lock: Mutex<()>,
}

impl StateFile {
    pub(crate) fn new(path: PathBuf) -> Self {
        StateFile {
            path,
            lock: Mutex::new(()),
        }
    }

    /// Registers what the file holds into `registry`, all of it as the API's; `Ok(false)` when
    /// there is no file yet. The error is one sentence naming the file.
    pub(crate) fn load_into(&self, registry: &Registry) -> Result<bool, String> {
        let name = self.path.display();
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                return Err(format!(
                    "cannot read the state file {name}: {}",
                    lb_socket::plain(&e)
                ))
            }
        };
        let corrupt = |why: String| {
            format!("the state file {name} is corrupt ({why}); repair it or move it away")
        };
        let saved: Saved = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        if saved.version != VERSION {
            return Err(corrupt(format!(
                "version {} is not supported, this lb writes version {VERSION}",
                saved.version
            )));
        }
        for route in saved.routes {
            registry
                .ensure_route(&route.path)
                .map_err(|e| corrupt(format!("route {:?}: {e}", route.path)))?;
            for target in route.targets {
                registry.register(&route.path, target).map_err(|e| {
                    corrupt(format!("route {:?}, target {target}: {e}", route.path))
                })?;
            }
        }
        Ok(true)
    }

    /// Writes `registry` atomically and durably; the error is one sentence naming the file.
    pub(crate) fn save(&self, registry: &Registry) -> Result<(), String> {
        let _one_writer = self.lock.lock();
        let routes = registry
            .routes()
            .into_iter()
            .filter(|r| r.held_by_api)
            .map(|r| SavedRoute {
                targets: r
                    .targets
                    .into_iter()
                    .filter(|t| !r.config_only.contains(t))
                    .collect(),
                path: r.path,
                config_only: Vec::new(),
            })
            .collect();
        let saved = Saved {
            version: VERSION,
            routes,
        };
        let mut bytes = serde_json::to_vec_pretty(&saved)
            .map_err(|e| format!("cannot encode the registry: {e}"))?;
        bytes.push(b'\n');
        write_atomically(&self.path, &bytes).map_err(|e| {
            format!(
                "cannot write the state file {}: {}",
                self.path.display(),
                lb_socket::plain(&e)
            )
        })
    }
}

/// temp file in the same directory -> write -> fsync -> rename -> fsync the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // The rename itself is durable only once the directory entry is.
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lb-state-unit-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn round_trip_keeps_order_and_empty_routes() {
        let dir = scratch("round-trip");
        let file = StateFile::new(dir.join("state.json"));
        let registry = Registry::new(1);
        assert!(!file.load_into(&registry).unwrap(), "no file yet");
        for port in [3, 1, 2] {
            registry
                .register("/api", SocketAddr::from(([10, 0, 0, 1], port)))
                .unwrap();
        }
        registry
            .register("/gone", "[::1]:80".parse().unwrap())
            .unwrap();
        registry
            .deregister("/gone", "[::1]:80".parse().unwrap())
            .unwrap();
        file.save(&registry).unwrap();

        let copy = Registry::new(1);
        assert!(file.load_into(&copy).unwrap());
        assert_eq!(copy.routes(), registry.routes());
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        let _ = fs::remove_dir_all(&dir);
    }

    /// Prefixes and targets the configuration alone holds are left out; a prefix the API
    /// emptied is kept (it answers 503 after a restart too).
    #[test]
    fn only_what_the_api_holds_is_saved() {
        let dir = scratch("api-only");
        let file = StateFile::new(dir.join("state.json"));
        let registry = Registry::new(1);
        let at = |port| SocketAddr::from(([10, 0, 0, 1], port));
        registry
            .register_as("/config", at(1), Source::Config)
            .unwrap();
        registry
            .register_as("/both", at(2), Source::Config)
            .unwrap();
        registry.register("/both", at(3)).unwrap();
        registry.register("/gone", at(4)).unwrap();
        registry.deregister("/gone", at(4)).unwrap();
        file.save(&registry).unwrap();

        let copy = Registry::new(1);
        assert!(file.load_into(&copy).unwrap());
        let saved: Vec<_> = copy
            .routes()
            .into_iter()
            .map(|r| (r.path, r.targets))
            .collect();
        assert_eq!(
            saved,
            [
                ("/both".to_string(), vec![at(3)]),
                ("/gone".to_string(), vec![])
            ]
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn corrupt_files_are_refused_with_the_file_name() {
        let dir = scratch("corrupt");
        let path = dir.join("state.json");
        let file = StateFile::new(path.clone());
        for text in [
            "",
            "{",
            "[]",
            r#"{"version":2,"routes":[]}"#,
            r#"{"version":1,"routes":[],"extra":1}"#,
            r#"{"version":1,"routes":[{"path":"nope","targets":[]}]}"#,
            r#"{"version":1,"routes":[{"path":"/a","targets":["10.0.0.1"]}]}"#,
            r#"{"version":1,"routes":[{"path":"/a","targets":["0.0.0.0:80"]}]}"#,
        ] {
            fs::write(&path, text).unwrap();
            let error = file.load_into(&Registry::new(1)).unwrap_err();
            assert!(error.contains("corrupt"), "{text}: {error}");
            assert!(error.contains(&path.display().to_string()), "{error}");
        }
        let unreadable = StateFile::new(dir.clone());
        let error = unreadable.load_into(&Registry::new(1)).unwrap_err();
        assert!(error.starts_with("cannot read the state file"), "{error}");
        let _ = fs::remove_dir_all(&dir);
    }
}
