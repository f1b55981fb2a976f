"""The class catalogue config/classes.yaml and its loader training/catalog.py (issue 10 item 2)."""
import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from pgfa_models.config import ConfigError
from training import catalog as catalog_mod
from training.catalog import TEXT_KINDS, CatalogError, default_catalog_path, load_catalog, parse_catalog

REPO = Path(__file__).resolve().parents[1]
CATALOG = REPO / "config" / "classes.yaml"
OLD_UTD = "training/descriptions/utd_mhad.yaml"
# sha256 of json.dumps([[id, name, complete, skeleton], ...]) of the old UTD-MHAD description file,
# so the check still runs where git history is not available.
OLD_UTD_SHA256 = "4c9718b4db64d5234bac8bdf3ab653bcf0a2e8beb2f038f2682300d771ba7e4c"

COUNTS = {"utd_mhad": 27, "nw_ucla": 10, "smartfallmm": 14, "bandai": 17}
NW_UCLA_NAMES = ["pick up with one hand", "pick up with two hands", "drop trash", "walk around", "sit down",
                 "stand up", "donning", "doffing", "throw", "carry"]
SMARTFALL_NAMES = ["drinking water", "pick up object", "put on and take off jacket", "stepping up",
                   "sweeping floor", "washing hands", "waving hand", "walking", "sit / stand", "back fall",
                   "front fall", "left fall", "right fall", "rotate fall"]
BANDAI_CONTENTS = ["walk", "run", "dash", "walk-back", "walk-left", "walk-right", "bow", "bye", "guide", "byebye",
                   "respond", "call", "punch", "kick", "slash", "dance-long", "dance-short"]
BANDAI_STYLES = ["normal", "happy", "sad", "angry", "proud", "not-confident", "masculinity", "feminine", "childish",
                 "old", "tired", "active", "musical", "giant", "chimpira"]


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def _concepts(cat, dataset, name):
    return next(c.concepts for c in cat.classes(dataset) if c.name == name)


# ----------------------------------------------------------------------------- the shipped file
def test_default_path_is_the_repo_config():
    assert default_catalog_path() == CATALOG


def test_counts_labels_and_names(cat):
    assert cat.datasets == tuple(COUNTS)
    for ds, n in COUNTS.items():
        cls = cat.classes(ds)
        assert len(cls) == n, ds
        assert [c.label for c in cls] == list(range(n))
        assert all(c.dataset == ds for c in cls)
    assert cat.class_names("nw_ucla") == NW_UCLA_NAMES
    assert cat.class_names("smartfallmm") == SMARTFALL_NAMES
    assert cat.class_names("bandai") == BANDAI_CONTENTS
    assert [s.name for s in cat.styles("bandai")] == BANDAI_STYLES
    # source ids: UTD a1..a27, NW-UCLA file action ids (a07 and a10 do not exist), SmartFallMM A01..A14
    assert [c.source_id for c in cat.classes("utd_mhad")] == [f"a{i}" for i in range(1, 28)]
    assert [c.source_id for c in cat.classes("nw_ucla")] == [f"a{i:02d}" for i in (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)]
    assert [c.source_id for c in cat.classes("smartfallmm")] == [f"A{i:02d}" for i in range(1, 15)]


def test_bandai_names_match_the_archive_label_lists(bandai_dir):
    from pgfa_models.formats.bvh import read_bandai_labels

    contents, styles = read_bandai_labels(bandai_dir)
    cat = load_catalog()
    assert list(contents) == cat.class_names("bandai")
    assert list(styles) == [s.name for s in cat.styles("bandai")]
    assert [c.source_id for c in cat.classes("bandai")] == [
        ln.strip() for ln in (bandai_dir / "cfg" / "content_label.txt").read_text().splitlines() if ln.strip()]


