"""The only orchestrator: read → validate → (review) → submit in batches → report, for one input.

Service layer: takes its collaborators as arguments (the submitter, the report writer, optionally the
reader and a quota steward) and does no I/O of its own. Generators all the way: entries reach the
report in input order while at most one batch of outcomes (and the decided entries behind it) waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, Protocol

from shared.checks.validate import Validator
from shared.core.errors import (
    AccessDenied,
    DefenderError,
    DefenderUnavailable,
    IdentityUnavailable,
    InputChanged,
)
from shared.core.model import FileProblem, Ignored, Outcome, RawRow, ReaderItem, Status, Summary, new_outcome
from shared.core.options import NO_OPTIONS, InputOptions
from shared.core.settings import Settings
from shared.core.telemetry import RunTally
from shared.core.telemetry import current as current_telemetry
from shared.pipeline.reports import ReportWriter, run_status

log = logging.getLogger(__name__)

# Errors after which no further call can succeed in this run (STYLE.md "Errors"): the batch and every
# later pending entry become `failed` with the error's message; no more calls are made.
STOP_ERRORS = (AccessDenied, DefenderUnavailable, IdentityUnavailable)  # DeadlineReached is DefenderUnavailable
# Decided entries allowed to queue behind a partly filled batch before that batch is sent early: bounds
# memory for inputs where valid entries are rare (one valid row, then a million invalid ones).
MAX_WAITING = 50_000
# Report codes of the skip reasons process_stream gives entries it does not send (README "Reports").
SKIP_CODES = {"dry run": "dry-run", "validation only": "validation-only"}


class InternalError(AssertionError):
    """A bug: entries were lost or invented between validation and the report. Never a user error."""


class Interrupted(Exception):
    """Submissions stopped on an error a later attempt may not meet (Defender or the identity endpoint
    unavailable, access denied), in a run that asked to be interrupted rather than fail what is left.

    Everything reported before it is final (and was handed to `on_outcome`); the batch in flight and the
    entries after it were not reported: a later attempt resumes after the last reported entry.
    """

    def __init__(self, error: DefenderError) -> None:
        super().__init__(error.message)
        self.error = error


class Submitter(Protocol):
    """What process_stream needs from the Defender client (`shared.defender.client.DefenderClient`)."""

    @property
    def api_calls(self) -> int: ...

    @property
    def retries(self) -> int: ...

    def submit(self, batch: Sequence[Outcome]) -> list[Outcome]:
        """Each outcome with a final status (submitted with id / failed with reason), same order."""
        ...


class Reviewer(Protocol):
    """The quota steward's per-input hooks (`shared.tenant.steward.Steward`); the caller runs load/rank/plan first."""

    def review(self, outcome: Outcome) -> Outcome: ...

    def after_submit(self, outcomes: Sequence[Outcome]) -> list[Outcome]: ...

    def finish(self, summary: Summary, *, file_error: bool) -> object: ...

    def report_extra(self) -> dict[str, object]: ...

    def apply_counters(self, summary: Summary) -> None: ...


Reader = Callable[[BinaryIO, str], Iterable[RawRow | Ignored | FileProblem]]


@dataclass
class RunResult:
    """What one input's run did.

    `stop`: the error after which nothing more was sent (no access, Defender or the identity endpoint
    unreachable, a time limit), with `stopped` the entries it failed; `first_failure`: the reason of the first
    `failed` entry; `changed`: the input changed while it was read (the run did not describe one version).
    """

    summary: Summary
    status: str
    errors: list[FileProblem]
    format: str
    stop: DefenderError | None = None
    stopped: int = 0
    first_failure: str | None = None
    changed: InputChanged | None = None
    tenant: dict[str, object] | None = None  # the report's `tenant` section, when a steward read the tenant
    tally: RunTally | None = None  # entries by status, type and code, kept only while telemetry is on


def default_reader(settings: Settings) -> Reader:
    """`shared.readers.read` within the settings' bounds (MAX_VALUE_LENGTH, MAX_GZIP_BYTES, MAX_GZIP_RATIO)."""
    from shared.readers import read  # the readers package; imported on use

    limits = settings.read_limits
    return lambda stream, name: read(stream, name, limits=limits)  # type: ignore[no-any-return]


