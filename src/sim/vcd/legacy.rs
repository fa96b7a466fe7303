//! Cloud Director's legacy XML API (`/api/…`) as its clients use it: `GET /api/versions`
//! (anonymous; every client's first call: pyvcloud `get_supported_versions_list`,
//! go-vcloud-director `vcdFetchSupportedVersions`), `POST /api/sessions` (also `/api/login`),
//! a Basic login answering with `x-vcloud-authorization` and, from API 33, the
//! `X-VMWARE-VCLOUD-ACCESS-TOKEN` JWT; the current session (`GET`/`DELETE /api/session`,
//! which pyvcloud's `rehydrate_from_token` and `logout` call); the org list go-vcloud-director
//! reads to check a token (`GET /api/org`) and each org (`GET /api/org/{id}`).
//!
//! Every `href` is absolute (`http://<Host>/api/…`), as the real server writes them and
//! as clients follow them (the VCD programming guide; `../shared/api/README.md`,
//! "Corrections after the audit").

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{
    LEGACY_AUTH_HEADER, LoginEndpoint, SUPPORTED_API_VERSIONS, SYSTEM_ORG, User, VcdError,
    VcdState, api_version, caller, open_session, org_id, refusal, role_name, version_number,
    versioned_caller, with_session_headers,
};
use crate::sim::SimRef;

const VCLOUD_NS: &str = "http://www.vmware.com/vcloud/v1.5";
const VERSIONS_NS: &str = "http://www.vmware.com/vcloud/versions";
const SESSION_TYPE: &str = "application/vnd.vmware.vcloud.session+xml";
const ORG_LIST_TYPE: &str = "application/vnd.vmware.vcloud.orgList+xml";
const ORG_TYPE: &str = "application/vnd.vmware.vcloud.org+xml";
/// The API version from which a legacy login also returns the JWT (README, "Corrections").
const ACCESS_TOKEN_FROM_VERSION: &str = "33.0";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// `http://<Host>`: the base of every href, as the client addressed this server.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', '"', '<', '>', ' ']))
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn xml(status: StatusCode, media_type: &str, version: &str, body: String) -> Response {
    let content_type = format!("{media_type};version={version}");
    (
        status,
        [(header::CONTENT_TYPE, content_type)],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"),
    )
        .into_response()
}

/// The legacy API's `<Error>` document for a refusal.
fn xml_error(refusal: &VcdError) -> Response {
    let body = format!(
        "<Error xmlns=\"{VCLOUD_NS}\" stackTrace=\"\" majorErrorCode=\"{}\" minorErrorCode=\"{}\" message=\"{}\"/>",
        refusal.status.as_u16(),
        escape(refusal.minor),
        escape(&refusal.message)
    );
    let mut response = xml(
        refusal.status,
        "application/vnd.vmware.vcloud.error+xml",
        MIN_LEGACY_VERSION,
        body,
    );
    if refusal.status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"vcloud\""),
        );
    }
    response
}

/// The lowest version served, used where a request names none.
const MIN_LEGACY_VERSION: &str = SUPPORTED_API_VERSIONS[0];

/// `GET /api/versions`: every supported version with its login URL; no authentication.
pub(super) async fn versions(headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    let infos: String = SUPPORTED_API_VERSIONS
        .iter()
        .map(|v| {
            format!(
                "<VersionInfo deprecated=\"false\"><Version>{v}</Version><LoginUrl>{base}/api/sessions</LoginUrl></VersionInfo>"
            )
        })
        .collect();
    let body = format!("<SupportedVersions xmlns=\"{VERSIONS_NS}\">{infos}</SupportedVersions>");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"),
    )
        .into_response()
}

/// `POST /api/sessions`: Basic `user@org:password` for any org.
pub(super) async fn login(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    let version = match api_version(&headers, MIN_LEGACY_VERSION) {
        Ok(version) => version,
        Err(refusal) => return xml_error(&refusal),
    };
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    let state = &mut guard.vcd;
    let opened = match open_session(&sim, state, &headers, LoginEndpoint::Legacy, now) {
        Ok(opened) => opened,
        Err(refusal) => return xml_error(&refusal),
    };
    let legacy_token = state.issue_legacy_token(&opened.session_id);
    let body = session_xml(state, &opened.user, &base_url(&headers));
    sim.persist(&mut guard);
    let mut response = xml(StatusCode::OK, SESSION_TYPE, &version, body);
    if let Some(value) = legacy_token.and_then(|t| HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert(LEGACY_AUTH_HEADER, value);
    }
    if version_number(&version) >= version_number(ACCESS_TOKEN_FROM_VERSION) {
        response = with_session_headers(response, &opened.jwt);
    }
    response
}

fn session_xml(state: &VcdState, user: &User, base: &str) -> String {
    let org = state.org(&user.org);
    let org_link = org
        .map(|o| {
            format!(
                "<Link rel=\"down\" type=\"{ORG_TYPE}\" name=\"{}\" href=\"{base}/api/org/{}\"/>",
                escape(&o.name),
                escape(uuid_of(&o.id))
            )
        })
        .unwrap_or_default();
    format!(
        "<Session xmlns=\"{VCLOUD_NS}\" user=\"{}\" org=\"{}\" userId=\"{}\" orgId=\"{}\" roles=\"{}\" href=\"{base}/api/session/\" type=\"{SESSION_TYPE}\"><Link rel=\"down\" type=\"{ORG_LIST_TYPE}\" href=\"{base}/api/org/\"/>{org_link}<Link rel=\"openapi\" type=\"application/json\" href=\"{base}/cloudapi/\"/></Session>",
        escape(&user.name),
        escape(&user.org),
        escape(&user.id),
        escape(&org_id(state, &user.org)),
        role_name(user)
    )
}

