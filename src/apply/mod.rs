//! The executor: walks the planned changes in dependency order with bounded concurrency,
//! polls long-running tasks, and reports progress events.
//!
//! Three parts: [`schedule`] decides what may start (ready set, blockers, skips, the
//! parallelism limit) and knows nothing of providers; `step` makes one provider call or poll
//! and decides the next action (`Done`, `PollAfter(delay)` or `Failed(ApplyError)`); this
//! loop alone owns timing — it sleeps until the next poll is due, enforces deadlines, and
//! stops on cancellation (Ctrl-C, SIGTERM, a lost lock). A task being polled holds no
//! parallelism slot, so a two-hour SDDC create never stalls unrelated work. A failure skips
//! its dependants; independent work goes on.

mod error;
pub mod events;
pub mod lock;
mod rotation;
pub mod schedule;
mod secret_file;
mod step;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::model::{Address, Model, Resource};
use crate::plan::substitute;
use crate::plan::{Action, Plan, ProviderSet, ResourceChange};
use crate::providers::{Attributes, CreateRequest, LiveObject, Provider, TaskHandle, TaskStatus};

pub use error::{ApplyError, Call};
pub use events::{Event, EventSink};
use schedule::Scheduler;
pub use step::poll_delay;
use step::{CallOutcome, Next, PreparedStep, Step, Waiting, steps_for};

/// Namespace of the deterministic ids of creates (UUIDv5 of address and attempt).
pub const ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c1f_3a0e_9a57_4c43_8a55_0f1d_5e7a_2b91);

/// The client-chosen id for creating `address` on `connection` for the `attempt`-th time.
pub fn idempotency_key(connection: &str, address: &Address, attempt: u32) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &ID_NAMESPACE,
        format!("{connection}/{address}#{attempt}").as_bytes(),
    )
}

/// How an apply runs.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Actions in flight at once (tasks being polled do not count).
    pub parallelism: usize,
    /// First poll delay; doubles up to `max_poll_interval`, capped by half the task's ETA.
    pub first_poll: Duration,
    pub max_poll_interval: Duration,
    /// Interval of "still creating…" heartbeats.
    pub heartbeat: Duration,
    /// Server seconds per real second: the simulator's time scale under `--sim`, else 1.
    /// Server estimates of remaining time are divided by it, so progress shows real time.
    pub server_time_scale: f64,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            parallelism: 10,
            first_poll: Duration::from_secs(1),
            max_poll_interval: Duration::from_secs(600),
            heartbeat: Duration::from_secs(10),
            server_time_scale: 1.0,
        }
    }
}

/// How one resource ended.
#[derive(Clone, Debug)]
pub enum ResourceOutcome {
    Done,
    /// Shared: the report and the progress event both hold it.
    Failed(Arc<ApplyError>),
    Skipped {
        because: Address,
    },
    /// Interrupted while its server task was still running.
    StillRunning(TaskHandle),
    /// Interrupted before it started.
    NotStarted,
}

/// The result of an apply.
#[derive(Clone, Debug, Default)]
pub struct ApplyReport {
    pub results: BTreeMap<Address, ResourceOutcome>,
    pub interrupted: bool,
    /// Counts of completed actions for the closing line.
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
}

impl ApplyReport {
    pub fn failed(&self) -> bool {
        self.results.values().any(|o| {
            matches!(
                o,
                ResourceOutcome::Failed(_) | ResourceOutcome::Skipped { .. }
            )
        })
    }
}

/// Where a node is.
enum NodeState {
    Pending,
    /// A provider call is in flight.
    Calling,
    /// Waiting between polls (`Next::PollAfter`); the next poll is due at `due`.
    Polling {
        due: Instant,
        deadline: Instant,
    },
    Finished,
}

struct Node {
    change: ResourceChange,
    steps: Vec<Step>,
    next_step: usize,
    state: NodeState,
    started: Option<Instant>,
    last_heartbeat: Instant,
    /// The task waited on and what its polls reported.
    waiting: Waiting,
    /// The live object as far as this run knows it (updated after a delete or create).
    live: Option<Arc<LiveObject>>,
    timeouts: crate::model::Timeouts,
}

