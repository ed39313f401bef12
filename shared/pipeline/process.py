"""The only orchestrator: read → validate → (review) → submit in batches → report, for one input.

Service layer: takes its collaborators as arguments (the submitter, the report writer, optionally the
reader and a quota steward) and does no I/O of its own. Generators all the way: entries reach the
report in input order while at most one batch of outcomes (and the decided entries behind it) waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol

from shared.checks.validate import Validator
from shared.core.errors import AccessDenied, DefenderError, DefenderUnavailable, IdentityUnavailable
from shared.core.model import FileProblem, Ignored, Outcome, RawRow, Status, Summary
from shared.core.settings import Settings
from shared.pipeline.reports import ReportWriter, run_status

log = logging.getLogger(__name__)

# Errors after which no further call can succeed in this run (STYLE.md "Errors"): the batch and every
# later pending entry become `failed` with the error's message; no more calls are made.
STOP_ERRORS = (AccessDenied, DefenderUnavailable, IdentityUnavailable)
# Decided entries allowed to queue behind a partly filled batch before that batch is sent early: bounds
# memory for inputs where valid entries are rare (one valid row, then a million invalid ones).
MAX_WAITING = 50_000
# Report codes of the skip reasons process_stream gives entries it does not send (README "Reports").
SKIP_CODES = {"dry run": "dry-run", "validation only": "validation-only"}


class InternalError(AssertionError):
    """A bug: entries were lost or invented between validation and the report. Never a user error."""


class Submitter(Protocol):
    """What process_stream needs from the Defender client (`shared.defender.client.DefenderClient`)."""

    api_calls: int
    retries: int

    def submit(self, batch: Sequence[Outcome]) -> list[Outcome]:
        """Each outcome with a final status (submitted with id / failed with reason), same order."""
        ...


class Reviewer(Protocol):
    """The quota steward's per-input hooks (`shared.tenant.steward.Steward`); the caller runs load/rank/plan first."""

    def review(self, outcome: Outcome) -> Outcome: ...

    def after_submit(self, outcomes: Sequence[Outcome]) -> list[Outcome]: ...

    def finish(self, summary: Summary, *, file_error: bool) -> Any: ...

    def report_extra(self) -> dict[str, Any]: ...

    def apply_counters(self, summary: Summary) -> None: ...


Reader = Callable[[BinaryIO, str], Iterable[RawRow | Ignored | FileProblem]]


@dataclass
class RunResult:
    summary: Summary
    status: str
    errors: list[FileProblem]
    format: str


def _default_reader(stream: BinaryIO, name: str) -> Iterable[RawRow | Ignored | FileProblem]:
    from shared.readers import read  # the readers package; imported on use

    return read(stream, name)  # type: ignore[no-any-return]


class _Run:
    """State of one process_stream call; methods are the steps, kept small for reading."""

    def __init__(
        self,
        *,
        settings: Settings,
        submitter: Submitter | None,
        reports: ReportWriter,
        skip_reason: str,
        on_batch: Callable[[int, int], None] | None,
        steward: Reviewer | None,
    ) -> None:
        self.settings = settings
        self.submitter = submitter if not settings.dry_run else None
        self.reports = reports
        self.skip_reason = skip_reason
        self.skip_code = SKIP_CODES.get(skip_reason, "skipped")
        self.on_batch = on_batch
        self.steward = steward
        self.summary = Summary()
        self.errors: list[FileProblem] = []
        self.waiting: list[Outcome] = []  # input order: the batch's entries and the decided ones behind them
        self.batch: list[Outcome] = []
        self.stop: DefenderError | None = None
        self.reached = False  # at least one entry got an answer from Defender
        self.entries_in = 0
        self.entries_out = 0
        self.pending_seen = 0
        self.pending_done = 0

    # -------------------------------------------------------------------------------- entries

    def emit(self, o: Outcome) -> None:
        if o.status is None:
            raise InternalError(f"line {o.line}: an entry reached the report without a final status")
        self.reports.add(o)
        self.summary.add(o)
        self.entries_out += 1

    def decided(self, o: Outcome) -> None:
        if self.waiting:
            self.waiting.append(o)
            if len(self.waiting) - len(self.batch) >= MAX_WAITING:
                self.flush()
        else:
            self.emit(o)

    def take(self, o: Outcome) -> None:
        self.entries_in += 1
        if o.status is None and self.steward is not None:
            o = self.steward.review(o)
        if o.status is not None:
            self.decided(o)
            return
        self.pending_seen += 1
        if self.submitter is None:
            self.pending_done += 1
            self.emit(_skipped(o, self.skip_reason, self.skip_code))
        elif self.stop is not None:
            self.pending_done += 1
            self.decided(o.final(Status.failed, self.stop.message, code=self.stop.outcome_code))
        else:
            self.waiting.append(o)
            self.batch.append(o)
            if len(self.batch) >= self.settings.batch_size:
                self.flush()

    # -------------------------------------------------------------------------------- batches

    def flush(self) -> None:
        """Submit the waiting batch (if any), then write every waiting entry in input order."""
        if self.batch:
            results = self.submit(self.batch)
            by_entry = {id(o): r for o, r in zip(self.batch, results, strict=True)}
            self.pending_done += len(self.batch)
            if self.on_batch is not None:
                self.on_batch(self.pending_done, self.pending_seen)
        else:
            by_entry = {}
        for o in self.waiting:
            self.emit(by_entry.get(id(o), o))
        self.waiting = []
        self.batch = []

    def submit(self, batch: list[Outcome]) -> list[Outcome]:
        assert self.submitter is not None
        try:
            results = list(self.submitter.submit(batch))
        except STOP_ERRORS as e:
            # No further call can succeed: fail this batch (except what a bisection already settled)
            # and everything after it, with the error's message (STYLE.md "Errors").
            self.stop = e
            log.warning("stopping submissions: %s", e.message)
            done = _settled_prefix(batch, e.partial)
            results = [*done, *(o.final(Status.failed, e.message, code=e.outcome_code) for o in batch[len(done) :])]
        except DefenderError as e:
            log.warning("batch of %d failed: %s", len(batch), e.message)
            results = [o.final(Status.failed, e.message, code=e.outcome_code) for o in batch]
        else:
            if len(results) != len(batch):
                raise InternalError(f"the submitter returned {len(results)} results for a batch of {len(batch)}")
            if self.steward is not None:
                results = self.steward.after_submit(results)
        if any(r.status in (Status.submitted, Status.unchanged) for r in results):
            self.reached = True
        elif any(r.status is Status.failed and r.id is None and self.stop is None for r in results):
            # A per-indicator rejection is an answer from Defender too.
            self.reached = True
        return results


