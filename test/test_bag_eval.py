"""pgfa-bag eval gives exactly pgfa-eval's numbers on the same real UTD-MHAD clips (MCAP and
sqlite3), and broken bags give one clear error line and no report."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bag_helpers import SUBJECTS, U1, make_centered_checkpoint, utd_subset_dir
from pgfa_ros.bag.cli import main as bag_main
from pgfa_ros.bag.clips import read_bag_clips
from pgfa_ros.bag.convention import LABEL_TOPIC, META_TOPIC, SKELETON_TOPIC, STRING, ClipLabel
from pgfa_ros.bag.io import BagWriter, open_reader, read_messages, string_msg
from pgfa_ros.recognizer_params import PARAMS

MODES = "text,transductive,bank"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(utd_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bag_eval")
    data = utd_subset_dir(utd_dir, tmp / "utd")
    ckpt = make_centered_checkpoint(tmp / "ckpt.safetensors", utd_dir)
    bags = {}
    for storage in ("mcap", "sqlite3"):
        bags[storage] = tmp / f"u1_{storage}"
        assert bag_main(["convert", "--dataset", "utd_mhad", "--input", str(utd_dir), "--split", "utd_mhad/U1",
                         "--subjects", ",".join(map(str, SUBJECTS)), "--output", str(bags[storage]),
                         "--storage", storage, "-q"]) == 0
    from training.cli_eval import main as eval_main

    ref = tmp / "pgfa_eval.json"
    assert eval_main(["--checkpoint", str(ckpt), "--split", "utd_mhad/U1", "--data-root", str(data),
                      "--modes", MODES, "--json", str(ref)]) == 0
    return tmp, data, ckpt, bags, json.loads(ref.read_text())


def test_bag_eval_hub_aware_modes_equal_pgfa_eval(setup, tmp_path):
    """The hub-aware modes, their options and the subject-grouped ceiling pass through pgfa-bag eval
    and give pgfa-eval's numbers."""
    from training.cli_eval import main as eval_main

    tmp, data, ckpt, bags, _ = setup
    modes = "transductive_balanced,csls,bank_csls"
    flags = ["--modes", modes, "--assign-options", "epsilon=0.1,csls_k=3", "--group-pattern", r"_s(\d+)_"]
    assert eval_main(["--checkpoint", str(ckpt), "--split", "utd_mhad/U1", "--data-root", str(data), *flags,
                      "--json", str(tmp_path / "ref.json")]) == 0
    assert bag_main(["eval", str(bags["mcap"]), "--checkpoint", str(ckpt), "--split", "utd_mhad/U1", *flags,
                     "--json", str(tmp_path / "bag.json"), "-q"]) == 0
    ref, got = (json.loads((tmp_path / f).read_text()) for f in ("ref.json", "bag.json"))
    assert [r["mode"] for r in got["results"]] == modes.split(",")
    assert got["assignment"] == ref["assignment"] and got["assignment"]["csls_k"] == 3
    assert got["nn_ceiling"] == ref["nn_ceiling"] and got["nn_ceiling"]["grouped"]
    assert got["nn_ceiling"]["groups"] == len(SUBJECTS)
    for g, r in zip(got["results"], ref["results"]):
        for key in ("mode", "accuracy", "per_class", "confusion", "hub"):
            assert g[key] == r[key], (g["mode"], key)
    assert bag_main(["eval", str(bags["mcap"]), "--checkpoint", str(ckpt), "--split", "utd_mhad/U1",
                     "--assign-options", "bogus=1", "-q"]) != 0


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_eval_equals_pgfa_eval(setup, storage, capsys):
    tmp, data, ckpt, bags, ref = setup
    out = tmp / f"bag_eval_{storage}.json"
    md = tmp / f"report_{storage}.md"
    report = ["--report", str(md)] if storage == "mcap" else []  # PNG rendering is slow: once is enough
    assert bag_main(["eval", str(bags[storage]), "--checkpoint", str(ckpt), "--split", "utd_mhad/U1",
                     "--modes", MODES, "--json", str(out), *report, "-q"]) == 0
    got = json.loads(out.read_text())
    assert [r["mode"] for r in got["results"]] == MODES.split(",")
    assert got["n"] == ref["n"] == 20 and got["unseen_classes"] == ref["unseen_classes"] == U1
    for g, r in zip(got["results"], ref["results"]):
        assert {"mode", "accuracy", "n", "per_class"} <= set(g)
        for key in ("mode", "accuracy", "n", "per_class", "confusion", "classes"):
            assert g[key] == r[key], (g["mode"], key)
        # per-clip predictions agree with the confusion matrix pgfa-eval computed
        cm = np.zeros((5, 5), int)
        for p in g["predictions"]:
            cm[U1.index(p["label"]), U1.index(p["pred"])] += 1
        assert cm.tolist() == r["confusion"]
    # the model does not predict one class for everything, so the equality above means something
    assert len({p["pred"] for p in got["results"][0]["predictions"]}) > 1
    if report:
        assert "transductive" in md.read_text()
        assert (tmp / f"report_{storage}_transductive_confusion.png").stat().st_size > 1000


