"""Command line: `python -m shared validate|submit FILE... [--report-dir DIR]` (CONTRACT.md "Command line").

Entry point: builds settings once from the environment and runs the same `process_stream` as the
function app. `run_files` is the shared loop (report files, per-file summary, exit code) that every
subcommand uses with its own submitter factory and skip reason.

`submit` (and `submit --dry-run`) puts the quota steward to work for every file, as the function app does
(issue 6: capacity, `unchanged`, action replacement, feed sync with `--feed`/`--sync`). The CLI takes no
tenant lock: it is for one-off imports, not for running next to the function app on the same tenant.

Exit codes: 0 every file was processed (entries may still be invalid or failed); 1 a file could not be
processed at all or Defender could not be reached; 2 usage errors (bad arguments or settings, two
inputs with the same file name).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from shared.core.model import Ignored, Outcome, Status
from shared.core.options import NO_OPTIONS, InputOptions
from shared.core.settings import Settings, SettingsError
from shared.pipeline.reports import FAILED, html_name, report_names

if TYPE_CHECKING:
    from shared.pipeline.job import DefenderLike
    from shared.pipeline.process import RunResult

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
SHOW_REJECTED = 10  # rejected rows printed per file
SHOW_IGNORED = 5  # ignored lines printed per file (the JSON report lists up to 1,000)
_REJECTED = frozenset({Status.invalid, Status.failed})

Printer = Callable[[str], None]
ClientFactory = Callable[[], "DefenderLike"]


class Tally:
    """Counts by status and type, and the first rejected rows, for the console (a job's `on_outcome`)."""

    def __init__(self) -> None:
        # `add` runs once per entry: plain dicts (a Counter's `+=` costs over twice as much), in first-seen order,
        # the statuses counted by the status object itself and named once, in `by_status`.
        self._by_status: dict[Status, int] = {}
        self.by_type: dict[str, int] = {}
        self.rejected: list[dict[str, object]] = []
        self.ignored: list[Ignored] = []

    @property
    def by_status(self) -> dict[str, int]:
        """Entries by status name, in the order the statuses were first seen."""
        return {status.value: n for status, n in self._by_status.items()}

    def ignore(self, item: Ignored) -> None:
        if len(self.ignored) < SHOW_IGNORED:
            self.ignored.append(item)

    def add(self, outcome: Outcome) -> None:
        status = outcome.status
        assert status is not None
        counts = self._by_status
        counts[status] = counts.get(status, 0) + 1
        t = outcome.type or "unknown"
        counts_t = self.by_type
        counts_t[t] = counts_t.get(t, 0) + 1
        if status in _REJECTED and len(self.rejected) < SHOW_REJECTED:
            self.rejected.append(
                {"line": outcome.line, "status": status.value, "value": outcome.value, "reason": outcome.reason}
            )


class LocalReports:
    """A file's reports in the report directory (`pipeline.job.Reports`): written to temporary files beside the
    final names and renamed by `publish` (CSV, HTML, then JSON last, as in Azure), so a killed run never leaves a
    half-written JSON report at the final path. `opened`: reports were published (the final files exist)."""

    def __init__(self, json_name: str, csv_name: str) -> None:
        self.json_name = json_name
        self.csv_name = csv_name
        self.html_name = html_name(json_name)
        self.opened = False
        suffix = f".tmp-{os.getpid()}"
        self._tmp = (json_name + suffix, csv_name + suffix, self.html_name + suffix)
        self._written = False

    def already_done(self) -> bool:
        return False

    @contextmanager
    def open(self) -> Iterator[tuple[TextIO, TextIO, TextIO]]:
        json_tmp, csv_tmp, html_tmp = self._tmp
        try:
            with (
                open(json_tmp, "w", encoding="utf-8", newline="\n") as jf,
                open(csv_tmp, "w", encoding="utf-8", newline="") as cf,
                open(html_tmp, "w", encoding="utf-8", newline="\n") as hf,
            ):
                yield jf, cf, hf
        except BaseException:
            self._discard()
            raise
        self._written = True

    def publish(self) -> None:
        if not self._written:
            raise RuntimeError("no reports to publish: open() was not used")
        json_tmp, csv_tmp, html_tmp = self._tmp
        os.replace(csv_tmp, self.csv_name)
        os.replace(html_tmp, self.html_name)
        os.replace(json_tmp, self.json_name)  # last: a JSON report at its final name is complete
        self._written = False
        self.opened = True

    def discard(self) -> None:
        """Remove temporary files a failed run left (nothing at the final names is touched)."""
        self._discard()

    def _discard(self) -> None:
        for name in self._tmp:
            with contextlib.suppress(FileNotFoundError):
                os.remove(name)


@dataclass
class FileResult:
    """What one file's run did, for the console and the `--json` summary."""

    file: str
    reports: dict[str, str] | None
    status: str = FAILED
    error: str | None = None
    run: RunResult | None = None
    tally: Tally = field(default_factory=Tally)

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"file": self.file}
        if self.reports is not None:
            out["reports"] = self.reports
        out["status"] = self.status
        if self.error is not None:
            out["error"] = self.error
        run = self.run
        if run is not None:
            out.update(
                format=run.format,
                summary=run.summary.as_dict(),
                byStatus=dict(self.tally.by_status),
                byType=dict(self.tally.by_type),
                errors=[p.as_dict() for p in run.errors],
                rejected=self.tally.rejected,
            )
            if run.tenant is not None:
                out["tenant"] = run.tenant
        return out


