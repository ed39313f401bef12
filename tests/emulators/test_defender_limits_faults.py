"""Rate limits per caller with Retry-After (defender-api.md §2, §8.4), the scaled clock, and every
fault kind of the admin API."""

from __future__ import annotations

import email.utils
import socket
import time

import pytest
import requests

from localdev.admin import AdminError
from tests.support.stack import DefenderCaller, hex_value, make_indicator, mint_token

IMPORT = "/api/indicators/import"


def _one(api: DefenderCaller, n: int = 0) -> requests.Response:
    return api.import_([make_indicator(hex_value(n))])


def test_import_limit_is_30_per_minute_per_caller(defender, defender_api):
    statuses = [_one(defender_api, n).status_code for n in range(31)]
    assert statuses == [200] * 30 + [429]
    other_app = DefenderCaller(defender.base_url, mint_token(key=defender.signing_key, client_id="other-app"))
    assert _one(other_app).status_code == 200  # limits are per application + tenant (§2)
    throttled = _one(defender_api)
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60


def test_retry_after_is_the_real_wait_under_time_scale_and_the_window_slides(defender, defender_api):
    defender.admin.configure(time_scale=60, limits={"import": [[3, 60]]})  # a "minute" is one second
    assert [_one(defender_api, n).status_code for n in range(3)] == [200] * 3
    throttled = _one(defender_api)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    time.sleep(int(throttled.headers["Retry-After"]))
    assert _one(defender_api).status_code == 200


def test_advancing_the_clock_opens_the_window_without_waiting(defender, defender_api):
    defender.admin.configure(limits={"import": [[2, 60]]})
    _one(defender_api), _one(defender_api)
    wait = int(_one(defender_api).headers["Retry-After"])
    assert 55 <= wait <= 60
    defender.admin.advance_clock(wait)
    assert _one(defender_api).status_code == 200


def test_list_has_an_hourly_limit_too(defender, defender_api):
    defender.admin.configure(limits={"list": [[100, 60], [3, 3600]]})
    assert [defender_api.list().status_code for _ in range(3)] == [200] * 3
    defender.admin.advance_clock(61)  # the minute window is clear, the hour is not
    throttled = defender_api.list()
    assert throttled.status_code == 429
    assert 3000 < int(throttled.headers["Retry-After"]) <= 3600


def test_delete_and_batch_delete_limits_are_separate(defender, defender_api):
    defender.admin.configure(limits={"delete": [[1, 60]], "batch_delete": [[1, 60]]})
    assert defender_api.delete("1").status_code == 404  # counted even when the id is unknown
    assert defender_api.delete("2").status_code == 429
    assert defender_api.batch_delete(["1"]).status_code == 404
    assert defender_api.batch_delete(["1"]).status_code == 429
    assert _one(defender_api).status_code == 200


def test_retry_after_override_and_rejected_calls_counting(defender, defender_api):
    defender.admin.configure(limits={"import": [[1, 60]]}, retry_after=7, count_rejected_calls=True)
    _one(defender_api)
    assert _one(defender_api).headers["Retry-After"] == "7"
    defender.admin.advance_clock(59)
    # The rejected call at t=0 still occupies the window: retrying early keeps you in 429 (§2).
    assert _one(defender_api).status_code == 429


def test_bad_limit_config_is_refused(defender):
    with pytest.raises(AdminError):
        defender.admin.configure(limits={"teleport": [[1, 60]]})
    with pytest.raises(AdminError):
        defender.admin.configure(value_error_mode="sometimes")


# -- faults ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "code"), [(500, "InternalServerError"), (503, "ServiceUnavailable")])
def test_status_fault_answers_then_heals(defender, defender_api, status, code):
    defender.admin.add_fault("status", count=2, status=status, retry_after=3, path=IMPORT)
    first, second, third = (_one(defender_api) for _ in range(3))
    assert [r.status_code for r in (first, second, third)] == [status, status, 200]
    assert first.json()["error"]["code"] == code and first.headers["Retry-After"] == "3"
    assert len(defender.admin.indicators()) == 1  # nothing stored by the faulted calls
    assert [c["fault"] for c in defender.admin.calls()] == ["status", "status", None]


