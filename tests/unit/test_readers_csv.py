"""CSV readers: the Defender portal template, generic IOC CSVs, MISP CSV (CONTRACT.md "Inputs")."""

from __future__ import annotations

import io

from shared.core.model import (
    FIELD_ACTION,
    FIELD_CATEGORY,
    FIELD_DESCRIPTION,
    FIELD_EXPIRATION,
    FIELD_SEVERITY,
    FIELD_TITLE,
    FIELD_TYPE,
    FIELD_VALUE,
    FileProblem,
    Ignored,
    RawRow,
)
from shared.readers import read

TEMPLATE = (
    "IndicatorType,IndicatorValue,ExpirationTime,Action,Severity,Title,Description,"
    "RecommendedActions,RbacGroups,Category,MitreTechniques,GenerateAlert"
)


def items(data: bytes, name: str = "in.csv") -> tuple[str, list]:
    r = read(io.BytesIO(data), name)
    return r.format, list(r)


def rows(data: bytes, name: str = "in.csv") -> list[RawRow]:
    _, out = items(data, name)
    assert all(isinstance(i, RawRow) for i in out), out
    return out


def test_defender_template_with_bom_crlf_and_quoted_newline_keeps_record_start_lines():
    data = (
        "\ufeff" + TEMPLATE + "\r\n"
        'DomainName,evil.example ,,Block ,High,T1,"first line\nsecond line",,,Phishing,,FALSE\r\n'
        "FileSha256,AB" + "c" * 62 + ",2030-01-01T00:00:00Z,Audit,Low,T2,d,,,,,TRUE\r\n"
    ).encode()
    fmt, out = items(data)
    assert fmt == "defender-csv"
    assert [r.line for r in out] == [2, 4]
    first = out[0].fields
    # Raw values: trailing spaces kept, the validator trims.
    assert first[FIELD_VALUE] == "evil.example "
    assert first[FIELD_TYPE] == "DomainName"
    assert first[FIELD_ACTION] == "Block "
    assert first[FIELD_DESCRIPTION] == "first line\nsecond line"
    assert first[FIELD_CATEGORY] == "Phishing"
    assert FIELD_EXPIRATION not in first  # empty cells are not fields
    assert out[1].fields[FIELD_EXPIRATION] == "2030-01-01T00:00:00Z"


def test_defender_template_any_order_any_subset_case_insensitive_header():
    data = b"indicatorvalue,SEVERITY,indicatortype\nevil.example,High,DomainName\n"
    fmt, out = items(data)
    assert fmt == "defender-csv"
    assert out == [RawRow(2, {FIELD_VALUE: "evil.example", FIELD_SEVERITY: "High", FIELD_TYPE: "DomainName"})]


def test_generic_value_and_type_columns_and_description():
    data = b"value,type,description\n1.2.3.4,ipaddress,C2\nbad.example,hostname,\n"
    fmt, out = items(data)
    assert fmt == "csv"
    assert [(r.value, r.fields[FIELD_TYPE], r.fields.get(FIELD_DESCRIPTION)) for r in out] == [
        ("1.2.3.4", "ipaddress", "C2"),
        ("bad.example", "hostname", None),
    ]


def test_hash_columns_give_one_row_each_with_the_same_line():
    md5, sha1, sha256 = "a" * 32, "b" * 40, "c" * 64
    out = rows(f"md5,sha1,sha256\r\n{md5},{sha1},{sha256}\r\n{md5},,\r\n".encode())
    assert [(r.line, r.value, r.fields[FIELD_TYPE]) for r in out] == [
        (2, md5, "md5"),
        (2, sha1, "sha1"),
        (2, sha256, "sha256"),
        (3, md5, "md5"),
    ]


def test_cell_of_comma_separated_hashes_gives_each_hash():
    cell = ",".join(["1" * 40, "2" * 64, "3" * 32])
    out = rows(f'value,type,description\n"{cell}",file,sample\n'.encode())
    assert [r.value for r in out] == ["1" * 40, "2" * 64, "3" * 32]
    assert {r.line for r in out} == {2}
    assert {r.fields[FIELD_TYPE] for r in out} == {"file"}


