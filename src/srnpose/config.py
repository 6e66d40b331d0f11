"""Configs: frozen dataclasses with YAML in and out, and ``key=value`` overrides.

The helpers here are generic: they work for any (nested) frozen dataclass, so the training and
data configs reuse them. A user's mistake (unknown key, wrong type, malformed YAML) raises
:class:`~srnpose.errors.UserError` with one line naming the key or the file.

``SRNConfig`` is the model; ``MODEL_PRESETS`` names the model configs ``srnpose info``,
``train --preset`` and ``demo`` start from.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from srnpose.errors import UserError
from srnpose.outputs import write_text

__all__ = [
    "SRNConfig",
    "STAGE_KINDS",
    "BACKBONES",
    "REPARAMS",
    "MODEL_PRESETS",
    "get_model_preset",
    "to_dict",
    "from_dict",
    "validate",
    "load_yaml",
    "read_yaml_mapping",
    "save_yaml",
    "apply_overrides",
]

T = TypeVar("T")

# The valid values are the types; kept here (not imported from srnpose.model) so the config stays
# importable without torch.
StageKind = Literal["regression", "detection"]
Backbone = Literal["resnet18", "resnet50"]  # keys of srnpose.model.resnet.RESNET_SPECS
Reparam = Literal["offset", "heatmap3d", "heatmap2d", "heatmap2d_depth"]  # keys of REPARAM_CHANNELS_PER_JOINT
STAGE_KINDS = typing.get_args(StageKind)
BACKBONES = typing.get_args(Backbone)
REPARAMS = typing.get_args(Reparam)


@dataclass(frozen=True)
class SRNConfig:
    """The SRN network. Defaults are the paper's model (about 33.6M parameters for 21 joints)."""

    # 21: the canonical hand (wrist + 4 joints per finger), the joint count the paper's 33.6M refers
    # to; 14 for NYU's evaluation subset, 16 for ICVL.
    num_joints: int = 21
    # 3 stages: the paper's best trade-off between accuracy and speed (more stages gave little).
    num_stages: int = 3
    # "regression" (layers 2-4, global pooling, FC: the paper's stacked regression network) or
    # "detection" (layers 2-4 and deconvolutions back to feature resolution predict offset fields,
    # decoded by top-k voting). A comma-separated list gives one kind per stage, e.g.
    # "detection,regression,regression".
    stage_kind: str = "regression"
    # ResNet-18 (BasicBlock): the paper's real-time model. "resnet50" (Bottleneck) is heavier.
    backbone: Backbone = "resnet18"
    # Channels of the stem and layer1; layers 2-4 use 2x, 4x, 8x. 64 is the standard ResNet; the
    # demo uses a narrower network to train on a CPU.
    width: int = 64
    # 128x128 depth crops, as in the paper; features are input_size / 4 (32x32). Must be a multiple
    # of 32 so that layer4 (stride 32 overall) has at least one pixel.
    input_size: int = 128
    # Re-parameterization variant (the paper's ablation): "offset" (3D heatmap + unit vector field,
    # the paper's choice), "heatmap3d", "heatmap2d", "heatmap2d_depth".
    reparam: Reparam = "offset"
    # Radius of the 3D heatmap in normalized crop units (1 = half the cube, 125 mm for a 250 mm
    # cube): the authors' released code uses offset_theta = 1, so every hand point within half a
    # cube of a joint takes part in the heatmap and in the vote.
    theta: float = 1.0
    # Std of the 2D Gaussian heatmaps in normalized units (heatmap2d variants only): 0.15 is 2.4
    # feature pixels at 32x32, the authors' std of 3.4 px in exp(-(d / std)^2).
    sigma: float = 0.15
    # Pixels that vote in the top-k decode of detection stages: 30, as in the authors' code.
    topk: int = 30
    # Stage s > 1 sees the maps of all previous stages (the paper's default), not only the last one.
    accumulate: bool = True
    # Gradients flow through the re-parameterization into earlier stages (the paper's end-to-end
    # training); True cuts them, as if each stage were trained on fixed inputs.
    detach_reparam: bool = False

    def __post_init__(self) -> None:
        _require(self.num_joints >= 1, "num_joints", self.num_joints, "must be >= 1")
        _require(self.num_stages >= 1, "num_stages", self.num_stages, "must be >= 1")
        kinds = self.stage_kinds  # also validates the kind names
        _require(len(kinds) in (1, self.num_stages), "stage_kind", self.stage_kind,
                 f"gives {len(kinds)} kinds for {self.num_stages} stages")
        _require(self.backbone in BACKBONES, "backbone", self.backbone, f"must be one of {', '.join(BACKBONES)}")
        _require(self.width >= 1, "width", self.width, "must be >= 1")
        _require(self.input_size >= 32 and self.input_size % 32 == 0, "input_size", self.input_size,
                 "must be a positive multiple of 32")
        _require(self.reparam in REPARAMS, "reparam", self.reparam, f"must be one of {', '.join(REPARAMS)}")
        _require(self.theta > 0, "theta", self.theta, "must be > 0")
        _require(self.sigma > 0, "sigma", self.sigma, "must be > 0")
        fs = self.feature_size
        _require(1 <= self.topk <= fs * fs, "topk", self.topk,
                 f"must be in [1, {fs * fs}] (the pixels of the {fs}x{fs} feature map)")

    @property
    def feature_size(self) -> int:
        """Side of the preliminary feature map: input_size / 4."""
        return self.input_size // 4

    @property
    def stage_kinds(self) -> tuple[str, ...]:
        """One kind per stage, ``num_stages`` long."""
        kinds = tuple(k.strip() for k in str(self.stage_kind).split(","))
        for k in kinds:
            _require(k in STAGE_KINDS, "stage_kind", self.stage_kind,
                     f"names {k!r}; valid kinds: {', '.join(STAGE_KINDS)}")
        return kinds * self.num_stages if len(kinds) == 1 else kinds


