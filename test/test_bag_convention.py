"""The bag convention's label messages are bounded: hostile labels are one clear BagError."""
import json

import pytest

from pgfa_ros.bag.convention import MAX_BODY_IDS, MAX_LABEL_BYTES, BagError, ClipLabel


def _label(**kw):
    d = {"label": "clap", "class_index": 3, "start_ns": 10, "end_ns": 20}
    d.update(kw)
    return json.dumps(d)


def test_body_ids_are_bounded():
    assert ClipLabel.from_json(_label(body_ids=list(range(MAX_BODY_IDS)))).body_ids == list(range(MAX_BODY_IDS))
    with pytest.raises(BagError, match=f"at most {MAX_BODY_IDS}"):
        ClipLabel.from_json(_label(body_ids=list(range(5000))))


@pytest.mark.parametrize("ids, match", [([1, 1], "distinct"), ([-1], "non-negative"), ("0", "must be a list"),
                                        ([{"a": 1}], "bad label")])
def test_bad_body_ids(ids, match):
    with pytest.raises(BagError, match=match):
        ClipLabel.from_json(_label(body_ids=ids))


def test_label_size_is_bounded():
    with pytest.raises(BagError, match=f"at most {MAX_LABEL_BYTES}"):
        ClipLabel.from_json(_label(source="x" * (MAX_LABEL_BYTES + 1)))