def duplicate_names(paths: Sequence[Path]) -> list[str]:
    """File names given more than once (their reports would overwrite each other)."""
    counts = Counter(p.name for p in paths)
    return sorted(n for n, c in counts.items() if c > 1)


def run_files(
    paths: Sequence[Path],
    report_dir: Path,
    settings: Settings,
    client_factory: ClientFactory | None,
    skip_reason: str | None,
    printer: Printer = print,
    *,
    json_output: bool = False,
    options: InputOptions = NO_OPTIONS,
) -> int:
    """Process every file with one client (so pacing spans them all); returns the exit code.

    `client_factory=None` validates only; `skip_reason` is what entries that would be sent are marked with
    when nothing is submitted ("validation only", "dry run"). With a client each file gets the quota steward
    on it (in a dry run it only lists the tenant), as in the function app. `options`: every file's own
    (`--dry-run`, `--feed`, `--sync`, `--sync-force`).
    """
    dupes = duplicate_names(paths)
    if dupes:
        printer(f"error: two inputs have the same file name ({', '.join(dupes)}); their reports would collide")
        return EXIT_USAGE
    report_dir.mkdir(parents=True, exist_ok=True)
    client = client_factory() if client_factory is not None else None
    code = EXIT_OK
    results: list[FileResult] = []
    for path in paths:
        result = _run_file(
            path, report_dir, settings, client, skip_reason, printer, json_output=json_output, options=options
        )
        results.append(result)
        if result.status == FAILED:
            code = EXIT_FAILED
        if not json_output and result.run is not None:
            _print_file(printer, result)
    if json_output:
        summary = {"exitCode": code, "files": [r.as_json() for r in results]}
        printer(json.dumps(summary, indent=2, ensure_ascii=False))
    return code


def _run_file(
    path: Path,
    report_dir: Path,
    settings: Settings,
    client: DefenderLike | None,
    skip_reason: str | None,
    printer: Printer,
    *,
    json_output: bool,
    options: InputOptions,
) -> FileResult:
    """One file through `run_job`."""
    from shared.pipeline.job import Job, JobHooks, NoTurn, run_job

    json_name, csv_name = report_names(str(report_dir / path.name))
    result = FileResult(str(path), {"json": json_name, "csv": csv_name, "html": html_name(json_name)})
    reports = LocalReports(json_name, csv_name)
    streams: list[BinaryIO] = []
    hooks = JobHooks(on_outcome=result.tally.add, on_stream=streams.append, on_ignored=result.tally.ignore)
    try:
        size = path.stat().st_size
        if client is not None and not json_output:
            hooks.on_batch = _progress(printer, path.name, client, streams, size)
        job = Job(
            name=path.name,
            source=path.name,
            report_source={"container": None, "name": path.name, "etag": None, "size": size},
            settings=settings,
            options=options,
            started=datetime.now(UTC),  # validation's clock: the same for the ranking pass and the real one
            open_input=lambda: path.open("rb"),
            size=size,
            skip_reason=skip_reason,
        )
        done = run_job(job, client=client, turn=NoTurn(), reports=reports, hooks=hooks)
    except OSError as e:
        reports.discard()
        result.error = f"{e.strerror or e}: {e.filename or path}"
        if not reports.opened:  # no report was written: do not point at files that do not exist (or are stale)
            result.reports = None
        if not json_output:
            printer(f"{path}: cannot be processed: {result.error}")
        return result
    except Exception as e:  # the CLI's one catch-all: report and go on with the next file
        reports.discard()
        logging.getLogger(__name__).exception("processing %s failed", path)
        result.error = f"{type(e).__name__}: {e}"
        if not json_output:
            printer(f"{path}: failed: {result.error}")
        return result
    result.run = done.run
    result.status = done.status or FAILED
    return result


def _progress(
    printer: Printer,
    name: str,
    client: DefenderLike,
    streams: Sequence[BinaryIO] = (),
    size: int = 0,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[int, int], None]:
    """`submit` progress after each batch: batches done, entries settled of those seen so far, the import
    call rate, and an ETA estimated from the share of the file read (the entry total is known only at the end).
    """
    started = clock()
    calls0 = client.api_calls
    batches = 0

    def report(done: int, seen: int) -> None:
        nonlocal batches
        batches += 1
        elapsed = clock() - started
        line = f"{name}: batch {batches}: {done} of {seen} entries so far settled by Defender"
        calls = client.api_calls - calls0
        if calls and elapsed > 0:
            line += f"; {calls} calls, {calls / elapsed * 60:.1f} calls/minute"
        read = _position(streams[-1]) if streams else 0
        if read and size and read < size and elapsed > 0:
            line += f"; about {elapsed * (size - read) / read:.0f} s left"
        printer(line)

    return report