def test_status_fault_after_processing(defender, defender_api):
    defender.admin.add_fault("status", status=500, process=True)
    assert _one(defender_api).status_code == 500
    assert len(defender.admin.indicators()) == 1  # stored, but the caller never learnt it


def test_throttle_fault_with_seconds_or_http_date(defender, defender_api):
    defender.admin.add_fault("throttle", retry_after=5)
    defender.admin.add_fault("throttle", retry_after_date=120)
    seconds, dated = _one(defender_api), _one(defender_api)
    assert seconds.status_code == dated.status_code == 429
    assert seconds.headers["Retry-After"] == "5"
    when = email.utils.parsedate_to_datetime(dated.headers["Retry-After"]).timestamp()
    assert 100 < when - time.time() <= 121


def test_fault_only_hits_the_given_path(defender, defender_api):
    defender.admin.add_fault("status", status=503, path="/api/indicators/BatchDelete")
    assert _one(defender_api).status_code == 200
    assert defender_api.list().status_code == 200
    assert defender_api.batch_delete(["1"]).status_code == 503
    assert defender.admin.faults() == []


def test_reset_fault_drops_the_connection(defender, defender_api):
    defender.admin.add_fault("reset")
    with pytest.raises(requests.ConnectionError):
        _one(defender_api)
    assert _one(defender_api).status_code == 200
    assert defender.admin.calls()[0]["status"] == 0 and defender.admin.calls()[0]["fault"] == "reset"


def test_reset_fault_is_a_tcp_reset(defender):
    defender.admin.add_fault("reset", path="/api/indicators")
    with socket.create_connection(("127.0.0.1", int(defender.base_url.rsplit(":", 1)[1])), timeout=5) as sock:
        sock.sendall(b"GET /api/indicators HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            sock.recv(1024)


def test_hang_fault_outlasts_the_client_timeout(defender, defender_api):
    defender.admin.add_fault("hang", seconds=2)
    with pytest.raises(requests.Timeout):
        defender_api.session.post(
            defender_api.base_url + IMPORT, json={"Indicators": [make_indicator(hex_value(1))]}, timeout=(5, 0.2)
        )
    assert defender.admin.indicators() == []


def test_hang_then_respond_delivers_a_late_answer(defender, defender_api):
    defender.admin.add_fault("hang", seconds=0.2, then="respond")
    assert _one(defender_api).json()["value"][0]["isFailed"] is False


def test_malformed_json_fault(defender, defender_api):
    defender.admin.add_fault("malformed_json")
    resp = _one(defender_api)
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()
    assert len(defender.admin.indicators()) == 1  # the import itself went through


def test_drop_results_fault(defender, defender_api):
    items = [make_indicator(hex_value(n)) for n in range(4)]
    defender.admin.add_fault("drop_results", drop=1)
    defender.admin.add_fault("drop_results", drop="all")
    assert len(defender_api.import_(items).json()["value"]) == 3
    assert defender_api.import_(items).json()["value"] == []
    assert len(defender.admin.indicators()) == 4


def test_extra_result_fault(defender, defender_api):
    defender.admin.add_fault("extra_result", indicator="surprise.example.net")
    value = _one(defender_api).json()["value"]
    assert [r["indicator"] for r in value] == [hex_value(0), "surprise.example.net"]


def test_unknown_fault_kind_is_refused(defender):
    with pytest.raises(AdminError, match="kind must be one of"):
        defender.admin.add_fault("gremlins")


def test_reset_clears_faults_store_log_and_config(defender, defender_api):
    defender.admin.configure(tenant_cap=1)
    defender.admin.add_fault("status", count=5, path="/nowhere")
    _one(defender_api)
    defender.admin.reset()
    assert defender.admin.indicators() == [] and defender.admin.calls() == [] and defender.admin.faults() == []
    assert defender.admin.config()["tenant_cap"] == 15000
