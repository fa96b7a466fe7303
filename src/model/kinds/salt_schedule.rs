//! An Aria Automation Config (RaaS) schedule: its spec and planning rules.

use schemars::JsonSchema;
use serde::Deserialize;

use super::ResourceKind;
use crate::model::SystemType;
use crate::model::rules::{CompleteObject, KindRules};

/// The `SaltSchedule` kind: what the core knows of it ([`ResourceKind`]) and its planning rules
/// ([`KindRules`]).
pub struct SaltSchedule;

impl ResourceKind for SaltSchedule {
    const NAME: &'static str = "SaltSchedule";
    const SYSTEM: SystemType = SystemType::Raas;
    const ATTRIBUTES: &'static [&'static str] = &["uuid"];
    const DESCRIPTION: &'static str = "An Aria Automation Config schedule (raas connection).";
    type Spec = SaltScheduleSpec;
}

/// `splay`: random delay in seconds.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Splay {
    /// Lower bound in seconds. Default 0.
    pub start: Option<u32>,
    /// Upper bound in seconds.
    pub end: u32,
}

/// Weekly times per day (`HH:MM`).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Weekly {
    /// Times on Mondays (`HH:MM`).
    pub mon: Option<Vec<String>>,
    /// Times on Tuesdays (`HH:MM`).
    pub tue: Option<Vec<String>>,
    /// Times on Wednesdays (`HH:MM`).
    pub wed: Option<Vec<String>>,
    /// Times on Thursdays (`HH:MM`).
    pub thu: Option<Vec<String>>,
    /// Times on Fridays (`HH:MM`).
    pub fri: Option<Vec<String>>,
    /// Times on Saturdays (`HH:MM`).
    pub sat: Option<Vec<String>>,
    /// Times on Sundays (`HH:MM`).
    pub sun: Option<Vec<String>>,
}

/// Times of day the job runs.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Every day at these times (`HH:MM`).
    pub daily: Option<Vec<String>>,
    /// On these weekdays at these times.
    pub weekly: Option<Weekly>,
}

/// When a schedule fires: an interval, a cron expression, a one-off time or times of day.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleTiming {
    /// Interval in seconds (at least 60).
    #[schemars(range(min = 60))]
    pub seconds: Option<u32>,
    /// Interval in minutes.
    pub minutes: Option<u32>,
    /// Interval in hours.
    pub hours: Option<u32>,
    /// Interval in days.
    pub days: Option<u32>,
    /// Cron expression, e.g. `0 3 * * *`.
    pub cron: Option<String>,
    /// Run once at this ISO 8601 date-time, e.g. `2026-06-25T23:00`.
    pub once: Option<String>,
    /// Times of day: `{daily: [...]}` or `{weekly: {mon: [...], ...}}`.
    pub when: Option<When>,
    /// Do not fire before this date-time.
    pub after: Option<String>,
    /// Do not fire after this date-time.
    pub until: Option<String>,
    /// IANA time zone name. Default `UTC`.
    pub timezone: Option<String>,
    /// Random delay: `{start, end}` in seconds.
    pub splay: Option<Splay>,
    /// Maximum number of concurrent runs.
    pub maxrunning: Option<u32>,
    /// Also run when the scheduler starts. Default `false`.
    pub run_on_start: Option<bool>,
}

/// An Aria Automation Config schedule running a saved job.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SaltScheduleSpec {
    /// Name of the SaltJob to run (declared in the manifests).
    #[schemars(length(min = 1))]
    pub job: String,
    /// Name of the target group: a declared SaltTarget or an existing one.
    pub target: Option<String>,
    /// When it fires.
    pub schedule: ScheduleTiming,
    /// Whether the schedule is active. Default `true`.
    pub enabled: Option<bool>,
}

/// A schedule's `schedule` block is its whole timing, and a schedule without `target` has
/// none: keys dropped from the manifest (`cron` after a switch to an interval, `until`, the
/// target) are removed through `schedule.update`'s `delete_fields`.
impl KindRules for SaltSchedule {
    fn complete_objects(&self) -> &'static [CompleteObject] {
        // Defaults of `SchedulerScheduleSchema` (D2, saltstack/raas-mcp
        // `raas_mcp/data/api_discovery.json`, `schedule.save`/`schedule.update`).
        const COMPLETE: &[CompleteObject] = &[CompleteObject {
            path: "schedule",
            when: None,
            defaults: &[("timezone", "\"UTC\""), ("run_on_start", "false")],
        }];
        COMPLETE
    }

    fn cleared_when_absent(&self) -> &'static [&'static str] {
        &["target"]
    }
}
