"""The whole core pipeline on the team kit's real IOC files: read → validate → report, exact outcomes.

Each file runs once per module through `process_stream` on the validation-only path (no submitter),
with its JSON and CSV reports written to a temporary directory; every test reads those reports.
Entries that would be submitted show as `skipped` with the reason "validation only".

The counts in EXPECTED were checked against the files themselves, not only against the code: by
independent counts over the raw files (hash/C2/maltrail/Talos lists, MISP attributes, the
NOBELIUM columns) and by reading the tricky lines (SOURCES.md lists them). `NOW` is fixed so that
expiry decisions (the MSTIC dates) do not move with the calendar.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.core.model import SUMMARY_KEYS
from shared.core.options import NO_OPTIONS, InputOptions
from shared.core.settings import Settings
from shared.pipeline.process import RunResult, process_stream
from shared.pipeline.reports import ReportWriter

pytestmark = pytest.mark.corpus

NOW = datetime(2026, 11, 28, tzinfo=UTC)
VALIDATION_ONLY = "validation only"

TALOS_RMM = "Cisco-Talos__IOCs/2025/05/iocs_spam-campaign-abuses-rmm-tools.txt"
C2_IOCS = "Neo23x0__signature-base/iocs/c2-iocs.txt"
HASH_IOCS = "Neo23x0__signature-base/iocs/hash-iocs.txt"
UNIT42_BRAZIL = "PaloAltoNetworks__Unit42-timely-threat-intel/2022-04-19-IOCS-for-infection-from-Brazil-malspam.txt"
UNIT42_INGRESS = "PaloAltoNetworks__Unit42-timely-threat-intel/2025-04-17-IngressNightmare-Scans-and-Testing.md"
THREATFOX = "ashiroodi__threatfeed/threatfox.json"
KEYBOY_CSV = "citizenlab__malware-indicators/201611_KeyBoy/iocs.csv"
PEM = "eset__malware-ioc/dnsbirthday/358bb04f6a0bf8ce88d23b2e620ac01b28d307ab80286f6ee2dcc484a6b1a5d0.pem"
PYPI = "eset__malware-ioc/pypi_backdoor/malicious_pypi_packages.misp-event.json"
STANTINKO = "eset__malware-ioc/stantinko/stantinko.misp-event.json"
CROWDSTRIKE = "jkerai1__SoftwareCertificates/AV/Crowdstrike.cer"
JAY = "jkerai1__SoftwareCertificates/Bulk-IOC-CSVs/Jay -MDE IOCs.csv"
STREAMING = "jkerai1__SoftwareCertificates/Bulk-IOC-CSVs/streaming-sites.csv"
NOBELIUM = "microsoft__mstic/Indicators/May21-NOBELIUM/May21NOBELIUMIoCs.csv"
MSTIC_RAPID = "microsoft__mstic/RapidReleaseTI/Indicators.csv"
APT1 = "oasis-open__cti-stix2-json-schemas/examples/threat-reports/apt1.json"
SOPHOS = "sophoslabs__IoCs/2404 impersonation campaign.csv"
LAZARUS = "stamparm__maltrail/trails/static/malware/apt_lazarus.txt"
ANUBIS = "stamparm__maltrail/trails/static/malware/android_anubis.txt"
UNSUPPORTED = (
    "citizenlab__malware-indicators/201611_KeyBoy/stix.xml",
    "citizenlab__malware-indicators/201611_KeyBoy/openioc.ioc",
    "eset__malware-ioc/windigo/windigo.ioc",
)

Counts = dict[str, int]
# path -> (format, report status, non-zero summary counters, {indicatorType ("-" when none): {status: n}},
#          file-level errors as (message, line, column))
EXPECTED: dict[str, tuple[str, str, Counts, dict[str, Counts], list[tuple[str, int | None, int | None]]]] = {
    "BlazingVermilion__urlhaus_threat_intel_pipeline/data/sample/urlhaus_recent_sample.csv": (
        "csv",
        "completed",
        {"total": 150, "skipped": 150},
        {"Url": {"skipped": 150}},
        [],
    ),
    # 27 IP lines (2 repeat an IP with another |port), 44 URLs + 1 `ip/path` without scheme, 1 domain.
    "Cisco-Talos__IOCs/2022/05/mustang-panda.txt": (
        "text",
        "completed",
        {"total": 201, "duplicate": 2, "skipped": 199},
        {
            "DomainName": {"skipped": 1},
            "FileSha256": {"skipped": 128},
            "IpAddress": {"duplicate": 2, "skipped": 25},
            "Url": {"skipped": 45},
        },
        [],
    ),
    # 189 indicator objects; attack-pattern prose and the observed-data blog link give nothing.
    "Cisco-Talos__IOCs/2023/03/YoroTrooper.json": (
        "stix2",
        "completed",
        {"total": 189, "skipped": 189},
        {
            "DomainName": {"skipped": 53},
            "FileSha256": {"skipped": 62},
            "IpAddress": {"skipped": 19},
            "Url": {"skipped": 55},
        },
        [],
    ),
    # 357 Dropbox URLs + 4 others, one host name embedding an IP, 25 hashes.
    TALOS_RMM: (
        "text",
        "completed",
        {"total": 387, "skipped": 387},
        {"DomainName": {"skipped": 1}, "FileSha256": {"skipped": 25}, "Url": {"skipped": 361}},
        [],
    ),
    C2_IOCS: (
        "text",
        "completed",
        {"total": 1844, "duplicate": 71, "skipped": 1773},
        {"DomainName": {"duplicate": 54, "skipped": 1655}, "IpAddress": {"duplicate": 17, "skipped": 118}},
        [],
    ),
    HASH_IOCS: (
        "text",
        "completed",
        {"total": 3224, "duplicate": 171, "skipped": 3053},
        {
            "FileMd5": {"duplicate": 53, "skipped": 986},
            "FileSha1": {"duplicate": 33, "skipped": 893},
            "FileSha256": {"duplicate": 85, "skipped": 1174},
        },
        [],
    ),
    # Only the labelled lines (SHA256 hash: / File location:) are indicator lines; the email headers
    # and traffic lines are prose (CONTRACT.md "Plain text": never mined).
    UNIT42_BRAZIL: (
        "text",
        "completed",
        {"total": 4, "skipped": 4, "ignoredLines": 33},
        {"FileSha256": {"skipped": 3}, "Url": {"skipped": 1}},
        [],
    ),
    # 2,365 defanged IPv4 + 4 irregularly defanged IPv6, all distinct.
    UNIT42_INGRESS: (
        "markdown",
        "completed",
        {"total": 2369, "skipped": 2369, "ignoredLines": 165},
        {"IpAddress": {"skipped": 2369}},
        [],
    ),
    # 80.190.77.86 appears with two ports; the three hashes are truncated.
    THREATFOX: (
        "threatfox-json",
        "completed_with_errors",
        {"total": 40, "duplicate": 1, "invalid": 3, "skipped": 36},
        {
            "DomainName": {"skipped": 25},
            "FileSha256": {"invalid": 3},
            "IpAddress": {"duplicate": 1, "skipped": 6},
            "Url": {"skipped": 5},
        },
        [],
    ),
    KEYBOY_CSV: (
        "misp-csv",
        "completed_with_errors",
        {"total": 33, "invalid": 10, "skipped": 23},
        {
            "DomainName": {"skipped": 4},
            "FileMd5": {"skipped": 7},
            "FileSha256": {"skipped": 4},
            "IpAddress": {"skipped": 8},
            "regkey": {"invalid": 1},
            "yara": {"invalid": 9},
        },
        [],
    ),
    UNSUPPORTED[1]: ("unsupported", "failed", {}, {}, [("unsupported format: OpenIOC XML", None, None)]),
    UNSUPPORTED[0]: ("unsupported", "failed", {}, {}, [("unsupported format: STIX 1.x XML", None, None)]),
    # No action in a certificate file and none in the settings: invalid (see the certificate tests).
    PEM: (
        "certificate",
        "completed_with_errors",
        {"total": 1, "invalid": 1},
        {"CertificateThumbprint": {"invalid": 1}},
        [],
    ),
    # The trailing comma (line 37373) is tolerated with a warning (was: a fatal file-level error; issue "Nothing
    # silently dropped"). Still completed_with_errors: 28 MISP `text` attributes are invalid.
    PYPI: (
        "misp-json",
        "completed_with_errors",
        {"total": 987, "invalid": 28, "skipped": 959},
        {
            "DomainName": {"skipped": 1},
            "FileMd5": {"skipped": 119},
            "FileSha1": {"skipped": 119},
            "FileSha256": {"skipped": 119},
            "Url": {"skipped": 112},
            "datetime": {"skipped": 1},
            "domain": {"skipped": 1},
            "filename": {"skipped": 119},
            "port": {"skipped": 112},
            "text": {"skipped": 256, "invalid": 28},
        },
        [("trailing comma before a closing bracket, tolerated: line 37373 (strict JSON has none)", 37373, None)],
    ),
    "eset__malware-ioc/stantinko/cryptominer/samples.sha256": (
        "text",
        "completed",
        {"total": 1053, "skipped": 1053},
        {"FileSha256": {"skipped": 1053}},
        [],
    ),
    # 263 attributes; the 77 `domain|ip` give two entries each (340). 213 distinct indicators among the
    # 294 usable entries -> 81 duplicates. pdb/mutex carry to_ids false (skipped), regkey is unsupported.
    STANTINKO: (
        "misp-json",
        "completed_with_errors",
        {"total": 340, "duplicate": 81, "invalid": 13, "skipped": 246},
        {
            "DomainName": {"duplicate": 43, "skipped": 44},
            "FileSha1": {"skipped": 126},
            "IpAddress": {"duplicate": 38, "skipped": 43},
            "mutex": {"skipped": 11},
            "pdb": {"skipped": 22},
            "regkey": {"invalid": 13},
        },
        [],
    ),
    UNSUPPORTED[2]: ("unsupported", "failed", {}, {}, [("unsupported format: OpenIOC XML", None, None)]),
    "jkerai1__DNSTwistToMDEIOC/Examples/DNSTwist google.com07-22-24.csv": (
        "defender-csv",
        "completed",
        {"total": 3611, "skipped": 3611},
        {"DomainName": {"skipped": 3611}},
        [],
    ),
    CROWDSTRIKE: (
        "certificate",
        "completed_with_errors",
        {"total": 1, "invalid": 1},
        {"CertificateThumbprint": {"invalid": 1}},
        [],
    ),
    # 311 DomainName rows, one of them a URL (-> Url); 11 domains listed twice. Line 252 `stmservice.crm` ends in
    # no top-level domain ('.crm' is not on the Public Suffix List): invalid since domains must be real (issue
    # "Nothing silently dropped").
    JAY: (
        "defender-csv",
        "completed_with_errors",
        {"total": 432, "duplicate": 11, "skipped": 420, "invalid": 1},
        {
            "DomainName": {"duplicate": 11, "skipped": 298, "invalid": 1},
            "FileSha256": {"skipped": 119},
            "IpAddress": {"skipped": 2},
            "Url": {"skipped": 1},
        },
        [],
    ),
    # 7 Url rows + 2 DomainName rows with a path; Britbox.com / britbox.com. Line 74 `yandex.com.trt` (a typo
    # of `.tr`) ends in no top-level domain: invalid since domains must be real (issue "Nothing silently dropped").
    STREAMING: (
        "defender-csv",
        "completed_with_errors",
        {"total": 140, "duplicate": 1, "skipped": 138, "invalid": 1},
        {"DomainName": {"duplicate": 1, "skipped": 129, "invalid": 1}, "Url": {"skipped": 9}},
        [],
    ),
    "mandiant__red_team_tool_countermeasures/all-hashes.csv": (
        "csv",
        "completed",
        {"total": 300, "skipped": 300},
        {"FileMd5": {"skipped": 100}, "FileSha1": {"skipped": 100}, "FileSha256": {"skipped": 100}},
        [],
    ),
    # IoC column (127) + SHA1 (69) + MD5 (17) + C2Domain (35, two cells of 4 `;`-separated hosts).
    # Invalid: `holescontracting.com (compromised WordPress site)` and the two URLs of line 55, which
    # hold placeholders (`?<unique_to_target>`, `/d/<target_email_address>`).
    NOBELIUM: (
        "csv",
        "completed_with_errors",
        {"total": 248, "duplicate": 50, "invalid": 3, "skipped": 195},
        {
            "DomainName": {"duplicate": 33, "invalid": 1, "skipped": 40},
            "FileMd5": {"skipped": 17},
            "FileSha1": {"duplicate": 8, "skipped": 61},
            "FileSha256": {"duplicate": 8, "skipped": 70},
            "IpAddress": {"duplicate": 1, "skipped": 7},
            "Url": {"invalid": 2},
        },
        [],
    ),
    # Every expiry (latest 12/21/2025) is before NOW; the 8 rows of foreign types are unsupported.
    MSTIC_RAPID: (
        "csv",
        "completed_with_errors",
        {"total": 237, "invalid": 237},
        {
            "DomainName": {"invalid": 168},
            "FileSha256": {"invalid": 57},
            "GUID": {"invalid": 2},
            "IpAddress": {"invalid": 3},
            "Url": {"invalid": 1},
            "commandline": {"invalid": 2},
            "filepath": {"invalid": 4},
        },
        [],
    ),
    # 4 CIDR ranges and 2 issuer/serial certificate patterns cannot be expressed.
    APT1: (
        "stix2",
        "completed_with_errors",
        {"total": 12, "invalid": 6, "skipped": 6},
        {"-": {"invalid": 6}, "DomainName": {"skipped": 3}, "FileMd5": {"skipped": 3}},
        [],
    ),
    # 40 IP mentions in OR patterns, 18 distinct; `domain autuo.xicp.net` and two file:name patterns invalid.
    "oasis-open__cti-stix2-json-schemas/examples/threat-reports/poisonivy.json": (
        "stix2",
        "completed_with_errors",
        {"total": 67, "duplicate": 22, "invalid": 3, "skipped": 42},
        {
            "-": {"invalid": 2},
            "DomainName": {"invalid": 1, "skipped": 24},
            "IpAddress": {"duplicate": 22, "skipped": 18},
        },
        [],
    ),
    # 48 IPs, 583 table rows x 3 hashes, 9 email addresses (not a Defender type).
    "prodaft__malware-ioc/ViceSociety/README.md": (
        "markdown",
        "completed_with_errors",
        {"total": 1806, "invalid": 9, "skipped": 1797, "ignoredLines": 21},
        {
            "-": {"invalid": 9},
            "FileMd5": {"skipped": 583},
            "FileSha1": {"skipped": 583},
            "FileSha256": {"skipped": 583},
            "IpAddress": {"skipped": 48},
        },
        [],
    ),
    # `url` rows holding bare domains become DomainName; the 20 WebDAV UNC `url_path` values are invalid;
    # the `Description,<blog url>` pseudo-record is an ignored line.
    SOPHOS: (
        "csv",
        "completed_with_errors",
        {"total": 473, "invalid": 20, "skipped": 453, "ignoredLines": 1},
        {
            "DomainName": {"skipped": 25},
            "FileSha256": {"skipped": 422},
            "IpAddress": {"skipped": 5},
            "Url": {"skipped": 1},
            "url_path": {"invalid": 20},
        },
        [],
    ),
    # 697 path-only trails (`/Anubis_2.5.rar`) are not indicators.
    ANUBIS: (
        "text",
        "completed_with_errors",
        {"total": 2702, "duplicate": 86, "invalid": 697, "skipped": 1919},
        {
            "-": {"invalid": 697},
            "DomainName": {"duplicate": 85, "skipped": 1823},
            "IpAddress": {"skipped": 9},
            "Url": {"duplicate": 1, "skipped": 87},
        },
        [],
    ),
    # 875 ip:port trails over 574 distinct IPs; 696 scheme-less URLs; 99 path-only trails.
    LAZARUS: (
        "text",
        "completed_with_errors",
        {"total": 5573, "duplicate": 417, "invalid": 99, "skipped": 5057},
        {
            "-": {"invalid": 99},
            "DomainName": {"duplicate": 50, "skipped": 3853},
            "IpAddress": {"duplicate": 301, "skipped": 574},
            "Url": {"duplicate": 66, "skipped": 630},
        },
        [],
    ),
    "volexity__threat-intel/2021/2021-12-06 - XEGroup/indicators/indicators.csv": (
        "csv",
        "completed",
        {"total": 248, "skipped": 248},
        {
            "DomainName": {"skipped": 84},
            "FileMd5": {"skipped": 52},
            "FileSha1": {"skipped": 52},
            "FileSha256": {"skipped": 52},
            "IpAddress": {"skipped": 8},
        },
        [],
    ),
}


# ------------------------------------------------------------------------------------------ running


@dataclass(frozen=True)
class Run:
    result: RunResult
    report: dict[str, Any]
    csv_rows: list[dict[str, str]]

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.report["indicators"]  # type: ignore[no-any-return]

    def at(self, line: int) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["line"] == line]


def _process(
    data: bytes | Path, name: str, out: Path, settings: Settings, now: datetime, options: InputOptions = NO_OPTIONS
) -> Run:
    out.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = out / f"{name}.report.json", out / f"{name}.report.csv"
    with (
        data.open("rb") if isinstance(data, Path) else io.BytesIO(data) as stream,
        json_path.open("w", encoding="utf-8", newline="\n") as jf,
        csv_path.open("w", encoding="utf-8", newline="") as cf,
    ):
        writer = ReportWriter(jf, cf, source={"container": None, "name": name}, started_at=now, dry_run=False)
        result = process_stream(
            stream, name, settings=settings, options=options, submitter=None, reports=writer, source=name, now=now
        )
    report = json.loads(json_path.read_text(encoding="utf-8"))
    with csv_path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return Run(result, report, rows)


class Runs:
    """Each (file, overrides, now) is processed once per module; reports land in a temp directory."""

    def __init__(self, corpus: Path, out: Path) -> None:
        self.corpus = corpus
        self.out = out
        self._cache: dict[tuple[str, tuple[tuple[str, str], ...], datetime], Run] = {}

    def __call__(self, rel: str, overrides: Mapping[str, str] | None = None, now: datetime = NOW) -> Run:
        key = (rel, tuple(sorted((overrides or {}).items())), now)
        if key not in self._cache:
            options = InputOptions.parse(overrides or {})
            out = self.out / f"run{len(self._cache)}"
            self._cache[key] = _process(self.corpus / rel, Path(rel).name, out, Settings(), now, options)
        return self._cache[key]

    def of_bytes(self, data: bytes, name: str) -> Run:
        return _process(data, name, self.out / f"bytes{len(self._cache)}-{id(data)}", Settings(), NOW)


@pytest.fixture(scope="module")
def runs(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(corpus_dir, tmp_path_factory.mktemp("corpus-reports"))


def _raw_lines(corpus_dir: Path, rel: str) -> list[bytes]:
    """Physical lines (1-based index = position + 1), as the readers number them."""
    return (corpus_dir / rel).read_bytes().split(b"\n")


def _comment_lines(corpus_dir: Path, rel: str) -> set[int]:
    return {i for i, raw in enumerate(_raw_lines(corpus_dir, rel), 1) if raw.strip().startswith(b"#")}


# ------------------------------------------------------------------------------------------ the table


def test_every_corpus_file_is_pinned(corpus_dir: Path):
    files = {str(p.relative_to(corpus_dir)) for p in corpus_dir.rglob("*") if p.is_file() and p.name != "SOURCES.md"}
    assert files == set(EXPECTED)
    assert len(files) == 31


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_pipeline_outcomes(runs: Runs, rel: str):
    fmt, status, summary, by_type, errors = EXPECTED[rel]
    run = runs(rel)
    got_types: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for e in run.entries:
        got_types[e["indicatorType"] or "-"][e["status"]] += 1
    assert run.report["source"]["format"] == run.result.format == fmt
    assert run.report["status"] == run.result.status == status
    assert run.report["summary"] == {k: summary.get(k, 0) for k in SUMMARY_KEYS}
    assert {t: dict(c) for t, c in got_types.items()} == by_type
    assert [(e["message"], e.get("line"), e.get("column")) for e in run.report["errors"]] == errors


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_report_has_exactly_one_entry_per_indicator(runs: Runs, rel: str):
    """Sum of statuses == total == entries in the JSON and CSV reports; every entry has a line >= 1."""
    run = runs(rel)
    summary = run.report["summary"]
    statuses = ("submitted", "unchanged", "duplicate", "failed", "invalid", "skipped")
    assert sum(summary[s] for s in statuses) == summary["total"] == len(run.entries) == len(run.csv_rows)
    assert collections.Counter(e["status"] for e in run.entries) == {s: summary[s] for s in statuses if summary[s]}
    assert all(isinstance(e["line"], int) and e["line"] >= 1 for e in run.entries)
    assert [int(r["line"]) for r in run.csv_rows] == [e["line"] for e in run.entries]
    assert summary["apiCalls"] == summary["retries"] == 0
    assert [e["line"] for e in run.entries] == sorted(e["line"] for e in run.entries)  # input order
    for e in run.entries:
        if e["status"] == "skipped":
            # Ready to submit ("validation only"), or held back by the publisher (MISP to_ids false).
            assert e["reason"].endswith(VALIDATION_ONLY) or e["reason"] == "MISP to_ids is false", e
        if e["status"] in ("invalid", "duplicate"):
            assert e["reason"], e


# ------------------------------------------------------------------------------------------ traps


def test_hash_list_comment_urls_are_not_indicators(runs: Runs, corpus_dir: Path):
    """Trap: Neo23x0 hash-iocs comments hold (defanged) reference URLs; only the hashes are indicators."""
    run = runs(HASH_IOCS)
    assert {e["indicatorType"] for e in run.entries} == {"FileMd5", "FileSha1", "FileSha256"}
    assert not {e["line"] for e in run.entries} & _comment_lines(corpus_dir, HASH_IOCS)
    text = (corpus_dir / HASH_IOCS).read_text("utf-8", "replace")
    assert "hxxp" in text and "[.]" in text  # the premise: defanged links are there to be found


def test_c2_list_goo_gl_reference_links_are_not_indicators(runs: Runs, corpus_dir: Path):
    """Trap: c2-iocs `# report + goo.gl URL` headers never become indicators; `ip;score` gives the IP."""
    run = runs(C2_IOCS)
    assert (corpus_dir / C2_IOCS).read_text().count("goo.gl") >= 3
    assert not [e for e in run.entries if "goo.gl" in e["indicatorValue"]]
    assert not {e["line"] for e in run.entries} & _comment_lines(corpus_dir, C2_IOCS)
    scored = [e for e in run.entries if e["indicatorValue"] == "176.123.5.126"]  # `176.123.5.126;65`
    assert [(e["indicatorType"], e["status"]) for e in scored] == [("IpAddress", "skipped")]


@pytest.mark.parametrize("rel", [LAZARUS, ANUBIS])
def test_maltrail_reference_lines_are_not_indicators(runs: Runs, corpus_dir: Path, rel: str):
    """Trap: maltrail `# Reference: <url>` comments (some with hashes) give no Url, DomainName or hash."""
    run = runs(rel)
    refs = set()
    for raw in _raw_lines(corpus_dir, rel):
        s = raw.decode("utf-8", "replace").strip()
        if s.startswith("# Reference:"):
            refs.update(re.findall(r"https?://\S+", s))
    assert len(refs) > 50
    ref_hosts = {re.sub(r"^https?://([^/:]+).*", r"\1", u).lower() for u in refs}
    values = {e["indicatorValue"].lower() for e in run.entries}
    assert not values & refs
    assert not values & ref_hosts
    assert not {e["line"] for e in run.entries} & _comment_lines(corpus_dir, rel)
    assert not [e for e in run.entries if e["indicatorType"] and e["indicatorType"].startswith("File")]


def test_truncated_threatfox_hashes_are_invalid(runs: Runs):
    """Trap: ThreatFox hashes shortened to `32f85cbf0fcd...d4c2` must be rejected, not imported."""
    invalid = [e for e in runs(THREATFOX).entries if e["status"] == "invalid"]
    assert [e["indicatorValue"] for e in invalid] == [
        "32f85cbf0fcd...d4c2",
        "66299f122474...b403",
        "879c25948bc9...9f6a",
    ]
    assert all(e["indicatorType"] == "FileSha256" and "truncated" in e["reason"] for e in invalid)


def test_threatfox_partial_defanging_is_undone(runs: Runs):
    """Trap: only the last dot bracketed in domains and ip:port, every dot in URLs (path included)."""
    values = {e["indicatorValue"]: e for e in runs(THREATFOX).entries}
    assert values["atriumvillas.ch"]["indicatorType"] == "DomainName"
    assert values["41.234.45.136"]["reason"].startswith("port 8808 removed")
    assert values["http://103.98.38.217:56737/Mozi.a"]["indicatorType"] == "Url"


def test_stix_cidr_ranges_are_invalid(runs: Runs):
    """Trap: apt1's `ipv4-addr:value` /15 ranges; Defender IpAddress takes single addresses."""
    cidr = [e for e in runs(APT1).entries if "/" in e["indicatorValue"] and "CIDR" in (e["reason"] or "")]
    assert [(e["line"], e["indicatorValue"], e["status"]) for e in cidr] == [
        (185, "223.166.0.0/15", "invalid"),
        (206, "58.246.0.0/15", "invalid"),
        (227, "112.64.0.0/15", "invalid"),
        (248, "139.226.0.0/15", "invalid"),
    ]