def test_bag_clips_equal_loader_clips_bytewise(setup):
    """The stronger statement behind equal predictions: identical input tensors, same order."""
    from pgfa_models.preprocess import PreprocessConfig
    from pgfa_ros.bag.evaluate import bag_clips_to_tensors
    from training.datasets import load_utd_mhad

    tmp, data, ckpt, bags, ref = setup
    ref_clips = load_utd_mhad(data, PreprocessConfig(), 1, cache=False).subset(U1)
    for storage in ("mcap", "sqlite3"):
        es = bag_clips_to_tensors([read_bag_clips(bags[storage])], PreprocessConfig(), 1)
        assert es.names == ref_clips.names
        assert es.x.tobytes() == ref_clips.x.tobytes() and np.array_equal(es.y, ref_clips.y)


def _one_line_error(capsys, rc):
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert len(err.splitlines()) == 1, err
    return err


def test_ensemble_checkpoint_equals_pgfa_eval(setup, tmp_path):
    """The committed default checkpoint embeds each class as a text ensemble; pgfa-bag eval used
    to refuse it on labelled bags ("needs a catalogue with load_text_sets")."""
    from pgfa_ros.bag.evaluate import BagCatalog, EvalSet
    from training import descriptions
    from training.cli_eval import main as eval_main

    tmp, data, _, bags, _ = setup
    ckpt = REPO / "pgfa_ros" / "assets" / "multi_source_default.safetensors"
    flags = ["--checkpoint", str(ckpt), "--split", "utd_mhad/U1", "--modes", "text"]
    with pytest.warns(UserWarning, match="not a zero-shot"):  # it was trained on UTD-MHAD classes
        assert eval_main([*flags, "--data-root", str(data), "--json", str(tmp_path / "ref.json")]) == 0
        assert bag_main(["eval", str(bags["mcap"]), *flags, "--json", str(tmp_path / "bag.json"), "-q"]) == 0
    ref, got = (json.loads((tmp_path / f).read_text()) for f in ("ref.json", "bag.json"))
    for key in ("accuracy", "n", "per_class", "confusion"):
        assert got["results"][0][key] == ref["results"][0][key], key
    es = EvalSet(np.zeros(0), np.zeros(0), [], True, classes=["a", "b"])
    assert BagCatalog(es, descriptions).load_text_sets("utd_mhad", "ensemble", [3]) == \
        descriptions.load_text_sets("utd_mhad", "ensemble", [3])
    assert BagCatalog(es, None, {"b": "a b text"}).load_text_sets("", "ensemble", [0, 1]) == [["a"], ["a b text"]]


