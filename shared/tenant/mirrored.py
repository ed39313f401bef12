"""The tenant mirror in use: read at the start of a turn of the tenant lock, the tenant listed only when the
mirror will not do, written back once at the end (CONTRACT.md "Settings" [mirror], TENANT_REFRESH_MINUTES).

Adapter through Protocols, like `steward`: the Defender client (List) and the mirror's store
(`storage.mirror.MirrorBlob`) are handed in; no `azure.*`, no `requests`. Everything here runs under the
tenant lock, and every write is guarded by the blob's ETag, so a holder that lost its turn cannot overwrite
a newer mirror.

One turn (`Worker.answer`: a drain of coalesced jobs, or a single job):

    mirror = TenantMirror(client, store, tenant="default", settings=settings)
    tenant = mirror.open()      # the mirror, or a full List when it is missing, unreadable, marked changing,
                                # flagged by a drift signal, or older than TENANT_REFRESH_MINUTES
    ...jobs decide against tenant.view; imports and deletes update it (tenant.drain.DrainTenant)...
    mirror.close(clean=True, lease_held=True)   # one write, only when something changed

Crash safety: before the turn's first import or delete the mirror's metadata is marked `changing`
(`DrainTenant.before_change`); a clean end writes the mirror and clears the mark. A turn that dies in between
(a crash, a killed instance, a lost lease) leaves the mark, and the next turn lists the tenant instead of
trusting a mirror that may miss what was imported. A write that meets another ETag (someone wrote the mirror
since it was read) or fails deletes the mirror instead, so the next turn lists too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.core.settings import Settings
from shared.tenant.drain import DrainTenant
from shared.tenant.mirror import Lines, Mirror, MirrorHeader, MirrorUnreadable, decode, encode, refresh_reason, written
from shared.tenant.records import TenantView

log = logging.getLogger(__name__)

STATE_KEY = "state"  # the mirror blob's metadata: `clean`, or `changing` while a turn changes the tenant
CLEAN = "clean"
CHANGING = "changing"


class Lister(Protocol):
    def list_indicators(self, filter: str | None = None, page_size: int = 10000) -> Iterator[dict[str, Any]]: ...


class MirrorStore(Protocol):
    """Where the mirror's bytes live (`storage.mirror.MirrorBlob`). Every write is conditional on an ETag, and
    none raises: the mirror is advice, never a reason to fail an import (a failed write is a None)."""

    def read(self, known_etag: str | None = None) -> tuple[str, Mapping[str, str], Iterable[bytes] | None] | None:
        """(ETag, metadata, lines) of the mirror; None when there is none; lines None when its ETag is still
        `known_etag` (nothing downloaded). Raises ValueError when it cannot be read (storage errors included:
        the tenant is listed instead)."""
        ...

    def mark(self, etag: str, metadata: Mapping[str, str]) -> str | None:
        """Set the metadata if the ETag still matches: the new ETag, or None when it does not."""
        ...

    def write(self, lines: Iterable[bytes], *, etag: str | None, metadata: Mapping[str, str]) -> str | None:
        """Replace the mirror if its ETag still matches (`etag` None: only if there is none): the new ETag,
        or None when the condition failed."""
        ...

    def forget(self) -> None:
        """Delete the mirror (the next turn lists the tenant)."""
        ...


class MirrorCache:
    """The mirror this process last read or wrote, per tenant key, with the blob's ETag then.

    A turn that finds the blob still at that ETag (a conditional read answered `304`) takes the mirror from here
    instead of downloading and decoding it again; any other ETag (another instance wrote it, a turn marked it
    changing) is read from the blob. Records are frozen, so turns share them safely.
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, Mirror]] = {}
        self._lock = threading.Lock()

    def get(self, tenant: str) -> tuple[str, Mirror] | None:
        with self._lock:
            return self._held.get(tenant)

    def put(self, tenant: str, etag: str, mirror: Mirror) -> None:
        with self._lock:
            self._held[tenant] = (etag, mirror)

    def drop(self, tenant: str) -> None:
        with self._lock:
            self._held.pop(tenant, None)


