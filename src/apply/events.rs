//! Progress events of an apply and the sinks that show them: plain lines (for pipes and
//! CI logs), and one JSON object per line (`--json`) for machines.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::model::Address;
use crate::plan::Action;

/// Something that happened during an apply.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Started {
        address: String,
        action: String,
    },
    StillRunning {
        address: String,
        action: String,
        elapsed_seconds: u64,
        progress: Option<u8>,
        /// The server's estimate of the remaining time, when it gives one.
        #[serde(skip_serializing_if = "Option::is_none")]
        eta_seconds: Option<u64>,
        task: Option<String>,
    },
    Finished {
        address: String,
        action: String,
        elapsed_seconds: u64,
    },
    Failed {
        address: String,
        message: String,
    },
    Skipped {
        address: String,
        because: String,
    },
    Interrupted,
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
        Action::Replace => "replace",
        Action::Wait => "wait",
        Action::Rotate => "rotate",
        Action::NoOp => "no-op",
    }
}

impl Event {
    pub fn started(address: &Address, action: Action) -> Self {
        Event::Started {
            address: address.to_string(),
            action: verb(action).to_string(),
        }
    }

    pub fn finished(address: &Address, action: Action, elapsed: Duration) -> Self {
        Event::Finished {
            address: address.to_string(),
            action: verb(action).to_string(),
            elapsed_seconds: elapsed.as_secs(),
        }
    }

    pub fn still_running(
        address: &Address,
        action: Action,
        elapsed: Duration,
        progress: Option<u8>,
        eta: Option<Duration>,
        task: Option<String>,
    ) -> Self {
        Event::StillRunning {
            address: address.to_string(),
            action: verb(action).to_string(),
            elapsed_seconds: elapsed.as_secs(),
            progress,
            eta_seconds: eta.map(|d| d.as_secs()),
            task,
        }
    }
}

/// Receives events; implementations must be cheap (called from the executor loop).
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &Event);

    /// Whether the sink wants a `StillRunning` event after every poll (live bars) rather
    /// than at the heartbeat interval (log lines).
    fn wants_every_poll(&self) -> bool {
        false
    }
}

/// Formats `elapsed` as `01m20s` (Terraform's style).
pub fn elapsed_text(seconds: u64) -> String {
    if seconds >= 3600 {
        format!(
            "{}h{:02}m{:02}s",
            seconds / 3600,
            (seconds % 3600) / 60,
            seconds % 60
        )
    } else {
        format!("{:02}m{:02}s", seconds / 60, seconds % 60)
    }
}

/// One human line per event; names and server messages with control or bidi characters are
/// shown escaped.
pub fn plain_line(event: &Event) -> String {
    let line = match event {
        Event::Started { address, action } => {
            let doing = match action.as_str() {
                "create" => "Creating...",
                "update" => "Modifying...",
                "delete" => "Destroying...",
                "replace" => "Replacing...",
                "rotate" => "Rotating...",
                _ => "Waiting for the task in progress...",
            };
            format!("{address}: {doing}")
        }
        Event::StillRunning {
            address,
            action,
            elapsed_seconds,
            progress,
            task,
            ..
        } => {
            let doing = match action.as_str() {
                "create" => "creating",
                "update" => "modifying",
                "delete" => "destroying",
                "replace" => "replacing",
                "rotate" => "rotating",
                _ => "waiting",
            };
            let mut details = Vec::new();
            if let Some(task) = task {
                details.push(format!("task={task}"));
            }
            details.push(format!("{} elapsed", elapsed_text(*elapsed_seconds)));
            if let Some(progress) = progress {
                details.push(format!("{progress}%"));
            }
            format!("{address}: Still {doing}... [{}]", details.join(", "))
        }
        Event::Finished {
            address,
            action,
            elapsed_seconds,
        } => {
            let done = match action.as_str() {
                "create" => "Creation complete",
                "update" => "Modifications complete",
                "delete" => "Destruction complete",
                "replace" => "Replacement complete",
                "rotate" => "Rotation complete",
                _ => "Task finished",
            };
            format!("{address}: {done} after {}", elapsed_text(*elapsed_seconds))
        }
        Event::Failed { address, message } => format!("{address}: failed: {message}"),
        Event::Skipped { address, because } => {
            format!("{address}: skipped because {because} did not complete")
        }
        Event::Interrupted => {
            "Interrupt received: no new work will start; waiting for calls in flight to return..."
                .to_string()
        }
    };
    crate::model::shown::visible(&line).into_owned()
}