def test_stix_x509_issuer_serial_patterns_are_invalid_with_a_reason(runs: Runs):
    """Trap: apt1's certificate patterns match issuer and serial, not a thumbprint: no CertificateThumbprint."""
    x509 = [e for e in runs(APT1).entries if "x509-certificate" in e["indicatorValue"]]
    assert [e["line"] for e in x509] == [359, 374]
    for e in x509:
        assert e["status"] == "invalid"
        assert "issuer" in e["reason"] and "serial_number" in e["reason"] and "cannot be expressed" in e["reason"]
    assert not [e for e in runs(APT1).entries if e["indicatorType"] == "CertificateThumbprint"]


def test_unit42_spoofed_sender_domain_is_not_an_indicator(runs: Runs, corpus_dir: Path):
    """Trap: prefeitura.sp.gov.br is the legitimate, spoofed sender in the email headers (prose): never blocked."""
    run = runs(UNIT42_BRAZIL)
    assert b"prefeitura@prefeitura.sp.gov.br" in _raw_lines(corpus_dir, UNIT42_BRAZIL)[16]
    assert not run.at(17)
    assert not [e for e in run.entries if "sp.gov.br" in e["indicatorValue"]]
    assert [(e["line"], e["indicatorType"]) for e in run.entries] == [
        (25, "FileSha256"),
        (27, "Url"),
        (31, "FileSha256"),
        (36, "FileSha256"),
    ]
    assert run.at(27)[0]["indicatorValue"] == "http://download.kicks-ass.org/PREFEITURAfds.zip"  # refanged