def _require(ok: bool, name: str, value: Any, problem: str) -> None:
    if not ok:
        raise ValueError(f"{name}={value!r} {problem}")


# name -> model config. Explicit table; `srnpose info/train --preset NAME`.
MODEL_PRESETS: dict[str, SRNConfig] = {
    # The paper's model: 3 ResNet-18 regression stages on 128x128 crops, offset re-parameterization.
    "paper": SRNConfig(),
    # What `srnpose demo` trains on a 2-core CPU in minutes: 64x64 crops (16x16 features) and a
    # quarter-width ResNet-18 (width 16; it beat width 32 at equal time, see train.PRESETS) cut the
    # cost per frame about 50-fold against "paper" while keeping the 3-stage structure.
    "demo": SRNConfig(input_size=64, width=16),
    # The shipped model (MODEL_CARD.md): SRN with two stacked regression stages at width 28 (0.100
    # GFLOPs a pass), grown from "release-base" by a second stage that reads the first's offset maps;
    # at equal time and start it beat one more stage-less run of release-base on the synthetic test and
    # the real frames (docs/benchmarks.md, The stacked release).
    "release": SRNConfig(input_size=64, width=28, num_stages=2),
    # Its first stage alone, trained first: the demo's cost (0.056 GFLOPs a pass) spent on one wider
    # regression stage, which at equal cost and time on 2 CPU cores beat three width-16 stages from
    # scratch (docs/benchmarks.md, Choosing the shipped model's size); the shipped model until 2026-12-07.
    "release-base": SRNConfig(input_size=64, width=28, num_stages=1),
    # Smoke tests: trains a few steps in seconds.
    "tiny": SRNConfig(num_stages=2, input_size=32, width=16, topk=8),
}


def get_model_preset(name: str) -> SRNConfig:
    """The preset ``name``; an unknown name raises UserError listing the valid ones."""
    if name not in MODEL_PRESETS:
        raise UserError(f"unknown preset {name!r}; valid presets: {', '.join(MODEL_PRESETS)}")
    return MODEL_PRESETS[name]


# --------------------------------------------------------------------------- generic helpers

