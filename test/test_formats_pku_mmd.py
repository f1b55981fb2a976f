"""PKU-MMD v1 skeleton/label readers, on files written here in the documented format."""
import numpy as np
import pytest

from pgfa_models.formats.pku_mmd import (
    PkuFormatError,
    PkuSegment,
    pku_segments,
    read_pku_labels,
    read_pku_skeleton,
)


def _write_skel(path, arr):
    """arr (T, 2, 25, 3) -> one line of 150 floats per frame."""
    path.write_text("".join(" ".join(f"{v:.6f}" for v in fr.reshape(-1)) + " \n" for fr in arr))
    return path


def _seq(t=40):
    rng = np.random.default_rng(1)
    arr = rng.normal(size=(t, 2, 25, 3)).astype(np.float32)
    arr[:, 1, :, :][: t // 2] = 0.0  # second person only in the second half
    return arr


def test_read_skeleton_roundtrip(tmp_path):
    arr = _seq()
    got = read_pku_skeleton(_write_skel(tmp_path / "0002-L.txt", arr))
    assert got.shape == (40, 2, 25, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, arr, atol=1e-5)
    assert (got[:20, 1] == 0).all()


def test_single_body_lines_padded(tmp_path):
    p = tmp_path / "one.txt"
    p.write_text("\n".join(" ".join(["0.5"] * 75) for _ in range(3)) + "\n\n")
    got = read_pku_skeleton(p)
    assert got.shape == (3, 2, 25, 3) and (got[:, 0] == 0.5).all() and (got[:, 1] == 0).all()


def test_skeleton_errors(tmp_path):
    p = _write_skel(tmp_path / "bad.txt", _seq(5))
    lines = p.read_text().splitlines()
    lines[3] = " ".join(lines[3].split()[:100])  # truncated line
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(PkuFormatError, match=r"bad\.txt: line 4: expected 150 values .* got 100"):
        read_pku_skeleton(p)
    lines[3] = " ".join(["nan?"] * 150)
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(PkuFormatError, match="line 4: non-numeric"):
        read_pku_skeleton(p)
    p.write_text("\n")
    with pytest.raises(PkuFormatError, match="empty"):
        read_pku_skeleton(p)
    with pytest.raises(PkuFormatError, match="cannot read"):
        read_pku_skeleton(tmp_path / "missing.txt")
    _write_skel(p, _seq(5))
    with pytest.raises(PkuFormatError, match="more than 3 frames"):
        read_pku_skeleton(p, max_frames=3)


def test_read_labels(tmp_path):
    p = tmp_path / "0002-L.txt"
    p.write_text("1,0,10,1\n51,12,30,2,\n\n 7 , 31, 39 ,1\r\n")
    segs = read_pku_labels(p)
    assert segs == [PkuSegment(0, 0, 10, 1), PkuSegment(50, 12, 30, 2), PkuSegment(6, 31, 39, 1)]


@pytest.mark.parametrize(
    "line, match",
    [("52,0,10,1", "label 52 outside 1..51"), ("0,0,10,1", "label 0 outside"),
     ("3,10,5,1", "bad frame range"), ("3,a,5,1", "non-numeric"), ("3,1", "got 2 fields"),
     ("3,1.5,5,1", "non-integer")],
)
def test_label_errors(tmp_path, line, match):
    p = tmp_path / "lab.txt"
    p.write_text("1,0,10,1\n" + line + "\n")
    with pytest.raises(PkuFormatError, match=r"lab\.txt: line 2: .*" + match):
        read_pku_labels(p)


def test_segments(tmp_path):
    arr = _seq(40)
    segs = [PkuSegment(0, 0, 10, 1), PkuSegment(50, 12, 30, 2), PkuSegment(6, 35, 45, 1),
            PkuSegment(3, 39, 39, 1)]
    clips = pku_segments(arr, segs)
    assert [c.shape for c, _ in clips] == [(2, 10, 25, 3), (2, 18, 25, 3), (2, 5, 25, 3)]
    assert [lab for _, lab in clips] == [0, 50, 6]
    np.testing.assert_array_equal(clips[1][0][:, 0], arr[12])
    assert clips[0][0].dtype == np.float32
    with pytest.raises(PkuFormatError, match="starts at frame 40 but the skeleton has only 40"):
        pku_segments(arr, [PkuSegment(1, 40, 50, 1)])
