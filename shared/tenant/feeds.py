"""Input conventions of feeds: the `feeds/<feed>/` folder rule (`InputOptions.check_sync` checks sync mode).

Pure: no I/O. A blob named `feeds/<feed>/<file>` is the full current state of feed `<feed>` (as if its
metadata said `feed=<feed>`, `sync=true`); the blob's own metadata wins.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)


FEEDS_FOLDER = "feeds"


def folder_overrides(name: str) -> dict[str, str]:
    """`feeds/<feed>/<file>` → {"feed": <feed>, "sync": "true"}; anything else → {}.

    Only the first level under `feeds/` names the feed; deeper folders are part of the file's path.
    """
    parts = name.split("/")
    if len(parts) >= 3 and parts[0] == FEEDS_FOLDER and parts[1].strip() and parts[-1]:
        return {"feed": parts[1].strip(), "sync": "true"}
    return {}


def blob_overrides(name: str, metadata: Mapping[str, str]) -> dict[str, str]:
    """The per-file overrides of a blob: its folder's convention, then its own metadata (which wins)."""
    out = folder_overrides(name)
    out.update({k.strip().lower(): v for k, v in metadata.items()})
    return out