def test_url_with_commas_is_not_split():
    out = rows(b'url\n"http://x.example/a?b=1,2"\n')
    assert [r.value for r in out] == ["http://x.example/a?b=1,2"]


def test_typed_extra_columns_beside_the_value_column_add_indicators():
    data = "\ufeffIoC,Type,SHA1,MD5,C2Domain,Category\nh.example,Domain,,,c2.example,Email Url\n".encode()
    out = rows(data)
    assert [(r.value, r.fields[FIELD_TYPE]) for r in out] == [("h.example", "Domain"), ("c2.example", "domain")]
    assert FIELD_CATEGORY not in out[0].fields  # no guessed category outside the Defender template


def test_semicolon_separated_hosts_in_one_cell_give_each_host():
    data = b"IoC,Type,C2Domain\nh.example,Domain,a.example;b.example; 192.0.2.7\nhttp://x.example/a;b=1,Url,\n"
    out = rows(data)
    assert [(r.line, r.value) for r in out] == [
        (2, "h.example"),
        (2, "a.example"),
        (2, "b.example"),
        (2, "192.0.2.7"),
        (3, "http://x.example/a;b=1"),  # a URL with `;` in its path stays one value
    ]


def test_type_specific_column_wins_over_plain_type():
    data = b"IoC,IoC_Type,Type,ExpirationDateTime\nx.example,domainname,Rapid Release TI,12/7/2025\n"
    (row,) = rows(data)
    assert row.fields[FIELD_TYPE] == "domainname"
    assert row.fields[FIELD_EXPIRATION] == "12/7/2025"


def test_sophos_layout_and_pseudo_record_is_ignored():
    data = (
        "\ufeffIndicator,Data,Note\r\n"
        "Description,https://blog.example/post,About this campaign\r\n"
        "IP,192.0.2.1,C2 server\r\n"
        "url_path,\\\\192.0.2.2@80\\share\\x.msi,\r\n"
    ).encode()
    fmt, out = items(data)
    assert fmt == "csv"
    assert out[0] == Ignored(2, "not an indicator record: Description")
    assert [(r.value, r.fields[FIELD_TYPE]) for r in out[1:]] == [
        ("192.0.2.1", "IP"),
        ("\\\\192.0.2.2@80\\share\\x.msi", "url_path"),
    ]
    assert out[1].fields[FIELD_DESCRIPTION] == "C2 server"


def test_misp_csv_composites_to_ids_and_unsupported_types():
    yara = '"rule x {\r\n strings: $a = ""b""\n condition: $a }"'
    data = (
        "uuid,event_id,category,type,value,comment,to_ids,date\r\n"
        'u1,1,Network activity,domain|ip,"evil.example|192.0.2.7","C2",1,20161107\r\n'
        f"u2,1,Artifacts dropped,yara,{yara},,1,20161107\r\n"
        "u3,1,Payload delivery,filename|sha256,a.exe|" + "d" * 64 + ",,True,20161107\r\n"
        "u4,1,Network activity,ip-dst|port,192.0.2.9|443,,0,20161107\r\n"
        "u5,1,Network activity,ip-dst,192.0.2.10,,False,20161107\r\n"
    ).encode()
    fmt, out = items(data)
    assert fmt == "misp-csv"
    got = [(r.line, r.value, r.fields.get(FIELD_TYPE), r.invalid, r.skip) for r in out]
    assert got[0:2] == [(2, "evil.example", "domain", None, None), (2, "192.0.2.7", "ip", None, None)]
    assert got[2][0] == 3 and got[2][2] == "yara" and got[2][1].startswith("rule x")
    assert got[2][3] is not None and "yara" in got[2][3]
    assert got[3] == (6, "d" * 64, "sha256", None, None)
    assert got[4] == (7, "192.0.2.9", "ip-dst", None, "MISP to_ids is false")
    assert got[5][4] == "MISP to_ids is false"
    assert out[0].fields[FIELD_DESCRIPTION] == "C2"


