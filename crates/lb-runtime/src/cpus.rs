//! How many workers to run and which CPUs they may be pinned to.
//!
//! `auto` means the CPUs this process may actually use: `available_parallelism` respects the
//! affinity mask and the cgroup CPU quota. The CPU ids come from the affinity mask, which need not
//! be contiguous (a cpuset of `2,5` is common), so worker i is pinned to the i-th allowed id,
//! never to CPU i.

use lb_config::Workers;

/// The worker count for `workers`.
pub(crate) fn worker_count(workers: Workers) -> usize {
    match workers {
        Workers::Count(n) => n.max(1),
        Workers::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// The CPU ids this process may run on, in ascending order (empty when unknown).
pub(crate) fn allowed_cpus() -> Vec<core_affinity::CoreId> {
    let mut ids = core_affinity::get_core_ids().unwrap_or_default();
    ids.sort_by_key(|c| c.id);
    ids
}

/// The CPU worker `worker` is pinned to: the i-th allowed id, wrapping when there are more
/// workers than CPUs.
pub(crate) fn cpu_for(
    worker: usize,
    cpus: &[core_affinity::CoreId],
) -> Option<core_affinity::CoreId> {
    if cpus.is_empty() {
        None
    } else {
        cpus.get(worker % cpus.len()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core_affinity::CoreId;

    #[test]
    fn pins_to_allowed_ids_not_indexes() {
        let cpus = [CoreId { id: 2 }, CoreId { id: 5 }];
        assert_eq!(cpu_for(0, &cpus).map(|c| c.id), Some(2));
        assert_eq!(cpu_for(1, &cpus).map(|c| c.id), Some(5));
        assert_eq!(cpu_for(2, &cpus).map(|c| c.id), Some(2));
        assert_eq!(cpu_for(0, &[]), None);
    }

    #[test]
    fn counts() {
        assert_eq!(worker_count(Workers::Count(3)), 3);
        assert!(worker_count(Workers::Auto) >= 1);
    }
}
