"""Evaluation: the community protocol, metrics, plots, label-free quality on real frames."""
