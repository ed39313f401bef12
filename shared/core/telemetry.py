"""What the app reports to Application Insights: the instrument and attribute names, in one place, and the
no-op `Telemetry` every layer calls when telemetry is off. Pure: no I/O, no opentelemetry import.

The names are the contract of the queries under `infra/queries/` (alerts and the workbook); a test reads those
files and checks every metric and attribute they use against the names here. The OpenTelemetry-backed
implementation lives in `shared.app.telemetry` and is installed with `install()` on the first invocation when
`APPLICATIONINSIGHTS_CONNECTION_STRING` is set; until then `current()` is the no-op.

Cheap by construction: indicators are counted once per run from a per-run tally (`RunTally`), never per entry
through the OpenTelemetry API; Defender calls (a few a minute) get one span each.

What may go into an attribute: names from the code (kinds, statuses, codes, types, outcomes), numbers, the
tenant key and route templates. Never an indicator value, a URL with its query, a token, a key or a header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from shared.core.model import IndicatorType, Outcome

# ---------------------------------------------------------------------------------------------- instruments
INDICATORS = "ioc.indicators"  # counter: indicator entries by final status, type and code (per run)
DEFENDER_CALLS = "ioc.defender.calls"  # counter: HTTP attempts sent to Defender, by kind and status code
DEFENDER_RETRIES = "ioc.defender.retries"  # counter: attempts beyond the first of a call, by kind
DEFENDER_THROTTLED = "ioc.defender.throttled"  # counter: 429 answers, by kind
JOBS = "ioc.jobs"  # counter: job attempts by outcome (completed, failed, retried, poisoned), kind, run status
TENANT_ACTIVE = "ioc.tenant.active"  # gauge: the tenant's active indicators after the last job, per tenant key
TENANT_ROOM = "ioc.tenant.room"  # gauge: room left under the cap minus the reserve, per tenant key
TENANT_CAP = "ioc.tenant.cap"  # gauge: MAX_TENANT_INDICATORS, per tenant key

COUNTERS = (INDICATORS, DEFENDER_CALLS, DEFENDER_RETRIES, DEFENDER_THROTTLED, JOBS)
GAUGES = (TENANT_ACTIVE, TENANT_ROOM, TENANT_CAP)

# ---------------------------------------------------------------------------------------------------- spans
JOB_SPAN = "ioc.job"
DEFENDER_CALL_SPAN = "ioc.defender.call"
SPANS = (JOB_SPAN, DEFENDER_CALL_SPAN)

# ----------------------------------------------------------------------------------------------- attributes
STATUS = "status"  # an indicator's final status, or a job's run status
TYPE = "type"  # an indicator type (IndicatorType), "other" for anything else
CODE = "code"  # the report code behind an indicator's status
KIND = "kind"  # Defender call: import | list | delete; job: blob | http
STATUS_CODE = "status_code"  # HTTP status of a Defender answer; 0 when none came (network error)
METHOD = "method"
ROUTE = "route"  # the path template, never the query: /api/indicators, /api/indicators/{id}
ATTEMPT = "attempt"  # 1 for the first attempt of a call
WAIT = "wait_seconds"  # time waited before this attempt (pacing, Retry-After, backoff)
OUTCOME = "outcome"
TENANT = "tenant"  # the tenant key of a job ("default" for the app's own tenant)
JOB_ID = "job_id"
ERROR = "error"  # the error class of a job that stopped, e.g. AccessDenied

METRIC_ATTRIBUTES = {
    INDICATORS: (STATUS, TYPE, CODE),
    DEFENDER_CALLS: (KIND, STATUS_CODE),
    DEFENDER_RETRIES: (KIND,),
    DEFENDER_THROTTLED: (KIND,),
    JOBS: (OUTCOME, KIND, STATUS),
    TENANT_ACTIVE: (TENANT,),
    TENANT_ROOM: (TENANT,),
    TENANT_CAP: (TENANT,),
}
SPAN_ATTRIBUTES = {
    JOB_SPAN: (JOB_ID, KIND, TENANT, ATTEMPT, OUTCOME, STATUS, ERROR),
    DEFENDER_CALL_SPAN: (KIND, METHOD, ROUTE, ATTEMPT, WAIT, STATUS_CODE),
}

# Job outcomes (JOBS): a final run, a run that failed for good, a run that will be retried, and the last
# delivery of a message the host poisons next.
COMPLETED, FAILED, RETRIED, POISONED = "completed", "failed", "retried", "poisoned"
OUTCOMES = (COMPLETED, FAILED, RETRIED, POISONED)

_TYPES = frozenset(t.value for t in IndicatorType)
_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
OTHER = "other"


def type_label(value: str | None) -> str:
    """An indicator type as an attribute: one of Defender's types, else "other" (an invalid row's type is
    whatever the input said: never let it through)."""
    return value if value in _TYPES else OTHER


def code_label(value: str | None, status: str) -> str:
    """A report code as an attribute: the code's own shape (kebab-case, short), else "other"."""
    if value is None:
        return status
    return value if _CODE.match(value) else OTHER