/// What a finished provider call reported back to the loop.
struct CallResult {
    address: Address,
    result: Result<CallOutcome, ApplyError>,
    /// This result frees the parallelism slot its call held (one per call, however many
    /// nodes a batched call carried; polls hold none).
    holds_slot: bool,
}

/// Carries out `plan`. Returns when everything finished, failed or was skipped, or after
/// `cancel` fired and in-flight calls came back.
pub async fn apply(
    plan: &Plan,
    model: &Model,
    providers: &ProviderSet,
    options: &ApplyOptions,
    events: &dyn EventSink,
    cancel: CancellationToken,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    let mut nodes: BTreeMap<Address, Node> = BTreeMap::new();
    let now = Instant::now();
    // Attributes known so far, for `${...}` of dependants.
    let mut attributes: BTreeMap<Address, Attributes> = BTreeMap::new();
    let mut planned = Vec::new();
    for change in &plan.changes {
        if let Some(live) = &change.live {
            attributes.insert(change.address.clone(), live.attributes.clone());
        }
        if !change.is_change() {
            continue;
        }
        planned.push(schedule::Planned {
            address: change.address.clone(),
            action: change.action,
            depends_on: change.depends_on.to_vec(),
        });
        nodes.insert(
            change.address.clone(),
            Node {
                steps: steps_for(change.action),
                change: change.clone(),
                next_step: 0,
                state: NodeState::Pending,
                started: None,
                last_heartbeat: now,
                waiting: Waiting::default(),
                live: change.live.clone(),
                timeouts: model
                    .resources
                    .get(&change.address)
                    .map(|r| r.timeouts)
                    .unwrap_or_default(),
            },
        );
    }
    let mut scheduler = Scheduler::new(planned, options.parallelism);
    let mut polling_set: BTreeSet<Address> = BTreeSet::new();

    let mut calls: JoinSet<Vec<CallResult>> = JoinSet::new();
    let mut cancelled = false;
    loop {
        // Start what is ready.
        if !cancelled {
            // Ready creates of providers with a batched API, by connection; each batch holds
            // one slot.
            let mut batches: BTreeMap<String, Vec<(Address, PreparedStep)>> = BTreeMap::new();
            loop {
                let next = scheduler.next_ready(|address| {
                    // Only a create joining an open batch goes without a slot of its own.
                    batch_limit(&nodes[address], providers) <= 1
                        || batches
                            .get(&nodes[address].change.connection)
                            .is_none_or(Vec::is_empty)
                });
                let Some(address) = next else {
                    break;
                };
                let address = &address;
                let batch_limit = batch_limit(&nodes[address], providers);
                let node = nodes.get_mut(address).expect("node exists");
                node.started = Some(Instant::now());
                events.emit(&Event::started(address, node.change.action));
                if batch_limit > 1 {
                    node.state = NodeState::Calling;
                    match prepare_step(node, model, providers, &attributes) {
                        Ok(prepared) => {
                            let batch = batches.entry(node.change.connection.clone()).or_default();
                            if batch.is_empty() {
                                scheduler.take_slot();
                            }
                            batch.push((address.clone(), prepared));
                            if batch.len() >= batch_limit {
                                let full = std::mem::take(batch);
                                spawn_batch(full, &mut calls);
                            }
                        }
                        Err(message) => {
                            scheduler.take_slot();
                            spawn_failure(address.clone(), message, &mut calls);
                        }
                    }
                } else if start_step(node, model, providers, &attributes, options, &mut calls) {
                    scheduler.take_slot();
                }
                if matches!(node.state, NodeState::Polling { .. }) {
                    polling_set.insert(address.clone());
                }
            }
            for batch in batches.into_values().filter(|b| !b.is_empty()) {
                spawn_batch(batch, &mut calls);
            }
            // Skip what can never run, following chains of dependants to the end.
            for (address, because) in scheduler.skips() {
                if let Some(node) = nodes.get_mut(&address) {
                    node.state = NodeState::Finished;
                }
                events.emit(&Event::Skipped {
                    address: address.to_string(),
                    because: because.to_string(),
                });
                report
                    .results
                    .insert(address, ResourceOutcome::Skipped { because });
            }
        }

        let polling: Vec<(Address, Instant)> = polling_set
            .iter()
            .filter_map(|a| match &nodes[a].state {
                NodeState::Polling { due, .. } => Some((a.clone(), *due)),
                _ => None,
            })
            .collect();
        let pending_left = scheduler.pending() > 0;
        if calls.is_empty() && (polling.is_empty() || cancelled) && (!pending_left || cancelled) {
            break;
        }
        if calls.is_empty() && polling.is_empty() && pending_left {
            // Nothing runs and nothing can start: the remaining nodes wait on each other.
            for address in scheduler.give_up() {
                if let Some(node) = nodes.get_mut(&address) {
                    node.state = NodeState::Finished;
                }
                report.results.insert(
                    address,
                    ResourceOutcome::Failed(Arc::new(ApplyError::DependenciesNeverCompleted)),
                );
            }
            break;
        }
        let next_due = polling.iter().map(|(_, due)| *due).min();
        let heartbeat_due = Instant::now() + options.heartbeat;
        let wake = next_due.map_or(heartbeat_due, |d| d.min(heartbeat_due));

        tokio::select! {
            joined = calls.join_next(), if !calls.is_empty() => {
                let Some(joined) = joined else { continue };
                let results = match joined {
                    Ok(results) => results,
                    Err(err) => {
                        // A step task panicked: report it instead of losing the node.
                        tracing::error!("an apply step stopped unexpectedly: {err}");
                        continue;
                    }
                };
                for result in results {
                let address = result.address.clone();
                let Some(node) = nodes.get_mut(&address) else { continue };
                let was_action = result.holds_slot;
                let answer = result.result;
                let poll_pending = matches!(&answer, Ok(CallOutcome::Polled(TaskStatus::Pending { .. })));
                if let Ok(CallOutcome::Reread { busy: false, object }) = &answer {
                    node.live = object.as_ref().map(|o| Arc::new(LiveObject::clone(o)));
                }
                match step::decide(answer, &mut node.waiting, options) {
                    Next::PollAfter(delay) => {
                        if was_action {
                            scheduler.free_slot();
                        }
                        let now = Instant::now();
                        // A call that answered with a task starts the step's deadline; a poll
                        // keeps it.
                        let deadline = match node.state {
                            NodeState::Polling { deadline, .. } => deadline,
                            _ => now + step_timeout(node),
                        };
                        if poll_pending
                            && (events.wants_every_poll()
                                || now.duration_since(node.last_heartbeat) >= options.heartbeat)
                        {
                            node.last_heartbeat = now;
                            events.emit(&still_running(node));
                        }
                        node.state = NodeState::Polling { due: now + delay, deadline };
                    }
                    Next::Done(attrs) => {
                        if !attrs.is_empty() {
                            attributes.entry(address.clone()).or_default().extend(attrs);
                        }
                        if was_action {
                            scheduler.free_slot();
                        }
                        if node.steps[node.next_step] == Step::Delete {
                            node.live = None;
                        }
                        node.next_step += 1;
                        if node.next_step < node.steps.len() {
                            if cancelled {
                                node.state = NodeState::Finished;
                                report.results.insert(address.clone(), ResourceOutcome::NotStarted);
                            } else if start_step(node, model, providers, &attributes, options, &mut calls) {
                                scheduler.take_slot();
                            }
                        } else {
                            node.state = NodeState::Finished;
                            let elapsed = node.started.map(|s| s.elapsed()).unwrap_or_default();
                            events.emit(&Event::finished(&address, node.change.action, elapsed));
                            match node.change.action {
                                Action::Create => report.added += 1,
                                Action::Update | Action::Rotate => report.changed += 1,
                                Action::Delete => report.destroyed += 1,
                                Action::Replace => {
                                    report.added += 1;
                                    report.destroyed += 1;
                                }
                                Action::Wait | Action::NoOp => {}
                            }
                            report.results.insert(address.clone(), ResourceOutcome::Done);
                            scheduler.done(&address);
                        }
                    }
                    Next::Failed(error) => {
                        if was_action {
                            scheduler.free_slot();
                        }
                        node.state = NodeState::Finished;
                        fail(&mut report, events, &address, error);
                        scheduler.failed(&address);
                    }
                }
                if matches!(nodes[&address].state, NodeState::Polling { .. }) {
                    polling_set.insert(address);
                } else {
                    polling_set.remove(&address);
                }
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                for address in polling_set.clone() {
                    let Some(node) = nodes.get_mut(&address) else { continue };
                    let address = &address;
                    let NodeState::Polling { due, deadline } = node.state else { continue };
                    if deadline <= now {
                        let waited = Duration::from_secs(node.started.map(|s| s.elapsed().as_secs()).unwrap_or(0));
                        node.state = NodeState::Finished;
                        fail(&mut report, events, address, ApplyError::TimedOut { waited });
                        polling_set.remove(address);
                        scheduler.failed(address);
                        continue;
                    }
                    if due <= now && !cancelled {
                        spawn_poll(node, providers, &mut calls);
                    } else if now.duration_since(node.last_heartbeat) >= options.heartbeat {
                        node.last_heartbeat = now;
                        events.emit(&still_running(node));
                    }
                }
            }
            _ = cancel.cancelled(), if !cancelled => {
                cancelled = true;
                report.interrupted = true;
                events.emit(&Event::Interrupted);
            }
        }
    }

    for (address, node) in nodes {
        if report.results.contains_key(&address) {
            continue;
        }
        let outcome = match (node.state, node.waiting.task) {
            (NodeState::Polling { .. }, Some(task)) => ResourceOutcome::StillRunning(task),
            _ => ResourceOutcome::NotStarted,
        };
        report.results.insert(address, outcome);
    }
    report
}

/// How many creates the node's provider takes in one call, when the node's next step is a
/// create; 1 otherwise.
fn batch_limit(node: &Node, providers: &ProviderSet) -> usize {
    if node.steps.get(node.next_step) != Some(&Step::Create) {
        return 1;
    }
    providers
        .get(&node.change.connection)
        .map_or(1, |p| p.create_batch_limit().max(1))
}

/// Resolves the inputs of the node's next call (not a wait).
fn prepare_step(
    node: &Node,
    model: &Model,
    providers: &ProviderSet,
    attributes: &BTreeMap<Address, Attributes>,
) -> Result<PreparedStep, ApplyError> {
    let step = node.steps[node.next_step];
    let address = &node.change.address;
    let provider = providers
        .get(&node.change.connection)
        .cloned()
        .ok_or_else(|| ApplyError::NoProvider {
            connection: node.change.connection.clone(),
        })?;
    let resource = model
        .resources
        .get(address)
        .cloned()
        .or_else(|| crate::plan::prune::stand_in(&node.change))
        .ok_or(ApplyError::NotDeclared)?;
    let desired = resolve_now(&resource, attributes);
    if step != Step::Delete
        && let Some(reference) = unresolved(&resource, attributes)
    {
        return Err(ApplyError::Unresolved { reference });
    }
    Ok(PreparedStep {
        step,
        provider,
        resource,
        desired,
        live: node.live.clone(),
        changed: node.change.fields.iter().map(|f| f.field.clone()).collect(),
        connection: node.change.connection.clone(),
        attempt: node.change.attempt,
    })
}

fn spawn_failure(address: Address, error: ApplyError, calls: &mut JoinSet<Vec<CallResult>>) {
    calls.spawn(async move {
        vec![CallResult {
            address,
            result: Err(error),
            holds_slot: true,
        }]
    });
}

/// Starts the node's next step. Returns whether a provider call (an action slot) was started;
/// a wait goes straight to polling and holds no slot.
fn start_step(
    node: &mut Node,
    model: &Model,
    providers: &ProviderSet,
    attributes: &BTreeMap<Address, Attributes>,
    options: &ApplyOptions,
    calls: &mut JoinSet<Vec<CallResult>>,
) -> bool {
    let step = node.steps[node.next_step];
    let address = node.change.address.clone();
    if step == Step::Wait {
        let now = Instant::now();
        node.waiting = Waiting {
            task: node.change.task.clone(),
            polls: 0,
            ..std::mem::take(&mut node.waiting)
        };
        node.state = NodeState::Polling {
            due: now,
            deadline: now + node.timeouts.update.max(options.first_poll),
        };
        return false;
    }
    node.state = NodeState::Calling;
    let prepared = match prepare_step(node, model, providers, attributes) {
        Ok(prepared) => prepared,
        Err(error) => {
            spawn_failure(address, error, calls);
            return true;
        }
    };
    calls.spawn(async move {
        vec![CallResult {
            address,
            result: step::call(prepared).await,
            holds_slot: true,
        }]
    });
    true
}

/// The time the node's current step may take, from its first task on.
fn step_timeout(node: &Node) -> Duration {
    match node.steps[node.next_step] {
        Step::Create => node.timeouts.create,
        Step::Update | Step::Wait | Step::Rotate => node.timeouts.update,
        Step::Delete => node.timeouts.delete,
    }
}

/// A "still running" heartbeat of a node being waited on.
fn still_running(node: &Node) -> Event {
    Event::still_running(
        &node.change.address,
        node.change.action,
        node.started.map(|s| s.elapsed()).unwrap_or_default(),
        node.waiting.progress,
        node.waiting.eta,
        node.waiting.task.as_ref().map(|t| t.id.clone()),
    )
}

/// Records a node's failure: one progress event with the whole chain on a line, and the
/// error itself in the report for the CLI to render with its causes.
fn fail(report: &mut ApplyReport, events: &dyn EventSink, address: &Address, error: ApplyError) {
    events.emit(&Event::Failed {
        address: address.to_string(),
        message: error.chain(),
    });
    report
        .results
        .insert(address.clone(), ResourceOutcome::Failed(Arc::new(error)));
}

/// Creates several nodes with one [`Provider::create_many`] call (all on one connection).
fn spawn_batch(batch: Vec<(Address, PreparedStep)>, calls: &mut JoinSet<Vec<CallResult>>) {
    let Some(provider) = batch.first().map(|(_, p)| p.provider.clone()) else {
        return;
    };
    calls.spawn(async move {
        let requests: Vec<CreateRequest<'_>> = batch
            .iter()
            .map(|(address, p)| CreateRequest {
                address,
                spec: &p.desired,
                idempotency_key: idempotency_key(&p.connection, address, p.attempt),
                base_dir: &p.resource.base_dir,
            })
            .collect();
        let mut outcomes = provider.create_many(&requests).await.into_iter();
        let mut results = Vec::with_capacity(batch.len());
        for (index, (address, p)) in batch.iter().enumerate() {
            let result = match outcomes.next() {
                Some(outcome) => step::settle_outcome(
                    &p.resource,
                    outcome.map_err(ApplyError::call(Call::Create)),
                ),
                None => Err(ApplyError::NoResult),
            };
            results.push(CallResult {
                address: address.clone(),
                result,
                holds_slot: index == 0,
            });
        }
        results
    });
}

fn resolve_now(
    resource: &Resource,
    attributes: &BTreeMap<Address, Attributes>,
) -> serde_json::Value {
    substitute(&resource.spec.value(), &|reference| {
        attributes
            .get(&reference.target)
            .and_then(|a| a.get(&reference.attribute))
            .cloned()
    })
}

fn unresolved(resource: &Resource, attributes: &BTreeMap<Address, Attributes>) -> Option<String> {
    resource
        .references
        .iter()
        .find(|r| {
            attributes
                .get(&r.target)
                .and_then(|a| a.get(&r.attribute))
                .is_none()
        })
        .map(|r| format!("{}.{}", r.target, r.attribute))
}

/// Polls a node's task (or re-reads the object when there is no task handle).
fn spawn_poll(node: &mut Node, providers: &ProviderSet, calls: &mut JoinSet<Vec<CallResult>>) {
    if let NodeState::Polling { due, .. } = &mut node.state {
        // Not due again until this poll answers.
        *due = Instant::now() + Duration::from_secs(24 * 3600);
    }
    let provider: Option<Arc<dyn Provider>> = providers.get(&node.change.connection).cloned();
    let address = node.change.address.clone();
    let connection = node.change.connection.clone();
    let task = node.waiting.task.clone();
    let reread_after =
        node.steps[node.next_step] == Step::Create || node.steps[node.next_step] == Step::Wait;
    calls.spawn(async move {
        let result = step::poll(provider, &connection, &address, task, reread_after).await;
        vec![CallResult {
            address,
            result,
            holds_slot: false,
        }]
    });
}
