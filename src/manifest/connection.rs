//! `Connection` documents → [`ConnectionConfig`]: defaults, `{env: NAME}` settings read at
//! load time, secrets kept as references (read only when connecting), the raas `region`
//! shorthand, and which settings each system type needs or accepts.

use std::path::Path;
use std::time::Duration;

use super::SECRET_DIRS_ENV;
use super::diagnostics::Diagnostic;
use super::document_kind::DocumentKind;
use super::files::Confinement;
use super::node::{Node, Pos};
use super::spec::{
    ConnectionSpec, ConnectionType, EnvOr, PrunableKind, PruneSpec, RaasRegion, SecretRef,
    UnmanagedSpec, VsphereApiFlavor,
};
use crate::model::{
    ApiFlavor, ConnectionConfig, Kind, PrunePolicy, SecretSource, SystemType, UnmanagedScope, shown,
};

/// The kinds a connection of `system` manages, as written in manifests.
fn kinds_of(system: SystemType) -> Vec<&'static str> {
    Kind::ALL
        .into_iter()
        .filter(|k| k.system() == system)
        .map(Kind::as_str)
        .collect()
}

/// Regional Aria Automation Config (cloud) API endpoints.
pub fn raas_region_url(region: RaasRegion) -> &'static str {
    match region {
        RaasRegion::Us => "https://ssc-gateway.mgmt.cloud.vmware.com",
        RaasRegion::De => "https://de.ssc-gateway.mgmt.cloud.vmware.com",
        RaasRegion::In => "https://in.ssc-gateway.mgmt.cloud.vmware.com",
        RaasRegion::Ca => "https://ca.ssc-gateway.mgmt.cloud.vmware.com",
        RaasRegion::Au => "https://au.ssc-gateway.mgmt.cloud.vmware.com",
        RaasRegion::Uk => "https://uk.ssc-gateway.mgmt.cloud.vmware.com",
    }
}

fn system_of(kind: ConnectionType) -> SystemType {
    match kind {
        ConnectionType::Vmc => SystemType::Vmc,
        ConnectionType::Raas => SystemType::Raas,
        ConnectionType::Vcd => SystemType::Vcd,
        ConnectionType::Vsphere => SystemType::Vsphere,
    }
}

/// Settings that only make sense for some system types.
fn applies_to(field: &str) -> &'static [SystemType] {
    use SystemType::*;
    match field {
        "region" | "config_name" => &[Raas],
        "csp_url" => &[Vmc, Raas],
        "org_id" => &[Vmc],
        "api_token" => &[Vmc, Raas, Vcd],
        "username" | "password" => &[Raas, Vcd, Vsphere],
        "org" | "api_version" | "max_age" => &[Vcd],
        "api_flavor" => &[Vsphere],
        "prune" => &[Vmc, Raas, Vcd],
        _ => &[Vmc, Raas, Vcd, Vsphere],
    }
}

fn spec_path(path: &[&str]) -> String {
    std::iter::once("spec")
        .chain(path.iter().copied())
        .collect::<Vec<_>>()
        .join(".")
}

/// Reads one connection document. `spec` is the structurally valid spec node.
pub struct ConnectionReader<'a> {
    pub file: &'a Path,
    pub base_dir: &'a Path,
    pub spec_node: &'a Node,
    pub confinement: &'a Confinement,
    pub errors: &'a mut Vec<Diagnostic>,
}

/// A setting value read from the manifest or the environment.
trait FromSetting: Sized {
    const EXPECTED: &'static str;
    fn parse_setting(text: &str) -> Option<Self>;
}

impl FromSetting for String {
    const EXPECTED: &'static str = "a string";
    fn parse_setting(text: &str) -> Option<Self> {
        Some(text.to_string())
    }
}

impl FromSetting for bool {
    const EXPECTED: &'static str = "`true` or `false`";
    fn parse_setting(text: &str) -> Option<Self> {
        text.trim().parse().ok()
    }
}

impl FromSetting for u32 {
    const EXPECTED: &'static str = "a non-negative integer";
    fn parse_setting(text: &str) -> Option<Self> {
        text.trim().parse().ok()
    }
}

impl FromSetting for RaasRegion {
    const EXPECTED: &'static str = "one of `us`, `de`, `in`, `ca`, `au`, `uk`";
    fn parse_setting(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.trim().to_lowercase())).ok()
    }
}

