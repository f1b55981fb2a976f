"""UTD-MHAD reader and scan against the real shared copy (with its naming/duplicate quirks)."""
import shutil
from collections import Counter

import numpy as np
import pytest
import scipy.io

from pgfa_models.formats import UTD_MHAD_CLASSES, read_utd_mhad, scan_utd_mhad


def test_classes():
    assert len(UTD_MHAD_CLASSES) == 27 and len(set(UTD_MHAD_CLASSES)) == 27
    assert UTD_MHAD_CLASSES[2] == "right hand wave"
    assert UTD_MHAD_CLASSES[26] == "squat (two arms stretch out)"


def test_read_real_file(utd_dir):
    x = read_utd_mhad(utd_dir / "a3_s1_t1_skeleton.mat")
    assert x.dtype == np.float32 and x.shape == (72, 20, 3)
    raw = scipy.io.loadmat(str(utd_dir / "a3_s1_t1_skeleton.mat"))["d_skel"]
    np.testing.assert_allclose(x[5, 11], raw[11, :, 5], rtol=1e-6)  # frame 5, right hand


def test_read_errors_name_the_file(tmp_path):
    bad = tmp_path / "a1_s1_t1_skeleton.mat"
    bad.write_bytes(b"not a mat file at all")
    with pytest.raises(ValueError, match="a1_s1_t1_skeleton.mat"):
        read_utd_mhad(bad)
    wrong = tmp_path / "wrong.mat"
    scipy.io.savemat(str(wrong), {"d_depth": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="wrong.mat.*d_skel"):
        read_utd_mhad(wrong)
    shape = tmp_path / "shape.mat"
    scipy.io.savemat(str(shape), {"d_skel": np.zeros((25, 3, 4))})
    with pytest.raises(ValueError, match="shape.mat"):
        read_utd_mhad(shape)
    with pytest.raises(FileNotFoundError):
        read_utd_mhad(tmp_path / "missing.mat")


def test_scan_real_directory(utd_dir):
    recs = scan_utd_mhad(utd_dir)
    assert len(list(utd_dir.glob("*.mat"))) == 864
    assert len(recs) == 861  # 864 files minus 3 byte-identical copies (README)
    names = {r.path.name for r in recs}
    # the duplicates are the t4 copies (incl. the space-in-name one); their t3 originals stay
    for dup in ("a8_s1_t4_skeleton .mat", "a23_s6_t4_skeleton.mat", "a27_s8_t4_skeleton.mat"):
        assert dup not in names
        assert dup.replace("t4", "t3").replace(" ", "") in names
    assert {r.action for r in recs} == set(range(27)) and {r.subject for r in recs} == set(range(1, 9))
    assert max(Counter((r.action, r.subject) for r in recs).values()) == 4
    keys = [(r.action, r.subject, r.trial) for r in recs]
    assert keys == sorted(keys) and len(set(keys)) == 861
    assert recs[0].action == 0 and recs[0].path.name == "a1_s1_t1_skeleton.mat"


def test_scan_space_quirk_and_duplicates(tmp_path, utd_dir):
    shutil.copy(utd_dir / "a8_s1_t4_skeleton .mat", tmp_path / "a8_s1_t4_skeleton .mat")
    shutil.copy(utd_dir / "a3_s1_t1_skeleton.mat", tmp_path / "a3_s1_t1_skeleton.mat")
    shutil.copy(utd_dir / "a3_s1_t1_skeleton.mat", tmp_path / "a3_s1_t2_skeleton.mat")
    (tmp_path / "notes.txt").write_text("ignored")
    recs = scan_utd_mhad(tmp_path)
    assert [(r.action, r.subject, r.trial) for r in recs] == [(2, 1, 1), (7, 1, 4)]
    assert read_utd_mhad(recs[1].path).shape[1:] == (20, 3)


def test_scan_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        scan_utd_mhad(tmp_path / "nope")
    with pytest.raises(ValueError, match="no UTD-MHAD"):
        scan_utd_mhad(tmp_path)
