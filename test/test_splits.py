"""Zero-shot splits of SPEC §6, loaded from config/splits.yaml."""
import pytest
import yaml

from training.splits import Split, SplitError, get_split, load_splits

EXPECTED = {
    "utd_mhad/U1": [3, 14, 17, 18, 23],
    "utd_mhad/U2": [0, 9, 16, 20, 25],
    "utd_mhad/U3": [12, 15, 17, 18, 25],
    "utd_mhad/U4": [0, 3, 10, 12, 16, 22, 24],
    "utd_mhad/V1": [4, 6, 7, 11, 19],
    "utd_mhad/V2": [1, 5, 8, 21, 26],
    "ntu60/setting1/split1": [4, 19, 31, 47, 51],
    "ntu60/setting1/split2": [12, 29, 32, 44, 59],
    "ntu60/setting1/split3": [7, 20, 28, 39, 58],
    "ntu120/setting1/split1": [3, 18, 26, 38, 41, 60, 87, 99, 102, 110],
    "ntu120/setting1/split2": [5, 12, 14, 15, 17, 42, 67, 82, 100, 119],
    "ntu120/setting1/split3": [6, 20, 27, 33, 42, 55, 71, 97, 104, 118],
    "pku_mmd/setting1/split1": [1, 9, 20, 34, 50],
    "pku_mmd/setting1/split2": [3, 14, 29, 31, 49],
    "pku_mmd/setting1/split3": [2, 15, 39, 41, 43],
    "ntu60/setting2/55_5": [10, 11, 19, 26, 56],
    "ntu60/setting2/48_12": [3, 5, 9, 12, 15, 40, 42, 47, 51, 56, 58, 59],
    "ntu120/setting2/110_10": [4, 13, 37, 43, 49, 65, 88, 95, 99, 106],
    "ntu120/setting2/96_24": [5, 9, 11, 16, 18, 20, 22, 29, 35, 39, 45, 49, 59, 68, 70, 81,
                              84, 87, 93, 94, 104, 113, 114, 119],
}
NUM_CLASSES = {"utd_mhad": 27, "ntu60": 60, "ntu120": 120, "pku_mmd": 51}


def test_all_splits_exact():
    splits = load_splits()
    assert set(splits) == set(EXPECTED)
    for name, unseen in EXPECTED.items():
        s = splits[name]
        assert isinstance(s, Split) and s.name == name
        assert list(s.unseen) == unseen, name
        assert s.dataset == name.split("/")[0]
        assert s.num_classes == NUM_CLASSES[s.dataset]
        assert sorted(s.seen + s.unseen) == list(range(s.num_classes))
        assert not set(s.seen) & set(s.unseen)


def test_u1_and_counts():
    u1 = get_split("utd_mhad/U1")
    assert list(u1.unseen) == [3, 14, 17, 18, 23]
    assert len(u1.seen) == 22 and list(u1.seen) == sorted(u1.seen)
    assert len(get_split("ntu60/setting2/48_12").unseen) == 12
    for name in ("ntu60/setting2/55_5", "ntu60/setting2/48_12",
                 "ntu120/setting2/110_10", "ntu120/setting2/96_24"):
        seen, unseen = (int(x) for x in name.rsplit("/", 1)[1].split("_"))
        s = get_split(name)
        assert (len(s.seen), len(s.unseen)) == (seen, unseen)
    for ds, k in (("ntu60", 5), ("ntu120", 10), ("pku_mmd", 5)):
        for i in (1, 2, 3):
            assert len(get_split(f"{ds}/setting1/split{i}").unseen) == k


def test_unknown_name_lists_names():
    with pytest.raises(SplitError, match=r"unknown split 'ntu60/U1'.*utd_mhad/U1.*ntu60/setting1/split1"):
        get_split("ntu60/U1")


def _write(tmp_path, splits, datasets=None):
    p = tmp_path / "splits.yaml"
    p.write_text(yaml.safe_dump({"datasets": datasets or {"d": {"num_classes": 5}}, "splits": splits}))
    return p


@pytest.mark.parametrize(
    "spec, match",
    [({"dataset": "d", "unseen": [1, 5]}, r"\[5\] outside 0..4"),
     ({"dataset": "d", "unseen": [-1]}, "outside"),
     ({"dataset": "d", "unseen": [1, 1]}, r"repeated unseen classes \[1\]"),
     ({"dataset": "d", "unseen": [0, 1, 2, 3, 4]}, "no seen classes"),
     ({"dataset": "e", "unseen": [1]}, "unknown dataset 'e'"),
     ({"dataset": "d", "unseen": []}, "non-empty list"),
     ({"dataset": "d", "unseen": [1.5]}, "expected an integer"),
     ({"dataset": "d", "unseen": [1], "extra": 1}, "expected keys")],
)
def test_validation(tmp_path, spec, match):
    with pytest.raises(SplitError, match=match):
        load_splits(_write(tmp_path, {"x/1": spec}))


def test_custom_file_and_missing(tmp_path):
    s = load_splits(_write(tmp_path, {"x/1": {"dataset": "d", "unseen": [4, 0]}}))["x/1"]
    assert s.unseen == (0, 4) and s.seen == (1, 2, 3)
    with pytest.raises(SplitError, match="not found"):
        load_splits(tmp_path / "nope.yaml")


def test_validation_splits_never_hold_out_a_test_class():
    splits = load_splits()
    tested = {c for u in ("U1", "U2", "U3", "U4") for c in splits[f"utd_mhad/{u}"].unseen}
    for v in ("V1", "V2"):
        assert not set(splits[f"utd_mhad/{v}"].unseen) & tested, v
