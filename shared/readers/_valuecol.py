"""Which column of a CSV holds the indicators when no header name says so: decided by content.

Pure, no I/O. A named column always wins (`_csv.layout_of`); this is the fallback for a header of names nobody
listed (issue "Nothing silently dropped"). The first `SAMPLE_ROWS` records are looked at: a column is a value
column when at least `SHARE` of its non-empty cells read as indicators of one family (hash, IP address, URL,
host name), with a few refusals that keep reference links out:

- a column named like a reference (`reference`, `link`, `source`, `ref`, …) is never a value column;
- nor one whose URLs or hosts are on a threat-intel site's own host (`urlhaus.abuse.ch/url/…`,
  `www.virustotal.com/gui/…`), or all share one host (a feed's links to its own pages);
- only one column is taken, except hash columns of different algorithms (`md5,sha1,sha256` of one object).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from shared.core.text import refang
from shared.readers import _columns as cols
from shared.readers._looks import kind

SAMPLE_ROWS = 200
SHARE = 0.8
_FAMILIES = ("hash", "ip", "url", "host")
# Column names of links to where an indicator was reported, never indicators themselves.
_REFERENCE_NAME = re.compile(r"reference|link|source|^refs?$|report|permalink|article|blog|website|homepage")
# Hosts of threat-intelligence sites: a URL there is a reference to an entry, not something to block.
REFERENCE_HOSTS = frozenset(
    {
        "urlhaus.abuse.ch",
        "bazaar.abuse.ch",
        "threatfox.abuse.ch",
        "feodotracker.abuse.ch",
        "sslbl.abuse.ch",
        "abuse.ch",
        "www.virustotal.com",
        "virustotal.com",
        "otx.alienvault.com",
        "urlscan.io",
        "tria.ge",
        "app.any.run",
        "any.run",
        "www.hybrid-analysis.com",
        "hybrid-analysis.com",
        "attack.mitre.org",
        "twitter.com",
        "x.com",
        "github.com",
        "www.joesandbox.com",
        "malpedia.caad.fkie.fraunhofer.de",
        "www.shodan.io",
        "shodan.io",
        "censys.io",
        "search.censys.io",
        "exchange.xforce.ibmcloud.com",
    }
)
_HOST = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?([^/?#:\s]+)", re.I)


@dataclass(frozen=True)
class Choice:
    """The columns taken (index, type hint or "" to infer) and the rule, as the report names them."""

    columns: tuple[tuple[int, str], ...]
    rule: str


def _family(cell: str) -> str | None:
    token = cell.strip().strip("\"'`")
    if not token or len(token) > 2048 or any(ch.isspace() for ch in token):
        return None
    k = kind(refang(token))
    return k if k in _FAMILIES else None


def looks_like_value(cell: str) -> bool:
    """A header cell that reads as an indicator: then the first line is data, not a header."""
    return _family(cell) is not None


def _host(cell: str) -> str:
    m = _HOST.match(refang(cell.strip()))
    return m.group(1).lower().rstrip(".") if m else ""


def _is_reference_column(name: str, cells: Sequence[str], family: str, *, one_host: bool = True) -> bool:
    if _REFERENCE_NAME.search(cols.norm(name)):
        return True
    if family not in ("url", "host"):
        return False
    hosts = {_host(c) for c in cells}
    if any(h in REFERENCE_HOSTS or h.endswith(".abuse.ch") for h in hosts):
        return True
    return one_host and family == "url" and len(cells) >= 3 and len(hosts) == 1


def _column(name: str, cells: Sequence[str]) -> tuple[float, str, int] | None:
    """(share, family, hash length) when a column's cells read as indicators of one family, else None."""
    if not cells:
        return None
    families = Counter(_family(c) for c in cells)
    family, n = max(((f, c) for f, c in families.items() if f is not None), key=lambda fc: fc[1], default=(None, 0))
    if family is None or n < SHARE * len(cells) or _is_reference_column(name, cells, family):
        return None
    length = Counter(len(c.strip()) for c in cells).most_common(1)[0][0] if family == "hash" else 0
    return n / len(cells), family, length


def choose(header: Sequence[str], records: Sequence[Sequence[str]]) -> Choice | None:
    """The value columns of a header whose names say nothing, from the first SAMPLE_ROWS records; None if none."""
    found: list[tuple[float, int, str, int]] = []  # (share, -index, family, hash length)
    for i, name in enumerate(header):
        stat = _column(name, [r[i] for r in records[:SAMPLE_ROWS] if i < len(r) and r[i].strip()])
        if stat is not None:
            found.append((stat[0], -i, stat[1], stat[2]))
    if not found:
        return None
    found.sort(reverse=True)
    share, neg, family, length = found[0]
    taken = [(-neg, family, share)]
    if family == "hash":
        # md5,sha1,sha256 of one object: every hash column of another length comes along.
        lengths = {length}
        for share2, neg2, family2, length2 in found[1:]:
            if family2 == "hash" and length2 not in lengths:
                taken.append((-neg2, family2, share2))
                lengths.add(length2)
    taken.sort()
    rows = min(len(records), SAMPLE_ROWS)
    described = ", ".join(
        f"{header[i].strip()!r} ({round(sh * 100)}% of its first {rows} cells read as {_NAMES[fam]})"
        for i, fam, sh in taken
    )
    return Choice(tuple((i, "") for i, _, _ in taken), f"chosen by content: {described}")


_NAMES = {"hash": "hashes", "ip": "IP addresses", "url": "URLs", "host": "host names"}


def reference_columns(header: Sequence[str], typed: Sequence[int], records: Sequence[Sequence[str]]) -> set[int]:
    """Of the columns named after a type, those that hold reference links (see the module docstring)."""
    out = set()
    for i in typed:
        cells = [r[i] for r in records[:SAMPLE_ROWS] if i < len(r) and r[i].strip()]
        if not cells:
            continue
        families = Counter(_family(c) for c in cells)
        family = max(families, key=lambda f: families[f])
        if family in ("url", "host") and _is_reference_column(header[i], cells, family, one_host=False):
            out.add(i)
    return out
