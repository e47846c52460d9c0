//! The immutable route table a worker reads on every request.
//!
//! Lookup first chooses a set of routes by the request's host: the routes of that exact host,
//! else those of its one-label wildcard (`*.example.com` for `a.example.com`), else the
//! host-less ones, taking the first set that has a prefix matching the path. Within a set it is
//! longest registered prefix on a path-segment boundary: `/test` matches `/test`, `/test/`,
//! `/test/x` and `/test?q=1`, never `/test2`. It walks the request path's own segment
//! boundaries from the longest candidate down and asks a hash map for each, so its cost grows with
//! the depth of the path (capped by the deepest registered prefix), not with the number of routes;
//! a host costs one hash lookup per host-bound kind (exact, wildcard) that has any route at all,
//! so a registry without host-bound routes costs what it did before virtual hosts.
//! Lookup never allocates.

use crate::balance::Balance;
use crate::cursor::Cursor;
use crate::failures::MaxFails;
use crate::host::{split_route, wildcard_parent};
use crate::maglev::{key_hash, Maglev};
use crate::schedule::Schedule;
use crate::target::Target;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Per-route settings a configuration may give; registrations through the API get the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteOptions {
    /// Strip the prefix before forwarding (the SPEC's default); `false` forwards the request
    /// target unchanged.
    pub strip_prefix: bool,
    /// This route's upstream connect timeout; `None` uses the process-wide one.
    pub connect_timeout: Option<Duration>,
    /// This route's wait for a response head (and each later upstream read); `None` uses the
    /// process-wide one.
    pub upstream_timeout: Option<Duration>,
    /// How a pick chooses among the route's healthy targets.
    pub balance: Balance,
    /// Consecutive failed answers that take a target out (off by default).
    pub max_fails: MaxFails,
    /// How many other targets a request may be sent on to when one fails before anything of
    /// it could have been acted on (see lb-proxy's `policy::retry`); at most [`MAX_RETRIES`].
    pub retries: u8,
}

/// A route's retries when it names none: one other target, as nginx's `proxy_next_upstream`.
pub const DEFAULT_RETRIES: u8 = 1;

/// Most retries a route may ask for.
pub const MAX_RETRIES: u8 = 10;

impl Default for RouteOptions {
    fn default() -> Self {
        RouteOptions {
            strip_prefix: true,
            connect_timeout: None,
            upstream_timeout: None,
            balance: Balance::RoundRobin,
            max_fails: MaxFails::default(),
            retries: DEFAULT_RETRIES,
        }
    }
}

/// One route (a prefix, bound to a host or not) and the healthy targets that serve it, as of
/// one snapshot.
#[derive(Debug)]
pub struct Route {
    /// Its name: the host, if any, then the prefix (see [`crate::split_route`]).
    name: Arc<str>,
    /// Where the prefix starts in `name` (0 for a host-less route).
    host_len: usize,
    cursor: Arc<Cursor>,
    targets: Box<[Arc<Target>]>,
    /// Which of `targets` each pick number goes to, from their weights.
    schedule: Schedule,
    /// The consistent-hash table of a `hash` route with targets.
    maglev: Option<Maglev>,
    options: RouteOptions,
}

impl Route {
    /// A route over the healthy `targets` with their `weights` (same order): the weighted
    /// schedule and the hash table are computed here, when the snapshot is built, never on the
    /// request path. `previous` is this route in the snapshot being replaced, if it was there:
    /// a hash route that only lost targets keeps every other target's keys ([`Maglev::after`]).
    pub(crate) fn new(
        name: Arc<str>,
        cursor: Arc<Cursor>,
        targets: Box<[Arc<Target>]>,
        weights: &[u16],
        options: RouteOptions,
        previous: Option<&Route>,
    ) -> Self {
        let host_len = split_route(&name).0.map_or(0, str::len);
        let maglev = match options.balance {
            Balance::Hash(_) => {
                let addrs: Vec<_> = targets.iter().map(|t| t.addr()).collect();
                match previous.and_then(|p| p.maglev.as_ref().map(|table| (p, table))) {
                    Some((before, table)) => {
                        let old: Vec<_> = before.targets.iter().map(|t| t.addr()).collect();
                        Maglev::after(table, &old, &addrs)
                    }
                    None => Maglev::new(&addrs),
                }
            }
            Balance::RoundRobin | Balance::LeastConn => None,
        };
        Route {
            name,
            host_len,
            cursor,
            targets,
            schedule: Schedule::new(weights),
            maglev,
            options,
        }
    }

