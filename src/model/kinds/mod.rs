//! The kinds of managed objects, one module each, and the one registry that lists them.
//!
//! A kind's module holds its typed spec (the manifest's `spec:`, serde + JSON Schema), what
//! the core needs to know about it ([`ResourceKind`]: name, system, attributes, description)
//! and its planning rules ([`KindRules`]). [`registry!`] below is the only list of kinds:
//! it generates [`Kind`], `Kind::ALL`, the kinds `export` accepts and the schema's arms.
//! Adding a kind means writing its module, its provider's part and one line here.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize as _;
use serde_json::{Map, Value};

use super::SystemType;
use super::rules::KindRules;
pub use checks::CheckContext;

pub mod checks;
pub mod salt_job;
pub mod salt_schedule;
pub mod salt_target;
pub mod sddc;
pub mod vcd_api_token;
pub mod virtual_machine;

/// What the core knows of a kind of managed object.
pub trait ResourceKind: KindRules {
    /// The `kind` written in manifests and addresses.
    const NAME: &'static str;
    /// The system whose connection manages it.
    const SYSTEM: SystemType;
    /// Attributes other resources may read with `${Kind/name.attribute}`.
    const ATTRIBUTES: &'static [&'static str];
    /// One line for the schema and the manifest reference.
    const DESCRIPTION: &'static str;
    /// The typed spec a manifest writes.
    type Spec: JsonSchema + serde::de::DeserializeOwned;

    /// Checks of a spec beyond what the schema says (host counts, CIDR prefixes, cron
    /// expressions, ...), reported with the spec path they concern. Default: none.
    fn check(spec: &Self::Spec, context: &mut dyn CheckContext) {
        let _ = (spec, context);
    }

    /// Checks of the document around the spec: `absent` when it says `ensure: absent`,
    /// `renamed` when it lists `previous_names`. Default: none.
    fn check_document(absent: bool, renamed: bool, context: &mut dyn CheckContext) {
        let _ = (absent, renamed, context);
    }

    /// What `export` adds to a live object's spec (fields the server never returns) and a
    /// comment put above its document (`""`: none). Default: nothing.
    fn exported(name: &str, spec: &mut Map<String, Value>) -> &'static str {
        let _ = (name, spec);
        ""
    }

    /// Rewrites the user-written fields of a spec (nulls already dropped) into the kind's
    /// canonical spelling, the one the planner compares with the provider's. Default: as
    /// written.
    fn canonicalize(spec: &mut Map<String, Value>) {
        let _ = spec;
    }
}

/// Generates [`Kind`] from the list of kinds, one variant per kind module: `Variant in module`
/// names `module::Variant`.
macro_rules! registry {
    ($($variant:ident in $module:ident),+ $(,)?) => {
        /// A kind of managed object, as `kind:` names it in manifests and addresses. The
        /// documents that configure sextant (`Connection`, `Environment`, `Lock`) are the
        /// manifest layer's concern, not kinds.
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize,
            serde::Deserialize,
        )]
        pub enum Kind {
            $($variant,)+
        }

        impl Kind {
            /// Every kind, in registry order (what `export --kind` accepts).
            pub const ALL: [Kind; [$(stringify!($variant)),+].len()] = [$(Kind::$variant,)+];

            /// The names of every kind, in registry order.
            pub const NAMES: [&'static str; [$(stringify!($variant)),+].len()] =
                [$(<$module::$variant as ResourceKind>::NAME,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$variant => <$module::$variant as ResourceKind>::NAME,)+
                }
            }

            /// The system whose connection manages this kind.
            pub fn system(self) -> SystemType {
                match self {
                    $(Kind::$variant => <$module::$variant as ResourceKind>::SYSTEM,)+
                }
            }

            /// Attributes other resources may read with `${Kind/name.attribute}`.
            pub fn attributes(self) -> &'static [&'static str] {
                match self {
                    $(Kind::$variant => <$module::$variant as ResourceKind>::ATTRIBUTES,)+
                }
            }

            /// One line for the schema and the manifest reference.
            pub fn description(self) -> &'static str {
                match self {
                    $(Kind::$variant => <$module::$variant as ResourceKind>::DESCRIPTION,)+
                }
            }

            /// The planning rules of the kind.
            pub fn rules(self) -> &'static dyn KindRules {
                match self {
                    $(Kind::$variant => &$module::$variant,)+
                }
            }

            /// Reads `spec` as the kind's typed spec and runs the kind's checks on it
            /// ([`ResourceKind::check`]). `Err` when the spec is not the kind's (the caller
            /// reports it at the spec).
            pub fn check_spec(
                self,
                spec: &Value,
                context: &mut dyn CheckContext,
            ) -> Result<(), serde_json::Error> {
                use serde::Deserialize;
                match self {
                    $(Kind::$variant => {
                        let spec =
                            <<$module::$variant as ResourceKind>::Spec>::deserialize(spec)?;
                        <$module::$variant as ResourceKind>::check(&spec, context);
                        Ok(())
                    })+
                }
            }

            /// [`ResourceKind::exported`] of the kind.
            pub fn exported(self, name: &str, spec: &mut Map<String, Value>) -> &'static str {
                match self {
                    $(Kind::$variant => <$module::$variant as ResourceKind>::exported(name, spec),)+
                }
            }

            /// Runs the kind's [`ResourceKind::check_document`].
            pub fn check_document(
                self,
                absent: bool,
                renamed: bool,
                context: &mut dyn CheckContext,
            ) {
                match self {
                    $(Kind::$variant => <$module::$variant as ResourceKind>::check_document(
                        absent, renamed, context,
                    ),)+
                }
            }

            /// Rewrites a spec (user-written fields only) into the kind's canonical spelling:
            /// null fields dropped, then [`ResourceKind::canonicalize`].
            pub fn canonicalize(self, spec: &mut Value) {
                let Value::Object(map) = spec else { return };
                map.retain(|_, value| !value.is_null());
                match self {
                    $(Kind::$variant => <$module::$variant as ResourceKind>::canonicalize(map),)+
                }
            }

            /// The JSON Schema of the kind's spec.
            pub fn spec_schema(self, generator: &mut SchemaGenerator) -> Schema {
                match self {
                    $(Kind::$variant => {
                        generator.subschema_for::<<$module::$variant as ResourceKind>::Spec>()
                    })+
                }
            }
        }
    };
}

// One line per kind: the variant, and the module holding its `ResourceKind` of that name.
registry! {
    Sddc in sddc,
    SaltTarget in salt_target,
    SaltJob in salt_job,
    SaltSchedule in salt_schedule,
    VcdApiToken in vcd_api_token,
    VirtualMachine in virtual_machine,
}

impl Kind {
    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The desired and live specs of an update read as kind `K`'s typed spec: what a kind's own
/// [`KindRules::classify_update`] decides on, so its rule names fields the compiler checks.
/// `Err` (a plan error for the resource) when either is not a spec of the kind.
pub(crate) fn typed_specs<K: ResourceKind>(
    desired: &Value,
    live: &Value,
) -> Result<(K::Spec, K::Spec), String> {
    Ok((typed::<K>("desired", desired)?, typed::<K>("live", live)?))
}

/// `spec` read as kind `K`'s typed spec; `Err` says that the `side` ("desired", "live") is
/// not a spec of the kind, and why.
pub fn typed<K: ResourceKind>(side: &str, spec: &Value) -> Result<K::Spec, String> {
    K::Spec::deserialize(spec)
        .map_err(|err| format!("the {side} spec is not a `{}` spec: {err}", K::NAME))
}
