//! External programs a test drives for real (etcd, chromium, h2load, curl, promtool).
//!
//! A missing tool must never make a test pass silently: under `CI=true` it is a failure that
//! names the Debian package `scripts/deps.sh` installs; elsewhere the test prints `NOT RUN` and
//! returns, so a developer without the tool still sees that it did not run.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The path of `program` on `PATH`, or `None` (after printing why) when it is missing outside
/// CI. Panics under `CI=true` when it is missing, naming `package`, the Debian package.
pub fn require(program: &str, package: &str) -> Option<PathBuf> {
    if let Some(found) = find(program) {
        return Some(found);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{program} is missing under CI: scripts/deps.sh installs Debian's {package}");
    }
    eprintln!(
        "NOT RUN: {program} is missing (Debian package {package}; scripts/deps.sh installs it)"
    );
    None
}

/// `promtool check metrics` (Debian package `prometheus`) over a `/metrics` text: what it said
/// (empty when the text is clean), or `None` when promtool is missing outside CI (see
/// [`require`]).
pub fn promtool_check(text: &str) -> Option<String> {
    let promtool = require("promtool", "prometheus")?;
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool: {e}"));
    if let Some(mut stdin) = check.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("feeding promtool: {e}"));
    }
    let out = check
        .wait_with_output()
        .unwrap_or_else(|e| panic!("promtool: {e}"));
    let mut said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        said.push_str(&format!("\npromtool exited with {}", out.status));
    }
    Some(said.trim().to_string())
}

/// `program`'s path when an executable of that name is on `PATH`.
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_program_every_machine_has_and_not_one_nobody_has() {
        assert!(find("sh").is_some());
        assert!(find("lb-no-such-program-anywhere").is_none());
    }
}
