"""Glue for the book's chapters: train-or-reuse a model at a scale (pipeline) and the
cross-modality evaluation of chapter 6 (crossmodality)."""
