"""Is a host name under a real public suffix? The Public Suffix List as bundled by `publicsuffixlist`.

Pure, no I/O beyond reading the list the package ships (its `update.py` is never called: nothing is fetched;
the list is the one of the pinned package version, requirements.txt). Loaded on the first host checked
(about 60 ms), and answers are kept per suffix, so a feed of a million hosts under a few hundred suffixes
costs a few hundred look-ups of the list.

- A name whose last label is no top-level domain on the list (`igfxtray.exe`, `config.php`, `host.local`,
  `printer.lan`, `x.example`) is refused: Defender would take it and it would never match.
- A name that is itself a public suffix (`co.uk`, `github.io`) covers every domain under it: refused.
- A name under a private suffix (`evil.github.io`) is a domain like any other.
"""

from __future__ import annotations

from typing import Any

_MAX_CACHE = 4096
_list: Any = None
_deep: frozenset[str] = frozenset()
_cache: dict[str, tuple[str | None, bool]] = {}


def _load() -> Any:
    global _list, _deep
    if _list is None:
        from publicsuffixlist import PublicSuffixList

        psl = PublicSuffixList()
        rules = getattr(psl, "_publicsuffix", None)
        # The last two labels of every rule of three labels or more (`*.compute.amazonaws.com` gives
        # `amazonaws.com`): under those tails a long name may itself be a public suffix, so it is looked up whole.
        _deep = frozenset(_tail(r.lstrip("!")) for r in rules if r.count(".") >= 2) if rules is not None else None  # type: ignore[assignment]
        _list = psl
    return _list


def _tail(name: str) -> str:
    return ".".join(name.rsplit(".", 2)[-2:])


def _entry(key: str) -> tuple[str | None, bool]:
    """(public suffix of the last two labels or None when the TLD is not on the list, rules go deeper?)."""
    found = _cache.get(key)
    if found is None:
        psl = _load()
        found = (psl.publicsuffix(key, accept_unknown=False), _deep is None or key in _deep)
        if len(_cache) < _MAX_CACHE:
            _cache[key] = found
    return found


def suffix_problem(host: str) -> tuple[str, str] | None:
    """(code, message) when `host` (lower-case, punycode, no trailing dot, two labels or more) is not under a
    public suffix or is one; None when it is a registrable name."""
    key = _tail(host)
    suffix, deep = _entry(key)
    if suffix is None:
        tld = host.rsplit(".", 1)[-1]
        return "domain-tld", f"'.{tld}' is no top-level domain ({host})"
    if host == key:
        bare = suffix == host
    else:
        bare = deep and _load().is_public(host)
    if bare:
        return "domain-public-suffix", f"{host} is a public suffix: it covers every domain under it"
    return None
