"""Report names past Azure's 1,024-character blob-name limit (issue "Hostile and unlucky input"): they become
`<first part>…<sha256[:16]>.report.json`, the report names the original, and the idempotency lookup uses the
same rule (a redelivered event submits nothing)."""

from __future__ import annotations

import hashlib
import json

from shared.pipeline.reports import MAX_BLOB_NAME, report_names, report_stem
from tests.app.test_blob_import import deliver, import_calls, upload


def test_short_names_are_kept_whole():
    assert report_names("feeds/a.csv") == ("feeds/a.csv.report.json", "feeds/a.csv.report.csv")
    assert report_stem("x" * (MAX_BLOB_NAME - 12)) == ("x" * (MAX_BLOB_NAME - 12), False)


def test_long_names_are_shortened_with_a_hash_of_the_whole_name():
    long = "feeds/" + "a" * 1010 + ".csv"
    stem, shortened = report_stem(long)
    assert shortened and stem.startswith("feeds/aaaa") and stem.endswith(hashlib.sha256(long.encode()).hexdigest()[:16])
    assert "…" in stem
    for name in (*report_names(long), stem + ".report.html"):
        assert len(name) <= MAX_BLOB_NAME
    other = "feeds/" + "a" * 1010 + ".txt"  # the same first part: a different report
    assert report_stem(other)[0] != stem


def test_a_blob_with_a_name_past_the_limit_gets_its_report_and_is_imported_once(
    blob_service, app_env, make_runtime, defender
):
    make_runtime()
    name = "feeds/" + "n" * 1005 + ".txt"  # the blob's own name fits; its report names would not
    client = upload(blob_service, app_env["INDICATORS_CONTAINER"], name, b"evil-long-name.example.com\n")
    deliver(client, app_env)
    json_name, csv_name = report_names(name)
    reports = blob_service.get_container_client(app_env["REPORTS_CONTAINER"])
    doc = json.loads(reports.download_blob(json_name).readall())
    assert doc["source"]["name"] == name and doc["source"]["reportNameShortened"] is True
    assert doc["summary"]["submitted"] == 1
    assert reports.get_blob_client(csv_name).exists()
    deliver(client, app_env)  # the same event again: the lookup finds the shortened report
    assert len(import_calls(defender)) == 1
