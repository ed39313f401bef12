"""`DefenderClient`: the I/O adapter to Defender's indicator API.

Owns the `requests` session, the access token, the one attempt loop (pacing, retries, 401/403)
and the translation of requests/urllib3/azure-identity failures into `shared.core.errors`
(STYLE.md "Errors", "Retries and pacing"). Body building, answer parsing and matching live in
the pure `wire` module; the sliding window in `pacing`.

Retry policy (CONTRACT.md "Defender calls"): urllib3's `Retry` is the policy object, but it is never
mounted on the session — urllib3 would retry below the pacer. Here every attempt takes a pacer
permit first, so retries count against `MAX_CALLS_PER_MINUTE`.

Time limit: an HTTP import must answer inside the Functions host's 230-second limit, so its calls run under
`with client.time_limit(seconds, label):`. No wait (call slot, Retry-After, backoff) may then end past the
deadline — the client raises `DeadlineReached` instead of sleeping — and no request's timeouts reach past
it. The blob path has no limit. The limit is per thread: invocations of one process share the client.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests
from azure.core.exceptions import AzureError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.response import HTTPResponse
from urllib3.util.retry import Retry

from shared.core.batching import bisect
from shared.core.errors import (
    AccessDenied,
    BatchRejected,
    DeadlineReached,
    DefenderError,
    DefenderUnavailable,
    HourlyLimit,
    IdentityUnavailable,
    NotFoundError,
)
from shared.core.model import Outcome, Status
from shared.core.telemetry import current as current_telemetry
from shared.defender import wire
from shared.defender.pacing import (
    BATCH_DELETE_CALLS_PER_HOUR,
    BATCH_DELETE_CALLS_PER_MINUTE,
    DELETE_CALLS_PER_HOUR,
    DELETE_CALLS_PER_MINUTE,
    LIST_CALLS_PER_HOUR,
    LIST_CALLS_PER_MINUTE,
    CallPacer,
    NoSlotInTime,
)

# (calls per minute, calls per hour) of the calls other than import (defender-api.md §2).
DEFAULT_CALL_LIMITS: dict[str, tuple[int, int | None]] = {
    "list": (LIST_CALLS_PER_MINUTE, LIST_CALLS_PER_HOUR),
    "batchdelete": (BATCH_DELETE_CALLS_PER_MINUTE, BATCH_DELETE_CALLS_PER_HOUR),
    "delete": (DELETE_CALLS_PER_MINUTE, DELETE_CALLS_PER_HOUR),
}

log = logging.getLogger(__name__)

# The route of a single delete in telemetry: the id stays out of span attributes (core/telemetry.py).
DELETE_ROUTE = wire.LIST_PATH + "/{id}"
# azure-core refreshes a bearer token when less than this much of it remains (BearerTokenCredentialPolicy).
TOKEN_REFRESH_MARGIN_SECONDS = 300.0


class AccessTokenLike(Protocol):
    token: str
    expires_on: int


class TokenCredentialLike(Protocol):
    """azure-core's `TokenCredential`, as far as the client uses it."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessTokenLike: ...


class ImportRetry(Retry):
    """urllib3's `Retry`, with the backoff counted from the first failure.

    urllib3 retries the first failure at once (`get_backoff_time` is 0 for one error); a Defender
    answering 503 deserves a pause before the first retry too. Otherwise the same capped
    exponential formula: `backoff_factor * 2**(n-1)` plus up to `backoff_jitter`, at most `backoff_max`.
    """

    def get_backoff_time(self) -> float:
        n = len(self.history)
        if n == 0:
            return 0.0
        value = self.backoff_factor * (2 ** (n - 1))
        if self.backoff_jitter:
            value += random.random() * self.backoff_jitter
        return float(max(0.0, min(self.backoff_max, value)))


@dataclass
class TimeLimit:
    """A deadline on the client's clock; `reached` is the DeadlineReached raised under it, if one was."""

    deadline: float
    label: str
    reached: DeadlineReached | None = None


