"""Telemetry in the pure layers (shared/core/telemetry.py): a run keeps a tally of its entries by status, type
and code only while telemetry is on, and every key is made safe for an attribute before it is sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.core import telemetry as names
from shared.core.model import Outcome, RawRow, Status
from tests.unit.test_process import FakeSubmitter, ip, run


@pytest.fixture
def telemetry_on() -> Iterator[None]:
    class On(names.Telemetry):
        enabled = True

    names.install(On())
    yield
    names.install(None)


def rows() -> list[RawRow]:
    return [RawRow(1, {"value": ip(1)}), RawRow(2, {"value": ip(2)}), RawRow(3, {"value": "not an indicator"}),
            RawRow(4, {"value": ip(1)})]  # fmt: skip


def test_off_the_run_keeps_no_tally() -> None:
    result, _ = run(rows(), submitter=FakeSubmitter())
    assert names.current() is names.NO_TELEMETRY and result.tally is None


def test_on_the_run_tallies_every_entry_once_by_status_type_and_code(telemetry_on: None) -> None:
    result, doc = run(rows(), submitter=FakeSubmitter())
    assert result.tally is not None
    labelled = result.tally.labelled()
    assert sum(labelled.values()) == doc["summary"]["total"] == 4
    assert labelled[("submitted", "IpAddress", "submitted")] == 2
    assert labelled[("duplicate", "IpAddress", "duplicate")] == 1
    (invalid,) = [k for k in labelled if k[0] == "invalid"]
    assert invalid[1] in ("DomainName", "other") and invalid[2] != "invalid"


@pytest.mark.parametrize(
    ("type_", "code", "want"),
    [
        ("FileSha256", "hash-length", ("FileSha256", "hash-length")),
        ("yara", "unsupported-type", ("other", "unsupported-type")),  # an input's own type never passes
        ("evil.example.com", None, ("other", "invalid")),  # no code: the status stands for it
        (None, "Not A Code: evil.example.com", ("other", "other")),
    ],
)
def test_labels_are_defenders_types_and_code_shaped_codes(type_, code, want) -> None:
    tally = names.RunTally()
    tally.add(Outcome(line=1, value="v", type=type_, action=None, status=Status.invalid, code=code))
    assert tally.labelled() == {("invalid", *want): 1}


def test_every_instrument_has_its_attributes_named() -> None:
    assert set(names.METRIC_ATTRIBUTES) == set(names.COUNTERS + names.GAUGES)
    assert set(names.SPAN_ATTRIBUTES) == set(names.SPANS)
    assert all(n.startswith("ioc.") for n in (*names.COUNTERS, *names.GAUGES, *names.SPANS))
