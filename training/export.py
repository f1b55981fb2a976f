"""Build the backend artifacts of a checkpoint and check them against eager PyTorch.

Parity is measured on real clips (UTD-MHAD through the one preprocessing function) and on
a label set: each backend's embeddings are compared with eager's (max / mean abs diff, min
cosine) and classified by cosine against the label set's text features; top-1 agreement
with eager must be 1.0.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from pgfa_models.alignment import l2_normalise
from pgfa_models.checkpoint import CheckpointMeta
from pgfa_models.runtime import BackendUnavailable, Runtime, load_runtime

log = logging.getLogger(__name__)

DEFAULT_BACKENDS = ("compiled", "onnxruntime", "tensorrt")
PARITY_TOLERANCE = 1e-4


def load_utd_clips(root: str | Path, meta: CheckpointMeta, max_clips: Optional[int] = 64,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(clips (N, 3, T, 25, M), actions (N,), names)`` from a UTD-MHAD folder, preprocessed with
    the checkpoint's preprocessing options and layout ``kinect_v1_20``. ``max_clips`` picks an
    evenly spread, deterministic subset (None: all)."""
    from pgfa_models.config import from_dict
    from pgfa_models.formats.utd_mhad import read_utd_mhad, scan_utd_mhad
    from pgfa_models.preprocess import PreprocessConfig, preprocess_clip

    cfg = from_dict(PreprocessConfig, meta.preprocess or {}, "checkpoint preprocess")
    records = scan_utd_mhad(root)
    if max_clips is not None and len(records) > max_clips:
        idx = np.linspace(0, len(records) - 1, max_clips).round().astype(int)
        records = [records[i] for i in idx]
    clips, actions, names = [], [], []
    for rec in records:
        res = preprocess_clip([read_utd_mhad(rec.path)], "kinect_v1_20", cfg, num_person=int(meta.num_person))
        if res.clip is None:
            log.info("skipping %s: %s", rec.path.name, res.reason)
            continue
        clips.append(res.clip)
        actions.append(rec.action)
        names.append(rec.path.name)
    if not clips:
        raise ValueError(f"no usable UTD-MHAD clips under {root}")
    return np.stack(clips).astype(np.float32), np.asarray(actions), names


def label_features(meta: CheckpointMeta, source: str = "text", seed: int = 0) -> tuple[np.ndarray, str]:
    """Text features ``(K, D)`` of the checkpoint's label set (its stored texts) from
    its own text model; ``source='random'`` (or a text model that cannot load) gives a fixed
    random unit matrix instead. Returns ``(features, what)``."""
    labels = list(meta.labels) or [f"class {i}" for i in range(27)]
    if source == "text":
        try:
            from pgfa_models.recognition import LabelSet
            from pgfa_models.text import TextEncoder
            # the label set the node builds: the checkpoint's text ensembles, its text centre
            feats = LabelSet.for_checkpoint(TextEncoder(meta.text_model), meta, labels).features
            if feats.shape[1] == meta.text_dim:
                return feats.astype(np.float32), f"{meta.text_model} features of {len(labels)} labels"
            log.warning("text model gives %d-d features, checkpoint expects %d: using a random label set",
                        feats.shape[1], meta.text_dim)
        except Exception as exc:  # noqa: BLE001
            log.warning("text encoder unavailable (%s): using a random label set", str(exc).splitlines()[0])
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((len(labels), meta.text_dim)).astype(np.float32)
    feats = l2_normalise(feats).astype(np.float32)
    return feats, f"fixed random unit matrix ({len(labels)} x {meta.text_dim}, seed {seed})"


def parity(reference: np.ndarray, other: np.ndarray, text: np.ndarray) -> dict[str, Any]:
    diff = np.abs(other.astype(np.float64) - reference.astype(np.float64))
    cos = np.sum(other * reference, axis=1)
    top_ref = np.argmax(reference @ text.T, axis=1)
    top = np.argmax(other @ text.T, axis=1)
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "min_cosine": float(cos.min()), "top1_agreement": float(np.mean(top == top_ref)),
            "top1_disagreements": int(np.sum(top != top_ref))}


