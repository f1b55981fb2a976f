"""Per-body sliding windows of the live node: re-exported from :mod:`pgfa_models.windows`.

The implementation lives in the pure core so that the bag tools (``pgfa-bag eval`` on bags
without labels) cut windows with the very same code, defaults and gap rule as the node.
"""
from pgfa_models.windows import ReadyWindow, WindowConfig, WindowManager, cut_windows  # noqa: F401

__all__ = ["WindowConfig", "ReadyWindow", "WindowManager", "cut_windows"]
