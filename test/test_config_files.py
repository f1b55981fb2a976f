"""The project's config files are found in the checkout, else in the installed share dir."""
import pytest

from pgfa_models.config import ConfigError
from training import config_files
from training.config_files import config_path


def test_checkout_files_are_found():
    for name in ("splits.yaml", "classes.yaml", "protocols.yaml"):
        assert config_path(name, ConfigError).is_file()


def test_share_dir_then_a_clear_error(tmp_path, monkeypatch):
    share = tmp_path / "share" / "pgfa_ros" / "config"
    share.mkdir(parents=True)
    (share / "protocols.yaml").write_text("protocols: {}\n")
    monkeypatch.setattr(config_files, "__file__", str(tmp_path / "site" / "training" / "config_files.py"))
    monkeypatch.setattr(config_files.sys, "prefix", str(tmp_path))
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    assert config_path("protocols.yaml", ConfigError) == share / "protocols.yaml"
    with pytest.raises(ConfigError, match="nothing.yaml not found; looked in"):
        config_path("nothing.yaml", ConfigError)
