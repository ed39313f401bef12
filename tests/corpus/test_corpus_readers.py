"""The reader layer on the team kit's real IOC files: detected format and exact item counts.

Counts were checked by reading each file (SOURCES.md gives approximations only). Keys of each
count table: a RawRow's FIELD_TYPE hint ("-" when the format states none), "invalid", "skip"
for RawRows the reader already decided, and "ignored" for Ignored lines. The end-to-end corpus
test (validated statuses) lives elsewhere; this one pins what `shared.readers.read` yields.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from shared.core.model import FIELD_TYPE, FIELD_VALUE, FileProblem, Ignored, RawRow
from shared.readers import read

pytestmark = pytest.mark.corpus

# path -> (format, counts, file problems as (message, line, column))
EXPECTED: dict[str, tuple[str, dict[str, int], list[tuple[str, int | None, int | None]]]] = {
    "BlazingVermilion__urlhaus_threat_intel_pipeline/data/sample/urlhaus_recent_sample.csv": ("csv", {"url": 150}, []),
    "Cisco-Talos__IOCs/2022/05/mustang-panda.txt": ("text", {"-": 201}, []),
    "Cisco-Talos__IOCs/2023/03/YoroTrooper.json": (
        "stix2",
        {"DomainName": 53, "FileSha256": 62, "IpAddress": 19, "Url": 55},
        [],
    ),
    "Cisco-Talos__IOCs/2025/05/iocs_spam-campaign-abuses-rmm-tools.txt": ("text", {"-": 387}, []),
    "Neo23x0__signature-base/iocs/c2-iocs.txt": ("text", {"-": 1844}, []),
    "Neo23x0__signature-base/iocs/hash-iocs.txt": ("text", {"-": 3224}, []),
    "PaloAltoNetworks__Unit42-timely-threat-intel/2022-04-19-IOCS-for-infection-from-Brazil-malspam.txt": (
        "text",
        {"-": 4, "ignored": 33},
        [],
    ),
    "PaloAltoNetworks__Unit42-timely-threat-intel/2025-04-17-IngressNightmare-Scans-and-Testing.md": (
        "markdown",
        {"-": 2369, "ignored": 165},
        [],
    ),
    "ashiroodi__threatfeed/threatfox.json": (
        "threatfox-json",
        {"domain": 25, "ip:port": 7, "sha256_hash": 3, "url": 5},
        [],
    ),
    "citizenlab__malware-indicators/201611_KeyBoy/iocs.csv": (
        "misp-csv",
        {"domain": 4, "invalid": 10, "ip-dst": 8, "md5": 7, "sha256": 4},
        [],
    ),
    "citizenlab__malware-indicators/201611_KeyBoy/openioc.ioc": (
        "unsupported",
        {},
        [("unsupported format: OpenIOC XML", None, None)],
    ),
    "citizenlab__malware-indicators/201611_KeyBoy/stix.xml": (
        "unsupported",
        {},
        [("unsupported format: STIX 1.x XML", None, None)],
    ),
    "eset__malware-ioc/dnsbirthday/358bb04f6a0bf8ce88d23b2e620ac01b28d307ab80286f6ee2dcc484a6b1a5d0.pem": (
        "certificate",
        {"CertificateThumbprint": 1},
        [],
    ),
    # The trailing comma at line 37373 is tolerated with a warning (issue "Nothing silently dropped"; before: a
    # fatal error after the 987 attributes, nothing after it - here nothing follows it).
    "eset__malware-ioc/pypi_backdoor/malicious_pypi_packages.misp-event.json": (
        "misp-json",
        {"domain": 1, "invalid": 28, "md5": 119, "sha1": 119, "sha256": 119, "skip": 489, "url": 112},
        [("trailing comma before a closing bracket, tolerated: line 37373 (strict JSON has none)", 37373, None)],
    ),
    "eset__malware-ioc/stantinko/cryptominer/samples.sha256": ("text", {"-": 1053}, []),
    "eset__malware-ioc/stantinko/stantinko.misp-event.json": (
        "misp-json",
        {"domain": 87, "invalid": 13, "ip": 77, "ip-dst": 4, "sha1": 126, "skip": 33},
        [],
    ),
    "eset__malware-ioc/windigo/windigo.ioc": ("unsupported", {}, [("unsupported format: OpenIOC XML", None, None)]),
    "jkerai1__DNSTwistToMDEIOC/Examples/DNSTwist google.com07-22-24.csv": ("defender-csv", {"DomainName": 3611}, []),
    "jkerai1__SoftwareCertificates/AV/Crowdstrike.cer": ("certificate", {"CertificateThumbprint": 1}, []),
    "jkerai1__SoftwareCertificates/Bulk-IOC-CSVs/Jay -MDE IOCs.csv": (
        "defender-csv",
        {"DomainName": 311, "FileSha256": 119, "IpAddress": 2},
        [],
    ),
    "jkerai1__SoftwareCertificates/Bulk-IOC-CSVs/streaming-sites.csv": (
        "defender-csv",
        {"DomainName": 133, "Url": 7},
        [],
    ),
    "mandiant__red_team_tool_countermeasures/all-hashes.csv": ("csv", {"md5": 100, "sha1": 100, "sha256": 100}, []),
    "microsoft__mstic/Indicators/May21-NOBELIUM/May21NOBELIUMIoCs.csv": (
        "csv",
        {"Domain": 41, "IP": 7, "SHA256": 78, "Url": 1, "domain": 35, "md5": 17, "sha1": 69},
        [],
    ),
    "microsoft__mstic/RapidReleaseTI/Indicators.csv": (
        "csv",
        {"GUID": 2, "IP": 3, "URL": 1, "commandline": 2, "domainname": 168, "filepath": 4, "sha256": 57},
        [],
    ),
    "oasis-open__cti-stix2-json-schemas/examples/threat-reports/apt1.json": (
        "stix2",
        {"DomainName": 3, "FileMd5": 3, "invalid": 6},
        [],
    ),
    "oasis-open__cti-stix2-json-schemas/examples/threat-reports/poisonivy.json": (
        "stix2",
        {"DomainName": 25, "IpAddress": 40, "invalid": 2},
        [],
    ),
    "prodaft__malware-ioc/ViceSociety/README.md": ("markdown", {"-": 1797, "ignored": 21, "invalid": 9}, []),
    "sophoslabs__IoCs/2404 impersonation campaign.csv": (
        "csv",
        {"IP": 1, "ignored": 1, "ip": 4, "sha256": 422, "url": 26, "url_path": 20},
        [],
    ),
    "stamparm__maltrail/trails/static/malware/android_anubis.txt": ("text", {"-": 2005, "invalid": 697}, []),
    "stamparm__maltrail/trails/static/malware/apt_lazarus.txt": ("text", {"-": 5474, "invalid": 99}, []),
    "volexity__threat-intel/2021/2021-12-06 - XEGroup/indicators/indicators.csv": (
        "csv",
        {"file": 156, "hostname": 84, "ipaddress": 8},
        [],
    ),
}


def _tally(path: Path) -> tuple[str, dict[str, int], list[tuple[str, int | None, int | None]], list]:
    with path.open("rb") as f:
        reading = read(f, path.name)
        items = list(reading)
    counts: collections.Counter[str] = collections.Counter()
    problems = []
    for it in items:
        if isinstance(it, RawRow):
            counts["invalid" if it.invalid else "skip" if it.skip else it.fields.get(FIELD_TYPE, "-")] += 1
        elif isinstance(it, Ignored):
            counts["ignored"] += 1
        else:
            assert isinstance(it, FileProblem)
            problems.append((it.message, it.line, it.column))
    return reading.format, dict(counts), problems, items


def test_every_corpus_file_is_pinned(corpus_dir: Path):
    files = {str(p.relative_to(corpus_dir)) for p in corpus_dir.rglob("*") if p.is_file() and p.name != "SOURCES.md"}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_reader_counts(corpus_dir: Path, rel: str):
    fmt, counts, problems, _ = _tally(corpus_dir / rel)
    want_fmt, want_counts, want_problems = EXPECTED[rel]
    assert fmt == want_fmt
    assert counts == want_counts
    assert problems == want_problems


def test_unsupported_files_give_only_the_file_level_error(corpus_dir: Path):
    unsupported = [rel for rel, (fmt, _, _) in EXPECTED.items() if fmt == "unsupported"]
    assert len(unsupported) == 3  # STIX 1.x XML and two OpenIOC files
    for rel in unsupported:
        _, counts, problems, _ = _tally(corpus_dir / rel)
        assert counts == {} and len(problems) == 1 and problems[0][0].startswith("unsupported format: ")


def test_misp_json_with_trailing_comma_is_read_with_a_warning(corpus_dir: Path):
    *_, items = _tally(corpus_dir / "eset__malware-ioc/pypi_backdoor/malicious_pypi_packages.misp-event.json")
    # The `,` before `]` near the end (line 37373): tolerated, named in a warning after the rows.
    message = "trailing comma before a closing bracket, tolerated: line 37373 (strict JSON has none)"
    assert items[-1] == FileProblem(message, 37373, None, False, True)
    assert len(items) == 988 and all(isinstance(i, RawRow) for i in items[:-1])


def test_certificate_thumbprints(corpus_dir: Path):
    cases = {
        "jkerai1__SoftwareCertificates/AV/Crowdstrike.cer": (1, "16adfe3b79a93d4b1fa7b8e6b2c972c99bfdc849"),
        "eset__malware-ioc/dnsbirthday/358bb04f6a0bf8ce88d23b2e620ac01b28d307ab80286f6ee2dcc484a6b1a5d0.pem": (
            90,
            "654cfafbb1d91ca6aa1de118a0cb5599740a7edb",
        ),
    }
    for rel, (line, thumb) in cases.items():
        *_, items = _tally(corpus_dir / rel)
        assert [(i.line, i.value) for i in items] == [(line, thumb)]


def test_quirks_are_passed_raw(corpus_dir: Path):
    *_, nobelium = _tally(corpus_dir / "microsoft__mstic/Indicators/May21-NOBELIUM/May21NOBELIUMIoCs.csv")
    assert nobelium[0].fields[FIELD_VALUE] == "cdnappservice.web.app\u00a0"  # NBSP kept for the validator
    *_, twist = _tally(corpus_dir / "jkerai1__DNSTwistToMDEIOC/Examples/DNSTwist google.com07-22-24.csv")
    # Each record holds a quoted LF, so record n starts on physical line 2n.
    assert [r.line for r in twist[:3]] == [2, 4, 6]
    *_, sophos = _tally(corpus_dir / "sophoslabs__IoCs/2404 impersonation campaign.csv")
    assert sophos[0] == Ignored(2, "not an indicator record: Description")
    *_, keyboy = _tally(corpus_dir / "citizenlab__malware-indicators/201611_KeyBoy/iocs.csv")
    yara = [r for r in keyboy if isinstance(r, RawRow) and r.fields.get(FIELD_TYPE) == "yara"]
    assert len(yara) == 9 and all(r.invalid and "yara" in r.invalid for r in yara)
    *_, volexity = _tally(corpus_dir / "volexity__threat-intel/2021/2021-12-06 - XEGroup/indicators/indicators.csv")
    assert [len(r.value) for r in volexity[:3]] == [40, 64, 32] and len({r.line for r in volexity[:3]}) == 1
    *_, poison = _tally(corpus_dir / "oasis-open__cti-stix2-json-schemas/examples/threat-reports/poisonivy.json")
    assert any(r.value == "domain autuo.xicp.net" for r in poison)  # left for validation to reject
