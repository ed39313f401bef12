"""The HTML report page in a real browser (CONTRACT.md "Reports", [html]): it loads with no console error and no
network request, its numbers are the JSON report's, and an input crafted with script-like values runs nothing.

The realistic page comes from `python -m shared submit` against the Defender and identity emulators, with a
tenant near its cap, so every part of the page has something to show. Its screenshot lands in
out/test-screenshots/; `make docs-screenshot` (DOCS_SCREENSHOT=<path>) also copies it to the README's image.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shared.app.cli import main
from tests.browser.conftest import SCREENSHOTS
from tests.conftest import REPO
from tests.support.stack import DEFENDER_SCOPE, hex_value, public_ip

pytestmark = pytest.mark.integration

STATUSES = ("submitted", "unchanged", "duplicate", "failed", "invalid", "skipped")


def campaign_text() -> str:
    """An incident write-up's indicator list: prose, defanged values, a few that cannot be imported."""
    lines = [
        "# ACME campaign, January 2026: indicators from the incident report",
        "",
        "The actors staged payloads on rented hosts and rotated their C2 domains weekly.",
        "",
        "C2 domains:",
        *(f"- evil-c2-{i}[.]example[.]com" for i in range(1, 9)),
        "",
        "Payload URLs:",
        *(f"- hxxps://cdn-{i}.evil-cdn[.]example[.]net/p/{i}.exe" for i in range(1, 7)),
        "",
        "Dropped files (SHA-256):",
        *(hex_value(f"acme-{i}") for i in range(24)),
        "",
        "Scanning hosts:",
        *(public_ip(i) for i in range(1, 7)),
        "",
        "Also seen (not all of these can be imported):",
        "198.51.100.7",
        "203.0.113.45",
        "10.1.2.3",
        "8.8.8.0/24",
        "*.evil-c2.example.com",
        "evil-c2-3[.]example[.]com",
        hex_value("acme-5"),
    ]
    return "\n".join(lines) + "\n"


def n(text: str) -> int:
    return int(text.replace(",", "").strip())


def bars(page: Any, chart: str) -> dict[str, int]:
    """label → number of each bar of one SVG chart."""
    out = {}
    for g in page.locator(f"svg#{chart} g.bar").all():
        out[g.locator("text.label").text_content()] = n(g.locator("text.n").text_content())
    return out


@pytest.fixture
def campaign_report(tmp_path: Path, defender: Any, identity_env: Any) -> tuple[Path, dict[str, Any]]:
    """`submit` of the campaign list into a tenant near its cap: every status but `unchanged` on the page."""
    defender.admin.seed(*({"indicatorValue": hex_value(f"analyst-{i}"), "indicatorType": "FileSha256"}
                          for i in range(30)))  # fmt: skip
    # The app plans for 80 with 10 in reserve (room 40 for 44 new indicators: 4 skipped for capacity); Defender
    # itself stops at 67, so 3 of the 40 sent come back rejected.
    defender.configure(tenant_cap=67)
    env = {
        "DEFENDER_API_URL": defender.base_url,
        "DEFENDER_TOKEN_SCOPE": DEFENDER_SCOPE,
        "DEFENDER_REQUEST_TIMEOUT_SECONDS": "5",
        "MAX_TENANT_INDICATORS": "80",
        "CAPACITY_RESERVE": "10",
    }
    src = tmp_path / "acme-campaign.txt"
    src.write_text(campaign_text(), encoding="utf-8")
    out: list[str] = []
    code = main(["submit", str(src), "--report-dir", str(tmp_path / "r")], env=env, printer=out.append)
    assert code == 0, out
    report = json.loads((tmp_path / "r" / "acme-campaign.txt.report.json").read_text(encoding="utf-8"))
    return tmp_path / "r" / "acme-campaign.txt.report.html", report


