"""One-file, versioned model checkpoints: safetensors weights + JSON metadata in the header.

Layout: a standard safetensors file whose header ``__metadata__`` holds
``{"format": "pgfa_ros.checkpoint", "pgfa_meta": <JSON of CheckpointMeta>}``.
Loading never unpickles anything: the header is parsed and checked by hand (bounded sizes,
offsets covering the file exactly), then the tensors are read by safetensors. Every problem
is a :class:`CheckpointError` with a one-line message naming the file.
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import torch

from .config import ConfigError, from_dict, to_dict
from .fileio import atomic_output
from .model import ENCODERS, MAX_MEMBERS, EncoderConfig, SeedEnsemble, SkeletonTextModel, build_model

FORMAT_NAME = "pgfa_ros.checkpoint"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024

# Bounds on the metadata, checked before anything is built from it: generous for any real
# model (the default is text_dim 384/768, hidden 16/64, M 1-2), small enough that a hostile
# header cannot make the loader allocate without limit.
MAX_TEXT_DIM = 8192
MAX_LABELS = 10_000
MAX_STRING = 10_000          # one label / description / text model name
MAX_TEXT_MODEL = 256
MAX_NESTING = 32             # JSON depth of extra / preprocess values
MAX_PREPROCESS_KEYS = 256
ENCODER_BOUNDS = {"in_channels": (1, 64), "hidden_channels": (1, 1024), "out_dim": (1, 8192),
                  "num_person": (1, 16), "num_frames": (2, 10_000)}

PathLike = Union[str, os.PathLike]


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, of another format or does not fit the model."""


@dataclass
class CheckpointMeta:
    """Everything needed to rebuild and use a trained model."""
    text_model: str
    text_dim: int
    labels: list[str]
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    preprocess: dict[str, Any] = field(default_factory=dict)
    descriptions: Optional[dict[str, str]] = None
    num_person: Optional[int] = None
    extra: dict[str, Any] = field(default_factory=dict)  # command, seed, epoch, metrics ...
    members: int = 1                                      # > 1: a SeedEnsemble of that many models
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = from_dict(EncoderConfig, self.encoder, "encoder")
        if self.num_person is None:
            self.num_person = self.encoder.num_person
        if self.num_person != self.encoder.num_person:
            raise ValueError(f"num_person {self.num_person} != encoder.num_person {self.encoder.num_person}")
        self.labels = list(self.labels)


