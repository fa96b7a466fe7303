//! The one renderer for everything that is not data: `error:` / `Caused by:` / `hint:`,
//! warnings and logs, on stderr, readable without colour and honouring `NO_COLOR`.

use std::fmt::Write as _;
use std::io::Write;

use super::settings::GlobalSettings;
use crate::manifest::Diagnostics;
use crate::model::shown::{self, visible};

/// A command's failure: the error chain plus an optional hint.
#[derive(Debug)]
pub struct Failure {
    pub error: Box<dyn std::error::Error + Send + Sync>,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            error: message.into().into(),
            hint: None,
        }
    }

    /// `message`, caused by `source`: rendered as `error: message` then `Caused by: source`
    /// (and the source's own causes), so the cause is kept, not flattened into the message.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            error: Box::new(Context {
                message: message.into(),
                source: Box::new(source),
            }),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// An error that knows the hint to print under it.
pub trait Hinted: std::error::Error + Send + Sync + 'static {
    fn hint(&self) -> Option<String>;
}

impl Failure {
    /// `error` with its own hint.
    pub fn hinted(error: impl Hinted) -> Self {
        let hint = error.hint();
        Self {
            error: Box::new(error),
            hint,
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Failure {
    fn from(error: E) -> Self {
        Self {
            error: Box::new(error),
            hint: None,
        }
    }
}

/// A failure's message over the error that caused it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Context {
    message: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// Writes diagnostics to stderr.
#[derive(Debug, Clone)]
pub struct Reporter {
    pub color: bool,
    pub verbose: u8,
    pub quiet: bool,
}

impl Reporter {
    pub fn new(global: &GlobalSettings) -> Self {
        Self {
            color: global.colors.stderr,
            verbose: global.verbose,
            quiet: global.quiet,
        }
    }

    /// Installs the tracing subscriber writing to stderr at the level -v/-q ask for.
    pub fn init_logging(&self) {
        let level = match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, 2) => "debug",
            (false, _) => "trace",
        };
        let filter = tracing_subscriber::EnvFilter::new(format!(
            "{level},hyper=warn,hyper_util=warn,reqwest=warn,h2=warn,rustls=warn"
        ));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(self.color)
            .with_target(false)
            .without_time()
            .try_init();
    }

    fn paint(&self, text: &str, style: anstyle::Style) -> String {
        shown::paint(text, style, self.color)
    }

    /// Renders a failure with its cause chain and hint.
    pub fn render_error(&self, failure: &Failure) -> String {
        let mut out = String::new();
        // Messages carry names from manifests and text from servers: shown, never obeyed.
        let _ = writeln!(
            out,
            "{} {}",
            self.paint("error:", shown::ERROR),
            visible(&failure.error.to_string())
        );
        let mut source = failure.error.source();
        while let Some(cause) = source {
            let _ = writeln!(
                out,
                "  {} {}",
                self.paint("Caused by:", shown::BOLD),
                visible(&cause.to_string())
            );
            source = cause.source();
        }
        if let Some(hint) = &failure.hint {
            let _ = writeln!(
                out,
                "{} {}",
                self.paint("hint:", shown::HINT),
                visible(hint)
            );
        }
        out
    }

    /// Manifest diagnostics, each naming its `file:line:column`, errors before warnings.
    pub fn diagnostics(&self, diagnostics: &Diagnostics) {
        let _ = std::io::stderr().write_all(diagnostics.render(self.color).as_bytes());
    }

    pub fn error(&self, failure: &Failure) {
        let _ = std::io::stderr().write_all(self.render_error(failure).as_bytes());
    }

    pub fn warning(&self, message: &str) {
        if !self.quiet {
            let _ = writeln!(
                std::io::stderr(),
                "{} {}",
                self.paint("warning:", shown::WARNING),
                visible(message)
            );
        }
    }

    /// A plain informational line on stderr (suppressed by -q).
    pub fn note(&self, message: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read `a.yaml`")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_failure_with_a_source_shows_it_as_the_cause() {
        let reporter = Reporter {
            color: false,
            verbose: 0,
            quiet: false,
        };
        let failure = Failure::with_source(
            "cannot write `a.yaml`",
            Outer(std::io::Error::other("disk on fire")),
        );
        assert_eq!(
            reporter.render_error(&failure),
            "error: cannot write `a.yaml`\n  Caused by: cannot read `a.yaml`\n  Caused by: disk on fire\n"
        );
    }

    #[test]
    fn renders_chain_and_hint_without_colour() {
        let reporter = Reporter {
            color: false,
            verbose: 0,
            quiet: false,
        };
        let failure =
            Failure::from(Outer(std::io::Error::other("disk on fire"))).with_hint("check the path");
        assert_eq!(
            reporter.render_error(&failure),
            "error: cannot read `a.yaml`\n  Caused by: disk on fire\nhint: check the path\n"
        );
    }
}