def test_unit42_markdown_reference_links_are_not_indicators(runs: Runs, corpus_dir: Path):
    """Trap: the IngressNightmare report links nvd.nist.gov, github.com and wiz.io; only scanner IPs count."""
    run = runs(UNIT42_INGRESS)
    text = (corpus_dir / UNIT42_INGRESS).read_text("utf-8")
    for host in ("nvd.nist.gov", "github.com", "wiz.io"):
        assert host in text
        assert not [e for e in run.entries if host in e["indicatorValue"]]
    assert {e["indicatorType"] for e in run.entries} == {"IpAddress"}
    # `6f4c[:]a001`, `6f4c:[e]001` and a `::` form, written with all eight groups.
    assert [e["indicatorValue"] for e in run.entries if ":" in e["indicatorValue"]] == [
        "2604:a880:400:d1:0:1:6f4c:a001",
        "2604:a880:400:d1:0:1:6f4c:b001",
        "2604:a880:400:d1:0:1:6f4c:e001",
        "2a03:b0c0:1:e0:0:0:6134:e001",
    ]


def test_talos_dropbox_urls_do_not_become_dropbox_domains(runs: Runs):
    """Trap: 357 Dropbox share links; deriving DomainName indicators from them would block Dropbox."""
    run = runs(TALOS_RMM)
    dropbox = [e for e in run.entries if e["indicatorValue"].startswith("https://www.dropbox.com/")]
    assert len(dropbox) == 357 and {e["indicatorType"] for e in dropbox} == {"Url"}
    assert [e["indicatorValue"] for e in run.entries if e["indicatorType"] == "DomainName"] == [
        "198.45.54.34.bc.googleusercontent.com"  # the one host-name line, refanged; not an IP
    ]


