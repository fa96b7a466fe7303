//! One step of one planned change, kube-style: a provider call or a poll answers, and
//! [`decide`] turns the answer into what the loop does next — [`Next::Done`],
//! [`Next::PollAfter`] or [`Next::Failed`]. Nothing here sleeps or reads the clock: the loop
//! in `super::apply` owns waiting, backoff deadlines and cancellation.

use std::sync::Arc;
use std::time::Duration;

use super::error::{ApplyError, Call};
use super::{ApplyOptions, idempotency_key, rotation, secret_file};
use crate::model::{Address, Resource};
use crate::plan::Action;
use crate::providers::{
    Attributes, CreateRequest, DeleteRequest, LiveObject, LiveStatus, Outcome, Provider,
    ProviderError, TaskHandle, TaskStatus, UpdateRequest,
};

/// One step of a node: a call to the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Create,
    Update,
    Delete,
    /// Wait for a task already running (or for the object to leave a busy state).
    Wait,
    /// Rotate a credential: create, hand over the secret, revoke (`rotation.rs`).
    Rotate,
}

pub fn steps_for(action: Action) -> Vec<Step> {
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

/// What the loop does next with a node.
#[derive(Debug)]
pub enum Next {
    /// The step finished; the attributes it reported, for dependants.
    Done(Attributes),
    /// Ask again after this long (the loop sleeps, and enforces the deadline).
    PollAfter(Duration),
    Failed(ApplyError),
}

/// What a provider call or poll answered, before [`decide`] reads it.
#[derive(Debug)]
pub enum CallOutcome {
    /// The step finished; attributes for dependants.
    StepDone(Attributes),
    /// Poll this task next.
    Task(TaskHandle),
    /// The step's work is done but for this task (a rotation's revoke): poll it; once it is
    /// done the step reports `attributes`, and if it fails, `failure` says what still holds.
    Finishing {
        task: TaskHandle,
        attributes: Attributes,
        failure: String,
    },
    /// A poll answered.
    Polled(TaskStatus),
    /// A wait without a task handle re-read the object: still busy or not.
    Reread {
        busy: bool,
        object: Option<Box<LiveObject>>,
    },
}

/// What a node being waited on knows between polls.
#[derive(Clone, Debug, Default)]
pub struct Waiting {
    /// The server task polled; `None` re-reads the object instead.
    pub task: Option<TaskHandle>,
    /// Polls answered so far (the backoff exponent).
    pub polls: u32,
    /// The last progress the server reported (kept when a later poll says nothing).
    pub progress: Option<u8>,
    /// The server's last estimate of the remaining time, in real time.
    pub eta: Option<Duration>,
    /// What the step reports when its task is done, and what a failure of the task means
    /// ([`CallOutcome::Finishing`]).
    pub finishing: Option<(Attributes, String)>,
}

/// The step function: turns one answer into the next action, updating what is known about
/// the wait. Pure, so every rule of it is tested without a server.
pub fn decide(
    answer: Result<CallOutcome, ApplyError>,
    waiting: &mut Waiting,
    options: &ApplyOptions,
) -> Next {
    match answer {
        Err(error) => Next::Failed(explained(error, waiting)),
        Ok(CallOutcome::StepDone(attributes)) => Next::Done(attributes),
        Ok(CallOutcome::Task(task)) => {
            waiting.task = Some(task);
            waiting.polls = 0;
            waiting.finishing = None;
            Next::PollAfter(options.first_poll)
        }
        Ok(CallOutcome::Finishing {
            task,
            attributes,
            failure,
        }) => {
            waiting.task = Some(task);
            waiting.polls = 0;
            waiting.finishing = Some((attributes, failure));
            Next::PollAfter(options.first_poll)
        }
        // A create or replace needs the new object's attributes: the poll re-read it.
        Ok(CallOutcome::Polled(TaskStatus::Done)) => Next::Done(
            waiting
                .finishing
                .take()
                .map(|(attributes, _)| attributes)
                .unwrap_or_default(),
        ),
        Ok(CallOutcome::Polled(TaskStatus::Failed(message))) => {
            Next::Failed(explained(ApplyError::TaskFailed { message }, waiting))
        }
        Ok(CallOutcome::Polled(TaskStatus::Pending { progress, eta })) => {
            let eta = eta.map(|eta| real_time(eta, options.server_time_scale));
            waiting.progress = progress.or(waiting.progress);
            waiting.polls += 1;
            waiting.eta = eta;
            Next::PollAfter(poll_delay(options, waiting.polls, eta))
        }
        Ok(CallOutcome::Reread { busy: true, .. }) => {
            waiting.polls += 1;
            Next::PollAfter(poll_delay(options, waiting.polls, None))
        }
        Ok(CallOutcome::Reread {
            busy: false,
            object,
        }) => Next::Done(object.map(|o| o.attributes).unwrap_or_default()),
    }
}

/// A failure while finishing a step ([`CallOutcome::Finishing`]), with what it means.
fn explained(error: ApplyError, waiting: &mut Waiting) -> ApplyError {
    match waiting.finishing.take() {
        Some((_, failure)) => ApplyError::Rotation {
            message: failure,
            source: Some(Box::new(error)),
        },
        None => error,
    }
}

/// A server duration in real time, given the server's clock rate.
fn real_time(server: Duration, server_time_scale: f64) -> Duration {
    if server_time_scale.is_finite() && server_time_scale > 0.0 {
        server.div_f64(server_time_scale)
    } else {
        server
    }
}

/// Exponential backoff from `first_poll`, capped by half the task's own estimate (never
/// below the first delay) and by `max_poll_interval`.
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

/// Everything a provider call of one node needs, taken out of the loop's state.
pub struct PreparedStep {
    pub step: Step,
    pub provider: Arc<dyn Provider>,
    pub resource: Resource,
    pub desired: serde_json::Value,
    pub live: Option<Arc<LiveObject>>,
    pub changed: Vec<String>,
    pub connection: String,
    pub attempt: u32,
}

/// Makes the provider call of a prepared step.
pub async fn call(p: PreparedStep) -> Result<CallOutcome, ApplyError> {
    let provider = p.provider.as_ref();
    let resource = &p.resource;
    let desired = &p.desired;
    let address = &resource.address;
    let outcome = match p.step {
        Step::Create => {
            let request = CreateRequest {
                address,
                spec: desired,
                idempotency_key: idempotency_key(&p.connection, address, p.attempt),
                base_dir: &resource.base_dir,
            };
            provider
                .create(&request)
                .await
                .map_err(ApplyError::call(Call::Create))
        }
        Step::Update => {
            let Some(live) = p.live.as_deref() else {
                return Err(ApplyError::NotFound {
                    what: "object to update",
                });
            };
            let request = UpdateRequest {
                address,
                live,
                spec: desired,
                changed: &p.changed,
            };
            provider
                .update(&request)
                .await
                .map_err(ApplyError::call(Call::Update))
        }
        Step::Delete => {
            let Some(live) = p.live.as_deref() else {
                return Ok(CallOutcome::StepDone(Attributes::default()));
            };
            let outcome = provider.delete(&DeleteRequest { address, live }).await;
            if outcome.is_ok()
                && let Some(file) = address.kind.rules().secret_file(resource)
                && file.exists()
            {
                tracing::warn!(
                    "{address}: the token file `{}` was left in place",
                    file.display()
                );
            }
            outcome.map_err(ApplyError::call(Call::Delete))
        }
        Step::Rotate => {
            let Some(live) = p.live.as_deref() else {
                return Err(ApplyError::NotFound {
                    what: "token to rotate",
                });
            };
            let rotated = rotation::rotate(provider, resource, desired, live).await?;
            return Ok(match rotated.revoking {
                None => CallOutcome::StepDone(rotated.attributes),
                Some(revoking) => CallOutcome::Finishing {
                    task: revoking.task,
                    attributes: rotated.attributes,
                    failure: revoking.failure,
                },
            });
        }
        Step::Wait => return Err(ApplyError::Internal("a wait is not a call")),
    };
    settle_outcome(resource, outcome)
}

/// Turns a provider's answer into the loop's terms, keeping a one-time secret on disk.
pub fn settle_outcome(
    resource: &Resource,
    outcome: Result<Outcome, ApplyError>,
) -> Result<CallOutcome, ApplyError> {
    match outcome? {
        Outcome::Done { attributes, secret } => {
            if let Some(secret) = secret {
                secret_file::write(resource, &secret)?;
            }
            Ok(CallOutcome::StepDone(attributes))
        }
        Outcome::Task(task) => Ok(CallOutcome::Task(task)),
    }
}

/// Polls a task, or re-reads the object when there is no task handle (or when the task is
/// done and the step needs the object's attributes: `reread_after`).
pub async fn poll(
    provider: Option<Arc<dyn Provider>>,
    connection: &str,
    address: &Address,
    task: Option<TaskHandle>,
    reread_after: bool,
) -> Result<CallOutcome, ApplyError> {
    let Some(provider) = provider else {
        return Err(ApplyError::NoProvider {
            connection: connection.to_string(),
        });
    };
    match task {
        Some(task) => match provider.poll(&task).await {
            Ok(TaskStatus::Done) if reread_after => reread(provider.as_ref(), address).await,
            Ok(status) => Ok(CallOutcome::Polled(status)),
            Err(err) => Err(ApplyError::Call {
                call: Call::Poll,
                source: err,
            }),
        },
        None => reread(provider.as_ref(), address).await,
    }
}

/// Lists the object again (for its attributes, or to see whether it is still busy).
async fn reread(provider: &dyn Provider, address: &Address) -> Result<CallOutcome, ApplyError> {
    let listed = provider
        .list(address.kind, std::slice::from_ref(&address.name))
        .await
        .map_err(|source: ProviderError| ApplyError::Call {
            call: Call::Read,
            source,
        })?;
    let object = listed
        .into_iter()
        .find(|o| o.name == address.name && o.status != LiveStatus::Deleted);
    let busy = object
        .as_ref()
        .is_some_and(|o| matches!(o.status, LiveStatus::Busy { .. }));
    if let Some(LiveStatus::Failed { reason }) = object.as_ref().map(|o| &o.status) {
        return Err(ApplyError::ObjectFailed {
            reason: reason.clone(),
        });
    }
    Ok(CallOutcome::Reread {
        busy,
        object: object.map(Box::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    fn options() -> ApplyOptions {
        ApplyOptions {
            first_poll: Duration::from_secs(1),
            max_poll_interval: Duration::from_secs(60),
            server_time_scale: 1.0,
            ..ApplyOptions::default()
        }
    }

    fn task() -> TaskHandle {
        TaskHandle {
            kind: Kind::Sddc,
            id: "task-1".into(),
            object_id: "sddc-1".into(),
        }
    }

    fn pending(progress: Option<u8>, eta: Option<Duration>) -> Result<CallOutcome, ApplyError> {
        Ok(CallOutcome::Polled(TaskStatus::Pending { progress, eta }))
    }

    fn poll_after(next: Next) -> Duration {
        match next {
            Next::PollAfter(delay) => delay,
            other => panic!("expected PollAfter, got {other:?}"),
        }
    }

    #[test]
    fn a_task_is_polled_after_the_first_delay() {
        let mut waiting = Waiting::default();
        let next = decide(Ok(CallOutcome::Task(task())), &mut waiting, &options());
        assert_eq!(poll_after(next), Duration::from_secs(1));
        assert_eq!(waiting.task, Some(task()));
    }

    #[test]
    fn pending_polls_back_off_exponentially_up_to_the_cap() {
        let options = options();
        let mut waiting = Waiting::default();
        decide(Ok(CallOutcome::Task(task())), &mut waiting, &options);
        let delays: Vec<u64> = (0..8)
            .map(|_| poll_after(decide(pending(None, None), &mut waiting, &options)).as_secs())
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn the_servers_estimate_caps_the_delay_in_real_time() {
        let options = ApplyOptions {
            server_time_scale: 10.0,
            ..options()
        };
        let mut waiting = Waiting {
            polls: 5,
            ..Waiting::default()
        };
        // 100 server seconds at 10x are 10 real seconds: poll again after half of them.
        let next = decide(
            pending(Some(40), Some(Duration::from_secs(100))),
            &mut waiting,
            &options,
        );
        assert_eq!(poll_after(next), Duration::from_secs(5));
        assert_eq!(waiting.eta, Some(Duration::from_secs(10)));
        assert_eq!(waiting.progress, Some(40));
        // A later poll without progress keeps the last one known.
        decide(pending(None, None), &mut waiting, &options);
        assert_eq!(waiting.progress, Some(40));
    }

    #[test]
    fn a_busy_object_is_read_again_later_and_a_ready_one_finishes_the_step() {
        let options = options();
        let mut waiting = Waiting::default();
        let busy = Ok(CallOutcome::Reread {
            busy: true,
            object: None,
        });
        assert_eq!(
            poll_after(decide(busy, &mut waiting, &options)),
            Duration::from_secs(2)
        );
        let object = LiveObject {
            kind: Kind::VirtualMachine,
            name: "web".into(),
            id: "vm-7".into(),
            spec: serde_json::json!({}).into(),
            attributes: Attributes::from([("id".to_string(), "vm-7".to_string())]),
            status: LiveStatus::Ready,
            fingerprint: String::new(),
        };
        let ready = Ok(CallOutcome::Reread {
            busy: false,
            object: Some(Box::new(object)),
        });
        match decide(ready, &mut waiting, &options) {
            Next::Done(attributes) => {
                assert_eq!(attributes.get("id").map(String::as_str), Some("vm-7"))
            }
            other => panic!("expected Done, got {other:?}"),
        }
    }

    #[test]
    fn a_failed_task_fails_the_step_with_the_servers_message() {
        let next = decide(
            Ok(CallOutcome::Polled(TaskStatus::Failed(
                "no capacity".into(),
            ))),
            &mut Waiting::default(),
            &options(),
        );
        match next {
            Next::Failed(error) => {
                assert_eq!(error.to_string(), "the server task failed: no capacity")
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[test]
    fn a_finishing_task_reports_the_steps_attributes_or_explains_its_failure() {
        let options = options();
        let finishing = || {
            Ok(CallOutcome::Finishing {
                task: task(),
                attributes: Attributes::from([("id".to_string(), "new".to_string())]),
                failure: "revoking `old` failed; the token file holds `new`".to_string(),
            })
        };
        let mut waiting = Waiting::default();
        assert_eq!(
            poll_after(decide(finishing(), &mut waiting, &options)),
            Duration::from_secs(1)
        );
        assert_eq!(waiting.task, Some(task()));
        poll_after(decide(pending(None, None), &mut waiting, &options));
        match decide(
            Ok(CallOutcome::Polled(TaskStatus::Done)),
            &mut waiting,
            &options,
        ) {
            Next::Done(attributes) => assert_eq!(attributes["id"], "new"),
            other => panic!("expected Done, got {other:?}"),
        }

        let mut waiting = Waiting::default();
        decide(finishing(), &mut waiting, &options);
        let failed = decide(
            Ok(CallOutcome::Polled(TaskStatus::Failed("denied".into()))),
            &mut waiting,
            &options,
        );
        match failed {
            Next::Failed(error) => assert_eq!(
                error.chain(),
                "revoking `old` failed; the token file holds `new`: the server task failed: denied"
            ),
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[test]
    fn a_call_error_fails_the_step_keeping_its_source() {
        let error = ApplyError::Call {
            call: Call::Update,
            source: ProviderError::Invalid("refused".into()),
        };
        match decide(Err(error), &mut Waiting::default(), &options()) {
            Next::Failed(error) => assert_eq!(error.chain(), "the update call failed: refused"),
            other => panic!("expected Failed, got {other:?}"),
        }
    }
}
