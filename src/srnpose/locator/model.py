"""A learned hand locator for full depth frames: where is the hand, and is there one?

:func:`srnpose.geometry.find_hand_center` takes the nearest blob. That fails when a torso is nearer
to the camera than a hand raised beside it, when an arm points at the camera (the forearm nearer than
the hand) and in first-person views (the forearm enters from the border, nearer than the hand). The
locator is a small CNN that looks at the whole frame, downsampled, and says where the hand is (its
3D centre, the joints' centroid) and whether there is one. The frame path (``--center auto``) then
crops where training crops were placed at that hand (:meth:`srnpose.data.centering.CenterPolicy.locate_near`:
the measured surface gives the centre, the locator's depth is its weakest output on real frames);
``--center locator`` crops at the locator's own centre, ``--center depth`` runs the old search alone.
``refine=True`` moves the guess to the search inside its cube (:func:`refine_center`).

Steps, each a function with its inverse where it has one::

    frame (H, W) raw ─ prepare_frame ─> input (1, H', W') in [-1, 1]   (frame_transform: 3x3 M, letterbox)
                     ─ HandLocator ───> heatmap logits (H'/4, W'/4), centre depth map, presence logit
                     ─ decode_heatmap > peaks (u, v, d) in input pixels, each with its score
                     ─ input_nrm_to_uvd (inverse: uvd_to_input_nrm) > the guess in frame pixels
                     ─ refine_center ─> (optional) find_hand_center inside the guess's cube

* Input: the frame letterboxed into ``input_hw`` (aspect ratio kept, nearest neighbour: depth values
  stay real), depth ``[near_mm, far_mm]`` -> ``[-1, 1]``; no measurement (0) and beyond ``far_mm``
  read ``+1`` (far), as in the crops of :mod:`srnpose.geometry`.
* Target: the 3D centroid of the labelled joints (as uvd), the centre every crop of srnpose uses.
  Normalized as the crops are: ``u_nrm = (u_in + 0.5) / (W' / 2) - 1`` for input pixel ``u_in``,
  ``d_nrm = (d - mid) / half`` over the depth range.
* Heatmap head: one logit per cell of ``STRIDE`` x ``STRIDE`` input pixels, trained with a
  cross-entropy against a Gaussian at the target (softmax over the frame). Decoding takes the peak
  cell and a soft-argmax in its 3x3 neighbourhood: a frame with two hands gives two peaks and the
  centre of one of them, never their midpoint.
* Depth head: per cell, the nearest surface in the cell (a min-pool of the input) plus a learned
  offset of up to a few ``depth_offset_mm``: the hand's centroid lies behind its visible surface.
* Presence: a logit from the pooled deepest features; trained on scenes rendered without their hands
  and on empty frames (:mod:`srnpose.locator.train`).

Two hands: :meth:`Locator.locate` takes the nearest of the peaks scoring at least ``PEAK_SHARE`` of
the best one (``prefer="nearest"``, the default), the best-scoring one (``"score"``), or the one
furthest left/right *in the view it is given* (``"left"``/``"right"``; the locator does not tell a
left hand from a right one). :mod:`srnpose.inference.frame_path` maps a user's left/right (of the frame as
given) onto the un-mirrored view.

Files (:func:`save_locator`, :func:`load_locator`): ``locator.safetensors`` (weights) and
``locator.yaml`` (``locator:`` the config, ``train:`` a summary); :func:`attach_locator` copies them
into a run folder, where :func:`find_locator` finds them for every checkpoint of the run.

Frames are in the camera's own, un-mirrored view here (flip a mirrored sensor's frame first, as
:mod:`srnpose.inference.frame_path` does).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srnpose import geometry
from srnpose.config import from_dict, read_yaml_mapping, save_yaml, to_dict
from srnpose.data.centering import DEFAULT_CUBE_MM, FAR_MM, NEAR_MM
from srnpose.errors import UserError, require_extra
from srnpose.geometry import Intrinsics
from srnpose.inference.backends import make_ort_session, torch_threads
from srnpose.model.resnet import BasicBlock, init_weights, make_layer
from srnpose.outputs import write_bytes, writing

__all__ = [
    "LocatorConfig",
    "FrameScale",
    "frame_transform",
    "prepare_frame",
    "uvd_to_input_nrm",
    "input_nrm_to_uvd",
    "HandLocator",
    "Peak",
    "cell_surface",
    "decode_heatmap",
    "refine_center",
    "LocatorResult",
    "Locator",
    "save_locator",
    "find_locator",
    "attach_locator",
    "load_locator",
    "export_locator_onnx",
    "evaluate_centers",
    "PREFER",
    "STRIDE",
]

STRIDE = 4  # input pixels per heatmap cell (the network's output is at 1/4 of its input)
PREFER = ("score", "nearest", "left", "right")
PEAK_SHARE = 0.25  # prefer != "score": peaks scoring at least this share of the best one compete
WEIGHTS_FILE = "locator.safetensors"
CONFIG_FILE = "locator.yaml"
ONNX_FILE = "locator.onnx"  # optional: export_locator_onnx's file, run by backend="onnxruntime"


@dataclass(frozen=True)
class LocatorConfig:
    """The locator's network and input. Saved beside the weights (``locator.yaml``)."""

    # (H', W') of the letterboxed input, multiples of 16: a 4:3 frame fills 72 x 96 (a 320x240 frame at
    # 0.3x, a hand 180 mm long at 2 m still spans ~6 input pixels), Kinect V2's 512x424 79.5 x 96
    input_hw: tuple[int, int] = (80, 96)
    width: int = 16  # channels of the first stage (then 2x, 4x, 4x): ~20 M multiply-adds per frame
    near_mm: float = 0.0  # depth range mapped to [-1, 1]; beyond far_mm reads as missing (+1)
    far_mm: float = 2500.0  # a hand held up by a person 2.4 m away is still inside
    depth_offset_mm: float = 100.0  # scale of the depth head's offset behind the nearest surface
    cube_mm: float = DEFAULT_CUBE_MM  # the refinement's cube (the crop policy's default cube)
    # refine_center: the share of the cube it searches around the guess, and the furthest it may move it
    refine_margin: float = 0.6
    refine_accept_mm: float = 125.0
    presence_threshold: float = 0.5  # below: no hand

    def __post_init__(self) -> None:
        hw = tuple(int(x) for x in self.input_hw)
        object.__setattr__(self, "input_hw", hw)
        if len(hw) != 2 or any(x < 16 or x % 16 for x in hw):
            raise ValueError(f"input_hw must be two multiples of 16, got {self.input_hw}")
        if int(self.width) < 4:
            raise ValueError(f"width must be >= 4, got {self.width}")
        if not 0 <= self.near_mm < self.far_mm:
            raise ValueError(f"need 0 <= near_mm < far_mm, got {self.near_mm}, {self.far_mm}")
        if not 0 < self.presence_threshold < 1:
            raise ValueError(f"presence_threshold must be in (0, 1), got {self.presence_threshold}")

    @property
    def heatmap_hw(self) -> tuple[int, int]:
        return (self.input_hw[0] // STRIDE, self.input_hw[1] // STRIDE)


# --------------------------------------------------------------------------- frame <-> input


@dataclass(frozen=True)
class FrameScale:
    """How a frame became the locator's input: ``M`` (3, 3) maps frame pixels ``(u, v, 1)`` to input
    pixels; depth ``[near_mm, far_mm]`` maps to ``[-1, 1]``."""

    M: np.ndarray
    frame_hw: tuple[int, int]
    input_hw: tuple[int, int]
    near_mm: float
    far_mm: float
    intrinsics: Intrinsics  # the frame's


def frame_transform(frame_hw: tuple[int, int], input_hw: tuple[int, int]) -> np.ndarray:
    """3x3 ``M``: frame pixels to input pixels of a letterbox (scale ``s`` kept for both axes, the
    frame centred). Pixel ``u`` covers ``[u - 0.5, u + 0.5]`` in both images, so the frame's edges
    ``-0.5`` and ``W - 0.5`` land at ``ox - 0.5`` and ``ox + s W - 0.5``."""
    h, w = (int(x) for x in frame_hw)
    ih, iw = (int(x) for x in input_hw)
    if min(h, w, ih, iw) <= 0:
        raise ValueError(f"sizes must be positive, got frame {frame_hw}, input {input_hw}")
    s = min(iw / w, ih / h)
    ox, oy = (iw - s * w) / 2.0, (ih - s * h) / 2.0
    return np.array([[s, 0.0, 0.5 * s + ox - 0.5], [0.0, s, 0.5 * s + oy - 0.5], [0.0, 0.0, 1.0]])


def prepare_frame(depth: np.ndarray, intrinsics: Intrinsics, depth_unit_mm: float = 1.0,
                  size: tuple[int, int] = LocatorConfig.input_hw,
                  depth_range_mm: tuple[float, float] = (LocatorConfig.near_mm, LocatorConfig.far_mm),
                  ) -> tuple[np.ndarray, FrameScale]:
    """A raw frame (H, W) (any numeric dtype, ``depth_unit_mm`` per unit, 0 = no measurement) to the
    locator's input ``(1, H', W')`` float32 in ``[-1, 1]`` and its :class:`FrameScale`.

    Nearest-neighbour resampling through :func:`frame_transform` (separable, as
    :func:`geometry.crop_frame`); pixels of the letterbox's margin read as missing (+1)."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must have shape (H, W), got {depth.shape}")
    h, w = depth.shape
    ih, iw = (int(x) for x in size)
    near, far = (float(x) for x in depth_range_mm)
    M = frame_transform((h, w), (ih, iw))
    s, tx, ty = M[0, 0], M[0, 2], M[1, 2]
    ui = np.floor((np.arange(iw) - tx) / s + 0.5).astype(np.int64)  # (W',) frame columns
    vi = np.floor((np.arange(ih) - ty) / s + 0.5).astype(np.int64)  # (H',) frame rows
    ok_u, ok_v = (ui >= 0) & (ui < w), (vi >= 0) & (vi < h)
    raw = depth[np.ix_(np.clip(vi, 0, h - 1), np.clip(ui, 0, w - 1))].astype(np.float32)  # (H', W')
    raw[~ok_v, :] = 0.0
    raw[:, ~ok_u] = 0.0
    if depth_unit_mm != 1.0:
        raw *= np.float32(depth_unit_mm)
    half, mid = (far - near) / 2.0, (far + near) / 2.0
    x = (raw - np.float32(mid)) / np.float32(half)
    x[(raw <= 0) | (x > 1)] = 1.0
    np.clip(x, -1.0, 1.0, out=x)
    return x[None], FrameScale(M, (h, w), (ih, iw), near, far, intrinsics)


def uvd_to_input_nrm(uvd: np.ndarray, scale: FrameScale) -> np.ndarray:
    """Frame ``uvd`` (..., 3) (px, px, mm) to the locator's normalized coordinates (..., 3):
    ``u_nrm = (u_in + 0.5) / (W' / 2) - 1`` of input pixel ``u_in``, ``d_nrm`` over the depth range."""
    uvd = np.asarray(uvd, dtype=np.float64)
    if uvd.shape[-1:] != (3,):
        raise ValueError(f"uvd must have shape (..., 3), got {uvd.shape}")
    M = scale.M
    u_in = M[0, 0] * uvd[..., 0] + M[0, 2]
    v_in = M[1, 1] * uvd[..., 1] + M[1, 2]
    ih, iw = scale.input_hw
    half, mid = (scale.far_mm - scale.near_mm) / 2.0, (scale.far_mm + scale.near_mm) / 2.0
    return np.stack([(u_in + 0.5) / (iw / 2.0) - 1.0, (v_in + 0.5) / (ih / 2.0) - 1.0,
                     (uvd[..., 2] - mid) / half], axis=-1)


def input_nrm_to_uvd(nrm: np.ndarray, scale: FrameScale) -> np.ndarray:
    """Inverse of :func:`uvd_to_input_nrm`: normalized (..., 3) to frame ``uvd`` (..., 3)."""
    nrm = np.asarray(nrm, dtype=np.float64)
    if nrm.shape[-1:] != (3,):
        raise ValueError(f"nrm must have shape (..., 3), got {nrm.shape}")
    M = scale.M
    ih, iw = scale.input_hw
    u_in = (nrm[..., 0] + 1.0) * (iw / 2.0) - 0.5
    v_in = (nrm[..., 1] + 1.0) * (ih / 2.0) - 0.5
    half, mid = (scale.far_mm - scale.near_mm) / 2.0, (scale.far_mm + scale.near_mm) / 2.0
    return np.stack([(u_in - M[0, 2]) / M[0, 0], (v_in - M[1, 2]) / M[1, 1], nrm[..., 2] * half + mid], axis=-1)


# --------------------------------------------------------------------------- the network


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class HandLocator(nn.Module):
    """(B, 1, H', W') input -> heatmap logits (B, H'/4, W'/4), centre depth (B, H'/4, W'/4) normalized
    as the input, presence logit (B,). A small ResNet (our BasicBlocks) to 1/16 and back to 1/4."""

    def __init__(self, config: LocatorConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.config = config = config or LocatorConfig(**kwargs)
        w = int(config.width)
        self.stem = _conv_bn(1, w, 2)  # 1/2
        self.layer1 = make_layer(BasicBlock, w, 2 * w, 1, stride=2)  # 1/4
        self.layer2 = make_layer(BasicBlock, 2 * w, 4 * w, 1, stride=2)  # 1/8
        self.layer3 = make_layer(BasicBlock, 4 * w, 4 * w, 1, stride=2)  # 1/16: the frame's context
        self.fuse8 = _conv_bn(4 * w, 2 * w)
        self.lateral4 = nn.Conv2d(2 * w, 2 * w, 1)
        self.fuse4 = _conv_bn(2 * w, 2 * w)
        self.head = nn.Conv2d(2 * w, 2, 1)  # heatmap logit, depth offset
        self.presence = nn.Linear(8 * w, 1)
        init_weights(self)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        half = (config.far_mm - config.near_mm) / 2.0
        self.offset_nrm = float(config.depth_offset_mm) / half

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f4 = self.layer1(self.stem(x))  # (B, 2w, H/4, W/4)
        f8 = self.layer2(f4)  # (B, 4w, H/8, W/8)
        f16 = self.layer3(f8)  # (B, 4w, H/16, W/16)
        g8 = self.fuse8(f8 + F.interpolate(f16, scale_factor=2.0, mode="nearest"))  # (B, 2w, H/8, W/8)
        g4 = self.fuse4(self.lateral4(f4) + F.interpolate(g8, scale_factor=2.0, mode="nearest"))
        out = self.head(g4)  # (B, 2, H/4, W/4)
        surface = -F.max_pool2d(-x, STRIDE)[:, 0]  # (B, H/4, W/4) the nearest surface in each cell
        depth = surface + out[:, 1] * self.offset_nrm
        pooled = torch.cat([f16.mean(dim=(2, 3)), f16.amax(dim=(2, 3))], dim=1)  # (B, 8w)
        return out[:, 0], depth, self.presence(pooled)[:, 0]


# --------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class Peak:
    """One heatmap peak: ``nrm`` (3,) the centre in normalized input coordinates, ``score`` the
    heatmap's probability mass in its 3x3 cells."""

    nrm: np.ndarray
    score: float


def cell_surface(x: np.ndarray) -> np.ndarray:
    """(1, H', W') input -> (H'/4, W'/4) float: 1 where the cell holds a measured pixel in range
    (its depth estimate stands on a surface), else 0."""
    ih, iw = x.shape[-2:]
    cells = x.reshape(ih // STRIDE, STRIDE, iw // STRIDE, STRIDE).min(axis=(1, 3))
    return (cells < 1.0).astype(np.float64)


def _softmax2d(logits: np.ndarray) -> np.ndarray:
    p = np.exp(logits - logits.max())
    return p / p.sum()


def decode_heatmap(logits: np.ndarray, depth_nrm: np.ndarray, surface: np.ndarray | None = None,
                   max_peaks: int = 4) -> list[Peak]:
    """Peaks of a heatmap (h, w) logits, best first: local maxima (3x3) holding at least
    ``PEAK_SHARE`` of the best one's score. Each: soft-argmax over its 3x3 cells, the depth map
    (h, w) averaged with the same weights over the cells where ``surface`` (h, w) (1: the cell shows
    a surface, see :func:`cell_surface`) is set. Cell ``(i, j)`` covers input pixels ``[4 j - 0.5, 4 j + 3.5]``."""
    logits = np.asarray(logits, dtype=np.float64)
    h, w = logits.shape
    p = _softmax2d(logits)
    pad = np.pad(p, 1)
    windows = np.lib.stride_tricks.sliding_window_view(pad, (3, 3))  # (h, w, 3, 3)
    mass = windows.sum(axis=(2, 3))  # (h, w)
    is_max = p >= windows.max(axis=(2, 3))
    cand = np.flatnonzero(is_max.ravel())
    cand = cand[np.argsort(-mass.ravel()[cand])][:max_peaks]
    best = mass.ravel()[cand[0]]
    dpad = np.pad(np.asarray(depth_nrm, dtype=np.float64), 1, mode="edge")
    spad = np.pad(np.ones_like(p) if surface is None else np.asarray(surface, dtype=np.float64), 1)
    ih, iw = h * STRIDE, w * STRIDE
    peaks = []
    for k in cand:
        i, j = divmod(int(k), w)
        if mass[i, j] < PEAK_SHARE * best:
            break
        wts = pad[i:i + 3, j:j + 3]  # (3, 3) cells i-1..i+1, j-1..j+1
        total = wts.sum()
        ci = i + float((wts.sum(axis=1) @ np.array([-1.0, 0.0, 1.0])) / total)
        cj = j + float((wts.sum(axis=0) @ np.array([-1.0, 0.0, 1.0])) / total)
        dw = wts * spad[i:i + 3, j:j + 3]  # depth from the cells that show a surface
        d = float((dw * dpad[i:i + 3, j:j + 3]).sum() / dw.sum()) if dw.sum() > 0 else float(dpad[i + 1, j + 1])
        u_in, v_in = (cj + 0.5) * STRIDE - 0.5, (ci + 0.5) * STRIDE - 0.5
        peaks.append(Peak(np.array([(u_in + 0.5) / (iw / 2) - 1, (v_in + 0.5) / (ih / 2) - 1, d]), float(mass[i, j])))
    return peaks


def refine_center(view: np.ndarray, intrinsics: Intrinsics, guess_uvd: np.ndarray, cube_mm: float,
                  depth_unit_mm: float = 1.0, near_mm: float = NEAR_MM, far_mm: float = 2 * FAR_MM,
                  margin: float = LocatorConfig.refine_margin,
                  accept_mm: float | None = LocatorConfig.refine_accept_mm, stride: int = 2) -> np.ndarray | None:
    """:func:`geometry.find_hand_center` on the frame masked to the guess's cube (x ``margin``): its
    window in the image and its depth slab, nothing else. ``margin=1`` from the joints' centroid gives
    the old search's centre on close-range frames; a smaller cube keeps a nearer forearm or torso out
    of it (from the true centroid, synthetic 320x240 frames, median mm to the centroid for margin 0.6 /
    1.0: close_range 31 / 38, hand_object 36 / 50, third_person 35 / 70, first_person 43 / 91). Returns the refined ``uvd`` (3,) in ``view``'s
    pixels, or None (the caller keeps the guess) when the cube holds too little or the refinement
    lands more than ``accept_mm`` from the guess (it went for a nearer torso or forearm in the cube)."""
    found = geometry.find_hand_center_near(view, intrinsics, guess_uvd, cube_mm, near_mm, far_mm, margin,
                                           depth_unit_mm, stride)
    if found is None:
        return None
    if accept_mm is not None:
        guess = np.asarray(guess_uvd, dtype=np.float64).reshape(3)
        moved = geometry.uvd_to_xyz(found, intrinsics) - geometry.uvd_to_xyz(guess, intrinsics)
        if float(np.linalg.norm(moved)) > accept_mm:
            return None
    return found


# --------------------------------------------------------------------------- inference


@dataclass
class LocatorResult:
    """:meth:`Locator.predict`'s raw output: the peaks as frame ``uvd`` (best first) and presence."""

    peaks_uvd: list[np.ndarray]
    scores: list[float]
    presence: float
    timings_ms: dict[str, float] = field(default_factory=dict)


class Locator:
    """A trained :class:`HandLocator` and the steps around it. ``locate`` is the entry point."""

    def __init__(self, model: HandLocator, backend: str = "torch", onnx_path: str | Path | None = None,
                 threads: int = 1) -> None:
        self.model = model.eval()
        self.config = model.config
        self.backend = backend
        self.threads = threads  # intra-op threads of either backend
        self._session = None
        if backend == "onnxruntime":
            source = export_locator_onnx(model) if onnx_path is None else onnx_path
            self._session = make_ort_session(source, threads)  # a tiny network: one thread is fastest
        elif backend != "torch":
            raise UserError(f"locator backend {backend!r} is not one of torch, onnxruntime")

    def network(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(1, H', W') input -> heatmap logits (h, w), depth (h, w) normalized, presence probability."""
        if self._session is not None:
            logits, depth, pres = self._session.run(None, {"input": x[None].astype(np.float32)})
        else:
            with torch.inference_mode(), torch_threads(self.threads):
                logits, depth, pres = (t.numpy() for t in self.model(torch.from_numpy(x[None])))
        return logits[0], depth[0], float(1.0 / (1.0 + np.exp(-float(pres[0]))))

    def predict(self, view: np.ndarray, intrinsics: Intrinsics, depth_unit_mm: float = 1.0) -> LocatorResult:
        """The network's peaks in ``view``'s pixels (before refinement) and the presence probability."""
        cfg = self.config
        t0 = time.perf_counter()
        x, scale = prepare_frame(view, intrinsics, depth_unit_mm, cfg.input_hw, (cfg.near_mm, cfg.far_mm))
        t1 = time.perf_counter()
        logits, depth, presence = self.network(x)
        t2 = time.perf_counter()
        peaks = decode_heatmap(logits, depth, cell_surface(x))
        uvd = [input_nrm_to_uvd(p.nrm, scale) for p in peaks]
        t3 = time.perf_counter()
        return LocatorResult(uvd, [p.score for p in peaks], presence,
                             {"prepare": (t1 - t0) * 1e3, "network": (t2 - t1) * 1e3, "decode": (t3 - t2) * 1e3})

    def locate(self, view: np.ndarray, intrinsics: Intrinsics, depth_unit_mm: float = 1.0, prefer: str = "nearest",
               refine: bool = False) -> tuple[np.ndarray | None, float]:
        """``(center_uvd (3,) | None, presence probability)``: the hand's centre in ``view``'s pixels
        (None: presence below the config's threshold), the peak ``prefer`` chooses (see the module
        notes). ``refine``: move it to :func:`refine_center`'s centre in its cube (when the cube holds a
        blob); off by default: on synthetic frames of every scene family it lands further from the
        joints' centroid than the network's guess (``benchmarks/bench_locator.py``)."""
        if prefer not in PREFER:
            raise UserError(f"prefer={prefer!r} is not one of {', '.join(PREFER)}")
        view = np.asarray(view)
        res = self.predict(view, intrinsics, depth_unit_mm)
        if res.presence < self.config.presence_threshold or not res.peaks_uvd:
            return None, res.presence
        guess = self._choose(res, prefer)
        if refine:
            cfg = self.config
            refined = refine_center(view, intrinsics, guess, cfg.cube_mm, depth_unit_mm, margin=cfg.refine_margin,
                                    accept_mm=cfg.refine_accept_mm)
            if refined is not None:
                guess = refined
        return guess, res.presence

    @staticmethod
    def _choose(res: LocatorResult, prefer: str) -> np.ndarray:
        peaks = res.peaks_uvd
        if prefer == "score" or len(peaks) == 1:
            return peaks[0]
        key = {"nearest": lambda p: p[2], "left": lambda p: p[0], "right": lambda p: -p[0]}[prefer]
        return min(peaks, key=key)


def save_locator(model: HandLocator, folder: str | Path, train: dict | None = None) -> Path:
    """Write ``folder/locator.safetensors`` (the weights; the config in its metadata too) and
    ``folder/locator.yaml`` (``locator:`` the :class:`LocatorConfig`, ``train:`` a training summary).
    Both files are written to temporary names first and renamed together (:mod:`srnpose.outputs`): a
    failure, a full disk included, leaves the folder as it was. Returns ``folder``."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    data = save(tensors, metadata={"format": "pt", "srnpose_locator": json.dumps(to_dict(model.config))})
    with writing(folder) as files:
        files.write_bytes(WEIGHTS_FILE, data)
        save_yaml({"locator": to_dict(model.config), "train": dict(train or {})}, files.stage(CONFIG_FILE))
    return Path(folder)


def _has_locator(folder: Path) -> bool:
    return (folder / WEIGHTS_FILE).is_file() and (folder / CONFIG_FILE).is_file()


def find_locator(weights_path: str | Path) -> Path | None:
    """The locator a checkpoint carries: the folder holding ``locator.safetensors`` and ``locator.yaml``
    next to the model's weights file, else in the run folder above a ``best/`` or ``last/`` checkpoint
    folder (where :func:`attach_locator` puts it: shared by every checkpoint of the run). None: none."""
    folder = Path(weights_path).parent
    if _has_locator(folder):
        return folder
    run = folder.parent
    if folder.name.split(".")[0] in ("best", "last") and _has_locator(run):
        return run
    return None


def attach_locator(locator_dir: str | Path, run: str | Path) -> Path:
    """Copy a locator (``locator.safetensors``, ``locator.yaml``) into ``run``: a run folder (one with
    ``best/`` or ``last/``: every checkpoint of it uses the locator, new ones too) or a checkpoint
    folder. The locator is loaded first, so a broken one is refused. Returns the folder written to."""
    load_locator(locator_dir)
    src, run = Path(locator_dir), Path(run)
    src = src.parent if src.suffix == ".safetensors" else src
    if not run.is_dir():
        raise UserError(f"{run}: not a folder (give a run folder or a checkpoint folder)")
    if not ((run / "best").is_dir() or (run / "last").is_dir() or (run / "model.safetensors").is_file()):
        raise UserError(f"{run}: not a run or checkpoint folder (no best/, last/ or model.safetensors)")
    with writing(run) as files:  # both files renamed into place together
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            shutil.copyfile(src / name, files.stage(name))
    return run


def load_locator(path: str | Path, backend: str = "torch", threads: int = 1) -> Locator:
    """A :class:`Locator` from a folder holding ``locator.safetensors`` and ``locator.yaml`` (or the
    weights file itself). ``backend="onnxruntime"`` runs the folder's ``locator.onnx``
    (:func:`export_locator_onnx`) when there is one, else an export made in memory."""
    from safetensors.torch import load_file

    path = Path(path)
    folder = path.parent if path.suffix == ".safetensors" else path
    if not _has_locator(folder):
        raise UserError(f"{folder}: no locator here (expected {WEIGHTS_FILE} and {CONFIG_FILE})")
    try:
        config = from_dict(LocatorConfig, read_yaml_mapping(folder / CONFIG_FILE).get("locator") or {})
        model = HandLocator(config)
        model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    except (ValueError, RuntimeError, OSError) as exc:
        raise UserError(f"{folder}: not a usable locator ({str(exc).splitlines()[0]})") from None
    onnx_file = folder / ONNX_FILE
    return Locator(model, backend, onnx_file if backend == "onnxruntime" and onnx_file.is_file() else None, threads)


def export_locator_onnx(model: HandLocator, path: str | Path | None = None, opset: int = 17) -> Path | bytes:
    """The network as ONNX: input ``input`` (B, 1, H', W'); outputs ``heatmap``, ``depth``, ``presence``.
    Written to ``path``, or returned as bytes when ``path`` is None."""
    import io

    require_extra("onnx")
    model = model.eval()
    x = torch.zeros(1, 1, *model.config.input_hw)
    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, input_names=["input"],
                      output_names=["heatmap", "depth", "presence"], opset_version=opset,
                      dynamic_axes={"input": {0: "batch"}}, dynamo=False)
    return buffer.getvalue() if path is None else write_bytes(path, buffer.getvalue())  # renamed when complete


def evaluate_centers(predicted_uvd: Sequence[np.ndarray | None], target_uvd: Sequence[np.ndarray],
                     intrinsics: Sequence[Intrinsics], within_mm: float = 30.0) -> dict[str, float]:
    """Median 3D distance (mm; a missing centre counts as infinitely far) and the share within
    ``within_mm`` of predicted centres to targets."""
    dist = np.array([np.inf if p is None else float(np.linalg.norm(
        geometry.uvd_to_xyz(np.asarray(p, dtype=np.float64), k) - geometry.uvd_to_xyz(np.asarray(t, dtype=np.float64), k)))
        for p, t, k in zip(predicted_uvd, target_uvd, intrinsics)])
    return {"median_mm": float(np.median(dist)), f"within_{int(within_mm)}mm": float(np.mean(dist <= within_mm)),
            "missing": float(np.mean(~np.isfinite(dist)))}