class TenantMirror:
    """The mirror of one tenant key for one turn of its lock. The constructor does no I/O."""

    def __init__(
        self,
        client: Lister,
        store: MirrorStore,
        *,
        tenant: str,
        settings: Settings,
        clock: Callable[[], datetime] | None = None,
        cache: MirrorCache | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.cache = cache
        self._read_mirror: Mirror | None = None
        self.tenant_key = tenant
        self.settings = settings
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tenant: DrainTenant | None = None
        self._etag: str | None = None
        self._marked = False
        self.writes = 0  # mirror writes of this turn (the final write, and the `changing` mark)

    @property
    def tenant(self) -> DrainTenant | None:
        """The turn's view, once `open()` made it."""
        return self._tenant

    def open(self) -> DrainTenant:
        """The turn's view: the mirror when it will do, else a full List (raises what List raises)."""
        if self._tenant is not None:
            return self._tenant
        now = self._clock()
        calls0 = getattr(self.client, "list_calls", 0)
        mirror, problem = self._read()
        reason = refresh_reason(mirror, problem, now=now, refresh_minutes=self.settings.tenant_refresh_minutes)
        if reason is None and mirror is not None:
            view = mirror.view(now)
            listed_at = mirror.header.listed_at
            log.info("tenant %s: the mirror of %d indicators, listed %.0f s ago, will do", self.tenant_key,
                     view.active_count, mirror.age_seconds(now))  # fmt: skip
        else:
            log.info("tenant %s: listing its indicators: %s", self.tenant_key, reason)
            view = TenantView(self.client.list_indicators(), now=now)
            listed_at = now
        calls = getattr(self.client, "list_calls", 0) - calls0
        self._tenant = DrainTenant(
            view,
            max_tenant_indicators=self.settings.max_tenant_indicators,
            capacity_reserve=self.settings.capacity_reserve,
            listed_at=listed_at,
            refreshed=reason is not None,
            refresh_reason=reason,
            clock=self._clock,
            on_change=self._mark_changing,
        )
        self._tenant.list_calls = calls
        return self._tenant

    def _read(self) -> tuple[Mirror | None, str | None]:
        held = self.cache.get(self.tenant_key) if self.cache is not None else None
        try:
            found = self.store.read(held[0] if held is not None else None)
            if found is None:
                self._forget_cached()
                return None, None
            etag, metadata, lines = found
            self._etag = etag
            if lines is None and held is not None:  # unchanged since this process read or wrote it (clean)
                self._read_mirror = held[1]
                return held[1], None
            self._forget_cached()
            if metadata.get(STATE_KEY) == CHANGING:
                return None, "the last turn that changed the tenant ended before it wrote the mirror"
            if lines is None:
                raise ValueError("the mirror blob answered without its content")
            self._read_mirror = decode(lines, tenant=self.tenant_key)
            if self.cache is not None:
                self.cache.put(self.tenant_key, etag, self._read_mirror)
            return self._read_mirror, None
        except MirrorUnreadable as e:
            return None, f"it is unreadable ({e})"
        except ValueError as e:
            return None, str(e)

    def _forget_cached(self) -> None:
        if self.cache is not None:
            self.cache.drop(self.tenant_key)

    def _forget(self) -> None:
        self._forget_cached()
        self.store.forget()

    def _mark_changing(self) -> None:
        """Before the turn's first import or delete: a turn that dies before `close` makes the next one list."""
        if self._etag is None:
            return  # no mirror to mark: the next turn lists anyway unless this one writes one
        self._forget_cached()  # the blob's ETag moves now
        new = self.store.mark(self._etag, {STATE_KEY: CHANGING})
        self.writes += 1
        if new is None:
            # Someone wrote the mirror since this turn read it, or the mark could not be set: `close` writes over
            # it only if its ETag still matches, and otherwise deletes it.
            log.warning("tenant %s: the mirror could not be marked as changing", self.tenant_key)
        else:
            self._etag = new
            self._marked = True

    def close(self, *, clean: bool, lease_held: bool) -> None:
        """End of the turn: write the mirror once, if anything changed (see the module docstring).

        `clean`: the turn ended normally (every import's outcome known or flagged by a drift signal);
        `lease_held`: the tenant lock is still ours.
        """
        tenant = self._tenant
        if tenant is None:
            return
        if not lease_held or not clean:
            if tenant.changing and not self._marked:
                self._forget()  # changed without a mark: nothing may trust the mirror now
            elif lease_held and not tenant.changing and tenant.refreshed:
                self._write(tenant)  # nothing changed since the listing: it is still good
            return  # else the `changing` mark stays: the next turn lists
        if tenant.refreshed or tenant.changed or tenant.drift or self._marked:
            self._write(tenant)

    def _write(self, tenant: DrainTenant) -> None:
        now = self._clock()
        header = MirrorHeader(
            tenant=self.tenant_key,
            listed_at=tenant.listed_at or now,
            written_at=now,
            count=tenant.view.active_count,
            refresh="; ".join(tenant.drift) or None,
        )
        reuse = self._read_mirror.lines if self._read_mirror is not None else None
        kept: Lines = {}
        lines = encode(header, tenant.view, reuse=reuse, keep=kept)
        new = self.store.write(lines, etag=self._etag, metadata={STATE_KEY: CLEAN})
        self.writes += 1
        if new is None:
            log.warning("tenant %s: the mirror changed since this turn read it (or could not be written): dropped,"
                        " the next turn lists", self.tenant_key)  # fmt: skip
            self._forget()
            return
        self._etag = new
        if self.cache is not None:
            self.cache.put(self.tenant_key, new, written(header, tenant.view, kept))
        log.info("tenant %s: mirror of %d indicators written%s", self.tenant_key, header.count,
                 f" (the next turn lists first: {header.refresh})" if header.refresh else "")  # fmt: skip
