//! Why one resource's change failed. Each message is one fact; the provider's failure is its
//! `source`, so the CLI's reporter renders the chain once (`Caused by:`).

use std::time::Duration;

use super::secret_file::SecretFileError;
use crate::providers::ProviderError;

/// The failure of one planned change.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A provider call (create, update, delete, poll, read-back) failed.
    #[error("the {call} call failed")]
    Call {
        call: Call,
        #[source]
        source: ProviderError,
    },
    #[error("the server task failed: {message}")]
    TaskFailed { message: String },
    #[error("the server reports the object failed: {reason}")]
    ObjectFailed { reason: String },
    #[error("timed out after {} waiting for the server task", humantime::format_duration(*.waited))]
    TimedOut { waited: Duration },
    #[error("no provider for connection `{connection}`")]
    NoProvider { connection: String },
    #[error("the resource is no longer declared")]
    NotDeclared,
    #[error("`${{{reference}}}` is not known: its resource did not report it")]
    Unresolved { reference: String },
    #[error("the {what} was not found")]
    NotFound { what: &'static str },
    #[error("the provider returned no result for this create")]
    NoResult,
    #[error("its dependencies never completed")]
    DependenciesNeverCompleted,
    #[error(transparent)]
    SecretFile(#[from] SecretFileError),
    /// A step of a credential rotation failed; the message says what still works.
    #[error("{message}")]
    Rotation {
        message: String,
        #[source]
        source: Option<Box<ApplyError>>,
    },
    #[error("internal: {0}")]
    Internal(&'static str),
}

/// Which provider call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Create,
    Update,
    Delete,
    Poll,
    Read,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Call::Create => "create",
            Call::Update => "update",
            Call::Delete => "delete",
            Call::Poll => "task poll",
            Call::Read => "read-back",
        })
    }
}

impl ApplyError {
    pub fn call(call: Call) -> impl FnOnce(ProviderError) -> ApplyError {
        move |source| ApplyError::Call { call, source }
    }

    /// The message and its causes on one line (`a: b: c`), for progress events.
    pub fn chain(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_call_keeps_the_provider_error_as_its_source() {
        let error = ApplyError::Call {
            call: Call::Create,
            source: ProviderError::Invalid("the name is taken".into()),
        };
        assert_eq!(error.to_string(), "the create call failed");
        let source = std::error::Error::source(&error).expect("a source");
        assert_eq!(source.to_string(), "the name is taken");
        assert_eq!(error.chain(), "the create call failed: the name is taken");
    }
}
