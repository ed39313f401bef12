"""`DefenderClient.identity_ids`: who the client calls Defender as, from its token's claims, without ever
handing out or logging the token (the quota steward's ownership check, defender-api.md §5)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from shared.core.errors import IdentityUnavailable
from shared.defender import wire
from tests.client.scripted import FakeClock, FakeCredential, ScriptedSession, make


def jwt(claims: dict[str, Any], tag: str) -> str:
    def enc(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    return f"{enc({'alg': 'HS256'})}.{enc(claims)}.{tag}"


@pytest.fixture
def session() -> ScriptedSession:
    return ScriptedSession(FakeClock())


@pytest.mark.parametrize(
    ("claims", "ids"),
    [
        ({"appid": "app-1", "oid": "obj-1"}, ("app-1", "obj-1")),  # v1 app token: appid + object id
        ({"azp": "app-2", "oid": "obj-2"}, ("app-2", "obj-2")),  # v2 token: azp
        ({"appid": "same", "azp": "same", "oid": "same"}, ("same",)),  # deduplicated
        ({"appid": " padded ", "oid": ""}, ("padded",)),
        ({"appid": 42, "oid": None, "roles": ["Ti.ReadWrite.All"]}, ()),  # not strings: ignored
        ({}, ()),
    ],
)
def test_identity_ids_from_claims(claims: dict[str, Any], ids: tuple[str, ...]) -> None:
    assert wire.identity_ids(claims) == ids


def test_client_identity_gets_a_token_and_never_returns_it(
    session: ScriptedSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = jwt({"appid": "app-guid", "oid": "obj-guid", "aud": "x"}, "sig-secret")
    cred = FakeCredential(token)
    client = make(session, credential=cred)
    ids = client.identity_ids()
    assert ids == ("app-guid", "obj-guid")
    assert len(cred.scopes) == 1 and session.calls == []  # a token, no Defender call
    assert client.identity_ids() == ids and len(cred.scopes) == 1  # the cached token is reused
    everything = repr(ids) + "\n".join(r.getMessage() for r in caplog.records)
    assert "sig-secret" not in everything and token not in everything


def test_undecodable_token_falls_back_to_the_mark_and_logs_once(
    session: ScriptedSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared.defender")
    client = make(session, credential=FakeCredential("opaque-token-not-a-jwt"))
    assert client.identity_ids() == ()
    assert client.identity_ids() == ()
    infos = [r for r in caplog.records if "identity claims" in r.getMessage()]
    assert len(infos) == 1 and infos[0].levelno == logging.INFO
    assert "externalId mark alone" in infos[0].getMessage()
    assert "opaque-token-not-a-jwt" not in caplog.text


def test_identity_failure_raises_like_any_call(session: ScriptedSession) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    class Broken:
        def get_token(self, *scopes: str, **kw: object) -> None:
            raise ClientAuthenticationError("ManagedIdentityCredential authentication unavailable")

    with pytest.raises(IdentityUnavailable):
        make(session, credential=Broken()).identity_ids()