impl FromSetting for VsphereApiFlavor {
    const EXPECTED: &'static str = "one of `auto`, `api`, `rest`";
    fn parse_setting(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.trim().to_lowercase())).ok()
    }
}

/// How a rejected setting is named in a message: a value written in the manifest is quoted
/// (as `shown`), a value read from the environment never is, whatever it holds.
fn shown_value<T>(value: &EnvOr<T>, shown: &str) -> String {
    match value {
        EnvOr::Value(_) => format!("`{}`", shown::visible(shown)),
        EnvOr::Env(env) => format!("the value of environment variable `{}`", env.env),
    }
}

impl ConnectionReader<'_> {
    fn pos(&self, path: &[&str]) -> Pos {
        self.spec_node.deepest(path.iter().copied()).pos
    }

    fn error(&mut self, path: &[&str], message: impl Into<String>, hint: Option<String>) {
        let pos = self.pos(path);
        self.errors
            .push(Diagnostic::new(self.file, pos, spec_path(path), message).with_hint(hint));
    }

    fn setting<T: FromSetting + Clone>(&mut self, path: &[&str], value: &EnvOr<T>) -> Option<T> {
        match value {
            EnvOr::Value(v) => Some(v.clone()),
            EnvOr::Env(env) => match std::env::var(&env.env) {
                Ok(text) if !text.is_empty() => match T::parse_setting(&text) {
                    Some(v) => Some(v),
                    None => {
                        self.error(
                            path,
                            format!(
                                "environment variable `{}` does not hold {}",
                                env.env,
                                T::EXPECTED
                            ),
                            None,
                        );
                        None
                    }
                },
                _ => {
                    self.error(
                        path,
                        format!("environment variable `{}` is not set", env.env),
                        Some(format!("export `{}` before running sextant", env.env)),
                    );
                    None
                }
            },
        }
    }

    fn secret(&mut self, path: &[&str], secret: &SecretRef) -> Option<SecretSource> {
        match secret_source(self.base_dir, self.confinement, secret) {
            Ok(source) => Some(source),
            Err((message, hint)) => {
                self.error(path, message, hint);
                None
            }
        }
    }

    fn duration(&mut self, path: &[&str], value: &EnvOr<String>) -> Option<Duration> {
        let text = self.setting(path, value)?;
        match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                self.error(path, "must be longer than zero", None);
                None
            }
            Err(_) => {
                let what = shown_value(value, &text);
                self.error(
                    path,
                    format!("{what} is not a duration"),
                    Some("write a duration like `30s`, `2m` or `1h 30m`".to_string()),
                );
                None
            }
        }
    }

    /// An http(s) base URL: a host, an optional valid port and path; no credentials, query
    /// string or fragment (a query would be sent with every call and printed nowhere, and
    /// `user:password@` is a secret written inline).
    fn url(&mut self, path: &[&str], value: &EnvOr<String>) -> Option<String> {
        let text = self.setting(path, value)?;
        let trimmed = text.trim().trim_end_matches('/').to_string();
        let what = shown_value(value, &shown::url(&text));
        let example = "write the base URL, e.g. `https://host.example.com`";
        let has_scheme = trimmed.starts_with("https://") || trimmed.starts_with("http://");
        if !has_scheme || trimmed.contains(char::is_whitespace) {
            self.error(
                path,
                format!("{what} is not an http(s) URL"),
                Some(example.to_string()),
            );
            return None;
        }
        let parsed = match reqwest::Url::parse(&trimmed) {
            Ok(parsed) if parsed.host_str().is_some_and(|h| !h.is_empty()) => parsed,
            Ok(_) => {
                self.error(
                    path,
                    format!("{what} has no host"),
                    Some(example.to_string()),
                );
                return None;
            }
            Err(err) => {
                // The parser's reasons (`invalid port number`) never quote the text.
                self.error(
                    path,
                    format!("{what} is not a valid URL: {err}"),
                    Some(example.to_string()),
                );
                return None;
            }
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            self.error(
                path,
                format!("{what} holds credentials (`user:password@`)"),
                Some(
                    "set `username` and `password` (from `{env: …}` or `{file: …}`) instead"
                        .to_string(),
                ),
            );
            return None;
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            self.error(
                path,
                format!("{what} has a query string or fragment"),
                Some(example.to_string()),
            );
            return None;
        }
        Some(trimmed)
    }

    /// Builds the connection's settings, reporting every problem.
    pub fn read(&mut self, spec: &ConnectionSpec) -> Option<ConnectionConfig> {
        let system = system_of(spec.kind);
        let before = self.errors.len();
        let mut config = ConnectionConfig::with_defaults(system);

        let present: Vec<&str> = self
            .spec_node
            .as_map()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.key.as_str())
            .collect();
        for field in present {
            let allowed = applies_to(field);
            if !allowed.contains(&system) {
                let list: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
                self.error(
                    &[field],
                    format!("`{field}` does not apply to a `{system}` connection"),
                    Some(format!("`{field}` is used by: {}", list.join(", "))),
                );
            }
        }

        if let Some(url) = &spec.url
            && let Some(url) = self.url(&["url"], url)
        {
            config.url = url;
        }
        if let Some(csp) = &spec.csp_url
            && let Some(csp) = self.url(&["csp_url"], csp)
        {
            config.csp_url = csp;
        }
        if let Some(org_id) = &spec.org_id {
            config.org_id = self.setting(&["org_id"], org_id);
        }
        if let Some(token) = &spec.api_token {
            config.api_token = self.secret(&["api_token"], token);
        }
        if let Some(username) = &spec.username {
            config.username = self.setting(&["username"], username);
        }
        if let Some(password) = &spec.password {
            config.password = self.secret(&["password"], password);
        }
        if let Some(name) = &spec.config_name
            && let Some(name) = self.setting(&["config_name"], name)
        {
            config.config_name = name;
        }
        if let Some(org) = &spec.org
            && let Some(org) = self.setting(&["org"], org)
        {
            config.org = org;
        }
        if let Some(version) = &spec.api_version
            && let Some(version) = self.setting(&["api_version"], version)
        {
            config.api_version = version;
        }
        if let Some(tls) = &spec.tls {
            if let Some(ca) = &tls.ca_file
                && let Some(ca) = self.setting(&["tls", "ca_file"], ca)
            {
                config.tls.ca_file = Some(self.base_dir.join(ca));
            }
            if let Some(pin) = &tls.pin_sha256
                && let Some(text) = self.setting(&["tls", "pin_sha256"], pin)
            {
                match crate::model::TlsConfig::parse_pin(&text) {
                    Some(pin) => config.tls.pin_sha256 = Some(pin),
                    None => {
                        let what = shown_value(pin, &text);
                        self.error(
                            &["tls", "pin_sha256"],
                            format!("{what} is not a SHA-256 fingerprint"),
                            Some("write 64 hex digits (colons allowed), as `openssl x509 -noout -fingerprint -sha256 -in cert.pem` prints them".to_string()),
                        );
                    }
                }
            }
            if let Some(insecure) = &tls.insecure
                && let Some(insecure) = self.setting(&["tls", "insecure"], insecure)
            {
                config.tls.insecure = insecure;
            }
        }
        if let Some(timeout) = &spec.timeout
            && let Some(timeout) = self.duration(&["timeout"], timeout)
        {
            config.timeout = timeout;
        }
        if let Some(timeout) = &spec.connect_timeout
            && let Some(timeout) = self.duration(&["connect_timeout"], timeout)
        {
            config.connect_timeout = timeout;
        }
        if let Some(deadline) = &spec.request_deadline
            && let Some(deadline) = self.duration(&["request_deadline"], deadline)
        {
            config.request_deadline = deadline;
        }
        if let Some(retries) = &spec.max_retries
            && let Some(retries) = self.setting(&["max_retries"], retries)
        {
            config.max_retries = retries;
        }
        if let Some(concurrency) = &spec.max_concurrency
            && let Some(concurrency) = self.setting(&["max_concurrency"], concurrency)
        {
            if concurrency == 0 {
                self.error(&["max_concurrency"], "must be at least 1", None);
            }
            config.max_concurrency = usize::try_from(concurrency).unwrap_or(usize::MAX);
        }
        if let Some(margin) = &spec.refresh_before_expiry
            && let Some(margin) = self.duration(&["refresh_before_expiry"], margin)
        {
            config.refresh_before_expiry = margin;
        }
        if let Some(flavor) = &spec.api_flavor
            && let Some(flavor) = self.setting(&["api_flavor"], flavor)
        {
            config.api_flavor = match flavor {
                VsphereApiFlavor::Auto => ApiFlavor::Auto,
                VsphereApiFlavor::Api => ApiFlavor::Api,
                VsphereApiFlavor::Rest => ApiFlavor::Rest,
            };
        }

        if let Some(max) = &spec.max_destroy {
            config.max_destroy = self.setting(&["max_destroy"], max);
        }
        if let Some(prune) = &spec.prune
            && applies_to("prune").contains(&system)
        {
            config.prune = self.prune(prune, system);
        }
        if let Some(age) = &spec.max_age
            && let Some(age) = self.duration(&["max_age"], age)
        {
            config.max_age = Some(age);
        }
        if let Some(unmanaged) = &spec.unmanaged {
            config.unmanaged = self.unmanaged(unmanaged, system);
        }

        self.check_auth(spec, system);
        self.check_url(spec, system, &mut config);
        (self.errors.len() == before).then_some(config)
    }

    /// `prune`: kinds of this system; kinds whose ids the server assigns need a `scope`.
    fn prune(&mut self, spec: &PruneSpec, system: SystemType) -> Option<PrunePolicy> {
        let before = self.errors.len();
        let mut kinds: Vec<Kind> = Vec::new();
        for (index, prunable) in spec.kinds.iter().enumerate() {
            let PrunableKind(kind) = *prunable;
            let index = index.to_string();
            let path = ["prune", "kinds", index.as_str()];
            if kind.system() != system {
                self.error(
                    &path,
                    format!("`{kind}` objects are not managed through a `{system}` connection"),
                    None,
                );
            } else if !crate::model::rules::rules_for(kind).client_chosen_id()
                && spec.scope.is_none()
            {
                self.error(
                    &path,
                    format!(
                        "the server chooses the ids of `{kind}` objects, so sextant cannot tell which it created; pruning them needs `prune.scope`"
                    ),
                    Some(
                        "set `scope` to the name glob your team reserves for sextant, e.g. `scope: \"prod-*\"`"
                            .to_string(),
                    ),
                );
            } else if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        if let Some(scope) = &spec.scope
            && scope.chars().all(|c| c == '*')
        {
            self.error(
                &["prune", "scope"],
                format!("`{scope}` matches every name: it would prune every undeclared object, including those made by hand or by other teams"),
                Some("reserve a prefix for sextant, e.g. `scope: \"sextant-*\"`".to_string()),
            );
        }
        (self.errors.len() == before).then(|| PrunePolicy {
            kinds,
            scope: spec.scope.clone(),
        })
    }

    /// The position of item `index` of the list at `path`.
    fn item_pos(&self, path: &[&str], index: usize) -> Pos {
        let mut node = self.spec_node;
        for key in path {
            match node.get(key) {
                Some(next) => node = next,
                None => return node.pos,
            }
        }
        node.as_seq()
            .and_then(|items| items.get(index))
            .map_or(node.pos, |item| item.pos)
    }

    fn item_error(&mut self, path: &[&str], index: usize, message: String, hint: Option<String>) {
        let pos = self.item_pos(path, index);
        self.errors.push(
            Diagnostic::new(
                self.file,
                pos,
                format!("{}[{index}]", spec_path(path)),
                message,
            )
            .with_hint(hint),
        );
    }

    /// `unmanaged`: kinds of this connection's system, and address globs that compile.
    fn unmanaged(&mut self, spec: &UnmanagedSpec, system: SystemType) -> UnmanagedScope {
        let mut scope = UnmanagedScope::default();
        if let Some(names) = &spec.kinds {
            let mut kinds = Vec::new();
            for (index, name) in names.iter().enumerate() {
                let path = ["unmanaged", "kinds"];
                // A kind of another system, or `Connection`, is known: said so, not "unknown".
                match DocumentKind::parse_declared(name) {
                    Some(DocumentKind::Resource(kind)) if kind.system() == system => {
                        if !kinds.contains(&kind) {
                            kinds.push(kind);
                        }
                    }
                    Some(kind) => {
                        let own = kinds_of(system);
                        self.item_error(
                            &path,
                            index,
                            format!("`{kind}` is not a kind of a `{system}` connection"),
                            Some(format!("a `{system}` connection has: {}", own.join(", "))),
                        );
                    }
                    None => {
                        let own = kinds_of(system);
                        let hint =
                            super::did_you_mean::hint(name, own.iter().copied()).or_else(|| {
                                Some(format!("a `{system}` connection has: {}", own.join(", ")))
                            });
                        self.item_error(
                            &path,
                            index,
                            format!("unknown kind `{}`", shown::visible(name)),
                            hint,
                        );
                    }
                }
            }
            kinds.sort();
            scope.kinds = Some(kinds);
        }
        let mut builder = globset::GlobSetBuilder::new();
        for (index, glob) in spec.ignore.iter().flatten().enumerate() {
            let path = ["unmanaged", "ignore"];
            let kind_part = glob.split_once('/').map(|(kind, _)| kind);
            let known_kind = kind_part
                .is_some_and(|k| k.contains(['*', '?', '[', '{']) || Kind::parse(k).is_some());
            if !known_kind {
                self.item_error(
                    &path,
                    index,
                    format!(
                        "`{}` is not an address glob",
                        shown::visible(glob)
                    ),
                    Some("write `Kind/name`, where the name may hold `*`, `?`, `[abc]` or `{a,b}`, e.g. `SaltJob/tmp-*`".to_string()),
                );
                continue;
            }
            match UnmanagedScope::compile(glob) {
                Ok(compiled) => {
                    builder.add(compiled);
                    scope.ignore.push(glob.clone());
                }
                Err(err) => self.item_error(
                    &path,
                    index,
                    format!(
                        "`{}` is not a valid glob: {}",
                        shown::visible(glob),
                        err.kind()
                    ),
                    Some("`*` and `?` match any characters, `[abc]` one of a set, `{a,b}` either; escape a literal one with `\\`".to_string()),
                ),
            }
        }
        scope.ignore_set = builder
            .build()
            .unwrap_or_else(|_| globset::GlobSet::empty());
        scope
    }

    fn check_auth(&mut self, spec: &ConnectionSpec, system: SystemType) {
        let token = spec.api_token.is_some();
        let user = spec.username.is_some();
        let password = spec.password.is_some();
        if user != password && system != SystemType::Vmc {
            let (have, missing) = if user {
                ("username", "password")
            } else {
                ("password", "username")
            };
            self.error(&[have], format!("`{have}` needs `{missing}` as well"), None);
        }
        match system {
            SystemType::Vmc if !token => self.error(
                &[],
                "a `vmc` connection needs `api_token`",
                Some("add `api_token: {env: SEXTANT_VMC_TOKEN}`".to_string()),
            ),
            SystemType::Raas if token && (user || password) => self.error(
                &["api_token"],
                "a `raas` connection uses either `api_token` (cloud) or `username` + `password` \
                 (on-prem), not both",
                None,
            ),
            SystemType::Raas | SystemType::Vcd if !token && !user && !password => self.error(
                &[],
                format!("a `{system}` connection needs `api_token` or `username` + `password`"),
                None,
            ),
            SystemType::Vsphere if !user && !password => self.error(
                &[],
                "a `vsphere` connection needs `username` and `password`",
                None,
            ),
            _ => {}
        }
    }

    fn check_url(
        &mut self,
        spec: &ConnectionSpec,
        system: SystemType,
        config: &mut ConnectionConfig,
    ) {
        match (&spec.url, &spec.region) {
            (Some(_), Some(_)) => {
                self.error(&["region"], "set either `url` or `region`, not both", None)
            }
            (None, Some(region)) => {
                if spec.api_token.is_none() && system == SystemType::Raas {
                    self.error(
                        &["region"],
                        "`region` names a cloud endpoint, which needs `api_token`",
                        Some("for an on-prem server set `url` instead".to_string()),
                    );
                }
                if let Some(region) = self.setting(&["region"], region) {
                    config.url = raas_region_url(region).to_string();
                }
            }
            (None, None) if system.default_url().is_none() => {
                let hint = (system == SystemType::Raas).then(|| {
                    "cloud servers may use `region: us` (or de, in, ca, au, uk)".to_string()
                });
                self.error(&[], format!("a `{system}` connection needs `url`"), hint);
            }
            _ => {}
        }
    }
}