    /// This route's settings.
    pub fn options(&self) -> &RouteOptions {
        &self.options
    }

    /// The registered prefix (normalized: no trailing `/` except for the root route).
    pub fn prefix(&self) -> &str {
        &self.name[self.host_len..]
    }

    /// The host the route is bound to (`*.example.com` for a wildcard), `None` for a host-less
    /// route.
    pub fn host(&self) -> Option<&str> {
        (self.host_len > 0).then(|| &self.name[..self.host_len])
    }

    /// The route's name (host, if any, then prefix) as the registry holds it: the same `Arc` in
    /// every snapshot for as long as the route is registered, so a worker can key per-route
    /// state by its address instead of hashing the text on every request.
    pub fn name_shared(&self) -> &Arc<str> {
        &self.name
    }

    /// The healthy targets in round-robin order (targets that are down are left out).
    pub fn targets(&self) -> &[Arc<Target>] {
        &self.targets
    }

    /// Picks a healthy target by the route's policy, without a hash key (a `hash` route then
    /// goes round robin); `None` when the route has none (the caller answers 503).
    #[inline]
    pub fn pick(&self) -> Option<&Arc<Target>> {
        self.pick_index(None).and_then(|i| self.targets.get(i))
    }

    /// [`Route::pick`], as an index into [`Route::targets`], for a request whose hash key has
    /// the value `key` (`None`: no value, or not a `hash` route). Round robin and least
    /// connections take the cursor's one atomic add; a keyed hash pick takes none.
    #[inline]
    fn pick_index(&self, key: Option<&[u8]>) -> Option<usize> {
        let n = self.targets.len();
        if n == 0 {
            return None;
        }
        if let (Some(table), Some(key)) = (&self.maglev, key) {
            return Some(table.lookup(key_hash(key)));
        }
        let k = self.cursor.next();
        if self.options.balance == Balance::LeastConn {
            return Some(self.least_loaded(k % n));
        }
        Some(self.schedule.slot(k, n))
    }

    /// The target with the fewest requests in flight, the first of equals counting from
    /// `start` (so that ties go in round-robin order).
    fn least_loaded(&self, start: usize) -> usize {
        let n = self.targets.len();
        let mut best = (u64::MAX, start);
        for i in (start..n).chain(0..start) {
            let load = self.targets[i].in_flight();
            if load < best.0 {
                best = (load, i);
                if load == 0 {
                    break;
                }
            }
        }
        best.1
    }

    /// Picks in one period of the weighted schedule (`sum(weights) / gcd`), or 0 when the
    /// weights are equal and pick k goes to target `k mod n`.
    pub fn period(&self) -> usize {
        self.schedule.period()
    }
}

/// Where a pick landed in one snapshot: a route and one of its targets, by position. It names
/// the same target for as long as that snapshot lives, so a worker that keeps the snapshot can
/// find the target again when the response arrives without holding (and cloning) an `Arc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    route: usize,
    target: usize,
}

/// A route found for a request, with the request target rewritten (prefix stripped).
#[derive(Debug, Clone, Copy)]
pub struct Match<'s, 'p> {
    /// The matched route.
    pub route: &'s Route,
    /// The route's position in its snapshot.
    index: usize,
    /// What is left of the request target after the prefix; forwarded after [`Match::lead`].
    pub rest: &'p str,
    lead: &'static str,
}

