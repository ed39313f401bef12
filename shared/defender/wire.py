"""What goes over the wire to Defender and what comes back: bodies, answers, result matching.

Core module: standard library only, no I/O. Facts cited from design/defender-api.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.core.errors import DefenderError
from shared.core.model import Outcome, Status
from shared.tenant.records import MAX_FILTER_VALUES, odata_string, value_filter

# The look-up by value lives with the tenant's records (the steward confirms ownership with it too).
__all__ = ["MAX_FILTER_VALUES", "odata_string", "value_filter"]

log = logging.getLogger(__name__)

IMPORT_PATH = "/api/indicators/import"  # defender-api.md §1
LIST_PATH = "/api/indicators"  # defender-api.md §5
BATCH_DELETE_PATH = "/api/indicators/BatchDelete"  # defender-api.md §5
MAX_BATCH = 500  # indicators per import call and ids per BatchDelete (defender-api.md §1.4, §5)
MAX_LIST_PAGE = 10_000  # `$top` limit of List (defender-api.md §5)

NO_RESULT = "no result returned"
NO_RESULT_CODE = "defender-no-result"


class MalformedResponse(ValueError):
    """A 2xx answer whose body is not the JSON we expect."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """One entry of the import answer's `value` array (defender-api.md §3.1)."""

    indicator: str
    id: str | None
    is_failed: bool
    failure_reason: str | None
    indicator_type: str | None = None


def import_body(batch: Sequence[Outcome]) -> bytes:
    """`{"Indicators": [...]}` with Defender's case-sensitive field names (defender-api.md §1.4)."""
    items = []
    for o in batch:
        if o.indicator is None:
            raise ValueError(f"line {o.line}: an outcome without an indicator cannot be submitted")
        items.append(o.indicator.to_wire())
    return json.dumps({"Indicators": items}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def batch_delete_body(ids: Sequence[str]) -> bytes:
    """`{"IndicatorIds": [...]}`, 1 to 500 ids (defender-api.md §5)."""
    if not ids:
        raise ValueError("BatchDelete needs at least one id")
    if len(ids) > MAX_BATCH:
        raise ValueError(f"BatchDelete takes at most {MAX_BATCH} ids, got {len(ids)}")
    return json.dumps({"IndicatorIds": [str(i) for i in ids]}).encode("utf-8")


def list_params(filter: str | None, top: int, skip: int) -> dict[str, str]:
    """OData query of one List page (`$top` at most 10,000; defender-api.md §5)."""
    if not 1 <= top <= MAX_LIST_PAGE:
        raise ValueError(f"page size must be 1 to {MAX_LIST_PAGE}, got {top}")
    params = {"$top": str(top), "$skip": str(skip)}
    if filter:
        params["$filter"] = filter
    return params


def _json(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedResponse(f"answer is not JSON: {e}") from e


def parse_import_response(body: bytes | str) -> list[ImportResult]:
    """`{"value": [{"id", "indicator", "isFailed", "failureReason"}, ...]}` → results.

    Raises MalformedResponse when the body is not that shape; the caller retries (the import is an upsert).
    """
    doc = _json(body)
    value = doc.get("value") if isinstance(doc, dict) else None
    if not isinstance(value, list):
        raise MalformedResponse("answer has no `value` array")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("indicator"), str):
            raise MalformedResponse("an entry of `value` has no `indicator` string")
        ident = item.get("id")
        reason = item.get("failureReason")
        itype = item.get("indicatorType")
        out.append(
            ImportResult(
                indicator=item["indicator"],
                id=None if ident is None else str(ident),
                is_failed=bool(item.get("isFailed", False)),
                failure_reason=None if reason is None else str(reason),
                indicator_type=itype if isinstance(itype, str) else None,
            )
        )
    return out


def parse_list_page(body: bytes | str) -> tuple[list[dict[str, Any]], str | None]:
    """A List page: its indicators and `@odata.nextLink` when present (defender-api.md §5)."""
    doc = _json(body)
    value = doc.get("value") if isinstance(doc, dict) else None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MalformedResponse("answer has no `value` array of objects")
    link = doc.get("@odata.nextLink")
    return value, link if isinstance(link, str) and link else None


def parse_error(body: bytes | str | None) -> tuple[str | None, str | None]:
    """`{"error": {"code", "message"}}` → (code, message); (None, None) when absent (defender-api.md §3.3)."""
    if not body:
        return None, None
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    err = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict):
        return None, None
    code, message = err.get("code"), err.get("message")
    return (code if isinstance(code, str) else None), (message if isinstance(message, str) else None)


def match_results(
    batch: Sequence[Outcome], results: Iterable[ImportResult]
) -> tuple[list[Outcome], list[ImportResult]]:
    """Give each outcome its final status from the result carrying its value, never by position.

    Defender's answer order is not promised (defender-api.md §3.1 "Order"), so results are matched on
    `indicator` (and `indicatorType` when the answer has it). The same value under two types (a SHA-1
    that is also a certificate thumbprint) is matched in request order. Returns the outcomes in batch
    order, and the results that matched nothing (the caller logs them).
    """
    waiting: dict[str, deque[int]] = defaultdict(deque)
    for i, o in enumerate(batch):
        waiting[o.indicator.indicatorValue if o.indicator else o.value].append(i)
    # Looser key for a value that comes back re-cased or padded (defender-api.md §4 "Hash case").
    loose: dict[str, deque[int]] = defaultdict(deque)
    for value, idx in waiting.items():
        loose[value.strip().casefold()].extend(idx)
    found: dict[int, ImportResult] = {}
    extra: list[ImportResult] = []
    for r in results:
        hit = _take(batch, waiting.get(r.indicator), r, found)
        if hit is None:
            hit = _take(batch, loose.get(r.indicator.strip().casefold()), r, found)
        if hit is None:
            extra.append(r)
        else:
            found[hit] = r
    out = []
    for i, o in enumerate(batch):
        res = found.get(i)
        if res is None:
            out.append(o.final(Status.failed, NO_RESULT, code=NO_RESULT_CODE))
        elif res.is_failed:
            why = res.failure_reason or "Defender reported a failure without a reason"
            out.append(o.final(Status.failed, why, code="defender-rejected"))
        else:
            out.append(o.final(Status.submitted, id=res.id, code="submitted"))
    return out, extra