class _Run:
    """State of one process_stream call; methods are the steps, kept small for reading."""

    def __init__(
        self,
        *,
        batch_size: int,
        dry_run: bool,
        submitter: Submitter | None,
        reports: ReportWriter,
        skip_reason: str,
        on_batch: Callable[[int, int], None] | None,
        on_outcome: Callable[[Outcome], None] | None,
        steward: Reviewer | None,
        on_flush: Callable[[], None] | None = None,
        interrupt: bool = False,
    ) -> None:
        self.batch_size = batch_size
        self.submitter = submitter if not dry_run else None
        self.reports = reports
        self.skip_reason = skip_reason
        self.skip_code = SKIP_CODES.get(skip_reason, "skipped")
        self.on_batch = on_batch
        self.on_outcome = on_outcome
        self.on_flush = on_flush
        self.interrupt = interrupt
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
        self.stopped = 0  # entries failed by `stop`
        self.first_failure: str | None = None
        # Telemetry counts the run's entries once, from this tally; off, nothing is kept (core/telemetry.py).
        self.tally = RunTally() if current_telemetry().enabled else None
        self._tally_add = self.tally.add if self.tally is not None else None

    # -------------------------------------------------------------------------------- entries

    def emit(self, o: Outcome) -> None:
        if o.status is None:
            raise InternalError(f"line {o.line}: an entry reached the report without a final status")
        self.reports.add(o)
        self.summary.add(o)
        self.entries_out += 1
        if self._tally_add is not None:
            self._tally_add(o)
        if o.status is Status.failed and self.first_failure is None:
            self.first_failure = o.reason
        if self.on_outcome is not None:
            self.on_outcome(o)

    def decided(self, o: Outcome) -> None:
        if self.waiting:
            self.waiting.append(o)
            if len(self.waiting) - len(self.batch) >= MAX_WAITING:
                self.flush()
        else:
            self.emit(o)

    def replay(self, validated: Outcome, logged: Outcome) -> None:
        """An entry a previous attempt already settled: its logged outcome stands (no review, no call)."""
        if (validated.line, validated.value) != (logged.line, logged.value):
            raise InternalError(f"line {validated.line}: the progress log does not match the input")
        self.entries_in += 1
        self.decided(logged)

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
            self.stopped += 1
            self.decided(o.final(Status.failed, self.stop.message, code=self.stop.outcome_code))
        else:
            self.waiting.append(o)
            self.batch.append(o)
            if len(self.batch) >= self.batch_size:
                self.flush()

    def consume(
        self,
        reading: Iterable[ReaderItem],
        validated: Callable[[RawRow], Outcome],
        resume: Sequence[Outcome],
        on_ignored: Callable[[Ignored], None] | None,
    ) -> tuple[bool, InputChanged | None]:
        """Read every item: rows are validated and taken (the first `resume` ones replayed), ignored lines and
        file-level problems reported. Returns (nothing but prose was read, the input changed while read)."""
        reports = self.reports
        take = self.take
        replayed = iter(resume)
        left = len(resume)
        entries_read = nothing_read = False
        try:
            for item in reading:
                if isinstance(item, RawRow):
                    entries_read = True
                    if left:
                        left -= 1
                        self.replay(validated(item), next(replayed))
                    else:
                        take(validated(item))
                elif isinstance(item, Ignored):
                    self.summary.ignoredLines += 1
                    reports.ignored(item)
                    if on_ignored is not None:
                        on_ignored(item)
                else:
                    self.errors.append(item)
                    reports.error(item)
                    # Nothing read but prose: a header naming no indicator column, lines that look like indicators
                    # but are none; the run is `failed` (issue "Nothing silently dropped": no silent zero).
                    nothing_read = nothing_read or (item.fatal and not entries_read)
        except InputChanged as e:
            # The run no longer describes one version of the input: what was read keeps its outcomes (what was
            # submitted did reach Defender), the run is `failed`, and the new version has its own event.
            problem = FileProblem(str(e))
            self.errors.append(problem)
            reports.error(problem)
            return nothing_read, e
        if left:
            raise InternalError(f"the progress log holds {left} entries more than the input")
        return nothing_read, None

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
        if self.on_flush is not None:
            self.on_flush()

    def submit(self, batch: list[Outcome]) -> list[Outcome]:
        assert self.submitter is not None
        try:
            results = list(self.submitter.submit(batch))
        except STOP_ERRORS as e:
            results = self._stopped(batch, e)
        except DefenderError as e:
            log.warning("batch of %d failed: %s", len(batch), e.message)
            results = [o.final(Status.failed, e.message, code=e.outcome_code) for o in batch]
        else:
            if len(results) != len(batch):
                raise InternalError(f"the submitter returned {len(results)} results for a batch of {len(batch)}")
            if self.steward is not None:
                results = self.steward.after_submit(results)
        self.reached = self.reached or self._answered(results)
        return results

    def _stopped(self, batch: list[Outcome], e: DefenderError) -> list[Outcome]:
        """No further call can succeed: fail this batch (except what a bisection already settled) and everything
        after it, with the error's message (STYLE.md "Errors"); a job (`interrupt`) is retried later instead."""
        if self.interrupt:
            log.warning("submissions interrupted: %s", e.message)
            raise Interrupted(e) from e
        self.stop = e
        log.warning("stopping submissions: %s", e.message)
        done = _settled_prefix(batch, e.partial)
        self.stopped += len(batch) - len(done)
        return [*done, *(o.final(Status.failed, e.message, code=e.outcome_code) for o in batch[len(done) :])]

    def _answered(self, results: list[Outcome]) -> bool:
        """Whether Defender answered for some entry: an import, an unchanged one, or a per-indicator rejection."""
        if any(r.status in (Status.submitted, Status.unchanged) for r in results):
            return True
        return any(r.status is Status.failed and r.id is None and self.stop is None for r in results)