@dataclass(frozen=True)
class ClientPolicy:
    """How the client waits and when it gives up (STYLE.md "Configuration": one small value, as azure-core's
    `Configuration` groups its policies).

    - `timeout`: (connect, read) seconds of one call (DEFENDER_REQUEST_TIMEOUT_SECONDS is the read part);
    - `max_attempts`: attempts per call for 429, 5xx and network errors (DEFENDER_MAX_ATTEMPTS; at least 1);
    - `retry_after_max`: the longest `Retry-After` honoured (DEFENDER_RETRY_AFTER_MAX_SECONDS);
    - `backoff_factor`, `backoff_max`, `backoff_jitter`: capped exponential backoff with jitter, in seconds.
    """

    # 180 s read: a slow 500-item import answered after 60 s was sent again (fidelity-review.md 9, after [OC]).
    timeout: tuple[float, float] = (5.0, 180.0)
    max_attempts: int = 6
    retry_after_max: float = 120.0
    backoff_factor: float = 1.0
    backoff_max: float = 30.0
    backoff_jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def retry(self) -> ImportRetry:
        """The urllib3 `Retry` used as the attempt loop's policy object (never mounted on the session)."""
        return ImportRetry(
            total=self.max_attempts - 1,
            connect=None,
            read=None,
            status=None,
            other=None,
            redirect=0,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            backoff_jitter=self.backoff_jitter,
            status_forcelist=frozenset({429, 500, 502, 503, 504}),
            # POST is safe: import is an upsert (defender-api.md §3.2); BatchDelete of an id twice is a 404, handled.
            allowed_methods=frozenset({"GET", "POST", "DELETE"}),
            respect_retry_after_header=True,
            retry_after_max=self.retry_after_max,  # type: ignore[arg-type]  # seconds, a float is fine
            raise_on_status=False,
        )