def test_misp_json_with_trailing_comma_is_read_with_a_warning(runs: Runs):
    """Trap: the eset pypi MISP event has `,` before `]` (line 37373): tolerated with a file-level warning
    naming the line (CONTRACT.md "Inputs" [recall]); status completed_with_errors for its invalid attributes."""
    run = runs(PYPI)
    assert run.report["status"] == "completed_with_errors"
    assert len(run.entries) == len(run.csv_rows) == run.report["summary"]["total"] == 987
    message = "trailing comma before a closing bracket, tolerated: line 37373 (strict JSON has none)"
    assert run.report["errors"] == [{"message": message, "line": 37373, "level": "warning"}]


CERT_THUMBPRINTS = {
    CROWDSTRIKE: (1, "16adfe3b79a93d4b1fa7b8e6b2c972c99bfdc849"),
    PEM: (90, "654cfafbb1d91ca6aa1de118a0cb5599740a7edb"),  # the PEM block follows an 89-line text dump
}


@pytest.mark.parametrize("rel", sorted(CERT_THUMBPRINTS))
def test_certificates_give_their_sha1_thumbprint_and_need_an_explicit_action(runs: Runs, rel: str):
    """Trap: DER `.cer` and text-then-PEM `.pem`; no default action is valid for certificates (Audit is not)."""
    line, thumb = CERT_THUMBPRINTS[rel]
    (entry,) = runs(rel).entries
    assert (entry["line"], entry["indicatorType"], entry["indicatorValue"]) == (line, "CertificateThumbprint", thumb)
    assert entry["status"] == "invalid" and entry["action"] is None
    assert "Allowed" in entry["reason"] and "BlockAndRemediate" in entry["reason"]


