"""Synthetic data: 3D nanowire networks, their projection, optical-density rendering, COCO datasets.

geometry -> voxels / projection -> rendering -> dataset, with named generator presets
(:mod:`~nanowire_utils.synth.generator_presets`). Needs no deep-learning stack.
"""
