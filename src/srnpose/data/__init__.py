"""Datasets as records (one parser per dataset) and one shared crop/augment pipeline."""
