//! The scheduler of an apply: which planned changes may start now (every blocker done), how
//! many calls run at once, and what a failure skips (its dependants, transitively; unrelated
//! work goes on).
//!
//! It knows addresses, actions and dependencies only. It must not touch providers, the clock
//! or the event sinks: the executor loop (`super::apply`) asks it what to start and tells it
//! what ended, so every rule here is tested without a server or a runtime.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Address;
use crate::plan::Action;

/// Where one planned change is, as far as ordering goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not started yet.
    Pending,
    /// Handed to the loop (calling, polling, or between steps).
    Started,
    Done,
    Failed,
    /// Never started because a blocker failed or was skipped.
    Skipped,
}

/// One planned change as the scheduler sees it.
#[derive(Clone, Debug)]
pub struct Planned {
    pub address: Address,
    pub action: Action,
    pub depends_on: Vec<Address>,
}

/// The ready set, blockers, skips and the concurrency limit of one apply.
///
/// Bookkeeping is incremental, so each loop turn costs what changed rather than a scan of
/// every node: unfinished blockers per node, the reverse edges, and the nodes whose blockers
/// are all done, by plan position.
pub struct Scheduler {
    /// Plan order; ties in readiness are broken by it.
    order: Vec<Address>,
    position: BTreeMap<Address, usize>,
    status: Vec<Status>,
    blockers: BTreeMap<Address, BTreeSet<Address>>,
    dependants: BTreeMap<Address, Vec<Address>>,
    unfinished: BTreeMap<Address, usize>,
    ready: BTreeSet<(usize, Address)>,
    pending: usize,
    parallelism: usize,
    in_flight: usize,
    /// A node failed or was skipped since its dependants were last checked.
    check_skips: bool,
}