@dataclass(frozen=True)
class ClientClock:
    """The client's clocks, injectable in tests: `monotonic` for waits and limits, `sleep`, `wall` (epoch
    seconds) for token expiry."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    wall: Callable[[], float] = time.time


class DefenderClient:
    """Import, list and delete Defender custom indicators with one session and one token.

    `submit(batch)` is the `Submitter` the pipeline calls: every outcome handed in comes back with
    exactly one final status, in the same order. Counters: `api_calls` (import attempts sent),
    `retries` (import attempts beyond the first of each call), `list_calls`, `delete_calls`.

    `pacer` paces imports (MAX_CALLS_PER_MINUTE); List, BatchDelete and single deletes get their own pacers of
    the same window length (so a scaled test clock scales them all) unless `other_pacers` names them
    (`list`, `batchdelete`, `delete`). Those pace both of Defender's windows, a minute and an hour of 60 such
    windows; `call_limits` overrides their (per minute, per hour) figures (LIST_CALLS_PER_MINUTE and kin).
    An hourly window full for longer than the caller can wait — past its time limit, or past `hour_wait_max`
    (default: two minute windows) without one — raises `HourlyLimit` rather than sleeping under the tenant
    lock. `credential_factory` gives a fresh credential after a rejected token.
    """

    def __init__(
        self,
        api_url: str,
        credential: TokenCredentialLike,
        *,
        scope: str,
        pacer: CallPacer,
        policy: ClientPolicy | None = None,
        client_id: str | None = None,
        session: requests.Session | None = None,
        credential_factory: Callable[[], TokenCredentialLike] | None = None,
        other_pacers: Mapping[str, CallPacer] | None = None,
        clock: ClientClock | None = None,
        call_limits: Mapping[str, tuple[int, int | None]] | None = None,
        hour_wait_max: float | None = None,
    ) -> None:
        policy = policy or ClientPolicy()
        clock = clock or ClientClock()
        self.api_url = api_url.rstrip("/")
        self.scope = scope
        self.client_id = client_id
        self.policy = policy
        self.pacer = pacer
        window = pacer.window_seconds
        given = dict(other_pacers or {})
        # List and delete have their own limits (defender-api.md §2), a minute's and an hour's.
        limits = {**DEFAULT_CALL_LIMITS, **dict(call_limits or {})}

        def own(name: str) -> CallPacer:
            per_minute, per_hour = limits[name]
            return given.get(name) or CallPacer(
                per_minute, window, clock=clock.monotonic, sleep=clock.sleep, hour_calls=per_hour
            )

        self.list_pacer = own("list")
        self.batch_delete_pacer = own("batchdelete")
        self.delete_pacer = own("delete")
        self.hour_wait_max = hour_wait_max
        self.timeout = policy.timeout
        self._credential = credential
        self._credential_factory = credential_factory
        self._session = session
        self._sleep = clock.sleep
        self._clock = clock.monotonic
        self._wall_clock = clock.wall
        self._token: AccessTokenLike | None = None
        self._retry = policy.retry()
        self.api_calls = 0
        self.retries = 0
        self.split_calls = 0  # import calls made to isolate the rows of a batch rejected as a whole
        self.list_calls = 0
        self.delete_calls = 0
        self._identity_unknown_logged = False
        self._local = threading.local()  # .limit: this thread's TimeLimit, if any

    def pacers(self) -> dict[str, CallPacer]:
        """The pacers the tenant lock hands from holder to holder, by their name in the lock's metadata."""
        return {
            "import": self.pacer,
            "list": self.list_pacer,
            "batchdelete": self.batch_delete_pacer,
            "delete": self.delete_pacer,
        }

    # ------------------------------------------------------------------ time limit

    @contextmanager
    def time_limit(self, seconds: float, label: str) -> Iterator[TimeLimit]:
        """Calls this thread makes inside the block stop `seconds` from now at the latest.

        A wait that would end later raises `DeadlineReached` (its message starts "stopped before <label>"),
        and request timeouts are cut to the time left. The yielded TimeLimit tells afterwards whether
        the limit stopped anything (`reached`).
        """
        limit = TimeLimit(self._clock() + seconds, label)
        previous = getattr(self._local, "limit", None)
        self._local.limit = limit
        try:
            yield limit
        finally:
            self._local.limit = previous

    @contextmanager
    def lease_checked(self, check: Callable[[], None]) -> Iterator[None]:
        """Calls this thread makes inside the block run `check()` before every attempt and before and after every
        wait (call slot, Retry-After, backoff): a tenant turn lost in the middle of a call's retries stops it
        before the next attempt, not minutes later between batches. `check` raises when the turn is lost."""
        previous = getattr(self._local, "lease_check", None)
        self._local.lease_check = check
        try:
            yield
        finally:
            self._local.lease_check = previous

    def _check_lease(self) -> None:
        check: Callable[[], None] | None = getattr(self._local, "lease_check", None)
        if check is not None:
            check()

    def _remaining(self) -> float | None:
        """Seconds left under this thread's time limit; None without one."""
        limit: TimeLimit | None = getattr(self._local, "limit", None)
        return None if limit is None else limit.deadline - self._clock()

    def _stopped(self, why: str, kind: str, *, wait: float | None = None, sent: bool = False) -> DeadlineReached:
        limit: TimeLimit = self._local.limit
        if kind != "import":
            then = ""
        elif sent:
            # The request left but no answer came in time: resending is safe, the import is an upsert
            # (defender-api.md §3.2), and what did arrive comes back `unchanged`.
            then = "; Defender did not confirm it in time: resend it"
        else:
            then = "; not submitted: resend it"
        error = DeadlineReached(f"stopped before {limit.label}: {why}{then}", wait=wait, why=why)
        if limit.reached is None:
            limit.reached = error
        log.warning("%s call stopped before %s: %s", kind, limit.label, why)
        return error

    # ------------------------------------------------------------------ import

    def submit(self, batch: Sequence[Outcome]) -> list[Outcome]:
        """Import one batch (≤ 500) and return each outcome with its final status, in batch order.

        Raises AccessDenied, DefenderUnavailable or IdentityUnavailable when the run cannot go on;
        `exc.partial` then holds the outcomes already final (from a bisection under way).
        """
        batch = list(batch)
        if not batch:
            return []
        calls, retries, started = self.api_calls, self.retries, self._clock()
        out = self._submit(batch)
        failed = sum(1 for o in out if o.status is Status.failed)
        log.info(
            "import batch of %d: %d submitted, %d failed, %d calls, %d retries, %.1f s",
            len(batch),
            len(batch) - failed,
            failed,
            self.api_calls - calls,
            self.retries - retries,
            self._clock() - started,
        )
        return out

    def _submit(self, batch: list[Outcome]) -> list[Outcome]:
        try:
            results = self._import(batch)
        except BatchRejected as e:
            return _Isolation(self, batch).run(e)
        return self._matched(batch, results)

    def _matched(self, batch: list[Outcome], results: list[wire.ImportResult]) -> list[Outcome]:
        out, extra = wire.match_results(batch, results)
        for r in extra:
            log.warning("Defender returned a result for %r that matches no indicator of the batch", r.indicator)
        if any(o.code == wire.NO_RESULT_CODE for o in out):
            out = self._settle(out)
        return out

    def _settle(self, out: list[Outcome]) -> list[Outcome]:
        """Entries Defender's answer had no result for (refanged, duplicated or missing in it): looked up by List,
        `$filter=indicatorValue eq …` for at most 20 values a call, so they end `submitted` with the id Defender
        stored them under, or `failed` with what the look-up found (CONTRACT.md "Outcome": exactly one status)."""
        missing = [i for i, o in enumerate(out) if o.code == wire.NO_RESULT_CODE]
        found: dict[tuple[str, str], dict[str, Any]] = {}
        error: str | None = None
        for start in range(0, len(missing), wire.MAX_FILTER_VALUES):
            chunk = [out[i] for i in missing[start : start + wire.MAX_FILTER_VALUES]]
            values = list(dict.fromkeys(_sent_value(o) for o in chunk))
            try:
                for listed in self.list_indicators(wire.value_filter(values), page_size=wire.MAX_FILTER_VALUES * 8):
                    key = (str(listed.get("indicatorType")), str(listed.get("indicatorValue", "")).casefold())
                    found.setdefault(key, listed)
            except DefenderError as e:
                error = e.message
                log.warning("looking up %d entries without a result failed: %s", len(chunk), e.message)
                break
        settled = list(out)
        for i in missing:
            o = out[i]
            ind = o.indicator
            record = found.get((ind.indicatorType.value, _sent_value(o).casefold())) if ind is not None else None
            if record is not None and ind is not None and record.get("action") in (ind.action.value, None):
                note = "Defender's answer had no result for it; List shows it stored"
                base = replace(o, notes=(*o.notes, note))
                rid = None if record.get("id") is None else str(record["id"])
                settled[i] = base.final(Status.submitted, id=rid, code="submitted")
            elif error is not None:
                settled[i] = o.final(
                    Status.failed, f"{wire.NO_RESULT}; looking it up by List failed: {error}", code=wire.NO_RESULT_CODE
                )
            else:
                settled[i] = o.final(
                    Status.failed,
                    f"{wire.NO_RESULT}; List does not show it stored: resend it",
                    code=wire.NO_RESULT_CODE,
                )
        return settled

    def _import(self, batch: Sequence[Outcome]) -> list[wire.ImportResult]:
        resp, results = self._call(
            "POST",
            wire.IMPORT_PATH,
            self.pacer,
            "import",
            body=wire.import_body(batch),
            parse=wire.parse_import_response,
        )
        if resp.ok:
            return results
        code, message = wire.parse_error(resp.content)
        if resp.status_code == 400:
            raise BatchRejected(message or "Bad Request", status=400, code=code)
        raise self._unexpected(resp, code, message)

    # ------------------------------------------------------------------ list / delete

    def list_indicators(
        self, filter: str | None = None, page_size: int = wire.MAX_LIST_PAGE
    ) -> Iterator[dict[str, Any]]:
        """Every indicator Defender lists (OData `$filter` optional), page by page.

        Paging (defender-api.md §5, fidelity-review 1.27): a page's `@odata.nextLink` is followed whenever it is
        there, short page or not — on the API's own host only (another host raises DefenderError naming it: the
        token must not travel elsewhere); once a listing has had links, a page without one is its end (OData
        server-driven paging). Without a link the next page is asked with `$skip` until an empty page,
        because a server may cap pages below `$top` without saying so; a short page ends the listing without
        that extra call only once this listing has shown the server's cap (a short page followed by more) and
        the page is shorter still. Paced like every List call (defender-api.md §2). Raises like `submit`.
        """
        skip = 0
        path: str = wire.LIST_PATH
        params: dict[str, str] | None = wire.list_params(filter, page_size, 0)
        cap: int | None = None  # the server's page cap, once a short page was followed by more
        short: int | None = None  # the size of the previous page when it was short and had no link
        seen_links: set[str] = set()
        first_ids: set[str] = set()  # a server that ignores `$skip` would repeat its first page for ever
        while True:
            resp, page = self._call("GET", path, self.list_pacer, "list", params=params, parse=wire.parse_list_page)
            if not resp.ok:
                code, message = wire.parse_error(resp.content)
                if resp.status_code == 400:
                    raise BatchRejected(message or "Bad Request", status=400, code=code)
                raise self._unexpected(resp, code, message)
            items, link = page
            head = str(items[0].get("id")) if items and items[0].get("id") is not None else None
            if head is not None:
                if head in first_ids:
                    raise DefenderError(f"Defender's List answered a page starting at indicator {head} twice")
                first_ids.add(head)
            if items and short is not None and cap is None:
                cap = short
            yield from items
            skip += len(items)
            if link:
                if link in seen_links:
                    raise DefenderError(f"Defender's List answered the same @odata.nextLink twice: {link}")
                seen_links.add(link)
                path, params = self._next_page(link)
                continue
            if not items or seen_links or (len(items) < page_size and cap is not None and len(items) < cap):
                return
            short = len(items) if len(items) < page_size else None
            path, params = wire.LIST_PATH, wire.list_params(filter, page_size, skip)

    def _next_page(self, link: str) -> tuple[str, dict[str, str] | None]:
        """(path, query) of an `@odata.nextLink`, which must name this client's API host and base path."""
        base, target = urlsplit(self.api_url), urlsplit(urljoin(self.api_url + "/", link))
        same = (target.scheme.lower(), target.netloc.lower()) == (base.scheme.lower(), base.netloc.lower())
        if not same or not target.path.startswith(base.path):
            raise DefenderError(
                f"Defender's List answered with an @odata.nextLink to another host ({target.netloc or link!r},"
                f" not {base.netloc}): not followed, the listing is incomplete"
            )
        query = dict(parse_qsl(target.query, keep_blank_values=True))
        return target.path[len(base.path) :] or "/", query or None

    def batch_delete(self, ids: Sequence[str]) -> None:
        """Delete up to 500 indicators in one call (paced at 30 a minute, defender-api.md §2).

        Raises NotFoundError when Defender answers 404 — BatchDelete then deleted nothing if any id is
        gone (defender-api.md §5): re-list and retry without the missing ids.
        """
        body = wire.batch_delete_body(ids)
        resp, _ = self._call("POST", wire.BATCH_DELETE_PATH, self.batch_delete_pacer, "delete", body=body)
        if resp.ok:
            return
        code, message = wire.parse_error(resp.content)
        if resp.status_code == 404:
            raise NotFoundError(message or "an indicator id was not found", status=404, code=code)
        if resp.status_code == 400:
            raise BatchRejected(message or "Bad Request", status=400, code=code)
        raise self._unexpected(resp, code, message)

    def delete(self, id: str) -> bool:
        """Delete one indicator; False when it was already gone (404)."""
        resp, _ = self._call("DELETE", f"{wire.LIST_PATH}/{id}", self.delete_pacer, "delete", route=DELETE_ROUTE)
        if resp.ok:
            return True
        if resp.status_code == 404:
            return False
        code, message = wire.parse_error(resp.content)
        raise self._unexpected(resp, code, message)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    # ------------------------------------------------------------------ the attempt loop

    def _call(
        self,
        method: str,
        path: str,
        pacer: CallPacer,
        kind: str,
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        parse: Callable[[bytes], Any] | None = None,
        route: str | None = None,
    ) -> tuple[requests.Response, Any]:
        """Send until there is an answer worth returning; every attempt passes the pacer first.

        Returns the final response (2xx, or a 4xx the caller interprets) and, for a 2xx, `parse(body)`.
        429 waits for Retry-After (capped); 5xx, timeouts, resets and a 2xx with a malformed body back off
        exponentially with jitter; 401 fetches a new token once; 403 and a second 401 raise AccessDenied.

        Each attempt is one telemetry span (`shared.core.telemetry`): the kind, method, `route` (the path
        without query or ids, never the URL), attempt number, the seconds waited before it, the HTTP status.
        """
        url = self.api_url + path
        route = route or path
        retry: Retry = self._retry
        refreshed = False
        attempt = 0
        waited = 0.0  # the retry wait before the next attempt (Retry-After or backoff)
        telemetry = current_telemetry()
        while True:
            attempt += 1
            self._check_lease()
            permit = self._permit(pacer, kind)
            if attempt > 1 and kind == "import":
                self.retries += 1
            if permit.waited:
                log.debug("paced: waited %.2f s for a %s call slot", permit.waited, kind)
            try:
                if permit.waited:
                    self._check_lease()
                token = self._access_token()  # after the pacing wait, so the token is fresh when sent
                timeout, capped = self._timeouts(kind)
            except BaseException:
                permit.release()
                raise
            self._count(kind)
            started = self._clock()
            before, waited = waited + (permit.waited or 0.0), 0.0
            try:
                call = telemetry.defender_call(kind=kind, method=method, route=route, attempt=attempt, wait=before)
                with call as span:
                    resp = self._http().request(
                        method,
                        url,
                        params=params,
                        data=body,
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Content-Type": "application/json",
                            "Accept": "application/json",
                        },
                        timeout=timeout,
                    )
                    span.answered(resp.status_code)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
                permit.release()
                if capped and isinstance(e, requests.ReadTimeout):
                    # Cut short by the time limit: no time is left for a retry either.
                    raise self._stopped(f"no answer within the {_secs(timeout[1])} left", kind, sent=True) from e
                error = _as_urllib3_error(e)
                log.debug("%s %s attempt %d: %s", method, path, attempt, type(error).__name__)
                what = f"{type(e).__name__} calling {url}"
                retry = self._increment(retry, method, url, error=error, what=what)
                why = f"the retry after {type(e).__name__} would wait {{}}"
                waited = self._wait(retry.get_backoff_time(), kind, why)
                continue
            except requests.RequestException as e:
                permit.release()
                raise DefenderUnavailable(f"cannot call {url}: {type(e).__name__}: {e}") from e
            permit.release()
            status = resp.status_code
            log.debug("%s %s attempt %d: HTTP %d in %.2f s", method, path, attempt, status, self._clock() - started)
            if status == 401:
                if refreshed:
                    raise self._denied(resp, token, after_refresh=True)
                refreshed = True
                self._refresh_token(token)
                continue
            if status == 403:
                raise self._denied(resp, token)
            if retry.is_retry(method, status):
                u3 = _as_urllib3_response(resp)
                retry = self._increment(retry, method, url, response=u3, what=f"HTTP {status} from {url}")
                try:
                    after = retry.get_retry_after(u3)
                except InvalidHeader:  # an unparsable Retry-After: fall back to the backoff
                    after = None
                if after is not None:
                    waited = self._wait(after, kind, f"Defender asked to wait {{}} (HTTP {status}, Retry-After)")
                else:
                    why = f"the retry after HTTP {status} would wait {{}}"
                    waited = self._wait(retry.get_backoff_time(), kind, why)
                continue
            if resp.ok and parse is not None:
                try:
                    return resp, parse(resp.content)
                except wire.MalformedResponse as e:
                    # Safe to send again: the import is an upsert (defender-api.md §3.2).
                    log.debug("%s %s attempt %d: %s", method, path, attempt, e)
                    retry = self._increment(retry, method, url, error=ProtocolError(str(e)), what=f"{e} from {url}")
                    why = "the retry after a malformed answer would wait {}"
                    waited = self._wait(retry.get_backoff_time(), kind, why)
                    continue
            return resp, None

    def _increment(self, retry: Retry, method: str, url: str, *, what: str, **kw: Any) -> Retry:
        try:
            return retry.increment(method, url, **kw)
        except MaxRetryError as e:
            attempts = len(retry.history) + 1
            raise DefenderUnavailable(
                f"Defender could not be reached: no usable answer after {attempts} attempts (last: {what});"
                " check DEFENDER_API_URL and the network path to it"
            ) from e

    def _permit(self, pacer: CallPacer, kind: str) -> Any:
        """The pacer's permit; under a time limit only when the slot comes before the deadline.

        A pacer with an hourly window never makes the caller sleep past its budget for it (the time limit, or
        `hour_wait_max`): `HourlyLimit` instead, with the wait, so the job is retried later.
        """
        remaining = self._remaining()
        hourly = pacer.hour_calls is not None
        if remaining is None and not hourly:
            return pacer.acquire()
        if remaining is not None and remaining <= 0:
            raise self._stopped("no time left for another call", kind)
        budget = self.hour_wait_max if self.hour_wait_max is not None else 2 * pacer.window_seconds
        try:
            return pacer.acquire(max_wait=remaining if remaining is not None else budget)
        except NoSlotInTime as e:
            if e.hourly:
                raise HourlyLimit(
                    f"Defender's hourly limit of {pacer.hour_calls} {kind} calls is reached: the next slot is"
                    f" {_secs(e.wait)} away, longer than this job may wait; it is retried later",
                    wait=e.wait,
                    kind=kind,
                ) from None
            if remaining is None:  # a minute window longer than the hourly budget: wait as without one
                return pacer.acquire()
            why = f"the next {kind} call slot (calls are paced per minute) is {_secs(e.wait)} away"
            raise self._stopped(f"{why} with {_secs(remaining)} left", kind, wait=e.wait) from None

    def _timeouts(self, kind: str) -> tuple[tuple[float, float], bool]:
        """(connect, read) timeouts for the next request, cut to the time left; and whether the read one was."""
        remaining = self._remaining()
        connect, read = self.timeout
        if remaining is None or remaining >= max(connect, read):
            return self.timeout, False
        if remaining <= 0:
            raise self._stopped("no time left for another call", kind)
        return (min(connect, remaining), min(read, remaining)), remaining < read

    def _wait(self, seconds: float, kind: str, why: str) -> float:
        """Sleep `seconds` before the next attempt — unless that would end past the time limit; returns them.

        `why` describes the wait, `{}` standing for its length ("Defender asked to wait {} (...)").
        """
        remaining = self._remaining()
        if remaining is not None and (seconds > remaining or remaining <= 0):
            raise self._stopped(f"{why.format(_secs(seconds))} with {_secs(remaining)} left", kind, wait=seconds)
        if seconds > 0:
            self._check_lease()
            log.debug("waiting %.2f s (%s)", seconds, why.format(_secs(seconds)))
            self._sleep(seconds)
            self._check_lease()
        return max(seconds, 0.0)

    def _count(self, kind: str) -> None:
        if kind == "import":
            self.api_calls += 1
        elif kind == "list":
            self.list_calls += 1
        else:
            self.delete_calls += 1

    def _http(self) -> requests.Session:
        if self._session is None:
            self._session = make_session()
        return self._session

    def _unexpected(self, resp: requests.Response, code: str | None, message: str | None) -> DefenderUnavailable:
        detail = f" {code}" if code else ""
        detail += f": {message}" if message else ""
        return DefenderUnavailable(
            f"unexpected HTTP {resp.status_code}{detail} from {self.api_url}; check DEFENDER_API_URL",
            status=resp.status_code,
            code=code,
        )

    def _denied(self, resp: requests.Response, token: str, *, after_refresh: bool = False) -> AccessDenied:
        code, message = wire.parse_error(resp.content)
        text = wire.access_denied_message(
            status=resp.status_code,
            code=code,
            message=message,
            scope=self.scope,
            client_id=self.client_id,
            claims=wire.token_claims(token),
            after_refresh=after_refresh,
        )
        # The next call (a queued job's scheduled retry) asks for a fresh token from a fresh credential: a role
        # granted meanwhile reaches only new tokens, and the credential caches its own.
        self._token = None
        if self._credential_factory is not None:
            self._credential = self._credential_factory()
        return AccessDenied(text, status=resp.status_code, code=code)

    # ------------------------------------------------------------------ token

    def identity_ids(self) -> tuple[str, ...]:
        """Who this client calls Defender as: the `appid`/`azp`/`oid` claims of its current token.

        The quota steward requires one of them in `createdBy` before it treats an indicator as the app's own
        (the emulator writes the token's `appid` there; real Defender: unconfirmed, defender-api.md §5).
        Gets a token when there is none yet (IdentityUnavailable like any call). Never returns or logs the
        token itself. () when its claims cannot be read: ownership then rests on the mark alone (logged once).
        """
        ids = wire.identity_ids(wire.token_claims(self._access_token()))
        if not ids and not self._identity_unknown_logged:
            self._identity_unknown_logged = True
            log.info(
                "the access token's identity claims (appid, azp, oid) could not be read: indicators count as"
                " this app's own by their externalId mark alone"
            )
        return ids

    def _access_token(self) -> str:
        """The cached token, or a new one when less than the refresh margin of it remains."""
        tok = self._token
        if tok is None or tok.expires_on - self._wall_clock() < TOKEN_REFRESH_MARGIN_SECONDS:
            tok = self._get_token()
            self._token = tok
        return tok.token

    def _refresh_token(self, rejected: str) -> None:
        """After a 401: get a token that differs from the rejected one.

        azure-identity hands back its cached token until it nears expiry, so when the credential returns
        the same one a fresh credential (empty cache) is asked. In Azure the platform's own token cache may
        still return it (defender-api.md §7 "Timing"); then the one retry runs with it and a second 401
        becomes AccessDenied.
        """
        tok = self._get_token()
        if tok.token == rejected and self._credential_factory is not None:
            self._credential = self._credential_factory()
            tok = self._get_token()
        if tok.token == rejected:
            log.warning("the identity returned the same token after Defender rejected it (HTTP 401)")
        else:
            log.debug("fetched a new token after HTTP 401")
        self._token = tok

    def _get_token(self) -> AccessTokenLike:
        try:
            return self._credential.get_token(self.scope)
        except (AzureError, ValueError, OSError) as e:  # azure-identity: ClientAuthenticationError and kin
            who = f"client id {self.client_id}" if self.client_id else "the system-assigned identity"
            raise IdentityUnavailable(
                f"no token for scope {self.scope} from the managed identity ({who}): {type(e).__name__}: "
                f"{_first_line(str(e))}.{_identity_hint(str(e))} Check that the identity is assigned to the app,"
                " AZURE_CLIENT_ID and DEFENDER_TOKEN_SCOPE (locally: sign in with az login)"
            ) from e


