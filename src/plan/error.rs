//! Why a resource cannot be planned, or what the user should know about it: one typed
//! error per fact, carried by [`PlanProblem`]s and rendered by the CLI's reporter (and in
//! every plan format as its message). Owns no decision: the planner chooses which applies.

use crate::model::{Address, Kind};

use super::OrderError;

/// One resource's planning problem or warning.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{address}: {error}")]
pub struct PlanProblem {
    pub address: Address,
    pub error: PlanError,
}

impl PlanProblem {
    /// The message without the address (the plan formats show the address apart).
    pub fn message(&self) -> String {
        self.error.to_string()
    }
}

/// Why a resource cannot be planned as the manifests say.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{at} names `{target}`, which is neither declared in the manifests nor live on connection `{connection}`; declare it, or name one that exists"
    )]
    NamedMissing {
        /// Where the name is written (`file:line:column `spec.field``).
        at: String,
        target: Address,
        connection: String,
    },
    #[error(
        "{at} names `{target}`, and {count} live objects on connection `{connection}` carry that name; sextant will not guess which one is meant — rename or remove the extra ones"
    )]
    NamedAmbiguous {
        at: String,
        target: Address,
        count: usize,
        connection: String,
    },
    #[error(
        "{count} live objects are named `{name}`: ids {ids}{when}; sextant will not guess which one is meant — keep one and delete the others on the server (when they are alike, they are usually a duplicate left by two applies at once: keep the oldest), or rename them, then run `sextant plan` again",
        when = if *.created_unknown { " (the server does not say when each was created)" } else { "" }
    )]
    AmbiguousLive {
        count: usize,
        name: String,
        /// The ids, each in backticks with its creation time when known.
        ids: String,
        /// The server says of none when it was created.
        created_unknown: bool,
    },
    #[error(
        "`lifecycle.prevent_destroy` is set, but the plan would {} this resource; remove the setting or change the manifest",
        if *.replace { "replace" } else { "destroy" }
    )]
    PreventDestroy { replace: bool },
    #[error("`ensure: absent` is not supported for {kind}")]
    AbsentUnsupported { kind: Kind },
    #[error(
        "no {} named `{}` exists on connection `{connection}`, and sextant does not create {} objects; check the name, or create it first",
        .address.kind, .address.name, .address.kind
    )]
    NotCreatable {
        address: Address,
        connection: String,
    },
    /// The kind's rules refuse the change; their reason.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Rename(#[from] RenameError),
    /// The local side of an up-to-date object is lost (the kind's rules say how).
    #[error("{problem}; run with `--recreate-lost-secrets` to revoke it and create a new one")]
    LostSecret { problem: String },
    #[error(transparent)]
    Cycle(#[from] OrderError),
    #[error("not pruned: {0}")]
    NotPruned(KeptReason),
    #[error(
        "the plan destroys {count} objects ({pruned} of them pruned), more than {limit}, the most {allowed_by} allows; nothing was changed. Check the manifests (a directory left out of the command prunes everything it declares), then pass `--max-destroy {count}` if it is intended"
    )]
    TooManyDestroys {
        count: usize,
        pruned: usize,
        limit: u32,
        /// `--max-destroy`, a connection's `max_destroy` or the default.
        allowed_by: String,
    },
    #[error(
        "{what}, and no `lifecycle.prevent_destroy` can protect an object no manifest declares; apply with `--allow-destroy {kind}` to confirm"
    )]
    PruneUnconfirmed { kind: Kind, what: &'static str },
    #[error("`--replace` names a resource declared `ensure: absent`; it is deleted, not replaced")]
    ReplaceAbsent,
    #[error("`--replace` cannot replace a {kind}: sextant does not create or delete them")]
    ReplaceNotCreatable { kind: Kind },
    #[error(
        "`lifecycle.prevent_destroy` is set, but `--replace` would replace this resource; remove the setting or the flag"
    )]
    ReplacePrevented,
    #[error(
        "`--replace` would delete it while `{user}` uses it on the server, and the server refuses to delete an object in use (the new one would not be used either); change `{user}` first, or replace both by declaring them `ensure: absent` and then present again"
    )]
    ReplaceInUse { user: Address },
    /// The live state could not be read (a failed listing or an unreadable credential, its
    /// causes on one line: plan formats show one message per problem).
    #[error("{0}")]
    Unreadable(String),
}

/// Why `previous_names` cannot say which live object a resource is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenameError {
    #[error(
        "`previous_names` lists `{old}`, but `{address}` is declared too ({location}); a name belongs to one document: remove it from `previous_names` or remove the other document"
    )]
    DeclaredToo {
        old: String,
        address: Address,
        location: String,
    },
    #[error(
        "previous name `{old}` is carried by {count} live objects (ids {ids}); sextant will not guess which one to rename: delete the extra ones on the server"
    )]
    OldNameAmbiguous {
        old: String,
        count: usize,
        ids: String,
    },
    #[error(
        "both `{address}` (id `{id}`) and `{}/{old}` (id `{old_id}`) exist live, and `previous_names` says they are one object; delete or rename one of them on the server, or remove `{old}` from `previous_names`",
        .address.kind
    )]
    BothLive {
        address: Address,
        id: String,
        /// The previous name: the other live object is `{address.kind}/{old}`.
        old: String,
        old_id: String,
    },
    #[error(
        "several previous names of `{name}` exist live: {listed}; sextant will not guess which one to rename: delete the others on the server, or list only one in `previous_names`"
    )]
    SeveralLive { name: String, listed: String },
    #[error(
        "`lifecycle.prevent_destroy` is set, but renaming from `{old}` replaces this resource; remove the setting, or rename the object on the server"
    )]
    PreventDestroy { old: String },
}

/// Why an object that pruning would delete is kept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeptReason {
    #[error(
        "`{address}` is declared on connection `{connection}`, and a plan holds one change per address; rename one of the two objects"
    )]
    DeclaredElsewhere {
        address: Address,
        connection: String,
    },
    #[error(
        "{count} live objects on connection `{connection}` carry this name; sextant will not guess which one to delete"
    )]
    NameShared { count: usize, connection: String },
    #[error("a task is running on it (`{activity}`); the next plan after it ends prunes it")]
    Busy { activity: String },
    #[error("`{user}` names it in its manifest")]
    NamedByManifest { user: Address },
    #[error(
        "`{user}` still uses it, and no manifest declares that object or lets sextant prune it"
    )]
    UsedByUndeclared { user: Address },
}
