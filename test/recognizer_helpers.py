"""Helpers shared by the recogniser tests: a tiny random-weight checkpoint and a fake text encoder."""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np

from pgfa_ros.recognizer_params import DEFAULT_CHECKPOINT as _DEFAULT_CHECKPOINT

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = Path(_DEFAULT_CHECKPOINT)
UTD_LABELS = ["right arm swipe to the left", "right hand wave", "two hand front clap",
              "right arm throw", "cross arms in the chest"]


def make_checkpoint(path, labels=UTD_LABELS, text_dim=384, text_model="all-MiniLM-L6-v2", seed=0, preprocess=None):
    """A small random-weight ST-GCN checkpoint (plumbing tests only); ``preprocess``: its
    recorded preprocessing options."""
    import torch

    from pgfa_models.checkpoint import CheckpointMeta, save_checkpoint
    from pgfa_models.model import EncoderConfig, SkeletonTextModel

    torch.manual_seed(seed)
    enc = EncoderConfig(name="stgcn", num_person=1)
    model = SkeletonTextModel(enc, text_dim)
    meta = CheckpointMeta(text_model=text_model, text_dim=text_dim, labels=list(labels), encoder=enc,
                          preprocess=dict(preprocess or {}))
    return save_checkpoint(path, model, meta)


class FakeEncoder:
    """Deterministic hash-seeded unit vectors; counts how many texts it embedded."""

    def __init__(self, dim=384):
        self.dim = dim
        self.calls: list[list[str]] = []
        self.model_id = "fake"

    def encode(self, texts):
        texts = list(texts)
        self.calls.append(texts)
        out = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).normal(size=self.dim)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)


def ros_subprocess_env() -> dict[str, str]:
    """Environment for test subprocesses: this run's DDS domain, localhost-only, unbuffered."""
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(10 + os.getpid() % 90))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@contextlib.contextmanager
def inprocess_node(tmp_path, labels=UTD_LABELS, preprocess=None, start=True, **params):
    """A ``RecognizerNode`` in this process (own rclpy context, no executor: tests call its
    callbacks directly), on a tiny random checkpoint with the fake text encoder; configured and
    activated when ``start``. Yields the node; ``params`` are start-up parameter overrides."""
    import rclpy
    from rclpy.parameter import Parameter

    import pgfa_ros.recognizer_node as rn
    from pgfa_models import recognition

    ckpt = make_checkpoint(Path(tmp_path) / "tiny.safetensors", labels=labels, preprocess=preprocess)
    real = recognition.load_recognizer
    overrides = {"checkpoint": str(ckpt), "layout": "kinect_v1_20", "backend": "eager",
                 "skeleton_topic": "/pgfa_test/unused", "bank_dir": str(tmp_path), **params}
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(ros_subprocess_env()["ROS_DOMAIN_ID"]))
    saved = rn.load_recognizer
    rn.load_recognizer = lambda *a, **k: real(*a, encoder=FakeEncoder(), **k)
    node = None
    try:
        node = rn.RecognizerNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
        if start:
            assert rn.autostart(node), node.configure_error
        yield node
    finally:
        rn.load_recognizer = saved
        if node is not None:
            node._destroy_entities()
            node._release()
            node.destroy_node()
        rclpy.try_shutdown(context=ctx)
