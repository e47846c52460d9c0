//! Running the built `lb` binary as a child process, the way a user or a script runs it.
//!
//! Tests synchronise on what lb promises to print: [`LbProcess::start`] returns only after the
//! one ready line (`listening on ADDR[, tls ADDR] (admin ADDR, N workers)`), whose addresses are the real
//! ports chosen for `127.0.0.1:0`. stdout and stderr are drained by threads all the time, so a
//! chatty lb never blocks on a full pipe, and a failing test's message includes lb's stderr.
//! Dropping a process kills it and reaps it: no test leaks an lb, whatever it asserted.
//!
//! The binary's path is an argument because only integration tests of the `lb` crate know it
//! (`env!("CARGO_BIN_EXE_lb")`).

use crate::wait::{poll, poll_until};
use parking_lot::{Condvar, Mutex};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a process may take to print its ready line; generous for a loaded CI machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// stderr kept per process; older output is dropped first.
const STDERR_KEEP: usize = 4 * 1024 * 1024;

#[derive(Debug, Default)]
struct Output {
    lines: Vec<String>,
    stdout_eof: bool,
    stderr: Vec<u8>,
    stderr_eof: bool,
}

/// A child process whose stdout lines and stderr are captured continuously.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    program: String,
    out: Arc<(Mutex<Output>, Condvar)>,
    exit: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `bin args...` with stdin closed and both output streams captured.
    pub fn spawn<S: AsRef<OsStr>>(bin: &Path, args: &[S]) -> Proc {
        let program = format!(
            "{} {}",
            bin.display(),
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn `{program}`: {e}"));
        let out = Arc::new((Mutex::new(Output::default()), Condvar::new()));
        if let Some(stdout) = child.stdout.take() {
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                // Byte lines, decoded lossily: a stray non-UTF-8 byte must not stop the draining
                // (an undrained pipe would block lb's next write to stdout).
                let mut reader = BufReader::new(stdout);
                let mut line = Vec::new();
                while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\r', '\n']).to_string();
                    out.0.lock().lines.push(text);
                    out.1.notify_all();
                    line.clear();
                }
                out.0.lock().stdout_eof = true;
                out.1.notify_all();
            });
        }
        if let Some(mut stderr) = child.stderr.take() {
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match stderr.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut o = out.0.lock();
                            o.stderr.extend_from_slice(&buf[..n]);
                            if o.stderr.len() > STDERR_KEEP {
                                let cut = o.stderr.len() - STDERR_KEEP;
                                o.stderr.drain(..cut);
                            }
                        }
                    }
                }
                out.0.lock().stderr_eof = true;
                out.1.notify_all();
            });
        }
        Proc {
            child,
            program,
            out,
            exit: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stdout line so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.out.0.lock().lines.clone()
    }

    /// stderr so far (the last 4 MiB), lossily decoded.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.0.lock().stderr).into_owned()
    }

    /// Waits for a stdout line for which `parse` returns `Some`, and returns that value.
    /// `Err` (with the reason) if stdout closes first or `timeout` passes.
    pub fn wait_for_line<T>(
        &self,
        timeout: Duration,
        mut parse: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.out;
        let mut out = lock.lock();
        let mut seen = 0;
        loop {
            while seen < out.lines.len() {
                if let Some(v) = parse(&out.lines[seen]) {
                    return Ok(v);
                }
                seen += 1;
            }
            if out.stdout_eof {
                return Err("stdout closed (the process exited?)".to_string());
            }
            if cv.wait_until(&mut out, deadline).timed_out() && seen == out.lines.len() {
                return Err(format!("no such line within {timeout:?}"));
            }
        }
    }

    /// Waits until stderr holds every one of `needles` (lb logs there; a line may still be on
    /// its way through the draining thread after the event that logged it), and returns stderr.
    pub fn wait_for_stderr(&self, timeout: Duration, needles: &[&str]) -> String {
        poll_until(timeout, &format!("{needles:?} in stderr"), || {
            let err = self.stderr();
            if needles.iter().all(|n| err.contains(n)) {
                Ok(err)
            } else {
                Err(err)
            }
        })
    }

    /// Waits for `n` stdout lines matching `pred`; `Err` if stdout closes first or on timeout.
    pub fn wait_for_lines(
        &self,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, String> {
        let mut found = Vec::new();
        self.wait_for_line(timeout, |line| {
            if pred(line) {
                found.push(line.to_string());
            }
            (found.len() >= n).then_some(())
        })?;
        Ok(found)
    }

    /// Sends SIGTERM (through the `kill` command: the kit stays free of `unsafe`).
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the named signal (`TERM`, `INT`, ...) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|e| panic!("run `kill -{name} {}`: {e}", self.pid()));
        assert!(
            status.success(),
            "`kill -{name} {}` failed: {status}",
            self.pid()
        );
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Waits for the process to exit; on timeout kills it and panics with its stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match poll(timeout, || self.try_exit().ok_or(())) {
            Ok(status) => {
                self.wait_output_closed(Duration::from_secs(5));
                status
            }
            Err(()) => {
                self.kill();
                panic!(
                    "`{}` did not exit within {timeout:?}; stderr:\n{}",
                    self.program,
                    self.stderr()
                );
            }
        }
    }

    /// Waits (bounded) until both output pipes reached end of file, so stderr is complete.
    fn wait_output_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.out;
        let mut out = lock.lock();
        while !(out.stdout_eof && out.stderr_eof) {
            if cv.wait_until(&mut out, deadline).timed_out() {
                return;
            }
        }
    }

    /// Kills (SIGKILL) and reaps the process if it is still running.
    pub fn kill(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
        }
    }

    /// Peak resident set size (`VmHWM` in `/proc/PID/status`) in KiB; the process must be alive.
    pub fn peak_rss_kib(&self) -> u64 {
        status_field_kib(self.pid(), "VmHWM:")
    }

    /// Current resident set size (`VmRSS`) in KiB; the process must be alive.
    pub fn rss_kib(&self) -> u64 {
        status_field_kib(self.pid(), "VmRSS:")
    }

    /// Panics with `msg`, the command line, stdout and stderr, after killing the process.
    fn fail(&mut self, msg: &str) -> ! {
        self.kill();
        self.wait_output_closed(Duration::from_secs(2));
        panic!(
            "`{}`: {msg}; exit: {:?}\nstdout:\n{}\nstderr:\n{}",
            self.program,
            self.exit,
            self.stdout_lines().join("\n"),
            self.stderr()
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn status_field_kib(pid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {path}"))
}

/// A running `lb run`, started and ready.
#[derive(Debug)]
pub struct LbProcess {
    proc: Proc,
    listen: SocketAddr,
    tls: Option<SocketAddr>,
    admin: SocketAddr,
    workers: usize,
    ready_line: String,
}

/// The parts of lb's ready line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// Data-plane address.
    pub listen: SocketAddr,
    /// HTTPS data-plane address, when TLS is on.
    pub tls: Option<SocketAddr>,
    /// Control-plane address.
    pub admin: SocketAddr,
    /// Worker count.
    pub workers: usize,
}

/// Parses `... listening on ADDR[, tls ADDR] (admin ADDR, N workers)` (SPEC: the one ready
/// line).
pub fn parse_ready_line(line: &str) -> Option<Ready> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let (listen, rest) = rest.split_once(" (admin ")?;
    let (listen, tls) = match listen.split_once(", tls ") {
        Some((listen, tls)) => (listen, Some(tls.trim().parse().ok()?)),
        None => (listen, None),
    };
    let (admin, rest) = rest.split_once(", ")?;
    let (workers, _) = rest.split_once(" worker")?;
    Some(Ready {
        listen: listen.trim().parse().ok()?,
        tls,
        admin: admin.trim().parse().ok()?,
        workers: workers.trim().parse().ok()?,
    })
}

