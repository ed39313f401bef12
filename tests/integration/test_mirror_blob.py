"""The tenant mirror's blob on Azurite (CONTRACT.md [mirror] `indicator-state/<tenant key>/mirror…`): gzip'd
NDJSON streamed both ways, every write guarded by the ETag, an unreadable blob a ValueError, storage problems on
the way out answered None."""

from __future__ import annotations

import gzip
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.storage.mirror import MirrorBlob
from shared.tenant.mirror import MirrorHeader, decode, encode
from shared.tenant.records import TenantView
from tests.support.stack import public_ip

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def tenant_of(n: int) -> TenantView:
    exp = (NOW + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return TenantView(
        (
            {
                "id": str(i + 1),
                "indicatorType": "IpAddress",
                "indicatorValue": public_ip(i),
                "action": "Block",
                "title": f"Indicator {i} — ünïcode",
                "description": "from a feed",
                "severity": "High",
                "expirationTime": exp,
                "externalId": f"ioc-importer:feed:{i:024x}",
                "createdBy": "app",
            }
            for i in range(n)
        ),
        now=NOW,
    )


@pytest.fixture
def container(blob_service: Any) -> Any:
    # Not created: the first write creates it, as in a deployment where the IaC did not (yet).
    return blob_service.get_container_client(f"state-{uuid.uuid4().hex[:12]}")


def lines(view: TenantView) -> Any:
    return encode(MirrorHeader("default", NOW, NOW, view.active_count), view)


def test_a_15000_indicator_mirror_round_trips_streamed(container: Any) -> None:
    blob = MirrorBlob(container, "default")
    assert blob.read() is None  # neither container nor blob yet
    view = tenant_of(15_000)
    tracemalloc.start()
    etag = blob.write(lines(view), etag=None, metadata={"state": "clean"})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert etag is not None
    # Streamed through a spooled file: far below the ~4 MB of NDJSON (the view itself is not counted).
    assert peak < 3_000_000, peak
    props = container.get_blob_client("default/mirror.ndjson.gz").get_blob_properties()
    assert props.size < 1_000_000 and props.content_settings.content_type == "application/gzip"
    found = blob.read()
    assert found is not None
    read_etag, metadata, raw = found
    assert read_etag == etag and metadata == {"state": "clean"}
    back = decode(raw, tenant="default")
    assert back.records == view.records and back.header.count == 15_000


def test_every_write_is_guarded_by_the_etag(container: Any) -> None:
    blob = MirrorBlob(container, "default")
    first = blob.write(lines(tenant_of(2)), etag=None, metadata={"state": "clean"})
    assert first is not None
    assert blob.write(lines(tenant_of(3)), etag=None, metadata={}) is None  # If-None-Match: one exists now
    marked = blob.mark(first, {"state": "changing"})
    assert marked is not None and marked != first
    assert blob.mark(first, {"state": "changing"}) is None  # stale ETag
    assert blob.write(lines(tenant_of(3)), etag=first, metadata={}) is None  # stale ETag: nothing written
    found = blob.read()
    assert found is not None and found[1] == {"state": "changing"}
    assert decode(found[2], tenant="default").header.count == 2
    assert blob.write(lines(tenant_of(3)), etag=marked, metadata={"state": "clean"}) is not None
    blob.forget()
    blob.forget()  # gone already is just as good
    assert blob.read() is None


def test_tenant_keys_have_their_own_mirror(container: Any) -> None:
    MirrorBlob(container, "default").write(lines(tenant_of(1)), etag=None, metadata={})
    assert MirrorBlob(container, "contoso").read() is None


@pytest.mark.parametrize("data", [b"not gzip at all", gzip.compress(b'{"mirror": 1}\n')[:-6]])
def test_a_broken_blob_is_a_value_error(container: Any, data: bytes) -> None:
    blob = MirrorBlob(container, "default")
    container.create_container()
    container.upload_blob("default/mirror.ndjson.gz", data)
    found = blob.read()
    assert found is not None
    with pytest.raises(ValueError, match="gzip"):
        list(found[2])


def test_a_mirror_still_at_a_known_etag_is_not_downloaded(container: Any) -> None:
    blob = MirrorBlob(container, "default")
    etag = blob.write(lines(tenant_of(3)), etag=None, metadata={"state": "clean"})
    assert etag is not None
    assert blob.read(etag) == (etag, {}, None)  # If-None-Match: 304
    marked = blob.mark(etag, {"state": "changing"})
    found = blob.read(etag)
    assert found is not None and found[0] == marked and found[1] == {"state": "changing"} and found[2] is not None
    assert decode(found[2], tenant="default").header.count == 3
