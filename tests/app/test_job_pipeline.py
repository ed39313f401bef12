"""One job pipeline: the blob drop, the HTTP import and the CLI all run `pipeline.job.run_job`; an input's rows
are read at most twice (a ranking pass only when the input may not fit the room, then processing), and an
HTTP body is decoded once, by its checks, whatever the job does with it afterwards.

Through the real triggers on Azurite and the Defender and identity emulators.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import shared.pipeline.job as job_module
import shared.readers as readers_module
import shared.readers._json as json_reader
from shared.app import attempt, cli
from shared.storage.jobs import JobStore
from tests.app.conftest import import_now
from tests.app.test_blob_import import upload
from tests.app.test_http_import import post
from tests.support.stack import public_ip


class Counted:
    """Spies on what the pipeline calls: jobs run, reader passes over an input, JSON walks, saved-row passes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.jobs: list[str] = []
        self.reads: list[str] = []
        self.walks = 0
        self.saved_passes = 0
        real_run, real_read, real_walk = job_module.run_job, readers_module.read, json_reader.walk
        real_iter = job_module.SavedItems.__iter__
        real_rows = JobStore.rows
        self.row_loads = 0

        def run_job(job: job_module.Job, **kw: Any) -> job_module.JobResult:
            self.jobs.append(job.name)
            return real_run(job, **kw)

        def read(stream: Any, name: str, **kw: Any) -> Any:
            self.reads.append(name)
            return real_read(stream, name, **kw)

        def walk(read_text: Any, **kw: Any) -> Iterator[Any]:
            self.walks += 1
            return real_walk(read_text, **kw)

        def saved_iter(saved: job_module.SavedItems) -> Iterator[Any]:
            self.saved_passes += 1
            return real_iter(saved)

        def rows(store: JobStore, name: str) -> Iterator[Any]:
            self.row_loads += 1
            return real_rows(store, name)

        for target in (job_module, attempt):
            monkeypatch.setattr(target, "run_job", run_job)
        monkeypatch.setattr(readers_module, "read", read)
        monkeypatch.setattr(json_reader, "walk", walk)
        monkeypatch.setattr(job_module.SavedItems, "__iter__", saved_iter)
        monkeypatch.setattr(JobStore, "rows", rows)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counted:
    return Counted(monkeypatch)


def json_doc(n: int) -> bytes:
    return json.dumps({"Indicators": [{"indicatorValue": public_ip(i), "indicatorType": "IpAddress"}
                                      for i in range(n)]}, indent=1).encode()  # fmt: skip


@pytest.mark.parametrize(
    ("reserve", "reads", "why"),
    [
        ("500", 1, "a small file fits the room: no ranking pass"),
        ("14990", 2, "room for 10, the file may hold more: ranked in a first pass, then processed"),
    ],
)
def test_blob_drop_runs_the_job_and_reads_the_blob_at_most_twice(
    counted, blob_service, app_env, make_runtime, defender, reserve, reads, why, jobs_host
):
    rt = make_runtime(CAPACITY_RESERVE=reserve)
    bc = upload(blob_service, app_env["INDICATORS_CONTAINER"], "feed.json", json_doc(40))
    run = import_now(bc, runtime=rt, host=jobs_host)
    assert run.status in ("completed", "completed_with_errors"), why
    assert counted.jobs == ["feed.json"]
    assert counted.reads == ["feed.json"] * reads, why
    assert counted.walks == reads  # one decode per pass: no separate validating walk


@pytest.mark.parametrize(
    ("reserve", "saved_passes"),
    # The rows decoded at the check are saved once (one pass), loaded once by the worker, and passed over
    # once more for processing, twice when a ranking pass is needed.
    [("500", 2), ("14990", 3)],
)
def test_http_body_is_decoded_once_by_its_checks(counted, functions, make_runtime, defender, reserve, saved_passes):
    make_runtime(CAPACITY_RESERVE=reserve)
    status, body, _ = post(functions, json_doc(40))
    assert status == 200
    assert len(body["value"]) == 40
    assert counted.jobs == ["http.json"]
    assert counted.walks == 1  # the check's decode is the only one
    assert counted.reads == []  # the job never reads the body again
    assert counted.saved_passes == saved_passes
    assert counted.row_loads == 1


def test_http_csv_body_is_read_once(counted, functions, make_runtime, defender):
    make_runtime()
    body = ("ip\n" + "".join(f"{public_ip(i)}\n" for i in range(5))).encode()
    status, answer, _ = post(functions, body, ctype="text/csv")
    assert status == 200 and len(answer["value"]) == 5
    assert counted.reads == ["http.csv"] and counted.saved_passes == 2 and counted.row_loads == 1  # save, process


def test_cli_runs_the_job(counted, tmp_path):
    f = tmp_path / "list.json"
    f.write_bytes(json_doc(3))
    out: list[str] = []
    assert cli.main(["validate", str(f), "--report-dir", str(tmp_path)], env={}, printer=out.append) == 0
    assert counted.jobs == ["list.json"] and counted.reads == ["list.json"] and counted.walks == 1
