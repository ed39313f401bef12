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
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.core.settings import Settings
from shared.tenant.drain import DrainTenant
from shared.tenant.mirror import Mirror, MirrorHeader, MirrorUnreadable, decode, encode, refresh_reason
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

    def read(self) -> tuple[str, Mapping[str, str], Iterable[bytes]] | None:
        """(ETag, metadata, lines) of the mirror; None when there is none. Raises ValueError when it cannot be
        read (storage errors included: the tenant is listed instead)."""
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
    ) -> None:
        self.client = client
        self.store = store
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
        try:
            found = self.store.read()
            if found is None:
                return None, None
            etag, metadata, lines = found
            self._etag = etag
            if metadata.get(STATE_KEY) == CHANGING:
                return None, "the last turn that changed the tenant ended before it wrote the mirror"
            return decode(lines, tenant=self.tenant_key), None
        except MirrorUnreadable as e:
            return None, f"it is unreadable ({e})"
        except ValueError as e:
            return None, str(e)

    def _mark_changing(self) -> None:
        """Before the turn's first import or delete: a turn that dies before `close` makes the next one list."""
        if self._etag is None:
            return  # no mirror to mark: the next turn lists anyway unless this one writes one
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
                self.store.forget()  # changed without a mark: nothing may trust the mirror now
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
        new = self.store.write(encode(header, tenant.view), etag=self._etag, metadata={STATE_KEY: CLEAN})
        self.writes += 1
        if new is None:
            log.warning("tenant %s: the mirror changed since this turn read it (or could not be written): dropped,"
                        " the next turn lists", self.tenant_key)  # fmt: skip
            self.store.forget()
            return
        self._etag = new
        log.info("tenant %s: mirror of %d indicators written%s", self.tenant_key, header.count,
                 f" (the next turn lists first: {header.refresh})" if header.refresh else "")  # fmt: skip
