"""srnpose: SRN (Stacked Regression Network) for real-time 3D hand pose estimation from depth."""

__version__ = "0.1.0"
