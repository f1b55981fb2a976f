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
from .model import EncoderConfig, SkeletonTextModel

FORMAT_NAME = "pgfa_ros.checkpoint"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024

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


def save_checkpoint(path: PathLike, model: SkeletonTextModel, meta: CheckpointMeta) -> Path:
    """Write ``model`` and ``meta`` to ``path`` atomically (temporary file, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
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
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
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


def _parse_meta(path: Path, text: str) -> CheckpointMeta:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: checkpoint metadata is not valid JSON") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: checkpoint metadata is not a JSON object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint format_version {version!r} "
                              f"(this build reads {FORMAT_VERSION})")
    try:
        return from_dict(CheckpointMeta, data, "checkpoint metadata")
    except (ConfigError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid checkpoint metadata: {exc}") from None


def load_checkpoint(path: PathLike) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    """Read ``(state_dict, meta)`` from a checkpoint written by :func:`save_checkpoint`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    _, metadata = _read_header(path)
    meta = _parse_meta(path, metadata["pgfa_meta"])
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt checkpoint ({first})") from None
    return state, meta


def load_model(path: PathLike, device: Union[str, torch.device] = "cpu") -> tuple[SkeletonTextModel, CheckpointMeta]:
    """Rebuild the model described by the checkpoint, load its weights, return it in eval mode."""
    path = Path(path)
    state, meta = load_checkpoint(path)
    model = SkeletonTextModel(meta.encoder, meta.text_dim)
    expected = model.state_dict()
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
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), meta


__all__ = ["CheckpointError", "CheckpointMeta", "FORMAT_VERSION", "save_checkpoint",
           "load_checkpoint", "load_model"]
