"""The storage adapter on real Azurite: the connection setting, streamed reads pinned to an ETag,
reports uploaded CSV-then-JSON, and the "complete report for this ETag" check (CONTRACT.md "Reports")."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from shared.storage.blobs import (
    BlobChanged,
    ConnectionSettingsError,
    ReportFiles,
    StorageConnection,
    blob_info,
    complete_report_etag,
    has_complete_report,
    open_blob,
    parse_connection,
    report_metadata,
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"IndicatorStorage": "UseDevelopmentStorage=true"},
         StorageConnection(connection_string="UseDevelopmentStorage=true")),
        (
            {
                "IndicatorStorage__blobServiceUri": "https://stdata.blob.core.windows.net/",
                "IndicatorStorage__queueServiceUri": "https://stdata.queue.core.windows.net",
                "IndicatorStorage__credential": "managedidentity",
                "IndicatorStorage__clientId": "00000000-0000-0000-0000-000000000001",
            },
            StorageConnection(
                blob_service_uri="https://stdata.blob.core.windows.net",
                credential="managedidentity",
                client_id="00000000-0000-0000-0000-000000000001",
                queue_service_uri="https://stdata.queue.core.windows.net",
            ),
        ),
        # No __credential: DefaultAzureCredential, as the Functions host does locally. No __queueServiceUri:
        # the queue endpoint of the same account.
        ({"IndicatorStorage__blobServiceUri": "https://x.blob.core.windows.net"},
         StorageConnection(blob_service_uri="https://x.blob.core.windows.net",
                           queue_service_uri="https://x.queue.core.windows.net")),
        ({"IndicatorStorage__accountName": "stdata", "IndicatorStorage__credential": "ManagedIdentity"},
         StorageConnection(blob_service_uri="https://stdata.blob.core.windows.net", credential="ManagedIdentity",
                           queue_service_uri="https://stdata.queue.core.windows.net")),
    ],
)  # fmt: skip
def test_parse_connection_forms(env: dict[str, str], expected: StorageConnection) -> None:
    assert parse_connection(env) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "IndicatorStorage is not set"),
        ({"IndicatorStorage": "  "}, "IndicatorStorage is not set"),
        ({"IndicatorStorage__blobServiceUri": "http://stdata.blob.core.windows.net"}, "must be an https:// URL"),
        ({"IndicatorStorage__blobServiceUri": "https://a", "IndicatorStorage__credential": "key"}, "'managedidentity'"),
        ({"IndicatorStorage__blobServiceUri": "https://a", "IndicatorStorage__clientId": "x"}, "__credential"),
    ],
)
def test_parse_connection_refuses_half_configured(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConnectionSettingsError, match=message):
        parse_connection(env)


def test_describe_has_no_secret() -> None:
    conn = parse_connection({"IndicatorStorage": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=SECRET"})
    assert "SECRET" not in conn.describe()


def test_blob_stream_reads_every_byte_in_chunks(blob_service, fresh_containers) -> None:
    data = os.urandom(9 * 1024 * 1024 + 123)
    bc = blob_service.get_blob_client(fresh_containers.indicators, "dir/big.bin")
    bc.upload_blob(data)
    info = blob_info(bc)
    assert (info.container, info.name, info.size) == (fresh_containers.indicators, "dir/big.bin", len(data))
    with open_blob(bc, info.etag, info.size) as stream:
        digest = hashlib.sha256()
        while block := stream.read(100_000):
            digest.update(block)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_blob_changed_mid_read_raises(blob_service, fresh_containers) -> None:
    bc = blob_service.get_blob_client(fresh_containers.indicators, "moving.txt")
    bc.upload_blob(b"a" * (9 * 1024 * 1024))
    etag = blob_info(bc).etag
    stream = open_blob(bc, etag, 9 * 1024 * 1024)
    assert stream.read(10) == b"a" * 10  # first chunk fetched
    bc.upload_blob(b"b" * (9 * 1024 * 1024), overwrite=True)
    with pytest.raises(BlobChanged, match="changed"):
        while stream.read(1024 * 1024):
            pass


def test_blob_replaced_before_read_raises(blob_service, fresh_containers) -> None:
    bc = blob_service.get_blob_client(fresh_containers.indicators, "early.txt")
    bc.upload_blob(b"one")
    etag = blob_info(bc).etag
    bc.upload_blob(b"two", overwrite=True)
    with pytest.raises(BlobChanged):
        open_blob(bc, etag, 3).read()


def test_reports_upload_json_last_with_etag(blob_service, fresh_containers) -> None:
    container = blob_service.get_container_client(fresh_containers.reports)
    with ReportFiles() as files:
        files.csv.write("line,status\r\n1,submitted\r\n")
        files.json.write('{"schemaVersion": 1}')
        files.upload(container, "a/b.txt.report.json", "a/b.txt.report.csv", metadata=report_metadata('"0x8DABC"'))
    assert container.download_blob("a/b.txt.report.csv").readall() == b"line,status\r\n1,submitted\r\n"
    assert container.download_blob("a/b.txt.report.json").readall() == b'{"schemaVersion": 1}'
    json_props = container.get_blob_client("a/b.txt.report.json").get_blob_properties()
    csv_props = container.get_blob_client("a/b.txt.report.csv").get_blob_properties()
    assert json_props.last_modified >= csv_props.last_modified
    assert json_props.content_settings.content_type.startswith("application/json")
    assert complete_report_etag(container, "a/b.txt.report.json") == "0x8DABC"
    assert has_complete_report(container, "a/b.txt.report.json", '"0x8DABC"')
    assert not has_complete_report(container, "a/b.txt.report.json", '"0x8DOTHER"')
    assert not has_complete_report(container, "missing.report.json", '"0x8DABC"')


def test_reports_upload_the_html_page_between_csv_and_json(blob_service, fresh_containers) -> None:
    """[html] `<path>.report.html`, `text/html; charset=utf-8`, uploaded after the CSV and before the JSON."""
    container = blob_service.get_container_client(fresh_containers.reports)
    with ReportFiles() as files:
        files.csv.write("line,status\r\n")
        files.html.write("<!DOCTYPE html><title>é</title>")
        files.json.write("{}")
        files.upload(container, "a/b.txt.report.json", "a/b.txt.report.csv", metadata=report_metadata('"0x8DABC"'))
    props = {n: container.get_blob_client(f"a/b.txt.report.{n}").get_blob_properties() for n in ("csv", "html", "json")}
    assert container.download_blob("a/b.txt.report.html").readall() == "<!DOCTYPE html><title>é</title>".encode()
    assert props["html"].content_settings.content_type == "text/html; charset=utf-8"
    assert props["csv"].last_modified <= props["html"].last_modified <= props["json"].last_modified
    assert not props["html"].metadata  # the completion marker is the JSON's alone
    with ReportFiles() as files:  # a writer given no page: no page uploaded
        files.json.write("{}")
        files.upload(container, "c.report.json", "c.report.csv")
    assert [b.name for b in container.list_blobs(name_starts_with="c.")] == ["c.report.csv", "c.report.json"]


def test_large_report_spools_to_disk_and_uploads(blob_service, fresh_containers) -> None:
    container = blob_service.get_container_client(fresh_containers.reports)
    line = "1,submitted,FileSha256," + "a" * 64 + ",Audit,1,\r\n"
    with ReportFiles() as files:
        for _ in range(100_000):  # ~10 MB: past the spool threshold
            files.csv.write(line)
        files.json.write("{}")
        files.upload(container, "big.report.json", "big.report.csv")
    props = container.get_blob_client("big.report.csv").get_blob_properties()
    assert props.size == len(line) * 100_000


def test_service_uri_with_a_sas_is_never_echoed() -> None:
    from shared.app.health import health_answer
    from shared.storage.blobs import ConnectionSettingsError, parse_connection

    for uri in (
        "http://acct.blob.core.windows.net/?sv=2024&sig=SECRETSAS",
        "https://u:SECRETPW@acct.blob.core.windows.net",
    ):
        env = {"IndicatorStorage__blobServiceUri": uri, "IndicatorStorage__credential": "managedidentity"}
        try:
            text = parse_connection(env).describe()
        except ConnectionSettingsError as e:
            text = str(e)
        assert "SECRET" not in text and "acct.blob.core.windows.net" in text
        assert "SECRET" not in json.dumps(health_answer(env).body)