impl<'s> Match<'s, '_> {
    /// Picks the route's next target ([`Route::pick`]) and says where it is in the snapshot.
    #[inline]
    pub fn pick(&self) -> Option<(Slot, &'s Arc<Target>)> {
        self.pick_keyed(None)
    }

    /// [`Match::pick`] for a request whose hash key ([`crate::HashKey`]) has the value `key`:
    /// a `hash` route sends equal keys to the same target while the targets stay the same.
    #[inline]
    pub fn pick_keyed(&self, key: Option<&[u8]>) -> Option<(Slot, &'s Arc<Target>)> {
        let target = self.route.pick_index(key)?;
        let slot = Slot {
            route: self.index,
            target,
        };
        Some((slot, self.route.targets.get(target)?))
    }

    /// `"/"` when the stripped target would otherwise be empty or start with `?`, else `""`.
    /// Forward `lead() + rest`: `/test` -> `/`, `/test?q=1` -> `/?q=1`, `/test/foo` -> `/foo`;
    /// the root route rewrites nothing.
    #[inline]
    pub fn lead(&self) -> &'static str {
        self.lead
    }
}

/// The prefixes of one set of routes (one host's, one wildcard's, or the host-less ones).
#[derive(Debug, Default)]
struct Prefixes {
    /// Prefix -> position in the snapshot's routes.
    index: HashMap<Arc<str>, usize>,
    /// Segments in the deepest prefix of the set: candidates deeper than this cannot match.
    max_depth: usize,
}

impl Prefixes {
    fn add(&mut self, prefix: &str, at: usize) {
        self.max_depth = self.max_depth.max(depth(prefix));
        self.index.insert(Arc::from(prefix), at);
    }
}

/// An immutable route table, published by the registry; cheap to share as `Arc<Snapshot>`.
#[derive(Debug, Default)]
pub struct Snapshot {
    generation: u64,
    routes: Vec<Route>,
    /// The host-less routes.
    plain: Prefixes,
    /// Routes bound to an exact host, by host.
    exact: HashMap<Box<str>, Prefixes>,
    /// Routes bound to a wildcard `*.parent`, by parent.
    wildcard: HashMap<Box<str>, Prefixes>,
    /// Route name -> position in `routes`.
    names: HashMap<Arc<str>, usize>,
}

impl Snapshot {
    /// The route named `name` (host, then prefix), if this snapshot has it.
    pub(crate) fn route_named(&self, name: &str) -> Option<&Route> {
        self.names.get(name).and_then(|&at| self.routes.get(at))
    }

    pub(crate) fn new(generation: u64, routes: Vec<Route>) -> Self {
        let mut snapshot = Snapshot {
            generation,
            ..Snapshot::default()
        };
        for (at, route) in routes.iter().enumerate() {
            let set = match route.host() {
                None => &mut snapshot.plain,
                Some(host) => match host.strip_prefix("*.") {
                    Some(parent) => snapshot.wildcard.entry(parent.into()).or_default(),
                    None => snapshot.exact.entry(host.into()).or_default(),
                },
            };
            set.add(route.prefix(), at);
            snapshot.names.insert(route.name.clone(), at);
        }
        snapshot.routes = routes;
        snapshot
    }

    /// The registry generation this snapshot was published at.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of routes in this snapshot.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when no route is registered.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The target a [`Match::pick`] of this snapshot landed on.
    #[inline]
    pub fn target(&self, slot: Slot) -> Option<&Arc<Target>> {
        self.routes.get(slot.route)?.targets.get(slot.target)
    }

    /// The route a [`Match::pick`] of this snapshot landed on.
    #[inline]
    pub fn route_of(&self, slot: Slot) -> Option<&Route> {
        self.routes.get(slot.route)
    }

    /// A pick on the route named `name` (see [`Route::name_shared`]) in this snapshot, for a
    /// retry that must stay on the route its head was rewritten for; `None` when the route is
    /// gone or has no healthy target.
    pub fn pick_named(&self, name: &str) -> Option<(Slot, &Arc<Target>)> {
        let &index = self.names.get(name)?;
        let route = self.routes.get(index)?;
        let target = route.pick_index(None)?;
        Some((
            Slot {
                route: index,
                target,
            },
            route.targets.get(target)?,
        ))
    }

