//! `cloudapi/1.0.0/tokens`: the paged token list with FIQL filters (`==`, `!=`, `;` AND,
//! `,` OR, parentheses, `*` wildcards), get by URN (403 when missing or not visible, as the
//! real server answers) and revoke (DELETE), after which grants with the token fail.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{
    AccessKind, ApiToken, Caller, MIN_TOKEN_API_VERSION, SYSTEM_ORG, TOKEN_TYPE_REFRESH, VcdError,
    VcdState, forbidden, org_id, refusal, status, versioned_caller,
};
use crate::sim::SimRef;

/// Query of the list endpoint.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ListQuery {
    filter: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
}

/// A parsed FIQL filter.
#[derive(Debug, PartialEq)]
enum Filter {
    Compare {
        field: String,
        value: String,
        equal: bool,
    },
    All(Vec<Filter>),
    Any(Vec<Filter>),
}

/// Fields of a token the filter may name.
const FILTER_FIELDS: &[&str] = &[
    "id",
    "name",
    "type",
    "owner.id",
    "owner.name",
    "org.id",
    "org.name",
];

#[derive(Debug, thiserror::Error, PartialEq)]
enum FilterError {
    #[error("unexpected end of filter")]
    End,
    #[error("unexpected `{0}` in filter")]
    Unexpected(char),
    #[error("unknown filter field `{0}`")]
    Field(String),
    #[error("filter term `{0}` needs `==` or `!=`")]
    Operator(String),
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    /// Terms joined by `,` (OR), which binds looser than `;`.
    fn any(&mut self) -> Result<Filter, FilterError> {
        self.joined(b',', Self::all, Filter::Any)
    }

    /// Terms joined by `;` (AND).
    fn all(&mut self) -> Result<Filter, FilterError> {
        self.joined(b';', Self::term, Filter::All)
    }

    /// One or more `operand`s separated by `separator`; a lone operand stands for itself,
    /// several are put together with `combine`.
    fn joined(
        &mut self,
        separator: u8,
        operand: fn(&mut Self) -> Result<Filter, FilterError>,
        combine: fn(Vec<Filter>) -> Filter,
    ) -> Result<Filter, FilterError> {
        let mut items = vec![operand(self)?];
        while self.peek() == Some(separator) {
            self.at += 1;
            items.push(operand(self)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            combine(items)
        })
    }

