"""Long STIX patterns (issue "Hostile and unlucky input"): 1,000 ORed comparisons or more import, one row each,
instead of ending the reading of the whole bundle with a RecursionError; a pattern nested too deeply is one
`invalid` row and the bundle goes on. A property test cross-checks the rows of small flat patterns against
stix2-patterns' own `inspect()`.
"""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stix2patterns.v21.pattern import Pattern

from shared.core.model import FIELD_TYPE, FIELD_VALUE, FileProblem, RawRow
from shared.readers import read


def bundle(*patterns: str) -> bytes:
    objects = [
        {"type": "indicator", "id": f"indicator--{i}", "spec_version": "2.1", "pattern_type": "stix", "pattern": p}
        for i, p in enumerate(patterns)
    ]
    return json.dumps({"type": "bundle", "id": "bundle--1", "objects": objects}).encode()


def items(data: bytes) -> list:
    r = read(io.BytesIO(data), "bundle.json")
    assert r.format == "stix2"
    return list(r)


@pytest.mark.parametrize("n", [978, 1000, 3000])
@pytest.mark.parametrize("inside", [False, True], ids=["observations", "comparisons"])
def test_a_long_or_imports_every_comparison(n, inside):
    terms = [f"domain-name:value = 'd{i}.example.com'" for i in range(n)]
    pattern = "[" + " OR ".join(terms) + "]" if inside else " OR ".join(f"[{t}]" for t in terms)
    got = items(bundle(pattern, "[ipv4-addr:value = '8.8.8.8']"))
    assert not [i for i in got if isinstance(i, FileProblem)]
    assert [r.fields[FIELD_VALUE] for r in got] == [f"d{i}.example.com" for i in range(n)] + ["8.8.8.8"]
    assert all(r.invalid is None for r in got)


def test_a_pattern_nested_too_deeply_is_one_invalid_row_and_the_bundle_goes_on():
    deep = "[" + "(" * 3000 + "domain-name:value = 'a.example.com'" + ")" * 3000 + "]"
    got = items(bundle(deep, "[domain-name:value = 'b.example.com']"))
    assert len(got) == 2 and isinstance(got[0], RawRow) and got[0].invalid
    assert got[1].fields[FIELD_VALUE] == "b.example.com" and got[1].invalid is None


_OBJECTS = [
    ("domain-name", "value", st.from_regex(r"[a-z]{1,8}\.example\.com", fullmatch=True)),
    ("ipv4-addr", "value", st.from_regex(r"8\.8\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True)),
    ("url", "value", st.from_regex(r"http://[a-z]{1,5}\.example/[a-z']{0,5}", fullmatch=True)),
]
_term = st.sampled_from(range(len(_OBJECTS))).flatmap(
    lambda i: _OBJECTS[i][2].map(lambda v, i=i: (_OBJECTS[i][0], _OBJECTS[i][1], v))
)


def _lit(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_term, min_size=1, max_size=4), min_size=1, max_size=5))
def test_flat_or_patterns_agree_with_stix2_patterns(groups):
    """`[a = 'x' OR b = 'y'] OR [c = 'z']`: one row per comparison, the same ones stix2-patterns inspects."""
    pattern = " OR ".join("[" + " OR ".join(f"{o}:{p} = {_lit(v)}" for o, p, v in g) + "]" for g in groups)
    expected = sorted(
        (obj, ".".join(path), value[1:-1].replace("\\'", "'").replace("\\\\", "\\"))
        for obj, comparisons in Pattern(pattern).inspect().comparisons.items()
        for path, _op, value in comparisons
    )
    got = items(bundle(pattern))
    kinds = {"DomainName": "domain-name", "IpAddress": "ipv4-addr", "Url": "url"}
    assert sorted((kinds[r.fields[FIELD_TYPE]], "value", r.fields[FIELD_VALUE]) for r in got) == expected
