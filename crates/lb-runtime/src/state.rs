//! The state file (`--state FILE`): the registry as it was after the last change, so that a
//! restart or a crash loses no registration.
//!
//! Format: the registry's export ([`lb_registry::Export`], JSON, versioned, unknown fields
//! refused; the same shape an upgrade carries), in its [`Scope::Saved`] part:
//!
//! ```json
//! {"version":1,"routes":[{"path":"/api","targets":["10.0.0.5:9001","10.0.0.6:9001"]}]}
//! ```
//!
//! A target registered with a weight or a ttl is an object, its lease's end as wall-clock time,
//! so that a lease that ran out while lb was down is honoured at start (the target is not
//! loaded); files with plain addresses only, as older lbs wrote, read as before:
//!
//! ```json
//! {"addr":"10.0.0.7:9001","weight":5,"lease":{"ttl_s":30,"expires_unix_ms":1796400000000}}
//! ```
//!
//! It holds what the API holds: every prefix the API holds a target on, with the API's targets
//! in round-robin order, healthy or not (a prefix leaves with the API's last target; an empty
//! one an older file holds is not loaded). What only the configuration holds is
//! left out, targets and prefixes: the configuration brings them back at start, saving a target
//! would turn it into a registration that a reload could no longer remove, and saving a prefix
//! would bring it back as an empty route answering 503 after a restart with a configuration
//! that dropped it, where its requests belong to a shorter prefix.
//!
//! Writes are atomic and durable: a temporary file in the same directory is written and
//! fsynced, renamed over the file, and the directory is fsynced, so after a crash the file is
//! either the old or the new version, never a mix. The control plane hands each change's would-be
//! export to [`StateFile::save_export`] before the registry applies it, and answers only when it
//! returned `Ok`. A missing file is a first start
//! (empty registry); a file that cannot be read or parsed stops lb: starting silently empty would
//! drop every registration at the next save.

use lb_registry::{Export, Import, Registry, Scope};
use parking_lot::Mutex;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// The state file of one lb process.
#[derive(Debug)]
pub(crate) struct StateFile {
    path: PathBuf,
    /// One writer at a time: two writes never share the temporary file. (Which export is
    /// written last is the registry's order: one change at a time, saved before it applies.)
    lock: Mutex<()>,
}

impl StateFile {
    pub(crate) fn new(path: PathBuf) -> Self {
        StateFile {
            path,
            lock: Mutex::new(()),
        }
    }

    /// Installs what the file holds into `registry`, all of it as the API's; `Ok(false)` when
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
        let export: Export = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        let load = Import {
            export,
            now: Instant::now(),
            wall: SystemTime::now(),
            probed: &|_| false,
        };
        registry.apply(&load).map_err(|e| corrupt(e.to_string()))?;
        Ok(true)
    }

    /// Writes what `registry` holds now; see [`StateFile::save_export`].
    pub(crate) fn save(&self, registry: &Registry) -> Result<(), String> {
        self.save_export(&registry.export(Scope::Saved))
    }

    /// Writes `export` atomically and durably; the error is one sentence naming the file.
    pub(crate) fn save_export(&self, export: &Export) -> Result<(), String> {
        let _one_writer = self.lock.lock();
        let mut bytes = serde_json::to_vec_pretty(export)
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
    use lb_registry::Holder;
    use std::net::SocketAddr;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lb-state-unit-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn round_trip_keeps_order_and_not_an_emptied_prefix() {
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
        assert_eq!(copy.routes().len(), 1, "/gone left with its last target");
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        let _ = fs::remove_dir_all(&dir);
    }

    /// Prefixes and targets the configuration alone holds are left out, and so is a prefix the
    /// API emptied (it left with its last target).
    #[test]
    fn only_what_the_api_holds_is_saved() {
        let dir = scratch("api-only");
        let file = StateFile::new(dir.join("state.json"));
        let registry = Registry::new(1);
        let at = |port| SocketAddr::from(([10, 0, 0, 1], port));
        registry
            .register_as("/config", at(1), Holder::Config)
            .unwrap();
        registry
            .register_as("/both", at(2), Holder::Config)
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
        assert_eq!(saved, [("/both".to_string(), vec![at(3)])]);
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
