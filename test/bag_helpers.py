"""Shared helpers for the bag tests: a small real UTD-MHAD selection and a test checkpoint."""
from __future__ import annotations

from pathlib import Path

import numpy as np

U1 = [3, 14, 17, 18, 23]  # utd_mhad/U1 unseen classes (SPEC §6)
SUBJECTS = [1]


def utd_subset_dir(utd_dir: Path, dest: Path, classes=U1, subjects=SUBJECTS) -> Path:
    """Symlink the chosen classes' / subjects' real files into ``dest`` (a UTD-MHAD folder)."""
    from pgfa_models.formats.utd_mhad import scan_utd_mhad

    dest.mkdir(parents=True, exist_ok=True)
    for r in scan_utd_mhad(utd_dir):
        if r.action in classes and r.subject in subjects:
            (dest / r.path.name).symlink_to(r.path)
    return dest


def make_centered_checkpoint(path: Path, utd_dir: Path, seed: int = 0, descriptions: dict | None = None) -> Path:
    """Random-weight ST-GCN whose projection is centred on a few real clips, so that its
    zero-shot predictions are spread over several classes (a plain random model predicts one
    class for everything, which would make an equality test weak)."""
    import torch

    from pgfa_models.checkpoint import CheckpointMeta, save_checkpoint
    from pgfa_models.formats.utd_mhad import read_utd_mhad
    from pgfa_models.model import EncoderConfig, SkeletonTextModel
    from pgfa_models.preprocess import preprocess_clip

    torch.manual_seed(seed)
    enc = EncoderConfig(name="stgcn", num_person=1)
    model = SkeletonTextModel(enc, 384).eval()
    files = sorted(utd_dir.glob("a1_s*_t1_skeleton.mat"))[:4]
    x = np.stack([preprocess_clip([read_utd_mhad(f)], "kinect_v1_20").clip for f in files])
    with torch.no_grad():
        mu = model.encoder(torch.from_numpy(x)).mean(0)
        model.psi.bias.copy_(-model.psi.weight @ mu)
    meta = CheckpointMeta(text_model="all-MiniLM-L6-v2", text_dim=384, labels=["a", "b"], encoder=enc,
                          descriptions=descriptions or {}, extra={"description_kind": "complete"})
    return save_checkpoint(path, model, meta)


# ----------------------------------------------------------------------------- long synthetic bags
_SENTINEL = (1234567890, 987654321)  # a stamp no real marker carries: patched per frame


def _stamp_bytes(sec: int, nsec: int) -> bytes:
    import struct

    return struct.pack("<iI", sec, nsec)


def skeleton_frame_template(num_joints: int = 20, bodies=(0,), frame_id: str = "kinect_v1_camera"):
    """Serialised MarkerArray of ``bodies`` and a function giving the same bytes at another stamp
    (the CDR is written once; only the 8 stamp bytes of each marker header change), so a test can
    write tens of thousands of frames in a second."""
    from pgfa_ros.bag.convention import MARKER_ARRAY, NS_PER_S
    from pgfa_ros.bag.io import marker_array, typestore

    rng = np.random.default_rng(0)
    joints = {b: rng.normal(size=(num_joints, 3)) for b in bodies}
    ns = _SENTINEL[0] * NS_PER_S + _SENTINEL[1]
    raw = bytes(typestore().serialize_cdr(marker_array(joints, ns, frame_id), MARKER_ARRAY))
    pattern = _stamp_bytes(*_SENTINEL)
    assert raw.count(pattern) == num_joints * len(bodies)

    def at(stamp_ns: int) -> bytes:
        sec, nsec = divmod(int(stamp_ns), NS_PER_S)
        return raw.replace(pattern, _stamp_bytes(sec, nsec))

    return at, joints


def write_long_bag(path: Path, frames: int, *, clip_frames: int = 1000, image_every: int = 25,
                   image_bytes: int = 64 * 1024, fps: float = 30.0, storage: str = "mcap") -> dict:
    """A converted-style bag (meta, one label per ``clip_frames`` frames, skeletons at ``fps``)
    interleaved with a ``sensor_msgs/Image`` topic of ``image_bytes`` payloads every
    ``image_every`` frames. Returns the byte totals per topic."""
    from pgfa_models.formats.utd_mhad import UTD_MHAD_CLASSES
    from pgfa_ros.bag.convention import (
        LABEL_TOPIC, MARKER_ARRAY, META_TOPIC, SKELETON_TOPIC, STRING, BagMeta, ClipLabel, frame_stamp_ns,
    )
    from pgfa_ros.bag.io import BagWriter, string_msg, typestore

    T = typestore().types
    at, _ = skeleton_frame_template()
    img = T["sensor_msgs/msg/Image"](
        header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="cam"),
        height=1, width=image_bytes, encoding="mono8", is_bigendian=0, step=image_bytes,
        data=np.full(image_bytes, 7, np.uint8))
    img_raw = bytes(typestore().serialize_cdr(img, "sensor_msgs/msg/Image"))
    t0 = 1_700_000_000 * 10**9
    n_clips = -(-frames // clip_frames)
    totals = {SKELETON_TOPIC: 0, "/camera/image_raw": 0}
    with BagWriter(path, storage) as w:
        w.add_topic(META_TOPIC, STRING, latched=True)
        w.add_topic(LABEL_TOPIC, STRING)
        w.add_topic(SKELETON_TOPIC, MARKER_ARRAY)
        w.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
        meta = BagMeta("kinect_v1_20", fps, "utd_mhad", list(UTD_MHAD_CLASSES), n_clips, frames, 1,
                       frame_id="kinect_v1_camera")
        w.write(META_TOPIC, t0, string_msg(meta.to_json()))
        for k in range(frames):
            st = frame_stamp_ns(t0, k, fps)
            if k % clip_frames == 0:
                n = min(clip_frames, frames - k)
                c = k // clip_frames
                lab = ClipLabel(UTD_MHAD_CLASSES[c % 27], c % 27, st, frame_stamp_ns(t0, k + n - 1, fps),
                                frames=n, name=f"clip{c:04d}")
                w.write(LABEL_TOPIC, st, string_msg(lab.to_json()))
            raw = at(st)
            w.write_raw(SKELETON_TOPIC, st, raw)
            totals[SKELETON_TOPIC] += len(raw)
            if k % image_every == 0:
                w.write_raw("/camera/image_raw", st, img_raw)
                totals["/camera/image_raw"] += len(img_raw)
    return totals
