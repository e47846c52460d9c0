//! Who holds a target, and who holds a prefix: the rules that decide what a change keeps.
//!
//! A target stays while at least one [`Holder`] holds it: the configuration (its routes), the
//! control plane (`POST /register`, or the state file and upgrade that replay it), or both. A
//! configuration reload withdraws only the configuration's claim; an API deregistration removes
//! the target whoever holds it.
//!
//! A prefix is held by the API while the API holds a target there (the API's last target
//! leaving, by a deregistration or an expired lease, withdraws the claim), and by the
//! configuration while the configuration names it. What a state
//! file keeps follows from these: the prefixes the API holds, with the targets the API holds.
//!
//! Invariant: these two types are the only place where a claim is added or withdrawn; the
//! table's changes call their methods and never flip a flag themselves.

/// Who asked for a target to serve a route, or for a prefix to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// The control plane (`POST /register`) or the state file, which replays its registrations.
    Api,
    /// The configuration: `--route` flags and the config file's routes.
    Config,
}

/// The holders of one target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Holders {
    api: bool,
    config: bool,
}

impl Holders {
    /// Held by `holder` alone.
    pub(crate) fn of(holder: Holder) -> Self {
        let mut holders = Holders::default();
        holders.hold(holder);
        holders
    }

    fn slot(&mut self, holder: Holder) -> &mut bool {
        match holder {
            Holder::Api => &mut self.api,
            Holder::Config => &mut self.config,
        }
    }

    /// Adds `holder`; `true` when it did not hold the target before.
    pub(crate) fn hold(&mut self, holder: Holder) -> bool {
        !std::mem::replace(self.slot(holder), true)
    }

    /// Withdraws `holder`; `true` when nobody holds the target any more (it must leave).
    pub(crate) fn release(&mut self, holder: Holder) -> bool {
        *self.slot(holder) = false;
        !self.api && !self.config
    }

    /// `holder` holds the target (maybe with the other one).
    pub(crate) fn is_held_by(self, holder: Holder) -> bool {
        match holder {
            Holder::Api => self.api,
            Holder::Config => self.config,
        }
    }

    /// `holder` holds the target and nobody else does.
    pub(crate) fn only(self, holder: Holder) -> bool {
        self == Holders::of(holder)
    }
}

/// The holders of one prefix, besides its targets' (see [`RouteHolders::held_by_api`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RouteHolders {
    /// The API registered here (or a state file or an upgrade said so). Withdrawn when the
    /// API's last target here leaves: a prefix nobody serves and nobody configured would
    /// otherwise answer 503 forever.
    api_claimed: bool,
    /// The configuration names this prefix. Withdrawn by a reconfiguration that no longer
    /// names it.
    config_named: bool,
}

impl RouteHolders {
    /// Records that `holder` holds the prefix.
    pub(crate) fn hold(&mut self, holder: Holder) {
        match holder {
            Holder::Api => self.api_claimed = true,
            Holder::Config => self.config_named = true,
        }
    }

    /// The configuration no longer names the prefix.
    pub(crate) fn unname(&mut self) {
        self.config_named = false;
    }

    /// The API's claim goes when none of `targets` is the API's any more (its last one left).
    pub(crate) fn withdraw_api_unless(&mut self, mut targets: impl Iterator<Item = Holders>) {
        if !targets.any(|t| t.is_held_by(Holder::Api)) {
            self.api_claimed = false;
        }
    }

    /// The API holds the prefix: it claimed it, or holds one of `targets`.
    pub(crate) fn held_by_api(self, mut targets: impl Iterator<Item = Holders>) -> bool {
        self.api_claimed || targets.any(|t| t.is_held_by(Holder::Api))
    }

    /// Nobody wants the prefix: it has no target, the API does not hold it and the
    /// configuration does not name it. Such a route is removed by the change that left it so.
    pub(crate) fn abandoned(self, targets: usize) -> bool {
        targets == 0 && !self.api_claimed && !self.config_named
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row: the holders before, the holder withdrawn, whether the target must leave.
    #[test]
    fn a_target_leaves_when_its_last_holder_withdraws() {
        let both = {
            let mut h = Holders::of(Holder::Api);
            h.hold(Holder::Config);
            h
        };
        let table = [
            (Holders::of(Holder::Api), Holder::Api, true),
            (Holders::of(Holder::Api), Holder::Config, false),
            (Holders::of(Holder::Config), Holder::Config, true),
            (Holders::of(Holder::Config), Holder::Api, false),
            (both, Holder::Api, false),
            (both, Holder::Config, false),
        ];
        for (before, holder, leaves) in table {
            let mut after = before;
            assert_eq!(after.release(holder), leaves, "{before:?} - {holder:?}");
        }
    }

    #[test]
    fn holding_again_changes_nothing() {
        let mut h = Holders::of(Holder::Config);
        assert!(!h.hold(Holder::Config));
        assert!(h.only(Holder::Config));
        assert!(h.hold(Holder::Api));
        assert!(!h.only(Holder::Config) && !h.only(Holder::Api));
        assert!(h.is_held_by(Holder::Api) && h.is_held_by(Holder::Config));
    }

    /// Each row: the prefix's own holders, its targets' holders, held by the API, abandoned.
    #[test]
    fn who_holds_a_prefix() {
        let api = RouteHolders {
            api_claimed: true,
            config_named: false,
        };
        let named = RouteHolders {
            api_claimed: false,
            config_named: true,
        };
        let none = RouteHolders::default();
        let table: [(RouteHolders, &[Holders], bool, bool); 6] = [
            (api, &[], true, false),
            (named, &[], false, false),
            (none, &[], false, true),
            (none, &[Holders::of(Holder::Api)], true, false),
            (none, &[Holders::of(Holder::Config)], false, false),
            (named, &[Holders::of(Holder::Config)], false, false),
        ];
        for (route, targets, held, abandoned) in table {
            let row = format!("{route:?} {targets:?}");
            assert_eq!(route.held_by_api(targets.iter().copied()), held, "{row}");
            assert_eq!(route.abandoned(targets.len()), abandoned, "{row}");
        }
    }
}
