"""Plain-text and Markdown readers: indicator lines read, prose Ignored and never mined (CONTRACT.md "Inputs")."""

from __future__ import annotations

import io

from shared.core.model import FIELD_VALUE, FileProblem, Ignored, RawRow
from shared.readers import read


def items(data: bytes, name: str = "list.txt") -> tuple[str, list]:
    r = read(io.BytesIO(data), name)
    return r.format, list(r)


def values(out: list) -> list[tuple[int, str]]:
    return [(i.line, i.value) for i in out if isinstance(i, RawRow) and not i.invalid]


def test_loki_value_semicolon_comment_and_comment_lines():
    h = "A" * 32
    data = f"# LOKI list\n\n{h};Sample from hxxp://ref[.]example/report\n// other comment\n1.2.3.4;65\n".encode()
    fmt, out = items(data)
    assert fmt == "text"
    # The reference URL in the comment never becomes an indicator.
    assert out == [RawRow(3, {FIELD_VALUE: h}), RawRow(5, {FIELD_VALUE: "1.2.3.4"})]


def test_inline_hash_comment_tabs_and_no_final_newline():
    data = "xn--ortakoporotr-fjb.com    # was: ortakoporotör.com\nbad.example\t\nlast.example".encode()
    _, out = items(data)
    assert values(out) == [(1, "xn--ortakoporotr-fjb.com"), (2, "bad.example"), (3, "last.example")]


def test_defanged_tokens_are_read_and_passed_as_written():
    data = b"hxxps://evil[.]example/a?b=1&c=2\n2.16.1[.]134\nbad(.)example\nx{.}example\n2604:a880:400:d1:0:1:6f4c[:]a001\n"
    _, out = items(data)
    assert values(out) == [
        (1, "hxxps://evil[.]example/a?b=1&c=2"),
        (2, "2.16.1[.]134"),
        (3, "bad(.)example"),
        (4, "x{.}example"),
        (5, "2604:a880:400:d1:0:1:6f4c[:]a001"),
    ]


def test_ports_and_scheme_less_paths_pass_the_full_token():
    _, out = items(b"103.15.28.208|443\n192.0.2.1:8080\nevil.example/path/x.php\n")
    assert values(out) == [(1, "103.15.28.208|443"), (2, "192.0.2.1:8080"), (3, "evil.example/path/x.php")]


def test_path_only_trail_entries_are_invalid_rows():
    _, out = items(b"/tbl_add.php\n")
    assert out[0].value == "/tbl_add.php" and out[0].invalid


def test_wildcard_domain_lines_are_entries_so_validation_can_say_why():
    """`*.evil.example` alone on its line is meant as an indicator: an entry (rejected later), not prose."""
    _, out = items(b"*.evil.example.com\nwildcards like *.evil.example.com are bad\n")
    assert [(i.line, i.value) for i in out if isinstance(i, RawRow)] == [(1, "*.evil.example.com")]
    assert [i.line for i in out if isinstance(i, Ignored)] == [2]


def test_wrapped_token_alone_on_a_line_is_an_entry_a_quoted_sentence_is_prose():
    """Quotes or angle brackets around one token (`<URL>` as e-mail clients write it) are passed on as written."""
    data = (
        '"evil.example.com"\n'
        "'8.8.8.8'\n"
        "\u201cevil[.]example.net\u201d\n"
        "- <https://evil.example.com/x>\n"
        '"The domain evil.example.com was spoofed."\n'
        "<unique_to_target>\n"
        '"evil.example.org\n'
        "<user@example.com>\n"
    ).encode()
    _, out = items(data)
    assert values(out) == [
        (1, '"evil.example.com"'),
        (2, "'8.8.8.8'"),
        (3, "\u201cevil[.]example.net\u201d"),
        (4, "<https://evil.example.com/x>"),
    ]
    assert [i.line for i in out if isinstance(i, Ignored)] == [5, 6, 7]
    assert [(i.line, i.invalid) for i in out if isinstance(i, RawRow) and i.invalid] == [
        (8, "an email address is not a Defender indicator type")
    ]


