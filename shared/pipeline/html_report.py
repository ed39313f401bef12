"""The HTML report: one self-contained page per input, for people to look at (CONTRACT.md "Reports", [html]).

Core module: standard library only, no I/O. `ReportWriter` feeds an `html_aggregate.HtmlAggregate` once per entry
as the entries stream through it and writes `render_page(...)` into the stream it was given when the run finishes.

Bounded whatever the input's size: the aggregate's counts are bounded (see `html_aggregate`); the page shows exact
totals, the 30 largest groups and an "other" group, so a million-row input gives a page of tens of kilobytes.

Safe to open whatever the input held: no script, no link, form, image or font; the CSS is one inline `<style>`
element allowed by its SHA-256 in a Content-Security-Policy meta tag (`default-src 'none'`), the charts are inline
SVG. Every text from the input (values, types, reasons, the input's name, file-level messages) goes through
`text()`: cut to a bounded length, control and bidirectional-override characters shown as visible escapes, then
HTML-escaped; input never becomes markup, an attribute name, a URL or a link.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping, Sequence
from typing import Any

from shared.pipeline.html_aggregate import (
    LINES_PER_GROUP,
    MAX_GROUPS,
    OTHER,
    REASON_CHARS,
    VALUE_CHARS,
    Group,
    HtmlAggregate,
)

TYPES_SHOWN = 12  # bars of the type chart; the rest are one "other" bar
ERRORS_SHOWN = 20  # file-level problems listed on the page
NAME_CHARS = 300  # characters of the input's name shown

STATUS_ORDER = ("submitted", "unchanged", "duplicate", "failed", "invalid", "skipped")
STATUS_WORDS = {
    "completed": (
        "Completed",
        "Every entry was submitted, unchanged, a duplicate or skipped on purpose, and the file had no problem.",
    ),
    "completed_with_errors": (
        "Completed with errors",
        "Some entries were invalid or failed, or the file had a problem after which rows were still read.",
    ),
    "failed": (
        "Failed",
        "Nothing could be read from the input, or Defender or the identity endpoint could not be reached.",
    ),
}
STATUS_MEANING = {
    "submitted": "accepted by Defender",
    "unchanged": "already in the tenant as given",
    "duplicate": "repeats an earlier entry",
    "failed": "Defender rejected it or its batch failed",
    "invalid": "rejected before submission",
    "skipped": "not submitted on purpose",
}

# Every style of the page. Its exact text is hashed into the CSP: change it only here.
STYLE = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--card:#fff;
--submitted:#1a7f37;--unchanged:#0969da;--duplicate:#8c959f;--failed:#cf222e;--invalid:#bc4c00;--skipped:#8250df}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,"Liberation Sans","DejaVu Sans",sans-serif}
main{max-width:1040px;margin:0 auto;padding:24px 20px 40px}
header{border-bottom:1px solid var(--line);margin-bottom:16px;padding-bottom:12px}
h1{font-size:22px;margin:0 0 4px;word-break:break-all}
h2{font-size:17px;margin:0 0 10px}
h3{font-size:14px;margin:0 0 6px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px;margin:0 0 16px}
.muted{color:var(--muted)}
.status{display:inline-block;border-radius:999px;padding:2px 12px;font-weight:600;color:#fff;margin-right:8px}
.run-completed{background:var(--submitted)}
.run-completed_with_errors{background:var(--invalid)}
.run-failed{background:var(--failed)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;word-break:break-all}
dl.facts.two{grid-template-columns:max-content 1fr max-content 1fr;margin-top:8px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(100px,1fr));gap:10px}
.tile{border:1px solid var(--line);border-top:4px solid var(--muted);border-radius:6px;padding:8px 10px;background:#fff}
.tile .n{display:block;font-size:24px;font-weight:650;font-variant-numeric:tabular-nums}
.tile .k{display:block;color:var(--muted);font-size:12px}
.tile.s-submitted{border-top-color:var(--submitted)}
.tile.s-unchanged{border-top-color:var(--unchanged)}
.tile.s-duplicate{border-top-color:var(--duplicate)}
.tile.s-failed{border-top-color:var(--failed)}
.tile.s-invalid{border-top-color:var(--invalid)}
.tile.s-skipped{border-top-color:var(--skipped)}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:16px 24px}
svg{display:block;max-width:100%;height:auto}
svg text{font:12px system-ui,-apple-system,"Segoe UI",Roboto,Arial,"Liberation Sans","DejaVu Sans",sans-serif;
fill:var(--ink)}
svg .track{fill:#eaeef2}
svg .f-submitted{fill:var(--submitted)}
svg .f-unchanged{fill:var(--unchanged)}
svg .f-duplicate{fill:var(--duplicate)}
svg .f-failed{fill:var(--failed)}
svg .f-invalid{fill:var(--invalid)}
svg .f-skipped{fill:var(--skipped)}
svg .before{fill:#8c959f}
svg .after{fill:var(--unchanged)}
svg .reserve{fill:#ffd8b5}
svg .cap{stroke:var(--failed);stroke-width:2}
svg text.n{font-variant-numeric:tabular-nums}
table{border-collapse:collapse;width:100%;font-size:13px}
table.lines{table-layout:fixed}
col.c-line{width:84px}
col.c-value{width:34%}
col.c-type{width:18%}
th,td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid var(--line);overflow-wrap:anywhere}
th{color:var(--muted);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,.v{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono","DejaVu Sans Mono",monospace;
font-size:12.5px;word-break:break-all}
.group{border:1px solid var(--line);border-left:4px solid var(--invalid);border-radius:6px;padding:10px 12px;
margin:0 0 10px}
.group.g-failed{border-left-color:var(--failed)}
.group.g-other{border-left-color:var(--muted)}
.group .msg{margin:0 0 6px}
.badge{display:inline-block;font-size:12px;border-radius:4px;padding:0 6px;margin-left:6px;background:#eaeef2}
ul.errors{margin:0;padding-left:20px}
footer{color:var(--muted);font-size:12px;margin-top:8px}
"""
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode("utf-8")).digest()).decode("ascii")
CSP = f"default-src 'none'; style-src '{STYLE_HASH}'; img-src data:"