def test_pem_file_name_is_not_taken_as_a_thumbprint(runs: Runs):
    """Trap: the .pem is named after the SHA-256 of the public key, which is not the certificate's thumbprint."""
    stem = Path(PEM).name.removesuffix(".pem")
    entries = runs(PEM).entries
    assert len(entries) == 1 and entries[0]["indicatorValue"] != stem
    assert not [e for e in entries if stem in e["indicatorValue"] or e["indicatorValue"] in stem]


@pytest.mark.parametrize("action", ["BlockAndRemediate", "Allowed"])
@pytest.mark.parametrize("rel", sorted(CERT_THUMBPRINTS))
def test_certificates_are_valid_with_an_action_from_file_metadata(runs: Runs, rel: str, action: str):
    """Trap: with the `action` blob-metadata override the same certificate is ready to submit."""
    run = runs(rel, {"action": action})
    (entry,) = run.entries
    assert entry["indicatorValue"] == CERT_THUMBPRINTS[rel][1]
    assert (entry["status"], entry["action"], entry["reason"]) == ("skipped", action, VALIDATION_ONLY)
    assert run.report["status"] == "completed"


def test_certificates_refuse_audit_even_from_metadata(runs: Runs):
    """Trap: Audit is not valid for CertificateThumbprint (defender-api.md §1.6), also when given explicitly."""
    (entry,) = runs(CROWDSTRIKE, {"action": "Audit"}).entries
    assert entry["status"] == "invalid" and "not valid for CertificateThumbprint" in entry["reason"]


