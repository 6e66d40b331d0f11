"""One synthetic frame: a sampled hand, pose, viewpoint, distractors and sensor, deterministic per seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srnpose.geometry import Intrinsics, xyz_to_uvd
from srnpose.synth import hand_model as hm
from srnpose.synth.poses import sample_pose
from srnpose.synth.render import cast
from srnpose.synth.sensor import DEFAULT_SENSOR, SensorModel, apply_sensor

DISTANCE_RANGE_MM = (250.0, 700.0)  # palm centre depth
PART_DISTRACTOR = -2  # part id of background surfaces in SynthFrame.part


@dataclass(frozen=True)
class SynthFrame:
    """A rendered frame. ``joints_*`` are canonical (21, 3); ``part`` is the ideal visible part map."""

    depth_mm: np.ndarray  # (H, W) uint16, 0 = no measurement
    joints_xyz: np.ndarray  # (21, 3) float64 mm, camera frame
    joints_uvd: np.ndarray  # (21, 3) float64 px, px, mm
    is_left: bool
    intrinsics: Intrinsics
    seed: int
    part: np.ndarray | None = None  # (H, W) int16: hand part id (hand_model), -2 distractor, -1 empty
    family: str = ""  # pose family
    hand_length_mm: float = 0.0


def frame_seed(seed: int, index: int) -> int:
    """The seed of frame ``index`` of a dataset with ``seed``: independent streams, any order."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0])


def resolve_camera(intrinsics: Intrinsics | None, resolution: tuple[int, int] | None) -> tuple[Intrinsics, tuple[int, int]]:
    """Fill in the default camera: no intrinsics -> the default camera scaled to ``resolution``;
    no resolution -> the default camera's, or twice the principal point for custom intrinsics."""
    from srnpose.cameras import CAMERAS, DEFAULT_CAMERA

    camera = CAMERAS[DEFAULT_CAMERA]
    if intrinsics is None:
        if resolution is None:
            return camera.intrinsics, camera.resolution
        sx = resolution[0] / camera.resolution[0]
        sy = resolution[1] / camera.resolution[1]
        k = camera.intrinsics
        return Intrinsics(k.fx * sx, k.fy * sy, (k.cx + 0.5) * sx - 0.5, (k.cy + 0.5) * sy - 0.5), \
            (int(resolution[0]), int(resolution[1]))
    if resolution is None:
        resolution = (max(int(round(2 * intrinsics.cx + 1)), 1), max(int(round(2 * intrinsics.cy + 1)), 1))
    return intrinsics, (int(resolution[0]), int(resolution[1]))


def sample_rotation(rng: np.random.Generator, up_sign: float, wrist_deg: np.ndarray) -> np.ndarray:
    """Hand-to-camera rotation (3, 3): mostly palm or back towards the camera, fingers up-ish,
    with wide spread; the forearm does not point at the camera.

    In real captures the hand is held towards the camera, so the forearm mostly recedes from it:
    70 % of views ask the forearm to point at least ~15 degrees away from the image plane."""
    # Rest view: fingers up in the image, palm facing the camera, thumb on the image's right.
    r0 = np.array([[-up_sign, 0.0, 0.0], [0.0, up_sign, 0.0], [0.0, 0.0, -1.0]])
    forearm_hand = hm.rot_x(wrist_deg[0]) @ hm.rot_z(-wrist_deg[1]) @ np.array([0.0, -1.0, 0.0])
    min_forearm_z = 0.4 if rng.random() < 0.7 else -0.3
    for _ in range(24):
        pick = rng.random()
        yaw = rng.normal(0.0, 35.0) if pick < 0.45 else rng.normal(180.0, 35.0) if pick < 0.85 \
            else rng.uniform(-180.0, 180.0)
        pitch = float(np.clip(rng.normal(0.0, 25.0), -65.0, 65.0))
        roll = rng.normal(0.0, 35.0) if rng.random() < 0.7 else rng.uniform(-180.0, 180.0)
        rot = hm.rot_z(roll) @ hm.rot_x(pitch) @ r0 @ hm.rot_y(yaw)
        if (rot @ forearm_hand)[2] > min_forearm_z:
            break
    return rot


