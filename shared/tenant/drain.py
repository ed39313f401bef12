"""One view of the tenant for the jobs of a drain (CONTRACT.md "Settings" [coalesce]).

Pure: no I/O. The drain lists the tenant once (or, later, reads its mirror); every job of the drain decides
against that view, and the view follows every import result, so the delta and capacity decisions of a later
job see what earlier ones did. Capacity goes to the jobs in arrival order: each takes what the earlier ones
left (`room_left`, then `took`).
"""

from __future__ import annotations

import threading

from shared.core.model import Outcome, Status
from shared.tenant.capacity import room_left
from shared.tenant.records import TenantRecord, TenantView


class DrainTenant:
    """The view and the room shared by the jobs of one drain."""

    def __init__(self, view: TenantView, *, max_tenant_indicators: int, capacity_reserve: int) -> None:
        self.view = view
        self._room = room_left(max_tenant_indicators, capacity_reserve, view.active_count)
        self._lock = threading.Lock()

    def room_left(self) -> int:
        with self._lock:
            return self._room

    def took(self, admitted: int) -> None:
        """A job was given room for `admitted` new indicators."""
        with self._lock:
            self._room = max(0, self._room - admitted)

    def imported(self, outcomes: list[Outcome], created_by: str | None) -> None:
        """Follow an import's results: what Defender took is in the tenant now."""
        with self._lock:
            for o in outcomes:
                if o.status is Status.submitted and o.id and o.indicator is not None:
                    wire = {**o.indicator.to_wire(), "id": o.id, "createdBy": created_by}
                    self.view.add(TenantRecord.from_wire(wire))
