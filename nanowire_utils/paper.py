"""The paper's numbers as data, in one place and one format.

Lin, Emami et al., *A deep learned nanowire segmentation model using synthetic data
augmentation*, npj Comput. Mater. 8 (2022): Table 1 (the 20-run hyperparameter sweep, synthetic
test AP) and Tables 2-4 (the real X-ray ptychography, STXM and SEM images: foreground accuracy
and COCO AP of the best models). Values are transcribed as printed, in percent; ``nan`` where
the paper prints NaN. Also the three imaging modalities the package knows.
"""

from __future__ import annotations

import math

from nanowire_utils._checks import check_choice

#: The real-image modalities of the paper (section 3), in the order of its Tables 2-4.
MODALITIES = ("ptychography", "stxm", "sem")
MODALITY_TITLES = {"ptychography": "X-ray ptychography", "stxm": "STXM", "sem": "SEM"}
#: Which of the paper's tables reports each modality.
TABLE_NUMBER = {"ptychography": 2, "stxm": 3, "sem": 4}
AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")

TABLE1_COLUMNS = ("No.", "Epochs", "Dataset size", "LR", "ROI head", "IoU thr", "NMS", "AP bbox", "AP segm")
# fmt: off
TABLE1 = (
    (1, 250, 250, 0.02, 256, 0.6, 0.7, 89.442, 87.392), (2, 250, 500, 0.02, 256, 0.6, 0.7, 91.843, 88.878),
    (3, 250, 750, 0.02, 256, 0.6, 0.7, 92.219, 89.568), (4, 250, 1000, 0.02, 256, 0.6, 0.7, 93.541, 90.195),
    (5, 500, 250, 0.02, 256, 0.6, 0.7, 90.949, 87.908), (6, 500, 500, 0.02, 256, 0.6, 0.7, 92.831, 89.872),
    (7, 500, 750, 0.02, 256, 0.6, 0.7, 93.336, 90.034), (8, 500, 1000, 0.02, 256, 0.6, 0.7, 93.878, 90.254),
    (9, 750, 250, 0.02, 256, 0.6, 0.7, 92.219, 89.568), (10, 750, 500, 0.02, 256, 0.6, 0.7, 92.820, 90.095),
    (11, 750, 750, 0.02, 256, 0.6, 0.7, 93.454, 89.958), (12, 750, 1000, 0.02, 256, 0.6, 0.7, 94.002, 90.487),
    (13, 750, 500, 0.01, 256, 0.6, 0.7, 93.564, 89.72), (14, 750, 500, 0.03, 256, 0.6, 0.7, 93.279, 89.87),
    (15, 750, 500, 0.02, 128, 0.6, 0.7, 92.582, 89.614), (16, 750, 500, 0.02, 512, 0.6, 0.7, 93.513, 89.932),
    (17, 750, 500, 0.02, 256, 0.7, 0.7, 93.278, 89.945), (18, 750, 500, 0.02, 256, 0.8, 0.7, 93.523, 90.139),
    (19, 750, 500, 0.02, 256, 0.6, 0.6, 92.902, 89.952), (20, 750, 500, 0.02, 256, 0.6, 0.8, 93.58, 89.74),
)

#: Tables 2-4: (model number in Table 1, foreground accuracy, then (bbox, segm) pairs of
#: AP, AP50, AP75, APs, APm, APl). The first row of each table is the model with the best
#: segmentation AP on that image.
NAN = math.nan
REAL_IMAGE_TABLES = {
    "ptychography": (
        (13, 86.6, (39.145, 42.327), (64.638, 62.519), (43.965, 39.964), (25.248, 22.442), (52.753, 58.03), (72.525, 85.05)),
        (17, 85.5, (41.809, 41.719), (74.603, 67.042), (43.25, 40.438), (28.34, 19.785), (52.772, 52.774), (62.624, 70.099)),
        (14, 86.2, (38.584, 41.662), (63.618, 62.803), (42.159, 42.159), (25.248, 26.931), (44.998, 50.644), (75.05, 70.099)),
    ),
    "stxm": (
        (1, 75.6, (27.267, 21.791), (54.404, 51.877), (23.423, 17.587), (25.228, 20.862), (37.744, 28.877), (NAN, NAN)),
        (3, 73.1, (30.51, 21.36), (53.577, 52.172), (29.092, 15.618), (24.447, 17.329), (48.116, 32.782), (NAN, NAN)),
        (9, 75.3, (28.293, 21.049), (51.763, 48.671), (27.977, 17.437), (20.581, 16.013), (49.245, 34.714), (NAN, NAN)),
    ),
    "sem": (
        (1, 59.6, (27.61, 12.927), (51.8, 23.126), (22.884, 5.206), (20.586, 7.842), (43.495, 22.443), (38.356, 36.634)),
        (5, 61.7, (27.916, 12.688), (54.302, 37.916), (21.149, 5.643), (22.776, 8.337), (43.195, 21.884), (16.311, 25.743)),
        (13, 33.2, (21.561, 12.659), (47.924, 35.553), (15.718, 5.088), (14.011, 8.089), (44.587, 23.695), (15.317, 12.871)),
    ),
}
# fmt: on


def table1() -> list[dict]:
    """The paper's Table 1 (its training runs) as data.

    Returns
    -------
    list of dict
        One dict per run, keyed by :data:`TABLE1_COLUMNS` (epochs, dataset size, learning
        rate, ROI-head batch, IoU threshold, NMS threshold, synthetic test AP bbox and
        segm in percent).
    """
    return [dict(zip(TABLE1_COLUMNS, r)) for r in TABLE1]


def real_image_rows(modality: str) -> list[dict]:
    """The paper's real-image results for one modality (its Table 2, 3 or 4).

    Parameters
    ----------
    modality : str
        One of :data:`MODALITIES`.

    Returns
    -------
    list of dict
        One row per model, flat like
        :func:`nanowire_utils.real.evaluation.evaluate_instances`: ``model`` (the run
        number in Table 1), ``accuracy``, ``bbox_AP`` ... ``segm_APl`` in percent (``nan``
        where the paper prints NaN).

    Raises
    ------
    ValueError
        For an unknown modality.
    """
    check_choice("modality", modality, MODALITIES)
    rows = []
    for no, acc, *pairs in REAL_IMAGE_TABLES[modality]:
        row = {"model": no, "accuracy": acc}
        for key, (b, s) in zip(AP_KEYS, pairs):
            row[f"bbox_{key}"], row[f"segm_{key}"] = b, s
        rows.append(row)
    return rows