@dataclass
class RunTally:
    """Indicator entries of one run by (status, type, code): one dict increment per entry, sent once per run."""

    counts: dict[tuple[str, str | None, str | None], int] = field(default_factory=dict)

    def add(self, o: Outcome) -> None:
        status = o.status._value_ if o.status is not None else "pending"  # `.value` is a slow descriptor
        key = (status, o.type, o.code)
        self.counts[key] = self.counts.get(key, 0) + 1

    def labelled(self) -> dict[tuple[str, str, str], int]:
        """The counts with every key made safe for an attribute (type_label, code_label), merged."""
        out: dict[tuple[str, str, str], int] = {}
        for (status, type_, code), n in self.counts.items():
            key = (status, type_label(type_), code_label(code, status))
            out[key] = out.get(key, 0) + n
        return out


class CallSpan:
    """What a Defender call's span is told when the answer is in; the no-op version keeps nothing."""

    def answered(self, status_code: int) -> None:
        return None


class JobSpan:
    """What a job's span is told as the job ends; the no-op version keeps nothing."""

    def ended(self, outcome: str, *, status: str | None = None, error: str | None = None) -> None:
        return None


# The no-op's context managers: made once, entered at the cost of two method calls.
_NO_CALL: AbstractContextManager[CallSpan] = nullcontext(CallSpan())
_NO_JOB: AbstractContextManager[JobSpan] = nullcontext(JobSpan())


class Telemetry:
    """The no-op: telemetry off (no connection string). Every method returns at once and costs nothing.

    `shared.app.telemetry.OtelTelemetry` overrides each method with the OpenTelemetry API.
    """

    enabled = False

    def defender_call(
        self, *, kind: str, method: str, route: str, attempt: int, wait: float
    ) -> AbstractContextManager[CallSpan]:
        """One HTTP attempt to Defender (a span); counts the call, a retry (attempt > 1) and a 429."""
        return _NO_CALL

    def job(
        self, *, job_id: str, kind: str, tenant: str, attempt: int, traceparent: str | None = None
    ) -> AbstractContextManager[JobSpan]:
        """One attempt at a job (a span), the child of the host's invocation when `traceparent` is given."""
        return _NO_JOB

    def job_outcome(self, outcome: str, *, kind: str, status: str | None = None) -> None:
        """Count a job attempt by outcome (OUTCOMES)."""
        return None

    def indicators(self, tally: RunTally) -> None:
        """Count one run's indicator entries (INDICATORS) from its tally."""
        return None

    def tenant(self, tenant: str, section: Mapping[str, object] | None) -> None:
        """Record the tenant's active count, room and cap (the report's `tenant` section) for the gauges."""
        return None


NO_TELEMETRY = Telemetry()
_current: Telemetry = NO_TELEMETRY


def current() -> Telemetry:
    """The process's telemetry: the no-op until `shared.app.telemetry` installs the real one."""
    return _current


def install(telemetry: Telemetry | None) -> None:
    """Install the process's telemetry (None: back to the no-op)."""
    global _current
    _current = telemetry or NO_TELEMETRY


__all__ = [
    "COUNTERS",
    "GAUGES",
    "METRIC_ATTRIBUTES",
    "NO_TELEMETRY",
    "OUTCOMES",
    "SPANS",
    "SPAN_ATTRIBUTES",
    "CallSpan",
    "JobSpan",
    "RunTally",
    "Telemetry",
    "code_label",
    "current",
    "install",
    "type_label",
]
