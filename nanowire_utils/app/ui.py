"""The segmentation app's widget layout (the paper's web app, in Jupyter and as a Voila page).

>>> from nanowire_utils.app.ui import SegmentationApp
>>> app = SegmentationApp(runs=["../runs"])    # run folders found under ../runs
>>> app                                         # the live app (a static picture in the HTML book)

The work is done by :mod:`nanowire_utils.app.segment`; this module only lays out widgets and
wires them to it. Every handler catches errors and shows them in the message line, so the app
stays usable. ``nanowire-utils app`` serves this app as a standalone Voila page.

For scripts and tests the app can be driven without a browser: set ``app.controls[...]``
values, call :meth:`SegmentationApp.use_sample`, :meth:`SegmentationApp.use_upload`, then
:meth:`SegmentationApp.run`, and read ``app.result`` and ``app.message``.
"""

from __future__ import annotations

import base64
import html
import logging
import traceback
from pathlib import Path

import numpy as np

from nanowire_utils.app import segment as sg
from nanowire_utils.app._display import LiveFigure, figure_png, require_ipywidgets
from nanowire_utils.paper import MODALITIES

log = logging.getLogger(__name__)

#: Value of the image chooser while an uploaded image is in use.
UPLOADED = "(uploaded image)"
#: Modality choice that means "no modality preprocessing".
NO_MODALITY = "none (gray as it is)"
#: Most table rows shown on the page (the CSV download has all).
MAX_TABLE_ROWS = 200


def _download_link(name: str, content: bytes, mime: str) -> str:
    data = base64.b64encode(content).decode("ascii")
    size = f"{len(content) / 1024:.0f} KiB" if len(content) < 2**20 else f"{len(content) / 2**20:.1f} MiB"
    return (
        f'<a class="nw-download" download="{html.escape(name)}" href="data:{mime};base64,{data}" '
        f'style="margin-right:1.2em">{html.escape(name)}</a><small>({size})</small> '
    )