/// The last part of a URN (`urn:vcloud:org:<uuid>`).
fn uuid_of(urn: &str) -> &str {
    urn.rsplit(':').next().unwrap_or_default()
}

/// `GET /api/session`: the caller's session (pyvcloud `rehydrate_from_token`). Served on the
/// Cloud Director port only: on the shared port `/api/session` is vSphere's.
pub(super) async fn current(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    let now = sim.clock.now();
    let guard = sim.state.lock().await;
    let state = &guard.vcd;
    let version = match api_version(&headers, MIN_LEGACY_VERSION) {
        Ok(version) => version,
        Err(refusal) => return xml_error(&refusal),
    };
    match caller(&headers, state, now) {
        Ok(caller) => xml(
            StatusCode::OK,
            SESSION_TYPE,
            &version,
            session_xml(state, &caller.user, &base_url(&headers)),
        ),
        Err(refusal) => xml_error(&refusal),
    }
}

/// `DELETE /api/session`: the session's tokens (JWT and `x-vcloud-authorization`) stop
/// working (pyvcloud `logout`).
pub(super) async fn logout(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    let session = match caller(&headers, &guard.vcd, now) {
        Ok(caller) => caller.session_id,
        Err(refusal) => return xml_error(&refusal),
    };
    guard
        .vcd
        .access_tokens
        .retain(|_, token| token.session_id != session);
    sim.persist(&mut guard);
    StatusCode::NO_CONTENT.into_response()
}

/// Whether the caller of org `name` may see it: the System org sees all, a tenant its own.
fn org_visible(user: &User, name: &str) -> bool {
    user.org.eq_ignore_ascii_case(SYSTEM_ORG) || user.org.eq_ignore_ascii_case(name)
}

/// `GET /api/org`: the orgs the caller may see (all of them for the System org).
pub(super) async fn org_list(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    let now = sim.clock.now();
    let guard = sim.state.lock().await;
    let state = &guard.vcd;
    let version = match api_version(&headers, MIN_LEGACY_VERSION) {
        Ok(version) => version,
        Err(refusal) => return xml_error(&refusal),
    };
    let caller = match versioned_caller(&headers, state, now, MIN_LEGACY_VERSION) {
        Ok(caller) => caller,
        Err(refusal) => return xml_error(&refusal),
    };
    let base = base_url(&headers);
    let orgs: String = state
        .orgs
        .values()
        .filter(|o| org_visible(&caller.user, &o.name))
        .map(|o| {
            format!(
                "<Org type=\"{ORG_TYPE}\" name=\"{}\" href=\"{base}/api/org/{}\"/>",
                escape(&o.name),
                escape(uuid_of(&o.id))
            )
        })
        .collect();
    let body = format!(
        "<OrgList xmlns=\"{VCLOUD_NS}\" type=\"{ORG_LIST_TYPE}\" href=\"{base}/api/org/\">{orgs}</OrgList>"
    );
    xml(StatusCode::OK, ORG_LIST_TYPE, &version, body)
}

/// `GET /api/org/{id}`: one org; 403 when it is unknown or not the caller's to see, as
/// Cloud Director answers for entities it does not show (`vcd.md` §6).
pub(super) async fn org(
    State(sim): State<SimRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let now = sim.clock.now();
    let guard = sim.state.lock().await;
    let state = &guard.vcd;
    let version = match api_version(&headers, MIN_LEGACY_VERSION) {
        Ok(version) => version,
        Err(refusal) => return xml_error(&refusal),
    };
    let caller = match versioned_caller(&headers, state, now, MIN_LEGACY_VERSION) {
        Ok(caller) => caller,
        Err(refusal) => return xml_error(&refusal),
    };
    let found = state
        .orgs
        .values()
        .find(|o| uuid_of(&o.id) == id || o.id == id)
        .filter(|o| org_visible(&caller.user, &o.name));
    let Some(org) = found else {
        return xml_error(&refusal(
            StatusCode::FORBIDDEN,
            "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
            format!(
                "Either you need some or all of the following rights [Organization View] to perform operations [ORG_VIEW] for {id} or the target entity is invalid."
            ),
        ));
    };
    let base = base_url(&headers);
    let href = format!("{base}/api/org/{}", uuid_of(&org.id));
    let body = format!(
        "<Org xmlns=\"{VCLOUD_NS}\" name=\"{name}\" id=\"{id}\" href=\"{href}\" type=\"{ORG_TYPE}\"><Link rel=\"up\" type=\"{ORG_LIST_TYPE}\" href=\"{base}/api/org/\"/><Description/><FullName>{name}</FullName><IsEnabled>true</IsEnabled></Org>",
        name = escape(&org.name),
        id = escape(&org.id),
        href = escape(&href),
    );
    xml(StatusCode::OK, ORG_TYPE, &version, body)
}