/// Arguments for `lb run` on loopback port 0 with `--no-pin`, `workers` workers, the given routes
/// (`(prefix, targets)`) and `extra` flags appended.
pub fn run_args(workers: usize, routes: &[(&str, &[SocketAddr])], extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--workers",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(workers.to_string());
    args.push("--no-pin".to_string());
    for (prefix, targets) in routes {
        let list: Vec<String> = targets.iter().map(|a| a.to_string()).collect();
        args.push("--route".to_string());
        args.push(format!("{prefix}={}", list.join(",")));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

impl LbProcess {
    /// Spawns `bin args...` and waits for the ready line; panics with lb's stderr if it does not
    /// come within [`START_TIMEOUT`].
    pub fn start<S: AsRef<OsStr>>(bin: &Path, args: &[S]) -> LbProcess {
        let mut proc = Proc::spawn(bin, args);
        match proc.wait_for_line(START_TIMEOUT, parse_ready_line) {
            Ok(ready) => {
                let ready_line = proc
                    .stdout_lines()
                    .into_iter()
                    .find(|l| parse_ready_line(l).is_some())
                    .unwrap_or_default();
                LbProcess {
                    proc,
                    listen: ready.listen,
                    tls: ready.tls,
                    admin: ready.admin,
                    workers: ready.workers,
                    ready_line,
                }
            }
            Err(why) => proc.fail(&format!("no ready line: {why}")),
        }
    }

    /// `lb run` on port 0 (see [`run_args`]), ready.
    pub fn run(
        bin: &Path,
        workers: usize,
        routes: &[(&str, &[SocketAddr])],
        extra: &[&str],
    ) -> LbProcess {
        LbProcess::start(bin, &run_args(workers, routes, extra))
    }

    /// The data-plane address.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// The HTTPS data-plane address; panics when lb was started without `--tls-listen`.
    pub fn tls_addr(&self) -> SocketAddr {
        match self.tls {
            Some(addr) => addr,
            None => panic!("lb has no TLS listener: {}", self.ready_line),
        }
    }

    /// The control-plane address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// A client for the control plane.
    pub fn admin(&self) -> crate::admin::Admin {
        crate::admin::Admin::new(self.admin)
    }

    /// Worker count from the ready line.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The ready line as printed.
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The underlying process (stdout lines, stderr, signals).
    pub fn process(&mut self) -> &mut Proc {
        &mut self.proc
    }

    /// stderr so far.
    pub fn stderr(&self) -> String {
        self.proc.stderr()
    }

    /// Every stdout line so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.proc.stdout_lines()
    }

    /// Waits until stderr holds every one of `needles` (see [`Proc::wait_for_stderr`]).
    pub fn wait_for_stderr(&self, timeout: Duration, needles: &[&str]) -> String {
        self.proc.wait_for_stderr(timeout, needles)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.proc.terminate();
    }

    /// Waits for exit (see [`Proc::wait_exit`]).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.proc.wait_exit(timeout)
    }

    /// The exit status if lb has exited, without waiting.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.proc.try_exit()
    }

    /// Peak RSS (`VmHWM`) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc.peak_rss_kib()
    }

    /// Current RSS (`VmRSS`) in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.proc.rss_kib()
    }
}

