"""Starting the steward for one input: its identity, the tenant loaded, and the stand-ins used when the
tenant cannot be read (a run that cannot see the cap must not fill it blindly).

No I/O of its own: the Defender client and the input's second pass are handed in. `entries_bound` gives an
upper bound on an input's entries when one is cheap to know, so a small input skips the ranking pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from shared.core.errors import DefenderError
from shared.core.model import Outcome, Summary
from shared.core.options import NO_OPTIONS, InputOptions
from shared.core.settings import Settings
from shared.tenant.drain import DrainTenant
from shared.tenant.steward import Steward, prepare

log = logging.getLogger(__name__)


GZIP_MAGIC = b"\x1f\x8b"
# The shortest valid indicator is a 3-character domain name (`a.io` is 4; `x.y` passes rules.domain_problems),
# and entries are separated by at least one byte; every reader takes an entry's value from the input's
# own bytes (refanging only shortens it). So an uncompressed input of `size` bytes holds at most
# (size + 1) // 4 entries. Gzip breaks the bound: None.
MIN_ENTRY_BYTES = 4


def entries_bound(head: bytes, size: int) -> int | None:
    """At most how many entries an input of `size` bytes starting with `head` holds; None for gzip."""
    if head[:2] == GZIP_MAGIC:
        return None
    return (size + 1) // MIN_ENTRY_BYTES


class Refused:
    """The submitter of a run whose tenant could not be read: every batch fails with that error, no call.

    `process_stream` treats it as it treats the real client's error: a stop error (no access, Defender
    or identity unreachable) fails every pending entry with its message and makes the run `failed`.
    """

    api_calls = 0
    retries = 0

    def __init__(self, error: DefenderError) -> None:
        self.error = error

    def submit(self, batch: Sequence[Outcome]) -> list[Outcome]:
        raise self.error


class UnreadTenant:
    """Stands in for the steward when List failed: passes entries through, reports the failure."""

    def __init__(self, client: Any, error: Exception, *, list_calls0: int, dry_run: bool) -> None:
        self.client = client
        self.message = f"could not read the tenant's indicators: {getattr(error, 'message', None) or error}"
        self._list_calls0 = list_calls0
        self._dry_run = dry_run

    def review(self, outcome: Outcome) -> Outcome:
        return outcome

    def after_submit(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        return list(outcomes)

    def finish(self, summary: Summary, *, file_error: bool) -> None:
        return None

    def apply_counters(self, summary: Summary) -> None:
        summary.listCalls += getattr(self.client, "list_calls", 0) - self._list_calls0

    def report_extra(self) -> dict[str, Any]:
        return {"tenant": {"error": self.message, "dryRun": self._dry_run}}


def identities_of(client: Any) -> tuple[str, ...]:
    """The client's own identity claims (`DefenderClient.identity_ids`); () for a client that has none.

    () makes the steward rely on the ownership mark alone (see `shared.tenant.ownership.owned_by_app`).
    """
    get = getattr(client, "identity_ids", None)
    return tuple(get()) if callable(get) else ()


def start(
    client: Any,
    settings: Settings,
    *,
    options: InputOptions = NO_OPTIONS,
    entries_at_most: int | None,
    second_pass: Callable[[], Iterable[object]],
    drain: DrainTenant | Callable[[], DrainTenant] | None = None,
) -> tuple[Any, Any]:
    """(steward, submitter) for `process_stream(steward=..., submitter=...)`, the tenant loaded.

    Must run under the tenant lock (its count is not raced then). The steward knows the client's identity
    (`identities_of`): only records carrying our mark and created by us count as ours. `second_pass()` gives the
    input's validated stream again, validated with the same `now` as the real pass (see
    `shared.tenant.steward.prepare`). When the tenant cannot be listed (or no token can be had), the steward is an
    `UnreadTenant` and the submitter a `Refused` (dry run: None, so entries are reported `skipped` "dry run"
    as without a tenant). `options`: the input's own (its feed, sync and dry run).
    `drain`: the view and room of the turn (shared by the jobs of a drain; no List of its own), or a callable
    giving it (the tenant mirror read, or the tenant listed, when the steward starts: a List that fails is the
    tenant that could not be read).
    """
    list_calls0 = getattr(client, "list_calls", 0)
    try:
        # Our identity first: ownership (feed sync, replacement) needs it before the first decision.
        steward = Steward(client, settings, options=options, identities=identities_of(client), drain=drain)
        prepare(steward, entries_at_most=entries_at_most, second_pass=second_pass)
    except DefenderError as e:
        log.warning("the tenant's indicators could not be listed: %s", e)
        dry_run = options.dry_run_under(settings)
        stand_in = UnreadTenant(client, e, list_calls0=list_calls0, dry_run=dry_run)
        return stand_in, None if dry_run else Refused(e)
    return steward, None if steward.dry_run else client