def _position(stream: BinaryIO) -> int:
    """Bytes read so far from the input file (0 when the stream cannot tell)."""
    try:
        return int(stream.tell())
    except (OSError, ValueError):
        return 0


def _print_file(printer: Printer, r: FileResult) -> None:
    run = r.run
    assert run is not None
    s = run.summary
    printer(f"{r.file} ({run.format}): {r.status}, {s.total} entries")
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(r.tally.by_status.items()))
    if statuses:
        printer(f"  by status: {statuses}")
    types = ", ".join(f"{k} {v}" for k, v in sorted(r.tally.by_type.items()))
    if types:
        printer(f"  by type: {types}")
    if s.ignoredLines:
        printer(f"  ignored lines: {s.ignoredLines}")
    if s.apiCalls:
        printer(f"  Defender: {s.apiCalls} import calls, {s.retries} retries")
    t = run.tenant
    if t and "error" in t:
        printer(f"  tenant: {t['error']}")
    elif t:
        printer(
            f"  tenant: {t['countBefore']} active indicators before, {t['countAfter']} after, room left "
            f"{t['roomLeft']}; {t['capacitySkipped']} skipped for capacity, {t['deleted']} deleted; "
            f"{s.listCalls} List and {s.deleteCalls} delete calls"
        )
        sync = t.get("sync")
        if isinstance(sync, dict) and sync.get("heldBack"):
            printer(f"  feed {sync['feed']}: {sync['stale']} stale indicators kept: {sync['heldBack']}")
    _print_lines(r, run, printer)
    if r.reports is not None:
        printer(f"  reports: {r.reports['json']}, {r.reports['csv']}, {r.reports['html']}")


def _print_lines(r: FileResult, run: RunResult, printer: Printer) -> None:
    """The file-level errors, and the first rejected entries and ignored lines."""
    for p in run.errors:
        where = f"line {p.line}: " if p.line is not None else ""
        kind = "file warning" if p.warning else "file error"
        printer(f"  {kind}: {where}{p.message}")
    if r.tally.rejected:
        printer(f"  first rejected entries (up to {SHOW_REJECTED}):")
        for rej in r.tally.rejected:
            printer(f"    line {rej['line']}: {rej['status']}: {rej['value']!r}: {rej['reason']}")
    if r.tally.ignored:
        printer(f"  first ignored lines (up to {SHOW_IGNORED}; the JSON report lists more):")
        for ign in r.tally.ignored:
            printer(f"    line {ign.line}: {ign.text!r} ({ign.reason})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared", description="Import IOC files into Defender.")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="read and validate only; valid entries are reported skipped")
    v.add_argument("files", nargs="+", type=Path, metavar="FILE")
    v.add_argument("--report-dir", type=Path, default=Path("."), metavar="DIR")
    v.add_argument("--json", action="store_true", help="print a machine-readable summary")
    s = sub.add_parser(
        "submit",
        help="validate and submit with the settings from the environment",
        description=(
            "Validate and submit with the settings from the environment, with quota stewardship: the tenant "
            "is listed first (capacity, unchanged indicators, action replacement, feed sync). This command "
            "takes NO tenant lock: it is meant for one-off imports; do not run it while the function app "
            "imports into the same tenant (capacity checks and pacing would not see each other)."
        ),
    )
    s.add_argument("files", nargs="+", type=Path, metavar="FILE")
    s.add_argument("--report-dir", type=Path, default=Path("."), metavar="DIR")
    s.add_argument("--dry-run", action="store_true", help="validate, list the tenant and report; change nothing")
    s.add_argument("--feed", metavar="NAME", help="the feed these files belong to (ownership mark)")
    s.add_argument(
        "--sync",
        action="store_true",
        help="each file is the full state of --feed: delete the feed's own indicators it no longer holds",
    )
    s.add_argument("--sync-force", action="store_true", help="delete even when the safety rules hold deletes back")
    s.add_argument("--json", action="store_true", help="print a machine-readable summary")
    return parser


def _client_factory(settings: Settings) -> ClientFactory:
    def make() -> DefenderLike:
        from shared.defender import make_client  # azure-identity and requests load only for `submit`

        return make_client(settings)

    return make


def main(argv: Sequence[str] | None = None, *, env: dict[str, str] | None = None, printer: Printer = print) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors, 0 for --help
        return int(e.code or 0)
    try:
        settings = Settings.from_env(os.environ if env is None else env)
    except SettingsError as e:
        printer(f"error: {e}")
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.command == "validate":
        return run_files(args.files, args.report_dir, settings, None, "validation only", printer, json_output=args.json)
    options = InputOptions(
        dry_run=True if args.dry_run else None,
        feed=(args.feed or "").strip() or None,
        sync=bool(args.sync),
        sync_force=bool(args.sync_force),
    )
    if options.sync and not options.feed:
        printer("error: --sync needs --feed NAME (the feed whose state the files are)")
        return EXIT_USAGE
    reason = "dry run" if options.dry_run_under(settings) else None
    return run_files(
        args.files,
        args.report_dir,
        settings,
        _client_factory(settings),
        reason,
        printer,
        json_output=args.json,
        options=options,
    )
