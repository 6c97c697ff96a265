"""What the explorers and the app share: a live widget whose display data also holds a static
PNG, and small image-to-PNG helpers.

Display data of a :class:`LiveFigure` has three representations:

- ``application/vnd.jupyter.widget-view+json``: the live widget, which JupyterLab, Jupyter
  Notebook and Voila prefer over any image;
- ``image/png``: a matplotlib figure of the widget's current state, drawn when the object is
  displayed. The book's ``_config.yml`` ranks this above the widget view for the HTML builder
  (``nb_mime_priority_overrides``), so the static book shows the figure where a reader without
  a kernel would otherwise get a widget that cannot react;
- ``text/plain``: a one-line description.
"""

from __future__ import annotations

import base64
import io

import numpy as np

WIDGET_VIEW_MIMETYPE = "application/vnd.jupyter.widget-view+json"


def require_ipywidgets():
    """The ``ipywidgets`` module, or ImportError saying how to install it."""
    try:
        import ipywidgets
    except ImportError:  # pragma: no cover - the book extras install it
        raise ImportError(
            "the interactive explorers and the app need ipywidgets 8: pip install 'nanowire-utils[book]' "
            "(or pip install 'ipywidgets>=8,<9')"
        ) from None
    return ipywidgets


def png_bytes(image: np.ndarray) -> bytes:
    """PNG file content of a uint8 image, gray (H, W) or RGB (H, W, 3)."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"png_bytes needs a uint8 image, got {arr.dtype}")
    buf = io.BytesIO()
    # compress_level 1: a 512 x 512 picture encodes in a few ms instead of tens
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def figure_png(fig, dpi: int = 80) -> bytes:
    """PNG file content of a matplotlib Figure (drawn with the Agg renderer, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def colormap_rgb(values: np.ndarray, cmap: str = "magma", vmax: float | None = None) -> np.ndarray:
    """uint8 RGB (H, W, 3) of a 2-D array through a matplotlib colormap, 0 to ``vmax``
    (default: the array's maximum)."""
    import matplotlib

    v = np.asarray(values, dtype=np.float32)
    top = float(v.max()) if vmax is None else float(vmax)
    scaled = v / top if top > 0 else np.zeros_like(v)
    lut = (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    return lut[np.clip(scaled * 255, 0, 255).astype(np.uint8)]


class LiveFigure:
    """Base of the explorers and the app: ``.widget`` is the live ipywidgets layout and
    :meth:`static_figure` draws the same content as a matplotlib Figure.

    Displaying the object (last expression of a cell, or ``display(obj)``) shows the widget
    in a live front end and the static figure in the HTML book.
    """

    widget = None  # set by subclasses

    def static_figure(self):  # pragma: no cover - abstract
        """A matplotlib Figure of the current state."""
        raise NotImplementedError

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        data = {"text/plain": repr(self)}
        widget_data = self.widget._repr_mimebundle_(**kwargs) if self.widget is not None else None
        if widget_data:
            data.update({k: v for k, v in widget_data.items() if k != "text/plain"})
        fig = self.static_figure()
        if fig is not None:
            data["image/png"] = base64.b64encode(figure_png(fig, dpi=100)).decode("ascii")
        return data