def test_bad_modes_outputs_and_fps_fail_before_any_bag_is_read(setup, tmp_path, capsys):
    """An empty --modes used to exit 0 printing nothing, --json DIR failed only after the whole
    evaluation, and --fps 0 / -30 / nan were taken (0 as "the meta's rate")."""
    _, _, ckpt, bags, _ = setup
    base = ["eval", str(bags["mcap"]), "--checkpoint", str(ckpt), "-q"]
    assert "no mode" in _one_line_error(capsys, bag_main([*base, "--modes", ","]))
    assert "is a directory" in _one_line_error(capsys, bag_main([*base, "--json", str(tmp_path)]))
    (tmp_path / "file").write_text("")
    _one_line_error(capsys, bag_main([*base, "--report", str(tmp_path / "file" / "r.md")]))
    for fps in ("0", "-30", "nan"):
        assert "--fps" in _one_line_error(capsys, bag_main([*base, "--fps", fps, "--json", str(tmp_path / "o.json")]))
    assert not (tmp_path / "o.json").exists()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_bag_is_one_clear_error_and_no_report(setup, storage, capsys):
    tmp, data, ckpt, bags, ref = setup
    bad = tmp / f"truncated_{storage}"
    shutil.copytree(bags[storage], bad)
    f = next(p for p in bad.iterdir() if p.suffix in (".mcap", ".db3"))
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    out, md = tmp / f"trunc_{storage}.json", tmp / f"trunc_{storage}.md"
    rc = bag_main(["eval", str(bad), "--checkpoint", str(ckpt), "--json", str(out), "--report", str(md), "-q"])
    err = _one_line_error(capsys, rc)
    assert "truncated" in err or "corrupt" in err
    assert not out.exists() and not md.exists()


def test_bag_without_expected_topics_lists_its_topics(setup, capsys):
    tmp, data, ckpt, bags, ref = setup
    other = tmp / "other_topics"
    with BagWriter(other, "mcap") as w:
        w.add_topic("/chatter", STRING)
        w.write("/chatter", 1, string_msg("hello"))
    rc = bag_main(["eval", str(other), "--checkpoint", str(ckpt), "--json", str(tmp / "o.json"), "-q"])
    err = _one_line_error(capsys, rc)
    assert SKELETON_TOPIC in err and "/chatter" in err and "std_msgs/msg/String" in err
    assert not (tmp / "o.json").exists()


def _rewrite(src, dst, edit_label=None, drop_topics=()):
    """Copy a bag message by message, optionally editing the first label / dropping topics."""
    r = open_reader(src)
    try:
        topics = {c.topic: c.msgtype for c in r.connections}
        with BagWriter(dst, "mcap") as w:
            for t, typ in topics.items():
                if t not in drop_topics:
                    w.add_topic(t, typ)
            first = True
            for t, ts, raw in read_messages(r, [t for t in topics if t not in drop_topics], decode=False):
                if t == LABEL_TOPIC and first and edit_label:
                    from pgfa_ros.bag.io import typestore

                    msg = typestore().deserialize_cdr(raw, STRING)
                    w.write(t, ts, string_msg(edit_label(msg.data)))
                    first = False
                else:
                    w.write_raw(t, ts, raw)
    finally:
        r.close()


def test_mislabelled_bag_is_one_clear_error(setup, capsys):
    tmp, data, ckpt, bags, ref = setup
    bad = tmp / "mislabelled"

    def edit(text):
        d = json.loads(text)
        d["class_index"] = (d["class_index"] + 1) % 27
        return json.dumps(d)

    _rewrite(bags["mcap"], bad, edit_label=edit)
    rc = bag_main(["eval", str(bad), "--checkpoint", str(ckpt), "--json", str(tmp / "m.json"), "-q"])
    err = _one_line_error(capsys, rc)
    assert "mislabelled" in err and not (tmp / "m.json").exists()


def test_unlabelled_bag_uses_fixed_windows(setup, capsys):
    tmp, data, ckpt, bags, ref = setup
    bare = tmp / "no_labels"
    _rewrite(bags["mcap"], bare, drop_topics=(LABEL_TOPIC,))
    out = tmp / "w.json"
    rc = bag_main(["eval", str(bare), "--checkpoint", str(ckpt), "--window", "40", "--stride", "20",
                   "--classes", ",".join(map(str, U1)), "--modes", MODES, "--json", str(out), "-q"])
    assert rc == 0, capsys.readouterr().err
    got = json.loads(out.read_text())
    assert [r["mode"] for r in got["results"]] == MODES.split(",")
    assert all(r["accuracy"] is None and r["n"] > 20 for r in got["results"])
    assert all(p["pred"] in U1 for p in got["results"][1]["predictions"])