/// Writes plain lines to a writer (stdout by default).
pub struct PlainSink<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> PlainSink<W> {
    pub fn new(out: W) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }
}

impl<W: Write + Send> EventSink for PlainSink<W> {
    fn emit(&self, event: &Event) {
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{}", plain_line(event));
            let _ = out.flush();
        }
    }
}

/// Writes one JSON object per line.
pub struct JsonSink<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonSink<W> {
    pub fn new(out: W) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }
}

impl<W: Write + Send> EventSink for JsonSink<W> {
    fn emit(&self, event: &Event) {
        if let (Ok(mut out), Ok(line)) = (self.out.lock(), serde_json::to_string(event)) {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// Live bars on a terminal: one per running resource with its status, percent and elapsed
/// time; finished resources leave their plain line above the bars.
pub struct TerminalSink {
    bars: indicatif::MultiProgress,
    running: Mutex<std::collections::BTreeMap<String, indicatif::ProgressBar>>,
}

impl TerminalSink {
    pub fn new() -> Self {
        Self {
            bars: indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stdout(),
            ),
            running: Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    fn bar(&self, address: &str, action: &str) -> indicatif::ProgressBar {
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} {prefix} {msg} [{elapsed_precise}] {bar:20} {pos:>3}%",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        let bar = self.bars.add(indicatif::ProgressBar::new(100));
        bar.set_style(style);
        bar.set_prefix(crate::model::shown::visible(address).into_owned());
        bar.set_message(format!("{action}…"));
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

impl Default for TerminalSink {
    fn default() -> Self {
        Self::new()
    }
}

impl EventSink for TerminalSink {
    fn wants_every_poll(&self) -> bool {
        true
    }

    fn emit(&self, event: &Event) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        match event {
            Event::Started { address, action } => {
                let bar = self.bar(address, action);
                running.insert(address.clone(), bar);
            }
            Event::StillRunning {
                address,
                action,
                progress,
                eta_seconds,
                ..
            } => {
                if let Some(bar) = running.get(address) {
                    if let Some(progress) = progress {
                        bar.set_position(u64::from(*progress));
                    }
                    let eta = eta_seconds
                        .map(|s| format!(", about {} left", elapsed_text(s)))
                        .unwrap_or_default();
                    bar.set_message(format!("{action}…{eta}"));
                }
            }
            Event::Finished { address, .. }
            | Event::Failed { address, .. }
            | Event::Skipped { address, .. } => {
                if let Some(bar) = running.remove(address) {
                    bar.finish_and_clear();
                    self.bars.remove(&bar);
                }
                let _ = self.bars.println(plain_line(event));
            }
            Event::Interrupted => {
                let _ = self.bars.println(plain_line(event));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    #[test]
    fn still_running_line_reads_like_terraform() {
        let event = Event::still_running(
            &Address::new(Kind::Sddc, "prod"),
            Action::Create,
            Duration::from_secs(300),
            Some(45),
            Some(Duration::from_secs(600)),
            Some("task-1".into()),
        );
        assert_eq!(
            plain_line(&event),
            "Sddc/prod: Still creating... [task=task-1, 05m00s elapsed, 45%]"
        );
    }

    #[test]
    fn json_events_are_tagged() {
        let event = Event::Skipped {
            address: "SaltJob/a".into(),
            because: "SaltTarget/t".into(),
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"type":"skipped","address":"SaltJob/a","because":"SaltTarget/t"}"#
        );
    }
}