def test_every_referenced_concept_exists_and_every_concept_is_used(cat):
    used = set()
    for ds in cat.datasets:
        for c in cat.classes(ds):
            assert c.concepts, (ds, c.name)
            for cid in c.concepts:
                assert cat.concept(cid).id == cid
            used.update(c.concepts)
    assert used == set(cat.concept_ids)
    assert list(cat.concept_names()) == list(cat.concept_ids)


def test_concept_texts_are_complete(cat):
    for cid in cat.concept_ids:
        c = cat.concept(cid)
        assert re.fullmatch(r"[a-z][a-z0-9_]*", c.id)
        assert c.name and c.complete and c.skeleton
        assert 3 <= len(c.paraphrases) <= 5, cid
        assert len(c.skeleton.split()) < 100, cid
        assert set(c.families) <= set(cat.families)
    # no text is reused between concepts (each concept says something of its own)
    all_texts = [t for cid in cat.concept_ids for t in cat.concept(cid).texts("ensemble")]
    assert len(all_texts) == len(set(all_texts))


def test_utd_classes_never_share_a_concept(cat):
    """UTD-MHAD's splits hold out single classes: a shared concept would drop a seen class."""
    seen = [cid for c in cat.classes("utd_mhad") for cid in c.concepts]
    assert len(seen) == len(set(seen)) == 27


@pytest.mark.parametrize("dataset,name,concepts", [
    ("utd_mhad", "sit to stand", ("stand_up",)),
    ("nw_ucla", "stand up", ("stand_up",)),
    ("utd_mhad", "stand to sit", ("sit_down",)),
    ("nw_ucla", "sit down", ("sit_down",)),
    ("smartfallmm", "sit / stand", ("sit_down", "stand_up")),
    ("utd_mhad", "walking in place", ("walk",)),
    ("nw_ucla", "walk around", ("walk",)),
    ("bandai", "walk", ("walk",)),
    ("smartfallmm", "walking", ("walk",)),
    ("bandai", "walk-back", ("walk_backward",)),
    ("bandai", "walk-left", ("walk",)),  # veers while walking forward (by data), not a side step
    ("bandai", "walk-right", ("walk",)),
    ("utd_mhad", "jogging in place", ("run",)),
    ("bandai", "run", ("run",)),
    ("bandai", "dash", ("run",)),
    ("nw_ucla", "pick up with one hand", ("pick_up_one_hand",)),
    ("smartfallmm", "pick up object", ("pick_up_one_hand",)),
    ("nw_ucla", "pick up with two hands", ("pick_up_two_hands",)),
    ("utd_mhad", "right hand pick up and throw", ("pick_up_and_throw",)),
    ("utd_mhad", "right arm throw", ("throw",)),
    ("nw_ucla", "throw", ("throw",)),
    ("nw_ucla", "donning", ("put_on_jacket",)),
    ("nw_ucla", "doffing", ("take_off_jacket",)),
    ("smartfallmm", "put on and take off jacket", ("put_on_jacket", "take_off_jacket")),
    ("utd_mhad", "right hand wave", ("wave_hand",)),
    ("smartfallmm", "waving hand", ("wave_hand",)),
    ("bandai", "bye", ("wave_hand",)),
    ("bandai", "byebye", ("wave_hand",)),
    ("utd_mhad", "front boxing", ("punch",)),
    ("bandai", "punch", ("punch",)),
    ("smartfallmm", "back fall", ("fall_backward",)),
    ("smartfallmm", "front fall", ("fall_forward",)),
    ("smartfallmm", "left fall", ("fall_left",)),
    ("smartfallmm", "right fall", ("fall_right",)),
    ("smartfallmm", "rotate fall", ("fall_rotate",)),
])
def test_cross_dataset_merges(cat, dataset, name, concepts):
    assert _concepts(cat, dataset, name) == concepts


