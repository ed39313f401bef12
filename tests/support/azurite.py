"""Session-scoped Azurite for integration and app tests: free loopback ports, in-memory, stopped by PID.

Loaded as a pytest plugin from tests/conftest.py. `azurite` is the running process (see
localdev.stack.Azurite); `blob_service` a BlobServiceClient on it; `fresh_containers` gives each
test its own container names so tests never see each other's blobs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from localdev.stack import Azurite, start_azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    az = start_azurite(in_memory=True)
    try:
        yield az
    finally:
        az.stop()


@pytest.fixture(scope="session")
def azurite_connection_string(azurite: Azurite) -> str:
    return azurite.connection_string


@pytest.fixture(scope="session")
def blob_service(azurite: Azurite):
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azurite.connection_string)


@dataclass(frozen=True)
class Containers:
    indicators: str
    reports: str
    locks: str


@pytest.fixture
def fresh_containers(blob_service) -> Containers:
    """Three new, empty containers with unique names (created here; Azurite is in-memory)."""
    tag = uuid.uuid4().hex[:10]
    names = Containers(f"in-{tag}", f"rep-{tag}", f"lock-{tag}")
    for n in (names.indicators, names.reports, names.locks):
        blob_service.create_container(n)
    return names
