"""Table of real depth sensors: intrinsics, native resolution, depth unit and mirroring.

Values for the datasets' cameras are the ones the community uses for evaluation. Sensor values marked
"typical" vary from unit to unit: calibrate yours and pass ``--intrinsics fx,fy,cx,cy`` for best results.
"""

from __future__ import annotations

from dataclasses import dataclass

from srnpose.errors import UserError
from srnpose.geometry import Intrinsics


@dataclass(frozen=True)
class Camera:
    name: str
    intrinsics: Intrinsics
    resolution: tuple[int, int]  # (W, H) in px
    depth_unit_mm: float = 1.0  # one raw depth unit in mm
    mirrored: bool = False  # frames flipped left-right relative to the usual camera view
    description: str = ""
    sensor: str = "generic"  # depth sensing family: a key of synth.sensor.SENSOR_PROFILES


CAMERAS: dict[str, Camera] = {
    "kinect2": Camera("kinect2", Intrinsics(363.9, 363.9, 255.4, 206.3), (512, 424), 1.0, True,
                      "Microsoft Kinect V2 (SRN authors' sample frames are mirrored)", sensor="time_of_flight"),
    "sr300": Camera("sr300", Intrinsics(615.866, 615.866, 316.584, 228.38), (640, 480), 1.0, False,
                    "Intel RealSense SR300", sensor="structured_light"),
    "hands17": Camera("hands17", Intrinsics(475.065948, 475.065857, 315.944855, 245.287079), (640, 480),
                      1.0, False, "HANDS2017 / BigHand2.2M SR300 calibration", sensor="structured_light"),
    "d400": Camera("d400", Intrinsics(386.0, 386.0, 320.0, 240.0), (640, 480), 1.0, False,
                   "Intel RealSense D400 series at 640x480 (typical)", sensor="active_stereo"),
    "sr305": Camera("sr305", Intrinsics(476.0, 476.0, 320.0, 240.0), (640, 480), 0.125, False,
                    "Intel RealSense SR305 (typical; depth unit 0.125 mm)", sensor="structured_light"),
    "azure_nfov": Camera("azure_nfov", Intrinsics(504.0, 504.0, 320.0, 288.0), (640, 576), 1.0, False,
                         "Azure Kinect NFOV unbinned (typical)", sensor="time_of_flight"),
    "nyu": Camera("nyu", Intrinsics(588.03, -587.07, 320.0, 240.0), (640, 480), 1.0, False,
                  "NYU Hand Pose dataset, Kinect 1 (community convention: fy < 0, y up)",
                  sensor="structured_light"),
    "icvl": Camera("icvl", Intrinsics(240.99, 240.96, 160.0, 120.0), (320, 240), 1.0, False,
                   "ICVL dataset, Intel Creative", sensor="time_of_flight"),
    "msra": Camera("msra", Intrinsics(241.42, 241.42, 160.0, 120.0), (320, 240), 1.0, False,
                   "MSRA 2015 dataset, Intel Creative", sensor="time_of_flight"),
}

DEFAULT_CAMERA = "icvl"  # 320x240, like the ICVL/MSRA sensor: cheap to render, common in the literature


def get_camera(name: str) -> Camera:
    """Look up a camera preset; an unknown name lists the valid ones."""
    try:
        return CAMERAS[name]
    except KeyError:
        raise UserError(f"unknown camera {name!r}; available: {', '.join(CAMERAS)}", flag="--camera") from None
