"""Configs: validation, YAML round trip, overrides, error messages; `srnpose info`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from srnpose.cli import main
from srnpose.config import (
    MODEL_PRESETS,
    SRNConfig,
    apply_overrides,
    from_dict,
    get_model_preset,
    load_yaml,
    save_yaml,
    to_dict,
)
from srnpose.errors import UserError


@dataclass(frozen=True)
class _Outer:
    """A nested config like the training config will be."""

    model: SRNConfig = field(default_factory=SRNConfig)
    lr: float = 1e-3
    steps: int | None = None
    milestones: tuple[int, ...] = (10, 20)
    name: str = "run"


def test_defaults_are_the_paper_model():
    cfg = SRNConfig()
    assert (cfg.num_joints, cfg.num_stages, cfg.backbone, cfg.input_size, cfg.reparam) == (21, 3, "resnet18", 128, "offset")
    assert cfg.stage_kinds == ("regression",) * 3 and cfg.accumulate and cfg.feature_size == 32
    assert SRNConfig(num_stages=2, stage_kind="detection, regression").stage_kinds == ("detection", "regression")


@pytest.mark.parametrize("kwargs, name", [
    (dict(reparam="gauss"), "reparam"),
    (dict(input_size=100), "input_size"),
    (dict(topk=2000), "topk"),
    (dict(stage_kind="regression,detection"), "stage_kind"),  # 2 kinds for 3 stages
    (dict(stage_kind="pose"), "stage_kind"),
    (dict(backbone="vgg"), "backbone"),
    (dict(theta=0), "theta"),
])
def test_validation_names_the_field(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SRNConfig(**kwargs)


def test_yaml_round_trip(tmp_path):
    cfg = _Outer(model=SRNConfig(num_stages=2, theta=0.8, stage_kind="detection"), steps=5, milestones=(3, 4))
    path = save_yaml(cfg, tmp_path / "sub" / "config.yaml")
    assert load_yaml(_Outer, path) == cfg
    text = path.read_text()
    assert "model:\n  num_joints: 21\n" in text and "milestones:\n- 3\n- 4\n" in text
    assert from_dict(_Outer, to_dict(cfg)) == cfg


def test_missing_keys_take_defaults():
    assert from_dict(_Outer, {"model": {"num_stages": 1}}) == _Outer(model=SRNConfig(num_stages=1))


def test_overrides_parse_and_type_check():
    cfg = apply_overrides(_Outer(), ["model.theta=0.5", "lr=2", "steps=null", "model.accumulate=false",
                                     "milestones=[1, 2, 3]", 'name="12"'])
    assert cfg.model.theta == 0.5 and cfg.lr == 2.0 and isinstance(cfg.lr, float)
    assert cfg.steps is None and cfg.model.accumulate is False and cfg.milestones == (1, 2, 3)
    assert cfg.name == "12"  # quoted: a string; unquoted 12 is a YAML int and is refused below
    with pytest.raises(UserError, match=r"^name: expected a string, got 12$"):
        apply_overrides(_Outer(), ["name=12"])
    assert apply_overrides(SRNConfig(), ["num_stages=2"]).num_stages == 2
    # YAML 1.1 reads 1e-3 (no dot) as a string; a float key takes it as the number it names
    assert apply_overrides(_Outer(), ["lr=1e-3"]).lr == 1e-3
    with pytest.raises(UserError, match=r"^lr: expected a number, got 'fast'$"):
        apply_overrides(_Outer(), ["lr=fast"])


@pytest.mark.parametrize("item, message", [
    ("model.num_stages=two", "model.num_stages: expected an integer, got 'two'"),
    ("model.accumulate=3", "model.accumulate: expected true or false, got 3"),
    ("model.reparam=gauss", "model.reparam: 'gauss' is not one of offset, heatmap3d"),
    ("lr", "override 'lr' must look like key=value"),
    ("model.foo=1", "unknown config key 'model.foo'; valid keys: num_joints, num_stages"),
    ("foo.bar=1", "unknown config key 'foo.bar'; valid keys: model, lr, steps, milestones, name"),
    ("lr.x=1", "unknown config key 'lr.x': lr has no sub-keys"),
])
def test_override_errors_name_the_key(item, message):
    with pytest.raises(UserError) as exc:
        apply_overrides(_Outer(), [item])
    assert message in str(exc.value)


def test_unknown_yaml_key_lists_valid_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  num_joints: 14\n  thetta: 1.0\n")
    with pytest.raises(UserError) as exc:
        load_yaml(_Outer, path)
    msg = str(exc.value)
    assert str(path) in msg and "'model.thetta'" in msg and "valid keys: num_joints, num_stages" in msg


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("num_joints: 14\nnum_stages: [2\ntheta: 1\n")
    with pytest.raises(UserError, match=r"bad\.yaml line \d+: malformed YAML") as exc:
        load_yaml(SRNConfig, path)
    assert "\n" not in str(exc.value)
    with pytest.raises(UserError, match="cannot read config"):
        load_yaml(SRNConfig, tmp_path / "missing.yaml")


def test_invalid_value_in_yaml_is_a_user_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("input_size: 100\n")
    with pytest.raises(UserError, match=r"c\.yaml: invalid SRNConfig: input_size=100 must be a positive multiple of 32"):
        load_yaml(SRNConfig, path)


def test_presets():
    assert MODEL_PRESETS["paper"] == SRNConfig()
    assert MODEL_PRESETS["tiny"].input_size == 32 and MODEL_PRESETS["tiny"].num_stages == 2
    with pytest.raises(UserError, match="unknown preset 'huge'; valid presets: paper, demo, release, release-base, tiny"):
        get_model_preset("huge")


def test_info_json_reports_the_paper_model(capsys):
    assert main(["info", "--preset", "paper", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("params", "gflops", "input_size", "feature_size", "num_stages", "stage_kind", "stages",
                "backbone", "reparam"):
        assert key in summary
    assert summary["params"] == 33_627_773 and summary["input_size"] == 128
    assert [s["in_channels"] for s in summary["stages"]] == [64, 148, 232]


def test_info_config_file_and_overrides(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  num_joints: 14\n  num_stages: 1\nlr: 0.001\n")  # a run config's model section
    assert main(["info", "--preset", "tiny", "--config", str(path), "--set", "model.reparam=heatmap3d",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_joints"] == 14 and summary["num_stages"] == 1 and summary["reparam"] == "heatmap3d"
    assert summary["input_size"] == 32  # from the preset
    assert main(["info", "--preset", "tiny"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["model", "preset", "tiny"] and "regression" in table
    assert table.splitlines()[1].startswith("parameters")


def test_info_describes_the_shipped_model_by_default(capsys):
    from srnpose.config import SRNConfig, from_dict
    from srnpose.training.checkpoint import load_run_config
    from srnpose.training.run_config import PRESETS
    from srnpose.weights import release_dir

    assert main(["info", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    shipped = from_dict(SRNConfig, load_run_config(release_dir())["model"])
    assert summary["model"].startswith("the shipped model")
    assert (summary["input_size"], summary["num_stages"]) == (shipped.input_size, shipped.num_stages)
    assert summary["params"] != 33_627_773  # not the paper's model
    assert main(["info", "--checkpoint", str(release_dir()), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == summary["params"]
    with pytest.raises(SystemExit):
        main(["info", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"{', '.join(PRESETS)} (default: the shipped model" in help_text and "release" in PRESETS


def test_info_user_errors_are_one_line(capsys):
    assert main(["info", "--set", "num_stages=abc"]) == 2
    assert capsys.readouterr().err == "srnpose info: error: num_stages: expected an integer, got 'abc'\n"
    assert main(["info", "--preset", "nope"]) == 2
    assert "valid presets: paper, demo, release, release-base, tiny" in capsys.readouterr().err
