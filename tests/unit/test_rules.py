"""Defender's value and field rules (defender-api.md §1.5, §1.6, §4; CONTRACT.md "Normalisation")."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.checks import rules
from shared.checks.normalise import canonical_ip
from shared.checks.rules import (
    MAX_URL_LENGTH,
    ActionChoice,
    check_value,
    default_description,
    first_problem,
    parse_datetime,
    resolve_action,
    resolve_category,
    resolve_expiration,
    resolve_generate_alert,
    resolve_mitre,
    resolve_rbac,
    resolve_severity,
    resolve_text,
)
from shared.core.model import Action, IndicatorType, Problem, Severity
from shared.core.model import IndicatorType as T
from shared.core.options import InputOptions, RowDefaults, row_defaults
from shared.core.settings import Settings
from shared.core.text import TRIM

NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def codes(t: IndicatorType, value: str) -> list[str]:
    return [p.code for p in check_value(t, value)]


# (type, canonical value, expected first problem code or None)  # why
VALUES = [
    (T.FileSha256, SHA256, None),
    (T.FileSha256, SHA256[:63], "hash-length"),  # one short
    (T.FileSha256, "32f85cbf0fcd...d4c2", "hash-truncated"),  # ThreatFox shortened hash (file 23)
    (T.FileSha256, "32f85cbf0fcd…d4c2", "hash-truncated"),
    (T.FileMd5, "g" * 32, "hash-not-hex"),
    (T.FileSha1, "a" * 40, None),
    (T.CertificateThumbprint, "a" * 40, None),
    (T.CertificateThumbprint, "a" * 64, "hash-length"),  # thumbprints are SHA-1
    (T.IpAddress, "8.8.8.8", None),
    (T.IpAddress, "2001:4860:4860:0:0:0:0:8888", None),
    (T.IpAddress, "2002:c000:204:0:0:0:0:1", None),  # 6to4 is global unicast: allowed (documented)
    (T.IpAddress, "1.2.3.0/24", "ip-cidr"),
    (T.IpAddress, "1.2.3.4-1.2.3.9", "ip-range"),
    (T.IpAddress, "1.2.3.*", "ip-wildcard"),
    (T.IpAddress, "http://8.8.8.8/", "ip-syntax"),  # a URL in an IpAddress row is no CIDR block
    (T.IpAddress, "8.8.8.8/gate.php", "ip-syntax"),
    (T.IpAddress, "my-evil.example", "ip-syntax"),  # a host name with a hyphen is no address range
    (T.IpAddress, "010.8.8.8", "ip-leading-zero"),  # octal ambiguity
    (T.IpAddress, "fe80:0:0:0:0:0:0:1%eth0", "ip-zone"),
    (T.IpAddress, "1.2.3", "ip-syntax"),
    (T.IpAddress, "10.1.2.3", "ip-not-public"),  # RFC 1918
    (T.IpAddress, "172.16.0.1", "ip-not-public"),
    (T.IpAddress, "192.168.1.1", "ip-not-public"),
    (T.IpAddress, "127.0.0.1", "ip-not-public"),  # loopback
    (T.IpAddress, "169.254.1.1", "ip-not-public"),  # link-local
    (T.IpAddress, "224.0.0.1", "ip-not-public"),  # multicast (is_global says True on 3.11)
    (T.IpAddress, "239.1.1.1", "ip-not-public"),
    (T.IpAddress, "240.0.0.1", "ip-not-public"),  # reserved
    (T.IpAddress, "0.0.0.0", "ip-not-public"),  # noqa: S104  # unspecified
    (T.IpAddress, "255.255.255.255", "ip-not-public"),  # broadcast
    (T.IpAddress, "100.64.0.1", "ip-not-public"),  # CGNAT
    (T.IpAddress, "192.0.2.1", "ip-not-public"),  # documentation
    (T.IpAddress, "198.51.100.7", "ip-not-public"),
    (T.IpAddress, "203.0.113.9", "ip-not-public"),
    (T.IpAddress, "198.18.0.1", "ip-not-public"),  # benchmarking
    (T.IpAddress, "192.88.99.1", "ip-not-public"),  # deprecated 6to4 relay
    (T.IpAddress, "2001:db8:0:0:0:0:0:1", "ip-not-public"),  # documentation
    (T.IpAddress, "0:0:0:0:0:0:0:1", "ip-not-public"),  # loopback
    (T.IpAddress, "0:0:0:0:0:ffff:808:808", "ip-not-public"),  # IPv4-mapped
    (T.IpAddress, "fc00:0:0:0:0:0:0:1", "ip-not-public"),  # unique local
    (T.IpAddress, "fe80:0:0:0:0:0:0:1", "ip-not-public"),
    (T.IpAddress, "ff0e:0:0:0:0:0:0:1", "ip-not-public"),  # multicast
    (T.IpAddress, "2001:0:0:0:0:0:0:1", "ip-not-public"),  # Teredo
    (T.IpAddress, "64:ff9b:0:0:0:0:808:808", "ip-not-public"),  # NAT64
    (T.IpAddress, "2001:4860:4860::8888", "ip-form"),  # compressed form is not what Defender documents
    (T.DomainName, "example.com", None),
    (T.DomainName, "xn--ggle-5qaa.com", None),  # punycode allowed
    (T.DomainName, "a-b.example.com", None),
    (T.DomainName, "*.example.com", "domain-wildcard"),
    (T.DomainName, "http://example.com", "domain-scheme"),
    (T.DomainName, "example.com/x", "domain-path"),
    (T.DomainName, "example.com:8080", "domain-port"),
    (T.DomainName, "domain autuo.xicp.net", "domain-space"),  # STIX copy-paste (file 26)
    (T.DomainName, "8.8.8.8", "domain-is-ip"),
    (T.DomainName, "localhost", "domain-single-label"),
    (T.DomainName, "-bad.example", "domain-label"),
    (T.DomainName, "bad-.example", "domain-label"),
    (T.DomainName, "a..example", "domain-label"),
    (T.DomainName, "under_score.example", "domain-label"),
    (T.DomainName, f"{'a' * 64}.example", "domain-label"),  # label > 63
    (T.DomainName, ".".join(["abcdefgh"] * 30), "domain-length"),  # > 253
    (T.DomainName, "1.2.3.999", "domain-numeric-tld"),
    (T.Url, "http://example.com/x?y=1", None),
    (T.Url, "https://8.8.8.8:8443/x", None),
    (T.Url, "http://[2001:4860:0:0:0:0:0:1]/x", None),
    (T.Url, "ftp://example.com/x", "url-scheme"),
    (T.Url, "http://<ingress-nginx-LB>", "url-placeholder"),  # placeholder host (file 9)
    (T.Url, "https://usaid.example.com/d/<target_email_address>", "url-placeholder"),  # placeholder path (file 16)
    (T.Url, "https://r20.example.net/tn.jsp?<unique_to_target>", "url-placeholder"),  # placeholder query (file 16)
    (T.Url, "http://webserver/payload", "domain-single-label"),  # single-label host (file 24)
    (T.Url, "http://*.example.com/", "url-wildcard"),
    (T.Url, "http://example.com/a b", "url-space"),
    (T.Url, "http://user@example.com/", "url-userinfo"),
    (T.Url, "http://example.com:99999/", "url-port"),
    (T.Url, "http://10.0.0.1/x", "ip-not-public"),
    (T.Url, "http:///x", "url-no-host"),
    (T.Url, "http://example.com/" + "a" * MAX_URL_LENGTH, "url-length"),
]


@pytest.mark.parametrize(("t", "value", "code"), VALUES)
def test_value_rules(t, value, code):
    got = first_problem(t, value)
    assert (got.code if got else None) == code
    assert (codes(t, value)[:1] or [None])[0] == code  # the slow path agrees with the fast one


def test_problem_messages_say_what_is_wrong():
    p = first_problem(T.FileSha256, SHA256[:10])
    assert p == Problem("hash-length", "FileSha256 needs 64 hex characters, got 10")


CERT = Settings()


def defaults_of(settings: Settings | tuple[Settings, InputOptions]) -> RowDefaults:
    """What rows take: app settings, or (app settings, an input's options)."""
    return row_defaults(*settings) if isinstance(settings, tuple) else row_defaults(settings)


def meta(overrides: dict[str, str]) -> tuple[Settings, InputOptions]:
    """App defaults with one input's blob metadata."""
    return Settings(), InputOptions.parse(overrides)


META_BLOCK_REMEDIATE = meta({"action": "BlockAndRemediate"})
META_ALERT = meta({"action": "Alert"})
ENV_ALERT_AND_BLOCK = Settings.from_env({"DEFAULT_ACTION": "AlertAndBlock"})


# (raw action, type, settings, expected action or problem code, force alert, note fragment)  # why
ACTIONS = [
    (None, T.FileSha256, Settings(), Action.Audit, True, None),  # DEFAULT_ACTION Audit → generateAlert true
    ("Block ", T.DomainName, Settings(), Action.Block, False, None),  # trailing space (file 12)
    ("block", T.Url, Settings(), Action.Block, False, None),  # case-insensitive
    ("ALLOWED", T.IpAddress, Settings(), Action.Allowed, False, None),
    ("Alert", T.FileSha1, Settings(), Action.Audit, True, "legacy action Alert mapped to Audit"),
    ("AlertAndBlock", T.Url, Settings(), Action.Block, True, "legacy action AlertAndBlock mapped to Block"),
    ("BlockAndRemediate", T.FileMd5, Settings(), Action.BlockAndRemediate, False, None),
    ("BlockAndRemediate", T.DomainName, Settings(), "action-type", None, None),  # §1.6: not for network types
    ("Warn", T.CertificateThumbprint, Settings(), "action-type", None, None),  # certs: Allowed/BlockAndRemediate
    ("Allowed", T.CertificateThumbprint, Settings(), Action.Allowed, False, None),
    (None, T.CertificateThumbprint, Settings(), "certificate-action-required", None, None),
    (
        None,
        T.CertificateThumbprint,
        Settings(default_action=Action.BlockAndRemediate),
        "certificate-action-required",
        None,
        None,
    ),  # app-wide default does not count for certificates
    (None, T.CertificateThumbprint, META_BLOCK_REMEDIATE, Action.BlockAndRemediate, False, None),  # file metadata
    (None, T.Url, META_BLOCK_REMEDIATE, Action.Block, False, "not valid for Url; Block used"),  # default → Block
    (None, T.CertificateThumbprint, meta({"action": "Block"}), "action-type", None, None),
    ("Nuke", T.Url, Settings(), "action-unknown", None, None),
    # A legacy default (file metadata or DEFAULT_ACTION): mapped by core.settings.legacy_default, noted, alert forced.
    (None, T.DomainName, META_ALERT, Action.Audit, True, "legacy action Alert mapped to Audit (file metadata)"),
    (
        None,
        T.Url,
        ENV_ALERT_AND_BLOCK,
        Action.Block,
        True,
        "legacy action AlertAndBlock mapped to Block (DEFAULT_ACTION)",
    ),
    (
        None,
        T.FileSha256,
        ENV_ALERT_AND_BLOCK,
        Action.BlockAndRemediate,
        True,
        "legacy action AlertAndBlock mapped to BlockAndRemediate (DEFAULT_ACTION)",
    ),  # the rename (fidelity-review [Ovw]): files and certificates get BlockAndRemediate
    (
        "AlertAndBlock",
        T.FileSha1,
        Settings(),
        Action.BlockAndRemediate,
        True,
        "legacy action AlertAndBlock mapped to BlockAndRemediate",
    ),
    ("Block", T.Url, ENV_ALERT_AND_BLOCK, Action.Block, False, None),  # a row's own action: no legacy note
    (None, T.CertificateThumbprint, META_ALERT, "action-type", None, None),  # Audit is not for certificates
]


@pytest.mark.parametrize(("raw", "t", "settings", "want", "force", "note"), ACTIONS)
def test_resolve_action(raw, t, settings, want, force, note):
    got = resolve_action(raw, t, defaults_of(settings))
    if not isinstance(want, Action):
        assert isinstance(got, Problem) and got.code == want
        return
    assert isinstance(got, ActionChoice)
    assert (got.action, got.force_alert) == (want, force)
    if note:
        assert any(note in n for n in got.notes)
    else:
        assert got.notes == ()


@pytest.mark.parametrize(
    ("raw", "setting", "action", "want"),
    [
        ("TRUE", None, Action.Block, True),
        ("false", None, Action.Block, False),
        ("0", True, Action.Block, False),  # row beats file metadata
        ("", True, Action.Block, True),  # metadata generate_alert
        (None, None, Action.Block, None),  # nothing given: not sent
        ("false", None, Action.Audit, True),  # Audit forces true (defender-api.md §1.5)
        ("maybe", None, Action.Block, "generate-alert"),
    ],
)
def test_generate_alert(raw, setting, action, want):
    choice = ActionChoice(action, action is Action.Audit, ())
    got = resolve_generate_alert(raw, defaults_of(Settings(generate_alert=setting)), choice)
    if isinstance(want, str):
        assert isinstance(got, Problem) and got.code == want
    else:
        assert got is want


# (raw date, expected UTC text or problem code)  # why
DATES = [
    ("2026-03-01T10:00:00Z", "2026-03-01T10:00:00Z"),
    ("2026-03-01T12:00:00+02:00", "2026-03-01T10:00:00Z"),  # any offset, written as UTC
    ("2026-03-01T10:00:00.0Z", "2026-03-01T10:00:00Z"),  # portal form
    ("2026-03-01", "2026-03-01T00:00:00Z"),  # date only
    ("3/1/2026", "2026-03-01T00:00:00Z"),  # US M/D/YYYY (Microsoft exports)
    ("4/19/2026 12:00:00 AM", "2026-04-19T00:00:00Z"),
    ("4/19/2026 1:30 PM", "2026-04-19T13:30:00Z"),
    ("20260301", "2026-03-01T00:00:00Z"),  # compact (MISP)
    ("4/19/2023 12:00:00 AM", "expiration-past"),  # expired (file 15)
    ("2026-01-15T12:00:00Z", "expiration-past"),  # exactly now is not in the future
    ("next tuesday", "expiration-format"),
    ("13/45/2026", "expiration-format"),
    ("9999-12-31T23:59:59-01:00", "expiration-format"),  # past year 9999 in UTC: no datetime holds it
    ("0001-01-01T00:00:00+01:00", "expiration-format"),  # before year 1 in UTC
]


@pytest.mark.parametrize(("raw", "want"), DATES)
def test_expiration(raw, want):
    got = resolve_expiration(raw, T.Url, defaults_of(Settings()), NOW)
    if isinstance(got, Problem):
        assert got.code == want
    else:
        assert got == want


def test_default_expiration_uses_type_days_and_zero_means_never():
    s = defaults_of(Settings(default_expiration_days=90, expiration_days_by_type={T.IpAddress: 30, T.Url: 0}))
    assert resolve_expiration(None, T.FileSha1, s, NOW) == "2026-04-15T12:00:00Z"
    assert resolve_expiration("", T.IpAddress, s, NOW) == "2026-02-14T12:00:00Z"
    assert resolve_expiration(None, T.Url, s, NOW) is None


def test_parse_datetime_rejects_bad_hour_with_am_pm():
    assert parse_datetime("1/2/2026 13:00 PM") is None


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (None, Severity.Medium),
        ("high ", Severity.High),
        ("INFORMATIONAL", Severity.Informational),
        ("urgent", "severity-unknown"),
    ],
)
def test_severity(raw, want):
    got = resolve_severity(raw, defaults_of(Settings()))
    assert (got.code if isinstance(got, Problem) else got) == want


