//! Aria Automation Config / Salt (RaaS) target groups, saved jobs and schedules
//! (`raas.md` §4–§9) and the per-role access of jobs and target groups: bulk paged listing,
//! normalization into the manifest's spec shape, create / update / delete with the
//! documented dependency rules, batched saves, and creates that never duplicate. Login and
//! the RPC transport live in [`session`].

pub mod session;

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::model::{Connection, Kind};
use crate::providers::http::HttpClient;
use crate::providers::{
    Attributes, CreateRequest, DeleteRequest, LiveObject, LiveStatus, Outcome, Provider,
    ProviderError, ProviderResult, TaskHandle, TaskStatus, UpdateRequest,
};

pub use session::{RaasSession, RpcCall, RpcError};

/// The page size asked for; servers may cap it and say so in the reply's `limit`.
pub const PAGE_SIZE: u64 = 1000;
/// The most calls sent in one batched RPC request.
pub const BATCH_SIZE: usize = 100;
/// Attempts of a create without a client-chosen id (each after checking by name).
pub const MAX_CREATE_ATTEMPTS: u32 = 5;
/// The built-in "All Minions" target group (`raas.md` §6).
pub const ALL_MINIONS_UUID: &str = "7f93b928-388b-11e6-b133-346895ecb8f3";
const RPC_PATH_FOR_ERRORS: &str = "/rpc";
/// `show_past` of every `schedule.get`: without it the server leaves out each schedule whose
/// `once` time or `until` date has passed (D2, `schedule.get`, `GetSchedulerSchema`:
/// `show_past`, default false, "include entries that were scheduled to run in the past"),
/// and a fired `once` schedule would look absent and be created again on every apply.
const SHOW_PAST: bool = true;

/// The RaaS provider of one connection.
pub struct RaasProvider {
    connection: String,
    session: RaasSession,
}

impl RaasProvider {
    /// Builds the client; never contacts the server (login happens on the first call).
    pub fn new(connection: &Connection) -> ProviderResult<Self> {
        let http = HttpClient::new(&connection.name, &connection.config)?;
        Ok(Self {
            connection: connection.name.clone(),
            session: RaasSession::new(connection, http)?,
        })
    }

    /// The login and RPC transport, for callers that need a raw call.
    pub fn session(&self) -> &RaasSession {
        &self.session
    }

