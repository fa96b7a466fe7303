//! An Aria Automation Config (RaaS) schedule: its spec and planning rules.

use schemars::JsonSchema;
use serde::Deserialize;

use super::ResourceKind;
use super::checks::CheckContext;
use crate::model::rules::{CompleteObject, KindRules};
use crate::model::{Kind, SystemType};

/// The `SaltSchedule` kind: what the core knows of it ([`ResourceKind`]) and its planning rules
/// ([`KindRules`]).
pub struct SaltSchedule;

impl ResourceKind for SaltSchedule {
    const NAME: &'static str = "SaltSchedule";
    const SYSTEM: SystemType = SystemType::Raas;
    const ATTRIBUTES: &'static [&'static str] = &["uuid"];
    const DESCRIPTION: &'static str = "An Aria Automation Config schedule (raas connection).";
    type Spec = SaltScheduleSpec;

    fn check(spec: &SaltScheduleSpec, context: &mut dyn CheckContext) {
        let timing = &spec.schedule;
        let interval = timing.seconds.is_some()
            || timing.minutes.is_some()
            || timing.hours.is_some()
            || timing.days.is_some();
        let styles = [
            (interval, "an interval"),
            (timing.cron.is_some(), "`cron`"),
            (timing.once.is_some(), "`once`"),
            (timing.when.is_some(), "`when`"),
        ];
        let used: Vec<&str> = styles
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        if used.is_empty() {
            context.error(
                &["schedule"],
                "`schedule` does not say when to run".into(),
                Some(
                    "set one of `seconds`, `minutes`, `hours`, `days`, `cron`, `once` or `when`"
                        .into(),
                ),
            );
        } else if used.len() > 1 {
            context.error(
                &["schedule"],
                format!("`schedule` mixes {}; use one of them", used.join(" and ")),
                None,
            );
        }
        if let Some(cron) = &timing.cron
            && let Err(message) = check_cron(cron)
        {
            context.error(
                &["schedule", "cron"],
                message,
                Some("e.g. `0 3 * * *` runs every day at 03:00".into()),
            );
        }
        if let Some(once) = &timing.once
            && parse_date_time(once).is_none()
        {
            context.error(
                &["schedule", "once"],
                format!("`{once}` is not an ISO 8601 date-time"),
                Some("e.g. `2026-06-25T23:00`".into()),
            );
        }
        for (field, value) in [("after", &timing.after), ("until", &timing.until)] {
            if let Some(value) = value
                && parse_date_time(value).is_none()
            {
                context.error(
                    &["schedule", field],
                    format!("`{value}` is not an ISO 8601 date-time"),
                    Some("e.g. `2026-06-25T23:00`".into()),
                );
            }
        }
        if let Some(when) = &timing.when {
            let mut times: Vec<(Vec<&str>, &String)> = Vec::new();
            for time in when.daily.iter().flatten() {
                times.push((vec!["schedule", "when", "daily"], time));
            }
            if let Some(weekly) = &when.weekly {
                let days = [
                    ("mon", &weekly.mon),
                    ("tue", &weekly.tue),
                    ("wed", &weekly.wed),
                    ("thu", &weekly.thu),
                    ("fri", &weekly.fri),
                    ("sat", &weekly.sat),
                    ("sun", &weekly.sun),
                ];
                for (day, list) in days {
                    for time in list.iter().flatten() {
                        times.push((vec!["schedule", "when", "weekly", day], time));
                    }
                }
            }
            if times.is_empty() {
                context.error(&["schedule", "when"], "`when` lists no times".into(), None);
            }
            for (path, time) in times {
                if chrono::NaiveTime::parse_from_str(time, "%H:%M").is_err() {
                    context.error(
                        &path,
                        format!("`{time}` is not a time of day"),
                        Some("write `HH:MM`, e.g. `03:30`".into()),
                    );
                }
            }
        }
        if let Some(splay) = &timing.splay
            && splay.start.unwrap_or(0) > splay.end
        {
            context.error(
                &["schedule", "splay"],
                "`splay.start` is greater than `splay.end`".into(),
                None,
            );
        }
    }
}

fn parse_date_time(text: &str) -> Option<chrono::NaiveDateTime> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(dt.naive_utc());
    }
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok())
}

/// Checks a Salt schedule's `cron` as the master reads it: Salt hands it to `croniter`
/// (saltstack/salt `doc/topics/jobs/schedule.rst`, "cron"), which takes five fields, a sixth
/// for seconds written last, or an `@` macro. `croner` checks the values; it reads seconds
/// first, so a sixth field is moved to the front.
fn check_cron(cron: &str) -> Result<(), String> {
    const MACROS: [&str; 7] = [
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    ];
    const NAMES: [&str; 6] = [
        "second",
        "minute",
        "hour",
        "day of month",
        "month",
        "day of week",
    ];
    let mut fields: Vec<&str> = cron.split_whitespace().collect();
    if fields.len() == 1 && fields[0].starts_with('@') {
        return if MACROS.contains(&fields[0]) {
            Ok(())
        } else {
            Err(format!(
                "`{cron}` is not a cron expression (macros are {})",
                MACROS.join(", ")
            ))
        };
    }
    if !(5..=6).contains(&fields.len()) {
        return Err(format!(
            "`{cron}` is not a cron expression (5 fields expected, found {})",
            fields.len()
        ));
    }
    if fields.len() == 6 {
        fields.rotate_right(1);
    }
    let names = &NAMES[6 - fields.len()..];
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Disallowed)
        .build();
    let Err(whole) = parser.parse(&fields.join(" ")) else {
        return Ok(());
    };
    // Name the first field croner refuses on its own, every other field a `*`.
    let alone = |i: usize| {
        let mut probe = vec!["*"; fields.len()];
        probe[i] = fields[i];
        parser.parse(&probe.join(" ")).err()
    };
    Err(match (0..fields.len()).find_map(|i| Some((i, alone(i)?))) {
        Some((i, err)) => format!(
            "`{cron}` is not a cron expression: the {} field `{}` is invalid ({})",
            names[i],
            fields[i],
            cron_reason(&err)
        ),
        None => format!(
            "`{cron}` is not a cron expression ({})",
            cron_reason(&whole)
        ),
    })
}

/// croner's reason without its type-name prefix or closing period.
fn cron_reason(err: &croner::errors::CronError) -> String {
    use croner::errors::CronError;
    let text = match err {
        CronError::InvalidPattern(text)
        | CronError::IllegalCharacters(text)
        | CronError::ComponentError(text) => text.clone(),
        other => other.to_string(),
    };
    let text = text.trim_end_matches('.');
    let text = text.strip_prefix("CronPattern ").unwrap_or(text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
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
    fn named_fields(&self) -> &'static [(&'static str, Kind)] {
        &[("job", Kind::SaltJob), ("target", Kind::SaltTarget)]
    }

    /// The job must be declared in the manifests (see `SaltScheduleSpec::job`); the target
    /// group may be one that exists only on the server.
    fn declared_fields(&self) -> &'static [&'static str] {
        &["job"]
    }

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