def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as plain YAML-safe data (nested dataclasses -> dicts, tuples -> lists)."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"expected a dataclass instance, got {type(cfg).__name__}")
    return {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (converting lists to tuples, int to float)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except UserError as exc:
                errors.append(str(exc))
        raise UserError(errors[0] if len(errors) == 1 else f"{key}: {value!r} matches none of {tp}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise UserError(f"{key}: {value!r} is not one of {', '.join(map(str, args))}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise UserError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return _from_dict(tp, value, key + ".")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            items = [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
        elif origin is tuple and args:
            if len(value) != len(args):
                raise UserError(f"{key}: expected {len(args)} values, got {len(value)}")
            items = [_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            items = [_coerce(v, args[0], f"{key}[{i}]") if args else v for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise UserError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise UserError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string: the number a user meant
            try:
                number = float(value)
            except ValueError:
                number = None
            if number is not None and math.isfinite(number):
                return number
        raise UserError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise UserError(f"{key}: expected a string, got {value!r}")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise UserError(f"{key}: expected a path, got {value!r}")
    return value


def _from_dict(cls: type[T], data: dict[str, Any], prefix: str) -> T:
    types_ = _field_types(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise UserError(f"unknown config key {prefix + str(unknown[0])!r}; valid keys: {', '.join(names)}")
    kwargs = {k: _coerce(v, types_[k], prefix + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise UserError(f"invalid {prefix.rstrip('.') or cls.__name__}: {exc}") from None


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build the dataclass ``cls`` from plain data; missing keys take their defaults.

    Nested dataclass fields take nested mappings. An unknown key, a value of the wrong type or a
    value its ``__post_init__`` rejects raises UserError naming the key (and the valid keys).
    """
    if not isinstance(data, dict):
        raise UserError(f"expected a mapping of {cls.__name__} fields, got {type(data).__name__}")
    return _from_dict(cls, data, "")


def validate(cfg: Any, prefix: str = "") -> None:
    """Check every field of the (nested) config dataclass ``cfg`` against its type, ``Literal``
    choices included; UserError names the first bad key. For configs built in code (presets, tests),
    which do not pass through :func:`from_dict`."""
    types_ = _field_types(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate(value, prefix + f.name + ".")
        else:
            _coerce(value, types_[f.name], prefix + f.name)


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping (``yaml.safe_load``; empty file -> {}).

    Unreadable file, malformed YAML (with its line) or a non-mapping raise UserError naming the file.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"cannot read config {path}: not UTF-8 text (byte {exc.start}); a binary file?") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}{where}: malformed YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Read a YAML config file into ``cls``; errors name the file (and the line or key)."""
    data = read_yaml_mapping(path)
    try:
        return from_dict(cls, data)
    except UserError as exc:
        raise UserError(f"{Path(path)}: {exc}") from None


def save_yaml(cfg: Any, path: str | Path) -> Path:
    """Write ``cfg`` (a config dataclass or plain data) as YAML, field order kept, atomically: a
    temporary file, fsynced, then renamed over ``path`` (:func:`srnpose.outputs.write_text`; a full disk
    is one line). Creates parent folders. The one YAML writer."""
    import yaml

    data = to_dict(cfg) if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type) else cfg
    return write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def apply_overrides(cfg: T, overrides: list[str] | tuple[str, ...]) -> T:
    """Return ``cfg`` with ``["key=value", "model.theta=0.5", ...]`` applied, in order.

    Keys are field names, dotted for nested dataclasses; values are parsed with ``yaml.safe_load``
    (``true``, ``3``, ``0.5``, ``[1, 2]``, ``null``) and checked against the field's type. A bad
    key or value raises UserError naming it.
    """
    import yaml

    for item in overrides:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"override {item!r} must look like key=value")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise UserError(f"override {key}: cannot parse value {text!r}") from None
        cfg = _replace_path(cfg, key.split("."), value, key)
    return cfg


def _replace_path(cfg: Any, parts: list[str], value: Any, key: str) -> Any:
    names = [f.name for f in dataclasses.fields(cfg)]
    head = parts[0]
    if head not in names:
        raise UserError(f"unknown config key {key!r}; valid keys: {', '.join(names)}")
    current = getattr(cfg, head)
    if len(parts) > 1:
        if not dataclasses.is_dataclass(current):
            raise UserError(f"unknown config key {key!r}: {head} has no sub-keys")
        new_value = _replace_path(current, parts[1:], value, key)
    else:
        new_value = _coerce(value, _field_types(type(cfg))[head], key)
    try:
        return dataclasses.replace(cfg, **{head: new_value})
    except ValueError as exc:
        raise UserError(f"override {key}: {exc}") from None
