"""How an entry point puts the quota steward to work for one input (issue 6): shared by the blob drop, the
HTTP import and the CLI, so all three take the same decisions.

Service layer, no I/O of its own: the Defender client and the input's `reopen` are handed in.

- `folder_overrides(name)`: the feed folder convention — a blob named `feeds/<feed>/<file>` is the full
  current state of feed `<feed>` (`feed=<feed>`, `sync=true`); the blob's own metadata wins.
- `check_sync(settings)`: `sync=true` needs a `feed` (a sync without a feed has nothing it may delete).
- `entries_bound(head, size)`: an upper bound on an input's entries when one is cheap to know, so a
  small input skips the steward's ranking pass (a second read of the input).
- `start(...)`: build the steward with the client's own identity (`identities_of`) and load the tenant;
  when the tenant cannot be read, a stand-in that submits nothing and says why (a run that cannot see
  the cap must not fill it blindly).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from shared.defender.errors import DefenderError
from shared.model import Outcome, Summary
from shared.settings import Settings, SettingsError
from shared.steward import Steward, prepare

log = logging.getLogger(__name__)

FEEDS_FOLDER = "feeds"
GZIP_MAGIC = b"\x1f\x8b"
# The shortest valid indicator is a 3-character domain name (`a.io` is 4; `x.y` passes rules.domain_problems),
# and entries are separated by at least one byte; every reader takes an entry's value from the input's
# own bytes (refanging only shortens it). So an uncompressed input of `size` bytes holds at most
# (size + 1) // 4 entries. Gzip breaks the bound: None.
MIN_ENTRY_BYTES = 4


def folder_overrides(name: str) -> dict[str, str]:
    """`feeds/<feed>/<file>` → {"feed": <feed>, "sync": "true"}; anything else → {}.

    Only the first level under `feeds/` names the feed; deeper folders are part of the file's path.
    """
    parts = name.split("/")
    if len(parts) >= 3 and parts[0] == FEEDS_FOLDER and parts[1].strip() and parts[-1]:
        return {"feed": parts[1].strip(), "sync": "true"}
    return {}


def blob_overrides(name: str, metadata: Mapping[str, str]) -> dict[str, str]:
    """The per-file overrides of a blob: its folder's convention, then its own metadata (which wins)."""
    out = folder_overrides(name)
    out.update({k.strip().lower(): v for k, v in metadata.items()})
    return out


def check_sync(settings: Settings) -> None:
    """Raise SettingsError when sync mode is asked for without a feed to sync."""
    if settings.sync and not settings.feed:
        raise SettingsError("invalid overrides: sync: sync=true needs feed=<name> (the feed whose state this is)")


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

    () makes the steward rely on the ownership mark alone (see `shared.quota.owned_by_app`).
    """
    get = getattr(client, "identity_ids", None)
    return tuple(get()) if callable(get) else ()


def start(
    client: Any,
    settings: Settings,
    *,
    entries_at_most: int | None,
    reopen: Callable[[], Iterable[object]],
) -> tuple[Any, Any]:
    """(steward, submitter) for `process_stream(steward=..., submitter=...)`, the tenant loaded.

    Must run under the tenant lock (its count is not raced then). The steward knows the client's identity
    (`identities_of`): only records carrying our mark and created by us count as ours. `reopen()` gives the
    input's validated stream again, validated with the same `now` as the real pass (see
    `shared.steward.prepare`). When the tenant cannot be listed (or no token can be had), the steward is an
    `UnreadTenant` and the submitter a `Refused` (dry run: None, so entries are reported `skipped` "dry run"
    as without a tenant).
    """
    list_calls0 = getattr(client, "list_calls", 0)
    try:
        # Our identity first: ownership (feed sync, replacement) needs it before the first decision.
        steward = Steward(client, settings, identities=identities_of(client))
        prepare(steward, entries_at_most=entries_at_most, reopen=reopen)
    except DefenderError as e:
        log.warning("the tenant's indicators could not be listed: %s", e)
        stand_in = UnreadTenant(client, e, list_calls0=list_calls0, dry_run=settings.dry_run)
        return stand_in, None if settings.dry_run else Refused(e)
    return steward, None if settings.dry_run else client
