//! `/oauth/{provider|tenant/{org}}/token` (the refresh-token grant with an API token and the
//! one-time jwt-bearer grant that hands out a new token's secret) and `/register`.

use super::*;

/// Decodes an `application/x-www-form-urlencoded` body.
pub(super) fn form_fields(body: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

pub(super) fn invalid_grant(state: &VcdState, message: &str) -> Response {
    error(
        status(state.options.invalid_grant_status, StatusCode::BAD_REQUEST),
        "invalid_grant",
        message,
    )
}

pub(super) async fn provider_token(State(sim): State<SimRef>, body: Bytes) -> Response {
    token_grant(&sim, SYSTEM_ORG, &body).await
}

pub(super) async fn tenant_token(
    State(sim): State<SimRef>,
    Path(org): Path<String>,
    body: Bytes,
) -> Response {
    token_grant(&sim, &org, &body).await
}

/// `POST /oauth/{provider|tenant/{org}}/token`: the refresh-token and jwt-bearer grants.
pub(super) async fn token_grant(sim: &Sim, org: &str, body: &[u8]) -> Response {
    saved_on_success(sim, |state, now| grant(sim, state, org, body, now)).await
}

/// Answers with `handle` run on the locked state, which is saved when the answer is a success.
pub(super) async fn saved_on_success(
    sim: &Sim,
    handle: impl FnOnce(&mut VcdState, DateTime<Utc>) -> Response,
) -> Response {
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    let response = handle(&mut guard.vcd, now);
    if response.status().is_success() {
        sim.persist(&mut guard);
    }
    response
}

pub(super) fn grant(
    sim: &Sim,
    state: &mut VcdState,
    org: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Response {
    state.prune(now);
    let fields = form_fields(body);
    let Some(org) = state.org(org).map(|o| o.name.clone()) else {
        return invalid_grant(state, "Invalid refresh token: unknown organization");
    };
    let mut response = match fields.get("grant_type").map(String::as_str) {
        Some("refresh_token") => refresh_grant(sim, state, &org, &fields, now),
        Some(JWT_BEARER_GRANT) => initial_grant(sim, state, &org, &fields, now),
        Some(other) => error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Unsupported grant type: {other}"),
        ),
        None => error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing grant_type",
        ),
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The 200 reply of a grant: a new access token for `user`'s session of API token
/// `token_id`, and `refresh_token`.
pub(super) fn grant_reply(
    sim: &Sim,
    state: &mut VcdState,
    (user, token_id): (&User, Option<String>),
    now: DateTime<Utc>,
    refresh_token: Value,
) -> Response {
    let ttl = ttl(sim);
    let (access_token, _) =
        state.issue_access_token(user, AccessKind::ApiToken, token_id, now, ttl);
    let body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.num_seconds(),
        "refresh_token": refresh_token,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

pub(super) fn refresh_grant(
    sim: &Sim,
    state: &mut VcdState,
    org: &str,
    fields: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Response {
    let Some(secret) = fields.get("refresh_token").filter(|s| !s.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing refresh_token",
        );
    };
    let secret_digest = digest(secret);
    let issued = state
        .tokens
        .values()
        .find(|t| t.secret_digest.as_deref() == Some(secret_digest.as_str()))
        .cloned();
    let token_id = issued.as_ref().map(|t| t.id.clone());
    let user = match issued {
        Some(token) => {
            if !token.org.eq_ignore_ascii_case(org) {
                return invalid_grant(state, "Invalid refresh token");
            }
            match state.users.get(&token.owner_id) {
                Some(user) => user.clone(),
                None => return invalid_grant(state, "Invalid refresh token"),
            }
        }
        None => {
            let accepted = state.options.accept_unknown_api_tokens
                && !state.revoked_secrets.contains(&secret_digest)
                && sim.credential_accepted(secret);
            if !accepted {
                return invalid_grant(state, "Invalid refresh token");
            }
            match state.add_user("api-token-user", org) {
                Some(user) => user,
                None => return invalid_grant(state, "Invalid refresh token"),
            }
        }
    };
    let refresh = if state.options.user_token_refresh_token_null {
        Value::Null
    } else {
        json!(secret)
    };
    grant_reply(sim, state, (&user, token_id), now, refresh)
}

/// The one-time grant: a password session's JWT plus a registered `client_id` give the new
/// token's secret, once.
pub(super) fn initial_grant(
    sim: &Sim,
    state: &mut VcdState,
    org: &str,
    fields: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Response {
    let (Some(assertion), Some(client_id)) = (fields.get("assertion"), fields.get("client_id"))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The jwt-bearer grant needs assertion and client_id",
        );
    };
    let session = state
        .access_tokens
        .get(&digest(assertion))
        .filter(|a| a.expires_at > now && a.kind == AccessKind::Password)
        .cloned();
    let Some(session) = session else {
        return invalid_grant(state, "Invalid assertion");
    };
    let token_id = format!("{TOKEN_URN_PREFIX}{client_id}");
    let Some(token) = state.tokens.get(&token_id).cloned() else {
        return invalid_grant(state, "Invalid client");
    };
    if token.owner_id != session.user_id || !token.org.eq_ignore_ascii_case(org) {
        return invalid_grant(state, "Invalid client");
    }
    if token.secret_digest.is_some() {
        return invalid_grant(
            state,
            "The initial token for this client was already issued",
        );
    }
    let Some(user) = state.users.get(&session.user_id).cloned() else {
        return invalid_grant(state, "Invalid assertion");
    };
    let secret = random_string(API_TOKEN_LENGTH);
    if let Some(stored) = state.tokens.get_mut(&token_id) {
        stored.secret_digest = Some(digest(&secret));
    }
    grant_reply(sim, state, (&user, Some(token_id)), now, json!(secret))
}

pub(super) async fn provider_register(
    State(sim): State<SimRef>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    register(&sim, SYSTEM_ORG, &headers, &body).await
}

pub(super) async fn tenant_register(
    State(sim): State<SimRef>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    register(&sim, &org, &headers, &body).await
}

/// `POST /oauth/{provider|tenant/{org}}/register`: registers the OAuth client behind a new
/// API token (the token appears in the token list from now on, without a secret yet).
pub(super) async fn register(sim: &Sim, org: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    saved_on_success(sim, |state, now| {
        register_client(state, org, headers, body, now)
    })
    .await
}

pub(super) fn register_client(
    state: &mut VcdState,
    org: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Response {
    let caller = match caller(headers, state, now) {
        Ok(c) => c,
        Err(refusal) => return refusal.into_response(),
    };
    if caller.kind == AccessKind::ApiToken {
        return forbidden(
            state.options.api_token_session_forbidden_status,
            "A session opened with an API token cannot create API tokens",
        );
    }
    if !caller.user.org.eq_ignore_ascii_case(org) {
        return forbidden(
            state.options.api_token_session_forbidden_status,
            "API tokens can only be created in the user's own organization",
        );
    }
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "Invalid JSON body"),
    };
    let Some(name) = request
        .get("client_name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "client_name is required",
        );
    };
    if request.get("software_id").is_some_and(|v| !v.is_null()) {
        return error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "Service accounts (software_id) are not simulated",
        );
    }
    let duplicate = state
        .tokens
        .values()
        .any(|t| t.owner_id == caller.user.id && t.name == name);
    if duplicate {
        return error(
            StatusCode::BAD_REQUEST,
            "DUPLICATE_NAME",
            &format!("An API token named {name} already exists for this user"),
        );
    }
    let client_id = uuid::Uuid::new_v4().to_string();
    let id = format!("{TOKEN_URN_PREFIX}{client_id}");
    state.tokens.insert(
        id.clone(),
        ApiToken {
            id,
            client_id: client_id.clone(),
            name: name.to_owned(),
            owner_id: caller.user.id.clone(),
            org: caller.user.org.clone(),
            secret_digest: None,
        },
    );
    let body = json!({
        "client_name": name,
        "client_id": client_id,
        "grant_types": [JWT_BEARER_GRANT, "refresh_token"],
        "token_endpoint_auth_method": "none",
        "client_uri": null,
        "software_id": null,
        "software_version": null,
        "scope": null,
    });
    (
        status(state.options.register_status, StatusCode::OK),
        axum::Json(body),
    )
        .into_response()
}
