"""Readers for on-disk skeleton datasets; each returns source-layout joints (T,J,3)."""
from .bvh import (BandaiRecord, Bvh, BvhError, BvhJoint, forward_kinematics, parse_bvh,
                  read_bandai_bvh, read_bandai_labels, read_bvh, scan_bandai)
from .nw_ucla import NW_UCLA_CLASSES, NW_UCLA_FPS, NwUclaRecord, read_nw_ucla, scan_nw_ucla
from .smartfallmm import (SMARTFALL_ACTIVITIES, SMARTFALL_FPS, SmartFallRecord, read_smartfallmm,
                          scan_smartfallmm)
from .utd_mhad import UTD_MHAD_CLASSES, UtdRecord, read_utd_mhad, scan_utd_mhad

__all__ = [
    "UTD_MHAD_CLASSES", "UtdRecord", "read_utd_mhad", "scan_utd_mhad",
    "NW_UCLA_CLASSES", "NW_UCLA_FPS", "NwUclaRecord", "read_nw_ucla", "scan_nw_ucla",
    "SMARTFALL_ACTIVITIES", "SMARTFALL_FPS", "SmartFallRecord", "read_smartfallmm", "scan_smartfallmm",
    "BandaiRecord", "Bvh", "BvhError", "BvhJoint", "forward_kinematics", "parse_bvh",
    "read_bandai_bvh", "read_bandai_labels", "read_bvh", "scan_bandai",
]
