"""Dataset loaders: real UTD-MHAD files, and small written fixtures of the NTU / PKU / SMIE formats."""
import numpy as np
import pytest

from training.datasets import (DatasetError, load_ntu_skeletons, load_pku_mmd, load_smie, load_utd_mhad,
                               split_clips)
from training.descriptions import DescriptionError, load_descriptions
from training.train import resolve_split


def test_utd_mhad_real_files_and_cache(utd_dir, tmp_path):
    cs = load_utd_mhad(utd_dir, limit_per_class=1, cache_dir=tmp_path)
    assert cs.x.shape == (27, 3, 50, 25, 1) and cs.x.dtype == np.float32
    assert sorted(cs.y.tolist()) == list(range(27)) and cs.names == sorted(cs.names)
    assert np.isfinite(cs.x).all() and np.abs(cs.x[:, :, 0, 0]).max() < 1e-5  # spine base at origin in frame 0
    assert len(list(tmp_path.glob("utd_mhad-*.npz"))) == 1
    again = load_utd_mhad(utd_dir, limit_per_class=1, cache_dir=tmp_path)
    assert np.array_equal(again.x, cs.x) and again.names == cs.names


def test_utd_full_scan_drops_duplicates(utd_dir):
    from pgfa_models.formats.utd_mhad import scan_utd_mhad

    assert len(scan_utd_mhad(utd_dir)) == 861


def test_split_selection(utd_dir, tmp_path):
    cs = load_utd_mhad(utd_dir, limit_per_class=1, cache_dir=tmp_path)
    s = resolve_split("utd_mhad/U1")
    seen, unseen = split_clips(cs, s.seen, s.unseen)
    assert sorted(set(unseen.y.tolist())) == [3, 14, 17, 18, 23] and len(seen) == 22
    assert not set(seen.y.tolist()) & set(unseen.y.tolist())


def test_missing_root_is_clear(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_utd_mhad(tmp_path / "nope")


def _ntu_body_lines(body_id, joints):
    lines = [f"{body_id} 0 0 0 0 0 0 0 0 2", "25"]
    for x, y, z in joints:
        lines.append(f"{x} {y} {z} 0 0 0 0 0 0 0 0 2")
    return lines


def test_ntu_raw_fixture(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "ntu"
    d.mkdir()
    for name in ("S001C001P001R001A001", "S001C001P001R001A002"):
        lines = ["20"]
        for t in range(20):
            lines.append("2")
            lines += _ntu_body_lines(72057594037931101, rng.normal(0, 0.3, (25, 3)) + [0, 0, 3])
            lines += _ntu_body_lines(72057594037931102, rng.normal(0, 0.01, (25, 3)) + [1, 0, 3])
        (d / f"{name}.skeleton").write_text("\n".join(lines) + "\n")
    cs = load_ntu_skeletons(d, num_person=2, cache_dir=tmp_path / "c")
    assert cs.x.shape == (2, 3, 50, 25, 2) and cs.y.tolist() == [0, 1]
    assert np.abs(cs.x[..., 1]).sum() > 0  # second body kept


def test_pku_fixture(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "skeleton").mkdir()
    (tmp_path / "label").mkdir()
    rows = rng.normal(0, 0.3, (60, 75)) + np.tile([0, 0, 3], 25)
    text = "\n".join(" ".join(f"{v:.4f}" for v in np.concatenate([r, np.zeros(75)])) for r in rows)
    (tmp_path / "skeleton" / "0002-L.txt").write_text(text + "\n")
    (tmp_path / "label" / "0002-L.txt").write_text("3,0,25,1\n7,30,60,2\n")
    cs = load_pku_mmd(tmp_path / "skeleton", tmp_path / "label", num_person=2, cache_dir=tmp_path / "c")
    assert cs.x.shape == (2, 3, 50, 25, 2) and cs.y.tolist() == [2, 6]
    assert np.abs(cs.x[..., 1]).sum() == 0  # absent second body stays zero


def test_smie_fixture(tmp_path):
    x = np.random.default_rng(2).normal(size=(4, 3, 50, 25, 2)).astype(np.float32)
    np.save(tmp_path / "d.npy", x)
    np.save(tmp_path / "l.npy", np.array([0, 1, 2, 3]))
    cs = load_smie(tmp_path / "d.npy", tmp_path / "l.npy", num_person=1)
    assert cs.x.shape == (4, 3, 50, 25, 1) and np.array_equal(cs.x[..., 0], x[..., 0])


def test_descriptions_all_kinds():
    for kind in ("name", "complete", "skeleton"):
        texts = load_descriptions("utd_mhad", kind)
        assert len(texts) == 27 and all(isinstance(t, str) and t for t in texts)
    assert load_descriptions("utd_mhad", "name", [3])[0] == "two hand front clap"
    assert len(load_descriptions("ntu60", "complete", num_classes=60)) == 60
    with pytest.raises(DescriptionError):
        load_descriptions("utd_mhad", "poem")
