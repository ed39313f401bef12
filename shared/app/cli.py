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
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from shared.core.model import Outcome, Status
from shared.core.settings import Settings, SettingsError
from shared.pipeline.reports import FAILED, ReportWriter, html_name, report_names

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
SHOW_REJECTED = 10  # rejected rows printed per file

Printer = Callable[[str], None]
SubmitterFactory = Callable[[], Any]


class _TallyingWriter(ReportWriter):
    """A ReportWriter that also counts by status and type and keeps the first rejected rows for the console."""

    def __init__(self, json_out: TextIO, csv_out: TextIO, **kw: Any) -> None:
        super().__init__(json_out, csv_out, **kw)
        self.by_status: Counter[str] = Counter()
        self.by_type: Counter[str] = Counter()
        self.rejected: list[dict[str, Any]] = []
        self.tenant: dict[str, Any] | None = None

    def finish(self, summary: Any, status: str, **kw: Any) -> None:
        extra = kw.get("extra") or {}
        self.tenant = extra.get("tenant")
        super().finish(summary, status, **kw)

    def add(self, outcome: Outcome) -> None:
        super().add(outcome)
        assert outcome.status is not None
        self.by_status[outcome.status.value] += 1
        self.by_type[outcome.type or "unknown"] += 1
        if outcome.status in (Status.invalid, Status.failed) and len(self.rejected) < SHOW_REJECTED:
            self.rejected.append(
                {"line": outcome.line, "status": outcome.status.value, "value": outcome.value, "reason": outcome.reason}
            )


def duplicate_names(paths: Sequence[Path]) -> list[str]:
    """File names given more than once (their reports would overwrite each other)."""
    counts = Counter(p.name for p in paths)
    return sorted(n for n, c in counts.items() if c > 1)


def run_files(
    paths: Sequence[Path],
    report_dir: Path,
    settings: Settings,
    submitter_factory: SubmitterFactory | None,
    skip_reason: str | None,
    printer: Printer = print,
    *,
    json_output: bool = False,
    stewarded: bool = False,
) -> int:
    """Process every file with one submitter (so pacing spans them all); returns the exit code.

    `submitter_factory=None` validates only; `skip_reason` is what entries that would be sent are
    marked with when nothing is submitted ("validation only", "dry run"). `stewarded`: the factory's
    client is a Defender client and each file gets a quota steward on it (`shared.tenant`); in a
    dry run it only lists the tenant.
    """
    from shared.pipeline.process import process_stream  # loads the readers and validation only when needed
    from shared.tenant import session

    dupes = duplicate_names(paths)
    if dupes:
        printer(f"error: two inputs have the same file name ({', '.join(dupes)}); their reports would collide")
        return EXIT_USAGE
    report_dir.mkdir(parents=True, exist_ok=True)
    client = submitter_factory() if submitter_factory is not None else None
    submitter = None if stewarded and settings.dry_run else client
    code = EXIT_OK
    results: list[dict[str, Any]] = []
    for path in paths:
        json_name, csv_name = report_names(str(report_dir / path.name))
        page_name = html_name(json_name)
        entry: dict[str, Any] = {"file": str(path), "reports": {"json": json_name, "csv": csv_name, "html": page_name}}
        results.append(entry)
        opened = False
        try:
            size = path.stat().st_size
            with (
                path.open("rb") as stream,
                open(json_name, "w", encoding="utf-8", newline="\n") as jf,
                open(csv_name, "w", encoding="utf-8", newline="") as cf,
                open(page_name, "w", encoding="utf-8", newline="\n") as hf,
            ):
                opened = True
                writer = _TallyingWriter(
                    jf,
                    cf,
                    source={"container": None, "name": path.name, "etag": None, "size": size},
                    started_at=datetime.now(UTC),
                    dry_run=submitter is None or settings.dry_run,
                    html_out=hf,
                )
                now = datetime.now(UTC)  # validation's clock: the same for the ranking pass and the real one
                steward, file_submitter = None, submitter
                if stewarded and client is not None:
                    steward, file_submitter = session.start(
                        client,
                        settings,
                        entries_at_most=session.entries_bound(stream.peek(2)[:2], size),
                        reopen=lambda p=path, n=now: _revalidate(p, settings, n),  # type: ignore[misc]
                    )
                progress = None if json_output else _progress(printer, path.name, file_submitter, stream, size)
                result = process_stream(
                    stream,
                    path.name,
                    settings=settings,
                    submitter=file_submitter,
                    reports=writer,
                    source=path.name,
                    now=now,
                    on_batch=progress if file_submitter is not None else None,
                    skip_reason=skip_reason,
                    steward=steward,
                )
        except OSError as e:
            entry.update(status=FAILED, error=f"{e.strerror or e}: {e.filename or path}")
            if not opened:  # no report was written: do not point at files that do not exist (or are stale)
                del entry["reports"]
            code = EXIT_FAILED
            if not json_output:
                printer(f"{path}: cannot be processed: {entry['error']}")
            continue
        except Exception as e:  # the CLI's one catch-all: report and go on with the next file
            logging.getLogger(__name__).exception("processing %s failed", path)
            entry.update(status=FAILED, error=f"{type(e).__name__}: {e}")
            code = EXIT_FAILED
            if not json_output:
                printer(f"{path}: failed: {entry['error']}")
            continue
        if result.status == FAILED:
            code = EXIT_FAILED
        entry.update(
            status=result.status,
            format=result.format,
            summary=result.summary.as_dict(),
            byStatus=dict(writer.by_status),
            byType=dict(writer.by_type),
            errors=[p.as_dict() for p in result.errors],
            rejected=writer.rejected,
        )
        if writer.tenant is not None:
            entry["tenant"] = writer.tenant
        if not json_output:
            _print_file(printer, entry)
    if json_output:
        printer(json.dumps({"exitCode": code, "files": results}, indent=2, ensure_ascii=False))
    return code