def test_the_page_loads_clean_and_its_numbers_are_the_json_reports(open_report, campaign_report) -> None:
    path, rep = campaign_report
    s = rep["summary"]
    assert all(s[k] for k in ("submitted", "failed", "invalid", "skipped", "duplicate", "ignoredLines")), s
    page, log = open_report(path)
    assert log.problems() == []
    assert log.requests == [log.url]  # the page's own file, nothing else
    # The inline style applied: its hash in the CSP matched (else Chromium refuses it and says so in the console).
    assert page.evaluate("getComputedStyle(document.querySelector('.status')).color") == "rgb(255, 255, 255)"
    assert page.evaluate("document.scripts.length") == 0

    assert page.title() == "Import report: acme-campaign.txt"
    assert page.locator("#input-name").text_content() == rep["source"]["name"]
    assert page.locator("#input-format").text_content() == rep["source"]["format"] == "text"
    assert page.locator("#input-size").text_content().startswith(f"{rep['source']['size']:,} bytes")
    assert page.locator("#started").text_content() == rep["startedAt"]
    assert page.locator("#run-status .status").text_content() == "Completed with errors"
    assert rep["status"] == "completed_with_errors"

    for key in ("total", *STATUSES, "ignoredLines"):
        assert n(page.locator(f"#count-{key} .n").text_content()) == s[key], key
    assert bars(page, "by-status") == {k: s[k] for k in STATUSES}
    by_type = Counter(e["indicatorType"] or "unknown" for e in rep["indicators"])
    assert bars(page, "by-type") == dict(by_type)

    tenant = rep["tenant"]
    for key in ("countBefore", "countAfter", "max", "reserve", "roomLeft", "capacitySkipped"):
        assert n(page.locator(f"#tenant-{key}").text_content()) == tenant[key], key
    assert (tenant["countBefore"], tenant["max"], tenant["reserve"], tenant["capacitySkipped"]) == (30, 80, 10, 4)

    # Groups: one per (status, code) of the rejected and failed entries, with the JSON's counts and first lines.
    want = Counter((e["status"], e["code"]) for e in rep["indicators"] if e["status"] in ("invalid", "failed"))
    got = {}
    for g in page.locator("#groups .group").all():
        code = g.locator("h3 code.code").text_content()
        status = g.locator("h3 .badge").first.text_content()
        got[(status, code)] = n(g.locator("h3 .badge.count").text_content())
        first = [e for e in rep["indicators"] if (e["status"], e["code"]) == (status, code)][:5]
        shown = g.locator("tbody tr").all()
        assert [n(r.locator("td").first.text_content()) for r in shown] == [e["line"] for e in first]
        assert [r.locator("td.v").text_content() for r in shown] == [e["indicatorValue"] for e in first]
    assert got == dict(want)
    assert ("failed", "defender-rejected") in got and ("invalid", "ip-not-public") in got
    codes = {r.locator("code").text_content(): n(r.locator("td.num").text_content())
             for r in page.locator("#codes tbody tr").all()}  # fmt: skip
    assert codes["tenant-capacity"] == tenant["capacitySkipped"] and codes["duplicate"] == s["duplicate"]
    assert n(page.locator("#ignored").text_content().split(" ")[0]) == s["ignoredLines"]

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    docs = os.environ.get("DOCS_SCREENSHOT")
    if docs:  # `make docs-screenshot`: the README's picture of the page, its top down to the first groups
        target = Path(docs) if Path(docs).is_absolute() else REPO / docs
        target.parent.mkdir(parents=True, exist_ok=True)
        top = page.locator("#groups .group").nth(1).bounding_box()
        height = int(top["y"] + top["height"] + 6) if top else 1600
        page.screenshot(path=str(target), full_page=True, clip={"x": 0, "y": 0, "width": 1100, "height": height})


HOSTILE_CSV = (
    "IndicatorType,IndicatorValue,Action,Title\r\n"
    "DomainName,\"<script>document.title='pwned';alert(1)</script>\",Block,x\r\n"
    'Url,"""><img src=x onerror=""alert(2);document.title=\'pwned\'"">",Block,x\r\n'
    "Url,javascript:alert(document.domain),Block,x\r\n"
    'Url,"</style><script>alert(3)</script><style>",Block,x\r\n'
    '"<svg onload=alert(4)>",evil.example.com,Block,x\r\n'
    "DomainName,evil.example.org,\"<iframe src='http://127.0.0.1:9/'></iframe>\",x\r\n"
    "FileSha256,\"<meta http-equiv=refresh content='0;url=http://127.0.0.1:9/'>\",Block,x\r\n"
    'DomainName,"<link rel=stylesheet href=http://127.0.0.1:9/x.css>",Block,x\r\n'
)
# As the page shows them (values normalised where validation got that far, e.g. `http://` added; reasons quote them).
SCRIPTY = [
    "<script>document.title='pwned';alert(1)</script>",
    '"><img src=x onerror="alert(2);document.title=\'pwned\'">',
    "javascript:alert(document.domain)",
    "</style><script>alert(3)</script><style>",
    "<svg onload=alert(4)>",
    "unknown action \"<iframe src='http://127.0.0.1:9/'></iframe>\"",
    "meta http-equiv=refresh content='0;url=http://127.0.0.1:9/'",
]
NAME = 'feed"><img src=x onerror=alert(5)>.csv'
# Elements that could run, load or navigate; the page itself has none of them.
ACTIVE = "script, img, iframe, frame, object, embed, link, a, form, base, meta[http-equiv=refresh], video, audio"
ON_ATTRIBUTES = (
    "[...document.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name))"
    ".filter(n => n.startsWith('on'))"
)


def _check_inert(page: Any, log: Any) -> str:
    assert log.dialogs == [] and log.errors == []
    assert log.requests == [log.url] and log.blocked == []
    assert page.evaluate(f"document.querySelectorAll({ACTIVE!r}).length") == 0
    assert page.evaluate(ON_ATTRIBUTES) == []
    assert page.title() == f"Import report: {NAME}"
    text = page.evaluate("document.body.innerText")
    for value in SCRIPTY:
        assert value in text  # shown, as text
    dom = page.evaluate("document.documentElement.outerHTML")
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.outerHTML") == dom  # nothing changed it after load
    return str(dom)


def test_an_input_of_script_like_values_runs_nothing(open_report, tmp_path: Path) -> None:
    src = tmp_path / NAME
    src.write_text(HOSTILE_CSV, encoding="utf-8")
    out: list[str] = []
    assert main(["validate", str(src), "--report-dir", str(tmp_path / "r")], env={}, printer=out.append) == 0, out
    path = tmp_path / "r" / f"{NAME}.report.html"
    rep = json.loads((tmp_path / "r" / f"{NAME}.report.json").read_text(encoding="utf-8"))
    assert rep["summary"]["total"] == 8 and rep["summary"]["invalid"] >= 6
    page, log = open_report(path)
    assert log.problems() == []
    _check_inert(page, log)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "report-hostile.png"), full_page=True)

    # Escaping alone holds: the same page without its Content-Security-Policy still runs and loads nothing.
    bare = tmp_path / "no-csp.html"
    html = path.read_text(encoding="utf-8")
    stripped = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>\n', "", html)
    assert stripped != html
    bare.write_text(stripped, encoding="utf-8")
    page2, log2 = open_report(bare)
    _check_inert(page2, log2)
