"""SMIE/PGFA preprocessed .npy arrays: shapes, dtypes, mmap, pickle refusal."""
import pickle

import numpy as np
import pytest

from pgfa_models.formats.smie_npy import SmieFormatError, load_smie_arrays


def _pair(tmp_path, data, labels):
    d, l = tmp_path / "seen_train_data.npy", tmp_path / "seen_train_label.npy"
    np.save(d, data)
    np.save(l, labels)
    return d, l


def test_load_ok_mmap(tmp_path):
    data = np.random.default_rng(0).normal(size=(4, 3, 50, 25, 2)).astype(np.float32)
    d, l = _pair(tmp_path, data, np.array([0, 5, 5, 54], dtype=np.int64))
    x, y = load_smie_arrays(d, l)
    assert isinstance(x, np.memmap) and not x.flags.writeable
    assert x.shape == (4, 3, 50, 25, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(x), data)
    assert y.dtype == np.int64 and y.tolist() == [0, 5, 5, 54]
    x2, _ = load_smie_arrays(d, l, mmap=False)
    assert not isinstance(x2, np.memmap)


def test_int32_and_column_labels(tmp_path):
    d, l = _pair(tmp_path, np.zeros((3, 3, 50, 25, 2), np.float32),
                 np.array([[1], [2], [3]], dtype=np.int32))
    _, y = load_smie_arrays(d, l)
    assert y.dtype == np.int64 and y.tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    "shape, match",
    [((2, 3, 50, 25), "5 dims"), ((2, 2, 50, 25, 2), "C=2"), ((2, 3, 64, 25, 2), "T=64"),
     ((2, 3, 50, 20, 2), "V=20"), ((2, 3, 50, 25, 1), "M=1")],
)
def test_bad_shape(tmp_path, shape, match):
    d, l = _pair(tmp_path, np.zeros(shape, np.float32), np.zeros(2, np.int64))
    with pytest.raises(SmieFormatError, match=match):
        load_smie_arrays(d, l)


def test_dtype_rules(tmp_path):
    d, l = _pair(tmp_path, np.zeros((2, 3, 50, 25, 2), np.float64), np.zeros(2, np.int64))
    with pytest.raises(SmieFormatError, match="float64.*mmap=False"):
        load_smie_arrays(d, l)
    x, _ = load_smie_arrays(d, l, mmap=False)
    assert x.dtype == np.float32
    d, l = _pair(tmp_path, np.zeros((2, 3, 50, 25, 2), np.float32), np.zeros(2, np.float32))
    with pytest.raises(SmieFormatError, match="integer dtype"):
        load_smie_arrays(d, l)
    np.save(l, np.array([0, -1]))
    with pytest.raises(SmieFormatError, match="negative label"):
        load_smie_arrays(d, l)


def test_length_mismatch_and_missing(tmp_path):
    d, l = _pair(tmp_path, np.zeros((2, 3, 50, 25, 2), np.float32), np.zeros(3, np.int64))
    with pytest.raises(SmieFormatError, match="3 labels for 2 samples"):
        load_smie_arrays(d, l)
    with pytest.raises(SmieFormatError, match="not found"):
        load_smie_arrays(tmp_path / "nope.npy", l)


def test_pickle_refused(tmp_path):
    d, _ = _pair(tmp_path, np.zeros((2, 3, 50, 25, 2), np.float32), np.zeros(2, np.int64))
    pkl = tmp_path / "seen_train_label.pkl"
    pkl.write_bytes(pickle.dumps((["a", "b"], [0, 1])))
    with pytest.raises(SmieFormatError, match="refusing to read a pickle"):
        load_smie_arrays(d, pkl)
    # a pickle renamed to .npy is caught by the magic check; an object array by allow_pickle
    sneaky = tmp_path / "sneaky.npy"
    sneaky.write_bytes(pickle.dumps([0, 1]))
    with pytest.raises(SmieFormatError, match="not a NumPy .npy file"):
        load_smie_arrays(d, sneaky)
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([0, "x"], dtype=object), allow_pickle=True)
    with pytest.raises(SmieFormatError, match="without pickle"):
        load_smie_arrays(d, obj)