    fn term(&mut self) -> Result<Filter, FilterError> {
        match self.peek() {
            None => Err(FilterError::End),
            Some(b'(') => {
                self.at += 1;
                let inner = self.any()?;
                match self.peek() {
                    Some(b')') => {
                        self.at += 1;
                        Ok(inner)
                    }
                    Some(other) => Err(FilterError::Unexpected(char::from(other))),
                    None => Err(FilterError::End),
                }
            }
            Some(_) => {
                let start = self.at;
                while let Some(c) = self.peek() {
                    if matches!(c, b';' | b',' | b')' | b'(') {
                        break;
                    }
                    self.at += 1;
                }
                let raw = String::from_utf8_lossy(&self.text[start..self.at]).into_owned();
                let (field, value, equal) = if let Some((f, v)) = raw.split_once("==") {
                    (f, v, true)
                } else if let Some((f, v)) = raw.split_once("!=") {
                    (f, v, false)
                } else {
                    return Err(FilterError::Operator(raw));
                };
                let field = field.trim();
                if !FILTER_FIELDS.contains(&field) {
                    return Err(FilterError::Field(field.to_owned()));
                }
                Ok(Filter::Compare {
                    field: field.to_owned(),
                    value: value.to_owned(),
                    equal,
                })
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }
}

fn parse_filter(text: &str) -> Result<Filter, FilterError> {
    let mut parser = Parser {
        text: text.as_bytes(),
        at: 0,
    };
    let filter = parser.any()?;
    match parser.peek() {
        None => Ok(filter),
        Some(c) => Err(FilterError::Unexpected(char::from(c))),
    }
}

/// `value` against a pattern where `*` matches any run of characters.
fn wildcard_match(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let mut rest = value;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

impl Filter {
    fn matches(&self, token: &Value) -> bool {
        match self {
            Filter::All(items) => items.iter().all(|f| f.matches(token)),
            Filter::Any(items) => items.iter().any(|f| f.matches(token)),
            Filter::Compare {
                field,
                value,
                equal,
            } => {
                let actual = field
                    .split('.')
                    .try_fold(token, |v, key| v.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                wildcard_match(value, actual) == *equal
            }
        }
    }
}

fn token_json(state: &VcdState, token: &ApiToken) -> Value {
    let owner = state.users.get(&token.owner_id);
    json!({
        "id": token.id,
        "name": token.name,
        "token": null,
        "expirationTimeUtc": null,
        "owner": {"name": owner.map(|u| u.name.clone()), "id": token.owner_id},
        "org": {"name": token.org, "id": org_id(state, &token.org)},
        "type": TOKEN_TYPE_REFRESH,
    })
}

/// Whether `caller` may see `token`. A session opened from an API token sees that token's
/// own entry and nothing else: it may not view other tokens (seed `004`; `vcd.md` §7;
/// `../shared/api/README.md`, "Corrections"). Password sessions see their own tokens, all
/// of them in the System org, those of their org in a tenant.
fn visible(caller: &Caller, token: &ApiToken) -> bool {
    match caller.kind {
        AccessKind::ApiToken => caller.api_token.as_deref() == Some(token.id.as_str()),
        AccessKind::Password => {
            token.owner_id == caller.user.id
                || caller.user.org.eq_ignore_ascii_case(SYSTEM_ORG)
                || caller.user.org.eq_ignore_ascii_case(&token.org)
        }
    }
}

fn bad_request(message: &str) -> VcdError {
    refusal(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

fn parse_positive(value: Option<&str>, name: &str, default: u64) -> Result<u64, VcdError> {
    match value {
        None => Ok(default),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(bad_request(&format!(
                "{name} must be a positive integer, not {text}"
            ))),
        },
    }
}

/// `GET /cloudapi/1.0.0/tokens?filter=…&page=N&pageSize=M`.
pub(super) async fn list(
    State(sim): State<SimRef>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let now = sim.clock.now();
    let guard = sim.state.lock().await;
    let state = &guard.vcd;
    let caller = match versioned_caller(&headers, state, now, MIN_TOKEN_API_VERSION) {
        Ok(c) => c,
        Err(refusal) => return refusal.into_response(),
    };
    let filter = match query.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        Some(text) => match parse_filter(text) {
            Ok(f) => Some(f),
            Err(problem) => {
                return bad_request(&format!("Invalid filter: {problem}")).into_response();
            }
        },
        None => None,
    };
    let page = match parse_positive(query.page.as_deref(), "page", 1) {
        Ok(p) => p,
        Err(refusal) => return refusal.into_response(),
    };
    let page_size = match parse_positive(
        query.page_size.as_deref(),
        "pageSize",
        super::DEFAULT_PAGE_SIZE,
    ) {
        Ok(p) => p.min(state.options.max_page_size.max(1)),
        Err(refusal) => return refusal.into_response(),
    };
    let mut values: Vec<Value> = state
        .tokens
        .values()
        .filter(|t| visible(&caller, t))
        .map(|t| token_json(state, t))
        .filter(|t| filter.as_ref().is_none_or(|f| f.matches(t)))
        .collect();
    values.sort_by_key(|t| (t["name"].to_string(), t["id"].to_string()));
    let total = values.len();
    let size = usize::try_from(page_size).unwrap_or(usize::MAX);
    let skip = usize::try_from(page - 1)
        .unwrap_or(usize::MAX)
        .saturating_mul(size);
    let page_values: Vec<Value> = values.into_iter().skip(skip).take(size).collect();
    let body = json!({
        "resultTotal": total,
        "pageCount": total.div_ceil(size),
        "page": page,
        "pageSize": page_size,
        "associations": null,
        "values": page_values,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn not_visible(id: &str) -> Response {
    forbidden(
        403,
        &format!(
            "[ {} ] Either you need some or all of the following rights [Token: View] to perform operations [TOKEN_VIEW] for {id} or the target entity is invalid.",
            uuid::Uuid::new_v4()
        ),
    )
}

/// `GET /cloudapi/1.0.0/tokens/{id}`: 403 (not 404) for a missing or invisible token.
pub(super) async fn get_one(
    State(sim): State<SimRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let now = sim.clock.now();
    let guard = sim.state.lock().await;
    let state = &guard.vcd;
    let caller = match versioned_caller(&headers, state, now, MIN_TOKEN_API_VERSION) {
        Ok(c) => c,
        Err(refusal) => return refusal.into_response(),
    };
    match state.tokens.get(&id).filter(|t| visible(&caller, t)) {
        Some(token) => (StatusCode::OK, axum::Json(token_json(state, token))).into_response(),
        None => not_visible(&id),
    }
}

/// `DELETE /cloudapi/1.0.0/tokens/{id}`: revokes the token (204 by default, or 202 with a
/// `Location` task); grants with its secret fail from now on.
pub(super) async fn revoke(
    State(sim): State<SimRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    while sim.admin.faults().hold_token_revokes {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    let state = &mut guard.vcd;
    let caller = match versioned_caller(&headers, state, now, MIN_TOKEN_API_VERSION) {
        Ok(c) => c,
        Err(refusal) => return refusal.into_response(),
    };
    if caller.kind == AccessKind::ApiToken {
        return forbidden(
            state.options.api_token_session_forbidden_status,
            "A session opened with an API token cannot revoke API tokens",
        );
    }
    let Some(token) = state
        .tokens
        .get(&id)
        .filter(|t| visible(&caller, t))
        .cloned()
    else {
        return not_visible(&id);
    };
    state.tokens.remove(&token.id);
    if let Some(secret_digest) = token.secret_digest {
        state.revoked_secrets.insert(secret_digest);
    }
    let code = status(state.options.revoke_status, StatusCode::NO_CONTENT);
    sim.persist(&mut guard);
    let mut response = code.into_response();
    if code == StatusCode::ACCEPTED {
        let location = format!("/api/task/{}", uuid::Uuid::new_v4());
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    response
}

/// `GET /api/task/{id}`: the task a 202 revoke points at, finished (the revoke itself took
/// effect at once), or `running` while the `hold_revoke_tasks` fault is on.
pub(super) async fn task(State(sim): State<SimRef>, Path(id): Path<String>) -> Response {
    let (status, progress) = if sim.admin.faults().hold_revoke_tasks {
        ("running", 50)
    } else {
        ("success", 100)
    };
    let body = json!({
        "id": format!("urn:vcloud:task:{id}"),
        "name": "task",
        "operationName": "tokenRevoke",
        "status": status,
        "progress": progress,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_orgs_and_users_match_those_a_login_creates() {
        let seeded: VcdState = serde_json::from_value(json!({
            "orgs": [{"name": "System"}, {"name": "Beta"}],
            "users": [{"name": "ops", "org": "Beta"}],
        }))
        .unwrap();
        let mut logged_in = VcdState::default();
        logged_in.add_org("System");
        logged_in.add_org("Beta");
        let user = logged_in.add_user("ops", "beta").unwrap();
        assert_eq!(seeded.orgs, logged_in.orgs);
        assert_eq!(seeded.users.get(&user.id), Some(&user));
        let saved = serde_json::to_value(&seeded).unwrap();
        let reloaded: VcdState = serde_json::from_value(saved).unwrap();
        assert_eq!(reloaded.users, seeded.users);
    }

    #[test]
    fn fiql_and_or_with_parentheses() {
        let filter =
            parse_filter("(name==ci;owner.name==bob;(type==PROXY,type==REFRESH))").unwrap();
        let token = json!({"name": "ci", "owner": {"name": "bob"}, "type": "REFRESH"});
        assert!(filter.matches(&token));
        let other = json!({"name": "ci", "owner": {"name": "alice"}, "type": "REFRESH"});
        assert!(!filter.matches(&other));
    }

    #[test]
    fn fiql_and_binds_tighter_than_or_and_lone_terms_stay_bare() {
        let term = |field: &str, value: &str, equal: bool| Filter::Compare {
            field: field.into(),
            value: value.into(),
            equal,
        };
        assert_eq!(
            parse_filter("name==a,type!=b;id==c"),
            Ok(Filter::Any(vec![
                term("name", "a", true),
                Filter::All(vec![term("type", "b", false), term("id", "c", true)]),
            ]))
        );
        assert_eq!(parse_filter("((name==a))"), Ok(term("name", "a", true)));
        assert_eq!(
            parse_filter("(name==a,name==b);id==c"),
            Ok(Filter::All(vec![
                Filter::Any(vec![term("name", "a", true), term("name", "b", true)]),
                term("id", "c", true),
            ]))
        );
        assert_eq!(parse_filter("name==a;"), Err(FilterError::End));
        assert_eq!(parse_filter("name==a)"), Err(FilterError::Unexpected(')')));
    }

    #[test]
    fn fiql_rejects_unknown_fields_and_unbalanced_input() {
        assert_eq!(
            parse_filter("secret==x"),
            Err(FilterError::Field("secret".into()))
        );
        assert_eq!(parse_filter("(name==x"), Err(FilterError::End));
        assert!(matches!(
            parse_filter("name"),
            Err(FilterError::Operator(_))
        ));
    }

    #[test]
    fn wildcards_match_prefix_suffix_and_middle() {
        assert!(wildcard_match("ci-*", "ci-token"));
        assert!(wildcard_match("*token", "ci-token"));
        assert!(wildcard_match("c*t*n", "ci-token"));
        assert!(!wildcard_match("ci-*", "cd-token"));
        assert!(wildcard_match("exact", "exact"));
    }
}
