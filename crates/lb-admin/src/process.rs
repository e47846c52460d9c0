//! The `process_*` series every Prometheus client library exports, under the names they use, and
//! `lb_build_info`: what dashboards and alerts written for any service expect to find.
//!
//! Read from `/proc` at scrape (Linux; elsewhere the `process_*` series are left out, never
//! invented). Parsing is pure ([`Proc::parse`]) and table-tested; only [`render`] reads files.
//! CPU time and start time are in clock ticks of 100 per second, the `USER_HZ` every Linux
//! reports to user space (the Go client assumes the same).

use std::fmt::Write;

/// Linux's `USER_HZ`: the unit of CPU and start times in `/proc/<pid>/stat`.
const TICKS_PER_SECOND: f64 = 100.0;

/// What the `process_*` series say, from `/proc`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Proc {
    cpu_seconds: f64,
    start_time_seconds: f64,
    virtual_bytes: u64,
    resident_bytes: u64,
    open_fds: u64,
    max_fds: Option<u64>,
}

impl Proc {
    /// From `/proc/self/stat`, `/proc/self/status`, `/proc/self/limits`, `/proc/stat`'s
    /// `btime` line and the number of entries in `/proc/self/fd`. `None` when one is not what
    /// Linux writes.
    pub(crate) fn parse(
        stat: &str,
        status: &str,
        limits: &str,
        system_stat: &str,
        open_fds: u64,
    ) -> Option<Proc> {
        // The command name (field 2) is in parentheses and may hold spaces: count from after it.
        let after_name = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // `fields[0]` is field 3 (state); field n is fields[n - 3].
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        let (utime, stime, start) = (field(14)?, field(15)?, field(22)?);
        let boot: u64 = system_stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let kib = |key: &str| -> Option<u64> {
            let line = status.lines().find_map(|l| l.strip_prefix(key))?;
            line.trim().strip_suffix("kB")?.trim().parse().ok()
        };
        let max_fds = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|soft| soft.parse().ok());
        Some(Proc {
            cpu_seconds: (utime + stime) as f64 / TICKS_PER_SECOND,
            start_time_seconds: boot as f64 + start as f64 / TICKS_PER_SECOND,
            virtual_bytes: kib("VmSize:")? * 1024,
            resident_bytes: kib("VmRSS:")? * 1024,
            open_fds,
            max_fds,
        })
    }

    /// Appends the series, each with its HELP and TYPE.
    fn render(&self, out: &mut String) {
        let mut series = |name: &str, kind: &str, help: &str, value: &dyn std::fmt::Display| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        };
        series(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            &self.cpu_seconds,
        );
        series(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            &self.start_time_seconds,
        );
        series(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            &self.virtual_bytes,
        );
        series(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            &self.resident_bytes,
        );
        series(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            &self.open_fds,
        );
        if let Some(max) = self.max_fds {
            series(
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                &max,
            );
        }
    }
}

/// Appends `lb_build_info` and, where `/proc` can be read, the `process_*` series.
pub(crate) fn render(out: &mut String) {
    let _ = write!(
        out,
        "# HELP lb_build_info The lb build serving: always 1, its version as a label.\n\
         # TYPE lb_build_info gauge\n\
         lb_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64);
    let proc = Proc::parse(
        &read("/proc/self/stat"),
        &read("/proc/self/status"),
        &read("/proc/self/limits"),
        &read("/proc/stat"),
        fds,
    );
    if let Some(proc) = proc {
        proc.render(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (lb worker (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                        250 130 0 0 20 0 5 0 317562 3133440 394 18446744073709551615";
    const STATUS: &str = "Name:\tlb\nVmSize:\t    3892 kB\nVmRSS:\t    2200 kB\n";
    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units\n\
                          Max open files            20000                524288               files\n";
    const SYSTEM: &str = "cpu  1 2 3\nbtime 1796407323\nprocesses 9\n";

    #[test]
    fn proc_files_become_the_standard_series() {
        let p = Proc::parse(STAT, STATUS, LIMITS, SYSTEM, 12).expect("parses");
        assert_eq!(
            p,
            Proc {
                cpu_seconds: 3.8,
                start_time_seconds: 1_796_407_323.0 + 3175.62,
                virtual_bytes: 3892 * 1024,
                resident_bytes: 2200 * 1024,
                open_fds: 12,
                max_fds: Some(20_000),
            }
        );
        let mut out = String::new();
        p.render(&mut out);
        assert!(out
            .contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3.8\n"));
        assert!(out.contains("\nprocess_max_fds 20000\n"));
    }

    #[test]
    fn files_that_are_not_what_linux_writes_give_nothing() {
        let table = [
            ("", STATUS, SYSTEM),
            ("4242 (lb) S 1", STATUS, SYSTEM),
            (STAT, "", SYSTEM),
            (STAT, "VmSize: lots\nVmRSS: 1 kB\n", SYSTEM),
            (STAT, STATUS, "cpu 1\n"),
        ];
        for (stat, status, system) in table {
            assert_eq!(
                Proc::parse(stat, status, LIMITS, system, 1),
                None,
                "{stat:?} {status:?}"
            );
        }
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        let p = Proc::parse(STAT, STATUS, unlimited, SYSTEM, 1).expect("parses");
        assert_eq!(p.max_fds, None);
    }

    #[test]
    fn this_process_has_every_series() {
        let mut out = String::new();
        render(&mut out);
        for name in [
            "lb_build_info{version=\"",
            "process_cpu_seconds_total ",
            "process_start_time_seconds ",
            "process_virtual_memory_bytes ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
        ] {
            assert!(out.contains(name), "{name} missing from\n{out}");
        }
    }
}