    /// A second pick on the route of `failed`, for a retry: the route's next target in
    /// round-robin order, or the one after it when the cursor lands on the target that failed;
    /// `None` when the route has no other target.
    pub fn repick(&self, failed: Slot) -> Option<(Slot, &Arc<Target>)> {
        let route = self.routes.get(failed.route)?;
        let len = route.targets.len();
        if len < 2 {
            return None;
        }
        let mut target = route.pick_index(None)?;
        if target == failed.target {
            target = (target + 1) % len;
        }
        let slot = Slot {
            route: failed.route,
            target,
        };
        Some((slot, route.targets.get(target)?))
    }

    /// [`Snapshot::lookup_host`] for a request without a host: the host-less routes only.
    pub fn lookup<'s, 'p>(&'s self, target: &'p str) -> Option<Match<'s, 'p>> {
        self.find(&self.plain, target)
    }

    /// Finds the route for a request to `host` (normalized: lower-case, no port; see
    /// [`crate::request_host`]) for `target` (an origin-form request target: path and optional
    /// query): the first of the exact host's, the wildcard's and the host-less routes that has a
    /// prefix matching on a segment boundary, the longest such prefix within it; returned with
    /// the rest of the target.
    #[inline]
    pub fn lookup_host<'s, 'p>(
        &'s self,
        host: Option<&str>,
        target: &'p str,
    ) -> Option<Match<'s, 'p>> {
        if let Some(host) = host {
            if !self.exact.is_empty() {
                if let Some(found) = self.exact.get(host).and_then(|p| self.find(p, target)) {
                    return Some(found);
                }
            }
            if !self.wildcard.is_empty() {
                let set = wildcard_parent(host).and_then(|parent| self.wildcard.get(parent));
                if let Some(found) = set.and_then(|p| self.find(p, target)) {
                    return Some(found);
                }
            }
        }
        self.lookup(target)
    }

    /// The longest prefix of `set` that `target` has on a segment boundary.
    fn find<'s, 'p>(&'s self, set: &Prefixes, target: &'p str) -> Option<Match<'s, 'p>> {
        let route = |prefix: &str| {
            let &i = set.index.get(prefix)?;
            Some((i, self.routes.get(i)?))
        };
        let path_end = target.find(['?', '#']).unwrap_or(target.len());
        let path = &target[..path_end];
        if path.starts_with('/') {
            // Candidates are the path itself and every prefix of it that ends right before a `/`,
            // longest first; the root route (which rewrites nothing) is tried last.
            let mut end = path.len();
            let mut skip = depth(path).saturating_sub(set.max_depth);
            while end > 1 {
                let candidate = &path[..end];
                if skip == 0 {
                    if let Some((index, found)) = route(candidate) {
                        return Some(matched(found, index, target, end));
                    }
                } else {
                    skip -= 1;
                }
                end = candidate.rfind('/').unwrap_or(0);
            }
        }
        route("/").map(|(index, found)| matched(found, index, target, 0))
    }
}

/// `route` (at `index`) matched for `target` whose first `end` bytes are its prefix (0 for the
/// root route, which rewrites nothing).
fn matched<'s, 'p>(route: &'s Route, index: usize, target: &'p str, end: usize) -> Match<'s, 'p> {
    if !route.options.strip_prefix || end == 0 {
        return Match {
            route,
            index,
            rest: target,
            lead: "",
        };
    }
    let rest = target.get(end..).unwrap_or("");
    let lead = if rest.starts_with('/') { "" } else { "/" };
    Match {
        route,
        index,
        rest,
        lead,
    }
}

/// Number of `/`-separated segments: `/` -> 0, `/a` -> 1, `/a/b` -> 2, `/a/` -> 2.
fn depth(path: &str) -> usize {
    if path == "/" {
        0
    } else {
        path.bytes().filter(|&b| b == b'/').count()
    }
}
