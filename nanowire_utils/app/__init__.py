"""Interactive parts of the book: widget explorers and the segmentation app.

- :mod:`nanowire_utils.app.widgets`: the explorers of chapters 1 and 2
  (:class:`~nanowire_utils.app.widgets.NetworkExplorer`: the 3D network generator;
  :class:`~nanowire_utils.app.widgets.RenderExplorer`: the optical-density renderer beside the
  real ptychography image's histogram).
- :mod:`nanowire_utils.app.segment`: the segmentation app's logic as plain functions and
  classes, without widgets (read an upload, find trained runs, preprocess, segment,
  post-process, statistics, downloads).
- :mod:`nanowire_utils.app.ui`: the app's widget layout
  (:class:`~nanowire_utils.app.ui.SegmentationApp`), shown in chapter 7 and served as a
  standalone Voila page by ``nanowire-utils app``.

Every live widget object here also carries a static PNG of its current state in its
display data, so a page without a kernel (the HTML book) shows a figure instead of a dead
widget; JupyterLab and Voila render the live widget.

ipywidgets (and for ``nanowire-utils app``, voila) come with the ``book`` extras.
"""
