"""A scripted `requests.Session` and a fake clock for client tests: no sockets, no real time.

Each step of a script answers one request: a `requests.Response`, an exception to raise, or a callable
`(Call) -> Response | Exception` for replies that depend on the body (bisection). Every request is
recorded with the fake time at which it was sent.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

from shared.core.model import Action, Indicator, IndicatorType, Outcome
from shared.defender.client import DefenderClient
from shared.defender.pacing import CallPacer
from shared.defender.policy import ClientClock, ClientPolicy


class FakeClock:
    """`clock()` and `sleep(s)` over a number that only moves when someone sleeps."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Call:
    method: str
    url: str
    params: dict[str, str] | None
    body: Any
    headers: dict[str, str]
    at: float

    @property
    def values(self) -> list[str]:
        return [i["indicatorValue"] for i in self.body["Indicators"]]


def response(status: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None):
    r = requests.Response()
    r.status_code = status
    r.headers = CaseInsensitiveDict(headers or {})
    if raw is not None:
        r._content = raw
    elif body is not None:
        r._content = json.dumps(body).encode()
        r.headers.setdefault("Content-Type", "application/json")
    else:
        r._content = b""
    return r


def ok_for(call: Call, *, shuffle: bool = False, failed: Iterable[str] = ()) -> requests.Response:
    """Defender's 200 answer to an import call: one result per indicator, ids from the value."""
    bad = set(failed)
    value = [
        {
            "id": f"id-{v}",
            "indicator": v,
            "isFailed": v in bad,
            "failureReason": "rejected by test" if v in bad else None,
        }
        for v in call.values
    ]
    if shuffle:
        value.reverse()
        value = value[1::2] + value[0::2]
    return response(200, {"value": value})


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> requests.Response:
    return response(status, {"error": {"code": code, "message": message, "target": "t-1"}}, headers)


Step = requests.Response | Exception | Callable[[Call], "requests.Response | Exception"]


@dataclass
class ScriptedSession:
    """Answers requests from a script; `default` answers when the script runs out (None: fail)."""

    clock: FakeClock
    steps: deque[Step] = field(default_factory=deque)
    default: Callable[[Call], requests.Response | Exception] | None = None
    latency: float = 0.0
    calls: list[Call] = field(default_factory=list)

    def script(self, *steps: Step) -> ScriptedSession:
        self.steps.extend(steps)
        return self

    def request(self, method, url, params=None, data=None, headers=None, timeout=None):
        assert timeout is not None, "every call needs explicit timeouts"
        body = json.loads(data) if data else None
        call = Call(method, url, dict(params) if params else None, body, dict(headers or {}), self.clock.now)
        self.calls.append(call)
        self.clock.now += self.latency
        if self.steps:
            step = self.steps.popleft()
        elif self.default is not None:
            step = self.default
        else:
            raise AssertionError(f"unexpected call {method} {url}: the script is exhausted")
        reply = step(call) if callable(step) and not isinstance(step, requests.Response) else step
        if isinstance(reply, Exception):
            raise reply
        return reply

    def close(self) -> None:
        pass


@dataclass
class FakeToken:
    token: str
    expires_on: int


class FakeCredential:
    """Hands out the given tokens in turn (the last one repeats), like a cache that keeps its token."""

    def __init__(self, *tokens: str, expires_on: int = 4_000_000_000) -> None:
        self.tokens = list(tokens)
        self.expires_on = expires_on
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> FakeToken:
        self.scopes.append(scopes)
        tok = self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0]
        return FakeToken(tok, self.expires_on)


API = "https://defender.test"
SCOPE = "https://api.securitycenter.microsoft.com/.default"


def make(
    session: ScriptedSession,
    *,
    credential: Any = None,
    max_calls: int = 30,
    window: float = 60.0,
    **options: Any,
) -> DefenderClient:
    clock = session.clock
    pacer = CallPacer(max_calls, window, clock=clock, sleep=clock.sleep)
    policy = {k: options.pop(k) for k in POLICY_FIELDS if k in options}
    policy.setdefault("backoff_jitter", 0.0)
    return DefenderClient(
        API,
        credential or FakeCredential("token-one"),
        scope=SCOPE,
        pacer=pacer,
        policy=ClientPolicy(**policy),
        session=session,  # type: ignore[arg-type]
        clock=ClientClock(monotonic=clock, sleep=clock.sleep),
        **options,
    )


POLICY_FIELDS = ("timeout", "max_attempts", "retry_after_max", "backoff_factor", "backoff_max", "backoff_jitter")


def outcomes(n: int, prefix: str = "") -> list[Outcome]:
    """`n` pending outcomes of distinct SHA-256 values (line i+1)."""
    out = []
    for i in range(n):
        value = hashlib.sha256(f"{prefix}{i}".encode()).hexdigest()
        ind = Indicator(
            indicatorValue=value,
            indicatorType=IndicatorType.FileSha256,
            action=Action.Block,
            title="t",
            description="d",
        )
        out.append(
            Outcome(
                line=i + 1,
                value=value,
                type=ind.indicatorType.value,
                action=ind.action.value,
                status=None,
                indicator=ind,
            )
        )
    return out
