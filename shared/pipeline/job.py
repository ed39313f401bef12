"""The one job: every input, whatever its source (blob drop, HTTP body, CLI file), runs through `run_job`.

`run_job` owns the order of the steps for one input, the order the product's guarantees rest on:

1. the tenant's turn (`TenantTurn.hold`; the CLI's is a no-op);
2. inside it, an input already reported is left alone (`Reports.already_done`: a redelivered event);
3. the tenant view: the steward lists the tenant, and ranks the input in a first pass only when it may not
   fit the room left (`tenant.session.start`);
4. the input processed once (`pipeline.process.process_stream`), every Defender call and delete checked
   against the lease first (`LeaseChecked`), within the job's time budget when it has one;
5. the reports published (CSV first, the JSON last as the completion marker), still inside the turn.

Its collaborators are Protocols and plain values: no `azure.*`, no `requests` (STYLE.md layer table). An
input's rows are read at most twice (ranking pass, then processing); rows decoded already — an HTTP body's,
decoded once by its checks — are kept in `SavedItems` and iterated instead of reading the input again.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, Generic, Protocol, TextIO, TypeVar

from shared.checks.validate import validate
from shared.core.errors import DefenderError, InputChanged
from shared.core.model import FileProblem, Ignored, Outcome, RawRow, ReaderItem, Summary
from shared.core.options import NO_OPTIONS, InputOptions
from shared.core.settings import Settings
from shared.pipeline.process import Reviewer, RunResult, Submitter, process_stream
from shared.pipeline.reports import FAILED, ReportWriter
from shared.tenant import session
from shared.tenant.drain import DrainTenant
from shared.tenant.steward import TenantClient

log = logging.getLogger(__name__)


class Lease(Protocol):
    """The tenant's turn while it is held: `check()` raises when it was lost (nothing may be called then)."""

    def check(self) -> None: ...


class TenantTurn(Protocol):
    """One import at a time per tenant (CONTRACT.md "Defender calls"): `storage.tenant_lock.TenantLock`."""

    def hold(self, timeout: float) -> AbstractContextManager[Lease]: ...


class TimeLimit(Protocol):
    """What the client's time limit tells afterwards (`DefenderClient.time_limit`)."""

    @property
    def reached(self) -> DefenderError | None: ...


class DefenderLike(TenantClient, Protocol):
    """What a job needs of the Defender client (`shared.defender.client.DefenderClient`)."""

    @property
    def api_calls(self) -> int: ...

    @property
    def retries(self) -> int: ...

    def submit(self, batch: Sequence[Outcome]) -> list[Outcome]: ...

    def identity_ids(self) -> tuple[str, ...]: ...

    def time_limit(self, seconds: float, label: str) -> AbstractContextManager[TimeLimit]: ...


class Reports(Protocol):
    """Where one job's reports go: spooled and uploaded (blob, HTTP) or written to local files (CLI)."""

    def already_done(self) -> bool:
        """True when a complete report for exactly this input exists (a redelivered event)."""
        ...

    def open(self) -> AbstractContextManager[tuple[TextIO, TextIO, TextIO]]:
        """The JSON, CSV and HTML text streams of this job's reports."""
        ...

    def publish(self) -> None:
        """Make the reports visible: the CSV first, then the HTML page, the JSON last (its presence means complete)."""
        ...


class HeldTurn:
    """A turn already held by the caller (a queue worker takes the lock before it looks at the job)."""

    def __init__(self, lease: Lease) -> None:
        self._lease = lease

    def hold(self, timeout: float) -> AbstractContextManager[Lease]:
        return nullcontext(self._lease)


class NoTurn:
    """The CLI's turn: no lock (it is for one-off imports; its `--help` says so)."""

    def check(self) -> None:
        return None

    def hold(self, timeout: float) -> AbstractContextManager[Lease]:
        return nullcontext(self)


class Items(Protocol):
    """Reader items an input's checks decoded already, iterable more than once, with the format they found."""

    format: str

    def __iter__(self) -> Iterator[ReaderItem]: ...


