"""Nothing silently dropped on real feeds (issue "Nothing silently dropped"): table-driven cases on fixtures
written here, one per shape the issue names."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core.model import FIELD_TYPE, FIELD_VALUE, RawRow
from shared.core.settings import Settings
from shared.pipeline.process import process_stream
from shared.pipeline.reports import ReportWriter
from shared.readers import read

NOW = datetime(2026, 1, 15, tzinfo=UTC)
MD5, SHA1, SHA256 = "a" * 32, "b" * 40, "c" * 64


def items(data: bytes, name: str) -> list:
    return list(read(io.BytesIO(data), name))


def rows(data: bytes, name: str) -> list[RawRow]:
    return [i for i in items(data, name) if isinstance(i, RawRow)]


def run(data: bytes, name: str, settings: Settings | None = None):
    j, c = io.StringIO(), io.StringIO()
    w = ReportWriter(j, c, source={"name": name}, started_at=NOW, dry_run=True)
    s = settings or Settings()
    result = process_stream(io.BytesIO(data), name, settings=s, submitter=None, reports=w, source=name, now=NOW)
    return result, json.loads(j.getvalue())


def bundle(*patterns: str) -> bytes:
    objects = [
        {"type": "indicator", "id": f"indicator--{i}", "spec_version": "2.1", "pattern_type": "stix", "pattern": p}
        for i, p in enumerate(patterns)
    ]
    return json.dumps({"type": "bundle", "id": "bundle--1", "objects": objects}).encode()


# ------------------------------------------------------------------ STIX AND of one object's properties

STIX_AND = [
    # (pattern, [(value, type)], invalid?)  # why
    (f"[file:hashes.MD5 = '{MD5}' AND file:hashes.'SHA-256' = '{SHA256}']", [(MD5, "FileMd5"), (SHA256, "FileSha256")],
     False),  # one file's hashes: each imported
    (f"[file:hashes.MD5 = '{MD5}' AND file:hashes.'SHA-1' = '{SHA1}' AND file:name = 'x.exe']",
     [(MD5, "FileMd5"), (SHA1, "FileSha1")], False),  # the name condition dropped, noted
    (f"[file:hashes.MD5 = '{MD5}' AND url:value = 'http://x.example/']", None, True),  # different objects
    (f"[file:hashes.MD5 = '{MD5}' AND file:size = 12]", [(MD5, "FileMd5")], False),  # as before: hash + dropped
]  # fmt: skip


@pytest.mark.parametrize(("pattern", "want", "invalid"), STIX_AND)
def test_stix_and_of_one_objects_properties(pattern, want, invalid):
    got = rows(bundle(pattern), "b.json")
    if invalid:
        assert len(got) == 1 and got[0].invalid and "different objects" in got[0].invalid
        return
    assert [(r.fields[FIELD_VALUE], r.fields[FIELD_TYPE]) for r in got] == want
    assert all(r.note for r in got)
    if len(want) > 1:
        assert "each hash imported" in (got[0].note or "")


# ------------------------------------------------------------------ MISP booleans

MISP_HEADER = b"uuid,event_id,category,type,value,comment,to_ids,date\r\n"


@pytest.mark.parametrize(
    ("to_ids", "skip"),
    [
        (b"", "MISP to_ids not set (an empty to_ids cell is false)"),  # empty: false (issue)
        (b"0", "MISP to_ids is false"),
        (b"False", "MISP to_ids is false"),
        (b"1", None),
        (b"True", None),
    ],
)
def test_misp_csv_to_ids(to_ids, skip):
    data = MISP_HEADER + b"u1,1,Network activity,domain,evil.example.com,c," + to_ids + b",2026-01-01\r\n"
    (row,) = rows(data, "misp.csv")
    assert row.skip == skip


# ------------------------------------------------------------------ domains must be real (Public Suffix List)

from shared.checks.normalise import normalise  # noqa: E402
from shared.checks.rules import first_problem  # noqa: E402

PSL_CASES = [
    # (value, type hint, code or None)  # why
    ("igfxtray.exe", None, "domain-tld"),  # a file name, not a domain
    ("config.php", "DomainName", "domain-tld"),  # typed as a domain by the feed: still no TLD
    ("http://config.php/x", "Url", "domain-tld"),  # a URL's host too
    ("host.local", None, "domain-tld"),  # mDNS, not on the list
    ("printer.lan", "domain", "domain-tld"),
    ("x.example", None, "domain-tld"),  # RFC 2606 reserved names are not on the list either
    ("co.uk", None, "domain-public-suffix"),  # a bare suffix covers every domain under it
    ("github.io", "DomainName", "domain-public-suffix"),  # a private suffix, bare
    ("https://github.io/x", "Url", "domain-public-suffix"),
    ("evil.github.io", None, None),  # a name under a private suffix is valid
    ("a.b.compute.amazonaws.com", None, None),  # under a wildcard rule (*.compute.amazonaws.com)
    ("b.compute.amazonaws.com", None, "domain-public-suffix"),  # the wildcard rule itself
    ("evil.co.uk", None, None),
    ("bücher.example.de", None, None),  # IDN: punycode under .de
    ("example.xn--p1ai", None, None),  # a punycode TLD (.рф)
    ("xn--caf-dma.com", None, None),
    ("evil.zip", None, None),  # .zip is a real TLD
    ("Evil.COM.", None, None),  # case and the trailing dot do not matter
]


@pytest.mark.parametrize(("value", "hint", "code"), PSL_CASES)
def test_domains_and_url_hosts_must_end_in_a_public_suffix(value, hint, code):
    c = normalise(value, hint)
    assert not hasattr(c, "code"), c
    problem = first_problem(c.type, c.value)
    assert (problem.code if problem else None) == code, problem
    if code == "domain-tld":
        assert "is no top-level domain" in problem.message
    if code == "domain-public-suffix":
        assert "covers every domain under it" in problem.message


def test_the_suffix_list_is_read_without_opening_a_socket():
    import subprocess
    import sys

    code = (
        "import socket\n"
        "def refuse(*a, **k): raise AssertionError('a socket was opened')\n"
        "socket.socket = refuse; socket.create_connection = refuse\n"
        "from shared.checks.suffixes import suffix_problem\n"
        "assert suffix_problem('evil.example.com') is None\n"
        "assert suffix_problem('igfxtray.exe')[0] == 'domain-tld'\n"
        "import sys; assert 'publicsuffixlist' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_the_suffix_list_is_loaded_only_when_a_host_is_checked():
    import subprocess
    import sys

    code = (
        "import sys, io\n"
        "from shared.pipeline.process import process_stream\n"
        "from shared.readers import read\n"
        "from shared.checks.validate import validate\n"
        "from shared.core.settings import Settings\n"
        "list(validate(read(io.BytesIO(b'a' * 64 + b'\\n'), 'a.txt'), Settings(), source='s'))\n"
        "assert 'publicsuffixlist' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------ ignored lines are visible


def test_the_json_report_lists_ignored_lines_and_validate_prints_a_few(tmp_path):
    text = b"Indicators from the campaign below.\nevil.example.com\nThe actor also used a second host.\n"
    _, doc = run(text, "a.txt")
    assert [(i["line"], i["text"]) for i in doc["ignored"]] == [
        (1, "Indicators from the campaign below."),
        (3, "The actor also used a second host."),
    ]
    from shared.app.cli import main

    path = tmp_path / "a.txt"
    path.write_bytes(text)
    printed: list[str] = []
    assert main(["validate", str(path), "--report-dir", str(tmp_path)], printer=printed.append) == 0
    out = "\n".join(printed)
    assert "first ignored lines" in out and "line 1: 'Indicators from the campaign below.'" in out


# ------------------------------------------------------------------ CSV value columns by name, then by content


def csv_rows(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


IPS = [f"45.12.{i}.5" for i in range(1, 6)]
HOSTS = [f"evil{i}.example.com" for i in range(1, 6)]

CSV_CASES = [
    # (name, data, expected values, column names taken, rule fragment)  # why
    (
        "abuse.ch dst_ip",
        csv_rows("first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware",
                 *(f"2021-01-01 00:00:00,{ip},443,online,2021-01-02,Dridex" for ip in IPS)),
        IPS, ["dst_ip"], "named",
    ),  # the value column's name is now an alias
    (
        "Hash (SHA256)",
        csv_rows("Date,Hash (SHA256),Family", *(f"2021-01-01,{c * 64},x" for c in "abcde")),
        [c * 64 for c in "abcde"], ["Hash (SHA256)"], "named",
    ),
    (
        "fqdn and src_ip",
        csv_rows("when,src_ip,fqdn", *(f"2021,{ip},{h}" for ip, h in zip(IPS, HOSTS, strict=True))),
        [v for pair in zip(IPS, HOSTS, strict=True) for v in pair], ["src_ip", "fqdn"], "named",
    ),  # a second value column when its name is an alias
    (
        "names nobody listed",
        csv_rows("seen,thing,score", *(f"2021,{h},5" for h in HOSTS)),
        HOSTS, ["thing"], "chosen by content",
    ),
    (
        "urlhaus-style with a link column, names unknown",
        csv_rows("id,when,target,page",
                 *(f"{i},2021,http://{h}/x,https://urlhaus.abuse.ch/url/{i}/" for i, h in enumerate(HOSTS))),
        [f"http://{h}/x" for h in HOSTS], ["target"], "chosen by content",
    ),  # links on a threat-intel site's own host are never values
    (
        "urlhaus export, named",
        csv_rows("id,dateadded,url,url_status,threat,urlhaus_link",
                 *(f"{i},2021,http://{h}/x,online,malware,https://urlhaus.abuse.ch/url/{i}/"
                   for i, h in enumerate(HOSTS))),
        [f"http://{h}/x" for h in HOSTS], ["url"], "named",
    ),
    (
        "a column of links all on one host",
        csv_rows("post,entry", *(f"https://blog.example.org/p{i},{h}" for i, h in enumerate(HOSTS))),
        HOSTS, ["entry"], "chosen by content",
    ),
    (
        "md5,sha1,sha256 of one object under other names",
        csv_rows("h1,h2,h3,name", *(f"{c * 32},{c * 40},{c * 64},f.exe" for c in "abc")),
        [v for c in "abc" for v in (c * 32, c * 40, c * 64)], ["h1", "h2", "h3"], "chosen by content",
    ),
    (
        "a named column always wins",
        csv_rows("ioc,other", *(f"{h},{ip}" for h, ip in zip(HOSTS, IPS, strict=True))),
        HOSTS, ["ioc"], "named",
    ),
    (
        "references named so, among typed columns",
        csv_rows("sha256,url", *(f"{c * 64},https://www.virustotal.com/gui/file/{c * 64}" for c in "abc")),
        [c * 64 for c in "abc"], ["sha256"], "named",
    ),  # a typed url column of virustotal links is not mined
]  # fmt: skip


@pytest.mark.parametrize(("case", "data", "values", "columns", "rule"), CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_csv_value_column(case, data, values, columns, rule):
    result, doc = run(data, "feed.csv")
    assert [e["indicatorValue"] for e in doc["indicators"]] == values
    assert result.status == "completed", doc["errors"]
    taken = doc["source"]["valueColumns"]
    assert [t["column"] for t in taken] == columns
    assert all(rule in t["rule"] for t in taken)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (csv_rows("alpha,beta", "1,2", "3,4"), "a header with columns alpha, beta; no column holds indicators"),
        (csv_rows("value,type"), "a header with columns value, type; no rows below it"),
        (csv_rows("post,note", *(f"https://blog.example.org/p{i},x" for i in range(5))), "no column holds indicators"),
    ],
)
def test_no_silent_zero_for_a_csv(data, message):
    result, doc = run(data, "feed.csv")
    assert result.status == "failed" and result.summary.total == 0
    assert message in doc["errors"][0]["message"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_ ]{0,14}", fullmatch=True).filter(lambda n: not n.strip().startswith("#")),
    st.lists(st.sampled_from(["ip", "host", "url", "sha256", "md5"]), min_size=1, max_size=1).map(lambda x: x[0]),
    st.integers(5, 40),
    st.integers(0, 2),
)
def test_any_header_name_over_a_column_of_valid_indicators_reads_every_one(name, family, n, position):
    """Property (issue): a CSV with a header and one column of valid indicators under a random name."""
    make = {
        "ip": lambda i: f"45.{i // 250}.{i % 250}.7",
        "host": lambda i: f"h{i}.evil-example.com",
        "url": lambda i: f"http://h{i}.evil-example.com/p",
        "sha256": lambda i: f"{i:064x}",
        "md5": lambda i: f"{i:032x}",
    }[family]
    values = [make(i) for i in range(1, n + 1)]
    header = ["first seen", "score"]
    header.insert(position, name.strip() or "x")
    if len({h.lower() for h in header}) < 3:
        return
    lines = [",".join(header)]
    for i, v in enumerate(values):
        cells = ["2021-01-01", str(i)]
        cells.insert(position, v)
        lines.append(",".join(cells))
    _, doc = run(csv_rows(*lines), "feed.csv")
    assert [e["indicatorValue"] for e in doc["indicators"]] == values, (header, doc["errors"])


# ------------------------------------------------------------------ near-misses are entries, not prose

NEAR_MISSES = [
    # (text, expected (value, code) entries, ignored lines)  # why
    ("a" * 50 + "\n", [("a" * 50, "hash-length")], 0),  # hex of hash-like length that fits no hash
    ("- " + "b" * 63 + "\n", [("b" * 63, "hash-length")], 0),  # a list item
    ("| host | " + "c" * 31 + " |\n", [("c" * 31, "hash-length")], 0),  # a table cell
    ("```\n1.2.3.256\n```\n", [("1.2.3.256", "ip-syntax")], 2),  # fenced code, an octet above 255
    ("10.20.30\n", [("10.20.30", "ip-syntax")], 0),  # three octets
    ("evil[.]exa_mple\n", [("evil[.]exa_mple", "defang-invalid")], 0),  # defanged, refangs to nothing valid
    ("The hash was " + "d" * 50 + " in the report.\n", [], 1),  # a sentence stays prose
    ("version 1.2.3 is out\n", [], 1),
]


@pytest.mark.parametrize(("text", "want", "ignored"), NEAR_MISSES)
def test_near_misses_are_invalid_entries_sentences_stay_prose(text, want, ignored):
    result, doc = run(text.encode(), "a.md" if "|" in text or "```" in text else "a.txt")
    assert [(e["indicatorValue"], e["code"]) for e in doc["indicators"]] == want
    assert all(e["status"] == "invalid" and e["reason"] for e in doc["indicators"])
    assert result.summary.ignoredLines == ignored


def test_no_silent_zero_for_a_text_of_sentences():
    text = b"We saw traffic to evil.example.com last week.\nThe payload hash is " + b"e" * 64 + b" here.\n"
    result, doc = run(text, "notes.txt")
    assert result.status == "failed" and result.summary.total == 0
    assert "2 lines mention what looks like" in doc["errors"][0]["message"]


def test_twelve_bad_hashes_are_twelve_invalid_entries():
    result, _ = run(b"".join(b"%s\n" % (b"%02x" % i * 25)[:50] for i in range(12)), "hashes.txt")
    assert result.status == "completed_with_errors" and result.summary.invalid == 12


# ------------------------------------------------------------------ nested JSON: ECS and dotted paths

ECS_LINES = [
    # (one NDJSON line, [(value, type hint)])  # why
    ({"threat": {"indicator": {"type": "ipv4-addr", "ip": "45.12.1.5"}}}, [("45.12.1.5", "ip")]),
    ({"threat": {"indicator": {"url": {"full": "http://evil.example.com/a", "domain": "evil.example.com"}}}},
     [("http://evil.example.com/a", "url")]),  # url.full, not its domain
    ({"threat": {"indicator": {"url": "http://evil.example.com/b"}}}, [("http://evil.example.com/b", "url")]),
    ({"threat": {"indicator": {"file": {"hash": {"sha256": [SHA256, "d" * 64], "md5": MD5}}}}},
     [(SHA256, "sha256"), ("d" * 64, "sha256"), (MD5, "md5")]),  # lists and scalars
    ({"threat.indicator.ip": ["45.12.1.6", "45.12.1.7"], "threat.indicator.description": "c2"},
     [("45.12.1.6", "ip"), ("45.12.1.7", "ip")]),  # dotted keys, as flattened ECS is written
    ({"threatintel": {"indicator": {"domain": "evil2.example.com"}}}, [("evil2.example.com", "domain")]),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "want"), ECS_LINES)
def test_ecs_threat_indicators(doc, want):
    got = rows(json.dumps(doc).encode() + b"\n" + json.dumps({"indicator": "x.example.com"}).encode(), "a.ndjson")
    assert [(r.fields[FIELD_VALUE], r.fields.get(FIELD_TYPE)) for r in got[:-1]] == want
    assert all("ECS threat.indicator" in (r.note or "") for r in got[:-1])


def test_ecs_in_a_json_array_and_its_outcomes():
    docs = [{"threat": {"indicator": {"ip": "45.12.1.5", "description": "seen"}}}, {"threat": {"indicator": {}}}]
    _, report = run(json.dumps(docs).encode(), "ecs.json")
    first, second = report["indicators"]
    assert first["indicatorValue"] == "45.12.1.5" and first["status"] == "skipped"
    assert second["status"] == "invalid" and "holds no ip" in second["reason"]


@pytest.mark.parametrize(
    ("doc", "value"),
    [
        ({"ioc": {"value": "evil.example.com", "type": "domain"}}, "evil.example.com"),
        ({"data": {"indicator": {"value": "45.12.1.5"}}}, "45.12.1.5"),  # three levels
        ({"a": {"b": {"c": {"d": {"ioc": "deep.example.com"}}}}}, ""),  # past the bounded depth: no value
    ],
)
def test_other_nested_objects_are_flattened_to_dotted_paths(doc, value):
    (row,) = rows(json.dumps([doc]).encode(), "a.json")
    assert row.fields[FIELD_VALUE] == value


# ------------------------------------------------------------------ reasons name the column or key


@pytest.mark.parametrize(
    ("data", "name", "where"),
    [
        (csv_rows("first_seen,dst_ip", "2021,300.1.1.1", "2021,45.12.1.5"), "a.csv", "(column 'dst_ip')"),
        (csv_rows("seen,thing", "2021,igfxtray.exe", *(f"2021,{h}" for h in HOSTS)), "a.csv", "(column 'thing')"),
        (csv_rows("md5,sha1", f"{'a' * 31},{SHA1}"), "a.csv", "(column 'md5')"),
        (json.dumps([{"ioc": "printer.lan"}, {"ioc": "evil.example.com"}]).encode(), "a.json", "(key 'ioc')"),
    ],
)
def test_every_reason_names_the_column_or_key(data, name, where):
    _, doc = run(data, name)
    bad = [e for e in doc["indicators"] if e["status"] == "invalid"]
    assert bad and all(e["reason"].endswith(where) for e in bad), bad


def test_a_field_problem_names_no_value_column():
    _, doc = run(csv_rows("IndicatorValue,ExpirationTime", "evil.example.com,1/1/2001"), "a.csv")
    (entry,) = doc["indicators"]
    assert entry["status"] == "invalid" and "column 'IndicatorValue'" not in entry["reason"]
