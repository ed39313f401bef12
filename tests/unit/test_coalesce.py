"""Coalesced batches (pipeline/coalesce.py, tenant/drain.py): the decided semantics, table by table, with a
scripted client (no I/O): shared bodies, identical entries riding on the first, conflicting ones in a later
body, per-job call counts, a stop error reaching every job, the drain's view and room following results."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from shared.core.errors import DefenderError, DefenderUnavailable
from shared.core.model import Action, Indicator, IndicatorType, Outcome, Severity, Status
from shared.pipeline.coalesce import SAME_AS_EARLIER, Coalescer
from shared.tenant.drain import DrainTenant
from shared.tenant.records import TenantView

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class Client:
    """Import calls as a list of bodies; ids handed out in order."""

    def __init__(self, fail: DefenderError | None = None) -> None:
        self.bodies: list[list[str]] = []
        self.retries = 0
        self.fail = fail
        self._next = 100

    def submit(self, batch: list[Outcome]) -> list[Outcome]:
        self.bodies.append([o.value for o in batch])
        if self.fail is not None:
            raise self.fail
        out = []
        for o in batch:
            self._next += 1
            out.append(o.final(Status.submitted, id=str(self._next), code="submitted"))
        return out


def pending(line: int, value: str, *, severity: Severity | None = None) -> Outcome:
    ind = Indicator(indicatorValue=value, indicatorType=IndicatorType.DomainName, action=Action.Block, title="t",
                    description="d", severity=severity)  # fmt: skip
    return Outcome(line=line, value=value, type="DomainName", action="Block", status=None, indicator=ind)


def drain(room_reserve: int = 0, records: list[dict[str, object]] | None = None) -> DrainTenant:
    return DrainTenant(TenantView(records or [], now=NOW), max_tenant_indicators=15000, capacity_reserve=room_reserve)


def run_jobs(coalescer: Coalescer, jobs: list[list[Outcome]]) -> tuple[list[list[Outcome]], list[object]]:
    """Each job submits its batch from its own thread (as the drain's jobs do); results per job."""
    members = [coalescer.member() for _ in jobs]
    results: list[list[Outcome]] = [[] for _ in jobs]
    errors: list[object] = [None] * len(jobs)

    def go(i: int) -> None:
        try:
            results[i] = members[i].submit(jobs[i])
        except DefenderError as e:
            errors[i] = e
        finally:
            members[i].finished()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results, errors


def test_many_small_jobs_share_one_call_and_count_it_each():
    client = Client()
    c = Coalescer(client, batch_size=500, window_seconds=5, drain=drain())
    jobs = [[pending(1, f"a{i}.example.com"), pending(2, f"b{i}.example.com")] for i in range(50)]
    results, errors = run_jobs(c, jobs)
    assert errors == [None] * 50
    assert len(client.bodies) == 1 and len(client.bodies[0]) == 100  # one call for all: no window wait needed
    assert all([r.status for r in res] == [Status.submitted, Status.submitted] for res in results)
    assert [[r.value for r in res] for res in results] == [[o.value for o in job] for job in jobs]  # own order
    assert c.calls == 1


@pytest.mark.parametrize(
    ("first", "second", "bodies", "second_status", "why"),
    [
        (pending(1, "same.example.com"), pending(1, "same.example.com"), 1, Status.unchanged,
         "identical: rides on the first entry, `unchanged` with its id"),
        (pending(1, "same.example.com"), pending(1, "same.example.com", severity=Severity.High), 2, Status.submitted,
         "conflicting fields never share a body: the later one goes next, an update"),
    ],
)  # fmt: skip
def test_two_jobs_with_the_same_value(first, second, bodies, second_status, why):
    client = Client()
    c = Coalescer(client, batch_size=500, window_seconds=5, drain=drain())
    (a,), (b,) = run_jobs(c, [[first], [second]])[0]
    assert len(client.bodies) == bodies, why
    assert a.status is Status.submitted and b.status is second_status, why
    if second_status is Status.unchanged:
        assert b.id == a.id and SAME_AS_EARLIER in (b.reason or "")
        assert c.calls == 1
    else:
        assert client.bodies == [["same.example.com"], ["same.example.com"]]


def test_bodies_never_pass_the_batch_size():
    client = Client()
    c = Coalescer(client, batch_size=3, window_seconds=5, drain=drain())
    jobs = [[pending(i, f"x{j}-{i}.example.com") for i in range(2)] for j in range(4)]  # 8 entries
    results, _ = run_jobs(c, jobs)
    assert [len(b) for b in client.bodies] in ([3, 3, 2], [3, 2, 3], [2, 3, 3])
    assert sum(len(r) for r in results) == 8


def test_a_stop_error_reaches_every_job_and_nothing_is_settled_wrongly():
    client = Client(fail=DefenderUnavailable("Defender could not be reached"))
    c = Coalescer(client, batch_size=500, window_seconds=5, drain=drain())
    results, errors = run_jobs(c, [[pending(1, "a.example.com")], [pending(1, "b.example.com")]])
    assert all(isinstance(e, DefenderUnavailable) for e in errors)  # each job goes down its retry path
    assert results == [[], []]


def test_a_body_that_fails_for_good_fails_its_entries_and_the_drain_goes_on():
    client = Client(fail=DefenderError("Defender rejected the batch: InvalidRequestBody"))
    c = Coalescer(client, batch_size=500, window_seconds=5, drain=drain())
    results, errors = run_jobs(c, [[pending(1, "a.example.com")]])
    assert errors == [None]
    assert results[0][0].status is Status.failed and "InvalidRequestBody" in results[0][0].reason


def test_the_drain_view_follows_results_and_the_room_goes_in_arrival_order():
    d = drain(room_reserve=14998)  # room for 2 new indicators
    assert d.room_left() == 2
    d.took(1)  # the first job of the drain was given room for one
    assert d.room_left() == 1
    d.took(5)
    assert d.room_left() == 0  # never below 0: later jobs get none
    c = Coalescer(Client(), batch_size=500, window_seconds=5, drain=d, created_by="app-guid")
    (res,), _ = run_jobs(c, [[pending(1, "new.example.com")]])
    (rec,) = d.view.get("DomainName", "new.example.com")
    assert rec.id == res[0].id and rec.createdBy == "app-guid" and rec.action == "Block"
    assert d.view.active_count == 1
