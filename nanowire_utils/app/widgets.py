"""Explorers for chapters 1 and 2: move a slider, see the network or the image change.

>>> from nanowire_utils.app.widgets import NetworkExplorer, RenderExplorer
>>> RenderExplorer(real="ptychography")      # chapter 2: the renderer and the real histogram
>>> NetworkExplorer()                        # chapter 1: the 3D network generator

Each explorer is a plain object: its controls are in ``.controls`` (name -> ipywidget), the
layout in ``.widget``, and :meth:`update` redraws from the controls' values (called on every
change; it never raises: a bad combination is shown in the status line). Displayed, it shows
the live widget in JupyterLab and Voila and a static figure of the same content in the HTML
book (see :mod:`nanowire_utils.app._display`).

Both explorers draw pictures as PNG bytes into ``ipywidgets.Image`` widgets rather than
re-drawing matplotlib figures, so one update of the 512 px renderer takes tens of
milliseconds (``.timings`` keeps the seconds of every update).
"""

from __future__ import annotations

import time

import numpy as np

from nanowire_utils.app._display import LiveFigure, colormap_rgb, png_bytes, require_ipywidgets

#: Bins of the gray-value histograms, over [0, 1].
HIST_BINS = 64


def _hist(image01: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    """Density histogram of a gray image in [0, 1] (``bins`` equal bins)."""
    counts, _ = np.histogram(np.asarray(image01, dtype=np.float32).ravel(), bins=bins, range=(0.0, 1.0))
    total = counts.sum()
    return counts / (total / bins) if total else counts.astype(float)


def _status(widget, text: str, error: bool = False) -> None:
    colour = "#b00020" if error else "#555"
    widget.value = f'<span style="color:{colour}">{text}</span>'


# ----------------------------------------------------------------------------- chapter 2


class RenderExplorer(LiveFigure):
    """The optical-density renderer (:mod:`nanowire_utils.synth.rendering`) with a slider per
    parameter, its image, its gray-value histogram and the real image's histogram.

    Parameters
    ----------
    projection : Projection, optional
        The network to render (:func:`nanowire_utils.synth.projection.project_network`);
        default: a network of the paper's generator preset (``seed``), 512 x 512 px.
    real : str or numpy.ndarray or None
        The real image whose histogram is shown beside: a sample name
        (``"ptychography"``, ``"stxm"``, ``"sem"``; :func:`nanowire_utils.real.samples.load_sample`),
        an image array, or None for none. A sample that cannot be loaded (offline, no
        ``NANOWIRE_UTILS_SAMPLES``) is reported in the status line, not raised.
    params : RenderParams, optional
        Initial values of the controls (default: the paper's recipe).
    seed : int
        Seed of the default network and of the noise (the same for every update, so two
        images differ only by the parameters).

    Attributes
    ----------
    controls : dict of str to ipywidgets.Widget
        ``blur_sigma``, ``normalization``, ``reference_thickness``, ``contrast``,
        ``beer_lambert``, ``mu_spread``, ``shot_noise``, ``dose``, ``read_noise``,
        ``background``, ``illumination_gradient``, ``sem``.
    image : numpy.ndarray
        The last rendered image, uint8 (H, W).
    timings : list of float
        Seconds of every :meth:`update` (render, histogram, both pictures).
    """

    def __init__(self, projection=None, real="ptychography", params=None, seed: int = 0):
        widgets = require_ipywidgets()
        from nanowire_utils.synth.rendering import RenderParams

        self.seed = int(seed)
        if projection is None:
            from nanowire_utils.synth.generator_presets import get_preset
            from nanowire_utils.synth.geometry import generate_network
            from nanowire_utils.synth.projection import project_network

            projection = project_network(generate_network(get_preset("paper").network, np.random.default_rng(seed)))
        self.projection = projection
        p = (params or RenderParams()).validate()
        self.real_name, self.real, real_error = self._load_real(real)
        self.real_hist = _hist(self._gray01(self.real)) if self.real is not None else None

        d = {"style": {"description_width": "150px"}, "layout": {"width": "380px"}}
        s = {"continuous_update": True, **d}
        lo, hi = p.contrast_range
        self.controls = {
            "blur_sigma": widgets.FloatSlider(
                value=p.blur_sigma, min=0, max=6, step=0.25, description="blur sigma (px)", **s
            ),
            "normalization": widgets.Dropdown(
                options=["max", "height", "fixed"], value=p.normalization, description="normalisation", **d
            ),
            "reference_thickness": widgets.FloatSlider(
                value=p.reference_thickness, min=5, max=200, step=5, description="reference (voxels)", **s
            ),
            "contrast": widgets.FloatSlider(
                value=(lo + hi) / 2, min=0.5, max=2.0, step=0.05, description="contrast factor", **s
            ),
            "beer_lambert": widgets.Checkbox(
                value=p.beer_lambert, description="Beer-Lambert transmission", indent=False
            ),
            "mu_spread": widgets.FloatSlider(
                value=p.mu_spread, min=0, max=1, step=0.05, description="attenuation spread", **s
            ),
            "shot_noise": widgets.Checkbox(value=p.dose is not None, description="shot noise", indent=False),
            "dose": widgets.FloatLogSlider(
                value=p.dose or 1000.0, base=10, min=1, max=5, step=0.1, description="dose (photons/px)", **s
            ),
            "read_noise": widgets.FloatSlider(
                value=p.read_noise, min=0, max=0.2, step=0.005, description="read noise", readout_format=".3f", **s
            ),
            "background": widgets.FloatSlider(
                value=p.background, min=0, max=30, step=0.5, description="background (voxels)", **s
            ),
            "illumination_gradient": widgets.FloatSlider(
                value=p.illumination_gradient, min=0, max=0.5, step=0.01, description="illumination gradient", **s
            ),
            "sem": widgets.Checkbox(value=p.sem_fraction >= 0.5, description="SEM-like look", indent=False),
        }
        self._base = p
        self.picture = widgets.Image(format="png", layout={"width": "360px", "height": "360px"})
        self.histograms = widgets.Image(format="png", layout={"width": "560px"})
        self.status = widgets.HTML()
        c = self.controls
        left = widgets.VBox(
            [
                widgets.HTML("<b>Paper's recipe</b>"),
                c["blur_sigma"],
                c["normalization"],
                c["reference_thickness"],
                c["contrast"],
                widgets.HTML("<b>Beyond the paper</b>"),
                c["beer_lambert"],
                c["mu_spread"],
                c["shot_noise"],
                c["dose"],
                c["read_noise"],
                c["background"],
                c["illumination_gradient"],
                c["sem"],
            ]
        )
        self.widget = widgets.VBox(
            [widgets.HBox([left, self.picture]), self.histograms, self.status],
            layout={"border": "1px solid #ddd", "padding": "6px"},
        )
        self.timings: list[float] = []
        self.image = None
        self._hist_fig = None
        for w in c.values():
            w.observe(self._on_change, names="value")
        self.update()
        if real_error:
            self._message += f" | {real_error}"
            _status(self.status, self._message)

    def __repr__(self):
        n = len(getattr(self.projection, "footprints", []))
        return f"RenderExplorer({n} wires, {self.projection.shape[0]} x {self.projection.shape[1]} px, real={self.real_name!r})"

    # -- logic --------------------------------------------------------------------------

    @staticmethod
    def _load_real(real):
        if real is None:
            return None, None, ""
        if isinstance(real, str):
            from nanowire_utils.real.samples import load_sample

            try:
                return real, load_sample(real), ""
            except (OSError, ValueError) as err:
                return real, None, f"no real {real} histogram: {err}"
        return "image", np.asarray(real), ""

    @staticmethod
    def _gray01(image):
        from nanowire_utils.real.preprocessing import to_gray_float

        return to_gray_float(image)

    def params(self):
        """The :class:`~nanowire_utils.synth.rendering.RenderParams` the controls describe
        (transmission-only settings are dropped while Beer-Lambert is off)."""
        c = {k: w.value for k, w in self.controls.items()}
        bl = bool(c["beer_lambert"])
        return self._base.replace(
            blur_sigma=float(c["blur_sigma"]),
            normalization=c["normalization"],
            reference_thickness=float(c["reference_thickness"]),
            contrast_range=(float(c["contrast"]), float(c["contrast"])),
            beer_lambert=bl,
            mu_spread=float(c["mu_spread"]) if bl else 0.0,
            dose=float(c["dose"]) if bl and c["shot_noise"] else None,
            read_noise=float(c["read_noise"]),
            background=float(c["background"]),
            illumination_gradient=float(c["illumination_gradient"]) if bl else 0.0,
            sem_fraction=1.0 if c["sem"] else 0.0,
        ).validate()

    def render(self) -> np.ndarray:
        """The uint8 image of the current parameters (the same noise seed every time)."""
        from nanowire_utils.synth.rendering import render, to_uint8

        return to_uint8(render(self.projection, self.params(), np.random.default_rng(self.seed)))

    # -- drawing ------------------------------------------------------------------------

    def _sync_enabled(self):
        c = self.controls
        bl = c["beer_lambert"].value
        for name in ("mu_spread", "shot_noise", "illumination_gradient"):
            c[name].disabled = not bl
        c["dose"].disabled = not (bl and c["shot_noise"].value)
        c["reference_thickness"].disabled = c["normalization"].value != "fixed"

    def _draw_histograms(self, hist):
        """Update (or first build) the two histogram panels; returns PNG bytes.

        The axes, labels and the real histogram are drawn once; an update restores that
        background and redraws only the synthetic histogram's two step lines (blitting), which
        is several times faster than redrawing the figure.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        edges = np.linspace(0, 1, HIST_BINS + 1)
        if self._hist_fig is None:
            fig = Figure(figsize=(7.0, 2.4), dpi=80, layout="constrained")
            canvas = FigureCanvasAgg(fig)
            ax_syn, ax_real = fig.subplots(1, 2, sharex=True, sharey=True)
            self._steps = [ax_syn.stairs(hist + 1e-3, edges, fill=True, color="tab:blue", alpha=0.7, animated=True)]
            ax_syn.set_title("synthetic image", fontsize=9)
            if self.real_hist is not None:
                ax_real.stairs(self.real_hist + 1e-3, edges, fill=True, color="tab:orange", alpha=0.7)
                self._steps.append(ax_real.stairs(hist + 1e-3, edges, color="tab:blue", lw=1, animated=True))
                ax_real.plot([], [], color="tab:blue", lw=1, label="synthetic")
                ax_real.legend(frameon=False, fontsize=7)
                ax_real.set_title(f"real {self.real_name}", fontsize=9)
            else:
                ax_real.set_title("(no real image)", fontsize=9)
            for ax in (ax_syn, ax_real):
                ax.set_yscale("log")
                ax.set_ylim(1e-3, 100)
                ax.set_xlim(0, 1)
                ax.set_xlabel("gray value", fontsize=8)
                ax.tick_params(labelsize=7)
            ax_syn.set_ylabel("density (log)", fontsize=8)
            canvas.draw()
            fig.set_layout_engine("none")  # freeze the layout: later draws are blits
            self._hist_bg = canvas.copy_from_bbox(fig.bbox)
            self._hist_fig = fig
        fig = self._hist_fig
        canvas = fig.canvas
        canvas.restore_region(self._hist_bg)
        for step in self._steps:
            step.set_data(hist + 1e-3)
            step.axes.draw_artist(step)
        rgba = np.asarray(canvas.buffer_rgba())
        return png_bytes(np.ascontiguousarray(rgba[..., :3]))

    def update(self) -> float:
        """Render with the controls' values and redraw; returns the seconds it took.

        A parameter combination the renderer refuses is shown in the status line (red) and
        the last good picture stays.
        """
        t0 = time.perf_counter()
        self._sync_enabled()
        try:
            image = self.render()
        except ValueError as err:
            self._message = f"cannot render: {err}"
            _status(self.status, self._message, error=True)
            return time.perf_counter() - t0
        self.image = image
        hist = _hist(image / 255.0)
        self.picture.value = png_bytes(image)
        self.histograms.value = self._draw_histograms(hist)
        dt = time.perf_counter() - t0
        self.timings.append(dt)
        h, w = image.shape
        self._message = f"{w} x {h} px, gray values {image.min()}-{image.max()}, updated in {dt * 1000:.0f} ms"
        _status(self.status, self._message)
        return dt

    def _on_change(self, change):
        self.update()

    def static_figure(self):
        """Image, its histogram and the real image's histogram as one matplotlib Figure."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11, 3.4), layout="constrained")
        ax_im, ax_syn, ax_real = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1.3, 1.3]})
        ax_im.imshow(self.image, cmap="gray", vmin=0, vmax=255)
        ax_im.set_axis_off()
        ax_im.set_title("synthetic image", fontsize=9)
        edges = np.linspace(0, 1, HIST_BINS + 1)
        hist = _hist(self.image / 255.0)
        ax_syn.stairs(hist + 1e-3, edges, fill=True, color="tab:blue", alpha=0.7)
        ax_syn.set_title("its gray values", fontsize=9)
        if self.real_hist is not None:
            ax_real.stairs(self.real_hist + 1e-3, edges, fill=True, color="tab:orange", alpha=0.7)
            ax_real.stairs(hist + 1e-3, edges, color="tab:blue", lw=1, label="synthetic")
            ax_real.legend(frameon=False, fontsize=7)
            ax_real.set_title(f"real {self.real_name} gray values", fontsize=9)
        for ax in (ax_syn, ax_real):
            ax.set_yscale("log")
            ax.set_ylim(1e-3, 100)
            ax.set_xlim(0, 1)
            ax.set_xlabel("gray value", fontsize=8)
        ax_syn.set_ylabel("density (log)", fontsize=8)
        fig.suptitle(
            "Renderer explorer (static picture of its first state; run the notebook to move the sliders)", fontsize=9
        )
        return fig