# Shown as visible escapes instead of acting on the page: C0 controls but tab and line feed, DEL and the
# C1 controls, and the bidirectional formatting characters that could make a value read as another ("Trojan
# Source", CVE-2021-42574). NUL becomes `\x00`, which also keeps OTHER apart from every shown text.
_VISIBLE = str.maketrans(
    {
        **{c: f"\\x{c:02x}" for c in [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)]},
        **{c: f"\\u{c:04x}" for c in [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]},
    }
)


def text(value: object, limit: int | None = None) -> str:
    """`value` as safe HTML text: cut to `limit` characters (with `…`), invisible controls shown, escaped."""
    s = "" if value is None else str(value)
    if limit is not None and len(s) > limit:
        s = s[:limit] + "…"
    s = s.translate(_VISIBLE)
    # A lone surrogate (never valid UTF-8) would stop the page from being written: show it as `\udcxx`.
    s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(s, quote=True)


def _n(count: int) -> str:
    return f"{count:,}"


# ---------------------------------------------------------------------------------------------- rendering


def render_page(
    *,
    source: Mapping[str, Any],
    started_at: str,
    finished_at: str,
    dry_run: bool,
    status: str,
    summary: Mapping[str, int],
    errors: Sequence[Mapping[str, Any]],
    errors_omitted: int = 0,
    tenant: Mapping[str, Any] | None,
    aggregate: HtmlAggregate,
) -> str:
    """The whole page as one string (tens of kilobytes at most: see the module docstring)."""
    name = str(source.get("name") or "(unnamed input)")
    title = f"Import report: {text(name, NAME_CHARS)}"
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n',
        '<meta name="referrer" content="no-referrer">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        _header(title, status, dry_run),
        _input_section(source, started_at, finished_at, dry_run),
        _counts_section(summary),
        _charts_section(summary, aggregate),
        _tenant_section(tenant),
        _groups_section(aggregate),
        _codes_section(aggregate),
        _errors_section(errors, errors_omitted, summary),
        "<footer>This page shows exact totals, the largest groups and the first "
        f"{LINES_PER_GROUP} lines of each; the JSON report beside it lists every entry "
        "(<code>.report.json</code>), the CSV report too (<code>.report.csv</code>).</footer>\n",
        "</main>\n</body>\n</html>\n",
    ]
    return "".join(parts)


def _header(title: str, status: str, dry_run: bool) -> str:
    word, meaning = STATUS_WORDS.get(status, (status, ""))
    dry = ' <span class="badge">dry run: nothing was submitted</span>' if dry_run else ""
    return (
        f'<header>\n<h1 id="title">{title}</h1>\n'
        f'<p id="run-status"><span class="status run-{text(status)}">{text(word)}</span>'
        f"{text(meaning)}{dry}</p>\n</header>\n"
    )


