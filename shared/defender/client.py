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
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests
from urllib3.exceptions import (
    InvalidHeader,
    MaxRetryError,
    ProtocolError,
)
from urllib3.util.retry import Retry

from shared.core.errors import (
    AccessDenied,
    BatchRejected,
    DeadlineReached,
    DefenderError,
    DefenderUnavailable,
    HourlyLimit,
    NotFoundError,
)
from shared.core.model import Outcome, Status
from shared.core.telemetry import current as current_telemetry
from shared.defender import wire
from shared.defender.isolation import Isolation
from shared.defender.pacing import (
    CallPacer,
    NoSlotInTime,
)
from shared.defender.policy import DEFAULT_CALL_LIMITS, ClientClock, ClientPolicy, TimeLimit
from shared.defender.token import TokenCredentialLike, TokenSource
from shared.defender.transport import as_urllib3_error, as_urllib3_response, make_session

log = logging.getLogger(__name__)

# The route of a single delete in telemetry: the id stays out of span attributes (core/telemetry.py).
DELETE_ROUTE = wire.LIST_PATH + "/{id}"


@dataclass
class _Call:
    """One call's attempts so far: what is sent, the retry policy's state, the last token, the wait before the next."""

    method: str
    url: str
    path: str
    route: str
    kind: str
    retry: Retry
    attempt: int = 0
    waited: float = 0.0  # the retry wait before the next attempt (Retry-After or backoff)
    refreshed: bool = False  # a 401 already fetched a new token
    token: str = ""


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
        self.tokens = TokenSource(credential, scope=scope, client_id=client_id, factory=credential_factory,
                                  wall=clock.wall)  # fmt: skip
        self._session = session
        self._sleep = clock.sleep
        self._clock = clock.monotonic
        self._retry = policy.retry()
        self.api_calls = 0
        self.retries = 0
        self.split_calls = 0  # import calls made to isolate the rows of a batch rejected as a whole
        self.list_calls = 0
        self.delete_calls = 0
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
            return Isolation(self, batch).run(e)
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
        paging = wire.Paging(filter, page_size, self._next_page)
        path: str = wire.LIST_PATH
        params: dict[str, str] | None = wire.list_params(filter, page_size, 0)
        while True:
            resp, page = self._call("GET", path, self.list_pacer, "list", params=params, parse=wire.parse_list_page)
            if not resp.ok:
                code, message = wire.parse_error(resp.content)
                if resp.status_code == 400:
                    raise BatchRejected(message or "Bad Request", status=400, code=code)
                raise self._unexpected(resp, code, message)
            items, link = page
            paging.check_head(items)
            yield from items
            following = paging.following(items, link)
            if following is None:
                return
            path, params = following

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
        call = _Call(method, self.api_url + path, path, route or path, kind, self._retry)
        while True:
            resp = self._attempt(call, pacer, params=params, body=body)
            if resp is None or self._retried(call, resp):
                continue
            if not resp.ok or parse is None:
                return resp, None
            try:
                return resp, parse(resp.content)
            except wire.MalformedResponse as e:
                # Safe to send again: the import is an upsert (defender-api.md §3.2).
                log.debug("%s %s attempt %d: %s", method, path, call.attempt, e)
                self._back_off(call, "a malformed answer", error=ProtocolError(str(e)), what=f"{e} from {call.url}")

    def _attempt(
        self, call: _Call, pacer: CallPacer, *, params: dict[str, str] | None, body: bytes | None
    ) -> requests.Response | None:
        """One attempt: a call slot, a token, the request. None when a network error was met (and waited for)."""
        call.attempt += 1
        self._check_lease()
        permit = self._permit(pacer, call.kind)
        if call.attempt > 1 and call.kind == "import":
            self.retries += 1
        if permit.waited:
            log.debug("paced: waited %.2f s for a %s call slot", permit.waited, call.kind)
        try:
            if permit.waited:
                self._check_lease()
            call.token = self._access_token()  # after the pacing wait, so the token is fresh when sent
            timeout, capped = self._timeouts(call.kind)
        except BaseException:
            permit.release()
            raise
        self._count(call.kind)
        started = self._clock()
        before, call.waited = call.waited + (permit.waited or 0.0), 0.0
        try:
            resp = self._request(call, params, body, timeout, before)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
            permit.release()
            if capped and isinstance(e, requests.ReadTimeout):
                # Cut short by the time limit: no time is left for a retry either.
                raise self._stopped(f"no answer within the {_secs(timeout[1])} left", call.kind, sent=True) from e
            error = as_urllib3_error(e)
            log.debug("%s %s attempt %d: %s", call.method, call.path, call.attempt, type(error).__name__)
            self._back_off(call, type(e).__name__, error=error, what=f"{type(e).__name__} calling {call.url}")
            return None
        except requests.RequestException as e:
            permit.release()
            raise DefenderUnavailable(f"cannot call {call.url}: {type(e).__name__}: {e}") from e
        permit.release()
        log.debug("%s %s attempt %d: HTTP %d in %.2f s", call.method, call.path, call.attempt, resp.status_code,
                  self._clock() - started)  # fmt: skip
        return resp

    def _request(
        self, call: _Call, params: dict[str, str] | None, body: bytes | None, timeout: tuple[float, float], wait: float
    ) -> requests.Response:
        """The HTTP request of one attempt, inside its telemetry span."""
        span_of = current_telemetry().defender_call
        with span_of(kind=call.kind, method=call.method, route=call.route, attempt=call.attempt, wait=wait) as span:
            resp = self._http().request(
                call.method,
                call.url,
                params=params,
                data=body,
                headers={
                    "Authorization": f"Bearer {call.token}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
                timeout=timeout,
            )
            span.answered(resp.status_code)
        return resp

    def _retried(self, call: _Call, resp: requests.Response) -> bool:
        """Whether the answer asks for another attempt (401 once, 429, 5xx; after their wait); 403 and a second
        401 raise AccessDenied."""
        status = resp.status_code
        if status == 401:
            if call.refreshed:
                raise self._denied(resp, call.token, after_refresh=True)
            call.refreshed = True
            self._refresh_token(call.token)
            return True
        if status == 403:
            raise self._denied(resp, call.token)
        if not call.retry.is_retry(call.method, status):
            return False
        u3 = as_urllib3_response(resp)
        call.retry = self._increment(
            call.retry, call.method, call.url, response=u3, what=f"HTTP {status} from {call.url}"
        )
        try:
            after = call.retry.get_retry_after(u3)
        except InvalidHeader:  # an unparsable Retry-After: fall back to the backoff
            after = None
        if after is not None:
            call.waited = self._wait(after, call.kind, f"Defender asked to wait {{}} (HTTP {status}, Retry-After)")
        else:
            call.waited = self._wait(
                call.retry.get_backoff_time(), call.kind, f"the retry after HTTP {status} would wait {{}}"
            )
        return True

    def _back_off(self, call: _Call, after: str, *, error: Exception, what: str) -> None:
        """Count a failed attempt against the policy (DefenderUnavailable when none is left) and wait its backoff."""
        call.retry = self._increment(call.retry, call.method, call.url, error=error, what=what)
        call.waited = self._wait(call.retry.get_backoff_time(), call.kind, f"the retry after {after} would wait {{}}")

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
        self.tokens.forget()
        return AccessDenied(text, status=resp.status_code, code=code)

    # ------------------------------------------------------------------ token

    def identity_ids(self) -> tuple[str, ...]:
        """Who this client calls Defender as (`TokenSource.identity_ids`)."""
        return self.tokens.identity_ids()

    def _access_token(self) -> str:
        return self.tokens.token()

    def _refresh_token(self, rejected: str) -> None:
        self.tokens.refresh(rejected)


def _sent_value(o: Outcome) -> str:
    return o.indicator.indicatorValue if o.indicator is not None else o.value


def _secs(seconds: float) -> str:
    """`60 s`, `2.5 s`, `0 s`: a duration for messages."""
    tenths = round(max(seconds, 0.0), 1)
    return f"{tenths:.0f} s" if tenths >= 10 or tenths == int(tenths) else f"{tenths:.1f} s"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