# ----------------------------------------------------------------------------- chapter 1

#: What each beyond-the-paper switch of :class:`NetworkExplorer` sets (as in chapter 1).
FEATURE_SWITCHES = {
    "taper": {"taper_prob": 1.0, "taper_range": (0.5, 0.8)},
    "bend": {"bend_prob": 1.0, "bend_angle_max": 120.0},
    "roughness": {"roughness_prob": 1.0, "roughness_amplitude": 0.4},
    "agglomerates": {"bundle_prob": 0.5, "clump_prob": 0.3},
}


class NetworkExplorer(LiveFigure):
    """The 3D network generator (:mod:`nanowire_utils.synth.geometry`) with controls for the
    number of wires, length, width, orientation and the beyond-the-paper switches; shows the
    thickness map seen from above and the wires coloured by deposition order.

    Parameters
    ----------
    params : NetworkParams, optional
        Starting point (default: the paper's generator preset, 512 x 512 x 200 voxels). The
        controls change ``n_wires``, ``length_mean``, ``width_mean``, ``orientation``,
        ``preferred_angle``, ``angle_spread`` and the features in :data:`FEATURE_SWITCHES`.
    seed : int
        Initial value of the seed control.

    Attributes
    ----------
    controls : dict of str to ipywidgets.Widget
        ``n_wires`` (range), ``length_mean``, ``width_mean``, ``orientation``,
        ``preferred_angle``, ``angle_spread``, ``seed`` and one checkbox per switch.
    network : Network
        The last generated network.
    timings : list of float
        Seconds of every :meth:`update`.
    """

    def __init__(self, params=None, seed: int = 0):
        widgets = require_ipywidgets()
        from nanowire_utils.synth.generator_presets import get_preset

        self._base = (params or get_preset("paper").network).validate()
        p = self._base
        n = p.n_wires if isinstance(p.n_wires, (tuple, list)) else (p.n_wires, p.n_wires)
        d = {"style": {"description_width": "140px"}, "layout": {"width": "380px"}}
        s = {"continuous_update": False, **d}
        self.controls = {
            "n_wires": widgets.IntRangeSlider(value=tuple(n), min=1, max=80, description="number of wires", **s),
            "length_mean": widgets.FloatSlider(
                value=p.length_mean,
                min=p.length_range[0],
                max=p.length_range[1],
                step=5,
                description="mean length (voxels)",
                **s,
            ),
            "width_mean": widgets.FloatSlider(
                value=p.width_mean,
                min=p.width_range[0],
                max=p.width_range[1],
                step=1,
                description="mean width (voxels)",
                **s,
            ),
            "orientation": widgets.Dropdown(
                options=["uniform", "preferred"], value=p.orientation, description="orientation", **d
            ),
            "preferred_angle": widgets.FloatSlider(
                value=p.preferred_angle, min=0, max=180, step=5, description="preferred angle (deg)", **s
            ),
            "angle_spread": widgets.FloatSlider(
                value=p.angle_spread, min=1, max=90, step=1, description="angle spread (deg)", **s
            ),
            "seed": widgets.IntSlider(value=int(seed), min=0, max=99, description="seed", **s),
        }
        for name in FEATURE_SWITCHES:
            self.controls[name] = widgets.Checkbox(
                value=False, description=name, indent=False, layout={"width": "120px"}
            )
        self.thickness_picture = widgets.Image(format="png", layout={"width": "300px", "height": "300px"})
        self.label_picture = widgets.Image(format="png", layout={"width": "300px", "height": "300px"})
        self.status = widgets.HTML()
        c = self.controls
        left = widgets.VBox(
            [
                c["n_wires"],
                c["length_mean"],
                c["width_mean"],
                c["orientation"],
                c["preferred_angle"],
                c["angle_spread"],
                c["seed"],
                widgets.HTML("<b>Beyond the paper</b>"),
                widgets.HBox([c[k] for k in FEATURE_SWITCHES]),
            ]
        )
        pictures = widgets.HBox(
            [
                widgets.VBox([widgets.HTML("thickness seen from above"), self.thickness_picture]),
                widgets.VBox([widgets.HTML("wires by deposition order"), self.label_picture]),
            ]
        )
        self.widget = widgets.VBox(
            [widgets.HBox([left, pictures]), self.status], layout={"border": "1px solid #ddd", "padding": "6px"}
        )
        self.timings: list[float] = []
        self.network = None
        self.projection = None
        for w in c.values():
            w.observe(self._on_change, names="value")
        self.update()

    def __repr__(self):
        n = self.network.n_wires if self.network is not None else 0
        return f"NetworkExplorer({n} wires, domain {self._base.domain})"

    def params(self):
        """The :class:`~nanowire_utils.synth.geometry.NetworkParams` the controls describe."""
        c = {k: w.value for k, w in self.controls.items()}
        changes = {
            "n_wires": tuple(int(v) for v in c["n_wires"]),
            "length_mean": float(c["length_mean"]),
            "width_mean": float(c["width_mean"]),
            "orientation": c["orientation"],
            "preferred_angle": float(c["preferred_angle"]),
            "angle_spread": float(c["angle_spread"]),
        }
        for name, values in FEATURE_SWITCHES.items():
            if c[name]:
                changes.update(values)
        return self._base.replace(**changes).validate()

    def generate(self):
        """A network and its projection for the current controls."""
        from nanowire_utils.synth.geometry import generate_network
        from nanowire_utils.synth.projection import project_network

        network = generate_network(self.params(), np.random.default_rng(int(self.controls["seed"].value)))
        return network, project_network(network)

    def _label_rgb(self, projection) -> np.ndarray:
        from nanowire_utils.synth.rendering import top_label_map
        from nanowire_utils.viz.plotting import instance_colors

        labels = top_label_map(projection)
        colors = np.vstack([[0, 0, 0], instance_colors(int(labels.max()) if labels.size else 0)])
        return (colors[labels] * 255).astype(np.uint8)

    def update(self) -> float:
        """Generate and redraw; returns the seconds it took. A failure (e.g. a domain too thin
        for that many wires) is shown in the status line and the last network stays."""
        t0 = time.perf_counter()
        c = self.controls
        preferred = c["orientation"].value == "preferred"
        c["preferred_angle"].disabled = not preferred
        c["angle_spread"].disabled = not preferred
        try:
            network, projection = self.generate()
        except ValueError as err:
            _status(self.status, f"cannot generate: {err}", error=True)
            return time.perf_counter() - t0
        self.network, self.projection = network, projection
        thickness = projection.total_thickness()
        self.thickness_picture.value = png_bytes(colormap_rgb(thickness, "magma"))
        self.label_picture.value = png_bytes(self._label_rgb(projection))
        dt = time.perf_counter() - t0
        self.timings.append(dt)
        lengths = np.array([w.length for w in network.wires])
        widths = np.array([w.width for w in network.wires])
        _status(
            self.status,
            f"{network.n_wires} wires; length mean {lengths.mean():.0f} voxels, width mean {widths.mean():.1f} voxels; "
            f"tallest stack {network.max_stack_height:.0f} of {self._base.domain[2]} voxels; "
            f"generated in {dt * 1000:.0f} ms",
        )
        return dt

    def _on_change(self, change):
        self.update()

    def static_figure(self):
        """Thickness map and label map of the current network as one matplotlib Figure."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 4.2), layout="constrained")
        ax_t, ax_l = fig.subplots(1, 2)
        im = ax_t.imshow(self.projection.total_thickness(), cmap="magma")
        fig.colorbar(im, ax=ax_t, shrink=0.8, label="summed thickness (voxels)")
        ax_t.set_title("thickness seen from above", fontsize=9)
        ax_l.imshow(self._label_rgb(self.projection), interpolation="nearest")
        ax_l.set_title(f"{self.network.n_wires} wires by deposition order", fontsize=9)
        for ax in (ax_t, ax_l):
            ax.set_axis_off()
        fig.suptitle(
            "Generator explorer (static picture of its first state; run the notebook to change it)", fontsize=9
        )
        return fig