class SegmentationApp(LiveFigure):
    """Upload or pick an image, pick a trained run, segment, inspect and download.

    Parameters
    ----------
    runs : list of path-like
        Folders searched for trained run folders (:func:`nanowire_utils.app.segment.find_runs`);
        a run folder itself may be given.
    run : path-like, optional
        The run selected at the start (added to the list if it is not under ``runs``).
    score_thresh : float
        Initial score threshold (0-1).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    sample : str or None
        A sample image to load at the start (``"ptychography"``, ``"stxm"``, ``"sem"``).

    Attributes
    ----------
    controls : dict of str to ipywidgets.Widget
        ``image`` (sample chooser), ``upload``, ``run``, ``modality``, ``input_scale``,
        ``score_thresh``, ``nested``, ``nested_fraction``, ``pixel_size_nm``, ``run_button``.
    image : numpy.ndarray or None
        The image in use; ``image_name`` its name.
    result : SegmentationResult or None
        The last segmentation.
    message : str
        The last message shown (plain text); ``message_is_error`` tells its kind.
    """

    def __init__(self, runs=("runs",), run=None, score_thresh: float = 0.5, device: str = "auto", sample=None):
        widgets = require_ipywidgets()
        self.runs_roots = [Path(r).expanduser() for r in (runs or [])]
        self.models = sg.ModelCache(device)
        self.image = None
        self.image_name = ""
        self.result = None
        self.message = ""
        self.message_is_error = False
        self._extra_run = Path(run).expanduser().resolve() if run else None

        wide = {"style": {"description_width": "130px"}, "layout": {"width": "440px"}}
        self.controls = {
            "image": widgets.Dropdown(
                options=[UPLOADED, *sg.sample_names()], value=UPLOADED, description="sample image", **wide
            ),
            "upload": widgets.FileUpload(
                accept=",".join(sg.UPLOAD_SUFFIXES), multiple=False, description="Upload image", icon="upload"
            ),
            "run": widgets.Dropdown(options=[], description="trained model", **wide),
            "refresh": widgets.Button(description="refresh list", icon="refresh", layout={"width": "120px"}),
            "modality": widgets.Dropdown(
                options=[NO_MODALITY, *MODALITIES], value=NO_MODALITY, description="preprocessing", **wide
            ),
            "input_scale": widgets.BoundedFloatText(
                value=1.0, min=0.1, max=8.0, step=0.05, description="input scale", **wide
            ),
            "score_thresh": widgets.FloatSlider(
                value=float(score_thresh),
                min=0.0,
                max=1.0,
                step=0.05,
                description="score threshold",
                continuous_update=False,
                **wide,
            ),
            "nested": widgets.Checkbox(value=True, description="remove wires nested in larger ones", indent=False),
            "nested_fraction": widgets.FloatSlider(
                value=0.8,
                min=0.5,
                max=1.0,
                step=0.05,
                description="nested fraction",
                continuous_update=False,
                **wide,
            ),
            "pixel_size_nm": widgets.BoundedFloatText(
                value=0.0, min=0.0, max=1e6, step=0.5, description="pixel size (nm)", **wide
            ),
            "run_button": widgets.Button(description="Segment", button_style="primary", icon="play"),
        }
        c = self.controls
        self.image_info = widgets.HTML()
        self.scale_note = widgets.HTML()
        self.progress = widgets.FloatProgress(value=0, min=0, max=1, description="", layout={"width": "300px"})
        self.progress_label = widgets.HTML()
        self.message_box = widgets.HTML()
        self.overlay_image = widgets.Image(format="png", layout={"max_width": "560px", "max_height": "640px"})
        self.overlay_image.add_class("nw-overlay")
        self.stats_image = widgets.Image(format="png", layout={"max_width": "900px"})
        self.summary = widgets.HTML()
        self.table = widgets.HTML(layout={"margin": "0 0 0 12px"})
        self.downloads = widgets.HTML()
        results = widgets.VBox(
            [
                self.summary,
                widgets.HBox([self.overlay_image, self.table], layout={"align_items": "flex-start"}),
                self.stats_image,
                self.downloads,
            ],
            layout={"padding": "4px"},
        )
        self.results_box = results
        self.widget = widgets.VBox(
            [
                widgets.HTML("<h3 style='margin:0'>Nanowire segmentation</h3>"),
                widgets.HTML(
                    "Upload a microscopy image (PNG or TIFF, 8 or 16 bit, gray or RGB) or pick one of the "
                    "paper's samples, choose a trained model, and press <b>Segment</b>."
                ),
                widgets.HBox([c["image"], c["upload"]]),
                self.image_info,
                widgets.HBox([c["run"], c["refresh"]]),
                c["modality"],
                widgets.HBox([c["input_scale"], self.scale_note]),
                c["score_thresh"],
                widgets.HBox([c["nested"], c["nested_fraction"]]),
                widgets.HBox([c["pixel_size_nm"], widgets.HTML("<small>0: statistics in pixels</small>")]),
                widgets.HBox([c["run_button"], self.progress, self.progress_label]),
                self.message_box,
                results,
            ],
            layout={"padding": "6px"},
        )
        self.refresh_runs()
        c["image"].observe(self._on_image_choice, names="value")
        c["upload"].observe(self._on_upload, names="value")
        c["refresh"].on_click(lambda _: self._guard(self.refresh_runs))
        c["run_button"].on_click(lambda _: self._guard(self.run))
        for name in ("score_thresh", "nested", "nested_fraction", "pixel_size_nm"):
            c[name].observe(self._on_filter_change, names="value")
        c["nested"].observe(lambda ch: setattr(c["nested_fraction"], "disabled", not ch["new"]), names="value")
        for name in ("run", "modality"):  # the estimate depends on both
            c[name].observe(lambda ch: self._guard(self.estimate_scale), names="value")
        if sample:
            self.use_sample(sample)

    def __repr__(self):
        return f"SegmentationApp(image={self.image_name!r}, run={self.controls['run'].value!r})"

    # ------------------------------------------------------------------------ messages

    def _show(self, text: str, error: bool = False) -> None:
        self.message = text
        self.message_is_error = error
        if not text:
            self.message_box.value = ""
            return
        cls, colour = ("nw-error", "#b00020") if error else ("nw-info", "#1b5e20")
        self.message_box.value = f'<div class="{cls}" style="color:{colour};max-width:900px">{html.escape(text)}</div>'

    def _guard(self, func, *args):
        """Run a handler; show an AppError's message, or any other error in one line."""
        try:
            return func(*args)
        except sg.AppError as err:
            self._show(str(err), error=True)
        except Exception as err:  # the app must stay usable whatever happens
            log.error("%s", traceback.format_exc())
            self._show(f"unexpected {type(err).__name__}: {err}", error=True)
        finally:
            self.controls["run_button"].disabled = False
        return None

    # ------------------------------------------------------------------------ inputs

    def refresh_runs(self) -> list[Path]:
        """Search the run roots again and refill the model chooser; returns the runs found."""
        found = sg.find_runs(*self.runs_roots)
        if self._extra_run is not None and self._extra_run not in found:
            found.insert(0, self._extra_run)
        dd = self.controls["run"]
        old = dd.value
        values = [str(p) for p in found]
        dd.options = [(self._run_label(p), str(p)) for p in found]
        if found:
            dd.value = old if old in values else (str(self._extra_run) if self._extra_run is not None else values[0])
        if not found:
            self._show(self._no_model_message(), error=True)
        return found

    def _no_model_message(self) -> str:
        where = ", ".join(str(r) for r in self.runs_roots) or "(no folder given)"
        return f"no trained model found under {where}: {sg.HOW_TO_TRAIN}"

    @staticmethod
    def _run_label(path: Path) -> str:
        parts = path.parts[-3:]
        return "/".join(parts)

    def _set_image(self, image: np.ndarray, name: str, modality: str | None = None) -> None:
        self.image = image
        self.image_name = name
        self.result = None
        self._clear_results()
        if modality is not None:
            self.controls["modality"].value = modality
        self.estimate_scale()
        self.image_info.value = f"<small>{html.escape(name)}: {html.escape(sg.describe_image(image))}</small>"
        if self.controls["run"].options:
            self._show(f"{name} loaded; press Segment")
        else:
            self._show(f"{name} loaded, but {self._no_model_message()}", error=True)

    def estimate_scale(self) -> float | None:
        """Set the input scale box to the estimate for the current image, preprocessing and
        model (:func:`nanowire_utils.app.segment.estimate_input_scale`); returns it."""
        if self.image is None:
            return None
        scale, note = sg.estimate_input_scale(self.image, self._modality(), self.controls["run"].value)
        self.controls["input_scale"].value = scale
        self.scale_note.value = f"<small>{html.escape(note)}</small>"
        return scale

    def use_sample(self, name: str) -> None:
        """Use one of the paper's sample images (its modality preprocessing is chosen too)."""
        image = sg.load_sample_image(name)
        if self.controls["image"].value != name:
            self.controls["image"].unobserve(self._on_image_choice, names="value")
            self.controls["image"].value = name
            self.controls["image"].observe(self._on_image_choice, names="value")
        from nanowire_utils.real.samples import SAMPLES

        self._set_image(image, SAMPLES[name]["file"], modality=name if name in MODALITIES else None)

    def use_upload(self, name: str, content: bytes) -> None:
        """Use an uploaded file (AppError with the reason when it cannot be used)."""
        image = sg.read_upload(name, content)
        self.controls["image"].unobserve(self._on_image_choice, names="value")
        self.controls["image"].value = UPLOADED
        self.controls["image"].observe(self._on_image_choice, names="value")
        self._set_image(image, name)

    def _on_image_choice(self, change):
        if change["new"] != UPLOADED:
            self._guard(self.use_sample, change["new"])

    def _on_upload(self, change):
        files = change["new"]
        if not files:
            return
        f = files[0] if isinstance(files, (tuple, list)) else next(iter(files.values()))
        name = f.get("name", "upload") if isinstance(f, dict) else getattr(f, "name", "upload")
        content = f.get("content") if isinstance(f, dict) else getattr(f, "content", b"")
        self._guard(self.use_upload, name, bytes(content))

    def _modality(self):
        value = self.controls["modality"].value
        return None if value == NO_MODALITY else value

    def _filters(self):
        c = self.controls
        nested = float(c["nested_fraction"].value) if c["nested"].value else None
        pixel = float(c["pixel_size_nm"].value) or None
        return float(c["score_thresh"].value), nested, pixel

    # ------------------------------------------------------------------------ running

    def _report(self, step: str, fraction: float) -> None:
        self.progress.value = float(fraction)
        self.progress_label.value = f"<small>{html.escape(step)}</small>"

    def run(self):
        """Segment the current image with the chosen model and settings; returns the result
        (None, with the reason in the message line, when something is missing or wrong)."""
        c = self.controls
        if self.image is None:
            raise sg.AppError("no image yet: upload one or pick a sample image")
        c["run_button"].disabled = True
        self._show("")
        self._report("loading the model", 0.02)
        try:
            predictor = self.models.get(c["run"].value)
            score, nested, pixel = self._filters()
            result = sg.segment(
                self.image,
                predictor,
                modality=self._modality(),
                input_scale=float(c["input_scale"].value),
                score_thresh=score,
                nested_fraction=nested,
                pixel_size_nm=pixel,
                name=self.image_name,
                progress=self._report,
            )
        except Exception:
            self._report("stopped", 0.0)
            raise
        finally:
            c["run_button"].disabled = False
        self._show_result(result)
        return result

    def _on_filter_change(self, change):
        if self.result is None:
            return
        score, nested, pixel = self._filters()

        self._guard(lambda: self._show_result(self.result.refilter(score, nested, pixel)))

    # ------------------------------------------------------------------------ results

    def _clear_results(self) -> None:
        self.overlay_image.value = b""
        self.stats_image.value = b""
        self.summary.value = ""
        self.table.value = ""
        self.downloads.value = ""
        self.progress.value = 0
        self.progress_label.value = ""

    def _show_result(self, result) -> None:
        self.result = result
        overlay = result.overlay_png()
        self.stats_image.value = figure_png(result.statistics_figure(), dpi=80)
        self.summary.value = f'<div class="nw-summary"><b>{html.escape(result.summary())}</b></div>'
        table = result.display_table()
        note = (
            f"<small>first {MAX_TABLE_ROWS} of {len(table)} wires; the CSV has all</small>"
            if len(table) > MAX_TABLE_ROWS
            else ""
        )
        self.table.value = (
            '<div style="max-height:560px;overflow:auto;font-size:12px">'
            + table.head(MAX_TABLE_ROWS).to_html(index=False, classes="nw-stats-table", border=0)
            + f"</div>{note}"
        )
        self.downloads.value = "<b>Downloads:</b> " + "".join(
            _download_link(name, content, mime) for name, (content, mime) in result.downloads().items()
        )
        self._report(f"done in {result.seconds.get('total', 0):.1f} s", 1.0)
        self.overlay_image.value = overlay  # last: when the overlay shows, everything else is there

    def static_figure(self):
        """The overlay and the statistics histograms of the last result (None before a run)."""
        if self.result is None:
            return None
        from matplotlib.figure import Figure

        r = self.result
        fig = Figure(figsize=(11, 5), layout="constrained")
        grid = fig.add_gridspec(2, 4, height_ratios=[3, 1.2])
        ax = fig.add_subplot(grid[0, 1:3])
        ax.imshow(r.overlay())
        ax.set_axis_off()
        ax.set_title(f"{self.image_name}: {r.summary()}", fontsize=9)
        r.plot_histograms([fig.add_subplot(grid[1, i]) for i in range(4)])
        fig.suptitle("Segmentation app (static picture of this run; run the notebook for the live app)", fontsize=9)
        return fig
