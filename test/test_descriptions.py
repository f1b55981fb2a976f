"""Validate the action descriptions: the YAML files in training/descriptions/ (NTU, PKU-MMD) and
the catalogue datasets that training.descriptions reads from config/classes.yaml."""
from pathlib import Path

import pytest
import yaml

DESC_DIR = Path(__file__).resolve().parents[1] / "training" / "descriptions"

EXPECTED_COUNTS = {"pku_mmd": 51, "ntu120": 120}
CATALOG_COUNTS = {"utd_mhad": 27, "nw_ucla": 10, "smartfallmm": 14, "bandai": 17}

# The 27 UTD-MHAD action names, in dataset order (../shared/data/README.md table).
UTD_NAMES = [
    "right arm swipe to the left",
    "right arm swipe to the right",
    "right hand wave",
    "two hand front clap",
    "right arm throw",
    "cross arms in the chest",
    "basketball shoot",
    "right hand draw x",
    "right hand draw circle (clockwise)",
    "right hand draw circle (counter clockwise)",
    "right hand draw triangle",
    "bowling (right hand)",
    "front boxing",
    "baseball swing from right",
    "tennis right hand forehand swing",
    "arm curl (two arms)",
    "tennis serve",
    "two hand push",
    "right hand knock on door",
    "right hand catch an object",
    "right hand pick up and throw",
    "jogging in place",
    "walking in place",
    "sit to stand",
    "stand to sit",
    "forward lunge (left foot forward)",
    "squat (two arms stretch out)",
]


def _load(name):
    path = DESC_DIR / f"{name}.yaml"
    if not path.is_file():
        pytest.skip(f"{path.name} not written yet")
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.mark.parametrize(
    "name", sorted(set(EXPECTED_COUNTS) | {p.stem for p in DESC_DIR.glob("*.yaml")})
)
def test_description_file(name):
    data = _load(name)
    assert data["dataset"] == name
    assert isinstance(data.get("source"), str) and data["source"].strip()
    classes = data["classes"]
    if name in EXPECTED_COUNTS:
        assert len(classes) == EXPECTED_COUNTS[name]
    assert classes, "no classes"
    assert [c["id"] for c in classes] == list(range(len(classes)))
    names = [c["name"] for c in classes]
    assert len(set(names)) == len(names), "class names must be unique"
    for c in classes:
        for key in ("name", "complete", "skeleton"):
            assert isinstance(c.get(key), str) and c[key].strip(), f"id {c['id']}: empty {key}"
        n_words = len(c["skeleton"].split())
        assert n_words < 100, f"id {c['id']} ({c['name']}): skeleton has {n_words} words"


def test_utd_names_match_dataset_table():
    from training.descriptions import class_names

    assert class_names("utd_mhad") == UTD_NAMES


@pytest.mark.parametrize("dataset", sorted(CATALOG_COUNTS))
def test_catalogue_dataset_descriptions(dataset):
    """The same checks as for a file, on the texts load_class_texts takes from the catalogue."""
    from training.descriptions import load_class_texts, load_descriptions

    texts = load_class_texts(dataset)
    assert len(texts) == CATALOG_COUNTS[dataset]
    assert [t.id for t in texts] == list(range(len(texts)))
    names = [t.name for t in texts]
    assert len(set(names)) == len(names), "class names must be unique"
    for t in texts:
        for kind in ("name", "complete", "skeleton"):
            assert t.text(kind).strip(), f"{dataset} id {t.id}: empty {kind}"
        assert len(t.skeleton.split()) < 100, f"{dataset} id {t.id} ({t.name}): skeleton too long"
    assert load_descriptions(dataset, "name+complete", [0]) == [f"{texts[0].name}. {texts[0].complete}"]


def test_utd_description_file_is_gone():
    """One place: the UTD-MHAD texts live in config/classes.yaml, not in a second file."""
    assert not (DESC_DIR / "utd_mhad.yaml").exists()


PKU_NAMES = [
    "bow", "brushing hair", "brushing teeth", "check time (from watch)", "cheer up", "clapping",
    "cross hands in front (say stop)", "drink water", "drop", "eat meal/snack", "falling",
    "giving something to other person", "hand waving", "handshaking", "hopping (one foot jumping)",
    "hugging other person", "jump up", "kicking other person", "kicking something",
    "make a phone call/answer phone", "pat on back of other person", "pickup",
    "playing with phone/tablet", "point finger at the other person",
    "pointing to something with finger", "punching/slapping other person", "pushing other person",
    "put on a hat/cap", "put something inside pocket", "reading", "rub two hands together",
    "salute", "sitting down", "standing up", "take off a hat/cap", "take off glasses",
    "take off jacket", "take out something from pocket", "taking a selfie", "tear up paper",
    "throw", "touch back (backache)", "touch chest (stomachache/heart pain)",
    "touch head (headache)", "touch neck (neckache)", "typing on a keyboard",
    "use a fan (with hand or paper)/feeling warm", "wear jacket", "wear on glasses", "wipe face",
    "writing",
]


def test_pku_names_match_official_order():
    data = _load("pku_mmd")
    assert [c["name"] for c in data["classes"]] == PKU_NAMES