@pytest.mark.parametrize("rel", UNSUPPORTED)
def test_unsupported_formats_give_the_file_level_error(runs: Runs, rel: str):
    """Trap: STIX 1.x XML and OpenIOC (incl. the empty-Content KeyBoy export) are not mined for values."""
    run = runs(rel)
    assert run.entries == [] and run.report["status"] == "failed"
    (error,) = run.report["errors"]
    assert error["message"].startswith("unsupported format")


def test_misp_to_ids_false_is_skipped_with_that_reason(runs: Runs):
    """Trap: stantinko's pdb and mutex attributes say to_ids false: skipped, and the reason says why."""
    held = [e for e in runs(STANTINKO).entries if e["reason"] == "MISP to_ids is false"]
    assert len(held) == 33
    assert collections.Counter(e["indicatorType"] for e in held) == {"pdb": 22, "mutex": 11}
    assert {e["status"] for e in held} == {"skipped"}


@pytest.mark.parametrize(("rel", "want"), [(KEYBOY_CSV, {"yara": 9, "regkey": 1}), (STANTINKO, {"regkey": 13})])
def test_misp_yara_and_regkey_are_invalid_unsupported_types(runs: Runs, rel: str, want: dict[str, int]):
    """Trap: MISP types Defender cannot take (multi-line YARA rules, registry keys) are `invalid`."""
    bad = [e for e in runs(rel).entries if e["indicatorType"] in ("yara", "regkey")]
    assert collections.Counter(e["indicatorType"] for e in bad) == want
    for e in bad:
        assert e["status"] == "invalid" and e["reason"].startswith(f"unsupported type {e['indicatorType']}")