def _severity_by_loop(raw, defaults):
    """resolve_severity the plain way: every member's name compared, lower-cased."""
    text = raw.strip(TRIM) if raw else ""
    if not text:
        return defaults.severity
    for s in Severity:
        if s.value.lower() == text.lower():
            return s
    return "severity-unknown"


_severity_spellings = st.sampled_from(["High", "high", " LOW ", "Medium", "informational", "İnformational", "urgent"])


@given(st.none() | _severity_spellings | st.text(max_size=15) | st.builds(str.swapcase, _severity_spellings))
def test_severity_look_up_says_what_comparing_every_name_says(raw):
    """The one dict look-up of the lower-cased name gives what a loop over the members gives."""
    got = resolve_severity(raw, defaults_of(Settings()))
    assert (got.code if isinstance(got, Problem) else got) == _severity_by_loop(raw, defaults_of(Settings()))


def test_description_template_is_safe_and_deterministic():
    assert default_description("Imported from {source}", "a/b.csv") == "Imported from a/b.csv"
    assert default_description("{unknown} {0} {source} {", "x") == "{unknown} {0} x {"


def test_text_limits_reject_rather_than_truncate():
    assert resolve_text("  t ", "d", "title", 10) == "t"
    assert resolve_text(None, "d", "title", 10) == "d"
    got = resolve_text("x" * 11, "d", "title", 10)
    assert isinstance(got, Problem) and got.code == "title-length"


