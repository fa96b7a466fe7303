//! The executor: walks the planned changes in dependency order with bounded concurrency,
//! polls long-running tasks, and reports progress events.
//!
//! Steps never sleep: a provider call returns "done" or a task handle, and this loop alone
//! owns timing — poll delays (backoff guided by the task's own estimate), deadlines and
//! cancellation. A task being polled holds no parallelism slot, so a two-hour SDDC create never
//! stalls unrelated work. A failure skips its dependants; independent work goes on.

pub mod events;
pub mod lock;
mod rotation;
pub mod schedule;
mod secret_file;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::model::{Address, Kind, Model, Resource};
use crate::plan::substitute;
use crate::plan::{Action, Plan, ProviderSet, ResourceChange};
use crate::providers::{
    Attributes, CreateRequest, DeleteRequest, LiveObject, LiveStatus, Outcome, Provider,
    ProviderError, TaskHandle, TaskStatus, UpdateRequest,
};

pub use events::{Event, EventSink};
use schedule::Scheduler;

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceOutcome {
    Done,
    Failed(String),
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

/// One step of a node: a call to the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Create,
    Update,
    Delete,
    /// Wait for a task already running (or for the object to leave a busy state).
    Wait,
    /// Rotate a credential: create, hand over the secret, revoke (`rotation.rs`).
    Rotate,
}

fn steps_for(action: Action) -> Vec<Step> {
    match action {
        Action::Create => vec![Step::Create],
        Action::Update => vec![Step::Update],
        Action::Delete => vec![Step::Delete],
        Action::Replace => vec![Step::Delete, Step::Create],
        Action::Wait => vec![Step::Wait],
        Action::Rotate => vec![Step::Rotate],
        Action::NoOp => vec![],
    }
}