def _take(batch: Sequence[Outcome], queue: deque[int] | None, r: ImportResult, found: Mapping[int, Any]) -> int | None:
    """First unmatched index in `queue` whose type fits the result (when the result names one)."""
    if not queue:
        return None
    for i in list(queue):
        if i in found:
            queue.remove(i)
            continue
        ind = batch[i].indicator
        itype = ind.indicatorType.value if ind is not None else batch[i].type
        if r.indicator_type is None or r.indicator_type == itype:
            queue.remove(i)
            return i
    return None


def token_claims(token: str) -> dict[str, Any]:
    """The JWT payload of an access token, unverified, for explaining a 403 (`aud`, `roles`, `appid`) and
    for knowing our own identity (`identity_ids`).

    Only non-secret claims are read from it by the caller; {} when the token is not a JWT.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        doc = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


# Claims that name the caller (app id in v1 and v2 tokens, object id); Defender's `createdBy` is presumably
# one of them (the app's GUID in examples; unconfirmed for a managed identity, defender-api.md §5).
IDENTITY_CLAIMS = ("appid", "azp", "oid")


def identity_ids(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The caller's identifiers in a token's claims (`appid`, `azp`, `oid`), deduplicated, in that order."""
    out: list[str] = []
    for name in IDENTITY_CLAIMS:
        v = claims.get(name)
        if isinstance(v, str) and v.strip() and v.strip() not in out:
            out.append(v.strip())
    return tuple(out)


def access_denied_message(
    *,
    status: int,
    code: str | None,
    message: str | None,
    scope: str,
    client_id: str | None,
    claims: Mapping[str, Any] | None = None,
    after_refresh: bool = False,
) -> str:
    """Explain a 403 (or a second 401) so that an operator can fix it without reading code.

    The two known causes (defender-api.md §8.1, §8.2): the identity lacks the `Ti.ReadWrite.All`
    application role of WindowsDefenderATP, or the token is for another audience. Never includes the token.
    """
    who = f"managed identity with client id {client_id}" if client_id else "system-assigned managed identity"
    what = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    if after_refresh:
        what += " (again after fetching a new token)"
    parts = [f"Defender refused the call ({what})."]
    aud = claims.get("aud") if claims else None
    roles = claims.get("roles") if claims else None
    seen = f"The token was requested for scope {scope}"
    if aud:
        seen += f" and carries audience {aud}"
    if isinstance(roles, list):
        seen += f" and roles [{', '.join(str(r) for r in roles)}]"
    parts.append(seen + f"; the identity is the {who} (or the developer's credential when run locally).")
    parts.append(
        "Either the identity lacks the WindowsDefenderATP application role Ti.ReadWrite.All, or the token is"
        " for the wrong audience: DEFENDER_TOKEN_SCOPE must be https://api.securitycenter.microsoft.com/.default"
        " (government clouds: the API host's own /.default)."
    )
    parts.append(
        "Fix: run infra/scripts/grant-defender-permission.sh for this identity and check DEFENDER_TOKEN_SCOPE;"
        " a newly granted role can take hours to reach the identity's tokens."
    )
    return " ".join(parts)


class Paging:
    """Where a listing goes after each page (see `DefenderClient.list_indicators`), and the answers that show a
    server looping (a first id or an `@odata.nextLink` seen twice). `link_target(link)`: the (path, query) of an
    `@odata.nextLink` (the client checks its host)."""

    def __init__(self, filter: str | None, page_size: int, link_target: Callable[[str], tuple[str, Any]]) -> None:
        self.filter = filter
        self.page_size = page_size
        self.link_target = link_target
        self.skip = 0
        self.cap: int | None = None  # the server's page cap, once a short page was followed by more
        self.short: int | None = None  # the size of the previous page when it was short and had no link
        self.seen_links: set[str] = set()
        self.first_ids: set[str] = set()  # a server that ignores `$skip` would repeat its first page for ever

    def check_head(self, items: list[dict[str, Any]]) -> None:
        head = str(items[0].get("id")) if items and items[0].get("id") is not None else None
        if head is None:
            return
        if head in self.first_ids:
            raise DefenderError(f"Defender's List answered a page starting at indicator {head} twice")
        self.first_ids.add(head)

    def following(self, items: list[dict[str, Any]], link: str | None) -> tuple[str, dict[str, str] | None] | None:
        """(path, query) of the next page, or None when the listing is complete."""
        if items and self.short is not None and self.cap is None:
            self.cap = self.short
        self.skip += len(items)
        if link:
            if link in self.seen_links:
                raise DefenderError(f"Defender's List answered the same @odata.nextLink twice: {link}")
            self.seen_links.add(link)
            return self.link_target(link)
        n = len(items)
        if not items or self.seen_links or (n < self.page_size and self.cap is not None and n < self.cap):
            return None
        self.short = n if n < self.page_size else None
        return LIST_PATH, list_params(self.filter, self.page_size, self.skip)