@pytest.mark.parametrize(
    ("raw", "default", "want"),
    [
        ("G1, G2 ,", (), ("G1", "G2")),
        (None, ("All",), ("All",)),
        ("", (), None),  # nothing: all devices, not sent
    ],
)
def test_rbac(raw, default, want):
    assert resolve_rbac(raw, defaults_of(Settings(default_rbac_groups=default))) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("SuspiciousActivity", "SuspiciousActivity"),
        ("suspicious activity", "SuspiciousActivity"),  # mapped to Pascal case
        ("command_and_control", "CommandAndControl"),
        ("NewCategory", "NewCategory"),
        ("not valid!", "category"),
        ("", None),
    ],
)
def test_category(raw, want):
    got = resolve_category(raw)
    assert (got.code if isinstance(got, Problem) else got) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("T1046", ("T1046",)),
        ("t1566.001, T1204", ("T1566.001", "T1204")),
        ("T1046,X12", "mitre-technique"),  # one bad item invalidates the row
        ("", None),
    ],
)
def test_mitre(raw, want):
    got = resolve_mitre(raw)
    assert (got.code if isinstance(got, Problem) else got) == want


def _not_public_by_ipaddress(value: str) -> str | None:
    """ip_public's verdict the plain way: `addr in network` over the table."""
    addr = ipaddress.ip_address(value)
    for net, why in rules._NOT_PUBLIC:
        if addr.version == net.version and addr in net:
            return why
    return "broadcast" if addr == ipaddress.IPv4Address("255.255.255.255") else None


# Addresses anywhere, and at and next to both edges of every network in the table.
_edges = [
    str(ipaddress.ip_address(int(a) + d) if n.version == 4 else ipaddress.IPv6Address(int(a) + d))
    for n, _ in rules._NOT_PUBLIC
    for a in (n.network_address, n.broadcast_address)
    for d in (-1, 0, 1)
    if 0 <= int(a) + d < 2**n.max_prefixlen
]
_addresses = (
    st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))
    | st.integers(0, 2**128 - 1).map(lambda i: str(ipaddress.IPv6Address(i)))
    | st.sampled_from(_edges)
)


@given(_addresses)
def test_ip_public_says_what_membership_in_the_networks_says(value):
    """The integer mask test over the table gives the verdict `ipaddress`'s own `in` gives."""
    value = canonical_ip(value) or value
    problems = list(rules.ip_public(value))
    why = _not_public_by_ipaddress(value)
    assert (problems == []) == (why is None)
    if why is not None:
        assert problems[0].message.endswith(why if why != "broadcast" else "the broadcast address")
