"""Normalisation (CONTRACT.md "Normalisation"): trimming, refanging, canonical forms, type inference and corrections."""

from __future__ import annotations

import ipaddress
import re
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.checks.normalise import TRIM, Candidate, canonical_ip, clean, normalise, refang, split_url
from shared.core.model import IndicatorType as T
from shared.core.model import Problem
from shared.core.text import hex_digits

SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def colons(hexdigits: str) -> str:
    """`AA:BB:…`, as `openssl x509 -fingerprint` writes a digest."""
    return ":".join(hexdigits[i : i + 2] for i in range(0, len(hexdigits), 2)).upper()


SHA1_COLONS, SHA256_COLONS, MD5_COLONS = colons(SHA1), colons(SHA256), colons(MD5)


def test_trim_list_covers_every_python_whitespace_character():
    missing = [hex(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() and chr(c) not in TRIM]
    assert missing == []


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("  x  ", "x"),
        ("\u00a0cdnappservice.web.app\u00a0", "cdnappservice.web.app"),  # NBSP (SOURCES.md file 16)
        ("\u200bx\u200c\u200d\u2060\ufeff", "x"),  # zero-width characters and BOM
        ("\tblog.ceterus.se ", "blog.ceterus.se"),  # leading tab (file 12)
        ("a b", "a b"),  # inner spaces stay (rules reject them)
    ],
)
def test_clean(raw, want):
    assert clean(raw) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("hxxp://a[.]b", "http://a.b"),
        ("hXXps[:]//a[.]b/c", "https://a.b/c"),
        ("a(.)b{.}c[dot]d", "a.b.c.d"),
        ("a\\.b", "a.b"),
        ("user[at]a.b", "user@a.b"),
        ("user[@]a.b", "user@a.b"),
        ("https[://]a.b", "https://a.b"),
        ("6f4c:[e]001::1", "6f4c:e001::1"),  # irregular IPv6 defanging (file 9)
        ("41.234.45[.]136:8808", "41.234.45.136:8808"),  # only the last dot bracketed (file 23)
        ("plain.example.com", "plain.example.com"),
    ],
)
def test_refang(raw, want):
    assert refang(raw) == want