    /// Creates many objects with batched RPC requests (up to [`BATCH_SIZE`] saves each).
    /// References (`target`, `job`) must already exist. Results are in request order; a
    /// batch whose reply was lost is settled one object at a time without duplicates.
    pub async fn save_many(
        &self,
        requests: &[CreateRequest<'_>],
    ) -> ProviderResult<Vec<ProviderResult<Outcome>>> {
        let mut refs = References::default();
        refs.prefetch(self, requests).await?;
        let mut twins = self.find_twins(requests).await?;
        let mut results: Vec<Option<ProviderResult<Outcome>>> = Vec::new();
        let mut pending: Vec<(usize, RpcCall)> = Vec::new();
        for (index, request) in requests.iter().enumerate() {
            results.push(None);
            if let Some(found) = twins.remove(&index) {
                results[index] = Some(found.map(uuid_outcome));
                continue;
            }
            match self.create_call(request, &mut refs).await {
                Ok(call) => pending.push((index, call)),
                Err(err) => results[index] = Some(Err(err)),
            }
        }
        for chunk in pending.chunks(BATCH_SIZE) {
            let calls: Vec<RpcCall> = chunk.iter().map(|(_, call)| call.clone()).collect();
            // Resending is safe only when every save carries its own id (jobs).
            let idempotent = chunk
                .iter()
                .all(|(i, _)| requests[*i].address.kind == Kind::SaltJob);
            match self.session.call_many(&calls, idempotent).await {
                Ok(replies) => {
                    for ((index, call), reply) in chunk.iter().zip(replies) {
                        results[*index] = Some(
                            reply
                                .map_err(|err| rpc_failure(call, &err))
                                .and_then(|ret| saved_uuid(call, &ret))
                                .map(uuid_outcome),
                        );
                    }
                }
                Err(err) if may_have_committed(&err) => {
                    tracing::debug!(connection = %self.connection, "a batch reply was lost; settling its saves one by one");
                    for (index, _) in chunk {
                        let request = &requests[*index];
                        let kind = request.address.kind;
                        // A job names its own uuid and is simply saved again; others are
                        // looked up by name first.
                        let found = match kind {
                            Kind::SaltJob => Ok(None),
                            _ => self.find_uuid(kind, &request.address.name).await,
                        };
                        let settled = match found {
                            Ok(Some(uuid)) => Ok(uuid_outcome(uuid)),
                            Ok(None) => self.create(request).await,
                            Err(err) => Err(err),
                        };
                        results[*index] = Some(settled);
                    }
                }
                Err(err) => return Err(err),
            }
        }
        // Objects created with `access` get it saved now that their uuids are known.
        let created: Vec<(usize, (Kind, String, &Value))> = results
            .iter()
            .enumerate()
            .filter(|(index, _)| requests[*index].spec.get("access").is_some())
            .filter_map(|(index, result)| match result {
                Some(Ok(Outcome::Done { attributes, .. })) => Some((
                    index,
                    (
                        requests[index].address.kind,
                        attributes.get("uuid")?.clone(),
                        requests[index].spec,
                    ),
                )),
                _ => None,
            })
            .collect();
        let items: Vec<(Kind, String, &Value)> =
            created.iter().map(|(_, item)| item.clone()).collect();
        let saved = self.save_new_access(&items).await;
        for ((index, (kind, _, _)), result) in created.iter().zip(saved) {
            if let Err(err) = result {
                results[*index] = Some(Err(access_not_saved(
                    *kind,
                    &requests[*index].address.name,
                    &err,
                )));
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ProviderError::Invalid("save was not attempted".to_string()))
                })
            })
            .collect())
    }

    /// Sets the access of objects just created (kind, uuid, desired spec) whose manifest has
    /// `access`: reads each back for the access it got by default, puts the roles the
    /// manifest names over it ([`access_payload`]) and saves it, in batches. One result per
    /// object, in order.
    async fn save_new_access(&self, created: &[(Kind, String, &Value)]) -> Vec<ProviderResult<()>> {
        let mut results: Vec<ProviderResult<()>> = created.iter().map(|_| Ok(())).collect();
        let wanted: Vec<usize> = (0..created.len())
            .filter(|i| created[*i].2.get("access").is_some())
            .collect();
        for chunk in wanted.chunks(BATCH_SIZE) {
            let reads: Vec<RpcCall> = chunk
                .iter()
                .map(|i| read_back_call(created[*i].0, &created[*i].1))
                .collect();
            let replies = match self.session.call_many(&reads, true).await {
                Ok(replies) => replies,
                Err(err) => {
                    for i in chunk {
                        results[*i] = Err(ProviderError::Invalid(err.to_string()));
                    }
                    continue;
                }
            };
            let mut saves: Vec<(usize, RpcCall)> = Vec::new();
            for ((i, read), reply) in chunk.iter().zip(&reads).zip(replies) {
                let (kind, uuid, spec) = &created[*i];
                let page = reply
                    .map_err(|err| rpc_failure(read, &err))
                    .and_then(|ret| Page::parse(read, ret));
                let live = match page {
                    Ok(page) => page
                        .results
                        .iter()
                        .find(|item| str_field(item, "uuid") == Some(uuid.as_str()))
                        .and_then(|item| item.get(ACCESS_KEY))
                        .and_then(|access| normalize_access(*kind, access)),
                    Err(err) => {
                        results[*i] = Err(err);
                        continue;
                    }
                };
                if let Some(payload) = access_payload(*kind, live.as_ref(), spec) {
                    saves.push((*i, access_call(*kind, uuid, payload)));
                }
            }
            let calls: Vec<RpcCall> = saves.iter().map(|(_, call)| call.clone()).collect();
            match self.session.call_many(&calls, true).await {
                Ok(replies) => {
                    for ((i, call), reply) in saves.iter().zip(replies) {
                        if let Err(err) = reply {
                            results[*i] = Err(rpc_failure(call, &err));
                        }
                    }
                }
                Err(err) => {
                    for (i, _) in &saves {
                        results[*i] = Err(ProviderError::Invalid(err.to_string()));
                    }
                }
            }
        }
        results
    }

    /// Lists every object a list method returns: page 0 with [`PAGE_SIZE`], then the other
    /// pages concurrently with the page size the server used; fails unless the number of
    /// objects collected equals the server's `count`.
    async fn list_all(
        &self,
        resource: &'static str,
        method: &'static str,
        filters: Map<String, Value>,
    ) -> ProviderResult<Vec<Value>> {
        self.list_all_map(resource, method, filters, Some).await
    }

    /// [`Self::list_all`], turning each item into what the caller keeps (or nothing) as soon
    /// as its page arrives, so that a 100,000-object listing never holds every reply at once.
    /// At most [`LIST_CONCURRENCY`] pages are in flight.
    async fn list_all_map<T: Send>(
        &self,
        resource: &'static str,
        method: &'static str,
        filters: Map<String, Value>,
        convert: impl Fn(Value) -> Option<T> + Sync,
    ) -> ProviderResult<Vec<T>> {
        let page_call = |limit: u64, page: u64| {
            let mut kwarg = filters.clone();
            kwarg.insert("limit".to_string(), json!(limit));
            kwarg.insert("page".to_string(), json!(page));
            RpcCall::new(resource, method, Value::Object(kwarg))
        };
        let first_call = page_call(PAGE_SIZE, 0);
        let first = self.read(&first_call).await?;
        let first = Page::parse(&first_call, first)?;
        let count = first.count;
        let served = first.results.len() as u64;
        let mut collected = served;
        let mut results: Vec<T> = first.results.into_iter().filter_map(&convert).collect();
        if served < count {
            // Page by what the server actually served: its `limit`, never more than it sent.
            let limit = first
                .limit
                .filter(|l| *l > 0)
                .map_or(served, |l| l.min(served));
            if limit == 0 {
                return Err(self.list_error(
                    &first_call,
                    format!("page 0 holds no objects although `count` is {count}"),
                ));
            }
            let pages = count.div_ceil(limit);
            if pages > MAX_LIST_PAGES {
                return Err(self.list_error(
                    &first_call,
                    format!("`count` {count} with pages of {limit} needs {pages} pages, more than the {MAX_LIST_PAGES} this client reads"),
                ));
            }
            tracing::debug!(connection = %self.connection, call = %first_call.name(), count, limit, pages, "listing remaining pages");
            let convert = &convert;
            let mut replies = futures::stream::iter(1..pages)
                .map(|page| {
                    let call = page_call(limit, page);
                    async move {
                        let ret = self.read(&call).await?;
                        let page = Page::parse(&call, ret)?;
                        let listed = page.results.len() as u64;
                        let kept: Vec<T> = page.results.into_iter().filter_map(convert).collect();
                        Ok::<_, ProviderError>((listed, kept))
                    }
                })
                .buffered(LIST_CONCURRENCY);
            while let Some((listed, kept)) = replies.try_next().await? {
                collected += listed;
                results.extend(kept);
            }
        }
        if collected != count {
            return Err(self.list_error(&first_call, format!(
                "collected {collected} objects but the server counts {count}; the listing changed while paging, run again"
            )));
        }
        Ok(results)
    }

    fn list_error(&self, call: &RpcCall, message: String) -> ProviderError {
        ProviderError::Protocol {
            method: "POST".to_string(),
            path: RPC_PATH_FOR_ERRORS.to_string(),
            message: format!(
                "`{}` on connection `{}`: {message}",
                call.name(),
                self.connection
            ),
        }
    }

    /// A call that is safe to send twice (a read, or a save naming its uuid). The HTTP layer
    /// resends it when the reply is lost; nothing here retries around that.
    async fn call_idempotent(&self, call: &RpcCall) -> ProviderResult<Result<Value, RpcError>> {
        self.session.call(call, true).await
    }

    /// A read-only call; RPC errors become provider errors.
    async fn read(&self, call: &RpcCall) -> ProviderResult<Value> {
        self.call_idempotent(call)
            .await?
            .map_err(|err| rpc_failure(call, &err))
    }

    /// The uuid of the one object of `kind` named exactly `name`, if any.
    async fn find_uuid(&self, kind: Kind, name: &str) -> ProviderResult<Option<String>> {
        let (resource, method, filters) = match kind {
            Kind::SaltTarget => ("tgt", "get_target_group", json!({"name": name})),
            Kind::SaltJob => ("job", "get_jobs", json!({"name": name})),
            Kind::SaltSchedule => (
                "schedule",
                "get",
                json!({"names": [name], "show_past": SHOW_PAST}),
            ),
            other => return Err(unsupported(other)),
        };
        let Value::Object(filters) = filters else {
            return Ok(None);
        };
        let items = self.list_all(resource, method, filters).await?;
        let matches: Vec<&Value> = items
            .iter()
            .filter(|item| str_field(item, "name") == Some(name))
            .collect();
        match matches.as_slice() {
            [] => Ok(None),
            [one] => Ok(str_field(one, "uuid").map(str::to_string)),
            many => Err(ProviderError::Invalid(format!(
                "{} live {kind} objects are named `{name}` on connection `{}`; rename or delete all but one",
                many.len(),
                self.connection
            ))),
        }
    }

    /// Objects of the requests' names that exist already, by request index, for the kinds
    /// without a client-chosen id (target groups, schedules): a racing twin — another apply,
    /// another tool — may have created one since the plan listed, and a second save would
    /// duplicate it. One lookup per kind; two objects of one name are an error for that
    /// request.
    async fn find_twins(
        &self,
        requests: &[CreateRequest<'_>],
    ) -> ProviderResult<HashMap<usize, ProviderResult<String>>> {
        let mut found = HashMap::new();
        for kind in [Kind::SaltTarget, Kind::SaltSchedule] {
            let indices: Vec<usize> = (0..requests.len())
                .filter(|i| requests[*i].address.kind == kind)
                .collect();
            let names: std::collections::BTreeSet<&str> = indices
                .iter()
                .map(|i| requests[*i].address.name.as_str())
                .collect();
            let uuids: HashMap<&str, Vec<String>> = match names.len() {
                0 => continue,
                1 => {
                    let name = names.iter().next().copied().unwrap_or_default();
                    match self.find_uuid(kind, name).await {
                        Ok(uuid) => HashMap::from([(name, uuid.into_iter().collect())]),
                        Err(err) => {
                            let message = err.to_string();
                            for index in indices {
                                found.insert(index, Err(ProviderError::Invalid(message.clone())));
                            }
                            continue;
                        }
                    }
                }
                _ => {
                    let items = match kind {
                        Kind::SaltTarget => self.list_targets().await?,
                        // `show_past`: fired `once` schedules are hidden without it (the
                        // audit's correction, `api_discovery.json` `schedule.get`).
                        _ => {
                            let filters = json!({"names": names, "show_past": true});
                            let Value::Object(filters) = filters else {
                                continue;
                            };
                            self.list_all("schedule", "get", filters).await?
                        }
                    };
                    let mut uuids: HashMap<&str, Vec<String>> = HashMap::new();
                    for item in &items {
                        if let (Some(name), Some(uuid)) =
                            (str_field(item, "name"), str_field(item, "uuid"))
                            && let Some(name) = names.get(name)
                        {
                            uuids.entry(name).or_default().push(uuid.to_string());
                        }
                    }
                    uuids
                }
            };
            for index in indices {
                let name = requests[index].address.name.as_str();
                match uuids.get(name).map(Vec::as_slice) {
                    None | Some([]) => {}
                    Some([uuid]) => {
                        tracing::warn!(
                            "{kind} `{name}` appeared on connection `{}` after the plan read it (uuid {uuid}); adopting it instead of creating a second one",
                            self.connection
                        );
                        found.insert(index, Ok(uuid.clone()));
                    }
                    Some(many) => {
                        found.insert(
                            index,
                            Err(ProviderError::Invalid(format!(
                                "{} live {kind} objects are named `{name}` on connection `{}` (uuids {}); delete all but one, then run `sextant plan` again",
                                many.len(),
                                self.connection,
                                many.join(", ")
                            ))),
                        );
                    }
                }
            }
        }
        Ok(found)
    }

    /// The uuid behind a referenced name, or an error saying it does not exist.
    async fn require_uuid(&self, kind: Kind, name: &str) -> ProviderResult<String> {
        self.find_uuid(kind, name).await?.ok_or_else(|| {
            ProviderError::Invalid(format!(
                "{kind} `{name}` does not exist on connection `{}`",
                self.connection
            ))
        })
    }

    /// The save call that creates `request`'s object (references resolved to uuids).
    async fn create_call(
        &self,
        request: &CreateRequest<'_>,
        refs: &mut References,
    ) -> ProviderResult<RpcCall> {
        let name = &request.address.name;
        let spec = request.spec;
        match request.address.kind {
            Kind::SaltTarget => Ok(target_call(name, spec, None)),
            Kind::SaltJob => {
                let tgt_uuid = match str_field(spec, "target") {
                    Some(target) => Some(refs.uuid(self, Kind::SaltTarget, target).await?),
                    None => None,
                };
                Ok(job_call(
                    name,
                    spec,
                    &request.idempotency_key.to_string(),
                    tgt_uuid,
                ))
            }
            Kind::SaltSchedule => {
                let (job_uuid, tgt_uuid) = self.schedule_refs(spec, refs).await?;
                Ok(schedule_save_call(name, spec, job_uuid, tgt_uuid))
            }
            other => Err(unsupported(other)),
        }
    }

    async fn schedule_refs(
        &self,
        spec: &Value,
        refs: &mut References,
    ) -> ProviderResult<(Option<String>, Option<String>)> {
        let job = match str_field(spec, "job") {
            Some(job) => Some(refs.uuid(self, Kind::SaltJob, job).await?),
            None => None,
        };
        let target = match str_field(spec, "target") {
            Some(target) => Some(refs.uuid(self, Kind::SaltTarget, target).await?),
            None => None,
        };
        Ok((job, target))
    }

    /// Saves an object that has no client-chosen id. A save that may have reached the
    /// server is never resent blindly: the name is looked up first and a match adopted.
    async fn save_without_id(
        &self,
        kind: Kind,
        name: &str,
        call: &RpcCall,
    ) -> ProviderResult<String> {
        let mut attempt = 1;
        loop {
            match self.session.call(call, false).await {
                Ok(Ok(ret)) => return saved_uuid(call, &ret),
                Ok(Err(err)) => return Err(rpc_failure(call, &err)),
                Err(err) if may_have_committed(&err) => {
                    tracing::debug!(connection = %self.connection, %kind, name, attempt, "the save may have reached the server; looking it up by name");
                    if let Some(uuid) = self.find_uuid(kind, name).await? {
                        return Ok(uuid);
                    }
                    if attempt >= MAX_CREATE_ATTEMPTS {
                        return Err(err);
                    }
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Runs a delete call; an object already gone counts as deleted.
    async fn delete_call(
        &self,
        kind: Kind,
        live: &LiveObject,
        call: RpcCall,
    ) -> ProviderResult<Outcome> {
        match self.call_idempotent(&call).await? {
            Ok(_) => Ok(Outcome::done()),
            Err(err) if err.is_dependency_failure() => Err(ProviderError::Invalid(format!(
                "cannot delete {kind} `{}`: other objects depend on it ({}); delete them first",
                live.name,
                err.describe()
            ))),
            Err(err) => {
                if self.find_uuid(kind, &live.name).await?.as_deref() != Some(live.id.as_str()) {
                    return Ok(Outcome::done());
                }
                Err(rpc_failure(&call, &err))
            }
        }
    }

    async fn list_targets(&self) -> ProviderResult<Vec<Value>> {
        self.list_all("tgt", "get_target_group", Map::new()).await
    }

    async fn list_jobs(&self) -> ProviderResult<Vec<Value>> {
        self.list_all("job", "get_jobs", Map::new()).await
    }

    /// `uuid → name` of every target group.
    async fn target_names(&self) -> ProviderResult<HashMap<String, String>> {
        Ok(uuid_names(&self.list_targets().await?))
    }
}

/// Memoized name → uuid lookups for one operation.
#[derive(Default)]
struct References {
    known: HashMap<(Kind, String), String>,
}

impl References {
    /// Resolves the names `requests` refer to with one listing per kind instead of one
    /// lookup per name, when more than one name of a kind is needed. Names that match
    /// several objects are left to [`References::uuid`], which reports them.
    async fn prefetch(
        &mut self,
        provider: &RaasProvider,
        requests: &[CreateRequest<'_>],
    ) -> ProviderResult<()> {
        let mut wanted: HashMap<Kind, std::collections::HashSet<&str>> = HashMap::new();
        for request in requests {
            let spec = request.spec;
            let mut want = |kind: Kind, key: &str| {
                if let Some(name) = str_field(spec, key) {
                    wanted.entry(kind).or_default().insert(name);
                }
            };
            match request.address.kind {
                Kind::SaltJob => want(Kind::SaltTarget, "target"),
                Kind::SaltSchedule => {
                    want(Kind::SaltTarget, "target");
                    want(Kind::SaltJob, "job");
                }
                _ => {}
            }
        }
        for (kind, names) in wanted {
            if names.len() < 2 {
                continue;
            }
            let items = match kind {
                Kind::SaltTarget => provider.list_targets().await?,
                _ => provider.list_jobs().await?,
            };
            let mut found: HashMap<&str, Option<&str>> = HashMap::new();
            for item in &items {
                if let (Some(name), Some(uuid)) = (str_field(item, "name"), str_field(item, "uuid"))
                    && names.contains(name)
                {
                    // A second object of the same name makes it ambiguous.
                    found
                        .entry(name)
                        .and_modify(|seen| *seen = None)
                        .or_insert(Some(uuid));
                }
            }
            for (name, uuid) in found {
                if let Some(uuid) = uuid {
                    self.known
                        .insert((kind, name.to_string()), uuid.to_string());
                }
            }
        }
        Ok(())
    }

    async fn uuid(
        &mut self,
        provider: &RaasProvider,
        kind: Kind,
        name: &str,
    ) -> ProviderResult<String> {
        if let Some(uuid) = self.known.get(&(kind, name.to_string())) {
            return Ok(uuid.clone());
        }
        let uuid = provider.require_uuid(kind, name).await?;
        self.known.insert((kind, name.to_string()), uuid.clone());
        Ok(uuid)
    }
}

#[async_trait::async_trait]
impl Provider for RaasProvider {
    async fn credential_expiry(&self) -> ProviderResult<Option<chrono::DateTime<chrono::Utc>>> {
        self.session.api_token_expiry().await
    }

    async fn list(&self, kind: Kind, _names: &[String]) -> ProviderResult<Vec<LiveObject>> {
        match kind {
            Kind::SaltTarget => Ok(self
                .list_all_map("tgt", "get_target_group", Map::new(), |item| {
                    target_object(&item)
                })
                .await?),
            Kind::SaltJob => {
                // Each page becomes live objects as it arrives. A job names its group by
                // `tgt_name` (documented); one that carries only `tgt_uuid` is given the
                // group's name from one listing of the groups, made only when needed; its
                // `target` holds the uuid until then.
                let unnamed = std::sync::atomic::AtomicBool::new(false);
                let mut jobs = self
                    .list_all_map("job", "get_jobs", Map::new(), |job| {
                        if str_field(&job, "tgt_uuid").is_some_and(|u| !u.is_empty())
                            && str_field(&job, "tgt_name").is_none_or(str::is_empty)
                        {
                            unnamed.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        job_object(&job)
                    })
                    .await?;
                if unnamed.into_inner() {
                    name_job_targets(&mut jobs, &self.target_names().await?);
                }
                Ok(jobs)
            }
            Kind::SaltSchedule => {
                let filters = Map::from_iter([("show_past".to_string(), json!(SHOW_PAST))]);
                let schedules = self.list_all("schedule", "get", filters).await?;
                let needs = |uuid_key: &str, name_key: &str| {
                    schedules.iter().any(|s| {
                        str_field(s, uuid_key).is_some_and(|u| !u.is_empty())
                            && str_field(s, name_key).is_none_or(str::is_empty)
                    })
                };
                let jobs = if needs("job_uuid", "job_name") {
                    uuid_names(&self.list_jobs().await?)
                } else {
                    HashMap::new()
                };
                let groups = if needs("tgt_uuid", "tgt_name") {
                    self.target_names().await?
                } else {
                    HashMap::new()
                };
                Ok(schedules
                    .iter()
                    .filter_map(|s| schedule_object(s, &jobs, &groups))
                    .collect())
            }
            other => Err(unsupported(other)),
        }
    }

    async fn create(&self, request: &CreateRequest<'_>) -> ProviderResult<Outcome> {
        let kind = request.address.kind;
        let name = &request.address.name;
        if kind != Kind::SaltJob
            && let Some(found) = self
                .find_twins(std::slice::from_ref(request))
                .await?
                .remove(&0)
        {
            return found.map(uuid_outcome);
        }
        let call = self
            .create_call(request, &mut References::default())
            .await?;
        let uuid = match kind {
            // The job uuid is ours (`save_job` creates with a given uuid): resending is safe.
            Kind::SaltJob => {
                let ret = self
                    .call_idempotent(&call)
                    .await?
                    .map_err(|err| rpc_failure(&call, &err))?;
                saved_uuid(&call, &ret)?
            }
            _ => self.save_without_id(kind, name, &call).await?,
        };
        if let Some(Err(err)) = self
            .save_new_access(&[(kind, uuid.clone(), request.spec)])
            .await
            .pop()
        {
            return Err(access_not_saved(kind, name, &err));
        }
        Ok(uuid_outcome(uuid))
    }

    fn create_batch_limit(&self) -> usize {
        BATCH_SIZE
    }

    async fn create_many(&self, requests: &[CreateRequest<'_>]) -> Vec<ProviderResult<Outcome>> {
        match self.save_many(requests).await {
            Ok(results) => results,
            Err(err) => {
                let message = err.to_string();
                requests
                    .iter()
                    .map(|_| Err(ProviderError::Invalid(message.clone())))
                    .collect()
            }
        }
    }

    async fn update(&self, request: &UpdateRequest<'_>) -> ProviderResult<Outcome> {
        let kind = request.address.kind;
        let name = &request.address.name;
        let live = request.live.spec.value();
        let uuid = request.live.id.clone();
        // Access is saved by its own call; the object itself only when more changed.
        let is_access = |field: &String| field == "access" || field.starts_with("access.");
        let access_changed = request.changed.iter().any(is_access)
            || (request.changed.is_empty() && request.spec.get("access").is_some());
        let object_changed =
            request.changed.is_empty() || request.changed.iter().any(|f| !is_access(f));
        if access_changed
            && let Some(payload) = access_payload(kind, live.get("access"), request.spec)
            && !object_changed
        {
            let call = access_call(kind, &uuid, payload);
            self.call_idempotent(&call)
                .await?
                .map_err(|err| rpc_failure(&call, &err))?;
            return Ok(uuid_outcome(uuid));
        }
        let mut refs = References::default();
        let call = match kind {
            // `save_target_group` and `save_job` are sent the whole object (whether they
            // keep omitted fields is unverified, raas.md §5–§6): the desired fields over the
            // live ones. `tgt` and `arg` go whole, so keys the manifest dropped from them go.
            Kind::SaltTarget => target_call(name, &merged(&live, request.spec), Some(&uuid)),
            Kind::SaltJob => {
                let spec = merged(&live, request.spec);
                let tgt_uuid = match str_field(&spec, "target") {
                    Some(target) => Some(refs.uuid(self, Kind::SaltTarget, target).await?),
                    None => None,
                };
                job_call(name, &spec, &uuid, tgt_uuid)
            }
            Kind::SaltSchedule => {
                let (job_uuid, tgt_uuid) = self.schedule_refs(request.spec, &mut refs).await?;
                schedule_update_call(name, request.spec, &live, &uuid, job_uuid, tgt_uuid)
            }
            other => return Err(unsupported(other)),
        };
        self.call_idempotent(&call)
            .await?
            .map_err(|err| rpc_failure(&call, &err))?;
        if access_changed
            && kind != Kind::SaltSchedule
            && let Some(payload) = access_payload(kind, live.get("access"), request.spec)
        {
            let call = access_call(kind, &uuid, payload);
            self.call_idempotent(&call)
                .await?
                .map_err(|err| rpc_failure(&call, &err))?;
        }
        Ok(uuid_outcome(uuid))
    }

    async fn delete(&self, request: &DeleteRequest<'_>) -> ProviderResult<Outcome> {
        let kind = request.address.kind;
        let uuid = request.live.id.clone();
        // Never `force`: dependants are deleted by the plan, in reverse order.
        let call = match kind {
            Kind::SaltTarget => RpcCall::new(
                "tgt",
                "delete_target_group",
                json!({"tgt_uuid": uuid, "force": false}),
            ),
            Kind::SaltJob => RpcCall::new(
                "job",
                "delete_job",
                json!({"job_uuid": uuid, "force": false}),
            ),
            Kind::SaltSchedule => RpcCall::new("schedule", "remove", json!({"uuid": uuid})),
            other => return Err(unsupported(other)),
        };
        self.delete_call(kind, request.live, call).await
    }

    async fn poll(&self, task: &TaskHandle) -> ProviderResult<TaskStatus> {
        Err(ProviderError::Invalid(format!(
            "raas saves finish synchronously; there is no task `{}` to poll",
            task.id
        )))
    }
}

/// Reads one page of a list call's `ret` into the live objects of `kind` it holds, with the
/// server's `count`. Job and schedule references stay uuids here: names come from other
/// listings.
pub fn parse_list_page(
    kind: Kind,
    call: &RpcCall,
    ret: &Value,
) -> ProviderResult<(u64, Vec<LiveObject>)> {
    let page = Page::parse(call, ret.clone())?;
    let none = HashMap::new();
    let objects = page
        .results
        .iter()
        .filter_map(|item| match kind {
            Kind::SaltTarget => target_object(item),
            Kind::SaltJob => job_object(item),
            Kind::SaltSchedule => schedule_object(item, &none, &none),
            _ => None,
        })
        .collect();
    Ok((page.count, objects))
}

/// Pages of one listing requested at the same time.
const LIST_CONCURRENCY: usize = 10;

/// Most pages one listing reads: a server claiming a larger `count` is answered with an error,
/// not millions of requests.
const MAX_LIST_PAGES: u64 = 10_000;

/// One page of a list reply `{count, limit, results}` (a bare list is one complete page).
struct Page {
    count: u64,
    limit: Option<u64>,
    results: Vec<Value>,
}

impl Page {
    /// Takes the reply apart without copying its items; of the per-item `metadata` only the
    /// per-role access (`metadata.auth.access`) is kept: the owner and the rest would
    /// dominate a large listing.
    fn parse(call: &RpcCall, ret: Value) -> ProviderResult<Page> {
        let mut page = Self::parse_whole(call, ret)?;
        for item in &mut page.results {
            if let Value::Object(map) = item
                && let Some(mut metadata) = map.remove("metadata")
                && let Some(access) = metadata
                    .get_mut("auth")
                    .and_then(|auth| auth.get_mut("access"))
                    .map(Value::take)
                    .filter(Value::is_object)
            {
                map.insert(ACCESS_KEY.to_string(), access);
            }
        }
        Ok(page)
    }

    fn parse_whole(call: &RpcCall, ret: Value) -> ProviderResult<Page> {
        match ret {
            Value::Array(items) => Ok(Page {
                count: items.len() as u64,
                limit: None,
                results: items,
            }),
            Value::Object(mut map) => {
                let results = match map.remove("results") {
                    Some(Value::Array(items)) => items,
                    Some(Value::Null) | None => Vec::new(),
                    Some(_) => return Err(protocol(call, "`results` is not a list")),
                };
                let count = match map.get("count") {
                    Some(value) => value
                        .as_u64()
                        .ok_or_else(|| protocol(call, "`count` is not a number"))?,
                    None => results.len() as u64,
                };
                Ok(Page {
                    count,
                    limit: map.get("limit").and_then(Value::as_u64),
                    results,
                })
            }
            _ => Err(protocol(
                call,
                "the reply is not a `{count, limit, results}` page",
            )),
        }
    }
}

fn protocol(call: &RpcCall, message: &str) -> ProviderError {
    ProviderError::Protocol {
        method: "POST".to_string(),
        path: RPC_PATH_FOR_ERRORS.to_string(),
        message: format!("`{}`: {message}", call.name()),
    }
}

fn rpc_failure(call: &RpcCall, err: &RpcError) -> ProviderError {
    ProviderError::Api {
        method: "POST".to_string(),
        path: RPC_PATH_FOR_ERRORS.to_string(),
        status: 200,
        message: format!("`{}`: {}", call.name(), err.describe()),
        request_id: None,
    }
}

fn access_not_saved(kind: Kind, name: &str, err: &ProviderError) -> ProviderError {
    ProviderError::Invalid(format!(
        "{kind} `{name}` was created but its `access` was not saved: {err}; the next apply saves it"
    ))
}

fn unsupported(kind: Kind) -> ProviderError {
    ProviderError::Invalid(format!("the raas provider does not manage {kind} objects"))
}

/// Whether a failed request may still have been carried out by the server.
fn may_have_committed(err: &ProviderError) -> bool {
    match err {
        ProviderError::Transport { .. } => true,
        ProviderError::Api { status, .. } => matches!(status, 500 | 502 | 503 | 504),
        _ => false,
    }
}

/// The uuid a save returned (a string, or an object holding `uuid`).
fn saved_uuid(call: &RpcCall, ret: &Value) -> ProviderResult<String> {
    match ret {
        Value::String(uuid) if !uuid.is_empty() => Ok(uuid.clone()),
        Value::Object(map) => map
            .get("uuid")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| protocol(call, "the save returned no uuid")),
        _ => Err(protocol(call, "the save returned no uuid")),
    }
}

fn uuid_outcome(uuid: String) -> Outcome {
    Outcome::Done {
        attributes: Attributes::from([("uuid".to_string(), uuid)]),
        secret: None,
    }
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn uuid_names(items: &[Value]) -> HashMap<String, String> {
    items
        .iter()
        .filter_map(|item| {
            Some((
                str_field(item, "uuid")?.to_string(),
                str_field(item, "name")?.to_string(),
            ))
        })
        .collect()
}

/// `live` with every top-level field of `desired` put over it.
fn merged(live: &Value, desired: &Value) -> Value {
    let mut out = live.as_object().cloned().unwrap_or_default();
    if let Some(desired) = desired.as_object() {
        for (key, value) in desired {
            out.insert(key.clone(), value.clone());
        }
    }
    Value::Object(out)
}

/// SHA-256 of `{"name": …, "uuid": …, "spec": …}` as compact JSON, hashed as it is written.
fn fingerprint(name: &str, uuid: &str, spec: &Value) -> String {
    #[derive(serde::Serialize)]
    struct Fingerprinted<'a> {
        name: &'a str,
        uuid: &'a str,
        spec: &'a Value,
    }
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(Sha256::new());
    // Writing JSON into a hasher cannot fail: the writer never errors and every key is a string.
    let _ = serde_json::to_writer(&mut hashing, &Fingerprinted { name, uuid, spec });
    hex::encode(hashing.0.finalize())
}

fn live_object(kind: Kind, name: &str, uuid: &str, spec: Value) -> LiveObject {
    LiveObject {
        kind,
        name: name.to_string(),
        id: uuid.to_string(),
        fingerprint: fingerprint(name, uuid, &spec),
        spec: spec.into(),
        attributes: Attributes::from([("uuid".to_string(), uuid.to_string())]),
        status: LiveStatus::Ready,
    }
}

/// `tgt` as the manifest writes it: `{master: {tgt_type, tgt}}`.
fn normalize_tgt(tgt: &Value) -> Value {
    let Some(map) = tgt.as_object() else {
        return json!({});
    };
    let entries = map
        .iter()
        .map(|(master, entry)| {
            let mut out = Map::new();
            for key in ["tgt_type", "tgt"] {
                if let Some(value) = entry.get(key).filter(|v| !v.is_null()) {
                    out.insert(key.to_string(), value.clone());
                }
            }
            (master.clone(), Value::Object(out))
        })
        .collect();
    Value::Object(entries)
}

/// Where [`Page::parse`] keeps an item's `metadata.auth.access`.
const ACCESS_KEY: &str = "__access";
/// Permissions of a target group's access (raas.md §6: `read`, `write`, `discover`,
/// `delete`), sorted as the manifest's canonical form sorts them.
const TARGET_PERMISSIONS: &[&str] = &["delete", "discover", "read", "write"];
/// Permissions of a job's access: those of a target group and `run` (the VMware Salt API
/// names the job permissions `job-delete`, `job-read`, `job-run`, `job-write`:
/// developer.broadcom.com/xapis/vmware-salt-raas/latest/permissions.html), sorted.
const JOB_PERMISSIONS: &[&str] = &["delete", "discover", "read", "run", "write"];

fn permissions_of(kind: Kind) -> &'static [&'static str] {
    if kind == Kind::SaltJob {
        JOB_PERMISSIONS
    } else {
        TARGET_PERMISSIONS
    }
}

/// `metadata.auth.access` (role → permission → granted, raas.md §6) as the manifest writes
/// it: role → the sorted permissions granted, roles with none left out.
fn normalize_access(kind: Kind, access: &Value) -> Option<Value> {
    let roles = access.as_object()?;
    let known = permissions_of(kind);
    let out: Map<String, Value> = roles
        .iter()
        .filter_map(|(role, perms)| {
            let granted: Vec<Value> = known
                .iter()
                .filter(|perm| perms.get(**perm).and_then(Value::as_bool) == Some(true))
                .map(|perm| json!(perm))
                .collect();
            (!granted.is_empty()).then(|| (role.clone(), Value::Array(granted)))
        })
        .collect();
    Some(Value::Object(out))
}

/// The `access_payload` of a save: every role of `live` (the normalized live access; roles
/// not named in `desired` keep theirs, or lose all with `access_exclusive: true`), with the
/// roles `desired` names put over it, each as `{permission: granted}` for every permission
/// of the kind (the shape listings show and a public sseapiclient script sends, raas.md §6).
/// `None` when the manifest has no `access`.
fn access_payload(kind: Kind, live: Option<&Value>, desired: &Value) -> Option<Value> {
    let wanted = desired.get("access")?.as_object()?;
    let exclusive = desired.get("access_exclusive").and_then(Value::as_bool) == Some(true);
    let known = permissions_of(kind);
    let as_flags = |granted: Option<&Value>| -> Value {
        let granted: Vec<&str> = granted
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        Value::Object(
            known
                .iter()
                .map(|perm| (perm.to_string(), json!(granted.contains(perm))))
                .collect(),
        )
    };
    let mut payload = Map::new();
    for (role, granted) in live.and_then(Value::as_object).into_iter().flatten() {
        let kept = if exclusive { None } else { Some(granted) };
        payload.insert(role.clone(), as_flags(kept));
    }
    for (role, granted) in wanted {
        payload.insert(role.clone(), as_flags(Some(granted)));
    }
    Some(Value::Object(payload))
}

/// `job.save_job_access` / `tgt.save_target_group_access` of object `uuid` (raas.md §5–§6).
fn access_call(kind: Kind, uuid: &str, payload: Value) -> RpcCall {
    if kind == Kind::SaltJob {
        RpcCall::new(
            "job",
            "save_job_access",
            json!({"job_uuid": uuid, "access_payload": payload}),
        )
    } else {
        RpcCall::new(
            "tgt",
            "save_target_group_access",
            json!({"tgt_uuid": uuid, "access_payload": payload}),
        )
    }
}

/// The listing call that reads one object back by uuid, with its access.
fn read_back_call(kind: Kind, uuid: &str) -> RpcCall {
    if kind == Kind::SaltJob {
        RpcCall::new("job", "get_jobs", json!({"job_uuid": uuid}))
    } else {
        RpcCall::new("tgt", "get_target_group", json!({"tgt_uuid": uuid}))
    }
}

fn target_object(item: &Value) -> Option<LiveObject> {
    let name = str_field(item, "name")?;
    let uuid = str_field(item, "uuid")?;
    let mut spec = json!({
        "desc": str_field(item, "desc").unwrap_or_default(),
        "tgt": normalize_tgt(item.get("tgt").unwrap_or(&Value::Null)),
    });
    if let Some(access) = item
        .get(ACCESS_KEY)
        .and_then(|a| normalize_access(Kind::SaltTarget, a))
    {
        spec["access"] = access;
    }
    Some(live_object(Kind::SaltTarget, name, uuid, spec))
}

/// A job as the manifest writes it. `target` is the group's name as the reply gives it
/// (`tgt_name`); a reply without the name leaves the group's uuid there, for
/// [`name_job_targets`] to replace, and a job pointing at a deleted group keeps the dangling
/// uuid, shown as drift.
fn job_object(item: &Value) -> Option<LiveObject> {
    let name = str_field(item, "name")?;
    let uuid = str_field(item, "uuid")?;
    let arg = item.get("arg").unwrap_or(&Value::Null);
    // Sized for the eight fields a job has: listings hold 100,000 of them.
    let mut spec = Map::with_capacity(8);
    spec.insert(
        "desc".into(),
        json!(str_field(item, "desc").unwrap_or_default()),
    );
    if let Some(cmd) = str_field(item, "cmd") {
        spec.insert("cmd".into(), json!(cmd));
    }
    if let Some(fun) = str_field(item, "fun") {
        spec.insert("fun".into(), json!(fun));
    }
    spec.insert(
        "arg".into(),
        Value::Object(Map::from_iter([
            (
                "arg".to_string(),
                arg.get("arg")
                    .filter(|v| v.is_array())
                    .cloned()
                    .unwrap_or(json!([])),
            ),
            (
                "kwarg".to_string(),
                arg.get("kwarg")
                    .filter(|v| v.is_object())
                    .cloned()
                    .unwrap_or(json!({})),
            ),
        ])),
    );
    spec.insert(
        "masters".into(),
        item.get("masters")
            .filter(|v| v.is_array())
            .cloned()
            .unwrap_or(json!([])),
    );
    if let Some(tgt_uuid) = str_field(item, "tgt_uuid").filter(|u| !u.is_empty()) {
        let target = str_field(item, "tgt_name")
            .filter(|n| !n.is_empty())
            .unwrap_or(tgt_uuid);
        spec.insert("target".into(), json!(target));
    }
    if let Some(access) = item
        .get(ACCESS_KEY)
        .and_then(|a| normalize_access(Kind::SaltJob, a))
    {
        spec.insert("access".into(), access);
    }
    Some(live_object(Kind::SaltJob, name, uuid, Value::Object(spec)))
}

/// Replaces a job `target` that is a group's uuid (`groups`: uuid → name) with the name.
fn name_job_targets(jobs: &mut [LiveObject], groups: &HashMap<String, String>) {
    for job in jobs {
        let mut spec = job.spec.value();
        let name = str_field(&spec, "target").and_then(|uuid| groups.get(uuid));
        if let Some(name) = name.cloned() {
            spec["target"] = json!(name);
            job.fingerprint = fingerprint(&job.name, &job.id, &spec);
            job.spec = spec.into();
        }
    }
}

/// A reference of a schedule item: `<key>_uuid` mapped through `names`, `<key>_name`, or
/// a nested `{uuid, name}` object under `object_key`.
fn schedule_reference(
    item: &Value,
    prefix: &str,
    object_key: &str,
    names: &HashMap<String, String>,
) -> Option<String> {
    if let Some(name) = str_field(item, &format!("{prefix}_name")).filter(|n| !n.is_empty()) {
        return Some(name.to_string());
    }
    if let Some(uuid) = str_field(item, &format!("{prefix}_uuid")).filter(|u| !u.is_empty()) {
        return Some(names.get(uuid).cloned().unwrap_or_else(|| uuid.to_string()));
    }
    let nested = item.get(object_key)?;
    str_field(nested, "name").map(str::to_string)
}

fn schedule_object(
    item: &Value,
    jobs: &HashMap<String, String>,
    groups: &HashMap<String, String>,
) -> Option<LiveObject> {
    let name = str_field(item, "name")?;
    let uuid = str_field(item, "uuid")?;
    let mut spec = Map::new();
    if let Some(job) = schedule_reference(item, "job", "job", jobs) {
        spec.insert("job".into(), json!(job));
    }
    if let Some(target) = schedule_reference(item, "tgt", "target", groups) {
        spec.insert("target".into(), json!(target));
    }
    let schedule: Map<String, Value> = item
        .get("schedule")
        .and_then(Value::as_object)
        .map(|s| {
            s.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    spec.insert("schedule".into(), Value::Object(schedule));
    spec.insert(
        "enabled".into(),
        json!(item.get("enabled").and_then(Value::as_bool).unwrap_or(true)),
    );
    Some(live_object(
        Kind::SaltSchedule,
        name,
        uuid,
        Value::Object(spec),
    ))
}

fn target_call(name: &str, spec: &Value, tgt_uuid: Option<&str>) -> RpcCall {
    let mut kwarg = Map::new();
    kwarg.insert("name".into(), json!(name));
    kwarg.insert("tgt".into(), spec.get("tgt").cloned().unwrap_or(json!({})));
    if let Some(desc) = spec.get("desc") {
        kwarg.insert("desc".into(), desc.clone());
    }
    if let Some(uuid) = tgt_uuid {
        kwarg.insert("tgt_uuid".into(), json!(uuid));
    }
    RpcCall::new("tgt", "save_target_group", Value::Object(kwarg))
}

fn job_call(name: &str, spec: &Value, job_uuid: &str, tgt_uuid: Option<String>) -> RpcCall {
    let mut kwarg = Map::new();
    kwarg.insert("job_uuid".into(), json!(job_uuid));
    kwarg.insert("name".into(), json!(name));
    for key in ["desc", "cmd", "fun", "masters"] {
        if let Some(value) = spec.get(key) {
            kwarg.insert(key.into(), value.clone());
        }
    }
    if let Some(arg) = spec.get("arg") {
        kwarg.insert(
            "arg".into(),
            json!({
                "arg": arg.get("arg").cloned().unwrap_or(json!([])),
                "kwarg": arg.get("kwarg").cloned().unwrap_or(json!({})),
            }),
        );
    }
    if let Some(tgt_uuid) = tgt_uuid {
        kwarg.insert("tgt_uuid".into(), json!(tgt_uuid));
    }
    RpcCall::new("job", "save_job", Value::Object(kwarg))
}

/// `schedule.save` of a new schedule.
fn schedule_save_call(
    name: &str,
    spec: &Value,
    job_uuid: Option<String>,
    tgt_uuid: Option<String>,
) -> RpcCall {
    let mut kwarg = Map::new();
    kwarg.insert("name".into(), json!(name));
    kwarg.insert(
        "schedule".into(),
        spec.get("schedule").cloned().unwrap_or(json!({})),
    );
    if let Some(job_uuid) = job_uuid {
        kwarg.insert("job_uuid".into(), json!(job_uuid));
    }
    if let Some(tgt_uuid) = tgt_uuid {
        kwarg.insert("tgt_uuid".into(), json!(tgt_uuid));
    }
    kwarg.insert(
        "enabled".into(),
        json!(spec.get("enabled").and_then(Value::as_bool).unwrap_or(true)),
    );
    RpcCall::new("schedule", "save", Value::Object(kwarg))
}

/// `schedule.update` of schedule `uuid` from `live` to `desired`. The update is partial
/// (D2, `schedule.update`, `UpdateSchedulerSchema`: no required field, `delete_fields` "List
/// of fields to remove from the schedule"; README.md "Corrections after the audit"): the
/// desired fields are sent, and every key the live schedule holds that the manifest dropped
/// is named in `delete_fields` — timing keys (`cron` after a switch to an interval, `until`)
/// and the target (`tgt_uuid`) — or its old value would stay live.
fn schedule_update_call(
    name: &str,
    desired: &Value,
    live: &Value,
    uuid: &str,
    job_uuid: Option<String>,
    tgt_uuid: Option<String>,
) -> RpcCall {
    let timing = desired.get("schedule").cloned().unwrap_or(json!({}));
    let mut kwarg = Map::new();
    kwarg.insert("uuid".into(), json!(uuid));
    kwarg.insert("name".into(), json!(name));
    let mut delete_fields: Vec<String> = live
        .get("schedule")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|live_timing| live_timing.keys())
        .filter(|key| timing.get(key.as_str()).is_none())
        .cloned()
        .collect();
    kwarg.insert("schedule".into(), timing);
    if let Some(job_uuid) = job_uuid {
        kwarg.insert("job_uuid".into(), json!(job_uuid));
    }
    match tgt_uuid {
        Some(tgt_uuid) => {
            kwarg.insert("tgt_uuid".into(), json!(tgt_uuid));
        }
        None if live.get("target").is_some() => delete_fields.push("tgt_uuid".to_string()),
        None => {}
    }
    if let Some(enabled) = desired.get("enabled").filter(|v| v.is_boolean()) {
        kwarg.insert("enabled".into(), enabled.clone());
    }
    if !delete_fields.is_empty() {
        kwarg.insert("delete_fields".into(), json!(delete_fields));
    }
    RpcCall::new("schedule", "update", Value::Object(kwarg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_normalize_into_the_manifest_shape() {
        let item = json!({
            "uuid": "u1", "name": "ping", "desc": "d", "cmd": "local", "fun": "test.ping",
            "tgt_uuid": "g1", "arg": {"arg": ["a"], "kwarg": null}, "masters": null,
            "metadata": {"auth": {}}
        });
        let groups = HashMap::from([("g1".to_string(), "web".to_string())]);
        let mut live = [job_object(&item).unwrap()];
        name_job_targets(&mut live, &groups);
        let [live] = live;
        assert_eq!(
            live.spec,
            json!({"desc": "d", "cmd": "local", "fun": "test.ping",
                   "arg": {"arg": ["a"], "kwarg": {}}, "masters": [], "target": "web"})
        );
        assert_eq!(live.attributes["uuid"], "u1");
        let moved = job_object(&json!({"uuid": "u1", "name": "ping", "desc": "other"})).unwrap();
        assert_ne!(live.fingerprint, moved.fingerprint);
    }

    #[test]
    fn targets_keep_only_tgt_type_and_tgt() {
        let item = json!({"uuid": ALL_MINIONS_UUID, "name": "All Minions", "desc": "",
            "tgt": {"*": {"tgt_type": "compound", "tgt": "*", "extra": 1}}, "pillars": []});
        let live = target_object(&item).unwrap();
        assert_eq!(
            live.spec,
            json!({"desc": "", "tgt": {"*": {"tgt_type": "compound", "tgt": "*"}}})
        );
    }

    #[test]
    fn schedules_map_uuids_to_names() {
        let item = json!({"uuid": "s1", "name": "nightly", "job_uuid": "j1", "tgt_uuid": "g1",
            "schedule": {"cron": "0 1 * * *", "splay": null}, "enabled": false, "next_fire_time": "x"});
        let jobs = HashMap::from([("j1".to_string(), "ping".to_string())]);
        let groups = HashMap::from([("g1".to_string(), "web".to_string())]);
        let live = schedule_object(&item, &jobs, &groups).unwrap();
        assert_eq!(
            live.spec,
            json!({"job": "ping", "target": "web", "schedule": {"cron": "0 1 * * *"}, "enabled": false})
        );
    }

    #[test]
    fn updates_send_the_whole_object() {
        let live = json!({"desc": "old", "tgt": {"*": {"tgt_type": "glob", "tgt": "a*"}}});
        let desired = json!({"desc": "new"});
        let call = target_call("web", &merged(&live, &desired), Some("g1"));
        assert_eq!(
            call.kwarg,
            json!({"name": "web", "tgt": {"*": {"tgt_type": "glob", "tgt": "a*"}}, "desc": "new", "tgt_uuid": "g1"})
        );
    }

    #[test]
    fn schedule_updates_name_every_dropped_key_in_delete_fields() {
        let live = json!({"job": "j", "target": "web", "enabled": false,
            "schedule": {"cron": "0 3 * * *", "until": "2099-01-01T00:00", "splay": {"end": 5}}});
        let desired = json!({"job": "j", "schedule": {"minutes": 30, "splay": {"end": 9}}});
        let call = schedule_update_call("s", &desired, &live, "s1", Some("j1".into()), None);
        assert_eq!(call.method, "update");
        assert_eq!(
            call.kwarg,
            json!({"uuid": "s1", "name": "s", "schedule": {"minutes": 30, "splay": {"end": 9}},
                   "job_uuid": "j1", "delete_fields": ["cron", "until", "tgt_uuid"]})
        );
        let kept = json!({"job": "j", "target": "web", "enabled": true, "schedule": {"cron": "0 3 * * *"}});
        let call = schedule_update_call("s", &kept, &live, "s1", None, Some("g1".into()));
        assert_eq!(
            call.kwarg,
            json!({"uuid": "s1", "name": "s", "schedule": {"cron": "0 3 * * *"},
                   "tgt_uuid": "g1", "enabled": true, "delete_fields": ["until", "splay"]})
        );
    }

    #[test]
    fn fingerprints_hash_the_compact_json_of_name_uuid_and_spec() {
        let spec = json!({"desc": "d", "tgt": {"*": {"tgt_type": "glob", "tgt": "w*"}}, "n": 1.5});
        let text = json!({"name": "web", "uuid": "u-1", "spec": spec}).to_string();
        assert_eq!(
            fingerprint("web", "u-1", &spec),
            hex::encode(Sha256::digest(text.as_bytes()))
        );
        assert_ne!(
            fingerprint("web", "u-2", &spec),
            fingerprint("web", "u-1", &spec)
        );
    }

    #[test]
    fn pages_parse_and_reject_garbage() {
        let call = RpcCall::new("job", "get_jobs", json!({}));
        let page = Page::parse(&call, json!({"count": 3, "limit": 2, "results": [1, 2]})).unwrap();
        assert_eq!(
            (page.count, page.limit, page.results.len()),
            (3, Some(2), 2)
        );
        assert!(Page::parse(&call, json!("nope")).is_err());
        assert!(Page::parse(&call, json!({"count": "x", "results": []})).is_err());
    }

    #[test]
    fn only_ambiguous_failures_count_as_maybe_committed() {
        let api = |status| ProviderError::Api {
            method: "POST".into(),
            path: "/rpc".into(),
            status,
            message: String::new(),
            request_id: None,
        };
        assert!(may_have_committed(&api(504)));
        assert!(may_have_committed(&api(502)));
        assert!(!may_have_committed(&api(400)));
        assert!(!may_have_committed(&ProviderError::Invalid(String::new())));
    }
}
