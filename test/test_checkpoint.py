import json
import os
import pickle

import pytest
import torch

from pgfa_models.checkpoint import (FORMAT_VERSION, CheckpointError, CheckpointMeta,
                                    load_checkpoint, load_model, save_checkpoint)
from pgfa_models.model import EncoderConfig, SkeletonTextModel


def _meta(**kw):
    base = dict(text_model="all-MiniLM-L6-v2", text_dim=32, labels=["drink water", "wave"],
                encoder=EncoderConfig(), preprocess={"num_frames": 50, "center_joint": 0},
                descriptions={"wave": "the arm rises and sways"},
                extra={"command": "train --seed 3", "seed": 3, "epoch": 7})
    base.update(kw)
    return CheckpointMeta(**base)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = SkeletonTextModel(EncoderConfig(), text_dim=32)
    # non-trivial BN statistics and temperature
    model.train()
    model(torch.randn(4, 3, 50, 25, 1))
    with torch.no_grad():
        model.log_tau.fill_(-2.0)
    model.eval()
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_checkpoint(path, model, _meta())
    return path, model


def test_round_trip_identical_outputs(saved):
    path, model = saved
    loaded, meta = load_model(path)
    assert not loaded.training
    x = torch.randn(3, 3, 50, 25, 1)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert float(loaded.log_tau.detach()) == -2.0
    assert meta == _meta()
    assert meta.format_version == FORMAT_VERSION and meta.num_person == 1
    state, meta2 = load_checkpoint(path)
    assert set(state) == set(model.state_dict()) and meta2 == meta
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "temp file left behind"


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.safetensors")


def test_truncated_file(saved, tmp_path):
    data = saved[0].read_bytes()
    for cut in (len(data) // 2, 20, 5, 0):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated") as err:
            load_model(bad)
        assert "\n" not in str(err.value) and str(bad) in str(err.value)


def test_random_bytes(tmp_path):
    bad = tmp_path / "random.safetensors"
    import random
    data = bytearray(random.Random(0).randbytes(4096))
    data[0] = 0x41  # not a pickle opcode / zip magic: exercise the generic corruption path
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt|truncated"):
        load_checkpoint(bad)


def test_absurd_header_length(tmp_path):
    bad = tmp_path / "absurd.safetensors"
    bad.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match="header claims"):
        load_checkpoint(bad)


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/pgfa_pickle_executed",))


def test_pickle_files_are_refused_without_unpickling(tmp_path, saved):
    marker = "/tmp/pgfa_pickle_executed"
    if os.path.exists(marker):
        os.remove(marker)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"x": _Boom()}))
    zipped = tmp_path / "model.pt"
    torch.save({"state_dict": saved[1].state_dict(), "boom": _Boom()}, zipped)
    for p in (raw, zipped):
        with pytest.raises(CheckpointError, match="pickle"):
            load_model(p)
    assert not os.path.exists(marker)


def _write_raw(path, tensors, meta_dict, fmt="pgfa_ros.checkpoint"):
    from safetensors.torch import save_file
    md = {"format": fmt}
    if meta_dict is not None:
        md["pgfa_meta"] = json.dumps(meta_dict)
    save_file(tensors, str(path), metadata=md)


def test_wrong_version_missing_metadata_and_shape_mismatch(saved, tmp_path):
    from pgfa_models.config import to_dict
    state, meta = load_checkpoint(saved[0])
    md = to_dict(meta)

    p = tmp_path / "v2.safetensors"
    _write_raw(p, state, dict(md, format_version=2))
    with pytest.raises(CheckpointError, match="format_version 2"):
        load_model(p)

    p = tmp_path / "nometa.safetensors"
    _write_raw(p, state, None)
    with pytest.raises(CheckpointError, match="metadata"):
        load_model(p)

    from safetensors.torch import save_file
    p = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(CheckpointError, match="metadata"):
        load_model(p)

    p = tmp_path / "shape.safetensors"
    _write_raw(p, state, dict(md, text_dim=64))
    with pytest.raises(CheckpointError, match="shape mismatch for psi"):
        load_model(p)

    p = tmp_path / "missing.safetensors"
    _write_raw(p, {k: v for k, v in state.items() if k != "log_tau"}, md)
    with pytest.raises(CheckpointError, match="missing"):
        load_model(p)

    p = tmp_path / "badmeta.safetensors"
    _write_raw(p, state, dict(md, surprise=1))
    with pytest.raises(CheckpointError, match="unknown key"):
        load_model(p)


def test_save_refuses_inconsistent_meta(tmp_path):
    model = SkeletonTextModel(EncoderConfig(), text_dim=32)
    with pytest.raises(CheckpointError, match="text_dim"):
        save_checkpoint(tmp_path / "a.safetensors", model, _meta(text_dim=64))
    with pytest.raises(CheckpointError, match="encoder"):
        save_checkpoint(tmp_path / "b.safetensors", model, _meta(encoder=EncoderConfig(num_person=2)))
    assert not list(tmp_path.iterdir())


def test_oversized_file_is_refused(tmp_path, monkeypatch):
    import pgfa_models.checkpoint as ck
    big = tmp_path / "big.safetensors"
    big.write_bytes(b"\0" * 2048)
    monkeypatch.setattr(ck, "MAX_FILE_BYTES", 1024)
    with pytest.raises(CheckpointError, match="limit"):
        load_checkpoint(big)


def test_header_length_with_pickle_like_first_byte_loads(saved, tmp_path):
    """The first byte is the low byte of the header length: 0x80 there is a valid checkpoint."""
    _, model = saved
    path = tmp_path / "m.safetensors"
    for pad in range(300):
        save_checkpoint(path, model, _meta(extra={"pad": " " * pad}))
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.fail("could not produce a header length with low byte 0x80")
    state, meta = load_checkpoint(path)
    assert meta.extra["pad"] == " " * pad and state