def test_abuse_ch_commented_header():
    data = (
        b"#####\n# URLhaus dump\n# Terms: https://terms.example/\n#\n"
        b"# id,dateadded,url,url_status,threat\n"
        b'"1","2022-09-13","http://192.0.2.1:8080/i","online","malware"\n'
        b'"2","2022-09-13","http://bad.example/x.sh","offline","malware"\n'
    )
    fmt, out = items(data)
    assert fmt == "csv"
    assert [(r.line, r.value, r.fields[FIELD_TYPE]) for r in out] == [
        (6, "http://192.0.2.1:8080/i", "url"),
        (7, "http://bad.example/x.sh", "url"),
    ]


def test_comment_lines_between_records_are_skipped_but_not_inside_quotes():
    data = b'value,description\n# a comment\nx.example,"one\n# not a comment"\ny.example,\n'
    out = rows(data)
    assert [(r.line, r.value) for r in out] == [(3, "x.example"), (5, "y.example")]
    assert out[0].fields[FIELD_DESCRIPTION] == "one\n# not a comment"


def test_a_line_that_is_not_utf8_is_read_as_windows_1252_with_a_note():
    """Issue "Hostile and unlucky input": Latin-1 must not reach Defender as `caf\ufffd` without a word."""
    data = b"value,description\nbad\xff.example,x\ngood.example,caf\xc3\xa9\nlatin.example,caf\xe9\n"
    out = rows(data)
    assert out[0].value == "bad\xff.example" and out[0].note == "line read as Windows-1252: it is not UTF-8"
    assert out[1].value == "good.example" and out[1].fields[FIELD_DESCRIPTION] == "café" and out[1].note is None
    assert out[2].fields[FIELD_DESCRIPTION] == "café" and out[2].note


def test_tsv_by_name_and_by_content():
    for name in ("in.tsv", "in.txt"):
        fmt, out = items(b"indicator\ttype\tnote\nx.example\tdomain\thi\n", name)
        assert fmt == "tsv"
        assert [(r.value, r.fields[FIELD_TYPE]) for r in out] == [("x.example", "domain")]


def test_txt_with_a_recognised_header_is_csv():
    fmt, out = items(b"ioc,ioc_type\n1.2.3.4,ip\n", "list.txt")
    assert fmt == "csv"
    assert out == [RawRow(2, {FIELD_VALUE: "1.2.3.4", FIELD_TYPE: "ip"})]


def test_csv_without_a_known_header_is_read_as_a_list_of_first_fields():
    fmt, out = items(b"1.2.3.4,first seen today\nhello,world\n", "list.csv")
    assert fmt == "text"
    assert out == [RawRow(1, {FIELD_VALUE: "1.2.3.4"}), Ignored(2)]


def test_row_without_a_value_is_an_invalid_entry():
    out = rows(b"IndicatorType,IndicatorValue,Title\nDomainName,,t\n")
    assert out[0].invalid == "no indicator value in this row"
    assert out[0].fields[FIELD_TITLE] == "t"


def test_blank_records_are_skipped():
    assert rows(b"value\n\n,\nx.example\n") == [RawRow(4, {FIELD_VALUE: "x.example"})]


def test_unterminated_quote_does_not_raise():
    fmt, out = items(b'value,description\nx.example,"open\n')
    assert fmt == "csv"
    assert all(isinstance(i, RawRow | FileProblem) for i in out)


def test_quote_left_open_says_the_rest_of_the_file_was_read_as_one_record():
    # The csv module takes every line after an unclosed quote as part of that field, silently: the two
    # rows below it would vanish into x.example's description without the file-level problem.
    _, out = items(b'value,description\nx.example,"open\n8.8.8.8,x\ny.example,y\n')
    assert [i.value for i in out if isinstance(i, RawRow)] == ["x.example"]
    (problem,) = [i for i in out if isinstance(i, FileProblem)]
    assert problem.line == 2 and "never closed" in problem.message and "lines 2 to 4" in problem.message


def test_quoted_line_breaks_closed_at_the_end_of_the_file_are_no_problem():
    for data in (
        b'value,description\nx.example,"one\ntwo"\n',
        b'value,description\nx.example,"one\ntwo"',
        b'value\r\n"a\r\nb"\r\n',
    ):
        _, out = items(data)
        assert not [i for i in out if isinstance(i, FileProblem)], out
