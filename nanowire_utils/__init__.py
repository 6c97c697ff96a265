"""nanowire_utils: synthetic nanowire networks to Mask R-CNN instance segmentation.

The pipeline, one module per stage:

geometry -> voxels / projection -> rendering -> dataset -> training -> inference
-> evaluation / statistics / postprocess, with preprocessing and annotations for real images.

Importing the package is cheap: the deep-learning stack (torch) is imported only by
the training and inference modules.
"""

__version__ = "0.1.0"