class SavedItems:
    """Reader items kept so that an input decoded once (an HTTP body, at its checks) is not decoded again.

    Iterated as often as asked (the ranking pass, then processing). Memory is bounded by the caller's limits
    (MAX_HTTP_BODY_BYTES, MAX_HTTP_INDICATORS): rows and file problems are kept; of the ignored lines the
    first `KEEP_IGNORED` are kept in place and the rest only counted (they only count in the summary).
    """

    KEEP_IGNORED = 1000

    def __init__(self, *, format: str = "unknown") -> None:
        self.format = format  # the detected format, as `readers.Reading.format` tells it
        self.details: dict[str, object] = {}  # what the reader decided (`readers.Reading.details`)
        self._items: list[ReaderItem] = []
        self.rows = 0
        self._ignored_kept = 0
        self._ignored_counted = 0

    def add(self, item: ReaderItem) -> None:
        if isinstance(item, RawRow):
            self.rows += 1
        elif isinstance(item, Ignored):
            if self._ignored_kept >= self.KEEP_IGNORED:
                self._ignored_counted += 1
                return
            self._ignored_kept += 1
        self._items.append(item)

    def __iter__(self) -> Iterator[ReaderItem]:
        yield from self._items
        for _ in range(self._ignored_counted):
            yield Ignored(0)


@dataclass(frozen=True)
class Job:
    """One input to import, described by the entry point that received it.

    - `name`: what the readers see (its extension helps pick the format): the blob name, the file name, or
      `http.json`/`http.csv`/… for an HTTP body; `source`: `{source}` of DEFAULT_DESCRIPTION and log lines.
    - `report_source`: the report's `source` section (`container`, `name`, `etag`, `size`); `format` is added.
    - `open_input()`: the input's bytes, the same version every time (a blob pinned to its ETag); or `saved`:
      the items its checks decoded already. `size`: bytes, for the bound that may spare the ranking pass;
      `entries_at_most`: that bound when known otherwise (an HTTP body's count).
    - `settings`: the app's; `options`: the input's own (blob metadata, query parameters).
      `lock_wait`: seconds to wait for the tenant's turn.
    - `deadline_seconds`: a time budget for the Defender calls (HTTP: inside the host's 230 s), with
      `deadline_label` naming it in the reasons of what it stopped.
    - `stewarded`: list the tenant and apply quota stewardship (False: validation only, no client).
    - `resume`: the final outcomes of the first entries, from an earlier attempt (a queued job's progress log);
      `interrupt`: raise `process.Interrupted` when Defender or the identity endpoint stops answering, rather
      than fail what is left (a queued job is retried later). `drain`: the tenant view and room of the turn
      (shared by the jobs of a drain of coalesced HTTP jobs; a job alone in its turn has its own, read from the
      tenant mirror), or a callable giving it once the steward starts (it may list, and fail like List);
      None: the steward lists the tenant for this input. `follow_imports`: this job's import results update
      that view (False for a drain's jobs, whose shared calls the coalescer follows).
    """

    name: str
    source: str
    report_source: Mapping[str, object]
    settings: Settings
    started: datetime
    options: InputOptions = NO_OPTIONS
    open_input: Callable[[], AbstractContextManager[io.BufferedReader]] | None = None
    saved: Items | None = None
    size: int | None = None
    entries_at_most: int | None = None
    lock_wait: float = 0.0
    deadline_seconds: Callable[[], float] | None = None
    deadline_label: str = ""
    stewarded: bool = True
    skip_reason: str | None = None
    resume: Sequence[Outcome] = ()
    interrupt: bool = False
    drain: DrainTenant | Callable[[], DrainTenant] | None = None
    follow_imports: bool = True


@dataclass
class JobResult:
    """What one job did; `run` is None when nothing was processed (`already_done`)."""

    source: dict[str, object]
    run: RunResult | None = None
    already_done: bool = False
    time_limit: TimeLimit | None = None
    changed: InputChanged | None = None

    @property
    def status(self) -> str | None:
        if self.changed is not None:
            return FAILED
        return self.run.status if self.run is not None else None

    @property
    def summary(self) -> Summary:
        return self.run.summary if self.run is not None else Summary()


@dataclass
class JobHooks:
    """Observers of one job: every final outcome as it is reported; progress after each batch."""

    on_outcome: Callable[[Outcome], None] | None = None
    on_batch: Callable[[int, int], None] | None = None
    on_stream: Callable[[BinaryIO], None] | None = None  # the stream being processed (CLI progress)
    on_flush: Callable[[], None] | None = None  # after each batch and the entries behind it were reported
    on_ignored: Callable[[Ignored], None] | None = None  # every ignored line as it is read (CLI: the first few)
    on_reviewed: Callable[[object], None] | None = None  # every entry reviewed (the steward), before the last batch
    report_extra: Callable[[], Mapping[str, object]] | None = None  # more top-level keys for the JSON report