def _skipped(o: Outcome, reason: str, code: str) -> Outcome:
    """`o.final(Status.skipped, reason, code=code)` without `dataclasses.replace` (hot path of validation-only runs)."""
    full = "; ".join((*o.notes, reason)) if o.notes else reason
    return new_outcome(
        line=o.line,
        value=o.value,
        type=o.type,
        action=o.action,
        status=Status.skipped,
        reason=full,
        id=None,
        indicator=o.indicator,
        position=o.position,
        notes=o.notes,
        duplicate_of=None,
        code=code,
    )


def _settled_prefix(batch: Sequence[Outcome], partial: Sequence[object]) -> list[Outcome]:
    """Outcomes a bisection settled before the stop, as the leading part of `batch` (client contract)."""
    done = [p for p in partial if isinstance(p, Outcome)]
    if len(done) > len(batch):
        return []
    for p, o in zip(done, batch, strict=False):
        if (p.line, p.value, p.type) != (o.line, o.value, o.type) or p.status is None:
            return []
    return done


def _tenant_section(extra: Mapping[str, object] | None) -> dict[str, object] | None:
    tenant = (extra or {}).get("tenant")
    return tenant if isinstance(tenant, dict) else None


@dataclass(frozen=True)
class _Counters:
    """A submitter's call counters when the run began (one client serves many inputs)."""

    api_calls: int = 0
    retries: int = 0
    split_calls: int = 0

    @classmethod
    def of(cls, submitter: Submitter | None) -> _Counters:
        if submitter is None:
            return cls()
        return cls(submitter.api_calls, submitter.retries, getattr(submitter, "split_calls", 0))

    def add_since(self, submitter: Submitter | None, summary: Summary) -> None:
        """Add the calls made since `of` to the run's summary."""
        if submitter is None:
            return
        summary.apiCalls += submitter.api_calls - self.api_calls
        summary.retries += submitter.retries - self.retries
        summary.splitCalls += getattr(submitter, "split_calls", 0) - self.split_calls


def _reading(
    stream: BinaryIO | None, name: str, *, items: Iterable[ReaderItem] | None, reader: Reader | None, settings: Settings
) -> Iterable[ReaderItem]:
    """The input's reader items: those decoded already, else the stream read by `reader` (or the readers)."""
    if items is not None:
        return items
    if stream is None:
        raise ValueError("process_stream needs a stream or the items read from it")
    return (reader or default_reader(settings))(stream, name)


def _finish_tenant(
    run: _Run, steward: Reviewer | None, report_extra: Callable[[], Mapping[str, object]] | None
) -> dict[str, object] | None:
    """The steward's finish (feed sync, counters) and the report's extra top-level keys."""
    extra: dict[str, object] | None = None
    if steward is not None:
        steward.finish(run.summary, file_error=any(not e.warning for e in run.errors))
        steward.apply_counters(run.summary)
        extra = dict(steward.report_extra())
    if report_extra is not None:
        extra = {**(extra or {}), **report_extra()}
    return extra


