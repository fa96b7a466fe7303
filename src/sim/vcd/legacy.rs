//! The two legacy XML endpoints Cloud Director clients still touch around API tokens:
//! `POST /api/sessions` (also `/api/login`), a Basic login answering with the same
//! `X-VMWARE-VCLOUD-ACCESS-TOKEN` header as cloudapi, and `GET /api/org`, which
//! go-vcloud-director calls to check a token after `SetToken` (`vcd.md` §3, §4).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{
    LoginEndpoint, SUPPORTED_API_VERSIONS, SYSTEM_ORG, VcdError, api_version, open_session, org_id,
    role_name, versioned_caller, with_session_headers,
};
use crate::sim::SimRef;

const VCLOUD_NS: &str = "http://www.vmware.com/vcloud/v1.5";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn xml(status: StatusCode, media_type: &str, body: String) -> Response {
    let content_type = format!("{media_type};version={}", SUPPORTED_API_VERSIONS[5]);
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
        body,
    );
    if refusal.status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"vcloud\""),
        );
    }
    response
}

/// `POST /api/sessions`: Basic `user@org:password` for any org.
pub(super) async fn login(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    if let Err(refusal) = api_version(&headers, SUPPORTED_API_VERSIONS[0]) {
        return xml_error(&refusal);
    }
    let now = sim.clock.now();
    let mut guard = sim.state.lock().await;
    let state = &mut guard.vcd;
    let opened = match open_session(&sim, state, &headers, LoginEndpoint::Legacy, now) {
        Ok(opened) => opened,
        Err(refusal) => return xml_error(&refusal),
    };
    let user = &opened.user;
    let body = session_xml(state, user);
    sim.persist(&mut guard);
    with_session_headers(
        xml(
            StatusCode::OK,
            "application/vnd.vmware.vcloud.session+xml",
            body,
        ),
        &opened.jwt,
    )
}

fn session_xml(state: &super::VcdState, user: &super::User) -> String {
    format!(
        "<Session xmlns=\"{VCLOUD_NS}\" user=\"{}\" org=\"{}\" userId=\"{}\" orgId=\"{}\" roles=\"{}\" href=\"/api/session/\" type=\"application/vnd.vmware.vcloud.session+xml\"><Link rel=\"down\" type=\"application/vnd.vmware.vcloud.orgList+xml\" href=\"/api/org/\"/></Session>",
        escape(&user.name),
        escape(&user.org),
        escape(&user.id),
        escape(&org_id(state, &user.org)),
        role_name(user)
    )
}

/// `GET /api/org`: the orgs the caller may see (all of them for the System org).
pub(super) async fn org_list(State(sim): State<SimRef>, headers: HeaderMap) -> Response {
    let now = sim.clock.now();
    let guard = sim.state.lock().await;
    let state = &guard.vcd;
    let caller = match versioned_caller(&headers, state, now, SUPPORTED_API_VERSIONS[0]) {
        Ok(caller) => caller,
        Err(refusal) => return xml_error(&refusal),
    };
    let system = caller.user.org.eq_ignore_ascii_case(SYSTEM_ORG);
    let orgs: String = state
        .orgs
        .values()
        .filter(|o| system || o.name.eq_ignore_ascii_case(&caller.user.org))
        .map(|o| {
            let uuid = o.id.rsplit(':').next().unwrap_or_default();
            format!(
                "<Org type=\"application/vnd.vmware.vcloud.org+xml\" name=\"{}\" href=\"/api/org/{}\"/>",
                escape(&o.name),
                escape(uuid)
            )
        })
        .collect();
    let body = format!(
        "<OrgList xmlns=\"{VCLOUD_NS}\" type=\"application/vnd.vmware.vcloud.orgList+xml\" href=\"/api/org/\">{orgs}</OrgList>"
    );
    xml(
        StatusCode::OK,
        "application/vnd.vmware.vcloud.orgList+xml",
        body,
    )
}
