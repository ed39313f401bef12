"""The HTML page of a report (CONTRACT.md "Reports", [html]): self-contained, escaped, bounded, and its numbers are
the JSON report's. The page in a real browser: tests/browser/."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import time
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest

from shared.core.model import FileProblem, Outcome, Status, Summary
from shared.pipeline import html_report
from shared.pipeline.html_aggregate import (
    LINES_PER_GROUP,
    MAX_CODES,
    MAX_GROUPS,
    MAX_KEYS,
    MAX_TYPES,
    OTHER,
    REASON_CHARS,
    VALUE_CHARS,
)
from shared.pipeline.html_report import text
from shared.pipeline.reports import MAX_MEMO, ReportWriter, html_name

T0 = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC)
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(document.domain)",
    "</style><script>document.title='pwned'</script>",
    "<svg onload=alert(1)>",
    "<!-- <a href='http://evil.example/'>x</a> -->",
    "' onmouseover='alert(1)",
    "&lt;already&gt; &amp; escaped",
]
# Every element the page is built from: anything else came from input.
PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "footer", "section", "h1", "h2", "h3", "p",
    "span", "div", "dl", "dt", "dd", "time", "table", "colgroup", "col", "thead", "tbody", "tr", "th", "td", "code",
    "ul", "li", "svg", "g", "rect", "line", "text",
}  # fmt: skip


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.data: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        self.data.append(data)
        if self._in_title and len(self.tags) < 10:  # the page's own <title>, not those of the SVG charts
            self.title += data


class Null(io.TextIOBase):
    """A text sink: the JSON and CSV of a million entries are not what these tests look at."""

    def write(self, s: str) -> int:
        return len(s)


def writer(**kw: Any) -> tuple[ReportWriter, io.StringIO, io.StringIO]:
    j, h = io.StringIO(), io.StringIO()
    source = kw.pop("source", {"container": "indicators", "name": "feeds/a.csv", "etag": "0x1", "size": 2048})
    w = ReportWriter(j, io.StringIO(), source=source, started_at=T0, dry_run=False, html_out=h, **kw)
    return w, j, h


def finish(w: ReportWriter, entries: list[Outcome], **kw: Any) -> Summary:
    s = Summary()
    for o in entries:
        w.add(o)
        s.add(o)
    w.finish(s, kw.pop("status", "completed_with_errors"), finished_at=T1, **kw)
    return s


def invalid(line: int, value: str, code: str, reason: str | None = None, typ: str | None = "DomainName") -> Outcome:
    return Outcome(
        line=line,
        value=value,
        type=typ,
        action="Block",
        status=Status.invalid,
        reason=reason or f"{code}: {value}",
        code=code,
    )


def test_writer_without_html_out_writes_no_page_and_keeps_no_aggregate():
    j = io.StringIO()
    w = ReportWriter(j, io.StringIO(), source={"name": "a"}, started_at=T0, dry_run=False)
    w.add(invalid(1, "x", "hash-length"))
    w.finish(Summary(total=1, invalid=1), "completed_with_errors", finished_at=T1)
    assert w.html_aggregate is None and json.loads(j.getvalue())["indicators"][0]["code"] == "hash-length"


def test_page_names_sit_beside_the_json_report():
    assert html_name("drop/feed.csv.report.json") == "drop/feed.csv.report.html"
    assert html_name("http/20260101T100000Z-abc.report.json") == "http/20260101T100000Z-abc.report.html"


def test_input_values_are_text_never_markup():
    """`<script>`, attribute breakouts and `javascript:` URLs render as text: no element, attribute or link from
    the input."""
    name = 'x"><img src=x onerror=alert(1)>.csv'
    w, _, h = writer(source={"container": "<b>c</b>", "name": name, "etag": "\"'><x>", "size": 10, "format": "<i>"})
    entries = [invalid(i, v, f"rule-{i}", reason=f"{v} is not an indicator", typ=v) for i, v in enumerate(HOSTILE, 1)]
    entries.append(
        Outcome(
            line=99,
            value=HOSTILE[2],
            type="Url",
            action=HOSTILE[1],
            status=Status.skipped,
            reason=HOSTILE[0],
            code="dry-run",
        )
    )
    w.error(FileProblem(f"bad JSON near {HOSTILE[3]}", line=3, column=HOSTILE[1]))  # type: ignore[arg-type]
    finish(w, entries, extra={"tenant": {"error": f"could not read: {HOSTILE[4]}"}})
    page = h.getvalue()
    parsed = Tags()
    parsed.feed(page)
    assert {t for t, _a in parsed.tags} <= PAGE_TAGS
    for tag, attrs in parsed.tags:
        for key, value in attrs:
            assert not key.startswith("on"), (tag, key)
            assert key not in ("href", "src", "action", "formaction", "srcset", "xlink:href", "style"), (tag, key)
            assert "javascript:" not in (value or "")
    assert "<script" not in page.lower() and "<img" not in page.lower()
    shown = "".join(parsed.data)
    for value in HOSTILE:
        assert value in shown  # shown as the text it is
    assert parsed.title == f"Import report: {name}"
    assert page.count("<style>") == 1 and page.count("</style>") == 1


def test_invisible_and_bidi_characters_are_shown_and_lone_surrogates_do_not_break_the_page():
    w, _, h = writer()
    finish(w, [invalid(1, "evil\u202egnp.exe\x00\x1b[31m", "not-an-indicator"), invalid(2, "bad\udcff", "x-y")])
    page = h.getvalue()
    page.encode("utf-8")  # writable as UTF-8
    assert "evil\\u202egnp.exe\\x00\\x1b[31m" in page and "bad\\udcff" in page
    assert "\u202e" not in page and "\x00" not in page
    assert text("a" * 10, 4) == "aaaa…"


def test_csp_allows_exactly_the_inline_style():
    w, _, h = writer()
    finish(w, [invalid(1, "x", "hash-length")])
    page = h.getvalue()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert csp and style
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode("utf-8")).digest()).decode()
    assert csp.group(1) == f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:"
    assert page.index("Content-Security-Policy") < page.index("<style>") < page.index("<body>")


def test_numbers_are_the_json_reports():
    w, j, h = writer()
    entries = [
        Outcome(
            line=1,
            value="a.example.com",
            type="DomainName",
            action="Block",
            status=Status.submitted,
            id="1",
            code="submitted",
        ),
        Outcome(
            line=2,
            value="b.example.com",
            type="DomainName",
            action="Block",
            status=Status.unchanged,
            id="2",
            code="unchanged",
        ),
        Outcome(
            line=3,
            value="a.example.com",
            type="DomainName",
            action="Block",
            status=Status.duplicate,
            reason="duplicate of line 1",
            code="duplicate",
        ),
        Outcome(
            line=4,
            value="c.example.com",
            type="DomainName",
            action="Block",
            status=Status.failed,
            reason="InvalidDomainName",
            code="defender-rejected",
        ),
        invalid(5, "10.0.0.1", "ip-not-public", typ="IpAddress"),
        invalid(6, "10.0.0.2", "ip-not-public", typ="IpAddress"),
        Outcome(
            line=7,
            value="d.example.com",
            type="DomainName",
            action="Block",
            status=Status.skipped,
            reason="tenant capacity",
            code="tenant-capacity",
        ),
    ]
    tenant = {"countBefore": 14210, "countAfter": 14211, "max": 15000, "reserve": 500, "roomBefore": 290,
              "roomLeft": 289, "capacitySkipped": 1, "deleted": 0, "dryRun": False}  # fmt: skip
    s = finish(w, entries, extra={"tenant": tenant})
    s.ignoredLines = 0
    doc, page = json.loads(j.getvalue()), h.getvalue()
    for key in ("total", "submitted", "unchanged", "duplicate", "failed", "invalid", "skipped", "ignoredLines"):
        assert re.search(rf'id="count-{key}"[^>]*><span class="n">{doc["summary"][key]:,}</span>', page), key
    for key in ("countBefore", "countAfter", "max", "reserve", "roomLeft", "capacitySkipped"):
        assert f'<dd id="tenant-{key}">{doc["tenant"][key]:,}</dd>' in page
    groups = w.html_aggregate.groups() if w.html_aggregate else []
    assert [(g.status, g.code, g.count) for g in groups] == [
        ("invalid", "ip-not-public", 2),
        ("failed", "defender-rejected", 1),
    ]
    assert (
        '<code class="code">ip-not-public</code> <span class="badge">invalid</span> <span class="badge count">2' in page
    )
    assert "tenant-capacity" in page and "14,210" in page


def test_at_most_30_groups_then_other_with_exact_counts_and_first_lines():
    w, j, h = writer()
    entries: list[Outcome] = []
    line = 0
    for k in range(45):  # code k has 50 - k entries: the order is known
        for _ in range(50 - k):
            line += 1
            entries.append(invalid(line, f"v{line}.example", f"rule-{k:02d}"))
    finish(w, entries)
    assert w.html_aggregate is not None
    groups = w.html_aggregate.groups()
    assert len(groups) == MAX_GROUPS + 1
    assert [g.code for g in groups[:MAX_GROUPS]] == [f"rule-{k:02d}" for k in range(MAX_GROUPS)]
    other = groups[-1]
    assert other.code == OTHER and other.folded == tuple(f"rule-{k:02d}" for k in range(MAX_GROUPS, 45))
    assert other.count == sum(50 - k for k in range(MAX_GROUPS, 45))
    assert sum(g.count for g in groups) == len(entries) == json.loads(j.getvalue())["summary"]["invalid"]
    first_folded = sum(50 - k for k in range(MAX_GROUPS)) + 1
    assert [x[0] for x in other.lines] == list(range(first_folded, first_folded + LINES_PER_GROUP))
    assert all(len(g.lines) == LINES_PER_GROUP for g in groups)
    page = h.getvalue()
    assert page.count('<div class="group ') == MAX_GROUPS + 1 and "15 further codes" in page


def test_a_million_entries_keep_the_aggregate_and_the_page_small():
    """Memory stays flat: counters, groups and kept lines are capped whatever the input (hostile: many distinct
    types and codes, values of 8,000 characters); the totals stay exact."""
    n = 1_000_000
    big = "<" * 8000
    # Distinct codes and types past their caps; every value and reason long enough to be cut when shown. The
    # values repeat (a pool) so that the JSON text of most entries comes from the writer's memo, as in real feeds.
    pool = [
        invalid(i, f"{big if i % 60 == 0 else big[:200]}{i}", f"code-{i % (MAX_CODES + 100)}", reason=big[: 300 + i],
                typ=f"type-{i % (MAX_TYPES * 3)}")
        for i in range(1, 601)
    ]  # fmt: skip
    pool += [invalid(i, f"<{i}>" * 40, f"code-{i % 7}", reason="<" * 300) for i in range(600)]
    pool += [
        Outcome(
            line=i,
            value=f"{i:064x}",
            type="FileSha256",
            action="Audit",
            status=Status.skipped,
            reason="dry run",
            code="dry-run",
        )
        for i in range(1200)
    ]
    sink = Null()
    h = io.StringIO()
    w = ReportWriter(sink, sink, source={"name": "big.txt", "size": 10**9}, started_at=T0, dry_run=True, html_out=h)
    add = w.add
    started = time.perf_counter()
    for i in range(n):
        add(pool[i % len(pool)])
    elapsed = time.perf_counter() - started
    rejected = n // len(pool) * 1200 + min(n % len(pool), 1200)  # the pool's first 1,200 are invalid
    s = Summary(total=n, invalid=rejected, skipped=n - rejected)
    w.finish(s, "completed_with_errors", finished_at=T1)
    agg = w.html_aggregate
    assert agg is not None
    size = agg.footprint()
    assert size["counters"] <= MAX_KEYS + MAX_MEMO + 6 and size["types"] <= MAX_TYPES and size["codes"] <= MAX_CODES
    assert size["groups"] <= 2 * (MAX_CODES + 1) and size["lines"] <= size["groups"] * LINES_PER_GROUP
    assert size["chars"] <= size["lines"] * (2 * (VALUE_CHARS + 1) + REASON_CHARS + 1)
    assert sum(agg.counts.values()) == n
    assert sum(g.count for g in agg.groups()) == rejected
    page = h.getvalue()
    assert len(page.encode("utf-8")) < 600_000, len(page)  # every character of it hostile `<`, escaped to `&lt;`
    print(f"1M entries through the writer with the page: {elapsed:.1f} s; page {len(page):,} characters; {size}")


def test_failed_run_without_entries_still_gives_a_page():
    w, _, h = writer()
    w.error(FileProblem("unsupported format"))
    w.finish(Summary(), "failed", finished_at=T1)
    page = h.getvalue()
    assert "Failed" in page and "unsupported format" in page and "None: no entry was invalid or failed." in page


@pytest.mark.parametrize("count", [0, 5, 1000, 1500])
def test_file_level_problems_are_listed_then_counted(count: int):
    w, _, h = writer()
    for i in range(count):
        w.error(FileProblem(f"problem {i}", line=i + 1, fatal=False))
    w.finish(Summary(), "completed_with_errors", finished_at=T1)
    page = h.getvalue()
    if not count:
        assert 'id="errors-none"' in page
        return
    assert f"File-level problems ({count:,})" in page
    assert page.count("<li>line ") == min(count, html_report.ERRORS_SHOWN)
    if count > html_report.ERRORS_SHOWN:
        assert f"… {count - html_report.ERRORS_SHOWN:,} more in the JSON report." in page


def test_codes_past_the_cap_are_counted_in_other_never_shown_as_a_group():
    w, _, h = writer()
    extra = 50
    finish(w, [invalid(i, f"v{i}", f"rule-{i:03d}") for i in range(MAX_CODES + extra)])
    assert w.html_aggregate is not None
    groups = w.html_aggregate.groups()
    assert [g.code for g in groups[:MAX_GROUPS]] == [f"rule-{i:03d}" for i in range(MAX_GROUPS)]
    other = groups[-1]
    assert len(groups) == MAX_GROUPS + 1 and other.past_cap
    assert other.count == MAX_CODES + extra - MAX_GROUPS and len(other.folded) == MAX_CODES - MAX_GROUPS
    assert f"{MAX_CODES - MAX_GROUPS} further codes and more" in h.getvalue()
