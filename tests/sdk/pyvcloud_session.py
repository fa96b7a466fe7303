"""Cloud Director through pyvcloud: versions, logins (cloudapi, legacy XML, API token),
the session's links, orgs and cloudapi calls, against `sextant sim serve --listen-vcd`.

Usage: pyvcloud_session.py VCD_URL SHARED_URL
Exits nonzero (with a traceback) on the first failed check.
"""

import os
import sys
import tempfile

import requests
from pyvcloud.vcd.client import BasicLoginCredentials, Client
from pyvcloud.vcd.exceptions import (
    AccessForbiddenException,
    EntityNotFoundException,
    UnauthorizedException,
)
from pyvcloud.vcd.vcd_client import VcdClient
from vcloud.rest.openapi.apis.sessions_api import SessionsApi
from vcloud.rest.openapi.apis.token_api import TokenApi

VCD_URL, SHARED_URL = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/")
PASSWORD = "sim-password"
LOG = os.path.join(tempfile.mkdtemp(prefix="pyvcloud-"), "pyvcloud.log")


def client(cls=Client, **kwargs):
    return cls(VCD_URL, verify_ssl_certs=False, log_file=LOG, **kwargs)


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def hrefs(element):
    """Every href in an lxml element and its descendants."""
    return [e.get("href") for e in element.iter() if e.get("href") is not None]


def check_absolute(element, what):
    for href in hrefs(element):
        check(href.startswith(VCD_URL + "/"), f"{what}: href {href} is not absolute")


# Every client's first call: the supported versions, anonymously.
versions = client().get_supported_versions_list()
check("32.0" in versions and "36.0" in versions, f"versions: {versions}")
shared_versions = Client(SHARED_URL, log_file=LOG).get_supported_versions_list()
check(shared_versions == versions, "the shared address lists the same versions")

# Provider login: pyvcloud negotiates 36.0, logs in at /cloudapi/1.0.0/sessions/provider and
# reads the session from /api/session with the JWT.
admin = client()
admin.set_credentials(BasicLoginCredentials("administrator", "System", PASSWORD))
check(admin.get_api_version() == "36.0", f"negotiated {admin.get_api_version()}")
check(admin.is_sysadmin(), "administrator@System is a system administrator")
check(admin.get_access_token(), "a JWT session")
session = admin.get_vcloud_session()
check(session.get("user") == "administrator", "session user")
check_absolute(session, "session")
orgs = admin.get_org_list()
names = sorted(org.get("name") for org in orgs)
check(names == ["System", "acme"], f"org list: {names}")
for org in orgs:
    check_absolute(org, f"org {org.get('name')}")
check(admin.get_org_by_name("ACME").get("name") == "acme", "org by name")
check(admin.get_org().get("name") == "System", "logged-in org")

# cloudapi through the SDK's OpenAPI client, at 36.1: the token endpoints need it (VCD
# 10.3.1), as on a real Cloud Director.
openapi = client(VcdClient, api_version="36.1")
openapi.set_credentials(BasicLoginCredentials("administrator", "System", PASSWORD))
current = SessionsApi(openapi).get_current_session()
check(current.user.name == "administrator", f"current session: {current.user}")
check(current.org.name == "System", f"current org: {current.org}")

# Create an API token the way the UI does (register + one-time grant) with the user session.
jwt = openapi.get_access_token()
register = requests.post(
    f"{VCD_URL}/oauth/provider/register",
    json={"client_name": "pyvcloud-token"},
    headers={"Authorization": f"Bearer {jwt}", "Accept": "application/json"},
)
check(register.ok, f"register: {register.status_code} {register.text}")
client_id = register.json()["client_id"]
grant = requests.post(
    f"{VCD_URL}/oauth/provider/token",
    data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": jwt,
        "client_id": client_id,
    },
)
check(grant.ok, f"initial grant: {grant.status_code}")
api_token = grant.json()["refresh_token"]
tokens = TokenApi(openapi).get_tokens(1, 128)
check(
    any(t.name == "pyvcloud-token" and t.type == "REFRESH" for t in tokens.values),
    "the user session lists the new token",
)

# API-token login: pyvcloud 23 has no refresh grant of its own, but takes the JWT it
# returns through `rehydrate_from_token`, as for any bearer token.
refresh = requests.post(
    f"{VCD_URL}/oauth/provider/token",
    data={"grant_type": "refresh_token", "refresh_token": api_token},
    headers={"Accept": "application/json"},
)
check(refresh.ok, f"refresh grant: {refresh.status_code}")
by_token = client(VcdClient, api_version="36.1")
by_token.rehydrate_from_token(refresh.json()["access_token"], is_jwt_token=True)
check(by_token.get_vcloud_session().get("user") == "administrator", "token session")
check(by_token.get_org().get("name") == "System", "token session org")
by_token._initialize_openapi_client()
own = TokenApi(by_token).get_tokens(1, 128)
check(
    [t.id for t in own.values] == [f"urn:vcloud:token:{client_id}"],
    "an API-token session sees its own token only",
)
try:
    TokenApi(by_token).delete_token(f"urn:vcloud:token:{client_id}")
    raise AssertionError("an API-token session revoked a token")
except AccessForbiddenException:
    pass

# A tenant login sees its own org only.
tenant = client()
tenant.set_credentials(BasicLoginCredentials("orgadmin", "acme", PASSWORD))
check(not tenant.is_sysadmin(), "orgadmin is no system administrator")
check([o.get("name") for o in tenant.get_org_list()] == ["acme"], "tenant org list")
try:
    tenant.get_org_by_name("System")
    raise AssertionError("a tenant found the System org")
except EntityNotFoundException:
    pass

# Legacy login below API 33: POST /api/sessions, then x-vcloud-authorization on each call.
legacy = client(api_version="32.0")
legacy.set_credentials(BasicLoginCredentials("orgadmin", "acme", PASSWORD))
token = legacy.get_xvcloud_authorization_token()
check(token and len(token) == 32, "a 32-character x-vcloud-authorization token")
check(legacy.get_access_token() is None, "no JWT below API 33")
check_absolute(legacy.get_vcloud_session(), "legacy session")
check([o.get("name") for o in legacy.get_org_list()] == ["acme"], "legacy org list")
legacy.logout()
after = requests.get(
    f"{VCD_URL}/api/org",
    headers={"x-vcloud-authorization": token, "Accept": "application/*+xml;version=32.0"},
)
check(after.status_code == 401, f"after logout: {after.status_code}")

# From API 33 the legacy login also answers with the JWT.
login = requests.post(
    f"{SHARED_URL}/api/sessions",
    auth=("orgadmin@acme", PASSWORD),
    headers={"Accept": "application/*+xml;version=36.0"},
)
check(login.ok, f"legacy login on the shared address: {login.status_code}")
check(len(login.headers["x-vcloud-authorization"]) == 32, "legacy token")
check(login.headers["x-vmware-vcloud-access-token"].count(".") == 2, "JWT from API 33")

# An unknown org: the SDK's own exception.
try:
    client().set_credentials(BasicLoginCredentials("nobody", "nowhere", PASSWORD))
    raise AssertionError("a login to an unknown org succeeded")
except UnauthorizedException:
    pass

admin.logout()
print("pyvcloud: ok")