def _meta_json(meta: CheckpointMeta) -> str:
    try:
        return json.dumps(to_dict(meta), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint metadata is not plain JSON data: {exc}") from None


def _members(model: Any) -> int:
    return len(model.members) if isinstance(model, SeedEnsemble) else 1


def save_checkpoint(path: PathLike, model: SkeletonTextModel | SeedEnsemble, meta: CheckpointMeta) -> Path:
    """Write ``model`` and ``meta`` to ``path`` atomically (temporary file, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    if meta.members != _members(model):
        raise CheckpointError(f"{path}: meta.members {meta.members} != the model's {_members(model)}")
    if to_dict(meta.encoder) != to_dict(model.encoder_cfg):
        raise CheckpointError(f"{path}: meta.encoder {to_dict(meta.encoder)} does not match the "
                              f"model's {to_dict(model.encoder_cfg)}")
    if meta.text_dim != model.text_dim:
        raise CheckpointError(f"{path}: meta.text_dim {meta.text_dim} != model text_dim {model.text_dim}")
    if meta.format_version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: can only write format_version {FORMAT_VERSION}")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    header = {"format": FORMAT_NAME, "pgfa_meta": _meta_json(meta)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return path


def _read_header(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate the safetensors framing of ``path``; return (tensor entries, __metadata__)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    if not path.is_file():
        raise CheckpointError(f"checkpoint is not a regular file: {path}")
    if size > MAX_FILE_BYTES:
        raise CheckpointError(f"{path}: file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit")
    with open(path, "rb") as fh:
        head = fh.read(9)
        # A safetensors header is JSON, so byte 8 is "{"; the first byte is the low byte of the
        # header length and may be anything, 0x80 included. Only without the "{" do the zip
        # (torch.save) and pickle (protocol 2+: 0x80) magics identify a PyTorch file.
        looks_torch = head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05")
        if head[8:9] != b"{" and looks_torch:
            raise CheckpointError(f"{path}: looks like a PyTorch pickle (.pt/.pth) file; refusing to "
                                  "unpickle it -- expected a pgfa_ros safetensors checkpoint")
        if len(head) < 9:
            raise CheckpointError(f"{path}: truncated or not a checkpoint ({size} bytes)")
        (n,) = struct.unpack("<Q", head[:8])
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise CheckpointError(f"{path}: corrupt or truncated checkpoint (header claims {n} bytes, "
                                  f"file has {size})")
        fh.seek(8)
        raw = fh.read(n)
    try:
        header = _loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"{path}: corrupt checkpoint (header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt checkpoint (header is not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    end = 0
    for name, entry in header.items():
        try:
            begin, stop = entry["data_offsets"]
            ok = isinstance(begin, int) and isinstance(stop, int) and 0 <= begin <= stop
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise CheckpointError(f"{path}: corrupt checkpoint (bad entry for tensor {name!r})")
        end = max(end, stop)
    if 8 + n + end != size:
        what = "truncated" if 8 + n + end > size else "corrupt"
        raise CheckpointError(f"{path}: {what} checkpoint (tensor data needs {8 + n + end} bytes, "
                              f"file has {size})")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME or "pgfa_meta" not in metadata:
        raise CheckpointError(f"{path}: safetensors file without pgfa_ros checkpoint metadata")
    return header, metadata


class _Bad(Exception):
    """A metadata field failed validation: (field, why)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _loads(text: str) -> Any:
    """json.loads without NaN/Infinity and without a RecursionError on deep nesting."""
    return json.loads(text, parse_constant=_reject_constant)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_in(field: str, v: Any, lo: int, hi: int) -> None:
    if not _is_int(v):
        raise _Bad(field, f"expected an integer, got {type(v).__name__} {_short(v)}")
    if not lo <= v <= hi:
        raise _Bad(field, f"{v} is out of range [{lo}, {hi}]")


def _string(field: str, v: Any, limit: int = MAX_STRING, empty: bool = True) -> None:
    if not isinstance(v, str):
        raise _Bad(field, f"expected a string, got {type(v).__name__} {_short(v)}")
    if len(v) > limit:
        raise _Bad(field, f"string of {len(v)} characters, over the {limit} limit")
    if not empty and not v:
        raise _Bad(field, "must not be empty")


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _plain(field: str, v: Any, depth: int = 0) -> None:
    """JSON data of bounded depth (what json produced, so only the depth can be hostile)."""
    if depth > MAX_NESTING:
        raise _Bad(field, f"nested deeper than {MAX_NESTING} levels")
    if isinstance(v, dict):
        for k, x in v.items():
            _plain(f"{field}.{k}", x, depth + 1)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _plain(f"{field}[{i}]", x, depth + 1)


def _check_encoder(v: Any) -> None:
    if not isinstance(v, dict):
        raise _Bad("encoder", f"expected a mapping, got {type(v).__name__} {_short(v)}")
    known = {f for f in EncoderConfig.__dataclass_fields__}
    unknown = sorted(str(k) for k in v if k not in known)
    if unknown:
        raise _Bad("encoder", f"unknown key(s) {unknown}")
    if "name" in v and v["name"] not in ENCODERS:
        raise _Bad("encoder.name", f"expected one of {ENCODERS}, got {_short(v['name'])}")
    for name, (lo, hi) in ENCODER_BOUNDS.items():
        if name in v and not (name == "hidden_channels" and v[name] is None):
            _int_in(f"encoder.{name}", v[name], lo, hi)
    if "dropout" in v:
        d = v["dropout"]
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not (0.0 <= d < 1.0):
            raise _Bad("encoder.dropout", f"expected a number in [0, 1), got {_short(d)}")
    if "edge_importance" in v and not isinstance(v["edge_importance"], bool):
        raise _Bad("encoder.edge_importance", f"expected true/false, got {_short(v['edge_importance'])}")


def validate_meta_dict(data: Any) -> None:
    """Type-check and bound every field of decoded checkpoint metadata; :class:`_Bad` names the
    first field that fails. Runs before any dataclass, tensor or model is built from it."""
    if not isinstance(data, dict):
        raise _Bad("metadata", f"expected a JSON object, got {type(data).__name__}")
    known = set(CheckpointMeta.__dataclass_fields__)
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise _Bad("metadata", f"unknown key(s) {unknown}")
    for name in ("text_model", "text_dim", "labels"):
        if name not in data:
            raise _Bad(name, "missing")
    _string("text_model", data["text_model"], MAX_TEXT_MODEL, empty=False)
    if any(ord(c) < 32 for c in data["text_model"]):
        raise _Bad("text_model", "contains control characters")
    _int_in("text_dim", data["text_dim"], 1, MAX_TEXT_DIM)
    labels = data["labels"]
    if not isinstance(labels, list):
        raise _Bad("labels", f"expected a list of strings, got {type(labels).__name__} {_short(labels)}")
    if len(labels) > MAX_LABELS:
        raise _Bad("labels", f"{len(labels)} labels, over the {MAX_LABELS} limit")
    for i, lab in enumerate(labels):
        _string(f"labels[{i}]", lab)
    if "encoder" in data:
        _check_encoder(data["encoder"])
    pre = data.get("preprocess", {})
    if not isinstance(pre, dict):
        raise _Bad("preprocess", f"expected a mapping, got {type(pre).__name__} {_short(pre)}")
    if len(pre) > MAX_PREPROCESS_KEYS:
        raise _Bad("preprocess", f"{len(pre)} keys, over the {MAX_PREPROCESS_KEYS} limit")
    _plain("preprocess", pre)
    desc = data.get("descriptions")
    if desc is not None:
        if not isinstance(desc, dict):
            raise _Bad("descriptions", f"expected a mapping or null, got {type(desc).__name__} {_short(desc)}")
        if len(desc) > MAX_LABELS:
            raise _Bad("descriptions", f"{len(desc)} entries, over the {MAX_LABELS} limit")
        for k, x in desc.items():
            _string(f"descriptions[{k!r}]", x)
    num_person = data.get("num_person")
    if num_person is not None:
        _int_in("num_person", num_person, *ENCODER_BOUNDS["num_person"])
        enc_np = (data.get("encoder") or {}).get("num_person", EncoderConfig.num_person)
        if num_person != enc_np:
            raise _Bad("num_person", f"{num_person} != encoder.num_person {enc_np}")
    if "members" in data:
        _int_in("members", data["members"], 1, MAX_MEMBERS)
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise _Bad("extra", f"expected a mapping, got {type(extra).__name__} {_short(extra)}")
    _plain("extra", extra)


def _parse_meta(path: Path, text: Any) -> CheckpointMeta:
    if not isinstance(text, str):
        raise CheckpointError(f"{path}: checkpoint metadata is not a JSON string")
    try:
        data = _loads(text)
    except (ValueError, RecursionError):
        raise CheckpointError(f"{path}: checkpoint metadata is not valid JSON") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: checkpoint metadata is not a JSON object")
    version = data.get("format_version")
    if version != FORMAT_VERSION or not _is_int(version):
        raise CheckpointError(f"{path}: unsupported checkpoint format_version {_short(version)} "
                              f"(this build reads {FORMAT_VERSION})")
    try:
        validate_meta_dict(data)
    except _Bad as bad:
        field_name, why = bad.args
        raise CheckpointError(f"{path}: invalid checkpoint metadata field {field_name!r}: {why}") from None
    except RecursionError:
        raise CheckpointError(f"{path}: invalid checkpoint metadata: nested too deeply") from None
    try:
        return from_dict(CheckpointMeta, data, "checkpoint metadata")
    except Exception as exc:  # noqa: BLE001 - validated above; anything left is still a bad file
        raise CheckpointError(f"{path}: invalid checkpoint metadata: {exc}") from None


def read_meta(path: PathLike) -> CheckpointMeta:
    """The validated metadata of a checkpoint without reading its tensors (tools that only need
    class names, calibration groups or preprocessing)."""
    path = Path(path)
    _, metadata = _read_header(path)
    return _parse_meta(path, metadata["pgfa_meta"])


def load_checkpoint(path: PathLike) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    """Read ``(state_dict, meta)`` from a checkpoint written by :func:`save_checkpoint`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_meta(path)
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt checkpoint ({first})") from None
    return state, meta


def load_model(path: PathLike, device: Union[str, torch.device] = "cpu") \
        -> tuple[SkeletonTextModel | SeedEnsemble, CheckpointMeta]:
    """Rebuild the model described by the checkpoint, load its weights, return it in eval mode."""
    path = Path(path)
    state, meta = load_checkpoint(path)
    try:
        # shapes first, on the meta device (no memory): the real model is built only when the
        # file actually holds its weights, so metadata alone can never size an allocation
        with torch.device("meta"):
            expected = build_model(meta.encoder, meta.text_dim, meta.members).state_dict()
    except (RuntimeError, ValueError, TypeError, MemoryError) as exc:
        raise CheckpointError(f"{path}: cannot build the model its metadata describes: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit the model described by its metadata "
                              f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
                              f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})")
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise CheckpointError(f"{path}: shape mismatch for {key}: file {tuple(state[key].shape)}, "
                                  f"model {tuple(ref.shape)}")
        if state[key].dtype != ref.dtype:
            raise CheckpointError(f"{path}: dtype mismatch for {key}: file {state[key].dtype}, "
                                  f"model {ref.dtype}")
    model = build_model(meta.encoder, meta.text_dim, meta.members)
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), meta


__all__ = ["CheckpointError", "CheckpointMeta", "FORMAT_VERSION", "save_checkpoint",
           "load_checkpoint", "load_model"]
