"""`python -m shared submit` with the quota steward (issue 6) against the Defender and identity emulators:
resubmits are `unchanged`, `--feed --sync` deletes the feed's stale indicators, a dry run lists only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.app.cli import build_parser, main
from tests.support.stack import DEFENDER_SCOPE, hex_value

pytestmark = pytest.mark.integration


@pytest.fixture
def env(defender: Any, identity_env: Any) -> dict[str, str]:
    return {
        "DEFENDER_API_URL": defender.base_url,
        "DEFENDER_TOKEN_SCOPE": DEFENDER_SCOPE,
        "DEFENDER_REQUEST_TIMEOUT_SECONDS": "2",
    }


def submit(tmp_path: Path, env: dict[str, str], values: list[str], *args: str) -> tuple[int, dict[str, Any], list[str]]:
    src = tmp_path / "feed.txt"
    src.write_text("\n".join(values) + "\n", encoding="utf-8")
    out: list[str] = []
    code = main(["submit", str(src), "--report-dir", str(tmp_path / "r"), *args], env=env, printer=out.append)
    report = json.loads((tmp_path / "r" / "feed.txt.report.json").read_text(encoding="utf-8"))
    return code, report, out


def methods(defender: Any) -> list[tuple[str, str]]:
    return [(c["method"], c["path"]) for c in defender.admin.calls()]


def test_resubmitting_a_file_is_unchanged_without_an_import_call(tmp_path: Path, env: dict[str, str], defender) -> None:
    values = [hex_value(f"cli-st-{i}") for i in range(5)]
    code, first, _ = submit(tmp_path, env, values)
    assert code == 0 and first["summary"]["submitted"] == 5
    n = len(defender.admin.calls())
    code, second, out = submit(tmp_path, env, values)
    assert code == 0
    assert [e["status"] for e in second["indicators"]] == ["unchanged"] * 5
    assert methods(defender)[n:] == [("GET", "/api/indicators")] * 2
    assert any(line.startswith("  tenant: 5 active indicators before, 5 after") for line in out)


def test_feed_sync_deletes_the_feeds_stale_indicators(tmp_path: Path, env: dict[str, str], defender) -> None:
    defender.admin.seed({"indicatorValue": hex_value("cli-hand"), "indicatorType": "FileSha256"})
    values = [hex_value(f"cli-feed-{i}") for i in range(6)]
    assert submit(tmp_path, env, values, "--feed", "cli", "--sync")[0] == 0
    code, rep, _ = submit(tmp_path, env, values[:4], "--feed", "cli", "--sync")
    assert code == 0 and rep["tenant"]["deleted"] == 2 and rep["summary"]["deleteCalls"] == 1
    assert {r["indicatorValue"] for r in defender.admin.indicators()} == {*values[:4], hex_value("cli-hand")}


def test_dry_run_lists_the_tenant_and_changes_nothing(tmp_path: Path, env: dict[str, str], defender) -> None:
    values = [hex_value(f"cli-dry-{i}") for i in range(3)]
    submit(tmp_path, env, values[:1])
    n = len(defender.admin.calls())
    code, rep, _ = submit(tmp_path, env, values, "--dry-run")
    assert code == 0 and rep["dryRun"] is True
    assert [e["status"] for e in rep["indicators"]] == ["unchanged", "skipped", "skipped"]
    assert methods(defender)[n:] == [("GET", "/api/indicators")] * 2


def test_sync_without_feed_is_a_usage_error(tmp_path: Path, env: dict[str, str], defender) -> None:
    src = tmp_path / "x.txt"
    src.write_text("evil.example.com\n", encoding="utf-8")
    out: list[str] = []
    assert main(["submit", str(src), "--sync"], env=env, printer=out.append) == 2
    assert "--sync needs --feed" in out[0]
    assert defender.admin.calls() == []


def test_help_says_the_cli_takes_no_lock() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = sub.choices["submit"].format_help()  # type: ignore[attr-defined]
    assert "NO tenant lock" in text and "one-off" in text
