import json
import os
import pickle

import pytest
import torch

from pgfa_models.checkpoint import (FORMAT_VERSION, CheckpointError, CheckpointMeta,
                                    load_checkpoint, load_model, read_meta, save_checkpoint)
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
    assert read_meta(path) == meta
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "temp file left behind"


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        read_meta(tmp_path / "nope.safetensors")


def test_read_meta_checks_the_framing_too(saved, tmp_path):
    """A file cut short is refused by the metadata reader as well: it never trusts a header whose
    tensor data is not all there."""
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(saved[0].read_bytes()[:-16])
    with pytest.raises(CheckpointError, match="truncated"):
        read_meta(bad)


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


# ------------------------------------------------------------------ hostile headers (issue 13)
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small valid checkpoint (fast to load many times) and its raw parts."""
    torch.manual_seed(1)
    enc = EncoderConfig(hidden_channels=4, out_dim=8)
    model = SkeletonTextModel(enc, text_dim=8)
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    save_checkpoint(path, model, CheckpointMeta(text_model="all-MiniLM-L6-v2", text_dim=8,
                                                labels=["wave", "sit"], encoder=enc,
                                                descriptions={"wave": "an arm sways"}))
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    return path, header, raw[8 + n:]


def _raw_file(path, header, data, meta_text=None):
    header = json.loads(json.dumps(header))
    if meta_text is not None:
        header["__metadata__"]["pgfa_meta"] = meta_text
    blob = json.dumps(header).encode()
    path.write_bytes(len(blob).to_bytes(8, "little") + blob + data)
    return path


def _set(meta, dotted, value):
    *parents, last = dotted.split(".")
    d = meta
    for p in parents:
        d = d.setdefault(p, {})
    if value is _DELETE:
        d.pop(last, None)
    elif last.startswith("labels[") or last.endswith("]"):
        d[last.split("[")[0]][int(last.split("[")[1][:-1])] = value
    else:
        d[last] = value


_DELETE = object()
_WRONG_TYPES = ["16", 1.5, True, None, [], {}, [[1]], {"a": {"b": 1}}]
_BAD_INTS = [-1, 0, 10**6, 10**12, 2**64, -(2**63)] + _WRONG_TYPES
HOSTILE = (
    [("text_dim", v) for v in _BAD_INTS]
    + [(f"encoder.{f}", v) for f in ("in_channels", "out_dim", "num_person", "num_frames") for v in _BAD_INTS]
    + [("encoder.hidden_channels", v) for v in _BAD_INTS]   # None is valid but does not fit the weights
    + [("num_person", v) for v in _BAD_INTS if v is not None]
    + [("encoder.dropout", v) for v in (-0.1, 1.0, 5, "0", True, None, [], {})]
    + [("encoder.edge_importance", v) for v in (1, 0, "true", None, [], {})]
    + [("encoder.name", v) for v in ("resnet", "", 5, None, [], {})]
    + [("encoder", v) for v in ("stgcn", 5, [], None, {"surprise": 1})]
    + [("text_model", v) for v in ("", "\x00evil", "x" * 1000, 5, None, [], {})]
    + [("labels", v) for v in ("wave", 5, None, {}, ["x"] * 20_000, [["wave"]])]
    + [("labels[0]", v) for v in (5, None, [], {}, "x" * 20_000)]
    + [("descriptions", v) for v in ("wave", 5, [], {"wave": 5}, {"wave": ["a"]})]
    + [("preprocess", v) for v in ("fast", 5, [], None, {f"k{i}": i for i in range(300)})]
    + [("extra", v) for v in ("x", 5, [], None)]
    + [("members", v) for v in (0, 17, 2, "3", 1.0, True, None, [])]  # 2: the weights are of one model
    + [("format_version", v) for v in (2, 0, "1", 1.0, True, None)]
    + [(f, _DELETE) for f in ("text_model", "text_dim", "labels", "format_version", "encoder")]
    + [("surprise", 1)]
)


def _deep(depth):
    v = 1
    for _ in range(depth):
        v = [v]
    return v


@pytest.mark.parametrize("field,value", HOSTILE, ids=lambda x: repr(x)[:30])
def test_hostile_metadata_field_is_a_checkpoint_error(tiny, tmp_path, field, value):
    path, header, data = tiny
    meta = json.loads(header["__metadata__"]["pgfa_meta"])
    _set(meta, field, value)
    bad = _raw_file(tmp_path / "bad.safetensors", header, data, json.dumps(meta))
    with pytest.raises(CheckpointError) as err:
        load_model(bad)
    msg = str(err.value)
    assert "\n" not in msg and str(bad) in msg
    top = field.split(".")[0].split("[")[0]
    if value is not _DELETE and top not in ("format_version", "surprise", "encoder"):
        assert repr(field.split(".")[-1].split("[")[0])[1:-1] in msg, msg  # names the field


@pytest.mark.parametrize("meta_text", [
    "not json", "[1, 2]", "5", '"a string"', "", '{"text_dim":', "NaN", '{"text_dim": Infinity}',
    "[" * 100_000 + "]" * 100_000, '{"extra": ' + json.dumps(_deep(40)) + "}",
], ids=range(10))
def test_hostile_metadata_text_is_a_checkpoint_error(tiny, tmp_path, meta_text):
    path, header, data = tiny
    if meta_text.startswith('{"extra": '):  # a valid document except for its nesting depth
        meta = json.loads(header["__metadata__"]["pgfa_meta"])
        meta["extra"] = _deep(40)
        meta_text = json.dumps(meta)
    bad = _raw_file(tmp_path / "bad.safetensors", header, data, meta_text)
    with pytest.raises(CheckpointError):
        load_model(bad)


def test_hostile_framing_is_a_checkpoint_error(tiny, tmp_path):
    path, header, data = tiny
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    cases = {
        "truncated": [raw[:k] for k in (0, 3, 8, 9, n // 2, 8 + n, 8 + n + 1, len(raw) - 1)],
        "length lies": [(n + d).to_bytes(8, "little") + raw[8:] for d in (-5, -1, 1, 7, 1000)]
                       + [(2**63).to_bytes(8, "little") + raw[8:], (0).to_bytes(8, "little") + raw[8:]],
        "not json": [len(b"{garbage}").to_bytes(8, "little") + b"{garbage}" + data,
                     len(b"{\xff\xfe}").to_bytes(8, "little") + b"{\xff\xfe}" + data],
    }
    for meta_value in (5, None, ["x"], {"a": 1}):
        h = json.loads(json.dumps(header))
        h["__metadata__"]["pgfa_meta"] = meta_value
        blob = json.dumps(h).encode()
        cases.setdefault("pgfa_meta not a string", []).append(len(blob).to_bytes(8, "little") + blob + data)
    for md in (None, [], "x", {"format": "other"}):
        h = json.loads(json.dumps(header))
        h["__metadata__"] = md
        blob = json.dumps(h).encode()
        cases.setdefault("__metadata__", []).append(len(blob).to_bytes(8, "little") + blob + data)
    name = next(k for k in header if k != "__metadata__")
    for entry in ("x", 5, [], {"data_offsets": [5, 1]}, {"data_offsets": "ab"}, {"data_offsets": [0, 2**70]},
                  {**header[name], "dtype": "Q99"}, {**header[name], "shape": [10**9, 10**9]},
                  {**header[name], "shape": "big"}):
        h = json.loads(json.dumps(header))
        h[name] = entry
        blob = json.dumps(h).encode()
        cases.setdefault("tensor entry", []).append(len(blob).to_bytes(8, "little") + blob + data)
    for blob in (b"[1, 2]", b'"str"', b"5", b"[" * 50_000 + b"]" * 50_000, b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"):
        cases.setdefault("header not an object", []).append(len(blob).to_bytes(8, "little") + blob + data)
    for what, blobs in cases.items():
        for i, blob in enumerate(blobs):
            bad = tmp_path / f"f{i}.safetensors"
            bad.write_bytes(blob)
            with pytest.raises(CheckpointError):
                load_model(bad)
            assert True, (what, i)


def test_random_header_mutations_never_escape(tiny, tmp_path):
    """Byte flips anywhere in the header either still load or are a CheckpointError -- never a
    RuntimeError / ValueError / MemoryError / KeyError from inside the loader."""
    import random
    path, header, data = tiny
    raw = bytearray(path.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    rng = random.Random(13)
    outcomes = {"ok": 0, "error": 0}
    for i in range(300):
        b = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(0, 8 + n)
            b[pos] = rng.choice([rng.randrange(256), ord("-"), ord("9"), ord("{"), ord('"'), ord("]")])
        bad = tmp_path / "m.safetensors"
        bad.write_bytes(bytes(b))
        try:
            load_model(bad)
            outcomes["ok"] += 1
        except CheckpointError:
            outcomes["error"] += 1
    assert outcomes["error"] > 200, outcomes