# (raw value, type hint, expected type, expected value, expected notes)  # why
CASES = [
    (SHA256.upper(), None, T.FileSha256, SHA256, ()),  # hashes lower-cased, type from length
    (SHA1, None, T.FileSha1, SHA1, ()),
    (MD5, "", T.FileMd5, MD5, ()),
    (f" {SHA256} ", "sha256_hash", T.FileSha256, SHA256, ()),  # ThreatFox name
    (SHA256, "FileMd5", T.FileSha256, SHA256, ("type corrected from FileMd5 to FileSha256",)),
    (MD5, "md5_hash", T.FileMd5, MD5, ()),
    (SHA1, "file", T.FileSha1, SHA1, ()),  # Volexity `file`: the length decides
    (SHA1, "x509-fingerprint-sha1", T.CertificateThumbprint, SHA1, ()),
    (SHA1.upper(), "certificatethumbprint", T.CertificateThumbprint, SHA1, ()),  # Defender names, any case
    ("8.8.8.8", "ip-dst", T.IpAddress, "8.8.8.8", ()),
    ("8.8.8.8", "IP", T.IpAddress, "8.8.8.8", ()),  # Sentinel
    ("103.15.28.208|443", None, T.IpAddress, "103.15.28.208", ("port 443 removed",)),  # Talos pipe
    ("41.234.45[.]136:8808", "ip:port", T.IpAddress, "41.234.45.136", ("port 8808 removed",)),
    ("[2001:4860:4860::8888]:443", None, T.IpAddress, "2001:4860:4860:0:0:0:0:8888", ("port 443 removed",)),
    ("2001:4860:4860::8888", "ipv6", T.IpAddress, "2001:4860:4860:0:0:0:0:8888", ()),  # all eight groups
    ("2001:0DB8:0000:0000:0000:0000:0000:00AB", "IpAddress", T.IpAddress, "2001:db8:0:0:0:0:0:ab", ()),
    ("Example.COM", "domain", T.DomainName, "example.com", ()),  # host names lower-cased
    ("example.com.", "hostname", T.DomainName, "example.com", ()),  # root dot dropped
    ("ortakoporotör.com", "domain", T.DomainName, "xn--ortakoporotr-fjb.com", ()),  # IDN → punycode
    ("XN--GGLE-5QAA.COM", None, T.DomainName, "xn--ggle-5qaa.com", ()),
    ("evil[.]example", None, T.DomainName, "evil.example", ()),
    (
        "https://virgintvgo.virginmedia.com/",
        "DomainName",
        T.DomainName,
        "virgintvgo.virginmedia.com",
        ("URL reduced to its host name",),
    ),  # scheme://host/ in a DomainName row (file 13)
    (
        "transfer.sh/0tUIJu/Updater.zip ",
        "DomainName",
        T.Url,
        "http://transfer.sh/0tUIJu/Updater.zip",
        ("type corrected from DomainName to Url", "http:// added (no scheme)"),
    ),  # path in a DomainName row
    ("https://aol.com/video", "domainname", T.Url, "https://aol.com/video", ("type corrected from DomainName to Url",)),
    ("8.8.4.4", "DomainName", T.IpAddress, "8.8.4.4", ("type corrected from DomainName to IpAddress",)),
    ("BBC.co.uk/iplayer", "Url", T.Url, "http://bbc.co.uk/iplayer", ("http:// added (no scheme)",)),
    ("Disneyplus.com", "url", T.DomainName, "disneyplus.com", ("type corrected from Url to DomainName",)),  # Sophos
    ("hxxps://Evil[.]EXAMPLE/Path?Q=A%20B", None, T.Url, "https://evil.example/Path?Q=A%20B", ()),  # path as given
    ("HTTP://Münich.example/ä", "URL", T.Url, "http://xn--mnich-kva.example/ä", ()),
    ("http://103.75.190.50:443/x", None, T.Url, "http://103.75.190.50:443/x", ()),
    ("http://[2001:4860::1]/x", None, T.Url, "http://[2001:4860:0:0:0:0:0:1]/x", ()),
    ("evil.example/gate.php", None, T.Url, "http://evil.example/gate.php", ("http:// added (no scheme)",)),
    ("1.2.3.0/24", None, T.IpAddress, "1.2.3.0/24", ()),  # CIDR stays visible for rules.py to reject
    ("//Evil.example/x", None, T.Url, "http://evil.example/x", ("http: added (scheme-relative URL)",)),
    ("//evil[.]example/x", "url", T.Url, "http://evil.example/x", ("http: added (scheme-relative URL)",)),
    ("010.8.8.8", None, T.IpAddress, "010.8.8.8", ()),  # leading zeros: rules.py rejects
    # One matching pair of quotes or angle brackets around the whole value is removed, noted.
    ('"evil.example.com"', None, T.DomainName, "evil.example.com", ("quotes removed",)),
    ("'Evil.Example.com'", "domain", T.DomainName, "evil.example.com", ("quotes removed",)),
    ("`evil.example.com`", None, T.DomainName, "evil.example.com", ("quotes removed",)),
    ("\u201cevil.example.com\u201d", None, T.DomainName, "evil.example.com", ("quotes removed",)),  # “…”
    ("\u2018evil.example.com\u2019", None, T.DomainName, "evil.example.com", ("quotes removed",)),  # ‘…’
    (' "evil[.]example.com " ', None, T.DomainName, "evil.example.com", ("quotes removed",)),  # trimmed both sides
    ("<https://Evil.example.com/x>", None, T.Url, "https://evil.example.com/x", ("angle brackets removed",)),
    (
        "<evil.example.com/x>",
        "url",
        T.Url,
        "http://evil.example.com/x",
        ("angle brackets removed", "http:// added (no scheme)"),
    ),
    ('"8.8.8.8:443"', "ip", T.IpAddress, "8.8.8.8", ("quotes removed", "port 443 removed")),
    (f'"{SHA256.upper()}"', None, T.FileSha256, SHA256, ("quotes removed",)),
    # Not one pair around the whole value: left as it is (rules.py then rejects the placeholder).
    (
        "<https://r20.example.net/tn.jsp?<unique_to_target>>",
        "url",
        T.Url,
        "http://<https://r20.example.net/tn.jsp?<unique_to_target>>",
        ("http:// added (no scheme)",),
    ),
    ("https://a.example/d/<target_email_address>", None, T.Url, "https://a.example/d/<target_email_address>", ()),
    # Hashes and thumbprints written as bytes with separators, in a row typed as a hash: joined, noted.
    (SHA1_COLONS, "CertificateThumbprint", T.CertificateThumbprint, SHA1, ("separators removed",)),  # openssl
    (SHA1_COLONS, "x509-fingerprint-sha1", T.CertificateThumbprint, SHA1, ("separators removed",)),  # MISP
    (
        "\u200e" + SHA1_COLONS.replace(":", " ").lower(),
        "certificate",
        T.CertificateThumbprint,
        SHA1,
        ("separators removed",),
    ),  # copied from the Windows certificate dialog, LEFT-TO-RIGHT MARK in front
    (SHA1_COLONS.replace(":", "-"), "sha1", T.FileSha1, SHA1, ("separators removed",)),
    (SHA256_COLONS, "hash", T.FileSha256, SHA256, ("separators removed",)),  # the length decides
    (MD5_COLONS, "FileMd5", T.FileMd5, MD5, ("separators removed",)),
    (
        SHA256_COLONS,
        "FileMd5",
        T.FileSha256,
        SHA256,
        ("separators removed", "type corrected from FileMd5 to FileSha256"),
    ),
    (
        f'"{SHA1_COLONS}"',
        "CertificateThumbprint",
        T.CertificateThumbprint,
        SHA1,
        ("quotes removed", "separators removed"),
    ),
    # A SHA-256 fingerprint in a thumbprint row: joined, so that rules.py can say the length is wrong.
    (SHA256_COLONS, "CertificateThumbprint", T.CertificateThumbprint, SHA256, ("separators removed",)),
    # Not bytes with one separator throughout: as given (rules.py: not hexadecimal).
    ("2a00:1450:4001:0828:0000:0000:0000:200e", "sha1", T.FileSha1, "2a00:1450:4001:0828:0000:0000:0000:200e", ()),
    ("d41d8cd9-8f00-b204-e980-0998ecf8427e", "md5", T.FileMd5, "d41d8cd9-8f00-b204-e980-0998ecf8427e", ()),
    (SHA1_COLONS.replace(":", "-", 1), "sha1", T.FileSha1, SHA1_COLONS.replace(":", "-", 1).lower(), ()),
]