_Client = TypeVar("_Client", bound="Submitting")


class _ImportCounters(Generic[_Client]):
    """The import counters of the client a wrapper forwards to (`process_stream` reads them off its submitter)."""

    client: _Client

    @property
    def api_calls(self) -> int:
        return self.client.api_calls

    @property
    def retries(self) -> int:
        return self.client.retries

    @property
    def split_calls(self) -> int:
        return int(getattr(self.client, "split_calls", 0))


class LeaseChecked(_ImportCounters[DefenderLike]):
    """The Defender client, checked against the tenant's lease before every call that changes the tenant.

    A lease lost mid-import (renewals refused, or none succeeded for a lease period) raises before the next
    import batch or delete, and inside one call before its next attempt (the client's `lease_checked`),
    instead of calling on while another instance may hold the tenant's turn. Lists are read-only and pass
    through.
    """

    def __init__(self, client: DefenderLike, lease: Lease) -> None:
        self.client = client
        self.lease = lease

    @property
    def list_calls(self) -> int:
        return self.client.list_calls

    @property
    def delete_calls(self) -> int:
        return self.client.delete_calls

    def _inside(self) -> AbstractContextManager[object]:
        """The client checks the lease itself before every attempt and around every wait inside one call
        (`DefenderClient.lease_checked`); a client without that hook is checked before the call only."""
        guard = getattr(self.client, "lease_checked", None)
        return guard(self.lease.check) if guard is not None else nullcontext()

    def submit(self, batch: Sequence[Outcome]) -> list[Outcome]:
        self.lease.check()
        with self._inside():
            return self.client.submit(batch)

    def list_indicators(self, filter: str | None = None, page_size: int = 10000) -> Iterator[dict[str, object]]:
        return self.client.list_indicators(filter, page_size)

    def batch_delete(self, ids: Sequence[str]) -> object:
        self.lease.check()
        with self._inside():
            return self.client.batch_delete(ids)

    def delete(self, id: str) -> object:
        self.lease.check()
        with self._inside():
            return self.client.delete(id)

    def identity_ids(self) -> tuple[str, ...]:
        return self.client.identity_ids()


class Followed(_ImportCounters["Submitting"]):
    """The submitter of a job alone in its turn: the turn's view of the tenant follows each import call (a drain's
    coalescer does the same for its jobs' shared calls), and the first call tells the tenant mirror the tenant is
    changing (`tenant.drain.DrainTenant.before_change`)."""

    def __init__(self, client: Submitting, tenant: DrainTenant, identities: Sequence[str]) -> None:
        self.client = client
        self.tenant = tenant
        self.created_by = identities[0] if identities else None

    def submit(self, batch: Sequence[Outcome]) -> list[Outcome]:
        self.tenant.before_change()
        try:
            results = self.client.submit(batch)
        except BaseException as e:
            done = [p for p in getattr(e, "partial", None) or () if isinstance(p, Outcome)]
            self.tenant.imported(done, self.created_by)
            self.tenant.import_failed(e)
            raise
        self.tenant.imported(results, self.created_by)
        return results


class Submitting(Protocol):
    """What `Followed` wraps: the submitter `session.start` gives (the lease-checked client)."""

    @property
    def api_calls(self) -> int: ...

    @property
    def retries(self) -> int: ...

    def submit(self, batch: Sequence[Outcome]) -> list[Outcome]: ...


def run_job(
    job: Job,
    *,
    client: DefenderLike | None,
    turn: TenantTurn,
    reports: Reports,
    hooks: JobHooks | None = None,
) -> JobResult:
    """Import one input end to end (the steps are in the module docstring).

    Raises what the turn raises (the lock's timeout, a lost lease): the entry point decides what that means
    (the host retries a blob event; HTTP answers 503). An input that changed before any row was read gets a
    `failed` report saying so.
    """
    hooks = hooks or JobHooks()
    with turn.hold(job.lock_wait) as lease:
        if reports.already_done():
            log.info("%s already has a complete report: nothing to do", job.source)
            return JobResult(dict(job.report_source), already_done=True)
        try:
            result = _process(job, client, lease, reports, hooks)
        except InputChanged as e:
            # Before any row was read (the head, or the ranking pass): the new version has its own event.
            log.warning("%s: %s", job.source, e)
            publish_failed_report(reports, job, f"{e}; a new upload is imported by its own event")
            return JobResult(dict(job.report_source), changed=e)
        reports.publish()
    return result