@dataclass
class ExportReport:
    checkpoint: str
    checkpoint_sha256: str
    clips: str
    num_clips: int
    label_set: str
    tolerance: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    created: str = ""
    host: str = ""

    @property
    def ok(self) -> bool:
        return all(r["status"] in ("ok", "unavailable") for r in self.rows)

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "ok": self.ok}, indent=2, sort_keys=True) + "\n"

    def to_markdown(self) -> str:
        lines = [f"# Parity report: `{Path(self.checkpoint).name}`", "",
                 f"- checkpoint sha256: `{self.checkpoint_sha256}`",
                 f"- clips: {self.num_clips} ({self.clips})",
                 f"- label set: {self.label_set}",
                 f"- tolerance: max abs diff <= {self.tolerance:g} on L2-normalised embeddings, "
                 "top-1 agreement 1.0",
                 f"- created: {self.created} on {self.host}", "",
                 "| backend | status | artifact | max abs diff | mean abs diff | min cosine | top-1 agreement | load s |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            if r["status"] == "unavailable" or "max_abs_diff" not in r:
                lines.append(f"| {r['backend']} | {r['status']}: {r.get('message', '')} | | | | | | |")
                continue
            lines.append(f"| {r['backend']} | {r['status']} | {r.get('artifact') or '-'} | {r['max_abs_diff']:.2e} | "
                         f"{r['mean_abs_diff']:.2e} | {r['min_cosine']:.7f} | {r['top1_agreement']:.3f} | "
                         f"{r.get('load_s', 0):.2f} |")
        lines.append("")
        lines.append("Result: " + ("PASS" if self.ok else "FAIL"))
        return "\n".join(lines) + "\n"


def export(checkpoint: str | Path, backends: Sequence[str] = DEFAULT_BACKENDS, clips_from: Optional[str | Path] = None,
           device: str = "cpu", precision: str = "fp32", max_clips: Optional[int] = 64,
           labels: str = "text", rebuild: bool = False, cache_dir: Optional[str | Path] = None,
           tolerance: float = PARITY_TOLERANCE) -> ExportReport:
    """Build (or reuse) each backend's artifact for ``checkpoint`` and measure parity with eager.

    Clips come from ``clips_from`` (a UTD-MHAD folder) or, when None, 32 random clips."""
    checkpoint = Path(checkpoint)
    eager = load_runtime(checkpoint, "eager", device=device, precision="fp32")
    meta = eager.meta
    if clips_from is not None:
        clips, _, names = load_utd_clips(clips_from, meta, max_clips=max_clips)
        clip_what = f"UTD-MHAD {Path(clips_from)}, preprocess_clip(layout='kinect_v1_20')"
    else:
        clips = np.random.default_rng(0).standard_normal((32, *eager.input_shape)).astype(np.float32)
        clip_what = "random N(0,1) clips (no --clips-from given)"
    text, text_what = label_features(meta, labels)
    reference = eager.embed(clips)
    report = ExportReport(checkpoint=str(checkpoint), checkpoint_sha256=eager.checkpoint_sha256,
                          clips=clip_what, num_clips=int(len(clips)), label_set=text_what,
                          tolerance=tolerance,
                          created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                          host=platform.node())
    tol = tolerance if precision == "fp32" else max(tolerance, 2e-2)
    for backend in backends:
        row: dict[str, Any] = {"backend": f"{backend}/{device}/{precision}"}
        t0 = time.perf_counter()
        try:
            rt: Runtime = load_runtime(checkpoint, backend, device=device, precision=precision,
                                       rebuild=rebuild, cache_dir=cache_dir)
        except BackendUnavailable as exc:
            row.update(status="unavailable", message=str(exc))
            report.rows.append(row)
            continue
        except Exception as exc:  # noqa: BLE001 - reported, makes the export fail
            row.update(status="error", message=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            report.rows.append(row)
            continue
        row["load_s"] = round(time.perf_counter() - t0, 3)
        row["artifact"] = rt.artifact.name if rt.artifact else None
        row["cached"] = rt.info.get("cached")
        row.update(parity(reference, rt.embed(clips), text))
        row["status"] = "ok" if (row["max_abs_diff"] <= tol and row["top1_agreement"] == 1.0) else "mismatch"
        report.rows.append(row)
    return report
