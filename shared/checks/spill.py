"""Where the duplicate index keeps what no longer fits its memory budget (DUPLICATE_INDEX_MAX_MB).

A private temporary SQLite database (`sqlite3.connect("")`: an on-disk file SQLite creates, never names and
deletes when the connection closes): the one file the pure layers touch, and only for its own memory bound,
never for input or output. Standard library only; `sqlite3` is imported on the first spill.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# SQLite's own page cache for the spilled keys (its default is 2 MB; a larger one keeps look-ups fast).
CACHE_KIB = 16 * 1024


class SpillStore:
    """An integer → integer map on disk: `put_many` once per spill, `get` for keys not in memory."""

    def __init__(self) -> None:
        import sqlite3

        self._db: Any = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._db.execute("CREATE TABLE first (key INTEGER PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID")
        self.size = 0

    def put_many(self, items: Mapping[int, int]) -> None:
        """Add keys not stored yet (a key already stored keeps its first line)."""
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR IGNORE INTO first VALUES (?, ?)", items.items())
        self._db.execute("COMMIT")
        self.size += len(items)

    def get(self, key: int) -> int | None:
        row = self._db.execute("SELECT line FROM first WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def close(self) -> None:
        self._db.close()