class _BodyRejected(Exception):
    """Both halves of a split failed with the same code near the top: the body, not a row, is the problem."""

    def __init__(self, error: BatchRejected) -> None:
        super().__init__(error.message)
        self.error = error


# How near the top a split whose halves both fail with the same code means a body-level problem (issue
# "Nothing silently dropped": "both halves of a split fail at depth ≤ 2"). Counted with the batch as depth 1,
# its halves as depth 2: the first split. Checking the quarters as well costs a call more for one bad row than
# the bound (log2(n) + 2k) allows.
BODY_DEPTH = 1


class _Isolation:
    """Finds the rows of a batch Defender rejected as a whole (`400`, whatever its code), by halving it.

    - A half Defender accepted is never sent again, and no batch is sent twice.
    - A rejected part is halved and its first half sent: accepted, the second half must hold what was rejected
      and is halved in turn without being sent whole; rejected, the search goes on in it and the second half
      waits in a pool of untried rows. Once a row is alone it is `failed` with Defender's message, and the pool
      is sent as one batch: accepted, done; rejected, it is searched the same way. One bad row among n costs
      about log2(n) + 2 calls; each further bad row a search of the pool.
    - At the first split (halves at depth 2, the batch being depth 1) a rejected first half has its second half
      sent at once: when both fail with the same code that names no value (`errors.VALUE_ERROR_CODES`), the
      body is the problem (a field's type, an unknown device group on every row), and the batch is `failed`
      with Defender's message instead.
    Calls made here count in `DefenderClient.split_calls` (and in `api_calls`).
    """

    def __init__(self, client: DefenderClient, batch: list[Outcome]) -> None:
        self.client = client
        self.batch = batch
        self.settled: dict[int, Outcome] = {}

    def run(self, first: BatchRejected) -> list[Outcome]:
        n = len(self.batch)
        try:
            todo: list[tuple[list[int], BatchRejected, int]] = [(list(range(n)), first, 1)]
            while todo:
                todo.extend(self._search(*todo.pop()))
        except _BodyRejected as body:
            why = _why(body.error)
            log.error("Defender rejected a batch of %d as a whole, both halves alike: %s", n, why)
            for i, o in enumerate(self.batch):
                if i not in self.settled:
                    self.settled[i] = o.final(
                        Status.failed, f"Defender rejected the batch: {why}", code="batch-rejected"
                    )
        except DefenderError as e:
            e.partial = self._prefix()  # what was settled before the call that failed, as the batch's leading part
            raise
        return [self.settled[i] for i in range(n)]

    def _search(self, part: list[int], error: BatchRejected, depth: int) -> list[tuple[list[int], BatchRejected, int]]:
        """Isolate one rejected row of `part` (known rejected with `error`); the parts still to search."""
        later: list[tuple[list[int], BatchRejected, int]] = []
        pool: list[int] = []
        while len(part) > 1:
            left, right = bisect(part)
            left_error = self._send(left)
            if left_error is None:
                part = right  # what was rejected is in the right half: split it without sending it whole
            elif depth <= BODY_DEPTH:
                right_error = self._send(right)
                if right_error is not None:
                    if right_error.code == left_error.code and not right_error.names_value:
                        raise _BodyRejected(right_error)
                    later.append((right, right_error, depth + 1))
                part, error = left, left_error
            else:
                pool.extend(right)
                part, error = left, left_error
            depth += 1
        o = self.batch[part[0]]
        self.settled[part[0]] = o.final(Status.failed, f"Defender rejected it: {_why(error)}", code="defender-rejected")
        if pool:
            pool_error = self._send(pool)
            if pool_error is not None:
                later.append((pool, pool_error, max(depth, BODY_DEPTH + 1)))
        return later

    def _prefix(self) -> list[Outcome]:
        out = []
        for i in range(len(self.batch)):
            if i not in self.settled:
                break
            out.append(self.settled[i])
        return out

    def _send(self, part: list[int]) -> BatchRejected | None:
        """Send `part`; its entries are settled when Defender answered 200. The 400 when it rejected it."""
        self.client.split_calls += 1
        items = [self.batch[i] for i in part]
        try:
            results = self.client._import(items)
        except BatchRejected as e:
            return e
        for i, o in zip(part, self.client._matched(items, results), strict=True):
            self.settled[i] = o
        return None


