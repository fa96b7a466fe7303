//! Aria Automation Config / Salt (RaaS) target groups, saved jobs and schedules
//! (`raas.md` §4–§9) and the per-role access of jobs and target groups: bulk paged listing,
//! normalization into the manifest's spec shape, create / update / delete with the
//! documented dependency rules, batched saves, and creates that never duplicate. Login and
//! the RPC transport live in [`session`].
//!
//! Each kind is one [`RaasKind`] impl in its own module (`targets`, `jobs`, `schedules`): its
//! calls, its wire bodies built from its typed spec, and its listing normalized into the spec
//! shape. This module holds what every kind shares and picks the impl of a [`Kind`] in one
//! place, [`for_kind!`].

mod access;
mod jobs;
mod schedules;
pub mod session;
mod targets;

use std::collections::{BTreeSet, HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::model::kinds::ResourceKind;
use crate::model::{Connection, Kind};
use crate::providers::http::HttpClient;
use crate::providers::{
    Attributes, CreateRequest, DeleteRequest, LiveObject, LiveStatus, Outcome, Provider,
    ProviderError, ProviderResult, TaskHandle, TaskStatus, UpdateRequest,
};
use access::{AccessCalls, DesiredAccess, LiveAccess};

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

/// One kind this provider manages, implemented once per kind in its module: the calls it
/// is listed, saved and deleted with, the wire body of a save built from its typed spec, and
/// a listed item normalized into the spec shape.
#[async_trait::async_trait]
trait RaasKind: ResourceKind {
    const KIND: Kind;
    /// `(resource, method)` of the paged listing (raas.md §4).
    const LIST: (&'static str, &'static str);
    /// Whether a save names the new object's uuid (the request's idempotency key), so that
    /// resending it never duplicates. Objects of other kinds are looked up by name before a
    /// create and after a save whose reply was lost.
    const CLIENT_CHOSEN_ID: bool;
    /// The per-role access calls; `None` when the kind has no access of its own.
    const ACCESS: Option<&'static AccessCalls>;
    /// Keys of a save's body that hold a part of the spec under the same key, in the same
    /// shape (a schedule's `schedule`, a group's `tgt`): their maps are sent in the order the
    /// manifest wrote them ([`keep_written_order`]).
    const WRITTEN_ORDER: &'static [&'static str] = &[];

    /// Listing filters narrowed to `names` where the API narrows by name (it may return
    /// more; callers match names themselves).
    fn name_filters(names: &[&str]) -> Map<String, Value>;

    /// One item of a listing page (after [`Page::parse`]) as a live object; references to
    /// other objects stay uuids when the item does not name them.
    fn live_object(item: &Value) -> Option<LiveObject>;

    /// Every live object of the kind, references named.
    async fn list(provider: &RaasProvider) -> ProviderResult<Vec<LiveObject>>;

    /// The objects (kind, name) the save of `spec` refers to.
    fn references(spec: &Self::Spec) -> Vec<(Kind, &str)>;

    /// What an update reads of a live object: its spec, as this kind's listing writes it.
    type Live: serde::de::DeserializeOwned;

    /// The objects an update of `live` to `spec` refers to. Default: those of `spec`.
    fn update_references<'a>(spec: &'a Self::Spec, live: &'a Self::Live) -> Vec<(Kind, &'a str)> {
        let _ = live;
        Self::references(spec)
    }

    /// The `access` the manifest asks for; `None` without one.
    fn desired_access(spec: &Self::Spec) -> Option<DesiredAccess> {
        let _ = spec;
        None
    }

    /// The save that creates object `name`; `id` is the request's idempotency key, and
    /// `refs` holds the uuids of [`RaasKind::references`].
    fn create_call(
        name: &str,
        spec: &Self::Spec,
        id: &str,
        refs: &References,
    ) -> ProviderResult<RpcCall>;

    /// The call that updates live object `uuid` (`live`: what its spec holds) to `spec`;
    /// `refs` holds the uuids of [`RaasKind::update_references`].
    fn update_call(
        name: &str,
        spec: &Self::Spec,
        live: &Self::Live,
        uuid: &str,
        refs: &References,
    ) -> ProviderResult<RpcCall>;

    /// The call that deletes object `uuid`. Never `force`: dependants are deleted by the
    /// plan, in reverse order.
    fn delete_call(uuid: &str) -> RpcCall;
}