def test_label_json_contract():
    lab = ClipLabel("sit to stand", 23, 10, 20, body_id=0, frames=2, source="a24_s1_t1_skeleton.mat", name="a24_s1_t1")
    back = ClipLabel.from_json(lab.to_json())
    assert back == ClipLabel("sit to stand", 23, 10, 20, 0, [0], 2, "a24_s1_t1_skeleton.mat", "a24_s1_t1", "")
    d = json.loads(lab.to_json())
    assert d["start"] == 10e-9 and d["end"] == 20e-9 and d["body_id"] == 0
    assert META_TOPIC == "/pgfa/meta"


# ----------------------------------------------------------------------------- label sets of unlabelled bags
@pytest.fixture()
def bare_bag(setup):
    """The converted bag as a robot would record it: skeletons only, no /pgfa/meta, no labels."""
    tmp, data, ckpt, bags, ref = setup
    bare = tmp / "bare"
    if not bare.exists():
        _rewrite(bags["mcap"], bare, drop_topics=(LABEL_TOPIC, META_TOPIC))
    return bare


@pytest.fixture()
def embedded(monkeypatch):
    """Every text the text encoder is asked to embed."""
    from pgfa_models.text import TextEncoder

    seen: list[str] = []
    orig = TextEncoder.encode

    def spy(self, texts):
        seen.extend(texts)
        return orig(self, texts)

    monkeypatch.setattr(TextEncoder, "encode", spy)
    return seen


def test_unlabelled_bag_without_meta_refuses_bare_indices(setup, bare_bag, embedded, capsys):
    """Regression: --classes 3,14 on a bag without /pgfa/meta used to embed the texts "3" and "14"."""
    tmp, data, ckpt, bags, ref = setup
    out = tmp / "idx.json"
    rc = bag_main(["eval", str(bare_bag), "--checkpoint", str(ckpt), "--layout", "kinect_v1_20", "--fps", "30",
                   "--classes", "3,14", "--modes", "text", "--json", str(out), "-q"])
    err = _one_line_error(capsys, rc)
    assert "--labels" in err and "3,14" in err and "--dataset" in err
    assert not out.exists() and not embedded


def test_unlabelled_bag_takes_label_names_like_the_node(setup, bare_bag, embedded, capsys):
    tmp, data, ckpt, bags, ref = setup
    out = tmp / "names.json"
    names = ["two hand front clap", "sit to stand", "walking"]
    rc = bag_main(["eval", str(bare_bag), "--checkpoint", str(ckpt), "--layout", "kinect_v1_20", "--fps", "30",
                   "--labels", ",".join(names), "--modes", "text,bank", "--json", str(out), "-q"])
    assert rc == 0, capsys.readouterr().err
    got = json.loads(out.read_text())
    assert got["labels"] == names and got["texts"] == names  # no stored descriptions: the names
    assert set(embedded) == set(names)
    assert not got["labelled"] and got["n"] > 20
    for r in got["results"]:
        assert list(r["per_class"]) == names and r["accuracy"] is None
        assert {p["label"] for p in r["predictions"]} <= set(names)


def test_unlabelled_bag_takes_a_label_yaml(setup, bare_bag, embedded, capsys):
    """A ROS parameters file (the node's own labels + descriptions) works as the label set."""
    tmp, data, ckpt, bags, ref = setup
    params = tmp / "labels_params.yaml"
    params.write_text(
        "pgfa_launch:\n  ros__parameters:\n    nodes: [recognizer]\n"
        "recognizer:\n  ros__parameters:\n    layout: kinect_v1_20\n"
        "    labels: [\"clap\", \"stand up\"]\n"
        "    descriptions:\n      - \"A person claps both hands in front of the chest.\"\n      - \"\"\n")
    out = tmp / "yaml.json"
    rc = bag_main(["eval", str(bare_bag), "--checkpoint", str(ckpt), "--layout", "kinect_v1_20", "--fps", "30",
                   "--labels", str(params), "--modes", "text", "--json", str(out), "-q"])
    assert rc == 0, capsys.readouterr().err
    got = json.loads(out.read_text())
    assert got["labels"] == ["clap", "stand up"]
    assert got["texts"] == ["A person claps both hands in front of the chest.", "stand up"]
    assert set(embedded) == set(got["texts"]) | {"clap"}  # a description is embedded with its name