def _size(size: object) -> str:
    if not isinstance(size, int) or isinstance(size, bool):
        return "unknown"
    if size < 1024:
        return f"{_n(size)} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{_n(size)} bytes ({value:.1f} {unit})"


def _input_section(source: Mapping[str, Any], started_at: str, finished_at: str, dry_run: bool) -> str:
    rows = [("Name", f'<span class="v" id="input-name">{text(source.get("name"), NAME_CHARS)}</span>')]
    if source.get("container"):
        rows.append(("Container", text(source.get("container"), NAME_CHARS)))
    rows.append(("Format", f'<span id="input-format">{text(source.get("format") or "unknown", 40)}</span>'))
    rows.append(("Size", f'<span id="input-size">{text(_size(source.get("size")))}</span>'))
    if source.get("etag"):
        rows.append(("ETag", f'<span class="v">{text(source.get("etag"), 100)}</span>'))
    submitter = source.get("submitter")
    if isinstance(submitter, Mapping) and submitter:
        who = " ".join(f"{k}={v}" for k, v in submitter.items())
        rows.append(("Submitted by", f'<span class="v" id="input-submitter">{text(who, 200)}</span>'))
    rows.append(("Started", f'<time id="started">{text(started_at, 40)}</time>'))
    rows.append(("Finished", f'<time id="finished">{text(finished_at, 40)}</time>'))
    rows.append(("Dry run", "yes" if dry_run else "no"))
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<section id="input">\n<h2>Input</h2>\n<dl class="facts">{body}</dl>\n</section>\n'


def _tile(ident: str, css: str, count: int, label: str, hint: str) -> str:
    return (
        f'<div class="tile {css}" id="count-{ident}" title="{text(hint)}">'
        f'<span class="n">{_n(count)}</span><span class="k">{text(label)}</span></div>'
    )


def _counts_section(summary: Mapping[str, int]) -> str:
    tiles = [_tile("total", "", summary.get("total", 0), "entries", "indicator entries read")]
    tiles += [_tile(s, f"s-{s}", summary.get(s, 0), s, STATUS_MEANING[s]) for s in STATUS_ORDER]
    tiles.append(_tile("ignoredLines", "", summary.get("ignoredLines", 0), "ignored lines", "lines with no indicator"))
    calls = (
        f"Defender calls: {_n(summary.get('apiCalls', 0))} import, {_n(summary.get('retries', 0))} retries, "
        f"{_n(summary.get('listCalls', 0))} list, {_n(summary.get('deleteCalls', 0))} delete."
    )
    return (
        f'<section id="counts">\n<h2>Entries by status</h2>\n<div class="tiles">{"".join(tiles)}</div>\n'
        f'<p class="muted" id="calls">{calls}</p>\n</section>\n'
    )


def _bars(ident: str, label: str, rows: Sequence[tuple[str, Sequence[tuple[str, int]]]], label_width: int) -> str:
    """A horizontal bar chart: one row per label, its bar split into (status, count) segments."""
    width, row_h, num_w = 480, 26, 64
    bar_w = width - label_width - num_w
    top = max((sum(n for _s, n in segs) for _l, segs in rows), default=0) or 1
    height = max(1, len(rows)) * row_h + 4
    out = [
        f'<svg id="{ident}" role="img" aria-label="{text(label)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{text(label)}</title>'
    ]
    for i, (name, segs) in enumerate(rows):
        y = i * row_h + 4
        total = sum(n for _s, n in segs)
        out.append(f'<g class="bar"><text class="label" x="0" y="{y + 14}">{name}</text>')
        out.append(f'<rect class="track" x="{label_width}" y="{y}" width="{bar_w}" height="18" rx="3"/>')
        x = float(label_width)
        for status, n in segs:
            if n <= 0:
                continue
            w = max(2.0, n / top * bar_w)
            out.append(f'<rect class="f-{status}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="18" rx="3"/>')
            x += w
        out.append(f'<text class="n" x="{width - num_w + 8}" y="{y + 14}">{_n(total)}</text></g>')
    if not rows:
        out.append('<text x="0" y="16" class="muted">no entries</text>')
    out.append("</svg>")
    return "".join(out)


