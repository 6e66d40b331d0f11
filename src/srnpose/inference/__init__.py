"""Inference: the frame path, the estimator API, backends, ONNX export, cameras, smoothing, speed."""