@pytest.mark.parametrize(("raw", "hint", "typ", "value", "notes"), CASES)
def test_normalise(raw, hint, typ, value, notes):
    assert normalise(raw, hint) == Candidate(typ, value, notes)


# (raw value, hint, expected problem code)  # why
PROBLEMS = [
    ("", None, "empty-value"),
    ("\u00a0\u200b ", None, "empty-value"),  # only invisible characters
    ("C:\\Windows\\x.exe", "filepath", "unsupported-type"),  # MSTIC filepath (file 15)
    ("27E57D84-0000-0000-0000-000000000000", "GUID", "unsupported-type"),
    ("rule x {}", "yara", "unsupported-type"),
    ("HKLM\\x", "regkey", "unsupported-type"),
    ("https://blog.example/report", "link", "unsupported-type"),  # MISP link: a reference, not an IOC
    ("/tbl_add.php", None, "not-an-indicator"),  # Maltrail path-only entry (file 3)
    ("///tbl_add.php", None, "not-an-indicator"),  # three slashes: still no host
    ("\\\\178.23.190.199@80\\share\\gsm.msi", "url_path", "not-a-url"),  # Sophos WebDAV UNC path (file 19)
    ("hello world", None, "not-an-indicator"),
    ("*.evil.example.com", None, "domain-wildcard"),  # a wildcard domain gets the reason, not "not an indicator"
    ("*.", None, "not-an-indicator"),
    ("abc", "hash", "hash-length"),
    ("xn--a.例-", "domain", "idn-invalid"),
    ('""', None, "empty-value"),  # nothing inside the quotes
    ("< >", None, "empty-value"),
    ("<unique_to_target>", None, "not-an-indicator"),  # a bare placeholder is no indicator once unwrapped
    ("\"evil.example.com'", None, "not-an-indicator"),  # quotes that do not match
    ('\u201cevil.example.com"', None, "not-an-indicator"),
    ('"a"b.example"', None, "not-an-indicator"),  # a quote of the same kind inside: not one pair
    ("'evil.example.com", None, "not-an-indicator"),  # no closing quote
]