def test_unlabelled_bag_resolves_indices_through_a_dataset_catalogue(setup, bare_bag, embedded, capsys):
    from pgfa_models.formats.utd_mhad import UTD_MHAD_CLASSES
    from training.descriptions import load_descriptions

    tmp, data, ckpt, bags, ref = setup
    out = tmp / "catalogue.json"
    rc = bag_main(["eval", str(bare_bag), "--checkpoint", str(ckpt), "--layout", "kinect_v1_20", "--fps", "30",
                   "--dataset", "utd_mhad", "--classes", "3,14", "--modes", "text", "--json", str(out), "-q"])
    assert rc == 0, capsys.readouterr().err
    got = json.loads(out.read_text())
    assert got["labels"] == [UTD_MHAD_CLASSES[3], UTD_MHAD_CLASSES[14]]
    assert got["texts"] == load_descriptions("utd_mhad", "complete", [3, 14])
    assert "3" not in embedded and "14" not in embedded


def test_label_options_errors(setup, bare_bag, capsys):
    tmp, data, ckpt, bags, ref = setup
    base = ["eval", "--checkpoint", str(ckpt), "--modes", "text", "-q"]
    rc = bag_main([*base, str(bare_bag), "--layout", "kinect_v1_20", "--labels", "a,b", "--classes", "1"])
    assert "not both" in _one_line_error(capsys, rc)
    rc = bag_main([*base, str(bare_bag), "--layout", "kinect_v1_20", "--labels", "a,a"])
    assert "unique" in _one_line_error(capsys, rc)
    rc = bag_main([*base, str(bare_bag), "--layout", "kinect_v1_20", "--labels", str(tmp / "missing.yaml")])
    assert "not found" in _one_line_error(capsys, rc)
    rc = bag_main([*base, str(bags["mcap"]), "--labels", "a,b"])  # a labelled bag has its own classes
    assert "without ground truth" in _one_line_error(capsys, rc)


def test_parse_label_set_forms(tmp_path):
    from pgfa_ros.bag.convention import BagError
    from pgfa_ros.bag.evaluate import parse_label_set

    assert parse_label_set(" walk , sit down ").names == ["walk", "sit down"]
    demo = parse_label_set("pgfa_ros/assets/demo_labels.yaml")  # the demo's {name, description} list
    assert not demo.include_checkpoint_labels and {"walk", "jumping jacks"} <= set(demo.names)
    assert len(demo.descriptions) == len(demo.names)
    d = dict(zip(demo.names, demo.descriptions))
    assert d["walk"] == "" and d["jumping jacks"]  # a trained class keeps the checkpoint's own texts
    rec = parse_label_set("config/recognizer.yaml")  # the node's parameters file
    assert rec.names[:2] == ["wave a hand", "clap hands"] and not rec.descriptions  # the checkpoint's own texts
    plain = tmp_path / "plain.yaml"
    plain.write_text("labels: [a, b]\ndescriptions: [one, two, three]\n")
    with pytest.raises(BagError, match="3 descriptions for 2 labels"):
        parse_label_set(str(plain))
    plain.write_text("- a\n- b\n")
    assert parse_label_set(str(plain)).names == ["a", "b"]
    plain.write_text("other:\n  ros__parameters: {x: 1}\n")
    with pytest.raises(BagError, match="no 'labels'"):
        parse_label_set(str(plain))


def test_label_yaml_can_extend_the_checkpoint_labels(setup, bare_bag, embedded, capsys):
    """The demo's label file form: the checkpoint's classes first, a class named again takes the
    file's description, new classes are added (the test checkpoint's labels are "a", "b")."""
    tmp, data, ckpt, bags, ref = setup
    f = tmp / "extend.yaml"
    f.write_text("include_checkpoint_labels: true\nlabels:\n  - {name: a, description: the first class}\n"
                 "  - {name: jumping, description: a person jumps}\n  - b\n")
    out = tmp / "extend.json"
    rc = bag_main(["eval", str(bare_bag), "--checkpoint", str(ckpt), "--layout", "kinect_v1_20", "--fps", "30",
                   "--labels", str(f), "--modes", "text", "--json", str(out), "-q"])
    assert rc == 0, capsys.readouterr().err
    got = json.loads(out.read_text())
    assert got["labels"] == ["a", "b", "jumping"]
    assert got["texts"] == ["the first class", "b", "a person jumps"]


