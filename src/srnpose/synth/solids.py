"""The scene description the renderer casts: :class:`Solids` (every primitive kind, each row with a
part id) and :class:`SolidsBuilder`. Row layouts: the table of :mod:`srnpose.synth.render`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ROW_SIZE = {"cones": 8, "ellipsoids": 15, "cylinders": 7, "boxes": 15, "planes": 20}
KINDS = tuple(ROW_SIZE)
PARTS_FIELD = {"cones": "cone_parts", "ellipsoids": "ellipsoid_parts", "cylinders": "cylinder_parts",
               "boxes": "box_parts", "planes": "plane_parts"}
MAX_PLANE_EDGES = 4


def _rows(kind: str) -> np.ndarray:
    return np.zeros((0, ROW_SIZE[kind]), dtype=np.float64)


def _no_parts() -> np.ndarray:
    return np.zeros(0, dtype=np.int16)


@dataclass(frozen=True)
class Solids:
    """Primitives of every kind (see the module table), each row with a part id."""

    cones: np.ndarray = field(default_factory=lambda: _rows("cones"))  # (P, 8)
    cone_parts: np.ndarray = field(default_factory=_no_parts)  # (P,) int16
    ellipsoids: np.ndarray = field(default_factory=lambda: _rows("ellipsoids"))  # (E, 15)
    ellipsoid_parts: np.ndarray = field(default_factory=_no_parts)
    cylinders: np.ndarray = field(default_factory=lambda: _rows("cylinders"))  # (C, 7)
    cylinder_parts: np.ndarray = field(default_factory=_no_parts)
    boxes: np.ndarray = field(default_factory=lambda: _rows("boxes"))  # (B, 15)
    box_parts: np.ndarray = field(default_factory=_no_parts)
    planes: np.ndarray = field(default_factory=lambda: _rows("planes"))  # (L, 20)
    plane_parts: np.ndarray = field(default_factory=_no_parts)

    @staticmethod
    def of(volume) -> Solids:
        """A hand_model ``Volume`` (cones and ellipsoids) or a ``Solids`` as ``Solids``."""
        if isinstance(volume, Solids):
            return volume
        return Solids(cones=volume.cones, cone_parts=volume.cone_parts, ellipsoids=volume.ellipsoids,
                      ellipsoid_parts=volume.ellipsoid_parts)

    def kind(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return getattr(self, name), getattr(self, PARTS_FIELD[name])

    def merged(self, *others) -> Solids:
        items = [self] + [Solids.of(o) for o in others]
        out = {}
        for name in KINDS:
            out[name] = np.concatenate([s.kind(name)[0] for s in items]).astype(np.float64, copy=False)
            out[PARTS_FIELD[name]] = np.concatenate([s.kind(name)[1] for s in items]).astype(np.int16)
        return Solids(**out)

    def selected(self, keep) -> Solids:
        """The primitives whose part id passes ``keep(parts) -> bool mask``."""
        out = {}
        for name in KINDS:
            rows, parts = self.kind(name)
            mask = keep(parts)
            out[name], out[PARTS_FIELD[name]] = rows[mask], parts[mask]
        return Solids(**out)

    def relabeled(self, part: int) -> Solids:
        """The same primitives, every one with part id ``part``."""
        out = {}
        for name in KINDS:
            rows, _ = self.kind(name)
            out[name], out[PARTS_FIELD[name]] = rows, np.full(len(rows), part, dtype=np.int16)
        return Solids(**out)

    def transformed(self, rot: np.ndarray, trans: np.ndarray) -> Solids:
        """The solids moved by ``x -> rot @ x + trans`` (``rot`` orthogonal, may be a reflection)."""
        rot, trans = np.asarray(rot, dtype=np.float64), np.asarray(trans, dtype=np.float64)
        out = {}
        for name in KINDS:
            rows, parts = self.kind(name)
            out[PARTS_FIELD[name]] = parts
            if len(rows) == 0:
                out[name] = rows
                continue
            moved = rows.copy()
            if name in ("cones", "cylinders"):  # two points each
                for at in ((0, 4) if name == "cones" else (0, 3)):
                    moved[:, at:at + 3] = rows[:, at:at + 3] @ rot.T + trans
            elif name in ("ellipsoids", "boxes"):  # centre and axes (columns)
                moved[:, 0:3] = rows[:, 0:3] @ rot.T + trans
                moved[:, 3:12] = (rot @ rows[:, 3:12].reshape(-1, 3, 3)).reshape(-1, 9)
            else:  # planes: n.x = d -> (R n).x' = d + (R n).t; the same for each edge (e, f)
                vec = rows.reshape(-1, 5, 4)[:, :, 0:3] @ rot.T  # (L, 5, 3)
                moved = moved.reshape(-1, 5, 4)
                moved[:, :, 0:3] = vec
                moved[:, :, 3] += vec @ trans
                moved = moved.reshape(-1, ROW_SIZE["planes"])
                behind = moved[:, 3] < 0.0  # keep the normal pointing away from the camera (d > 0)
                moved[behind, 0:4] *= -1.0
            out[name] = moved
        return Solids(**out)


class SolidsBuilder:
    """Collects primitives one by one or in blocks (scene builders), then ``build()`` -> :class:`Solids`."""

    def __init__(self) -> None:
        self._rows: dict[str, list] = {name: [] for name in KINDS}  # rows (tuples) or (N, size) blocks
        self._parts: dict[str, list] = {name: [] for name in KINDS}  # ints or (N,) blocks

    def _add(self, kind: str, row, part: int) -> None:
        self._rows[kind].append(np.asarray(row, dtype=np.float64)[None, :])
        self._parts[kind].append(np.array([part], dtype=np.int16))

    def cone(self, a, ra: float, b, rb: float, part: int) -> None:
        self._add("cones", (a[0], a[1], a[2], ra, b[0], b[1], b[2], rb), part)

    def sphere(self, centre, radius: float, part: int) -> None:
        self.ellipsoid(centre, np.eye(3), (radius, radius, radius), part)

    def ellipsoid(self, centre, axes: np.ndarray, semi, part: int) -> None:
        self._add("ellipsoids", np.concatenate([centre, np.asarray(axes).reshape(-1), semi]), part)

    def cylinder(self, a, b, radius: float, part: int) -> None:
        self._add("cylinders", (a[0], a[1], a[2], b[0], b[1], b[2], radius), part)

    def box(self, centre, axes: np.ndarray, half, part: int) -> None:
        self._add("boxes", np.concatenate([centre, np.asarray(axes).reshape(-1), half]), part)

    def plane(self, point, normal, part: int, edges=()) -> None:
        """The plane through ``point`` with ``normal`` (either sign), limited to the points ``x`` with
        ``(x - p) . o <= 0`` for each edge ``(p, o)`` (``o`` pointing out of the polygon)."""
        if len(edges) > MAX_PLANE_EDGES:
            raise ValueError(f"a plane has at most {MAX_PLANE_EDGES} edges, got {len(edges)}")
        n = np.asarray(normal, dtype=np.float64)
        n = n / np.sqrt(n @ n)
        dist = float(n @ np.asarray(point, dtype=np.float64))
        if abs(dist) < 1e-6:  # seen edge-on through the camera centre: invisible
            return
        if dist < 0.0:
            n, dist = -n, -dist
        row = np.zeros(ROW_SIZE["planes"])
        row[0:3], row[3] = n, dist
        row[7::4] = 1.0  # unused edges: 0 <= 1
        for k, (p, o) in enumerate(edges):
            o = np.asarray(o, dtype=np.float64)
            row[4 + 4 * k: 7 + 4 * k] = o
            row[7 + 4 * k] = float(o @ np.asarray(p, dtype=np.float64))
        self._add("planes", row, part)

    def extend(self, solids: Solids) -> None:
        for name in KINDS:
            rows, parts = solids.kind(name)
            if len(rows):
                self._rows[name].append(rows)
                self._parts[name].append(parts.astype(np.int16))

    def build(self) -> Solids:
        out = {}
        for name in KINDS:
            rows = self._rows[name]
            out[name] = np.concatenate(rows) if rows else np.zeros((0, ROW_SIZE[name]))
            out[PARTS_FIELD[name]] = np.concatenate(self._parts[name]) if rows else np.zeros(0, np.int16)
        return Solids(**out)
