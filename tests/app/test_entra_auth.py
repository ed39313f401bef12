"""HTTP_AUTH=entra through the real HTTP trigger functions (CONTRACT.md "HTTP API" and "Function names" [entra]):
every refusal (401 + `WWW-Authenticate: Bearer`, 403) and every acceptance (v1 and v2 issuers, both audience
forms, the 300-second leeway, a rotated key after the cooldown), the submitter kept in the job record and the
report, job ownership on the status route, X-MS-CLIENT-PRINCIPAL headers authorising nothing, and the auth level
the worker indexes in each mode (a fresh interpreter per mode).

The app is imported a second time as `function_app_entra` with HTTP_AUTH=entra set, as the worker would import
it in an app with that setting; tokens come from `localdev.entra_signer` (RS256, metadata and keys on loopback).
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import azure.functions as func
import pytest

from localdev.entra_signer import DEFAULT_CALLER_APPID, DEFAULT_CALLER_OID, EntraSigner
from shared.app import auth, entra_keys, health, runtime
from tests.app.test_http_import import Ctx
from tests.conftest import REPO
from tests.support.stack import hex_value, make_indicator

URL = "https://ioc-app.example.net/api/indicators/import"
NOW = float(int(time.time()))  # the authenticator's clock in these tests: token times are set relative to it
IMPORT, READ = "Indicators.Import", "Indicators.Read"
OTHER_OID, OTHER_APPID = "5d4c3b2a-0000-4000-8000-0000000000b2", "6e5d4c3b-0000-4000-8000-0000000000b2"
OTHER_TENANT = "00000000-0000-4000-8000-000000000bad"
LOGIN = "https://login.microsoftonline.com"
READER_OID, READER_APPID = "7f6e5d4c-0000-4000-8000-0000000000c3", "8a7f6e5d-0000-4000-8000-0000000000c3"


# --------------------------------------------------------------------------------------- fixtures and calls


@pytest.fixture(scope="module")
def signer() -> Iterator[EntraSigner]:
    s = EntraSigner()
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def entra_functions() -> dict[str, Any]:
    """function_app imported with HTTP_AUTH=entra in the environment (its own FunctionApp instance)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HTTP_AUTH", "entra")
    try:
        spec = importlib.util.spec_from_file_location("function_app_entra", REPO / "function_app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        mp.undo()
    assert module.ENTRA is True
    return {f.get_function_name(): f for f in module.app.get_functions()}


@pytest.fixture
def entra(signer, monkeypatch) -> Iterator[EntraSigner]:
    """The token settings pointing at the signer, and the process authenticator on a fixed clock (NOW) with a
    short key cooldown; fresh per test, so each starts with an empty key cache."""
    for k, v in signer.env().items():
        monkeypatch.setenv(k, v)
    settings = auth.AuthSettings.from_env(signer.env())
    signer.current_kid = signer.jwks()["keys"][0]["kid"]
    keys = entra_keys.EntraKeys(settings, cooldown=0.5)
    auth.set_authenticator(auth.Authenticator(settings, keys, clock=lambda: NOW))
    yield signer
    auth.set_authenticator(None)


@pytest.fixture
def no_runtime(monkeypatch) -> None:
    """A request the app refuses must not reach its runtime (no job, no storage call): reaching it is a 500."""

    def reached(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the request reached the runtime")

    monkeypatch.setattr("shared.app.http_import.get_runtime", reached)


def body_of(*values: str) -> bytes:
    return json.dumps({"Indicators": [make_indicator(v) for v in values]}).encode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(functions: dict[str, Any], headers: dict[str, str], body: bytes | None = None,
         **params: str) -> tuple[int, dict[str, Any], dict[str, str]]:  # fmt: skip
    req = func.HttpRequest(method="POST", url=URL, params=params, body=body or body_of(hex_value(uuid.uuid4())),
                           headers={"Content-Type": "application/json", **headers})  # fmt: skip
    resp = asyncio.run(functions["import_indicators"].get_user_function()(req, Ctx()))
    return resp.status_code, json.loads(resp.get_body()), dict(resp.headers)


def get(functions: dict[str, Any], job_id: str, headers: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
    req = func.HttpRequest(method="GET", url=f"{URL}/jobs/{job_id}", params={}, body=b"", headers=headers,
                           route_params={"id": job_id})  # fmt: skip
    resp = asyncio.run(functions["import_job_status"].get_user_function()(req))
    return resp.status_code, json.loads(resp.get_body()), dict(resp.headers)


def tok(signer: EntraSigner, **kw: Any) -> str:
    kw.setdefault("now", NOW)
    return signer.token(**kw)


def principal_headers(oid: str, roles: tuple[str, ...] = (IMPORT, READ)) -> dict[str, str]:
    """What App Service Authentication would inject, here set by the caller itself."""
    principal = {"auth_typ": "aad", "claims": [{"typ": "roles", "val": r} for r in roles]
                 + [{"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid}]}  # fmt: skip
    return {
        "X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(principal).encode()).decode(),
        "X-MS-CLIENT-PRINCIPAL-ID": oid,
        "X-MS-CLIENT-PRINCIPAL-NAME": "playbook@example.com",
        "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
    }


def no_kid_token(s: EntraSigner) -> str:
    """Signed by the current key, but the header does not say which key."""
    import jwt

    return jwt.encode(s.claims(now=NOW), s.private_key(s.current_kid), algorithm="RS256")


def tampered(token: str) -> str:
    """The same signature over a payload with more roles."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = [IMPORT, READ, "Admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


# --------------------------------------------------------------------------------------- refusals (POST)

Headers = Callable[[EntraSigner], dict[str, str]]
# (case, headers, status, words in the message)  # why
REFUSALS: list[tuple[str, Headers, int, str]] = [
    ("no token", lambda s: {}, 401, "token is required"),
    ("basic scheme", lambda s: {"Authorization": "Basic dXNlcjpwYXNz"}, 401, "Bearer scheme"),
    ("empty bearer", lambda s: {"Authorization": "Bearer "}, 401, "token is required"),
    ("not a jwt", lambda s: bearer("not-a-jwt"), 401, "not a JWT"),
    ("garbled jwt", lambda s: bearer("abc.def.ghi"), 401, "cannot be decoded"),
    ("two tokens", lambda s: {"Authorization": f"Bearer {tok(s)} {tok(s)}"}, 401, "not a JWT"),
    ("expired 301 s ago", lambda s: bearer(tok(s, now=NOW - 3600 - 301)), 401, "expired"),
    ("no exp", lambda s: bearer(tok(s, exp=None)), 401, "no exp claim"),
    ("exp not a number", lambda s: bearer(tok(s, exp="tomorrow")), 401, "exp claim is not a number"),
    ("nbf 301 s ahead", lambda s: bearer(tok(s, nbf=NOW + 301, iat=NOW)), 401, "not valid yet"),
    ("iat 301 s ahead", lambda s: bearer(tok(s, iat=NOW + 301, nbf=None)), 401, "not valid yet"),
    ("unknown kid", lambda s: bearer(tok(s, kid=s.add_key(publish=False))), 401, "does not publish"),
    ("no kid", lambda s: bearer(no_kid_token(s)), 401, "no signing key (kid)"),
    ("tampered payload", lambda s: bearer(tampered(tok(s))), 401, "signature is invalid"),
    ("another tenant's v1 issuer", lambda s: bearer(tok(s, issuer=f"https://sts.windows.net/{OTHER_TENANT}/")), 401,
     "another issuer"),
    ("another tenant's v2 issuer", lambda s: bearer(tok(s, version="2.0", issuer=f"{LOGIN}/{OTHER_TENANT}/v2.0")), 401,
     "another issuer"),
    ("no issuer", lambda s: bearer(tok(s, iss=None)), 401, "no iss claim"),
    ("another audience", lambda s: bearer(tok(s, audience="https://graph.microsoft.com")), 401, "another audience"),
    ("Defender's audience", lambda s: bearer(tok(s, audience="https://api.securitycenter.microsoft.com")), 401,
     "another audience"),
    ("alg none", lambda s: bearer(s.unsigned_token(now=NOW)), 401, "'none' is not accepted"),
    ("HS256 keyed with the public key", lambda s: bearer(s.hs256_token(now=NOW)), 401, "'HS256' is not accepted"),
    ("no oid", lambda s: bearer(tok(s, oid=None)), 401, "no caller (oid)"),
    ("no appid or azp", lambda s: bearer(tok(s, appid=None)), 401, "appid or azp"),
    ("principal headers without a token", lambda s: principal_headers(DEFAULT_CALLER_OID), 401, "token is required"),
    ("no role", lambda s: bearer(tok(s, roles=())), 403, "needs the app role Indicators.Import"),
    ("Read may not POST", lambda s: bearer(tok(s, roles=(READ,))), 403, "Indicators.Import"),
    ("another app's role", lambda s: bearer(tok(s, roles=("Ti.ReadWrite.All",))), 403, "Indicators.Import"),
    ("roles not a list", lambda s: bearer(s.sign({**s.claims(now=NOW), "roles": IMPORT})), 403, "no role"),
    ("principal headers do not add roles",
     lambda s: {**bearer(tok(s, roles=())), **principal_headers(DEFAULT_CALLER_OID)}, 403, "no role"),
]


@pytest.mark.parametrize(("case", "headers", "status", "words"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_post_refusals(entra_functions, entra, no_runtime, case, headers, status, words):
    code, body, answer_headers = post(entra_functions, headers(entra))
    assert code == status, body
    assert words in body["error"]["message"]
    assert body["error"]["code"] == ("Unauthorized" if status == 401 else "Forbidden")
    challenge = answer_headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    if status == 401 and case in ("no token", "basic scheme", "empty bearer", "principal headers without a token"):
        assert challenge == "Bearer"  # RFC 6750 §3: no error code when the request carried no token
    elif status == 401:
        assert 'error="invalid_token"' in challenge
    else:
        assert 'error="insufficient_scope"' in challenge


@pytest.mark.parametrize("case", ["no token", "no role", "principal headers, no token"])
def test_status_route_refusals_come_before_the_job_is_looked_up(entra_functions, entra, no_runtime, case):
    headers = {"no token": {}, "no role": bearer(tok(entra, roles=())),
               "principal headers, no token": principal_headers(DEFAULT_CALLER_OID)}[case]  # fmt: skip
    code, body, answer = get(entra_functions, uuid.uuid4().hex, headers)
    assert code == (403 if case == "no role" else 401)
    assert answer["WWW-Authenticate"].startswith("Bearer")
    assert "Indicators.Import or Indicators.Read" in body["error"]["message"] or code == 401


def test_incomplete_token_settings_refuse_everything(entra_functions, signer, monkeypatch, no_runtime):
    """HTTP_AUTH=entra without HTTP_AUTH_TENANT_ID: a request without a token is still a plain 401 (it learns
    nothing), one with a token a 500 that points at health; nothing is let through."""
    auth.set_authenticator(None)
    monkeypatch.delenv("HTTP_AUTH_TENANT_ID", raising=False)
    monkeypatch.setenv("HTTP_AUTH_AUDIENCE", signer.env()["HTTP_AUTH_AUDIENCE"])
    try:
        assert post(entra_functions, {})[0] == 401
        code, body, _ = post(entra_functions, bearer(signer.token()))
        assert code == 500 and "/api/health" in body["error"]["message"]
        assert "HTTP_AUTH_TENANT_ID" not in body["error"]["message"]
    finally:
        auth.set_authenticator(None)


def test_keys_that_cannot_be_fetched_answer_503(entra_functions, monkeypatch, no_runtime):
    """The tenant's metadata unreachable: 503 + Retry-After (the token may be fine), never 401 or a pass."""
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    env = {"HTTP_AUTH_TENANT_ID": "7f0c4a1e-0000-4000-8000-0000000e1e1d", "HTTP_AUTH_AUDIENCE": "api://x,y",
           "HTTP_AUTH_AUTHORITY_HOST": dead}  # fmt: skip
    settings = auth.AuthSettings.from_env(env)
    auth.set_authenticator(auth.Authenticator(settings, entra_keys.EntraKeys(settings, timeout=1.0)))
    try:
        signer = EntraSigner()
        signer.start()
        try:
            code, body, headers = post(entra_functions, bearer(signer.token()))
        finally:
            signer.stop()
    finally:
        auth.set_authenticator(None)
    assert code == 503 and headers["Retry-After"] == "30"
    assert "signing keys" in body["error"]["message"]


# --------------------------------------------------------------------------------------- acceptances (POST)

# (case, token arguments)  # why
ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("v1, application ID URI audience", {}),  # what a Logic App's managed identity gets by default
    ("v1, client id audience", {"audience": "client"}),  # a v1 token requested for the client id
    ("v2, client id audience", {"version": "2.0"}),  # a registration with requestedAccessTokenVersion 2
    ("expired 299 s ago: inside the leeway", {"now": NOW - 3600 - 299}),
    ("nbf 299 s ahead: inside the leeway", {"nbf": NOW + 299, "iat": NOW + 299}),
    ("both roles", {"roles": (IMPORT, READ)}),
]


@pytest.mark.parametrize(("case", "kw"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_post_acceptances_queue_a_job_that_names_its_submitter(entra_functions, entra, make_runtime, case, kw):
    rt = make_runtime()
    if kw.get("audience") == "client":
        kw = {**kw, "audience": entra.client_id}
    version = kw.get("version", "1.0")
    code, body, headers = post(entra_functions, {**bearer(tok(entra, **kw)), "Prefer": "respond-async"})
    assert code == 202, body
    assert "code=" not in headers["Location"]  # no function key to carry
    record = rt.jobs.get(body["id"])[0]
    claim = "azp" if version == "2.0" else "appid"
    assert record.submitter == {"oid": DEFAULT_CALLER_OID, claim: DEFAULT_CALLER_APPID}


def test_bearer_scheme_is_case_insensitive(entra_functions, entra, make_runtime):
    make_runtime()
    code, _body, _ = post(entra_functions, {"authorization": f"bearer   {tok(entra)}", "Prefer": "respond-async"})
    assert code == 202


def test_a_rotated_key_is_fetched_after_the_cooldown(entra_functions, entra, make_runtime):
    """Keys are cached: a new kid right after a fetch is refused without another fetch (PyJWT's cooldown, 3 s
    here, 30 s in production); once the cooldown has passed, the unknown kid refreshes the keys once and passes."""
    make_runtime()
    settings = auth.AuthSettings.from_env(entra.env())
    cooldown = 3.0
    keys = entra_keys.EntraKeys(settings, cooldown=cooldown)
    auth.set_authenticator(auth.Authenticator(settings, keys, clock=lambda: NOW))
    rotated = entra.add_key(publish=False)  # made now: generating an RSA key takes a while
    before = entra.key_fetches()
    assert post(entra_functions, {**bearer(tok(entra)), "Prefer": "respond-async"})[0] == 202
    assert entra.key_fetches() == before + 1
    fetched = entra.key_fetched_at
    assert fetched is not None
    old = entra.current_kid
    entra.publish(rotated)  # the tenant rotates: a new key, published, signs new tokens
    try:
        code, body, _ = post(entra_functions, bearer(tok(entra)))
        assert time.monotonic() - fetched < cooldown, "too slow to be inside the cooldown"
        assert code == 401 and "does not publish" in body["error"]["message"]
        assert entra.key_fetches() == before + 1  # inside the cooldown: no refresh
        assert post(entra_functions, {**bearer(tok(entra, kid=old)), "Prefer": "respond-async"})[0] == 202
        assert entra.key_fetches() == before + 1  # the old key: cached
        time.sleep(max(0.0, fetched + cooldown + 0.1 - time.monotonic()))
        assert post(entra_functions, {**bearer(tok(entra)), "Prefer": "respond-async"})[0] == 202
        assert entra.key_fetches() == before + 2
        assert post(entra_functions, {**bearer(tok(entra, kid=old)), "Prefer": "respond-async"})[0] == 202
        assert entra.key_fetches() == before + 2  # the old key is still published, and both are cached
    finally:
        entra.current_kid = old


# --------------------------------------------------------------------------------------- the status route


def test_status_route_answers_the_submitter_and_readers_only(entra_functions, entra, make_runtime, blob_service,
                                                             app_env):  # fmt: skip
    rt = make_runtime()
    owner = bearer(tok(entra))
    code, pending, headers = post(entra_functions, {**owner, "Prefer": "respond-async"}, body_of(hex_value("own-1")))
    assert code == 202
    job_id = pending["id"]
    assert headers["Location"].endswith(f"/api/indicators/import/jobs/{job_id}")

    other = bearer(tok(entra, oid=OTHER_OID, client_id=OTHER_APPID))
    same_oid_other_app = bearer(tok(entra, client_id=OTHER_APPID))
    reader = bearer(tok(entra, oid=READER_OID, client_id=READER_APPID, roles=(READ,)))
    for name, headers_, want in [
        ("another importer", other, 403),
        ("same oid, another client", same_oid_other_app, 403),
        ("another importer claiming the owner in principal headers", {**other, **principal_headers(DEFAULT_CALLER_OID)},
         403),
        ("no role", bearer(tok(entra, roles=())), 403),
        ("no token", {}, 401),
        ("the owner", owner, None),
        ("the owner with a v2 token", bearer(tok(entra, version="2.0")), None),  # same oid and client id, as azp
        ("a reader", reader, None),
    ]:  # fmt: skip
        code, body, answer = get(entra_functions, job_id, headers_)
        if want is None:
            assert code in (200, 202), (name, body)
        else:
            assert code == want, (name, body)
            assert answer["WWW-Authenticate"].startswith("Bearer")
            assert "id" not in body and "value" not in body  # nothing about the job
    # An unknown id is 404 for any caller allowed on the route.
    assert get(entra_functions, uuid.uuid4().hex, owner)[0] == 404

    end = time.monotonic() + 60
    while True:
        code, final, _ = get(entra_functions, job_id, owner)  # the same caller polls, as a Logic App does
        if code == 200:
            break
        assert code == 202 and time.monotonic() < end
        time.sleep(0.2)
    assert final["summary"]["submitted"] == 1
    report = json.loads(blob_service.get_blob_client(app_env["REPORTS_CONTAINER"], final["report"])
                        .download_blob().readall())  # fmt: skip
    assert report["source"]["submitter"] == {"oid": DEFAULT_CALLER_OID, "appid": DEFAULT_CALLER_APPID}
    page = blob_service.get_blob_client(app_env["REPORTS_CONTAINER"], final["report"][: -len("json")] + "html")
    assert f"oid={DEFAULT_CALLER_OID} appid={DEFAULT_CALLER_APPID}" in page.download_blob().readall().decode()
    assert rt.jobs.get(job_id)[0].submitter == {"oid": DEFAULT_CALLER_OID, "appid": DEFAULT_CALLER_APPID}
    # A reader sees the final answer too; another importer still does not.
    assert get(entra_functions, job_id, reader)[0] == 200
    assert get(entra_functions, job_id, other)[0] == 403


def test_jobs_without_a_submitter_are_for_readers_only(entra_functions, entra, functions, make_runtime):
    """A job posted with a function key (before the switch) names nobody: Indicators.Import does not own it."""
    rt = make_runtime()
    req = func.HttpRequest(method="POST", url=URL, params={}, body=body_of(hex_value("keyed")),
                           headers={"Content-Type": "application/json", "Prefer": "respond-async"})  # fmt: skip
    resp = asyncio.run(functions["import_indicators"].get_user_function()(req, Ctx()))
    job_id = json.loads(resp.get_body())["id"]
    assert rt.jobs.get(job_id)[0].submitter is None
    assert get(entra_functions, job_id, bearer(tok(entra)))[0] == 403
    assert get(entra_functions, job_id, bearer(tok(entra, roles=(READ,))))[0] in (200, 202)


# --------------------------------------------------------------------------------------- function keys: nothing changes


def test_function_key_mode_ignores_tokens_and_names_no_submitter(functions, make_runtime, blob_service, app_env):
    """The session's app (HTTP_AUTH unset): routes keep FUNCTION, an Authorization header is neither required nor
    looked at, the record's submitter is None and the report says so (`source.submitter: null`)."""
    rt = make_runtime()
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
        req = func.HttpRequest(method="POST", url=URL, params={"code": "k"}, body=body_of(hex_value(str(headers))),
                               headers={"Content-Type": "application/json", **headers})  # fmt: skip
        resp = asyncio.run(functions["import_indicators"].get_user_function()(req, Ctx()))
        answer = json.loads(resp.get_body())
        assert resp.status_code == 200, answer
        report = json.loads(blob_service.get_blob_client(app_env["REPORTS_CONTAINER"], answer["report"])
                            .download_blob().readall())  # fmt: skip
        assert report["source"]["submitter"] is None
    assert all(r.submitter is None for r in rt.jobs.records())


# --------------------------------------------------------------------------------------- indexed auth level, per mode


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("entra", "ANONYMOUS"),
        ("function-key", "FUNCTION"),
        ("", "FUNCTION"),
        (None, "FUNCTION"),
        ("Entra", "FUNCTION"),  # exact value only: a typo keeps the keys
        (" entra", "FUNCTION"),
        ("entra-id", "FUNCTION"),
        ("anonymous", "FUNCTION"),
    ],
)
def test_auth_level_indexed_in_a_fresh_interpreter(value, level):
    import os

    code = (
        "import json, function_app\n"
        "print(json.dumps({f.get_function_name(): json.loads(f.get_function_json())['bindings'][0].get('authLevel')"
        " for f in function_app.app.get_functions()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "HTTP_AUTH"}
    if value is not None:
        env["HTTP_AUTH"] = value
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    levels = json.loads(out.stdout)
    assert levels["import_indicators"] == levels["import_job_status"] == level
    assert levels["health"] == "FUNCTION"  # in every mode


# --------------------------------------------------------------------------------------- health


def test_health_names_the_mode_and_whether_its_settings_are_complete(signer):
    base = {"IndicatorStorage": "UseDevelopmentStorage=true"}
    answer = health.health_answer(base, with_jobs=False).body
    assert answer["httpAuth"] == {"mode": "function-key"}
    token = signer.token()
    env = {**base, **signer.env(), "HTTP_AUTHORIZATION_SAMPLE": token}
    answer = health.health_answer(env, with_jobs=False, http_auth="entra").body
    assert answer["httpAuth"] == {"mode": "entra", "complete": True, "tenantId": signer.tenant_id,
                                  "audiences": [signer.app_id_uri, signer.client_id],
                                  "authorityHost": signer.base_url}  # fmt: skip
    assert answer["configurationComplete"] is True and token not in json.dumps(answer)
    incomplete = {k: v for k, v in env.items() if k != "HTTP_AUTH_AUDIENCE"}
    answer = health.health_answer(incomplete, with_jobs=False, http_auth="entra").body
    assert answer["httpAuth"] == {"mode": "entra", "complete": False}
    assert answer["configurationComplete"] is False
    assert any("HTTP_AUTH_AUDIENCE is missing" in p for p in answer["problems"])
    answer = health.health_answer({**base, "HTTP_AUTH": "Entra"}, with_jobs=False).body
    assert answer["httpAuth"] == {"mode": "function-key", "invalidValue": "Entra"}
    assert any("HTTP_AUTH must be function-key or entra" in p for p in answer["problems"])


def test_health_route_reports_the_indexed_mode(entra_functions, signer, monkeypatch):
    for k, v in signer.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("HTTP_AUTH", "function-key")  # changed after start: the indexed mode still rules
    monkeypatch.setenv("IndicatorStorage", "UseDevelopmentStorage=true")
    monkeypatch.setattr(health, "job_counts", lambda env, options: {})
    req = func.HttpRequest(method="GET", url="https://h.example/api/health", params={}, body=b"", headers={})
    body = json.loads(entra_functions["health"].get_user_function()(req).get_body())
    assert body["httpAuth"]["mode"] == "entra" and body["httpAuth"]["complete"] is True
    runtime.set_runtime(None)