def test_misp_domain_ip_composites_give_both_indicators(runs: Runs):
    """Trap: stantinko's `domain|ip` holds two indicators on one line; `filename|sha1` only the hash."""
    run = runs(STANTINKO)
    by_line = collections.defaultdict(list)
    for e in run.entries:
        by_line[e["line"]].append(e["indicatorType"])
    assert sum(1 for types in by_line.values() if sorted(types) == ["DomainName", "IpAddress"]) == 77
    assert not [e for e in run.entries if e["indicatorValue"].endswith((".exe", ".dll"))]


def test_defender_csv_domain_rows_holding_urls_are_corrected_with_a_note(runs: Runs):
    """Trap: DomainName rows that hold URLs (`transfer.sh/0tUIJu/Updater.zip `, `https://host/`)."""
    (jay,) = runs(JAY).at(12)
    assert (jay["indicatorType"], jay["indicatorValue"]) == ("Url", "http://transfer.sh/0tUIJu/Updater.zip")
    assert "type corrected from DomainName to Url" in jay["reason"] and "http:// added" in jay["reason"]
    streaming = runs(STREAMING)
    for line, value in ((56, "http://aol.com/video"), (65, "http://espn.com/watch")):
        (e,) = streaming.at(line)
        assert (e["indicatorType"], e["indicatorValue"]) == ("Url", value)
        assert "type corrected from DomainName to Url" in e["reason"]
    (virgin,) = streaming.at(17)
    assert (virgin["indicatorType"], virgin["indicatorValue"]) == ("DomainName", "virgintvgo.virginmedia.com")
    assert "reduced to its host name" in virgin["reason"]
    (bbc,) = streaming.at(2)  # a Url row without a scheme, in mixed case
    assert (bbc["indicatorValue"], bbc["status"]) == ("http://bbc.co.uk/iplayer", "skipped")


def test_defender_csv_action_with_trailing_space_is_accepted(runs: Runs, corpus_dir: Path):
    """Trap: `Block ` (trailing space) in the Action column of two Jay rows."""
    raw = _raw_lines(corpus_dir, JAY)
    assert b",Block ," in raw[8] and b",Block ," in raw[9]
    for line in (9, 10):
        (e,) = runs(JAY).at(line)
        assert (e["action"], e["status"], e["reason"]) == ("Block", "skipped", VALIDATION_ONLY)


