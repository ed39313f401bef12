"""The identity endpoint misbehaving (issue "Hostile and unlucky input"): a hung endpoint is given up on within
the fixed transport bound, and a token answer without `expires_on` is explained, not blamed on the scope."""

from __future__ import annotations

import time

import pytest

from shared.core.errors import IdentityUnavailable
from shared.core.settings import Settings
from shared.defender import credentials
from shared.defender.client import DefenderClient
from shared.defender.pacing import CallPacer


def client(settings: Settings) -> DefenderClient:
    return DefenderClient(
        "http://127.0.0.1:9", credentials.build_credential(settings), scope=settings.defender_token_scope,
        pacer=CallPacer(30, 60.0),
    )  # fmt: skip


def test_a_token_answer_without_expires_on_says_what_it_lacked(identity_env):
    identity_env.configure(omit_expires_on=True)
    with pytest.raises(IdentityUnavailable) as info:
        client(Settings()).identity_ids()
    assert "invalid_scope" in info.value.message
    assert "lacked `expires_on`" in info.value.message


def test_a_hung_identity_endpoint_is_given_up_on_within_the_transport_bound(identity_env, monkeypatch):
    monkeypatch.setattr(
        credentials, "IDENTITY_TRANSPORT", {"connection_timeout": 1, "read_timeout": 1, "retry_total": 1}
    )
    identity_env.configure(delay=30)
    started = time.monotonic()
    with pytest.raises(IdentityUnavailable) as info:
        client(Settings()).identity_ids()
    assert time.monotonic() - started < 10  # two tries of 1 s each, not the 30 s the endpoint hangs
    assert "did not answer in time" in info.value.message