def process_stream(
    stream: BinaryIO | None,
    name: str,
    *,
    settings: Settings,
    options: InputOptions = NO_OPTIONS,
    submitter: Submitter | None,
    reports: ReportWriter,
    source: str,
    now: datetime | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_ignored: Callable[[Ignored], None] | None = None,
    skip_reason: str | None = None,
    reader: Reader | None = None,
    steward: Reviewer | None = None,
    items: Iterable[ReaderItem] | None = None,
    resume: Sequence[Outcome] = (),
    on_flush: Callable[[], None] | None = None,
    interrupt: bool = False,
    on_reviewed: Callable[[Reviewer | None], None] | None = None,
    report_extra: Callable[[], Mapping[str, object]] | None = None,
) -> RunResult:
    """Process one input end to end and finish its reports.

    - `options`: the input's own (`core.options`: defaults for its rows, its dry run).
    - `submitter=None` or a dry run (DRY_RUN or the input's `dry_run`): entries that would be sent become
      `skipped` with `skip_reason` (default "dry run" for a dry run, else "validation only").
    - `on_batch(done, seen)`: after each submitted batch, entries settled by Defender so far and
      entries meant for submission seen so far (progress).
    - `on_outcome(o)`: every final outcome, in report order, after the report has it.
    - `on_ignored(item)`: every ignored line, as it is read.
    - `reader(stream, name)`: defaults to `shared.readers.read`; `items`: the input's reader items when they
      were decoded already (then `stream` is not read); `steward`: optional quota hooks.
    - `resume`: the final outcomes of the input's first entries, from an earlier attempt (a job's progress
      log): those entries are validated (the duplicate index must see them) but neither reviewed nor sent.
    - `on_flush()`: after each batch and the entries behind it were reported (a job's checkpoint).
    - `interrupt`: raise `Interrupted` on a stop error instead of failing the rest (a job retries later).
    - `report_extra()`: more top-level keys for the JSON report (a drain's shared calls).
    - `on_reviewed(steward)`: once every entry was read and reviewed, before the last batch is sent (the next
      job of a drain may decide then: capacity goes in arrival order).
    - An input that changes while it is read (`InputChanged` from the stream) ends the reading with a
      file-level problem; the run is `failed` (entries already read keep their outcomes).
    - Raises InternalError when entries in and out differ (a bug).
    """
    started = datetime.now(UTC)
    dry_run = options.dry_run_under(settings)
    if skip_reason is None:
        skip_reason = "dry run" if dry_run else "validation only"
    run = _Run(
        batch_size=settings.batch_size,
        dry_run=dry_run,
        submitter=submitter,
        reports=reports,
        skip_reason=skip_reason,
        on_batch=on_batch,
        on_outcome=on_outcome,
        steward=steward,
        on_flush=on_flush,
        interrupt=interrupt,
    )
    counters0 = _Counters.of(submitter)
    reading = _reading(stream, name, items=items, reader=reader, settings=settings)
    log.info("processing %s", source)
    # validate.validate() inlined in `consume`: one generator less per entry on the hot path.
    validator = Validator(settings, options=options, source=source, now=now)
    try:
        nothing_read, changed = run.consume(reading, validator.row, resume, on_ignored)
    finally:
        validator.dupes.close()
    if on_reviewed is not None:
        on_reviewed(steward)
    run.flush()
    if run.entries_in != run.entries_out:
        raise InternalError(f"{run.entries_in} entries validated but {run.entries_out} reported")
    summary = run.summary
    counters0.add_since(submitter, summary)
    extra = _finish_tenant(run, steward, report_extra)
    unreachable = run.stop is not None and not run.reached
    status = run_status(summary, run.errors, nothing_read=nothing_read or changed is not None, unreachable=unreachable)
    fmt = str(getattr(reading, "format", None) or "unknown")
    details = getattr(reading, "details", None)
    reports.finish(summary, status, finished_at=datetime.now(UTC), extra=extra, format=fmt, details=details)
    log.info(
        "%s: %s, %d entries (%s), %.1f s",
        source,
        status,
        summary.total,
        ", ".join(f"{k} {v}" for k, v in summary.as_dict().items() if v and k != "total"),
        (datetime.now(UTC) - started).total_seconds(),
    )
    return RunResult(
        summary=summary,
        status=status,
        errors=run.errors,
        format=fmt,
        stop=run.stop,
        stopped=run.stopped,
        first_failure=run.first_failure,
        changed=changed,
        tenant=_tenant_section(extra),
        tally=run.tally,
    )
