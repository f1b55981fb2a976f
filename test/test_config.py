from dataclasses import dataclass, field

import pytest

from pgfa_models.config import ConfigError, from_dict, load_yaml, read_yaml, to_dict


@dataclass
class Inner:
    lr: float = 0.05
    milestones: tuple = (10, 20)


@dataclass
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)


def test_nested_round_trip_and_tuples():
    cfg = from_dict(Outer, {"name": "a", "inner": {"lr": 0.1, "milestones": [1, 2]}})
    assert cfg.inner.lr == 0.1 and cfg.inner.milestones == (1, 2)
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_unknown_and_missing_keys_fail_loudly():
    with pytest.raises(ConfigError, match=r"cfg\.inner: unknown key\(s\) \['lrr'\]"):
        from_dict(Outer, {"name": "a", "inner": {"lrr": 1}}, "cfg")
    with pytest.raises(ConfigError, match="name"):
        from_dict(Outer, {})


def test_yaml_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: invalid YAML"):
        load_yaml(Outer, bad)
    good = tmp_path / "good.yaml"
    good.write_text("name: x\ninner: {lr: 0.2}\n")
    assert load_yaml(Outer, good) == Outer("x", Inner(lr=0.2))


def test_yaml_error_is_one_line_for_a_directory_a_binary_file_and_bad_syntax(tmp_path):
    """These used to escape as IsADirectoryError / UnicodeDecodeError tracebacks (pgfa-launch DIR)."""
    with pytest.raises(ConfigError, match="is a directory"):
        read_yaml(tmp_path, what="launch file")
    binary = tmp_path / "ckpt.yaml"
    binary.write_bytes(b"\xb0\x01\xff\x00")
    with pytest.raises(ConfigError, match="not a text"):
        read_yaml(binary)
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n")
    with pytest.raises(ConfigError) as info:
        read_yaml(bad)
    assert "\n" not in str(info.value) and "line 2" in str(info.value)
