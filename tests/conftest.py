"""Test-wide fixtures. Stack fixtures (Azurite, the Defender and identity emulators) live in
tests/support/ and are loaded as plugins so every layer can use them."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The team kit sits beside the checkout (CI lays it there too).
CORPUS = REPO.parent / "shared" / "corpus" / "real"

pytest_plugins: list[str] = ["tests.support.azurite", "tests.support.stack"]


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the team kit's corpus is missing at {CORPUS}")
    return CORPUS