def _process(job: Job, client: DefenderLike | None, lease: Lease, reports: Reports, hooks: JobHooks) -> JobResult:
    settings, options = job.settings, job.options
    with ExitStack() as stack:
        stream = stack.enter_context(job.open_input()) if job.saved is None and job.open_input else None
        if stream is not None and hooks.on_stream is not None:
            hooks.on_stream(stream)
        limit = None
        if client is not None and job.deadline_seconds is not None:
            limit = stack.enter_context(client.time_limit(job.deadline_seconds(), job.deadline_label))
        json_out, csv_out, html_out = stack.enter_context(reports.open())
        writer = ReportWriter(
            json_out,
            csv_out,
            source=dict(job.report_source),
            started_at=job.started,
            dry_run=options.dry_run_under(settings) or client is None,
            html_out=html_out,
        )
        steward, submitter = _tenant_side(job, client, lease, stream) if client is not None else (None, None)
        run = process_stream(
            stream,
            job.name,
            settings=settings,
            options=options,
            submitter=submitter,
            reports=writer,
            source=job.source,
            now=job.started,
            on_batch=hooks.on_batch if submitter is not None else None,
            on_outcome=hooks.on_outcome,
            on_ignored=hooks.on_ignored,
            skip_reason=job.skip_reason,
            steward=steward,
            items=job.saved,
            resume=job.resume,
            on_flush=hooks.on_flush,
            interrupt=job.interrupt,
            on_reviewed=hooks.on_reviewed,
            report_extra=hooks.report_extra,
        )
    return JobResult(writer.source, run=run, time_limit=limit, changed=run.changed)


def _tenant_side(
    job: Job, client: DefenderLike, lease: Lease, stream: io.BufferedReader | None
) -> tuple[Reviewer, Submitter | None]:
    """The job's steward (the tenant's view loaded, the ranking pass made when needed) and its submitter: every
    call lease-checked; a turn whose imports the drain's view follows gets them through `Followed`."""
    checked = LeaseChecked(client, lease)
    bound = job.entries_at_most
    if bound is None and stream is not None and job.size is not None:
        bound = session.entries_bound(stream.peek(2)[:2], job.size)
    steward, submitter = session.start(
        checked,
        job.settings,
        options=job.options,
        entries_at_most=bound,
        second_pass=lambda: _second_pass(job),
        drain=job.drain,
    )
    tenant = getattr(steward, "drain", None)
    if submitter is not None and job.follow_imports and isinstance(tenant, DrainTenant):
        submitter = Followed(submitter, tenant, steward.identities)
    return steward, submitter


def _second_pass(job: Job) -> Iterator[object]:
    """The steward's ranking pass: the same input version read and validated again, with the same clock."""
    if job.saved is not None:
        yield from validate(job.saved, job.settings, options=job.options, source=job.source, now=job.started)
        return
    assert job.open_input is not None
    from shared.readers import read

    with job.open_input() as stream:
        items = read(stream, job.name, limits=job.settings.read_limits)
        yield from validate(items, job.settings, options=job.options, source=job.source, now=job.started)


def publish_failed_report(reports: Reports, job: Job, message: str, *, dry_run: bool | None = None) -> None:
    """A report with no entries, status `failed` and one file-level error (bad metadata, a changed input)."""
    now = datetime.now(UTC)
    with reports.open() as (json_out, csv_out, html_out):
        w = ReportWriter(
            json_out,
            csv_out,
            source=dict(job.report_source),
            started_at=now,
            dry_run=job.options.dry_run_under(job.settings) if dry_run is None else dry_run,
            html_out=html_out,
        )
        w.error(FileProblem(message))
        w.finish(Summary(), FAILED, finished_at=datetime.now(UTC))
    reports.publish()


def decode_once(items: Iterable[ReaderItem], *, format: str, max_rows: int | None = None) -> SavedItems:
    """Keep the items of an input read once (see SavedItems); stops keeping rows past `max_rows`.

    Past `max_rows` the rows are still counted (`SavedItems.rows`, for the caller's 413 message) but not kept.
    """
    saved = SavedItems(format=format)
    for item in items:
        if max_rows is not None and saved.rows >= max_rows and isinstance(item, RawRow):
            saved.rows += 1
            continue
        saved.add(item)
    saved.details = dict(getattr(items, "details", None) or {})
    return saved