@pytest.mark.parametrize(("raw", "hint", "code"), PROBLEMS)
def test_normalise_problems(raw, hint, code):
    got = normalise(raw, hint)
    assert isinstance(got, Problem), got
    assert got.code == code


def test_unwrapped_value_problem_keeps_the_note():
    assert normalise("<unique_to_target>") == Problem(
        "not-an-indicator", "angle brackets removed; 'unique_to_target' is not a hash, IP address, domain name or URL"
    )
    assert normalise('"*.evil.example"') == Problem(
        "domain-wildcard",
        "quotes removed; wildcards are not supported ('*.evil.example'); 'evil.example' covers its sub-domains",
    )


def test_untyped_hash_with_separators_is_not_guessed():
    got = normalise(SHA1_COLONS)
    assert isinstance(got, Problem) and got.code == "not-an-indicator"


def test_separated_hash_of_no_hash_length_says_so_after_joining():
    got = normalise("AA:BB:CC", "hash")
    assert isinstance(got, Problem) and got.code == "hash-length"
    assert got.message.startswith("separators removed; ") and got.message.endswith("32, 40 or 64 hex characters, got 6")


def test_unsupported_type_names_the_type():
    got = normalise("x", " commandline ")
    assert got == Problem("unsupported-type", "unsupported type commandline")


def test_split_url_keeps_path_and_query_exactly():
    p = split_url("HTTPS://User@Host.Example:8443/a/../B?x=%2F&y#frag")
    assert (p.scheme, p.userinfo, p.host, p.port, p.rest) == (
        "https",
        "User",
        "Host.Example",
        "8443",
        "/a/../B?x=%2F&y#frag",
    )


_HEXISH = st.sampled_from("0123456789abcdefABCDEFgG \t\n\u0660\uff10x-:")


@given(st.text(_HEXISH, max_size=70) | st.sampled_from(["", " a", "a ", "ab cd", SHA256, SHA256.upper(), SHA1[:-1]]))
def test_hex_digits_is_a_full_match_of_hex(value):
    """The fast hex check (bytes.fromhex) says what `[0-9a-fA-F]+` says, whitespace and look-alike digits too."""
    assert hex_digits(value) == bool(re.fullmatch(r"[0-9a-fA-F]+", value))


def _ipaddress_canonical(text):
    """canonical_ip the plain way: whatever `ipaddress.ip_address` makes of the text, zones refused."""
    if "%" in text:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    return str(addr) if addr.version == 4 else ":".join(f"{int(g, 16):x}" for g in addr.exploded.split(":"))


_addresses = st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i))) | st.integers(0, 2**128 - 1).map(
    lambda i: str(ipaddress.IPv6Address(i))
)


@given(
    st.text(st.sampled_from("0123456789abcdefABCDEF.:%gx/ -\u0660\uff10"), max_size=45)
    | _addresses
    | _addresses.map(lambda a: f" {a}")
    | _addresses.map(str.upper)
)
def test_canonical_ip_says_what_ipaddress_says(text):
    """Its quick refusal of text with other characters, and its cache of the last answers, change no answer of
    `ipaddress.ip_address`."""
    assert canonical_ip(text) == _ipaddress_canonical(text)
    assert canonical_ip(text) == _ipaddress_canonical(text)  # asked again: from the cache


_hints = st.sampled_from(
    ["FileSha256", " sha256 ", "md5", "hash", "Bogus", "", " ", "ip", "URL", "link", "\u200bdomain"]
)


@given(st.sampled_from([SHA256, SHA1.upper(), "evil.example", "8.8.8.8", "x"]), st.none() | _hints)
def test_the_type_hint_memo_changes_no_answer(value, hint):
    """The memo of raw type hints (`_HINTS`, unknown names kept as unsupported) answers as a fresh look-up does."""
    from shared.checks import normalise as module

    memoised = (normalise(value, hint), normalise(value, hint))
    saved = dict(module._HINTS)
    module._HINTS.clear()
    try:
        fresh = normalise(value, hint)
    finally:
        module._HINTS.clear()
        module._HINTS.update(saved)
    assert memoised[0] == memoised[1] == fresh
