"""Skeleton layouts and their mapping into the canonical NTU RGB+D 25 layout (SPEC §3).

Every source (Azure Kinect, MediaPipe, Kinect v1 / UTD-MHAD) is turned into NTU-25 joints in
NTU camera space (metres, y up, z away from the sensor, subject's right side at +x when the
subject faces the sensor) by one linear map: a (25 x J) weight matrix that writes each NTU joint
as a weighted average of source joints, then a 3x3 axis matrix and a unit scale. Keeping it
linear makes the tables testable on synthetic input and the mapping a single matmul.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NTU25_JOINTS: tuple[str, ...] = (
    "spine_base", "spine_mid", "neck", "head",
    "shoulder_left", "elbow_left", "wrist_left", "hand_left",
    "shoulder_right", "elbow_right", "wrist_right", "hand_right",
    "hip_left", "knee_left", "ankle_left", "foot_left",
    "hip_right", "knee_right", "ankle_right", "foot_right",
    "spine_shoulder", "hand_tip_left", "thumb_left", "hand_tip_right", "thumb_right",
)

# Standard NTU (child, parent) pairs, 1-based as published, converted to 0-based below.
_NTU25_BONES_1BASED = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
    (20, 19), (22, 23), (23, 8), (24, 25), (25, 12),
)
NTU25_BONES: tuple[tuple[int, int], ...] = tuple((c - 1, p - 1) for c, p in _NTU25_BONES_1BASED)

AZURE_KINECT_32_JOINTS: tuple[str, ...] = (
    "pelvis", "spine_navel", "spine_chest", "neck", "clavicle_left", "shoulder_left",
    "elbow_left", "wrist_left", "hand_left", "handtip_left", "thumb_left", "clavicle_right",
    "shoulder_right", "elbow_right", "wrist_right", "hand_right", "handtip_right", "thumb_right",
    "hip_left", "knee_left", "ankle_left", "foot_left", "hip_right", "knee_right", "ankle_right",
    "foot_right", "head", "nose", "eye_left", "ear_left", "eye_right", "ear_right",
)

MEDIAPIPE_33_JOINTS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)

KINECT_V1_20_JOINTS: tuple[str, ...] = (
    "head", "shoulder_center", "spine", "hip_center", "left_shoulder", "left_elbow",
    "left_wrist", "left_hand", "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot", "right_hip", "right_knee",
    "right_ankle", "right_foot",
)

# Kinect for Windows SDK 1.x enum order (NW-UCLA and other SDK recordings): same joints as UTD-MHAD's
# Kinect v1 files, different order (hip centre first).
KINECT_V1_SDK_20_JOINTS: tuple[str, ...] = (
    "hip_center", "spine", "shoulder_center", "head", "left_shoulder", "left_elbow",
    "left_wrist", "left_hand", "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot", "right_hip", "right_knee",
    "right_ankle", "right_foot",
)

# Bandai Namco Research Motiondataset-1 BVH rig: its 22 channel-bearing joints in file order, then
# 3 sites that pgfa_models.formats.bvh.read_bandai_bvh derives by forward kinematics because the
# rig's end sites are empty: HeadCentre continues the head bone (Neck -> Head) by twice its length,
# Palm_* continue the forearm by a third of its length, each turning with the head's / hand's own
# rotation (so a nod or a bent wrist moves them). The reader returns this order, matched by name.
BANDAI_BVH_JOINTS: tuple[str, ...] = (
    "joint_Root", "Hips", "Spine", "Chest", "Neck", "Head",
    "Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L",
    "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R",
    "UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L",
    "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R",
    "HeadCentre", "Palm_L", "Palm_R",
)

# A mapping entry is {source_joint: weight}; weights of one NTU joint sum to 1.
_Entry = dict[int, float]


def _j(i: int) -> _Entry:
    return {i: 1.0}


def mid(*entries: _Entry | int) -> _Entry:
    """Average of joints or of already-built entries (``mid(mid(11, 12), mid(7, 8))``)."""
    out: _Entry = {}
    for e in entries:
        e = _j(e) if isinstance(e, int) else e
        for k, w in e.items():
            out[k] = out.get(k, 0.0) + w / len(entries)
    return out


@dataclass(frozen=True, eq=False)
class Layout:
    """One source skeleton layout and its linear map into NTU-25 camera space.

    ``ntu = (weights @ joints) @ axes.T * unit_scale`` per frame. Arrays are read-only so a
    shared layout cannot be changed by accident.
    """

    name: str
    num_joints: int
    weights: np.ndarray  # (25, num_joints)
    axes: np.ndarray  # (3, 3): NTU xyz = axes @ source xyz
    unit_scale: float  # source unit -> metres
    joint_names: tuple[str, ...]

    @property
    def used(self) -> np.ndarray:
        """(25, J) bool: which source joints each NTU joint depends on (for NaN propagation)."""
        return self.weights != 0


def _build(name: str, joint_names: tuple[str, ...], table: list[_Entry | int],
           axes: np.ndarray, unit_scale: float = 1.0) -> Layout:
    assert len(table) == 25, name
    w = np.zeros((25, len(joint_names)))
    for k, entry in enumerate(table):
        for src, weight in (_j(entry) if isinstance(entry, int) else entry).items():
            w[k, src] += weight
    assert np.allclose(w.sum(1), 1.0), name
    axes = np.asarray(axes, dtype=np.float64)
    w.setflags(write=False)
    axes.setflags(write=False)
    return Layout(name, len(joint_names), w, axes, float(unit_scale), joint_names)


IDENTITY_AXES = np.eye(3)
# Camera frames with x right / y down / z forward in the (non-mirrored) image: the subject's
# right appears at image-left, i.e. -x, and NTU puts it at +x; y must point up. (-x, -y, z) is
# a 180-degree rotation about z (det +1), so handedness, and hence left/right, is preserved.
FLIP_XY_AXES = np.diag([-1.0, -1.0, 1.0])

_AZURE_TABLE: list[_Entry | int] = [
    0, 1, 3, 26,
    5, 6, 7, 8,
    12, 13, 14, 15,
    18, 19, 20, 21,
    22, 23, 24, 25,
    2, 9, 10, 16, 17,
]

_MP_SPINE_BASE = mid(23, 24)
_MP_SPINE_SHOULDER = mid(11, 12)
_MEDIAPIPE_TABLE: list[_Entry | int] = [
    _MP_SPINE_BASE, mid(_MP_SPINE_BASE, _MP_SPINE_SHOULDER), mid(mid(11, 12), mid(7, 8)), mid(7, 8),
    11, 13, 15, mid(17, 19),
    12, 14, 16, mid(18, 20),
    23, 25, 27, 31,
    24, 26, 28, 32,
    _MP_SPINE_SHOULDER, 19, 21, 20, 22,
]

_KINECT_V1_TABLE: list[_Entry | int] = [
    3, 2, mid(1, 0), 0,
    4, 5, 6, 7,
    8, 9, 10, 11,
    12, 13, 14, 15,
    16, 17, 18, 19,
    1, 7, 7, 11, 11,
]

# Kinect v1 axes, checked on the real UTD-MHAD files (test/test_layouts.py repeats it):
# - a3_s1_t1 frame 0: head y = +0.49, hip_center y = -0.10  -> y is already up;
# - left_shoulder x = -0.19, right_shoulder x = +0.14, subject facing the sensor -> the
#   subject's right is at +x, as in Kinect v2 / NTU camera space (x grows to the sensor's left);
# - a3 "right hand wave": the joints labelled right_wrist/right_hand move most (std ~0.6 m vs
#   ~0.03 m for the left ones), so the file's left/right labels are the subject's own sides;
# - z ~ 2.9 m, positive away from the sensor, metres.
# Kinect v1 skeleton space is therefore NTU space already: identity axes, unit scale 1.

# NW-UCLA (Kinect v1, SDK order), the same joints as _KINECT_V1_TABLE re-indexed. Checked on the
# real files (test/test_formats_nw_ucla.py): y up (head ~1.2 m above the feet), the subject's
# right at +x when the feet point at the sensor, metres, z > 0 away from the sensor -> identity.
_KINECT_V1_SDK_TABLE: list[_Entry | int] = [
    0, 1, mid(2, 3), 3,
    4, 5, 6, 7,
    8, 9, 10, 11,
    12, 13, 14, 15,
    16, 17, 18, 19,
    2, 7, 7, 11, 11,
]

# Bandai Namco BVH rig -> NTU-25, by bone geometry measured on the 174 takes (rest offsets, cm):
# Hips -> Spine 15.7 -> Chest 9.0 -> Neck 16.4 -> Head 6.5 (end site 0: no head top); UpperArm_*
# are the shoulder joints (Shoulder_* start the clavicles), Hand_* sit at the wrist (forearm
# 22.3 cm, no hand segment), Foot_* are the ankles and Toes_* the balls of the feet.
# - spine shoulder = Neck (41 cm above Hips, at shoulder height; Kinect v1 shoulder centre 41 cm);
# - neck = Head (the top of the neck); head = HeadCentre, 19 cm above the neck base as Kinect's
#   head centre is above its shoulder centre (hips -> head 0.59 m; Kinect v1 0.58-0.59, Azure 0.59-0.61);
# - spine mid = mid(Spine, Chest), halfway up the torso as NTU's is;
# - hand = Palm_*, 7.4 cm past the wrist (Kinect v1 wrist -> hand 7-8 cm);
# - hand tips and thumbs = the hand (the rule for every source lacking them).
# Axes: the BVH world is y up, metres after read_bandai_bvh, and the actor mostly starts facing +z
# (129 of 174 takes) with _L at +x; a 180-degree turn about y makes that pose face the sensor as
# NTU subjects do (-z), right side at +x. det +1, so left/right are kept.
_BANDAI_TABLE: list[_Entry | int] = [
    1, mid(2, 3), 5, 22,
    7, 8, 9, 23,
    11, 12, 13, 24,
    14, 15, 16, 17,
    18, 19, 20, 21,
    4, 23, 23, 24, 24,
]
TURN_Y_AXES = np.diag([-1.0, 1.0, -1.0])
LAYOUTS: dict[str, Layout] = {
    "ntu_25": _build("ntu_25", NTU25_JOINTS, list(range(25)), IDENTITY_AXES),
    "azure_kinect_32": _build("azure_kinect_32", AZURE_KINECT_32_JOINTS, _AZURE_TABLE, FLIP_XY_AXES),
    # MediaPipe world landmarks use image axes (x right, y down, z away) and metres around the
    # hip centre; like Azure, (-x, -y, z) gives y up with the subject's left kept on the left.
    "mediapipe_33": _build("mediapipe_33", MEDIAPIPE_33_JOINTS, _MEDIAPIPE_TABLE, FLIP_XY_AXES),
    "kinect_v1_20": _build("kinect_v1_20", KINECT_V1_20_JOINTS, _KINECT_V1_TABLE, IDENTITY_AXES),
    "kinect_v1_sdk_20": _build("kinect_v1_sdk_20", KINECT_V1_SDK_20_JOINTS, _KINECT_V1_SDK_TABLE,
                               IDENTITY_AXES),
    "bandai_bvh": _build("bandai_bvh", BANDAI_BVH_JOINTS, _BANDAI_TABLE, TURN_Y_AXES),
}


def get_layout(name: str | Layout) -> Layout:
    """Look up a layout by name (a ``Layout`` passes through); unknown names are a config bug."""
    if isinstance(name, Layout):
        return name
    try:
        return LAYOUTS[name]
    except KeyError:
        raise KeyError(f"unknown skeleton layout {name!r}; valid layouts: {sorted(LAYOUTS)}") from None


def map_to_ntu(joints: np.ndarray, layout: str | Layout) -> np.ndarray:
    """Map source joints (T,J,3) or (J,3) to NTU-25 camera space, returning float64 (T,25,3).

    A source joint with any non-finite coordinate is missing; an NTU joint is NaN exactly when
    one of the source joints it uses is missing (unused NaN columns do not leak via 0*NaN).
    """
    layout = get_layout(layout)
    x = np.asarray(joints, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != (layout.num_joints, 3):
        raise ValueError(f"{layout.name}: expected joints of shape (T,{layout.num_joints},3) "
                         f"or ({layout.num_joints},3), got {np.shape(joints)}")
    missing = ~np.isfinite(x).all(axis=-1)  # (T,J)
    if missing.any():
        x = np.where(missing[..., None], 0.0, x)
    n, j = x.shape[:2]
    # one 2-D GEMM: (25,J) @ (J,T*3) -> (25,T,3) -> (T,25,3)
    out = (layout.weights @ x.transpose(1, 0, 2).reshape(j, -1)).reshape(25, n, 3).transpose(1, 0, 2)
    out = out @ (layout.axes.T * layout.unit_scale)
    if missing.any():
        bad = (missing.astype(np.float64) @ layout.used.T.astype(np.float64)) > 0  # (T,25)
        out[bad] = np.nan
    return out
