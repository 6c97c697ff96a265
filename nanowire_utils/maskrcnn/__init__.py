"""Mask R-CNN: the configuration vocabulary and training presets, the model, weights, data
loading, the engines (torchvision built in, detectron2 optional) and inference.

Importing this package is cheap; torch is imported by the modules that need it.
"""
