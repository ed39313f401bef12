"""The `requests` session of the Defender client and the translation of its errors into urllib3's shapes.

`Retry.increment` (the client's policy object) understands urllib3 errors and responses; `requests` raises its
own. The session never retries by itself: urllib3 would retry below the pacer (STYLE.md "Retries and pacing").
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError, ReadTimeoutError
from urllib3.response import HTTPResponse


def make_session(pool_size: int = 4) -> requests.Session:
    """One pooled session; `max_retries=0`: urllib3 must not retry below the pacer (STYLE.md)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def as_urllib3_error(e: requests.RequestException) -> Exception:
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


def as_urllib3_response(resp: requests.Response) -> HTTPResponse:
    """Status and headers in the shape `Retry` reads (the body is not needed)."""
    return HTTPResponse(body=b"", headers=dict(resp.headers), status=resp.status_code, preload_content=False)