/// Runs `$body` with `$K` naming the [`RaasKind`] impl of `$kind`: the one place a kind picks
/// its impl. Other kinds give an "unsupported" error.
macro_rules! for_kind {
    ($kind:expr, $K:ident => $body:expr) => {
        match $kind {
            $crate::model::Kind::SaltTarget => {
                type $K = $crate::model::kinds::salt_target::SaltTarget;
                $body
            }
            $crate::model::Kind::SaltJob => {
                type $K = $crate::model::kinds::salt_job::SaltJob;
                $body
            }
            $crate::model::Kind::SaltSchedule => {
                type $K = $crate::model::kinds::salt_schedule::SaltSchedule;
                $body
            }
            other => Err(unsupported(other)),
        }
    };
}

/// An object just created whose manifest sets `access`.
struct NewAccess {
    calls: &'static AccessCalls,
    uuid: String,
    desired: DesiredAccess,
}

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
            let call = for_kind!(request.address.kind, K => {
                self.create_call::<K>(request, &mut refs).await
            });
            match call {
                Ok(call) => pending.push((index, call)),
                Err(err) => results[index] = Some(Err(err)),
            }
        }
        for chunk in pending.chunks(BATCH_SIZE) {
            let calls: Vec<RpcCall> = chunk.iter().map(|(_, call)| call.clone()).collect();
            // Resending is safe only when every save carries its own id (jobs).
            let idempotent = chunk
                .iter()
                .all(|(i, _)| client_chosen_id(requests[*i].address.kind));
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
                        // A job names its own uuid and is simply saved again; others are
                        // looked up by name first.
                        let found = for_kind!(request.address.kind, K => match K::CLIENT_CHOSEN_ID {
                            true => Ok(None),
                            false => self.find_uuid::<K>(&request.address.name).await,
                        });
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
        let created: Vec<(usize, NewAccess)> = results
            .iter()
            .enumerate()
            .filter_map(|(index, result)| match result {
                Some(Ok(Outcome::Done { attributes, .. })) => {
                    let (calls, desired) = desired_access(&requests[index])?;
                    Some((
                        index,
                        NewAccess {
                            calls,
                            uuid: attributes.get("uuid")?.clone(),
                            desired,
                        },
                    ))
                }
                _ => None,
            })
            .collect();
        let (indices, items): (Vec<usize>, Vec<NewAccess>) = created.into_iter().unzip();
        let saved = self.save_new_access(&items).await;
        for (index, result) in indices.into_iter().zip(saved) {
            if let Err(err) = result {
                let address = requests[index].address;
                results[index] = Some(Err(access_not_saved(address.kind, &address.name, &err)));
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

    /// Sets the access of objects just created whose manifest has `access`: reads each
    /// back for the access it got by default, puts the roles the manifest names over it
    /// ([`AccessCalls::payload`]) and saves it, in batches. One result per object, in order.
    async fn save_new_access(&self, created: &[NewAccess]) -> Vec<ProviderResult<()>> {
        let mut results: Vec<ProviderResult<()>> = created.iter().map(|_| Ok(())).collect();
        let wanted: Vec<usize> = (0..created.len()).collect();
        for chunk in wanted.chunks(BATCH_SIZE) {
            let reads: Vec<RpcCall> = chunk
                .iter()
                .map(|i| created[*i].calls.read_back_call(&created[*i].uuid))
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
                let NewAccess {
                    calls,
                    uuid,
                    desired,
                } = &created[*i];
                let page = reply
                    .map_err(|err| rpc_failure(read, &err))
                    .and_then(|ret| Page::parse(read, ret));
                let live = match page {
                    Ok(page) => page
                        .results
                        .iter()
                        .find(|item| str_field(item, "uuid") == Some(uuid.as_str()))
                        .and_then(|item| item.get(ACCESS_KEY))
                        .and_then(|access| calls.grants(access)),
                    Err(err) => {
                        results[*i] = Err(err);
                        continue;
                    }
                };
                let payload = calls.payload(live.as_ref(), desired);
                saves.push((*i, calls.save_call(uuid, payload)));
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

    /// Every object of kind `K` the listing narrowed to `names` returns (all of them when
    /// the API cannot narrow to those names).
    async fn list_named<K: RaasKind>(&self, names: &[&str]) -> ProviderResult<Vec<Value>> {
        self.list_all(K::LIST.0, K::LIST.1, K::name_filters(names))
            .await
    }

    /// `uuid → name` of every object of kind `K`.
    async fn uuid_names<K: RaasKind>(&self) -> ProviderResult<HashMap<String, String>> {
        let items = self.list_all(K::LIST.0, K::LIST.1, Map::new()).await?;
        Ok(uuid_names(&items))
    }

    /// The uuid of the one object of kind `K` named exactly `name`, if any.
    async fn find_uuid<K: RaasKind>(&self, name: &str) -> ProviderResult<Option<String>> {
        let items = self.list_named::<K>(&[name]).await?;
        let matches: Vec<&Value> = items
            .iter()
            .filter(|item| str_field(item, "name") == Some(name))
            .collect();
        match matches.as_slice() {
            [] => Ok(None),
            [one] => Ok(str_field(one, "uuid").map(str::to_string)),
            many => Err(ProviderError::Invalid(format!(
                "{} live {} objects are named `{name}` on connection `{}`; rename or delete all but one",
                many.len(),
                K::KIND,
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
        let kinds: BTreeSet<Kind> = requests.iter().map(|r| r.address.kind).collect();
        for kind in kinds {
            for_kind!(kind, K => self.find_twins_of::<K>(requests, &mut found).await)?;
        }
        Ok(found)
    }

    /// [`Self::find_twins`] of the requests of kind `K`.
    async fn find_twins_of<K: RaasKind>(
        &self,
        requests: &[CreateRequest<'_>],
        found: &mut HashMap<usize, ProviderResult<String>>,
    ) -> ProviderResult<()> {
        if K::CLIENT_CHOSEN_ID {
            return Ok(());
        }
        let kind = K::KIND;
        let indices: Vec<usize> = (0..requests.len())
            .filter(|i| requests[*i].address.kind == kind)
            .collect();
        let names: BTreeSet<&str> = indices
            .iter()
            .map(|i| requests[*i].address.name.as_str())
            .collect();
        let uuids: HashMap<&str, Vec<String>> = match names.len() {
            0 => return Ok(()),
            1 => {
                let name = names.iter().next().copied().unwrap_or_default();
                match self.find_uuid::<K>(name).await {
                    Ok(uuid) => HashMap::from([(name, uuid.into_iter().collect())]),
                    Err(err) => {
                        let message = err.to_string();
                        for index in indices {
                            found.insert(index, Err(ProviderError::Invalid(message.clone())));
                        }
                        return Ok(());
                    }
                }
            }
            _ => {
                let names_list: Vec<&str> = names.iter().copied().collect();
                let items = self.list_named::<K>(&names_list).await?;
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
        Ok(())
    }

    /// The uuid behind a referenced name, or an error saying it does not exist.
    async fn require_uuid(&self, kind: Kind, name: &str) -> ProviderResult<String> {
        let found = for_kind!(kind, K => self.find_uuid::<K>(name).await)?;
        found.ok_or_else(|| {
            ProviderError::Invalid(format!(
                "{kind} `{name}` does not exist on connection `{}`",
                self.connection
            ))
        })
    }

    /// The save call that creates `request`'s object of kind `K` (references resolved to
    /// uuids).
    async fn create_call<K: RaasKind>(
        &self,
        request: &CreateRequest<'_>,
        refs: &mut References,
    ) -> ProviderResult<RpcCall> {
        let spec = request.typed::<K>()?;
        refs.resolve(self, &K::references(&spec)).await?;
        let mut call = K::create_call(
            &request.address.name,
            &spec,
            &request.idempotency_key.to_string(),
            refs,
        )?;
        keep_written_order(&mut call.kwarg, request.spec, K::WRITTEN_ORDER);
        Ok(call)
    }

    /// Saves an object that has no client-chosen id. A save that may have reached the
    /// server is never resent blindly: the name is looked up first and a match adopted.
    async fn save_without_id<K: RaasKind>(
        &self,
        name: &str,
        call: &RpcCall,
    ) -> ProviderResult<String> {
        let kind = K::KIND;
        let mut attempt = 1;
        loop {
            match self.session.call(call, false).await {
                Ok(Ok(ret)) => return saved_uuid(call, &ret),
                Ok(Err(err)) => return Err(rpc_failure(call, &err)),
                Err(err) if may_have_committed(&err) => {
                    tracing::debug!(connection = %self.connection, %kind, name, attempt, "the save may have reached the server; looking it up by name");
                    if let Some(uuid) = self.find_uuid::<K>(name).await? {
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

    async fn create_one<K: RaasKind>(
        &self,
        request: &CreateRequest<'_>,
    ) -> ProviderResult<Outcome> {
        let name = &request.address.name;
        if !K::CLIENT_CHOSEN_ID
            && let Some(found) = self
                .find_twins(std::slice::from_ref(request))
                .await?
                .remove(&0)
        {
            return found.map(uuid_outcome);
        }
        let call = self
            .create_call::<K>(request, &mut References::default())
            .await?;
        let uuid = if K::CLIENT_CHOSEN_ID {
            // The uuid is ours (`save_job` creates with a given uuid): resending is safe.
            let ret = self
                .call_idempotent(&call)
                .await?
                .map_err(|err| rpc_failure(&call, &err))?;
            saved_uuid(&call, &ret)?
        } else {
            self.save_without_id::<K>(name, &call).await?
        };
        if let (Some(calls), Some(desired)) = (K::ACCESS, K::desired_access(&request.typed::<K>()?))
            && let Some(Err(err)) = self
                .save_new_access(&[NewAccess {
                    calls,
                    uuid: uuid.clone(),
                    desired,
                }])
                .await
                .pop()
        {
            return Err(access_not_saved(K::KIND, name, &err));
        }
        Ok(uuid_outcome(uuid))
    }

    async fn update_one<K: RaasKind>(
        &self,
        request: &UpdateRequest<'_>,
    ) -> ProviderResult<Outcome> {
        let name = &request.address.name;
        let spec = request.typed::<K>()?;
        let live_spec = request.live.spec.value();
        let live: K::Live = live_view(request.live, &live_spec)?;
        let uuid = request.live.id.clone();
        let desired_access = K::ACCESS.zip(K::desired_access(&spec));
        // Access is saved by its own call; the object itself only when more changed.
        let is_access = |field: &String| field == "access" || field.starts_with("access.");
        let access_changed = request.changed.iter().any(is_access)
            || (request.changed.is_empty() && desired_access.is_some());
        let object_changed =
            request.changed.is_empty() || request.changed.iter().any(|f| !is_access(f));
        let access_call = match desired_access {
            Some((calls, desired)) => {
                let live: LiveAccess = live_view(request.live, &live_spec)?;
                Some(calls.save_call(&uuid, calls.payload(live.access.as_ref(), &desired)))
            }
            None => None,
        };
        if access_changed
            && let Some(call) = &access_call
            && !object_changed
        {
            self.call_idempotent(call)
                .await?
                .map_err(|err| rpc_failure(call, &err))?;
            return Ok(uuid_outcome(uuid));
        }
        let mut refs = References::default();
        refs.resolve(self, &K::update_references(&spec, &live))
            .await?;
        let mut call = K::update_call(name, &spec, &live, &uuid, &refs)?;
        keep_written_order(&mut call.kwarg, request.spec, K::WRITTEN_ORDER);
        self.call_idempotent(&call)
            .await?
            .map_err(|err| rpc_failure(&call, &err))?;
        if access_changed && let Some(call) = &access_call {
            self.call_idempotent(call)
                .await?
                .map_err(|err| rpc_failure(call, &err))?;
        }
        Ok(uuid_outcome(uuid))
    }

    /// Runs the delete call of `live`; an object already gone counts as deleted.
    async fn delete_one<K: RaasKind>(&self, live: &LiveObject) -> ProviderResult<Outcome> {
        let kind = K::KIND;
        let call = K::delete_call(&live.id);
        match self.call_idempotent(&call).await? {
            Ok(_) => Ok(Outcome::done()),
            Err(err) if err.is_dependency_failure() => Err(ProviderError::Invalid(format!(
                "cannot delete {kind} `{}`: other objects depend on it ({}); delete them first",
                live.name,
                err.describe()
            ))),
            Err(err) => {
                if self.find_uuid::<K>(&live.name).await?.as_deref() != Some(live.id.as_str()) {
                    return Ok(Outcome::done());
                }
                Err(rpc_failure(&call, &err))
            }
        }
    }
}

/// Whether saves of `kind` name their own uuid ([`RaasKind::CLIENT_CHOSEN_ID`]).
fn client_chosen_id(kind: Kind) -> bool {
    for_kind!(kind, K => Ok(K::CLIENT_CHOSEN_ID)).unwrap_or(false)
}

/// The access calls of `request`'s kind and the access its manifest asks for, if both.
fn desired_access(request: &CreateRequest<'_>) -> Option<(&'static AccessCalls, DesiredAccess)> {
    for_kind!(request.address.kind, K => request
        .typed::<K>()
        .map(|spec| K::ACCESS.zip(K::desired_access(&spec))))
    .ok()
    .flatten()
}

/// Puts the maps under `keys` of a save's `body` in the order `written` (the desired spec as
/// the manifest wrote it) holds them, at every depth. The typed spec keeps no order, but the
/// server keeps the order a save sends and lists it back so (the simulator does, as a server
/// storing the JSON it is sent would), and plans show a live map in that order: sending the
/// manifest's order keeps what a plan shows after an apply as it always was.
fn keep_written_order(body: &mut Value, written: &Value, keys: &[&str]) {
    for key in keys {
        if let (Some(sent), Some(written)) = (body.get_mut(*key), written.get(*key)) {
            follow_order(sent, written);
        }
    }
}

/// [`keep_written_order`] of one value: the keys of `written` first, in its order, then any
/// others in their own.
fn follow_order(value: &mut Value, written: &Value) {
    let (Value::Object(map), Value::Object(order)) = (value, written) else {
        return;
    };
    let mut rest = std::mem::take(map);
    for (key, written) in order {
        if let Some((key, mut sent)) = rest.shift_remove_entry(key) {
            follow_order(&mut sent, written);
            map.insert(key, sent);
        }
    }
    map.extend(rest);
}

/// What a [`RaasKind::update_call`] reads of live object `live` (its spec `spec`). The
/// listing wrote that spec, so a spec that does not read is a defect, reported as an invalid
/// request rather than a panic.
fn live_view<T: serde::de::DeserializeOwned>(live: &LiveObject, spec: &Value) -> ProviderResult<T> {
    T::deserialize(spec).map_err(|err| {
        ProviderError::Invalid(format!(
            "{} `{}`: the live spec is not as the listing writes it: {err}",
            live.kind, live.name
        ))
    })
}

/// Memoized name → uuid lookups for one operation.
#[derive(Default)]
struct References {
    known: HashMap<(Kind, String), String>,
}

impl References {
    /// References already resolved: `(kind, name, uuid)`.
    #[cfg(test)]
    fn known(known: &[(Kind, &str, &str)]) -> Self {
        Self {
            known: known
                .iter()
                .map(|(kind, name, uuid)| ((*kind, name.to_string()), uuid.to_string()))
                .collect(),
        }
    }

    /// Resolves the names `requests` refer to with one listing per kind instead of one
    /// lookup per name, when more than one name of a kind is needed. Names that match
    /// several objects are left to [`References::resolve`], which reports them.
    async fn prefetch(
        &mut self,
        provider: &RaasProvider,
        requests: &[CreateRequest<'_>],
    ) -> ProviderResult<()> {
        let mut wanted: HashMap<Kind, HashSet<String>> = HashMap::new();
        for request in requests {
            // A spec that is not its kind's fails in `create_call`, which reports it.
            let names = for_kind!(request.address.kind, K => {
                let spec = request.typed::<K>()?;
                Ok(K::references(&spec)
                    .into_iter()
                    .map(|(kind, name)| (kind, name.to_string()))
                    .collect::<Vec<_>>())
            });
            for (kind, name) in names.unwrap_or_default() {
                wanted.entry(kind).or_default().insert(name);
            }
        }
        for (kind, names) in wanted {
            if names.len() < 2 {
                continue;
            }
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let items = for_kind!(kind, K => provider.list_named::<K>(&names).await)?;
            let mut found: HashMap<&str, Option<&str>> = HashMap::new();
            for item in &items {
                if let (Some(name), Some(uuid)) = (str_field(item, "name"), str_field(item, "uuid"))
                    && names.contains(&name)
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

    /// Looks up the uuid of every (kind, name) not known yet; fails on the first that does
    /// not exist or is ambiguous.
    async fn resolve(
        &mut self,
        provider: &RaasProvider,
        wanted: &[(Kind, &str)],
    ) -> ProviderResult<()> {
        for (kind, name) in wanted {
            if let std::collections::hash_map::Entry::Vacant(entry) =
                self.known.entry((*kind, name.to_string()))
            {
                entry.insert(provider.require_uuid(*kind, name).await?);
            }
        }
        Ok(())
    }

    /// The uuid of a name [`References::resolve`] resolved.
    fn uuid(&self, kind: Kind, name: &str) -> ProviderResult<String> {
        self.known
            .get(&(kind, name.to_string()))
            .cloned()
            .ok_or_else(|| {
                ProviderError::Invalid(format!("{kind} `{name}` was not looked up before the save"))
            })
    }
}

#[async_trait::async_trait]
impl Provider for RaasProvider {
    async fn credential_expiry(&self) -> ProviderResult<Option<chrono::DateTime<chrono::Utc>>> {
        self.session.api_token_expiry().await
    }

    async fn list(&self, kind: Kind, _names: &[String]) -> ProviderResult<Vec<LiveObject>> {
        for_kind!(kind, K => K::list(self).await)
    }

    async fn create(&self, request: &CreateRequest<'_>) -> ProviderResult<Outcome> {
        for_kind!(request.address.kind, K => self.create_one::<K>(request).await)
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
        for_kind!(request.address.kind, K => self.update_one::<K>(request).await)
    }

    async fn delete(&self, request: &DeleteRequest<'_>) -> ProviderResult<Outcome> {
        for_kind!(request.address.kind, K => self.delete_one::<K>(request.live).await)
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
    type Convert = fn(&Value) -> Option<LiveObject>;
    let convert: Convert = for_kind!(kind, K => Ok(K::live_object as Convert)).unwrap_or(|_| None);
    let objects = page.results.iter().filter_map(convert).collect();
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

/// A wire body as the `kwarg` of a call.
fn kwarg(body: &impl serde::Serialize) -> ProviderResult<Value> {
    serde_json::to_value(body)
        .map_err(|err| ProviderError::Invalid(format!("cannot encode a raas call: {err}")))
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

/// Where [`Page::parse`] keeps an item's `metadata.auth.access`.
const ACCESS_KEY: &str = "__access";

#[cfg(test)]
mod tests {
    use super::*;

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
    fn saves_keep_the_order_the_manifest_wrote() {
        let written = json!({"schedule": {"timezone": "UTC", "splay": {"end": 5, "start": 1},
            "when": {"weekly": {"tue": ["04:00"], "mon": ["03:00"]}}}, "job": "j"});
        let mut body = json!({"name": "s", "schedule": {"when": {"weekly": {"mon": ["03:00"],
            "tue": ["04:00"]}}, "timezone": "UTC", "splay": {"start": 1, "end": 5}}, "job_uuid": "j1"});
        keep_written_order(&mut body, &written, &["schedule", "tgt"]);
        assert_eq!(
            body.to_string(),
            r#"{"name":"s","schedule":{"timezone":"UTC","splay":{"end":5,"start":1},"when":{"weekly":{"tue":["04:00"],"mon":["03:00"]}}},"job_uuid":"j1"}"#
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
