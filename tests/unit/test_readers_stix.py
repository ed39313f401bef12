"""STIX 2.x bundles: each expressible comparison is a row, the rest invalid with a reason (CONTRACT.md "Inputs")."""

from __future__ import annotations

import io
import json

from shared.core.model import FIELD_DESCRIPTION, FIELD_EXPIRATION, FIELD_TITLE, FIELD_TYPE, RawRow
from shared.readers import read


def bundle(*patterns: str, spec: str | None = "2.1", extra: dict | None = None) -> bytes:
    objects: list[dict] = [{"type": "identity", "id": "identity--1", "name": "x"}]
    for i, p in enumerate(patterns):
        obj = {"type": "indicator", "id": f"indicator--{i}", "pattern": p, **(extra or {})}
        if spec == "2.1":
            obj.update(spec_version="2.1", pattern_type="stix")
        objects.append(obj)
    objects.append({"type": "relationship", "id": "relationship--1"})
    doc = {"type": "bundle", "id": "bundle--1", "objects": objects}
    if spec == "2.0":
        doc["spec_version"] = "2.0"
    return json.dumps(doc, indent=1).encode()


def rows(data: bytes) -> list[RawRow]:
    r = read(io.BytesIO(data), "bundle.json")
    assert r.format == "stix2"
    out = list(r)
    assert all(isinstance(i, RawRow) for i in out)
    return out


def test_or_pattern_gives_one_row_per_comparison_with_defender_types():
    p = (
        "[domain-name:value = 'evil.example' OR ipv4-addr:value = '192.0.2.1' OR ipv6-addr:value = '2001:db8::1'"
        " OR url:value = 'http://evil.example/x' OR file:hashes.'SHA-256' = '" + "a" * 64 + "'"
        " OR file:hashes.sha1 = '" + "b" * 40 + "' OR file:hashes.MD5 = '" + "c" * 32 + "'"
        " OR x509-certificate:hashes.'SHA-1' = '" + "d" * 40 + "']"
    )
    out = rows(bundle(p, extra={"name": "N", "description": "D", "valid_until": "2030-01-01T00:00:00Z"}))
    assert [(r.value, r.fields[FIELD_TYPE]) for r in out] == [
        ("evil.example", "DomainName"),
        ("192.0.2.1", "IpAddress"),
        ("2001:db8::1", "IpAddress"),
        ("http://evil.example/x", "Url"),
        ("a" * 64, "FileSha256"),
        ("b" * 40, "FileSha1"),
        ("c" * 32, "FileMd5"),
        ("d" * 40, "CertificateThumbprint"),
    ]
    assert len({r.line for r in out}) == 1
    assert out[0].fields[FIELD_TITLE] == "N"
    assert out[0].fields[FIELD_DESCRIPTION] == "D"
    assert out[0].fields[FIELD_EXPIRATION] == "2030-01-01T00:00:00Z"


def test_inexpressible_patterns_are_invalid_with_reasons():
    cases = {
        "[ipv4-addr:value = '198.51.0.0/15']": "CIDR",
        "[x509-certificate:issuer = 'CN=x' AND x509-certificate:serial_number = '01']": "x509-certificate:issuer",
        "[domain-name:value = 'a.example' AND ipv4-addr:value = '192.0.2.1']": "different objects",
        "[url:value MATCHES '^http://.*']": "MATCHES",
        "[file:name = 'x.exe']": "file:name",
        "[domain-name:value = 'a.example'] AND [url:value = 'http://b.example/']": "observations joined by AND",
        "[network-traffic:dst_port = 443]": "network-traffic",
        "not a pattern": "does not parse",
    }
    out = rows(bundle(*cases))
    assert len(out) == len(cases)
    for row, want in zip(out, cases.values(), strict=True):
        assert row.invalid is not None and want in row.invalid, (row, want)


def test_cidr_value_is_kept_raw_in_the_invalid_row():
    (row,) = rows(bundle("[ipv4-addr:value = '198.51.0.0/15']"))
    assert row.value == "198.51.0.0/15"


def test_or_with_one_inexpressible_branch_keeps_the_others():
    out = rows(bundle("[domain-name:value = 'a.example' OR file:name = 'x.exe']"))
    assert [(r.value, r.invalid is None) for r in out] == [("a.example", True), ("x.exe", False)]


def test_stix_2_0_network_traffic_single_address_and_file_name_with_hash():
    out = rows(
        bundle(
            "[network-traffic:src_ref.type = 'ipv4-addr' AND network-traffic:src_ref.value = '192.0.2.5']",
            "[file:name = 'a.exe' AND file:hashes.SHA256 = '" + "e" * 64 + "']",
            spec="2.0",
        )
    )
    assert [(r.value, r.fields[FIELD_TYPE]) for r in out] == [("192.0.2.5", "IpAddress"), ("e" * 64, "FileSha256")]
    assert out[1].note is not None and "file:name" in out[1].note


def test_non_stix_pattern_types_are_invalid_and_other_objects_silent():
    data = json.dumps(
        {
            "type": "bundle",
            "id": "bundle--1",
            "objects": [
                {"type": "malware", "id": "malware--1", "name": "evil.example"},
                {"type": "indicator", "id": "indicator--1", "pattern": "rule x {}", "pattern_type": "yara"},
            ],
        }
    ).encode()
    out = rows(data)
    assert len(out) == 1 and "yara" in (out[0].invalid or "")


def test_revoked_indicators_are_skipped_not_imported():
    # STIX 2.1 `revoked: true`: the producer withdrew the indicator; importing it would block on a retraction.
    out = rows(bundle("[domain-name:value = 'evil.example' OR ipv4-addr:value = '8.8.8.8']", extra={"revoked": True}))
    assert [(r.value, r.skip, r.invalid) for r in out] == [
        ("evil.example", "STIX indicator revoked by its producer", None),
        ("8.8.8.8", "STIX indicator revoked by its producer", None),
    ]
    assert [r.skip for r in rows(bundle("[domain-name:value = 'evil.example']", extra={"revoked": False}))] == [None]
