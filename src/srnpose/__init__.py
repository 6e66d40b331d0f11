"""srnpose: SRN (Stacked Regression Network) for real-time 3D hand pose estimation from depth."""

__version__ = "0.1.0"

# Lazy top-level API (PEP 562): `import srnpose` stays light; torch loads on first use.
_LAZY = {
    "load": ("srnpose.inference.estimator", "load"),
    "HandPoseEstimator": ("srnpose.inference.estimator", "HandPoseEstimator"),
    "PoseResult": ("srnpose.inference.estimator", "PoseResult"),
    "fit_angles": ("srnpose.hand.angles", "fit_angles"),
    "samples": ("srnpose.weights", "samples"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'srnpose' has no attribute {name!r}")