/// A running `lb echo`, ready.
#[derive(Debug)]
pub struct EchoProcess {
    proc: Proc,
    addr: SocketAddr,
    name: String,
}

impl EchoProcess {
    /// Starts `lb echo --listen 127.0.0.1:0 --name NAME` and waits for
    /// `echo NAME listening on ADDR`.
    pub fn start(bin: &Path, name: &str) -> EchoProcess {
        let mut proc = Proc::spawn(bin, &["echo", "--listen", "127.0.0.1:0", "--name", name]);
        let want = format!("echo {name} listening on ");
        let found = proc.wait_for_line(START_TIMEOUT, |line| {
            let at = line.find(&want)?;
            line[at + want.len()..]
                .split_whitespace()
                .next()?
                .parse::<SocketAddr>()
                .ok()
        });
        match found {
            Ok(addr) => EchoProcess {
                proc,
                addr,
                name: name.to_string(),
            },
            Err(why) => proc.fail(&format!("no `{want}ADDR` line: {why}")),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The underlying process.
    pub fn process(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

/// What a process that was run to completion left behind.
#[derive(Debug)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// stdout lines.
    pub stdout: Vec<String>,
    /// stderr text.
    pub stderr: String,
}

/// Runs `bin args...` until it exits (killing it and panicking after `timeout`).
pub fn run_to_exit<S: AsRef<OsStr>>(bin: &Path, args: &[S], timeout: Duration) -> Finished {
    let mut proc = Proc::spawn(bin, args);
    let status = proc.wait_exit(timeout);
    Finished {
        status,
        stdout: proc.stdout_lines(),
        stderr: proc.stderr(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_parses() {
        let r =
            parse_ready_line("lb listening on 127.0.0.1:4321 (admin 127.0.0.1:4322, 4 workers)")
                .expect("parses");
        assert_eq!(r.listen, "127.0.0.1:4321".parse().expect("addr"));
        assert_eq!(r.admin, "127.0.0.1:4322".parse().expect("addr"));
        assert_eq!(r.workers, 4);
        let r = parse_ready_line("listening on [::1]:80 (admin [::1]:81, 1 worker)").expect("v6");
        assert_eq!(r.workers, 1);
        assert!(parse_ready_line("listening on nowhere").is_none());
    }

    #[test]
    fn run_args_shape() {
        let a: SocketAddr = "127.0.0.1:9001".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:9002".parse().expect("addr");
        let args = run_args(2, &[("/api", &[a, b])], &["--upstream-timeout", "500"]);
        assert_eq!(
            args.join(" "),
            "run --listen 127.0.0.1:0 --admin 127.0.0.1:0 --workers 2 --no-pin \
             --route /api=127.0.0.1:9001,127.0.0.1:9002 --upstream-timeout 500"
        );
    }

    #[test]
    fn captures_output_and_exit_status() {
        let f = run_to_exit(
            Path::new("sh"),
            &["-c", "echo one; echo two >&2; exit 3"],
            Duration::from_secs(30),
        );
        assert_eq!(f.status.code(), Some(3));
        assert_eq!(f.stdout, vec!["one".to_string()]);
        assert_eq!(f.stderr, "two\n");
    }

    #[test]
    fn waits_for_stderr_to_hold_every_needle() {
        let p = Proc::spawn(
            Path::new("sh"),
            &["-c", "echo one >&2; sleep 0.2; echo two >&2; exec sleep 30"],
        );
        let err = p.wait_for_stderr(START_TIMEOUT, &["two", "one"]);
        assert_eq!(err, "one\ntwo\n");
    }
}
