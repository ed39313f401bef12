"""The pieces behind HTTP_AUTH=entra (`shared.app.auth`) on their own: which HTTP_AUTH values turn tokens on,
what makes the token settings incomplete, the tenant's metadata and keys (issuers from both OpenID documents,
caching, the refresh cooldown kept by the app where PyJWT has none, a failed fetch), ownership of a job, and that
the module loads no `azure.*`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from localdev.entra_signer import EntraSigner
from shared.app import auth, entra_keys
from tests.conftest import REPO

TENANT = "7f0c4a1e-0000-4000-8000-0000000e1e1d"


@pytest.fixture(scope="module")
def signer() -> Iterator[EntraSigner]:
    s = EntraSigner()
    s.start()
    yield s
    s.stop()


# (value, mode in effect, a problem?)  # why
MODES = [
    (None, "function-key", False),  # unset: today's behaviour
    ("", "function-key", False),
    ("function-key", "function-key", False),
    ("entra", "entra", False),
    ("Entra", "function-key", True),  # exact value only: a typo must not open the routes
    ("entra ", "function-key", True),
    ("FUNCTION-KEY", "function-key", True),
    ("anonymous", "function-key", True),
]


@pytest.mark.parametrize(("value", "mode", "problem"), MODES)
def test_http_auth_mode(value, mode, problem):
    got, why = auth.http_auth_mode(value)
    assert got == mode and (why is not None) == problem


GOOD = {"HTTP_AUTH_TENANT_ID": TENANT, "HTTP_AUTH_AUDIENCE": "api://x/ioc, 3b5c9d2a-0000-4000-8000-00000000a7b1"}
# (changes, problem words or None)  # why
SETTINGS = [
    ({}, None),
    ({"HTTP_AUTH_TENANT_ID": "contoso.onmicrosoft.com"}, None),  # a tenant domain works too
    ({"HTTP_AUTH_TENANT_ID": ""}, "HTTP_AUTH_TENANT_ID is missing"),
    ({"HTTP_AUTH_TENANT_ID": "common"}, "tenant's id or domain"),  # multi-tenant: no token's issuer matches
    ({"HTTP_AUTH_TENANT_ID": "organizations"}, "tenant's id or domain"),
    ({"HTTP_AUTH_TENANT_ID": "x/../y"}, "tenant's id or domain"),  # it goes into a URL path
    ({"HTTP_AUTH_AUDIENCE": " , "}, "HTTP_AUTH_AUDIENCE is missing"),
    ({"HTTP_AUTH_AUTHORITY_HOST": "http://login.microsoftonline.com"}, "must be https"),
    ({"HTTP_AUTH_AUTHORITY_HOST": "http://127.0.0.1:8080"}, None),  # loopback, as for DEFENDER_API_URL
    ({"HTTP_AUTH_AUTHORITY_HOST": "https://login.microsoftonline.us/"}, None),  # GCC High; the slash is dropped
]


@pytest.mark.parametrize(("changes", "words"), SETTINGS)
def test_token_settings(changes, words):
    env = {**GOOD, **changes}
    problems = auth.auth_settings_problems(env)
    if words is None:
        assert problems == []
        settings = auth.AuthSettings.from_env(env)
        assert settings.audiences == ("api://x/ioc", "3b5c9d2a-0000-4000-8000-00000000a7b1")
        assert not settings.authority_host.endswith("/")
    else:
        assert len(problems) == 1 and words in problems[0]
        with pytest.raises(auth.AuthSettingsError, match="HTTP_AUTH"):
            auth.AuthSettings.from_env(env)


def test_default_authority_and_metadata_urls():
    settings = auth.AuthSettings.from_env(GOOD)
    assert settings.authority_host == "https://login.microsoftonline.com"
    assert settings.metadata_urls() == (
        f"https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/openid-configuration",
        f"https://login.microsoftonline.com/{TENANT}/.well-known/openid-configuration",
    )


def test_issuers_come_from_both_documents_not_from_code(signer):
    settings = auth.AuthSettings.from_env(signer.env())
    keys = entra_keys.EntraKeys(settings)
    v1, v2 = f"https://sts.windows.net/{signer.tenant_id}/", f"{signer.base_url}/{signer.tenant_id}/v2.0"
    assert keys.issuers() == {v1, v2}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("native", [True, False], ids=["PyJWT cooldown", "own cooldown"])
def test_unknown_kid_refreshes_once_per_cooldown(signer, native):
    if native and not entra_keys._native_cooldown():
        pytest.skip("this PyJWT has no cooldown_duration (< 2.14): the app keeps the cooldown itself")
    settings = auth.AuthSettings.from_env(signer.env())
    clock = FakeClock()
    cooldown = 1.0 if native else 30.0  # PyJWT's cooldown runs on its own monotonic clock
    keys = entra_keys.EntraKeys(settings, cooldown=cooldown, clock=clock, native_cooldown=native)
    first = signer.current_kid
    new = signer.add_key(publish=False)  # made now: generating an RSA key takes a while
    start = signer.key_fetches()
    assert keys.signing_key(first).key_id == first
    assert signer.key_fetches() == start + 1
    assert keys.signing_key(first).key_id == first
    assert signer.key_fetches() == start + 1  # cached
    signer.publish(new, current=False)
    for _ in range(5):  # a burst of unknown kids inside the cooldown: no fetch at all
        with pytest.raises(entra_keys.UnknownKey):
            keys.signing_key(new)
    assert signer.key_fetches() == start + 1
    if native:
        import time

        time.sleep(cooldown + 0.05)
    else:
        clock.now += 30.0
    assert keys.signing_key(new).key_id == new
    assert signer.key_fetches() == start + 2
    with pytest.raises(entra_keys.UnknownKey):
        keys.signing_key("never-published")
    assert signer.key_fetches() == start + 2  # the refresh just happened: cooling down again


def test_metadata_failure_is_503_backs_off_and_keeps_what_was_read(signer):
    settings = auth.AuthSettings.from_env(signer.env())
    clock = FakeClock()
    calls: list[str] = []
    fail = {"on": True}

    def get_json(url: str, timeout: float) -> dict[str, Any]:
        calls.append(url)
        if fail["on"]:
            raise entra_keys.KeysUnavailable(f"{url} answered 503")
        return entra_keys._get_json(url, timeout)

    keys = entra_keys.EntraKeys(settings, clock=clock, get_json=get_json)
    validator = auth.Authenticator(settings, keys)
    with pytest.raises(auth.Refused) as refused:
        validator.validate(signer.token())
    assert refused.value.status == 503 and refused.value.answer().headers == {"Retry-After": "30"}
    with pytest.raises(entra_keys.KeysUnavailable):
        keys.issuers()
    assert len(calls) == 1  # backing off: no second call within FAILURE_BACKOFF_SECONDS
    clock.now += entra_keys.FAILURE_BACKOFF_SECONDS
    fail["on"] = False
    assert validator.validate(signer.token()).oid
    assert len(calls) == 3  # v2 and v1 documents
    fail["on"] = True
    clock.now += entra_keys.METADATA_TTL_SECONDS  # due for a refresh, which fails: the documents read before stay
    assert validator.validate(signer.token()).oid
    assert validator.validate(signer.token()).oid  # and during the back-off after that failure
    assert len(calls) == 4


def test_an_http_jwks_uri_off_loopback_is_refused(signer):
    settings = auth.AuthSettings.from_env(signer.env())

    def get_json(url: str, timeout: float) -> dict[str, Any]:
        return {"issuer": "https://sts.windows.net/x/", "jwks_uri": "http://keys.example.net/keys"}

    with pytest.raises(entra_keys.KeysUnavailable, match="https jwks_uri"):
        entra_keys.EntraKeys(settings, get_json=get_json).issuers()


# (submitter, owns?)  # why
OWNERSHIP = [
    ({"oid": "o1", "appid": "a1"}, True),
    ({"oid": "o1", "azp": "a1"}, True),  # the same caller with a v2 token
    ({"oid": "o1", "appid": "a2"}, False),  # another client of the same principal
    ({"oid": "o2", "appid": "a1"}, False),
    ({"oid": "o1"}, False),
    ({}, False),
    (None, False),  # a job posted with a function key names nobody
]


@pytest.mark.parametrize(("submitter", "owns"), OWNERSHIP)
def test_ownership_is_oid_and_client_id(submitter, owns):
    importer = auth.Caller(oid="o1", client_id="a1", client_claim="appid", roles=frozenset({auth.IMPORT_ROLE}))
    reader = auth.Caller(oid="o9", client_id="a9", client_claim="azp", roles=frozenset({auth.READ_ROLE}))
    nobody = auth.Caller(oid="o1", client_id="a1", client_claim="appid")
    assert importer.owns(submitter) is owns and importer.may_read(submitter) is owns
    assert reader.may_read(submitter) is True
    assert nobody.may_read(submitter) is False


def test_challenge_quotes_are_safe():
    answer = auth.Refused(401, 'the token\'s algorithm "x" is not accepted', error="invalid_token").answer()
    header = answer.headers["WWW-Authenticate"]
    assert header == "Bearer error=\"invalid_token\", error_description=\"the token's algorithm 'x' is not accepted\""


def test_the_module_loads_no_azure_package():
    code = (
        "import sys, json; import shared.app.auth\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('azure'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
