"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) for joint sequences.

A first-order low-pass filter whose cutoff rises with the signal's speed: at rest the cutoff is
``min_cutoff_hz`` (little jitter), when the hand moves it grows by ``beta`` per unit of speed (little
lag). It filters arrays of any fixed shape elementwise, e.g. ``joints_xyz`` (J, 3) in mm, and so
``beta`` is per mm/s there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["OneEuroConfig", "OneEuroFilter"]


@dataclass(frozen=True)
class OneEuroConfig:
    # 1 Hz at rest: removes the frame-to-frame jitter of a 30 FPS sensor while a held pose settles in
    # about 0.2 s (Casiez et al. start their tuning from 1 Hz).
    min_cutoff_hz: float = 1.0
    # Cutoff gain per unit of speed. For joints in mm, a hand moving at 500 mm/s raises the cutoff by
    # 5 Hz: fast gestures follow with about a frame of lag.
    beta: float = 0.01
    # Cutoff of the speed estimate itself (the paper's default).
    d_cutoff_hz: float = 1.0

    def __post_init__(self) -> None:
        if not (self.min_cutoff_hz > 0 and self.d_cutoff_hz > 0 and self.beta >= 0):
            raise ValueError(f"One Euro: cutoffs must be > 0 and beta >= 0, got {self}")


def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroFilter:
    """Stateful filter: ``filter(x, t_s)`` returns the smoothed ``x``; ``reset()`` forgets the past.

    Timestamps ``t_s`` are seconds and must increase; a repeated or earlier timestamp returns the
    last output unchanged.
    """

    def __init__(self, config: OneEuroConfig | None = None) -> None:
        self.config = config or OneEuroConfig()
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def filter(self, x: np.ndarray, t_s: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape or not np.all(np.isfinite(self._x)):
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t_s)
            return x.copy()
        dt = float(t_s) - self._t
        if dt <= 0:
            return self._x.copy()
        cfg = self.config
        dx = (x - self._x) / dt
        a_d = _alpha(cfg.d_cutoff_hz, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = cfg.min_cutoff_hz + cfg.beta * np.abs(self._dx)
        a = _alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        self._t = float(t_s)
        return self._x.copy()
