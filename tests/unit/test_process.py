"""process_stream (STYLE.md "A record's way through"): order, counts, dry run, stop errors, one batch waiting."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from shared.core.errors import AccessDenied, DefenderError, DefenderUnavailable, IdentityUnavailable
from shared.core.model import FileProblem, Ignored, Outcome, RawRow, Status
from shared.core.settings import Settings
from shared.pipeline.process import InternalError, process_stream
from shared.pipeline.reports import ReportWriter

NOW = datetime(2026, 1, 15, tzinfo=UTC)


class Reading(list):
    format = "fake"


class FakeSubmitter:
    """Submits everything; optionally raises on call number `fail_on` (1-based); records calls."""

    def __init__(self, fail_on=None, error=None, partial=0):
        self.api_calls = 0
        self.retries = 0
        self.batches: list[list[int]] = []
        self.fail_on, self.error, self.partial = fail_on, error, partial
        self.written_before_call: list[int] = []
        self.report = None

    def submit(self, batch):
        self.api_calls += 1
        self.retries += 1
        self.batches.append([o.line for o in batch])
        if self.report is not None:
            self.written_before_call.append(self.report.entries)
        if self.api_calls == self.fail_on:
            e = self.error
            e.partial = [o.final(Status.submitted, id=f"id{o.line}") for o in batch[: self.partial]]
            raise e
        return [o.final(Status.submitted, id=f"id{o.line}") for o in batch]


def ip(n: int) -> str:
    return f"8.8.{n // 256}.{n % 256}"


def run(items, *, settings=None, submitter=None, **kw):
    j, c = io.StringIO(), io.StringIO()
    w = ReportWriter(j, c, source={"name": "t"}, started_at=NOW, dry_run=False)
    if isinstance(submitter, FakeSubmitter):
        submitter.report = w
    result = process_stream(
        io.BytesIO(b""), "t.txt", settings=settings or Settings(batch_size=3), submitter=submitter, reports=w,
        source="t.txt", now=NOW, reader=lambda s, n: Reading(items), **kw,
    )  # fmt: skip
    return result, json.loads(j.getvalue())


def mixed_rows(n):
    """Every third row invalid (private IP), the rest valid and distinct."""
    return [RawRow(i, {"value": "10.0.0.1" if i % 3 == 0 else ip(i)}) for i in range(1, n + 1)]


def test_order_is_kept_across_batches_and_counts_add_up():
    sub = FakeSubmitter()
    seen = []
    result, doc = run(mixed_rows(20), submitter=sub, on_batch=lambda d, t: seen.append((d, t)))
    lines = [e["line"] for e in doc["indicators"]]
    assert lines == list(range(1, 21))
    statuses = {e["line"]: e["status"] for e in doc["indicators"]}
    assert all(statuses[i] == ("invalid" if i % 3 == 0 else "submitted") for i in range(1, 21))
    assert doc["indicators"][0]["id"] == "id1"
    assert [len(b) for b in sub.batches] == [3, 3, 3, 3, 2]  # 14 valid in batches of 3
    assert result.summary.total == 20 and result.summary.submitted == 14 and result.summary.invalid == 6
    assert (result.summary.apiCalls, result.summary.retries) == (5, 5)
    assert seen == [(3, 3), (6, 6), (9, 9), (12, 12), (14, 14)]
    assert result.status == "completed_with_errors" and result.format == "fake" and doc["source"]["format"] == "fake"


def test_only_one_batch_waits():
    sub = FakeSubmitter()
    run(mixed_rows(30), submitter=sub)
    # Before each call, every entry before the batch has been written: nothing older than one batch waits.
    for calls, (batch, written) in enumerate(zip(sub.batches, sub.written_before_call, strict=True)):
        assert written == batch[0] - 1, (calls, batch, written)


@pytest.mark.parametrize(("settings", "submitter", "reason"), [
    (Settings(batch_size=3), None, "validation only"),
    (Settings(batch_size=3, dry_run=True), FakeSubmitter(), "dry run"),
])  # fmt: skip
def test_nothing_submitted_without_submitter_or_in_dry_run(settings, submitter, reason):
    result, doc = run(mixed_rows(6), settings=settings, submitter=submitter)
    assert [e["status"] for e in doc["indicators"]] == ["skipped", "skipped", "invalid"] * 2
    assert doc["indicators"][0]["reason"] == reason
    assert result.summary.apiCalls == 0 and (submitter is None or submitter.batches == [])


def test_custom_skip_reason():
    _, doc = run([RawRow(1, {"value": "8.8.8.8"})], skip_reason="no submit")
    assert doc["indicators"][0]["reason"] == "no submit"


@pytest.mark.parametrize("error", [AccessDenied("403: missing Ti.ReadWrite.All", status=403),
                                   DefenderUnavailable("no answer after 6 attempts"),
                                   IdentityUnavailable("no token")])  # fmt: skip
def test_stop_errors_fail_the_batch_and_everything_after(error):
    sub = FakeSubmitter(fail_on=2, error=error, partial=1)
    result, doc = run([RawRow(i, {"value": ip(i)}) for i in range(1, 11)], submitter=sub)
    statuses = [e["status"] for e in doc["indicators"]]
    assert statuses == ["submitted"] * 4 + ["failed"] * 6  # batch 1, then batch 2's settled first entry
    assert doc["indicators"][5]["reason"] == error.message
    assert len(sub.batches) == 2  # no more calls after a stop
    assert result.status == "completed_with_errors"  # Defender was reached for the first batch


def test_unreachable_defender_fails_the_run():
    sub = FakeSubmitter(fail_on=1, error=DefenderUnavailable("connection refused"))
    result, doc = run([RawRow(i, {"value": ip(i)}) for i in range(1, 8)], submitter=sub)
    assert result.status == "failed" and doc["status"] == "failed"
    assert result.summary.failed == 7 and len(sub.batches) == 1


def test_other_defender_errors_fail_only_that_batch():
    sub = FakeSubmitter(fail_on=1, error=DefenderError("weird 418", status=418))
    result, _ = run([RawRow(i, {"value": ip(i)}) for i in range(1, 7)], submitter=sub)
    assert (result.summary.failed, result.summary.submitted, len(sub.batches)) == (3, 3, 2)


def test_fatal_problem_before_any_row_fails_the_run():
    result, doc = run([FileProblem("unsupported format")])
    assert result.status == "failed" and doc["errors"] == [{"message": "unsupported format"}]


def test_problem_after_rows_completes_with_errors_and_ignored_lines_count():
    result, doc = run([Ignored(1), RawRow(2, {"value": "8.8.8.8"}), FileProblem("bad JSON", line=3, column=7)])
    assert result.status == "completed_with_errors" and doc["summary"]["ignoredLines"] == 1
    assert result.errors == [FileProblem("bad JSON", line=3, column=7)]


def test_submitter_losing_entries_is_an_internal_error():
    class Lossy(FakeSubmitter):
        def submit(self, batch):
            return super().submit(batch)[:-1]

    with pytest.raises(InternalError):
        run([RawRow(i, {"value": ip(i)}) for i in range(1, 4)], submitter=Lossy())


def test_decided_entries_queue_behind_a_partial_batch_in_order():
    rows = [RawRow(1, {"value": "8.8.8.8"}), *[RawRow(i, {"value": "10.0.0.1"}) for i in range(2, 50)]]
    sub = FakeSubmitter()
    _, doc = run(rows, settings=Settings(batch_size=500), submitter=sub)
    assert [e["line"] for e in doc["indicators"]] == list(range(1, 50))
    assert sub.batches == [[1]]


def test_steward_hooks_are_called():
    class Steward:
        def __init__(self):
            self.calls = []

        def review(self, o: Outcome) -> Outcome:
            self.calls.append("review")
            return o.final(Status.unchanged, id="old") if o.value == "8.8.8.8" else o

        def after_submit(self, outcomes):
            self.calls.append("after")
            return list(outcomes)

        def finish(self, summary, *, file_error):
            self.calls.append("finish")

        def apply_counters(self, summary):
            summary.listCalls += 1

        def report_extra(self):
            return {"tenant": {"countBefore": 1}}

    st = Steward()
    result, doc = run([RawRow(1, {"value": "8.8.8.8"}), RawRow(2, {"value": "8.8.4.4"})], submitter=FakeSubmitter(),
                      steward=st)  # fmt: skip
    assert [e["status"] for e in doc["indicators"]] == ["unchanged", "submitted"]
    assert st.calls == ["review", "review", "after", "finish"]
    assert doc["tenant"] == {"countBefore": 1} and result.summary.listCalls == 1


def test_a_long_queue_behind_a_partial_batch_sends_it_early(monkeypatch):
    import shared.pipeline.process

    monkeypatch.setattr(shared.pipeline.process, "MAX_WAITING", 5)
    rows = [RawRow(1, {"value": "8.8.8.8"}), *[RawRow(i, {"value": "10.0.0.1"}) for i in range(2, 20)],
            RawRow(20, {"value": "8.8.4.4"})]  # fmt: skip
    sub = FakeSubmitter()
    _, doc = run(rows, settings=Settings(batch_size=500), submitter=sub)
    assert sub.batches == [[1], [20]]  # memory stays bounded; order in the report does not change
    assert [e["line"] for e in doc["indicators"]] == list(range(1, 21))