@pytest.mark.parametrize(("rel", "value"), [(JAY, "jsecoin.com"), (NOBELIUM, "cdnappservice.web.app"), (SOPHOS, None)])
def test_csv_with_a_bom_reads_its_header(runs: Runs, corpus_dir: Path, rel: str, value: str | None):
    """Trap: a UTF-8 BOM before the header must not hide the first column name."""
    assert (corpus_dir / rel).read_bytes().startswith(b"\xef\xbb\xbf")
    run = runs(rel)
    if value is None:  # Sophos: record 2 is the `Description,<blog url>` pseudo-record
        assert run.report["summary"]["ignoredLines"] == 1 and run.entries[0]["line"] == 3
    else:
        assert (run.entries[0]["line"], run.entries[0]["indicatorValue"]) == (2, value)


def test_upper_case_hashes_are_lower_cased(runs: Runs, corpus_dir: Path):
    """Trap: Jay's upper-case SHA-256 rows and hash-iocs' 366 upper-case hashes are sent in lower case."""
    upper = {}
    for i, raw in enumerate(_raw_lines(corpus_dir, JAY), 1):
        m = re.search(rb",([0-9A-F]{64})\s*,", raw)
        if m and re.search(rb"[A-F]", m.group(1)):
            upper[i] = m.group(1).decode().lower()
    assert sorted(upper) == [20, 21, 22, 23, 301]
    run = runs(JAY)
    for line, value in upper.items():
        (e,) = run.at(line)
        assert (e["indicatorType"], e["indicatorValue"], e["status"]) == ("FileSha256", value, "skipped")
    hashes = runs(HASH_IOCS).entries
    assert all(e["indicatorValue"] == e["indicatorValue"].lower() for e in hashes)


def test_nobelium_nbsp_suffixed_domain_is_normalised(runs: Runs, corpus_dir: Path):
    """Trap: `cdnappservice.web.app\\u00a0` (a non-breaking space that some strip() functions miss)."""
    assert "cdnappservice.web.app\u00a0," in _raw_lines(corpus_dir, NOBELIUM)[1].decode("utf-8")
    first = runs(NOBELIUM).at(2)[0]
    assert (first["indicatorType"], first["indicatorValue"], first["status"]) == (
        "DomainName",
        "cdnappservice.web.app",
        "skipped",
    )


def test_nobelium_semicolon_list_of_c2_domains_gives_each(runs: Runs):
    """Trap: a C2Domain cell holding four `;`-separated hosts: four entries, repeated on the next line."""
    hosts = [
        "dataplane.theyardservice.com",
        "cdn.theyardservice.com",
        "static.theyardservice.com",
        "worldhomeoutlet.com",
    ]
    run = runs(NOBELIUM)
    for line, status in ((58, "skipped"), (59, "duplicate")):
        domains = [e for e in run.at(line) if e["indicatorType"] == "DomainName"]
        assert [(e["indicatorValue"], e["status"]) for e in domains] == [(h, status) for h in hosts]


def test_nobelium_placeholder_urls_are_invalid(runs: Runs):
    """Trap: line 55's URLs carry `<unique_to_target>` / `<target_email_address>` placeholders."""
    urls = [e for e in runs(NOBELIUM).at(55) if e["indicatorType"] == "Url"]
    assert [e["status"] for e in urls] == ["invalid", "invalid"]
    assert all("<" in e["indicatorValue"] and "placeholder" in e["reason"] for e in urls)


def test_mstic_expired_us_dates_are_invalid(runs: Runs):
    """Trap: Rapid Release TI expiries are `M/D/YYYY` (US) and long past: every typed row is invalid, expired."""
    run = runs(MSTIC_RAPID)
    expired = [e for e in run.entries if "is in the past" in e["reason"]]
    unsupported = [e for e in run.entries if e["reason"].startswith("unsupported type")]
    assert len(expired) == 229 and len(unsupported) == 8
    assert {e["status"] for e in run.entries} == {"invalid"}
    # `12/7/2025` is 7 December (US order), not 12 July.
    assert run.at(2)[0]["reason"] == "expirationTime 2025-12-07T00:00:00Z is in the past"


def test_mstic_rows_are_valid_before_their_expiry(runs: Runs):
    """The same file processed on 2023-03-01: rows expiring 12/7/2025 are ready; legacy `Alert` is mapped."""
    run = runs(MSTIC_RAPID, now=datetime(2023, 3, 1, tzinfo=UTC))
    (e,) = run.at(2)
    assert (e["status"], e["action"]) == ("skipped", "Audit")
    assert e["reason"].startswith("legacy action Alert mapped to Audit")
    assert e["reason"].endswith(VALIDATION_ONLY)


def test_non_utf8_byte_spoils_only_its_own_line(runs: Runs, corpus_dir: Path):
    """Trap: the Unit42 Brazil write-up has one 0x87 byte (line 38); every other line reads as usual."""
    data = (corpus_dir / UNIT42_BRAZIL).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert [i for i, raw in enumerate(data.split(b"\n"), 1) if b"\x87" in raw] == [38]
    clean = runs.of_bytes(data.replace(b"\x87", b"c"), "clean.txt")
    spoiled = runs(UNIT42_BRAZIL)
    fields = ("line", "indicatorType", "indicatorValue", "status")
    assert [tuple(e[f] for f in fields) for e in spoiled.entries] == [
        tuple(e[f] for f in fields) for e in clean.entries
    ]
    assert spoiled.report["summary"] == clean.report["summary"]
    assert spoiled.report["errors"] == []