impl Scheduler {
    /// Orders `changes` (in plan order). A change waits for the changes it depends on, except
    /// that a delete whose dependency is deleted too goes first (dependants are removed
    /// before what they depend on). Dependencies outside `changes` are already satisfied.
    /// At most `parallelism` (at least 1) calls hold a slot at once.
    pub fn new(changes: Vec<Planned>, parallelism: usize) -> Self {
        let position: BTreeMap<Address, usize> = changes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.address.clone(), i))
            .collect();
        let mut blockers: BTreeMap<Address, BTreeSet<Address>> = BTreeMap::new();
        for change in &changes {
            for dep in &change.depends_on {
                let Some(&dep_position) = position.get(dep) else {
                    continue;
                };
                if change.action == Action::Delete && changes[dep_position].action == Action::Delete
                {
                    blockers
                        .entry(dep.clone())
                        .or_default()
                        .insert(change.address.clone());
                } else {
                    blockers
                        .entry(change.address.clone())
                        .or_default()
                        .insert(dep.clone());
                }
            }
        }
        let mut unfinished: BTreeMap<Address, usize> = BTreeMap::new();
        let mut dependants: BTreeMap<Address, Vec<Address>> = BTreeMap::new();
        for (address, deps) in &blockers {
            unfinished.insert(address.clone(), deps.len());
            for dep in deps {
                dependants
                    .entry(dep.clone())
                    .or_default()
                    .push(address.clone());
            }
        }
        let order: Vec<Address> = changes.into_iter().map(|c| c.address).collect();
        let ready = order
            .iter()
            .enumerate()
            .filter(|(_, a)| unfinished.get(*a).is_none_or(|n| *n == 0))
            .map(|(i, a)| (i, a.clone()))
            .collect();
        Self {
            status: vec![Status::Pending; order.len()],
            pending: order.len(),
            order,
            position,
            blockers,
            dependants,
            unfinished,
            ready,
            parallelism: parallelism.max(1),
            in_flight: 0,
            check_skips: false,
        }
    }

    /// The next change to start, first in plan order among the ready ones, marked started.
    /// `None` when nothing is ready, or when the next one `needs_slot` and every slot is
    /// taken (a create joining an open batch needs none).
    pub fn next_ready(&mut self, mut needs_slot: impl FnMut(&Address) -> bool) -> Option<Address> {
        loop {
            let (position, address) = self.ready.pop_first()?;
            if self.status[position] != Status::Pending {
                continue;
            }
            if !self.has_free_slot() && needs_slot(&address) {
                self.ready.insert((position, address));
                return None;
            }
            self.status[position] = Status::Started;
            self.pending -= 1;
            return Some(address);
        }
    }

    pub fn has_free_slot(&self) -> bool {
        self.in_flight < self.parallelism
    }

    /// A call that counts against `parallelism` started (polls do not count).
    pub fn take_slot(&mut self) {
        self.in_flight += 1;
    }

    /// A call that held a slot answered.
    pub fn free_slot(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn status(&self, address: &Address) -> Option<Status> {
        self.position.get(address).map(|&i| self.status[i])
    }

    /// Changes not started yet (neither run nor skipped).
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// `address` finished: its dependants whose blockers are now all done become ready.
    pub fn done(&mut self, address: &Address) {
        self.set(address, Status::Done);
        for dependant in self.dependants.get(address).into_iter().flatten() {
            if let Some(left) = self.unfinished.get_mut(dependant) {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.ready
                        .insert((self.position[dependant], dependant.clone()));
                }
            }
        }
    }

    /// `address` failed: its dependants will be skipped by the next [`Scheduler::skips`].
    pub fn failed(&mut self, address: &Address) {
        self.set(address, Status::Failed);
        self.check_skips = true;
    }

    /// The changes that can never run since the last call, each with the blocker that
    /// failed or was skipped, marked skipped. Chains of dependants are followed to the end,
    /// one generation at a time, each generation in plan order.
    pub fn skips(&mut self) -> Vec<(Address, Address)> {
        let mut skipped = Vec::new();
        while std::mem::take(&mut self.check_skips) {
            let generation: Vec<(usize, Address)> = self
                .order
                .iter()
                .enumerate()
                .filter(|(i, _)| self.status[*i] == Status::Pending)
                .filter_map(|(i, address)| {
                    let deps = self.blockers.get(address)?;
                    let bad = deps.iter().find(|d| {
                        matches!(self.status(d), Some(Status::Failed | Status::Skipped))
                    })?;
                    Some((i, bad.clone()))
                })
                .collect();
            for (i, because) in generation {
                self.status[i] = Status::Skipped;
                self.pending -= 1;
                self.check_skips = true;
                skipped.push((self.order[i].clone(), because));
            }
        }
        skipped
    }

    /// When nothing runs and nothing can start, the changes left wait on each other: marks
    /// them failed and returns them, in address order.
    pub fn give_up(&mut self) -> Vec<Address> {
        let mut stuck: Vec<Address> = self
            .order
            .iter()
            .enumerate()
            .filter(|(i, _)| self.status[*i] == Status::Pending)
            .map(|(_, a)| a.clone())
            .collect();
        stuck.sort();
        for address in &stuck {
            self.set(address, Status::Failed);
            self.pending -= 1;
        }
        stuck
    }

    fn set(&mut self, address: &Address, status: Status) {
        if let Some(&i) = self.position.get(address) {
            self.status[i] = status;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    fn addr(name: &str) -> Address {
        Address::new(Kind::SaltJob, name.to_string())
    }

    fn planned(name: &str, action: Action, deps: &[&str]) -> Planned {
        Planned {
            address: addr(name),
            action,
            depends_on: deps.iter().map(|d| addr(d)).collect(),
        }
    }

    fn create(name: &str, deps: &[&str]) -> Planned {
        planned(name, Action::Create, deps)
    }

    /// Starts everything ready (taking a slot each), in order.
    fn start_all(s: &mut Scheduler) -> Vec<String> {
        let mut started = Vec::new();
        while let Some(a) = s.next_ready(|_| true) {
            s.take_slot();
            started.push(a.name.to_string());
        }
        started
    }

    #[test]
    fn ready_set_follows_plan_order_and_dependencies() {
        let mut s = Scheduler::new(
            vec![
                create("c", &["a"]),
                create("b", &[]),
                create("a", &[]),
                create("d", &["c", "b"]),
            ],
            10,
        );
        assert_eq!(start_all(&mut s), ["b", "a"]);
        s.done(&addr("a"));
        assert_eq!(start_all(&mut s), ["c"]);
        s.done(&addr("c"));
        // `d` still waits for `b`.
        assert!(s.next_ready(|_| true).is_none());
        s.done(&addr("b"));
        assert_eq!(start_all(&mut s), ["d"]);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn deletes_of_dependants_go_before_deletes_of_what_they_depend_on() {
        let mut s = Scheduler::new(
            vec![
                planned("net", Action::Delete, &[]),
                planned("vm", Action::Delete, &["net"]),
            ],
            10,
        );
        assert_eq!(start_all(&mut s), ["vm"]);
        s.done(&addr("vm"));
        assert_eq!(start_all(&mut s), ["net"]);
    }

    #[test]
    fn a_dependency_outside_the_plan_does_not_block() {
        let mut s = Scheduler::new(vec![create("a", &["unchanged"])], 1);
        assert_eq!(start_all(&mut s), ["a"]);
    }

    #[test]
    fn a_failure_skips_its_dependants_transitively_but_not_unrelated_work() {
        let mut s = Scheduler::new(
            vec![
                create("base", &[]),
                create("other", &[]),
                create("mid", &["base"]),
                create("top", &["mid"]),
                create("side", &["other"]),
            ],
            10,
        );
        assert_eq!(start_all(&mut s), ["base", "other"]);
        s.failed(&addr("base"));
        let skipped: Vec<(String, String)> = s
            .skips()
            .into_iter()
            .map(|(a, b)| (a.name.to_string(), b.name.to_string()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("mid".to_string(), "base".to_string()),
                ("top".to_string(), "mid".to_string())
            ]
        );
        assert_eq!(s.status(&addr("top")), Some(Status::Skipped));
        // Nothing more to skip until something else fails.
        assert!(s.skips().is_empty());
        s.done(&addr("other"));
        assert_eq!(start_all(&mut s), ["side"]);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn parallelism_limits_calls_holding_a_slot() {
        let mut s = Scheduler::new(
            vec![create("a", &[]), create("b", &[]), create("c", &[])],
            2,
        );
        assert_eq!(start_all(&mut s), ["a", "b"]);
        assert_eq!(s.in_flight(), 2);
        // A create joining an open batch needs no slot of its own.
        assert_eq!(
            s.next_ready(|_| false).map(|a| a.name.to_string()),
            Some("c".to_string())
        );
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn a_freed_slot_lets_the_next_ready_change_start() {
        let mut s = Scheduler::new(
            vec![create("a", &[]), create("b", &[]), create("c", &[])],
            1,
        );
        assert_eq!(start_all(&mut s), ["a"]);
        // A poll answered: the call holding the slot is over, the node keeps running.
        s.free_slot();
        assert_eq!(start_all(&mut s), ["b"]);
        s.free_slot();
        s.done(&addr("a"));
        assert_eq!(start_all(&mut s), ["c"]);
    }

    #[test]
    fn a_zero_parallelism_still_runs_one_at_a_time() {
        let mut s = Scheduler::new(vec![create("a", &[]), create("b", &[])], 0);
        assert_eq!(start_all(&mut s), ["a"]);
    }

    #[test]
    fn changes_waiting_on_each_other_are_given_up() {
        let mut s = Scheduler::new(vec![create("b", &["a"]), create("a", &["b"])], 4);
        assert!(s.next_ready(|_| true).is_none());
        let stuck: Vec<String> = s
            .give_up()
            .into_iter()
            .map(|a| a.name.to_string())
            .collect();
        assert_eq!(stuck, ["a", "b"]);
        assert_eq!(s.pending(), 0);
        assert_eq!(s.status(&addr("a")), Some(Status::Failed));
    }
}