def test_families(cat):
    assert cat.concepts_in_family("fall") == ("fall_backward", "fall_forward", "fall_left", "fall_right",
                                              "fall_rotate")
    assert set(cat.concepts_in_family("pick_up")) == {"pick_up_one_hand", "pick_up_two_hands", "pick_up_and_throw"}
    assert "pick_up_and_throw" in cat.concepts_in_family("throw")
    assert cat.get_class("smartfallmm", "left fall").families == ("fall",)
    with pytest.raises(CatalogError, match="unknown family"):
        cat.concepts_in_family("flying")


def test_classes_with_and_without_concepts(cat):
    assert cat.classes_with_concepts("smartfallmm", ["stand_up"]) == [8]
    assert cat.classes_with_concepts("nw_ucla", {"sit_down", "stand_up"}) == [4, 5]
    assert cat.classes_with_concepts("bandai", ["wave_hand"]) == [7, 9]
    assert cat.classes_with_concepts("utd_mhad", ["fall_left"]) == []
    # an unseen concept removes every class showing it, from every source
    assert cat.classes_without_concepts("smartfallmm", ["sit_down"]) == [k for k in range(14) if k != 8]
    assert cat.datasets_with_concept("walk") == ("utd_mhad", "nw_ucla", "smartfallmm", "bandai")
    assert cat.concepts_of("smartfallmm", [2, 8]) == ("put_on_jacket", "take_off_jacket", "sit_down", "stand_up")
    with pytest.raises(CatalogError, match="unknown concept"):
        cat.classes_with_concepts("nw_ucla", ["moonwalk"])
    with pytest.raises(CatalogError, match="collection"):
        cat.classes_with_concepts("nw_ucla", "walk")
    with pytest.raises(CatalogError, match="unknown dataset"):
        cat.classes("ntu60")


# ----------------------------------------------------------------------------- texts
def _old_utd_rows():
    try:
        sha = subprocess.run(["git", "rev-list", "-n1", "HEAD", "--", OLD_UTD], cwd=REPO, capture_output=True,
                             text=True, timeout=30).stdout.strip()
        out = subprocess.run(["git", "show", f"{sha}^:{OLD_UTD}"], cwd=REPO, capture_output=True, text=True,
                             timeout=30) if sha else None
    except (OSError, subprocess.SubprocessError):
        out = None
    if out is None or out.returncode != 0:
        return None
    return [[c["id"], c["name"], c["complete"], c["skeleton"]] for c in yaml.safe_load(out.stdout)["classes"]]


def test_utd_texts_identical_to_the_old_description_file(cat):
    rows = [[c.label, c.name, c.text("complete"), c.text("skeleton")] for c in cat.classes("utd_mhad")]
    digest = hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()
    old = _old_utd_rows()
    if old is not None:
        assert rows == old
    assert digest == OLD_UTD_SHA256


def test_class_texts_own_first_then_concepts(cat):
    c = cat.get_class("utd_mhad", 23)
    assert c.name == "sit to stand" and c.concepts == ("stand_up",)
    stand = cat.concept("stand_up")
    assert c.texts("name") == ["sit to stand", "stand up"]
    assert c.texts("complete")[1:] == [stand.complete] and c.texts("complete")[0] != stand.complete
    assert c.texts("paraphrases") == list(stand.paraphrases)
    ens = c.texts("ensemble")
    assert ens[:2] == ["sit to stand", "stand up"] and len(ens) == len(set(ens)) == 2 + 2 + 2 + 4
    # a class without texts of its own takes its concept's
    nw = cat.get_class("nw_ucla", "stand up")
    assert nw.text("complete") == stand.complete and nw.text("skeleton") == stand.skeleton
    # a class with two concepts describes itself first, then both concepts
    sf = cat.get_class("smartfallmm", 8)
    assert sf.texts("complete")[1:] == [cat.concept("sit_down").complete, stand.complete]
    assert "sit down" in sf.texts("name") and "stand up" in sf.texts("name")
    # aliases are names, verb phrases become sentences among the paraphrases
    assert cat.get_class("nw_ucla", 6).texts("name")[:2] == ["donning", "put on a jacket"]
    assert "a person waves goodbye with both hands" in cat.get_class("bandai", "byebye").texts("paraphrases")
    for ds in cat.datasets:
        for k in cat.classes(ds):
            for kind in TEXT_KINDS:
                texts = k.texts(kind)
                assert texts and all(t.strip() for t in texts) and len(texts) == len(set(texts)), (ds, k.name, kind)
    with pytest.raises(CatalogError, match="unknown text kind"):
        c.texts("poem")