def _charts_section(summary: Mapping[str, int], aggregate: HtmlAggregate) -> str:
    status_rows = [(text(s), [(s, summary.get(s, 0))]) for s in STATUS_ORDER]
    types = sorted(aggregate.by_type().items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    shown, rest = types[:TYPES_SHOWN], types[TYPES_SHOWN:]
    folded = [kv for kv in shown if kv[0] == OTHER]
    shown = [kv for kv in shown if kv[0] != OTHER]
    rest += folded
    if rest:
        merged: dict[str, int] = {}
        for _t, by_status in rest:
            for s, n in by_status.items():
                merged[s] = merged.get(s, 0) + n
        shown.append((OTHER, merged))
    type_rows = [
        ("other" if t == OTHER else text(t, 24), [(s, by_status.get(s, 0)) for s in STATUS_ORDER])
        for t, by_status in shown
    ]
    return (
        '<section id="charts">\n<h2>Charts</h2>\n<div class="charts">'
        f"<div><h3>By status</h3>{_bars('by-status', 'Entries by status', status_rows, 84)}</div>"
        f"<div><h3>By indicator type</h3>{_bars('by-type', 'Entries by indicator type', type_rows, 150)}"
        '<p class="muted">Bars are split by status, in the colours of the chart beside.</p></div>'
        "</div>\n</section>\n"
    )


def _gauge(tenant: Mapping[str, Any]) -> str:
    """Before and after against the cap, the reserve shaded at the cap's end."""
    before, after = int(tenant.get("countBefore") or 0), int(tenant.get("countAfter") or 0)
    cap, reserve = int(tenant.get("max") or 0), int(tenant.get("reserve") or 0)
    scale = max(cap, before, after, 1)
    width, left, right = 640, 60, 70  # labels left, numbers right
    span = width - left - right

    def x(v: int) -> float:
        return left + v / scale * span

    out = [
        '<svg id="tenant-gauge" role="img" aria-label="Tenant indicators against the cap" '
        f'viewBox="0 0 {width} 92" width="{width}" height="92" xmlns="http://www.w3.org/2000/svg">'
        "<title>Tenant indicators against the cap</title>"
    ]
    if cap:
        out.append(f'<rect class="reserve" x="{x(max(0, cap - reserve)):.1f}" y="4" '
                   f'width="{x(cap) - x(max(0, cap - reserve)):.1f}" height="56"/>')  # fmt: skip
    for i, (label, value, css) in enumerate((("before", before, "before"), ("after", after, "after"))):
        y = 10 + i * 26
        out.append(f'<g class="bar"><text class="label" x="0" y="{y + 13}">{label}</text>')
        out.append(
            f'<rect class="{css}" x="{left}" y="{y}" width="{max(0.0, x(value) - left):.1f}" height="18" rx="3"/>'
        )
        out.append(f'<text class="n" x="{width - right + 8}" y="{y + 13}">{_n(value)}</text></g>')
    if cap:
        out.append(f'<line class="cap" x1="{x(cap):.1f}" y1="2" x2="{x(cap):.1f}" y2="62"/>')
    out.append(f'<text x="{left}" y="80">0</text>')
    if cap:
        anchor = "end" if x(cap) > width - 120 else "middle"
        out.append(f'<text x="{x(cap):.1f}" y="80" text-anchor="{anchor}">cap {_n(cap)}, reserve {_n(reserve)}</text>')
    out.append("</svg>")
    return "".join(out)


def _tenant_section(tenant: Mapping[str, Any] | None) -> str:
    head = '<section id="tenant">\n<h2>Tenant</h2>\n'
    if not tenant:
        return head + '<p class="muted">The tenant was not read in this run (validation only).</p>\n</section>\n'
    if "error" in tenant:
        return head + f'<p id="tenant-error">{text(tenant.get("error"), 1000)}</p>\n</section>\n'
    facts = [
        ("countBefore", "Active indicators before"),
        ("countAfter", "Active indicators after"),
        ("max", "Cap (MAX_TENANT_INDICATORS)"),
        ("reserve", "Reserve (CAPACITY_RESERVE)"),
        ("roomBefore", "Room before"),
        ("roomLeft", "Room left"),
        ("capacitySkipped", "Skipped for capacity"),
        ("deleted", "Deleted"),
    ]
    body = "".join(
        f'<dt>{label}</dt><dd id="tenant-{key}">{_n(int(tenant[key]))}</dd>'
        for key, label in facts
        if isinstance(tenant.get(key), int) and not isinstance(tenant.get(key), bool)
    )
    note = " (dry run: what would have been)" if tenant.get("dryRun") else ""
    return (
        head
        + f"{_gauge(tenant)}\n"
        + f'<dl class="facts two">{body}</dl>\n<p class="muted">"after" is computed{note}: before + created − deleted.'
        "</p>\n</section>\n"
    )


def _line_label(line: int, position: bool) -> str:
    return f"element {_n(line)}" if position else _n(line)


def _group_html(g: Group) -> str:
    other = g.code == OTHER
    css = "g-other" if other else f"g-{text(g.status)}"
    if other:
        and_more = " and more" if g.past_cap else ""
        head = f'<h3>other <span class="badge">{_n(len(g.folded))} further codes{and_more}</span>'
        message = "Codes: " + ", ".join(f"<code>{text(c, 60)}</code>" for c in g.folded[:40])
        if len(g.folded) > 40:
            message += ", …"
    else:
        head = f'<h3><code class="code">{text(g.code, 60)}</code> <span class="badge">{text(g.status)}</span>'
        first = g.lines[0][4] if g.lines else None
        message = f"e.g. {text(first, REASON_CHARS)}" if first else ""
    head += f' <span class="badge count">{_n(g.count)}</span></h3>'
    rows = "".join(
        f'<tr><td class="num">{_line_label(line, position)}</td><td class="v">{text(value, VALUE_CHARS)}</td>'
        f"<td>{text(typ, VALUE_CHARS) if typ else ''}</td><td>{text(reason, REASON_CHARS)}</td></tr>"
        for line, position, value, typ, reason in g.lines
    )
    more = g.count - len(g.lines)
    tail = f'<p class="muted">… and {_n(more)} more in the JSON report.</p>' if more > 0 else ""
    return (
        f'<div class="group {css}">{head}<p class="msg">{message}</p>'
        '<table class="lines"><colgroup><col class="c-line"><col class="c-value"><col class="c-type"><col></colgroup>'
        '<thead><tr><th class="num">Line</th><th>Value</th><th>Type</th><th>Reason</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>{tail}</div>\n"
    )


def _groups_section(aggregate: HtmlAggregate) -> str:
    groups = aggregate.groups()
    head = '<section id="groups">\n<h2>Rejected and failed entries, by rule</h2>\n'
    if not groups:
        return head + '<p class="muted">None: no entry was invalid or failed.</p>\n</section>\n'
    return head + "".join(_group_html(g) for g in groups) + "</section>\n"


def _codes_section(aggregate: HtmlAggregate) -> str:
    """Every (status, code) with its count: how the other entries ended (dry run, tenant capacity, ...)."""
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    items = sorted(aggregate.by_code().items(), key=lambda kv: (order.get(kv[0][0], 9), -kv[1], kv[0][1]))
    items = [kv for kv in items if kv[0][0] not in ("invalid", "failed")]
    if not items:
        return ""
    shown, rest = items[:MAX_GROUPS], items[MAX_GROUPS:]
    rows = "".join(
        f"<tr><td>{text(s)}</td><td><code>{'other' if c == OTHER else text(c, 60)}</code></td>"
        f'<td class="num">{_n(n)}</td></tr>'
        for (s, c), n in shown
    )
    if rest:
        rows += f'<tr><td>…</td><td>other</td><td class="num">{_n(sum(n for _k, n in rest))}</td></tr>'
    return (
        '<section id="codes">\n<h2>Other entries, by code</h2>\n'
        '<table><thead><tr><th>Status</th><th>Code</th><th class="num">Entries</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>\n</section>\n"
    )


def _errors_section(errors: Sequence[Mapping[str, Any]], omitted: int, summary: Mapping[str, int]) -> str:
    ignored = summary.get("ignoredLines", 0)
    parts = ['<section id="file">\n<h2>File</h2>\n']
    parts.append(
        f'<p id="ignored">{_n(ignored)} ignored line{"" if ignored == 1 else "s"}: non-blank lines that hold no '
        "indicator (prose, headings), counted in <code>summary.ignoredLines</code>.</p>\n"
    )
    if not errors:
        parts.append('<p id="errors-none" class="muted">No file-level problem.</p>\n')
    else:
        items = []
        for e in list(errors)[:ERRORS_SHOWN]:
            where = ""
            if e.get("line") is not None:
                where = f"line {text(e.get('line'), 20)}"
                if e.get("column") is not None:
                    where += f", column {text(e.get('column'), 20)}"
                where += ": "
            items.append(f"<li>{where}{text(e.get('message'), 1000)}</li>")
        more = len(errors) + omitted - min(len(errors), ERRORS_SHOWN)
        tail = f"<li>… {_n(more)} more in the JSON report.</li>" if more > 0 else ""
        parts.append(f"<h3>File-level problems ({_n(len(errors) + omitted)})</h3>\n")
        parts.append(f'<ul class="errors" id="errors">{"".join(items)}{tail}</ul>\n')
    parts.append("</section>\n")
    return "".join(parts)