def _revalidate(path: Path, settings: Settings, now: datetime) -> Any:
    """The steward's ranking pass over a file: read and validated again with the real pass's clock."""
    from shared.checks.validate import validate
    from shared.readers import read

    with path.open("rb") as stream:
        yield from validate(read(stream, path.name), settings, source=path.name, now=now)


def _progress(
    printer: Printer,
    name: str,
    submitter: Any = None,
    stream: Any = None,
    size: int = 0,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[int, int], None]:
    """`submit` progress after each batch: batches done, entries settled of those seen so far, the import
    call rate, and an ETA estimated from the share of the file read (the entry total is known only at the end).
    """
    started = clock()
    calls0 = getattr(submitter, "api_calls", 0)
    batches = 0

    def report(done: int, seen: int) -> None:
        nonlocal batches
        batches += 1
        elapsed = clock() - started
        line = f"{name}: batch {batches}: {done} of {seen} entries so far settled by Defender"
        calls = getattr(submitter, "api_calls", calls0) - calls0
        if calls and elapsed > 0:
            line += f"; {calls} calls, {calls / elapsed * 60:.1f} calls/minute"
        read = _position(stream)
        if read and size and read < size and elapsed > 0:
            line += f"; about {elapsed * (size - read) / read:.0f} s left"
        printer(line)

    return report


def _position(stream: Any) -> int:
    """Bytes read so far from the input file (0 when the stream cannot tell)."""
    try:
        return int(stream.tell()) if stream is not None else 0
    except (OSError, ValueError):
        return 0


def _print_file(printer: Printer, e: dict[str, Any]) -> None:
    s = e["summary"]
    printer(f"{e['file']} ({e['format']}): {e['status']}, {s['total']} entries")
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(e["byStatus"].items()))
    if statuses:
        printer(f"  by status: {statuses}")
    types = ", ".join(f"{k} {v}" for k, v in sorted(e["byType"].items()))
    if types:
        printer(f"  by type: {types}")
    if s["ignoredLines"]:
        printer(f"  ignored lines: {s['ignoredLines']}")
    if s["apiCalls"]:
        printer(f"  Defender: {s['apiCalls']} import calls, {s['retries']} retries")
    t = e.get("tenant")
    if t and "error" in t:
        printer(f"  tenant: {t['error']}")
    elif t:
        printer(
            f"  tenant: {t['countBefore']} active indicators before, {t['countAfter']} after, room left "
            f"{t['roomLeft']}; {t['capacitySkipped']} skipped for capacity, {t['deleted']} deleted; "
            f"{s.get('listCalls', 0)} List and {s.get('deleteCalls', 0)} delete calls"
        )
        sync = t.get("sync")
        if sync and sync.get("heldBack"):
            printer(f"  feed {sync['feed']}: {sync['stale']} stale indicators kept: {sync['heldBack']}")
    for p in e["errors"]:
        where = f"line {p['line']}: " if "line" in p else ""
        printer(f"  file error: {where}{p['message']}")
    if e["rejected"]:
        printer(f"  first rejected entries (up to {SHOW_REJECTED}):")
        for r in e["rejected"]:
            printer(f"    line {r['line']}: {r['status']}: {r['value']!r}: {r['reason']}")
    printer(f"  reports: {e['reports']['json']}, {e['reports']['csv']}, {e['reports']['html']}")


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


def _submitter_factory(settings: Settings) -> SubmitterFactory:
    def make() -> Any:
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
    from shared.tenant import feeds

    if args.dry_run:
        settings = replace(settings, dry_run=True)
    overrides = {
        "feed": args.feed or "",
        "sync": "true" if args.sync else "",
        "sync_force": "true" if args.sync_force else "",
    }
    try:
        settings = settings.with_overrides(overrides)
        feeds.check_sync(settings)
    except SettingsError as e:
        printer(f"error: {str(e).replace('sync=true needs feed=<name>', '--sync needs --feed NAME')}")
        return EXIT_USAGE
    reason = "dry run" if settings.dry_run else None
    return run_files(
        args.files,
        args.report_dir,
        settings,
        _submitter_factory(settings),
        reason,
        printer,
        json_output=args.json,
        stewarded=True,
    )
