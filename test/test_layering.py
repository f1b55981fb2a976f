"""SPEC §2 dependency direction, checked on the source: pgfa_models imports neither rclpy nor
the other two packages; in pgfa_ros only CLI modules may use training's project data."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods.add(node.module.split(".")[0])
    return mods


@pytest.mark.parametrize("path", sorted((REPO / "pgfa_models").rglob("*.py")), ids=lambda p: p.name)
def test_core_stays_pure(path):
    assert not _imports(path) & {"rclpy", "training", "pgfa_ros"}


@pytest.mark.parametrize("path", sorted((REPO / "pgfa_ros").rglob("*.py")), ids=lambda p: p.name)
def test_ros_shell_uses_training_only_from_clis(path):
    if path.name.startswith("cli"):
        return
    assert "training" not in _imports(path), f"{path}: only CLI modules may import training"