/// Where a secret reference reads from: an environment variable, or a file (relative to the
/// manifest's directory) inside the folders the manifests may read secrets from. The error is
/// a message and a hint, for the caller to locate.
pub(super) fn secret_source(
    base_dir: &Path,
    confinement: &Confinement,
    secret: &SecretRef,
) -> Result<SecretSource, (String, Option<String>)> {
    match secret {
        SecretRef::Env(env) if env.env.trim().is_empty() => {
            Err(("environment variable name is empty".to_string(), None))
        }
        SecretRef::Env(env) => Ok(SecretSource::Env(env.env.clone())),
        SecretRef::File(file) if file.file.trim().is_empty() => {
            Err(("file path is empty".to_string(), None))
        }
        SecretRef::File(file) => {
            let file_path = base_dir.join(&file.file);
            if !confinement.may_read_secret(&file_path) {
                return Err((
                    format!(
                        "secret file `{}` is outside the manifest folders and every secret directory",
                        shown::visible(&file.file)
                    ),
                    Some(format!(
                        "name its directory with `--secret-dir DIR` or `{SECRET_DIRS_ENV}`: manifests may read secrets elsewhere only from directories the operator names"
                    )),
                ));
            }
            Ok(SecretSource::File(file_path))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::validate::tests::load;
    use crate::model::{ApiFlavor, Kind, Model, SecretSource};

    fn connection(spec: &str) -> Result<Model, Vec<String>> {
        load(&[(
            "c.yaml",
            &format!("kind: Connection\nname: c\nspec:\n{spec}"),
        )])
    }

    fn errors(spec: &str) -> Vec<String> {
        connection(spec).unwrap_err()
    }

    #[test]
    fn defaults_are_applied() {
        let model = connection("  type: vmc\n  api_token: {env: T}\n").unwrap();
        let config = &model.connections["c"].config;
        assert_eq!(config.url, "https://vmc.vmware.com");
        assert_eq!(config.csp_url, "https://console.cloud.vmware.com");
        assert_eq!(config.timeout.as_secs(), 30);
        assert_eq!(config.max_retries, 4);
        assert_eq!(config.connect_timeout.as_secs(), 10);
        assert_eq!(config.request_deadline.as_secs(), 120);
        assert_eq!(config.max_concurrency, 10);
        assert_eq!(config.refresh_before_expiry.as_secs(), 120);
        assert_eq!(config.api_token, Some(SecretSource::Env("T".into())));
    }

    #[test]
    fn settings_override_defaults_and_urls_lose_trailing_slashes() {
        let model = connection(
            "  type: vcd\n  url: https://vcd.example.com/\n  api_token: {file: tok}\n  org: acme\n  api_version: '38.0'\n  timeout: 2m\n  max_retries: 0\n  max_concurrency: 3\n  refresh_before_expiry: 5m\n  tls: {ca_file: ca.pem, insecure: true}\n",
        )
        .unwrap();
        let config = &model.connections["c"].config;
        assert_eq!(config.url, "https://vcd.example.com");
        assert_eq!(config.org, "acme");
        assert_eq!(config.api_version, "38.0");
        assert_eq!(config.timeout.as_secs(), 120);
        assert_eq!(config.max_retries, 0);
        assert_eq!(config.max_concurrency, 3);
        assert!(config.tls.insecure);
        let ca = config.tls.ca_file.clone().unwrap();
        assert!(ca.is_absolute() && ca.ends_with("ca.pem"), "{ca:?}");
        assert!(matches!(&config.api_token, Some(SecretSource::File(p)) if p.is_absolute()));
    }

    #[test]
    fn api_flavor_is_a_vsphere_setting_defaulting_to_auto() {
        let vsphere = "  type: vsphere\n  url: https://vc\n  username: u\n  password: {env: P}\n";
        let model = connection(vsphere).unwrap();
        assert_eq!(model.connections["c"].config.api_flavor, ApiFlavor::Auto);
        let model = connection(&format!("{vsphere}  api_flavor: rest\n")).unwrap();
        assert_eq!(model.connections["c"].config.api_flavor, ApiFlavor::Rest);
        let refused = errors(&format!("{vsphere}  api_flavor: soap\n"));
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].contains("spec.api_flavor"), "{refused:?}");
        let refused = errors("  type: vmc\n  api_token: {env: T}\n  api_flavor: api\n");
        assert!(
            refused[0].contains("`api_flavor` does not apply to a `vmc` connection"),
            "{refused:?}"
        );
    }

    #[test]
    fn env_settings_are_read_at_load() {
        let home = std::env::var("HOME").unwrap_or_default();
        if home.is_empty() {
            return;
        }
        let model = connection(
            "  type: vsphere\n  url: https://vc\n  username: {env: HOME}\n  password: {env: P}\n",
        )
        .unwrap();
        assert_eq!(
            model.connections["c"].config.username.as_deref(),
            Some(home.as_str())
        );
        let errors = errors(
            "  type: vsphere\n  url: https://vc\n  username: u\n  password: {env: P}\n  max_retries: {env: HOME}\n",
        );
        assert_eq!(
            errors,
            vec![
                "c.yaml:8:16 spec.max_retries: environment variable `HOME` does not hold a non-negative integer"
            ]
        );
        let errors = errors_of_unset();
        assert_eq!(
            errors,
            vec![
                "c.yaml:7:8 spec.url: environment variable `SEXTANT_UNIT_SURELY_UNSET` is not set"
            ]
        );
    }

    fn errors_of_unset() -> Vec<String> {
        errors(
            "  type: vsphere\n  username: u\n  password: {env: P}\n  url: {env: SEXTANT_UNIT_SURELY_UNSET}\n",
        )
    }

    #[test]
    fn raas_region_shorthand() {
        let model = connection("  type: raas\n  region: de\n  api_token: {env: T}\n").unwrap();
        assert_eq!(
            model.connections["c"].config.url,
            "https://de.ssc-gateway.mgmt.cloud.vmware.com"
        );
        let both = errors("  type: raas\n  region: de\n  url: https://x\n  api_token: {env: T}\n");
        assert_eq!(
            both,
            vec!["c.yaml:5:11 spec.region: set either `url` or `region`, not both"]
        );
        let on_prem = errors("  type: raas\n  region: us\n  username: u\n  password: {env: P}\n");
        assert_eq!(on_prem.len(), 1);
        assert!(on_prem[0].contains("needs `api_token`"), "{on_prem:?}");
    }

    #[test]
    fn auth_requirements_per_type() {
        assert_eq!(
            errors("  type: vmc\n"),
            vec!["c.yaml:4:3 spec: a `vmc` connection needs `api_token`"]
        );
        let both = errors(
            "  type: raas\n  url: https://s\n  api_token: {env: T}\n  username: u\n  password: {env: P}\n",
        );
        assert_eq!(both.len(), 1);
        assert!(both[0].contains("not both"), "{both:?}");
        assert_eq!(
            errors("  type: vcd\n  url: https://v\n"),
            vec![
                "c.yaml:4:3 spec: a `vcd` connection needs `api_token` or `username` + `password`"
            ]
        );
        assert_eq!(
            errors("  type: vsphere\n  url: https://v\n"),
            vec!["c.yaml:4:3 spec: a `vsphere` connection needs `username` and `password`"]
        );
        assert_eq!(
            errors("  type: vsphere\n  url: https://v\n  password: {env: P}\n"),
            vec!["c.yaml:6:13 spec.password: `password` needs `username` as well"]
        );
        assert_eq!(
            errors("  type: vsphere\n  username: u\n  password: {env: P}\n"),
            vec!["c.yaml:4:3 spec: a `vsphere` connection needs `url`"]
        );
    }

    #[test]
    fn settings_of_other_types_are_rejected() {
        let errors = errors("  type: vmc\n  api_token: {env: T}\n  config_name: ldap\n");
        assert_eq!(
            errors,
            vec![
                "c.yaml:6:16 spec.config_name: `config_name` does not apply to a `vmc` connection"
            ]
        );
    }

    #[test]
    fn prune_lists_kinds_of_the_system_and_needs_a_scope_for_server_chosen_ids() {
        let raas = "  type: raas\n  url: https://s\n  api_token: {env: T}\n";
        let model = connection(&format!(
            "{raas}  prune: {{ kinds: [SaltJob, SaltTarget], scope: \"prod-*\" }}\n  max_destroy: 3\n"
        ))
        .unwrap();
        let config = &model.connections["c"].config;
        let policy = config.prune.clone().unwrap();
        assert_eq!(policy.kinds, vec![Kind::SaltJob, Kind::SaltTarget]);
        assert_eq!(policy.scope.as_deref(), Some("prod-*"));
        assert_eq!(config.max_destroy, Some(3));
        assert_eq!(
            connection(&format!("{raas}  prune: {{ kinds: [SaltJob] }}\n"))
                .unwrap()
                .connections["c"]
                .config
                .prune
                .clone()
                .unwrap()
                .scope,
            None
        );

        let refused = errors(&format!("{raas}  prune: {{ kinds: [SaltSchedule] }}\n"));
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].contains("spec.prune.kinds.0")
                && refused[0].contains("pruning them needs `prune.scope`"),
            "{refused:?}"
        );
        let refused = errors(&format!("{raas}  prune: {{ kinds: [Sddc] }}\n"));
        assert!(
            refused[0].contains("`Sddc` objects are not managed through a `raas` connection"),
            "{refused:?}"
        );
        let refused = errors(&format!(
            "{raas}  prune: {{ kinds: [SaltJob], scope: \"**\" }}\n"
        ));
        assert!(refused[0].contains("matches every name"), "{refused:?}");
        let refused = errors(&format!("{raas}  prune: {{ kinds: [VirtualMachine] }}\n"));
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].contains("spec.prune.kinds"), "{refused:?}");
        let refused = errors(
            "  type: vsphere\n  url: https://v\n  username: u\n  password: {env: P}\n  prune: { kinds: [Sddc] }\n",
        );
        assert!(
            refused
                .iter()
                .any(|e| e.contains("`prune` does not apply to a `vsphere` connection")),
            "{refused:?}"
        );
    }

    #[test]
    fn unmanaged_takes_kinds_of_the_connection_and_valid_address_globs() {
        let raas = "  type: raas\n  url: https://s\n  api_token: {env: T}\n";
        let model = connection(&format!(
            "{raas}  unmanaged:\n    kinds: [SaltJob, SaltTarget, SaltJob]\n    ignore: ['SaltTarget/All Minions', 'SaltJob/tmp-*']\n"
        ))
        .unwrap();
        let scope = &model.connections["c"].config.unmanaged;
        assert_eq!(scope.kinds, Some(vec![Kind::SaltTarget, Kind::SaltJob]));
        let address = |text: &str| crate::model::Address::parse(text).unwrap();
        assert!(scope.ignores(&address("SaltTarget/All Minions")));
        assert!(scope.ignores(&address("SaltJob/tmp-a/b")));
        assert!(!scope.ignores(&address("SaltJob/prod-tmp-a")));
        assert!(!scope.ignores(&address("SaltTarget/All Minions 2")));
        let unset = connection(raas).unwrap();
        assert_eq!(unset.connections["c"].config.unmanaged.kinds, None);

        let refused = errors(&format!(
            "{raas}  unmanaged:\n    kinds: [Sddc, Saltjob]\n    ignore: ['SaltJob/[x', 'no-kind', 'Nope/x']\n"
        ));
        assert_eq!(
            refused,
            vec![
                "c.yaml:8:13 spec.unmanaged.kinds[0]: `Sddc` is not a kind of a `raas` connection",
                "c.yaml:8:19 spec.unmanaged.kinds[1]: unknown kind `Saltjob`",
                "c.yaml:9:14 spec.unmanaged.ignore[0]: `SaltJob/[x` is not a valid glob: unclosed character class; missing ']'",
                "c.yaml:9:28 spec.unmanaged.ignore[1]: `no-kind` is not an address glob",
                "c.yaml:9:39 spec.unmanaged.ignore[2]: `Nope/x` is not an address glob",
            ]
        );
    }

    #[test]
    fn values_are_checked() {
        let errors = errors(
            "  type: vmc\n  api_token: {env: ''}\n  url: ftp://x\n  timeout: 0s\n  max_concurrency: 0\n",
        );
        assert_eq!(errors.len(), 4, "{errors:?}");
    }
}