def test_lookup_by_name_alias_source_id(cat):
    assert cat.get_class("nw_ucla", "put on a jacket").label == 6
    assert cat.get_class("nw_ucla", "a11").name == "throw"
    assert cat.get_class("bandai", "dataset-1_walk-back").label == 3
    assert cat.texts("nw_ucla", "name", [5, 4]) == [cat.get_class("nw_ucla", 5).texts("name"),
                                                    cat.get_class("nw_ucla", 4).texts("name")]
    import numpy as np

    assert cat.get_class("nw_ucla", np.int64(9)).name == "carry"
    assert cat.take_sentence("bandai", np.int64(1), np.int32(2)) == "a person runs in a sad way"
    for bad in ("moonwalk", 10, -1, True, 2.0, None):
        with pytest.raises(CatalogError):
            cat.get_class("nw_ucla", bad)


def test_take_sentence(cat):
    assert cat.take_sentence("bandai", "bye", "tired") == "a person waves goodbye with one hand in a tired way"
    assert cat.take_sentence("bandai", 13, 14) == "a person kicks as a thug would"
    assert cat.take_sentence("bandai", "dataset-1_walk", "dataset-1_giant") == "a person walks like a giant"
    assert cat.take_sentence("bandai", "walk-back", "old") == "a person walks backwards like an old person"
    sents = cat.take_sentences("bandai", "run", "happy")
    assert sents[0] == "a person runs in a happy way" and "a person runs cheerfully" in sents
    # every take of the dataset has a sentence, all distinct
    every = {cat.take_sentence("bandai", c, s) for c in range(17) for s in range(15)}
    assert len(every) == 17 * 15
    with pytest.raises(CatalogError, match="unknown style"):
        cat.take_sentence("bandai", "walk", "sleepy")
    with pytest.raises(CatalogError, match="style label"):
        cat.take_sentence("bandai", "walk", 15)
    with pytest.raises(CatalogError, match="no styles"):
        cat.take_sentence("nw_ucla", 0, 0)
    assert cat.styles("nw_ucla") == []


def test_descriptions_module_reads_the_catalogue(cat):
    from training.descriptions import class_names, load_class_texts, load_descriptions, load_text_sets

    texts = load_class_texts("utd_mhad")
    assert [t.complete for t in texts] == [c.text("complete") for c in cat.classes("utd_mhad")]
    assert class_names("smartfallmm") == SMARTFALL_NAMES
    assert load_descriptions("nw_ucla", "skeleton", [5]) == [cat.concept("stand_up").skeleton]
    assert load_text_sets("bandai", "ensemble", [7]) == [cat.get_class("bandai", 7).texts("ensemble")]
    assert load_text_sets("pku_mmd", "name", [0]) == [["bow"]]
    assert not (REPO / OLD_UTD).exists(), "the UTD texts live in the catalogue only"


# ----------------------------------------------------------------------------- validation
_MINI = """
families: {f: "a family"}
concepts:
  - {id: a, name: "a", complete: "does a", skeleton: "joints do a", paraphrases: ["doing a"], families: [f]}
  - {id: b, name: "b", complete: "does b", skeleton: "joints do b", paraphrases: ["doing b"]}
datasets:
  ds:
    num_classes: 2
    classes:
      - {label: 0, name: "A", concepts: [a]}
      - {label: 1, name: "B", concepts: [b]}
"""


def _write(tmp_path, text):
    p = tmp_path / "classes.yaml"
    p.write_text(text)
    return p