def _skipped(o: Outcome, reason: str, code: str) -> Outcome:
    """`o.final(Status.skipped, reason, code=code)` without `dataclasses.replace` (hot path of validation-only runs)."""
    full = "; ".join((*o.notes, reason)) if o.notes else reason
    return Outcome(
        o.line, o.value, o.type, o.action, Status.skipped, full, None, o.indicator, o.position, o.notes, None, code
    )


def _settled_prefix(batch: Sequence[Outcome], partial: Sequence[Any]) -> list[Outcome]:
    """Outcomes a bisection settled before the stop, as the leading part of `batch` (client contract)."""
    done = [p for p in partial if isinstance(p, Outcome)]
    if len(done) > len(batch):
        return []
    for p, o in zip(done, batch, strict=False):
        if (p.line, p.value, p.type) != (o.line, o.value, o.type) or p.status is None:
            return []
    return done


def process_stream(
    stream: BinaryIO,
    name: str,
    *,
    settings: Settings,
    submitter: Submitter | None,
    reports: ReportWriter,
    source: str,
    now: datetime | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    skip_reason: str | None = None,
    reader: Reader | None = None,
    steward: Reviewer | None = None,
) -> RunResult:
    """Process one input end to end and finish its reports.

    - `submitter=None` or `settings.dry_run`: entries that would be sent become `skipped` with
      `skip_reason` (default "dry run" when DRY_RUN is set, else "validation only").
    - `on_batch(done, seen)`: after each submitted batch, entries settled by Defender so far and
      entries meant for submission seen so far (progress).
    - `reader(stream, name)`: defaults to `shared.readers.read`; `steward`: optional quota hooks.
    - Raises InternalError when entries in and out differ (a bug).
    """
    started = datetime.now(UTC)
    if skip_reason is None:
        skip_reason = "dry run" if settings.dry_run else "validation only"
    run = _Run(
        settings=settings,
        submitter=submitter,
        reports=reports,
        skip_reason=skip_reason,
        on_batch=on_batch,
        steward=steward,
    )
    calls0 = submitter.api_calls if submitter is not None else 0
    retries0 = submitter.retries if submitter is not None else 0
    reading = (reader or _default_reader)(stream, name)
    read_something = False
    nothing_read = False
    log.info("processing %s", source)
    # validate.validate() inlined: one generator less per entry on the hot path.
    validated = Validator(settings, source=source, now=now).row
    take = run.take
    for item in reading:
        if isinstance(item, RawRow):
            read_something = True
            take(validated(item))
        elif isinstance(item, Ignored):
            read_something = True
            run.summary.ignoredLines += 1
        else:
            run.errors.append(item)
            reports.error(item)
            if item.fatal and not read_something:
                nothing_read = True
    run.flush()
    if run.entries_in != run.entries_out:
        raise InternalError(f"{run.entries_in} entries validated but {run.entries_out} reported")
    summary = run.summary
    if submitter is not None:
        summary.apiCalls += submitter.api_calls - calls0
        summary.retries += submitter.retries - retries0
    extra = None
    if steward is not None:
        steward.finish(summary, file_error=bool(run.errors))
        steward.apply_counters(summary)
        extra = steward.report_extra()
    unreachable = run.stop is not None and not run.reached
    status = run_status(summary, run.errors, nothing_read=nothing_read, unreachable=unreachable)
    fmt = str(getattr(reading, "format", None) or "unknown")
    reports.source.setdefault("format", fmt)
    reports.finish(summary, status, finished_at=datetime.now(UTC), extra=extra)
    log.info(
        "%s: %s, %d entries (%s), %.1f s",
        source,
        status,
        summary.total,
        ", ".join(f"{k} {v}" for k, v in summary.as_dict().items() if v and k != "total"),
        (datetime.now(UTC) - started).total_seconds(),
    )
    return RunResult(summary=summary, status=status, errors=run.errors, format=fmt)