def _why(e: BatchRejected) -> str:
    return f"{e.code}: {e.message}" if e.code else e.message


def _identity_hint(message: str) -> str:
    """What azure-identity's message leaves out. A token answer without `expires_on` (or `expires_in`) is
    reported by its App Service credential as "configuration not found … (invalid_scope)", which sends an
    operator to the wrong place."""
    if "invalid_scope" in message and "configuration not found" in message:
        return (
            " The identity endpoint's answer probably lacked `expires_on` (or `expires_in`): azure-identity"
            " reports a token answer without an expiry this way; the identity and scope may well be right."
        )
    if "timed out" in message.lower() or "timeout" in message.lower():
        return " The identity endpoint did not answer in time (10 s to connect, 20 s to read)."
    return ""


def _sent_value(o: Outcome) -> str:
    return o.indicator.indicatorValue if o.indicator is not None else o.value


def make_session(pool_size: int = 4) -> requests.Session:
    """One pooled session; `max_retries=0`: urllib3 must not retry below the pacer (STYLE.md)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _as_urllib3_error(e: requests.RequestException) -> Exception:
    """The urllib3 error class `Retry.increment` understands: connect phase or read phase."""
    if isinstance(e, requests.ConnectTimeout):
        return ConnectTimeoutError(str(e))
    if isinstance(e, requests.ReadTimeout):
        return ReadTimeoutError(None, "", str(e))  # type: ignore[arg-type]
    reason = e.args[0] if e.args else None
    reason = getattr(reason, "reason", reason)
    if isinstance(reason, NewConnectionError | ConnectTimeoutError):
        return ConnectTimeoutError(str(e))  # the request never left: safe for any method
    return ProtocolError(str(e))


def _as_urllib3_response(resp: requests.Response) -> HTTPResponse:
    """Status and headers in the shape `Retry` reads (the body is not needed)."""
    return HTTPResponse(body=b"", headers=dict(resp.headers), status=resp.status_code, preload_content=False)


def _secs(seconds: float) -> str:
    """`60 s`, `2.5 s`, `0 s`: a duration for messages."""
    tenths = round(max(seconds, 0.0), 1)
    return f"{tenths:.0f} s" if tenths >= 10 or tenths == int(tenths) else f"{tenths:.1f} s"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