def render_frame(seed: int, intrinsics: Intrinsics | None = None, resolution: tuple[int, int] | None = None,
                 distractors: bool = True, sensor: SensorModel = DEFAULT_SENSOR) -> SynthFrame:
    """Render one frame, deterministically for ``seed``. Default camera: ``cameras.DEFAULT_CAMERA``."""
    intrinsics, (width, height) = resolve_camera(intrinsics, resolution)
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    shape = hm.sample_shape(rng)
    pose, family = sample_pose(rng)
    is_left = bool(rng.random() < 0.5)
    joints_h, _ = hm.forward_kinematics(shape, pose)
    volume_h = hm.primitives(shape, pose, joints_h)
    if is_left:
        joints_h, volume_h = hm.mirror_x(joints_h), volume_h.transformed(hm.MIRROR_X, np.zeros(3))

    up_sign = -1.0 if intrinsics.fy > 0 else 1.0
    rot = sample_rotation(rng, up_sign, pose.wrist_deg)
    if intrinsics.fx < 0:  # a mirrored camera: keep the fingers' layout as seen
        rot = np.diag([-1.0, 1.0, 1.0]) @ rot @ np.diag([-1.0, 1.0, 1.0])
    palm_h = 0.5 * (joints_h[0] + joints_h[9])
    depth = rng.uniform(*DISTANCE_RANGE_MM)
    u = intrinsics.cx + rng.uniform(-0.28, 0.28) * width
    v = intrinsics.cy + rng.uniform(-0.25, 0.25) * height
    palm_cam = np.array([(u - intrinsics.cx) * depth / intrinsics.fx, (v - intrinsics.cy) * depth / intrinsics.fy, depth])
    trans = palm_cam - rot @ palm_h

    joints_xyz = joints_h @ rot.T + trans  # (21, 3)
    volume = volume_h.transformed(rot, trans)
    hand_far = volume.far_mm()

    plane = None
    if distractors:
        if rng.random() < 0.35:  # a torso / head blob well behind the hand
            radius = rng.uniform(120.0, 220.0)
            centre = palm_cam * (hand_far + radius + rng.uniform(60.0, 300.0)) / depth
            centre[:2] += rng.uniform(-200.0, 200.0, size=2)
            blob = np.array([[*centre, radius, *(centre + [0.0, rng.uniform(80.0, 200.0) * -up_sign, 0.0]), radius * 0.9]])
            volume = hm.Volume(np.concatenate([volume.cones, blob]),
                               np.concatenate([volume.cone_parts, [PART_DISTRACTOR]]).astype(np.int16),
                               volume.ellipsoids, volume.ellipsoid_parts)
        if rng.random() < 0.5:  # a wall, tilted
            normal = hm.rot_x(rng.uniform(-25, 25)) @ hm.rot_y(rng.uniform(-25, 25)) @ np.array([0.0, 0.0, -1.0])
            plane = (normal, hand_far + rng.uniform(80.0, 450.0))

    raster = cast(volume, intrinsics, width, height)
    z_mm, cos, part = raster.z_mm, raster.cos_incidence, raster.part
    if plane is not None:
        from srnpose.synth.render import _ray_table

        normal, min_depth = plane
        rays = _ray_table(intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy, width, height)
        nx, ny, nz = (np.float32(c) for c in normal)
        n_dot = np.maximum(-(rays[:, 0] * nx + rays[:, 1] * ny + rays[:, 2] * nz), 1e-3)  # (H * W,), no BLAS
        z_plane = rays[:, 2] / n_dot  # depth of the plane at unit offset
        z_plane = (z_plane * np.float32(min_depth / z_plane.min())).reshape(height, width)
        nearer = z_plane < z_mm
        z_mm = np.where(nearer, z_plane, z_mm)
        cos = np.where(nearer, n_dot.reshape(height, width), cos)
        part = np.where(nearer, np.int16(PART_DISTRACTOR), part)
    depth_mm = apply_sensor(z_mm, cos, rng, sensor)
    joints_uvd = xyz_to_uvd(joints_xyz, intrinsics)
    return SynthFrame(depth_mm, joints_xyz, joints_uvd, is_left, intrinsics, int(seed), part, family,
                      shape.length_mm)


def visible_joints(frame: SynthFrame) -> np.ndarray:
    """(21,) bool: the joint projects inside the image onto a measured pixel of a part it belongs to."""
    height, width = frame.depth_mm.shape
    u = np.rint(frame.joints_uvd[:, 0]).astype(np.int64)
    v = np.rint(frame.joints_uvd[:, 1]).astype(np.int64)
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    out = np.zeros(21, dtype=bool)
    for j in np.flatnonzero(inside):
        measured = frame.depth_mm[v[j], u[j]] > 0
        own = frame.part is None or int(frame.part[v[j], u[j]]) in hm.JOINT_PARTS[j]
        out[j] = measured and own
    return out
