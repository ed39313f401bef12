"""The emulators' pure parts without HTTP: token signing, sliding windows under time_scale, the OData
subset, value rules; plus the standard-library-only promise and the command-line mode."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime

import pytest

from localdev import defender_odata as odata
from localdev import defender_rules as rules
from localdev.ratelimit import SlidingWindows
from localdev.tokens import InvalidToken, decode, encode, mint
from tests.support.stack import REPO_ROOT


def test_token_round_trip_and_tamper_detection():
    token, claims = mint(key=b"k", resource="r", roles=["a"], lifetime=60, now=1000)
    assert decode(token, b"k", now=1059) == claims
    with pytest.raises(InvalidToken, match="expired"):
        decode(token, b"k", now=1060)
    with pytest.raises(InvalidToken, match="signature"):
        decode(token, b"other", now=1000)
    with pytest.raises(InvalidToken, match="not a JWT"):
        decode("a.b", b"k")
    assert decode(encode({"exp": 2000}, b"k"), b"k", now=1000) == {"exp": 2000}


def test_sliding_window_counts_and_waits_in_real_seconds():
    windows = SlidingWindows({"import": [(2, 60)]})
    assert windows.acquire("import", "app", 0.0) is None
    assert windows.acquire("import", "app", 10.0) is None
    assert windows.acquire("import", "app", 20.0) == pytest.approx(40.0)  # until the call at t=0 leaves
    assert windows.acquire("import", "other", 20.0) is None
    assert windows.acquire("import", "app", 60.0) is None
    scaled = SlidingWindows({"import": [(1, 60)]})
    assert scaled.acquire("import", "app", 0.0, time_scale=60) is None
    assert scaled.acquire("import", "app", 0.25, time_scale=60) == pytest.approx(0.75)
    assert scaled.acquire("import", "app", 1.0, time_scale=60) is None


def test_sliding_window_uses_the_tightest_of_several_limits():
    windows = SlidingWindows({"list": [(100, 60), (2, 3600)]})
    windows.acquire("list", "a", 0.0)
    windows.acquire("list", "a", 1.0)
    assert windows.acquire("list", "a", 120.0) == pytest.approx(3480.0)


def test_odata_filter_parsing():
    assert odata.parse_filter("action eq 'Block' and title eq 'O''Brien'") == [
        ("action", "Block"),
        ("title", "O'Brien"),
    ]
    assert odata.parse_filter("generateAlert eq false") == [("generateAlert", False)]
    for bad in ("action eq 'a' and", "and", "'x' eq action", "action eq 'a' and and"):
        with pytest.raises(odata.ODataError):
            odata.parse_filter(bad)
    assert odata.parse_query({"$top": ["5"], "$skip": ["2"]}) == ([], 5, 2)


@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        ("IpAddress", "8.8.8.8", True),
        ("IpAddress", "2001:4860:4860:0000:0000:0000:0000:8888", True),  # leading zeros are still 8 groups
        ("IpAddress", "192.168.1.1", False),
        ("IpAddress", "100.64.0.1", False),  # shared address space is not external
        ("IpAddress", "08.8.8.8", False),
        ("DomainName", "xn--bcher-kva.example", True),
        ("DomainName", "evil.example.com.", False),
        ("DomainName", "1.2.3.4", False),
        ("Url", "https://evil.example.com:8443/a?b=c", True),
        ("Url", "http://20.1.2.3/x", True),
        ("Url", "https://evil.example.com:99999/", False),
        ("FileSha256", "A" * 64, True),  # case is kept as sent (defender-api.md §4)
    ],
)
def test_value_rules(kind, value, ok):
    assert (rules.value_problem(kind, value) is None) is ok


def test_past_expiry_is_an_item_problem_only_when_rejecting():
    item = {
        "indicatorValue": "a" * 64,
        "indicatorType": "FileSha256",
        "action": "Block",
        "title": "t",
        "description": "d",
        "expirationTime": "2020-01-01T00:00:00Z",
    }
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert rules.check_item(item, now=now).code == "InvalidInput"
    assert rules.check_item(item, now=now, reject_past_expiration=False) is None


def test_emulators_use_the_standard_library_only():
    code = (
        "import sys, localdev.defender_emulator, localdev.identity_emulator;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'requests', 'urllib3', 'msal'));"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["localdev.defender_emulator", "localdev.identity_emulator"])
def test_command_line_mode_prints_its_url_and_stops_on_sigterm(module):
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.removeprefix("listening on ")
        path = "/admin/config"
        with urllib.request.urlopen(url + path, timeout=5) as resp:
            assert resp.status == 200 and json.loads(resp.read())
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()
        proc.stderr.close()


def test_constructor_limits_are_partial_and_options_are_checked():
    from localdev.defender_emulator import DefenderEmulator

    emulator = DefenderEmulator(limits={"import": [(5, 60)]}, time_scale=60)
    assert emulator.options.limits["import"] == [(5, 60)]
    assert emulator.options.limits["batch_delete"] == [(30, 60), (1500, 3600)]
    with pytest.raises(ValueError, match="cap_mode"):
        DefenderEmulator(cap_mode="sometimes")
    with pytest.raises(ValueError, match="loopback"):
        DefenderEmulator(host="192.0.2.10")
