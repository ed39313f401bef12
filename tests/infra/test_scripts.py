"""The deployment scripts parse, and answer --help and bad arguments without the Azure CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.iac import INFRA

SCRIPTS = sorted((INFRA / "scripts").glob("*.sh"))
BASH = shutil.which("bash") or "/bin/bash"


def run(script: Path, *args: str, path: str) -> subprocess.CompletedProcess[str]:
    # PATH points at an empty directory: no az, so nothing can reach Azure.
    return subprocess.run(
        [BASH, str(script), *args],
        capture_output=True,
        text=True,
        env={"PATH": path, "HOME": path},
        timeout=30,
        check=False,
    )


def test_both_scripts_exist() -> None:
    assert {s.name for s in SCRIPTS} == {"grant-defender-permission.sh", "create-event-subscription.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_syntax_and_strict_mode(script: Path) -> None:
    subprocess.run([BASH, "-n", str(script)], check=True, timeout=30)
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script.read_text()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_works_without_azure_cli(script: Path, flag: str, tmp_path: Path) -> None:
    result = run(script, flag, path=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: {script.name} ")
    assert result.stderr == ""


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_missing_arguments_are_usage_errors(script: Path, tmp_path: Path) -> None:
    result = run(script, path=str(tmp_path))
    assert result.returncode == 2
    assert "Usage:" in result.stderr and "error:" in result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_unknown_argument_is_a_usage_error(script: Path, tmp_path: Path) -> None:
    result = run(script, "--bogus", path=str(tmp_path))
    assert result.returncode == 2
    assert "unknown argument: --bogus" in result.stderr


@pytest.mark.parametrize(
    ("script_name", "args"),
    [
        ("grant-defender-permission.sh", ["--principal-id", "00000000-0000-0000-0000-000000000001"]),
        ("create-event-subscription.sh", ["--resource-group", "rg", "--base-name", "iocimp7f3k"]),
    ],
)
def test_valid_arguments_without_azure_cli_say_what_is_missing(
    script_name: str, args: list[str], tmp_path: Path
) -> None:
    result = run(INFRA / "scripts" / script_name, *args, path=str(tmp_path))
    assert result.returncode == 127
    assert "Azure CLI (az) is not on PATH" in result.stderr


def test_event_subscription_script_checks_its_numbers(tmp_path: Path) -> None:
    script = INFRA / "scripts" / "create-event-subscription.sh"
    result = run(script, "--resource-group", "rg", "--base-name", "x1y", "--event-ttl", "2000", path=str(tmp_path))
    assert result.returncode == 2
    assert "--event-ttl must be 1 to 1440" in result.stderr


def test_grant_script_refuses_two_ways_of_naming_the_identity(tmp_path: Path) -> None:
    script = INFRA / "scripts" / "grant-defender-permission.sh"
    args = ["--principal-id", "p", "--identity-name", "id-x", "--resource-group", "rg"]
    result = run(script, *args, path=str(tmp_path))
    assert result.returncode == 2
    assert "not both" in result.stderr
