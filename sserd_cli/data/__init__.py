"""Datasets: preparation of real corpora and the synthetic talking-face world."""
