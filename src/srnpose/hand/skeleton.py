"""Joint layouts: the canonical 21-joint hand, the datasets' layouts, bones, and mappings.

Canonical order (``CANONICAL``, 21 joints)
-------------------------------------------
index 0 is the wrist, then five fingers of four joints each, from the palm outwards:

====  =========  ==========================================================
 idx  finger     joints (MCP, PIP, DIP, TIP)
====  =========  ==========================================================
   0  wrist
 1-4  thumb      thumb_mcp, thumb_pip, thumb_dip, thumb_tip  (anatomically CMC, MCP, IP, tip)
 5-8  index      index_mcp, index_pip, index_dip, index_tip
9-12  middle     middle_mcp, middle_pip, middle_dip, middle_tip
13-16 ring       ring_mcp, ring_pip, ring_dip, ring_tip
17-20 little     little_mcp, little_pip, little_dip, little_tip
====  =========  ==========================================================

The thumb uses the finger names (MCP/PIP/DIP/TIP) as MSRA and HANDS2017 do.

Each dataset layout carries ``from_canonical``: a (J, 21) weight matrix with
``joints_layout = from_canonical @ joints_canonical``. MSRA and HANDS2017 are exact permutations;
NYU and ICVL label points that are not canonical joints (NYU's palm centre and two wrist points,
points between joints) and map through documented approximations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from srnpose.errors import UserError

FINGERS = ("thumb", "index", "middle", "ring", "little")
FINGER_JOINTS = ("mcp", "pip", "dip", "tip")
CANONICAL_NAMES: tuple[str, ...] = ("wrist",) + tuple(f"{f}_{j}" for f in FINGERS for j in FINGER_JOINTS)
_C = {name: i for i, name in enumerate(CANONICAL_NAMES)}


def _chain_bones() -> tuple[tuple[int, int], ...]:
    bones = []
    for f in FINGERS:
        chain = [_C["wrist"]] + [_C[f"{f}_{j}"] for j in FINGER_JOINTS]
        bones += list(zip(chain[:-1], chain[1:]))
    return tuple(bones)


@dataclass(frozen=True)
class Layout:
    """A named joint layout. ``from_canonical`` is (J, 21); ``bones`` are index pairs for drawing."""

    name: str
    joint_names: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    from_canonical: np.ndarray = field(repr=False, compare=False)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def is_permutation(self) -> bool:
        """True when every joint is exactly one canonical joint (an invertible mapping)."""
        W = self.from_canonical
        return W.shape == (21, 21) and np.all(np.isin(W, (0.0, 1.0))) and np.all(W.sum(0) == 1) \
            and np.all(W.sum(1) == 1)


def _matrix(spec: list[dict[str, float]]) -> np.ndarray:
    W = np.zeros((len(spec), len(CANONICAL_NAMES)))
    for row, weights in enumerate(spec):
        for name, w in weights.items():
            W[row, _C[name]] += w
        assert abs(W[row].sum() - 1.0) < 1e-9, spec[row]
    return W


def _one(name: str) -> dict[str, float]:
    return {name: 1.0}


def _mid(a: str, b: str, t: float = 0.5) -> dict[str, float]:
    return {a: 1.0 - t, b: t}


_PALM_CENTRE = {"wrist": 0.5, "middle_mcp": 0.5}

CANONICAL = Layout("canonical", CANONICAL_NAMES, _chain_bones(), np.eye(21))

# MSRA 2015: wrist, then index, middle, ring, little, thumb, each MCP, PIP, DIP, TIP.
_MSRA_ORDER = ["wrist"] + [f"{f}_{j}" for f in ("index", "middle", "ring", "little", "thumb")
                           for j in FINGER_JOINTS]
MSRA = Layout("msra", tuple(_MSRA_ORDER),
              tuple((_MSRA_ORDER.index(CANONICAL_NAMES[a]), _MSRA_ORDER.index(CANONICAL_NAMES[b]))
                    for a, b in _chain_bones()),
              _matrix([_one(n) for n in _MSRA_ORDER]))

# HANDS2017 / BigHand2.2M: wrist, the five MCPs (T, I, M, R, P), then PIP, DIP, TIP per finger.
_HANDS17_ORDER = (["wrist"] + [f"{f}_mcp" for f in FINGERS]
                  + [f"{f}_{j}" for f in FINGERS for j in ("pip", "dip", "tip")])
HANDS17 = Layout("hands17", tuple(_HANDS17_ORDER),
                 tuple((_HANDS17_ORDER.index(CANONICAL_NAMES[a]), _HANDS17_ORDER.index(CANONICAL_NAMES[b]))
                       for a, b in _chain_bones()),
                 _matrix([_one(n) for n in _HANDS17_ORDER]))

# ICVL: palm, then thumb, index, middle, ring, little, each root, mid, tip.
# Approximation: palm = midpoint of wrist and middle MCP; thumb root = anatomical MCP (canonical
# thumb_pip), thumb mid = IP (thumb_dip); finger root = MCP, mid = PIP, tip = TIP.
_ICVL_SPEC = [("palm", _PALM_CENTRE)]
for _f in FINGERS:
    _roots = ("pip", "dip", "tip") if _f == "thumb" else ("mcp", "pip", "tip")
    _ICVL_SPEC += [(f"{_f}_{part}", _one(f"{_f}_{j}")) for part, j in zip(("root", "mid", "tip"), _roots)]
ICVL = Layout("icvl", tuple(n for n, _ in _ICVL_SPEC),
              tuple((0, 1 + 3 * k) for k in range(5)) + tuple((1 + 3 * k + i, 2 + 3 * k + i)
                                                             for k in range(5) for i in range(2)),
              _matrix([w for _, w in _ICVL_SPEC]))

# NYU: 36 annotated points; per finger (little, ring, middle, index, thumb) six points from the tip
# towards the palm, then six palm points. Approximation of the points between joints:
# finger k = 0 tip, 1 between tip and DIP, 2 DIP, 3 PIP, 4 between PIP and MCP, 5 MCP;
# thumb k = 0 tip, 1 IP, 2 between IP and MCP, 3 MCP, 4 between MCP and CMC, 5 CMC;
# palm 30, 31 wrist (two sides, both at the canonical wrist), 32 palm centre, 33 thumb CMC,
# 34 between index and little MCP, 35 little MCP.
_NYU36_SPEC: list[tuple[str, dict[str, float]]] = []
for _f in ("little", "ring", "middle", "index"):
    _NYU36_SPEC += [(f"{_f}_tip", _one(f"{_f}_tip")), (f"{_f}_tip_dip", _mid(f"{_f}_tip", f"{_f}_dip")),
                    (f"{_f}_dip", _one(f"{_f}_dip")), (f"{_f}_pip", _one(f"{_f}_pip")),
                    (f"{_f}_pip_mcp", _mid(f"{_f}_pip", f"{_f}_mcp")), (f"{_f}_mcp", _one(f"{_f}_mcp"))]
_NYU36_SPEC += [("thumb_tip", _one("thumb_tip")), ("thumb_ip", _one("thumb_dip")),
                ("thumb_ip_mcp", _mid("thumb_dip", "thumb_pip")), ("thumb_mcp", _one("thumb_pip")),
                ("thumb_mcp_cmc", _mid("thumb_pip", "thumb_mcp")), ("thumb_cmc", _one("thumb_mcp")),
                ("wrist_1", _one("wrist")), ("wrist_2", _one("wrist")), ("palm", _PALM_CENTRE),
                ("palm_thumb", _one("thumb_mcp")), ("palm_mid", _mid("index_mcp", "little_mcp")),
                ("palm_little", _one("little_mcp"))]
NYU36 = Layout("nyu36", tuple(n for n, _ in _NYU36_SPEC),
               tuple((6 * k + i, 6 * k + i + 1) for k in range(5) for i in range(5))
               + tuple((6 * k + 5, 32) for k in range(5)) + ((30, 32), (31, 32)),
               _matrix([w for _, w in _NYU36_SPEC]))

# NYU's 14 evaluated joints, in the community's order (P1 P2 R1 R2 M1 M2 I1 I2 T1 T2 T3 W1 W2 C).
NYU_EVAL_INDICES = (0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32)
NYU = Layout("nyu", tuple(NYU36.joint_names[i] for i in NYU_EVAL_INDICES),
             ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (9, 10), (1, 13), (3, 13), (5, 13), (7, 13),
              (10, 13), (11, 13), (12, 13)),
             NYU36.from_canonical[list(NYU_EVAL_INDICES)])

LAYOUTS: dict[str, Layout] = {
    "canonical": CANONICAL, "nyu": NYU, "nyu36": NYU36, "icvl": ICVL, "msra": MSRA, "hands17": HANDS17,
}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise UserError(f"unknown joint layout {name!r}; available: {', '.join(LAYOUTS)}") from None


def mapping_matrix(src: Layout | str, dst: Layout | str) -> np.ndarray:
    """(J_dst, J_src) matrix ``W`` with ``joints_dst = W @ joints_src``.

    Defined when ``src`` is canonical or an exact permutation of it (MSRA, HANDS2017); NYU and ICVL
    lack joints (MCPs, DIPs) that other layouts need, so mapping *from* them raises ``ValueError``.
    """
    src = get_layout(src) if isinstance(src, str) else src
    dst = get_layout(dst) if isinstance(dst, str) else dst
    if src.name == dst.name:
        return np.eye(src.num_joints)
    if not (src.name == "canonical" or src.is_permutation):
        raise ValueError(f"cannot map from layout {src.name!r}: it does not determine all 21 canonical joints")
    to_canonical = src.from_canonical.T  # a permutation's inverse is its transpose
    return dst.from_canonical @ to_canonical


def convert(joints: np.ndarray, src: Layout | str, dst: Layout | str) -> np.ndarray:
    """Convert joints (..., J_src, 3) from layout ``src`` to ``dst`` (..., J_dst, 3)."""
    W = mapping_matrix(src, dst)
    joints = np.asarray(joints)
    if joints.shape[-2] != W.shape[1]:
        raise ValueError(f"joints have {joints.shape[-2]} joints, layout expects {W.shape[1]}")
    return np.einsum("ij,...jk->...ik", W, joints)
