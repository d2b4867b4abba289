"""The timeline digest's canonical JSON: json.dumps's own bytes, ids and list order left out."""

from __future__ import annotations

import json

from fhir_adapters.snapshot import _canonical_json


def test_canonical_json_is_json_dumps_with_sorted_keys_where_no_list_is_reordered() -> None:
    value = {"b": [1, 2.5, None, True], "a": {"é": 'x\n"y"', "c": ["z", False]}, "n": -3}
    assert _canonical_json(value) == json.dumps(value, sort_keys=True)


def test_references_become_their_type_and_lists_lose_their_order() -> None:
    first = {"items": [{"ref": "Observation/abc-1", "v": 1}, {"ref": "Observation/abc-2", "v": 2}]}
    second = {"items": [{"ref": "Observation/zz9", "v": 2}, {"ref": "Observation/q", "v": 1}]}
    assert _canonical_json(first) == _canonical_json(second)
    assert '"Observation"' in _canonical_json(first) and "abc" not in _canonical_json(first)
    assert _canonical_json({"ref": "NotAType/1"}) == json.dumps({"ref": "NotAType/1"})
    assert _canonical_json(first) != _canonical_json({"items": [{"ref": "Observation/a", "v": 3}]})