def test_wrapped_tokens_in_markdown_table_cells():
    _, out = items(b'| "evil.example.com" | <https://evil.example.net/x> | note |\n', "iocs.md")
    assert values(out) == [(1, '"evil.example.com"'), (1, "<https://evil.example.net/x>")]


def test_prose_lines_are_ignored_never_mined():
    data = (
        b"Report about things\n"
        b"- 208.109.26[.]144 port 80 - projeto-nota[.]com - GET /?cid=1\n"
        b"The domain legit.example was spoofed.\n"
        b"payload.exe\n"
    )
    _, out = items(data)
    assert out[:4] == [Ignored(1), Ignored(2), Ignored(3), Ignored(4)]
    # No entry at all, but prose that mentions indicators: a file-level error says so (issue "Nothing silently
    # dropped": no silent zero).
    assert len(out) == 5 and isinstance(out[4], FileProblem) and "inside sentences" in out[4].message


def test_labelled_indicator_lines_are_read_other_labels_are_prose():
    data = (
        b"- SHA256 hash: "
        + b"e" * 64
        + b"\n- File location: hxxp://dl[.]example/a.zip\n- File name: a.zip\n- From: x@y.example\n"
    )
    _, out = items(data)
    assert values(out) == [(1, "e" * 64), (2, "hxxp://dl[.]example/a.zip")]
    assert out[2:] == [Ignored(3), Ignored(4)]


def test_reference_sections_are_not_indicators():
    data = b"REFERENCE:\n\n- https://social.example/status/1\n\nIOCS:\n\n- https://evil.example/x\n"
    _, out = items(data)
    assert values(out) == [(7, "https://evil.example/x")]
    assert Ignored(3, "reference section") in out


def test_crlf_and_invalid_utf8_spoil_only_their_own_line():
    data = b"C:\\Users\\Segun\x87a\\x.dll is bad\r\nevil.example\r\n"
    _, out = items(data)
    assert out == [Ignored(1), RawRow(2, {FIELD_VALUE: "evil.example"})]


def test_markdown_bullets_code_blocks_tables_and_headings():
    h1, h2, h3 = "a" * 32, "b" * 40, "c" * 64
    data = (
        "# Report\n"
        "\n"
        "Some prose naming legit.example in a sentence.\n"
        "\n"
        "## IPs\n"
        "```\n"
        "192.0.2.1\n"
        "192.0.2.2 \n"
        "```\n"
        "- `evil.example`\n"
        "* hxxp://bad[.]example/x\n"
        "1. 192.0.2.3\n"
        "\n"
        "| MD5 | SHA1 | SHA256 |\n"
        "| :--- | :--- | :--- |\n"
        f"| {h1} | {h2} | {h3} |\n"
        "\n"
        "## References\n"
        "- https://nvd.example/CVE-1\n"
        "- [link](https://wiz.example/blog)\n"
        "```\n"
        "victim@mail.example\n"
        "```\n"
    ).encode()
    fmt, out = items(data, "README.md")
    assert fmt == "markdown"
    assert values(out) == [
        (7, "192.0.2.1"),
        (8, "192.0.2.2"),
        (10, "evil.example"),
        (11, "hxxp://bad[.]example/x"),
        (12, "192.0.2.3"),
        (16, h1),
        (16, h2),
        (16, h3),
    ]
    ignored = [i.line for i in out if isinstance(i, Ignored)]
    assert ignored == [1, 3, 5, 6, 9, 14, 15, 18, 19, 20, 21, 23]
    email = [i for i in out if isinstance(i, RawRow) and i.invalid]
    assert [(e.line, e.value) for e in email] == [(22, "victim@mail.example")]


def test_overlong_line_is_ignored_and_reading_goes_on():
    data = b"x" * (2 * 1024 * 1024) + b"\nevil.example\n"
    _, out = items(data)
    assert out == [Ignored(1, "line too long to be an indicator line"), RawRow(2, {FIELD_VALUE: "evil.example"})]


def test_unknown_extension_and_no_extension_are_text():
    for name in ("iocs", "samples.sha256", "x.lst"):
        fmt, out = items(b"d" * 64 + b"\n", name)
        assert fmt == "text" and values(out) == [(1, "d" * 64)]