def test_unlabelled_bag_applies_the_nodes_seen_margin(setup, utd_dir, bare_bag, capsys):
    """With the checkpoint's classes in the label set, text mode handicaps them by the node's
    seen_margin (default the node's), so a replayed label set ranks as the live node ranks it."""
    tmp, data, ckpt, bags, ref = setup
    trained = make_centered_checkpoint(tmp / "trained.safetensors", utd_dir, descriptions={
        "a": "A person waves the right hand above the head.", "b": "A person claps both hands."})
    f = tmp / "with_trained.yaml"
    f.write_text("include_checkpoint_labels: true\nlabels:\n  - {name: jumping, description: a person jumps}\n")
    out = tmp / "margin.json"
    base = ["eval", str(bare_bag), "--checkpoint", str(trained), "--layout", "kinect_v1_20", "--fps", "30",
            "--labels", str(f), "--modes", "text,bank", "--json", str(out), "-q"]
    got = {}
    for margin in (None, "0", "1"):
        rc = bag_main(base + ([] if margin is None else ["--seen-margin", margin]))
        assert rc == 0, capsys.readouterr().err
        got[margin] = json.loads(out.read_text())
    assert got[None]["trained_labels"] == ["a", "b"]
    assert [r["seen_margin"] for r in got[None]["results"]] == [PARAMS["seen_margin"].default] * 2
    won = {m: {r["mode"]: r["per_class"]["jumping"]["predicted"] for r in g["results"]} for m, g in got.items()}
    n = got["0"]["n"]
    # the margin only takes from the trained classes: the new label's windows grow with it
    for mode in ("text", "bank"):
        assert won["0"][mode] <= won[None][mode] <= won["1"][mode] <= n
    assert won["0"]["text"] < won["1"]["text"] and won["0"]["bank"] < won["1"]["bank"]
    capsys.readouterr()  # drop what the runs above printed (e.g. the text model's first load)
    rc = bag_main(base + ["--seen-margin", "2"])
    assert "seen_margin" in _one_line_error(capsys, rc)


def test_merge_labels_one_rule_for_demo_and_bag_tools():
    from pgfa_ros.bag.evaluate import merge_labels
    from pgfa_ros.demo import build_label_set

    ck = ["walk", "run"]
    assert merge_labels(ck, ["hop", "run"], ["a person hops", "fast"], True) == (
        ["walk", "run", "hop"], ["", "fast", "a person hops"])  # a named class keeps its place
    assert merge_labels(ck, ["run", "hop"], None, False) == (["run", "hop"], ["", ""])
    names, descs, zs = build_label_set("pgfa_ros/assets/demo_labels.yaml", ["walk", "run", "kick"])
    assert "kick" not in names and names[:2] == ["walk", "run"] and descs[0] == ""
    assert zs == set(names) - {"walk", "run"} and "jumping jacks" in zs


def test_demo_label_set_uses_the_bag_parser_with_checkpoint_classes_by_default(tmp_path):
    from pgfa_ros.bag.evaluate import parse_label_set
    from pgfa_ros.demo import build_label_set

    ck = ["walk", "run"]
    assert build_label_set("hop, run", ck)[:2] == (["walk", "run", "hop"], ["", "", ""])
    f = tmp_path / "l.yaml"
    f.write_text("labels: [{name: hop, description: a person hops on one leg}]\n")
    assert build_label_set(str(f), ck)[0] == ["walk", "run", "hop"]  # the demo includes them unless told
    assert parse_label_set(str(f)).include_checkpoint_labels is False  # the bag tools do not
    with pytest.raises(ValueError, match="unique"):
        build_label_set("hop, hop", ck)
    with pytest.raises(ValueError, match="l2.yaml"):
        build_label_set(str(tmp_path / "l2.yaml"), ck)  # a missing file is named, not read as a label
