"""Readers for on-disk skeleton datasets; each returns source-layout joints (T,J,3)."""
from .utd_mhad import UTD_MHAD_CLASSES, UtdRecord, read_utd_mhad, scan_utd_mhad

__all__ = ["UTD_MHAD_CLASSES", "UtdRecord", "read_utd_mhad", "scan_utd_mhad"]
