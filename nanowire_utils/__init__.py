"""nanowire_utils: synthetic nanowire networks to Mask R-CNN instance segmentation.

The pipeline, one module per stage, one subpackage per part:

* :mod:`~nanowire_utils.synth`: geometry -> voxels / projection -> rendering -> dataset;
* :mod:`~nanowire_utils.maskrcnn`: configuration and presets -> engine (torchvision or
  detectron2) -> inference;
* :mod:`~nanowire_utils.real`: samples -> preprocessing, scale -> postprocess -> evaluation,
  statistics, with the reference annotations of the real images;
* :mod:`~nanowire_utils.sweep` (Table 1 as an experiment), :mod:`~nanowire_utils.app`
  (the segmentation app), :mod:`~nanowire_utils.viz` (figures), :mod:`~nanowire_utils.chapters`
  (the notebooks' glue) and :mod:`~nanowire_utils.cli` (``nanowire-utils``).

Importing the package is cheap: the deep-learning stack (torch) is imported only by
the training and inference modules.
"""

__version__ = "0.1.0"
