"""Reader for the SMIE / PGFA preprocessed NTU and PKU-MMD arrays.

The reference code ships each split as a pair of NumPy ``.npy`` files, e.g.
``seen_train_data.npy`` float32 ``(N, 3, 50, 25, 2)`` (xyz, frames, NTU-25 joints, bodies)
and ``seen_train_label.npy`` integer ``(N,)``. Only plain ``.npy`` is read, always with
``allow_pickle=False``: pickle files (``.pkl``) can execute code and are refused.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["SmieFormatError", "load_smie_arrays", "load_smie_data", "load_smie_labels"]

_NPY_MAGIC = b"\x93NUMPY"
_PICKLE_SUFFIXES = {".pkl", ".pickle", ".pk", ".p"}


class SmieFormatError(ValueError):
    """An SMIE array file is missing, of the wrong kind, shape or dtype."""


def _open_npy(path: Path, mmap: bool, what: str) -> np.ndarray:
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise SmieFormatError(
            f"{path}: refusing to read a pickle file ({what}); pickle can execute arbitrary "
            "code. Convert it once, in a trusted environment, to .npy "
            "(e.g. np.save('labels.npy', np.asarray(labels, dtype=np.int64)))."
        )
    if not path.is_file():
        raise SmieFormatError(f"{what} file not found: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(len(_NPY_MAGIC))
    if magic != _NPY_MAGIC:
        hint = " (an .npz archive? pass the .npy files it holds)" if magic[:2] == b"PK" else ""
        raise SmieFormatError(f"{path}: not a NumPy .npy file ({what}){hint}")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle; corrupt headers
        raise SmieFormatError(f"{path}: cannot load {what} without pickle or corrupt: {exc}") from None
    except OSError as exc:
        raise SmieFormatError(f"{path}: cannot read {what}: {exc}") from None


def load_smie_data(
    data_path: str | Path,
    mmap: bool = True,
    frames: int | None = 50,
    num_person: int | None = 2,
) -> np.ndarray:
    """Load a data array ``(N, 3, T, 25, M)``; checks T == ``frames`` and M == ``num_person``
    unless those are None. With ``mmap`` the result is a read-only memory map and must
    already be float32; without it other float dtypes are converted to float32."""
    path = Path(data_path)
    data = _open_npy(path, mmap, "data")
    if data.ndim != 5:
        raise SmieFormatError(
            f"{path}: data must have 5 dims (N, 3, T, 25, M), got shape {tuple(data.shape)}"
        )
    n, c, t, v, m = data.shape
    problems = []
    if c != 3:
        problems.append(f"C={c} (expected 3: xyz)")
    if v != 25:
        problems.append(f"V={v} (expected 25 NTU joints)")
    if frames is not None and t != frames:
        problems.append(f"T={t} (expected {frames})")
    if num_person is not None and m != num_person:
        problems.append(f"M={m} (expected {num_person})")
    if problems:
        raise SmieFormatError(
            f"{path}: bad data shape {tuple(data.shape)}: " + ", ".join(problems)
        )
    if data.dtype != np.float32:
        if not np.issubdtype(data.dtype, np.floating):
            raise SmieFormatError(f"{path}: data dtype {data.dtype}, expected float32")
        if mmap:
            raise SmieFormatError(
                f"{path}: data dtype {data.dtype}; memory mapping needs float32 "
                "(pass mmap=False to convert in memory)"
            )
        data = data.astype(np.float32)
    return data


def load_smie_labels(label_path: str | Path) -> np.ndarray:
    """Load an integer label vector ``(N,)`` (``(N, 1)`` is accepted) as int64, 0-based."""
    path = Path(label_path)
    labels = _open_npy(path, False, "labels")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise SmieFormatError(f"{path}: labels must be 1-D (N,), got shape {tuple(labels.shape)}")
    if labels.dtype.kind not in "iu":
        raise SmieFormatError(f"{path}: labels dtype {labels.dtype}, expected an integer dtype")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise SmieFormatError(f"{path}: negative label {int(labels.min())}")
    return labels


def load_smie_arrays(
    data_path: str | Path,
    label_path: str | Path,
    mmap: bool = True,
    frames: int | None = 50,
    num_person: int | None = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Load a ``(data, labels)`` pair: data float32 ``(N, 3, 50, 25, 2)`` (read-only memory
    map when ``mmap``), labels int64 ``(N,)``. Raises :class:`SmieFormatError` (a
    ``ValueError``) on a missing file, pickle, wrong shape/dtype or length mismatch."""
    data = load_smie_data(data_path, mmap=mmap, frames=frames, num_person=num_person)
    labels = load_smie_labels(label_path)
    if labels.shape[0] != data.shape[0]:
        raise SmieFormatError(
            f"{label_path}: {labels.shape[0]} labels for {data.shape[0]} samples in {data_path}"
        )
    return data, labels
