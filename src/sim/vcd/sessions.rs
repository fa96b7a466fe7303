//! cloudapi session login (`sessions/provider`, `sessions`), the current session and logout.

use super::*;

pub(super) async fn provider_login(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    login(&sim, &headers, LoginEndpoint::Provider).await
}

pub(super) async fn tenant_login(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    login(&sim, &headers, LoginEndpoint::Tenant).await
}

/// Basic `user@org:password` from the `Authorization` header.
pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim().as_bytes())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (login, password) = text.split_once(':')?;
    let (user, org) = login.rsplit_once('@')?;
    Some((user.to_owned(), org.to_owned(), password.to_owned()))
}

/// Which login endpoint was called.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum LoginEndpoint {
    /// `/cloudapi/1.0.0/sessions/provider`: System org only.
    Provider,
    /// `/cloudapi/1.0.0/sessions`: tenant orgs only.
    Tenant,
    /// `/api/sessions` (and `/api/login`): any org.
    Legacy,
}

/// A password session just opened.
pub(crate) struct OpenedSession {
    pub user: User,
    pub jwt: String,
    pub session_id: String,
}

/// Checks Basic `user@org:password` for `endpoint` and opens a password session.
pub(crate) fn open_session(
    sim: &Sim,
    state: &mut VcdState,
    headers: &HeaderMap,
    endpoint: LoginEndpoint,
    now: DateTime<Utc>,
) -> Result<OpenedSession, VcdError> {
    state.prune(now);
    let Some((user, org, password)) = basic_credentials(headers) else {
        return Err(unauthorized("Send Basic credentials as user@org:password"));
    };
    if !sim.credential_accepted(&user) || !sim.credential_accepted(&password) {
        return Err(unauthorized("Invalid credentials"));
    }
    let is_system = org.eq_ignore_ascii_case(SYSTEM_ORG);
    match (endpoint, is_system) {
        (LoginEndpoint::Provider, false) => {
            return Err(unauthorized(
                "Use /cloudapi/1.0.0/sessions to log in to a tenant organization",
            ));
        }
        (LoginEndpoint::Tenant, true) => {
            return Err(unauthorized(
                "Use /cloudapi/1.0.0/sessions/provider to log in to the System organization",
            ));
        }
        _ => {}
    }
    let Some(user) = state.add_user(&user, &org) else {
        return Err(unauthorized("Invalid credentials"));
    };
    let (jwt, session_id) =
        state.issue_access_token(&user, AccessKind::Password, None, now, ttl(sim));
    Ok(OpenedSession {
        user,
        jwt,
        session_id,
    })
}

/// Adds the session JWT headers to a login response.
pub(crate) fn with_session_headers(mut response: Response, jwt: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(jwt) {
        response.headers_mut().insert(ACCESS_TOKEN_HEADER, value);
    }
    response
        .headers_mut()
        .insert(TOKEN_TYPE_HEADER, HeaderValue::from_static("Bearer"));
    response
}

/// `POST /cloudapi/1.0.0/sessions[/provider]`: Basic login; the JWT comes back in
/// `X-VMWARE-VCLOUD-ACCESS-TOKEN`.
pub(super) async fn login(sim: &Sim, headers: &HeaderMap, endpoint: LoginEndpoint) -> Response {
    if let Err(refusal) = api_version(headers, SUPPORTED_API_VERSIONS[0]) {
        return refusal.into_response();
    }
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    let state = &mut guard.vcd;
    match open_session(sim, state, headers, endpoint, now) {
        Ok(opened) => {
            let body = session_json(state, &opened.user, &opened.session_id);
            sim.persist(&mut guard);
            with_session_headers(
                (StatusCode::OK, axum::Json(body)).into_response(),
                &opened.jwt,
            )
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// The role a session reports: every simulated user administers its org.
pub(crate) fn role_name(user: &User) -> &'static str {
    if user.org.eq_ignore_ascii_case(SYSTEM_ORG) {
        "System Administrator"
    } else {
        "Organization Administrator"
    }
}

pub(super) fn session_json(state: &VcdState, user: &User, session_id: &str) -> Value {
    let org = json!({"name": user.org, "id": org_id(state, &user.org)});
    let role = role_name(user);
    json!({
        "id": format!("urn:vcloud:session:{session_id}"),
        "site": {"name": "sextant-sim", "id": urn("site", "site")},
        "user": {"name": user.name, "id": user.id},
        "org": org,
        "operatingOrg": org,
        "location": urn("location", "location"),
        "roles": [role],
        "roleRefs": [{"name": role, "id": urn("role", role)}],
        "sessionIdleTimeoutMinutes": 30,
    })
}

/// `GET /cloudapi/1.0.0/sessions/current`.
pub(super) async fn current_session(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    let now = sim.clock.now();
    let guard = sim.state.lock().await;
    match versioned_caller(&headers, &guard.vcd, now, MIN_SESSION_API_VERSION) {
        Ok(caller) => (
            StatusCode::OK,
            axum::Json(session_json(&guard.vcd, &caller.user, &caller.session_id)),
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// `DELETE /cloudapi/1.0.0/sessions/current`: the access token stops working.
pub(super) async fn logout(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    match versioned_caller(&headers, &guard.vcd, now, MIN_SESSION_API_VERSION) {
        Ok(caller) => {
            // Every token of the session: its JWT and a legacy `x-vcloud-authorization`.
            guard
                .vcd
                .access_tokens
                .retain(|_, token| token.session_id != caller.session_id);
            sim.persist(&mut guard);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}