/// Where a node is.
enum NodeState {
    Pending,
    /// A provider call is in flight.
    Calling,
    /// Polling a task; the next poll is due at `due`.
    Polling {
        task: Option<TaskHandle>,
        due: Instant,
        polls: u32,
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
    last_progress: Option<u8>,
    last_eta: Option<Duration>,
    /// The live object as far as this run knows it (updated after a delete or create).
    live: Option<Arc<LiveObject>>,
    timeouts: crate::model::Timeouts,
}

/// What a finished provider call reported back to the loop.
struct CallResult {
    address: Address,
    result: Result<CallOutcome, String>,
    /// This result frees the parallelism slot its call held (one per call, however many
    /// nodes a batched call carried; polls hold none).
    holds_slot: bool,
}

enum CallOutcome {
    /// The step finished; attributes for dependants.
    StepDone(Attributes),
    /// Poll this task next.
    Task(TaskHandle),
    /// A poll answered.
    Polled(TaskStatus),
    /// A wait without a task handle re-read the object: still busy or not.
    Reread {
        busy: bool,
        object: Option<Box<LiveObject>>,
    },
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
            depends_on: change.depends_on.iter().cloned().collect(),
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
                last_progress: None,
                last_eta: None,
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
                    ResourceOutcome::Failed("its dependencies never completed".into()),
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
                match handle_result(node, result.result, options, events) {
                    NodeProgress::Continue => {}
                    NodeProgress::Polling => {
                        if was_action {
                            scheduler.free_slot();
                        }
                    }
                    NodeProgress::StepFinished(attrs) => {
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
                    NodeProgress::Failed(message) => {
                        if was_action {
                            scheduler.free_slot();
                        }
                        node.state = NodeState::Finished;
                        events.emit(&Event::Failed {
                            address: address.to_string(),
                            message: message.clone(),
                        });
                        report.results.insert(address.clone(), ResourceOutcome::Failed(message));
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
                    let NodeState::Polling { task, due, deadline, .. } = &node.state else { continue };
                    if *deadline <= now {
                        let message = format!(
                            "timed out after {} waiting for the server task",
                            humantime::format_duration(Duration::from_secs(node.started.map(|s| s.elapsed().as_secs()).unwrap_or(0)))
                        );
                        node.state = NodeState::Finished;
                        events.emit(&Event::Failed { address: address.to_string(), message: message.clone() });
                        report.results.insert(address.clone(), ResourceOutcome::Failed(message));
                        polling_set.remove(address);
                        scheduler.failed(address);
                        continue;
                    }
                    if *due <= now && !cancelled {
                        let task = task.clone();
                        spawn_poll(node, address, task, providers, &mut calls);
                    } else if now.duration_since(node.last_heartbeat) >= options.heartbeat {
                        node.last_heartbeat = now;
                        events.emit(&Event::still_running(
                            address,
                            node.change.action,
                            node.started.map(|s| s.elapsed()).unwrap_or_default(),
                            node.last_progress,
                            node.last_eta,
                            task.as_ref().map(|t| t.id.clone()),
                        ));
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
        let outcome = match node.state {
            NodeState::Polling {
                task: Some(task), ..
            } => ResourceOutcome::StillRunning(task),
            NodeState::Polling { task: None, .. } => ResourceOutcome::NotStarted,
            _ => ResourceOutcome::NotStarted,
        };
        report.results.insert(address, outcome);
    }
    report
}

enum NodeProgress {
    Continue,
    Polling,
    StepFinished(Attributes),
    Failed(String),
}

fn handle_result(
    node: &mut Node,
    result: Result<CallOutcome, String>,
    options: &ApplyOptions,
    events: &dyn EventSink,
) -> NodeProgress {
    let step = node.steps[node.next_step];
    let timeout = match step {
        Step::Create => node.timeouts.create,
        Step::Update | Step::Wait | Step::Rotate => node.timeouts.update,
        Step::Delete => node.timeouts.delete,
    };
    match result {
        Err(message) => NodeProgress::Failed(message),
        Ok(CallOutcome::StepDone(attrs)) => NodeProgress::StepFinished(attrs),
        Ok(CallOutcome::Task(task)) => {
            node.state = NodeState::Polling {
                task: Some(task),
                due: Instant::now() + options.first_poll,
                polls: 0,
                deadline: Instant::now() + timeout,
            };
            NodeProgress::Polling
        }
        Ok(CallOutcome::Polled(status)) => {
            let NodeState::Polling {
                task,
                polls,
                deadline,
                ..
            } = &node.state
            else {
                return NodeProgress::Continue;
            };
            let (task, polls, deadline) = (task.clone(), *polls + 1, *deadline);
            match status {
                TaskStatus::Done => {
                    // A create or replace needs the new object's attributes.
                    NodeProgress::StepFinished(Attributes::default())
                }
                TaskStatus::Failed(message) => {
                    NodeProgress::Failed(format!("the server task failed: {message}"))
                }
                TaskStatus::Pending { progress, eta } => {
                    let eta = eta.map(|eta| real_time(eta, options.server_time_scale));
                    node.last_progress = progress.or(node.last_progress);
                    let delay = poll_delay(options, polls, eta);
                    let now = Instant::now();
                    node.last_eta = eta;
                    if events.wants_every_poll()
                        || now.duration_since(node.last_heartbeat) >= options.heartbeat
                    {
                        node.last_heartbeat = now;
                        events.emit(&Event::still_running(
                            &node.change.address,
                            node.change.action,
                            node.started.map(|s| s.elapsed()).unwrap_or_default(),
                            node.last_progress,
                            eta,
                            task.as_ref().map(|t| t.id.clone()),
                        ));
                    }
                    node.state = NodeState::Polling {
                        task,
                        due: now + delay,
                        polls,
                        deadline,
                    };
                    NodeProgress::Continue
                }
            }
        }
        Ok(CallOutcome::Reread { busy, object }) => {
            if busy {
                let NodeState::Polling {
                    task,
                    polls,
                    deadline,
                    ..
                } = &node.state
                else {
                    return NodeProgress::Continue;
                };
                let polls = *polls + 1;
                node.state = NodeState::Polling {
                    task: task.clone(),
                    due: Instant::now() + poll_delay(options, polls, None),
                    polls,
                    deadline: *deadline,
                };
                NodeProgress::Continue
            } else {
                let attrs = object
                    .as_ref()
                    .map(|o| o.attributes.clone())
                    .unwrap_or_default();
                node.live = object.map(|o| Arc::new(*o));
                NodeProgress::StepFinished(attrs)
            }
        }
    }
}

/// Everything a provider call of one node needs, taken out of the loop's state.
struct PreparedStep {
    step: Step,
    provider: Arc<dyn Provider>,
    resource: Resource,
    desired: serde_json::Value,
    live: Option<Arc<LiveObject>>,
    changed: Vec<String>,
    connection: String,
    attempt: u32,
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
) -> Result<PreparedStep, String> {
    let step = node.steps[node.next_step];
    let address = &node.change.address;
    let provider = providers
        .get(&node.change.connection)
        .cloned()
        .ok_or_else(|| format!("no provider for connection `{}`", node.change.connection))?;
    let resource = model
        .resources
        .get(address)
        .cloned()
        .or_else(|| crate::plan::prune::stand_in(&node.change))
        .ok_or_else(|| "the resource is no longer declared".to_string())?;
    let desired = resolve_now(&resource, attributes);
    if step != Step::Delete
        && let Some(reference) = unresolved(&resource, attributes)
    {
        return Err(format!(
            "`${{{reference}}}` is not known: its resource did not report it"
        ));
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

fn spawn_failure(address: Address, message: String, calls: &mut JoinSet<Vec<CallResult>>) {
    calls.spawn(async move {
        vec![CallResult {
            address,
            result: Err(message),
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
        node.state = NodeState::Polling {
            task: node.change.task.clone(),
            due: now,
            polls: 0,
            deadline: now + node.timeouts.update.max(options.first_poll),
        };
        return false;
    }
    node.state = NodeState::Calling;
    let prepared = match prepare_step(node, model, providers, attributes) {
        Ok(prepared) => prepared,
        Err(message) => {
            spawn_failure(address, message, calls);
            return true;
        }
    };
    calls.spawn(async move {
        let p = prepared;
        let result = run_step(
            p.step,
            p.provider.as_ref(),
            &p.resource,
            &p.desired,
            p.live.as_deref(),
            &p.changed,
            &p.connection,
            p.attempt,
        )
        .await;
        vec![CallResult {
            address,
            result,
            holds_slot: true,
        }]
    });
    true
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
                Some(outcome) => settle_outcome(&p.resource, outcome),
                None => Err("the provider returned no result for this create".to_string()),
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

#[allow(clippy::too_many_arguments)]
async fn run_step(
    step: Step,
    provider: &dyn Provider,
    resource: &Resource,
    desired: &serde_json::Value,
    live: Option<&LiveObject>,
    changed: &[String],
    connection: &str,
    attempt: u32,
) -> Result<CallOutcome, String> {
    let address = &resource.address;
    let outcome = match step {
        Step::Create => {
            let request = CreateRequest {
                address,
                spec: desired,
                idempotency_key: idempotency_key(connection, address, attempt),
                base_dir: &resource.base_dir,
            };
            provider.create(&request).await
        }
        Step::Update => {
            let Some(live) = live else {
                return Err("the object to update was not found".to_string());
            };
            let request = UpdateRequest {
                address,
                live,
                spec: desired,
                changed,
                allow_power_cycle: crate::model::rules::PowerCycle::of_spec(desired).is_some(),
            };
            provider.update(&request).await
        }
        Step::Delete => {
            let Some(live) = live else {
                return Ok(CallOutcome::StepDone(Attributes::default()));
            };
            let outcome = provider.delete(&DeleteRequest { address, live }).await;
            if outcome.is_ok()
                && address.kind == Kind::VcdApiToken
                && let Some(file) = secret_file::token_file(resource)
                && file.exists()
            {
                tracing::warn!(
                    "{address}: the token file `{}` was left in place",
                    file.display()
                );
            }
            outcome
        }
        Step::Rotate => {
            let Some(live) = live else {
                return Err("the token to rotate was not found".to_string());
            };
            return rotation::rotate(provider, resource, desired, live)
                .await
                .map(CallOutcome::StepDone);
        }
        Step::Wait => return Err("internal: a wait is not a call".to_string()),
    };
    settle_outcome(resource, outcome)
}

/// Turns a provider's answer into the loop's terms, keeping a one-time secret on disk.
fn settle_outcome(
    resource: &Resource,
    outcome: Result<Outcome, ProviderError>,
) -> Result<CallOutcome, String> {
    match outcome.map_err(|e| describe(&e))? {
        Outcome::Done { attributes, secret } => {
            if let Some(secret) = secret {
                secret_file::write(resource, &secret).map_err(|e| e.to_string())?;
            }
            Ok(CallOutcome::StepDone(attributes))
        }
        Outcome::Task(task) => Ok(CallOutcome::Task(task)),
    }
}

fn describe(error: &ProviderError) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Polls a node's task (or re-reads the object when there is no task handle).
fn spawn_poll(
    node: &mut Node,
    address: &Address,
    task: Option<TaskHandle>,
    providers: &ProviderSet,
    calls: &mut JoinSet<Vec<CallResult>>,
) {
    if let NodeState::Polling { due, .. } = &mut node.state {
        // Not due again until this poll answers.
        *due = Instant::now() + Duration::from_secs(24 * 3600);
    }
    let provider: Option<Arc<dyn Provider>> = providers.get(&node.change.connection).cloned();
    let address = address.clone();
    let reread_after =
        node.steps[node.next_step] == Step::Create || node.steps[node.next_step] == Step::Wait;
    calls.spawn(async move {
        let Some(provider) = provider else {
            return vec![CallResult {
                address,
                result: Err("no provider for the connection".to_string()),
                holds_slot: false,
            }];
        };
        let result = match task {
            Some(task) => match provider.poll(&task).await {
                Ok(TaskStatus::Done) if reread_after => reread(provider.as_ref(), &address).await,
                Ok(status) => Ok(CallOutcome::Polled(status)),
                Err(err) => Err(describe(&err)),
            },
            None => reread(provider.as_ref(), &address).await,
        };
        vec![CallResult {
            address,
            result,
            holds_slot: false,
        }]
    });
}

/// Lists the object again (for its attributes, or to see whether it is still busy).
async fn reread(provider: &dyn Provider, address: &Address) -> Result<CallOutcome, String> {
    let listed = provider
        .list(address.kind, std::slice::from_ref(&address.name))
        .await
        .map_err(|e| describe(&e))?;
    let object = listed
        .into_iter()
        .find(|o| o.name == address.name && o.status != LiveStatus::Deleted);
    let busy = object
        .as_ref()
        .is_some_and(|o| matches!(o.status, LiveStatus::Busy { .. }));
    if let Some(LiveStatus::Failed { reason }) = object.as_ref().map(|o| &o.status) {
        return Err(format!("the server reports the object failed: {reason}"));
    }
    Ok(CallOutcome::Reread {
        busy,
        object: object.map(Box::new),
    })
}

/// Exponential backoff from `first_poll`, capped by half the task's own estimate (never
/// below the first delay) and by `max_poll_interval`.
/// A server duration in real time, given the server's clock rate.
fn real_time(server: Duration, server_time_scale: f64) -> Duration {
    if server_time_scale.is_finite() && server_time_scale > 0.0 {
        server.div_f64(server_time_scale)
    } else {
        server
    }
}

pub fn poll_delay(options: &ApplyOptions, polls: u32, eta: Option<Duration>) -> Duration {
    let exponential = options
        .first_poll
        .saturating_mul(1u32 << polls.min(20))
        .min(options.max_poll_interval);
    match eta {
        Some(eta) => exponential.min((eta / 2).max(options.first_poll)),
        None => exponential,
    }
}