def test_minimal_catalogue_loads_from_a_path(tmp_path):
    cat = load_catalog(_write(tmp_path, _MINI))
    assert cat.datasets == ("ds",) and cat.class_names("ds") == ["A", "B"]
    assert cat.classes_with_concepts("ds", ["a"]) == [0]


@pytest.mark.parametrize("old,new,match", [
    ("concepts: [b]}", "concepts: [zzz]}", "unknown concept id 'zzz'"),
    ("{label: 1, name: \"B\"", "{label: 0, name: \"B\"", "duplicate label 0"),
    ("num_classes: 2", "num_classes: 3", r"missing classes \[2\]"),
    ("      - {label: 0, name: \"A\", concepts: [a]}\n", "", r"missing classes \[0\]"),
    ("complete: \"does b\"", "complete: \"  \"", "complete: expected a non-empty text"),
    ("paraphrases: [\"doing b\"]", "paraphrases: []", "paraphrases: expected a non-empty list"),
    ("name: \"A\",", "name: \"\",", "name: expected a non-empty text"),
    ("{id: b,", "{id: Bee,", "not snake_case"),
    ("{id: b,", "{id: a,", "duplicate concept id 'a'"),
    ("families: [f]", "families: [g]", "unknown family 'g'"),
    ("concepts: [b]}", "concepts: [a, b]}", "needs its own 'complete'"),
    ("concepts: [b]}", "concepts: [a]}", "concepts no class uses: \\['b'\\]"),
    ("concepts: [b]}", "concepts: [b], colour: red}", "unknown keys \\['colour'\\]"),
    ("    num_classes: 2\n", "    num_classes: 2\n    num_classes: 2\n", "duplicate key 'num_classes'"),
    ("datasets:", "datasets: [", "invalid YAML"),
])
def test_broken_catalogue_is_a_clear_config_error(tmp_path, old, new, match):
    assert old in _MINI
    with pytest.raises(ConfigError, match=match):
        load_catalog(_write(tmp_path, _MINI.replace(old, new, 1)))


def test_styles_require_verb_phrases_and_contiguous_labels(tmp_path):
    styled = _MINI.replace("    num_classes: 2\n", "    num_classes: 2\n    styles:\n"
                           "      - {label: 0, name: calm, adverbial: \"calmly\"}\n")
    with pytest.raises(CatalogError, match="needs a 'verb_phrase'"):
        parse_catalog(styled)
    ok = styled.replace("concepts: [a]}", "concepts: [a], verb_phrase: \"does a\"}").replace(
        "concepts: [b]}", "concepts: [b], verb_phrase: \"does b\"}")
    assert parse_catalog(ok).take_sentence("ds", "B", "calm") == "a person does b calmly"
    gap = ok.replace("{label: 0, name: calm", "{label: 1, name: calm")
    with pytest.raises(CatalogError, match=r"missing \[0\]"):
        parse_catalog(gap)


def test_missing_or_unreadable_file(tmp_path):
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "nope.yaml")
    with pytest.raises(CatalogError, match="expected a mapping"):
        load_catalog(_write(tmp_path, "- just a list\n"))


def test_installed_share_dir_is_found(tmp_path, monkeypatch):
    """Without a source checkout the file comes from share/pgfa_ros/config (setup.py data_files)."""
    share = tmp_path / "share" / "pgfa_ros" / "config"
    share.mkdir(parents=True)
    (share / "classes.yaml").write_text(_MINI)
    fake_pkg = tmp_path / "site" / "training"
    fake_pkg.mkdir(parents=True)
    from training import config_files

    monkeypatch.setattr(config_files, "__file__", str(fake_pkg / "config_files.py"))
    monkeypatch.setattr(config_files.sys, "prefix", str(tmp_path))
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    assert default_catalog_path() == share / "classes.yaml"
    assert load_catalog().datasets == ("ds",)


def test_setup_installs_the_catalogue():
    text = (REPO / "setup.py").read_text()
    assert '(f"share/{PACKAGE}/config", glob("config/*.yaml"))' in text
