"""Reading and writing human annotations of real images as :class:`~nanowire_utils.instances.Instances`.

The paper's annotators drew polygons in makesense.ai (section 2.1.5), which exports COCO JSON
and VGG (VIA) JSON. This module reads those, labelme JSON, any COCO instances file (polygons or
RLE) and folders of one-binary-mask-per-instance PNGs, and writes COCO JSON. Each reader
validates what it reads (duplicate ids, polygons outside the image, degenerate polygons, image
size or file name that do not match the image given) and says what is wrong.

Typical use::

    from nanowire_utils.real.annotations import read_annotations, load_reference, write_coco
    ann = read_annotations("my_export.json", image="STXM.png")  # -> ImageAnnotation
    ref = load_reference("stxm")                                 # the package's own references
    write_coco("out.json", {ann.file_name: ann.instances})
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nanowire_utils import coco
from nanowire_utils._checks import check_choice
from nanowire_utils.instances import Instances

#: Formats :func:`read_annotations` reads (``"auto"`` detects one of them).
FORMATS = ("coco", "vgg", "labelme", "masks")

#: Names of the reference annotations shipped with the package (one per sample image).
REFERENCE_NAMES = ("ptychography", "stxm", "sem")

_REFERENCE_DIR = Path(__file__).resolve().parent / "reference_annotations"
_MASK_SUFFIXES = {".png", ".tif", ".tiff", ".bmp"}


@dataclass
class ImageAnnotation:
    """The annotations of one image.

    Attributes
    ----------
    file_name:
        The image's file name as the annotation file records it (base name).
    height, width:
        Image size in pixels.
    instances:
        One mask per annotated object (scores 1.0).
    """

    file_name: str
    height: int
    width: int
    instances: Instances


# --------------------------------------------------------------------------- geometry helpers


def polygon_area(xy) -> float:
    """Area of a simple polygon (shoelace formula).

    Parameters
    ----------
    xy : array_like of float, shape (K, 2) or (2K,)
        Vertices as x, y pairs (pixels).

    Returns
    -------
    float
        Area in pixels^2 (0 for fewer than 3 vertices).
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if len(xy) < 3:
        return 0.0
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def polygons_to_mask(polygons, height: int, width: int, *, where: str = "polygon") -> np.ndarray | None:
    """Rasterise one object's polygons to a mask with pycocotools (COCO evaluation's rasteriser).

    Validates each polygon: fewer than 3 points or zero area -> warning, polygon skipped;
    vertices outside the image -> warning, the polygon is clipped to the image.

    Parameters
    ----------
    polygons : list of list of float
        The object's polygons, each a flat ``[x0, y0, x1, y1, ...]`` list in pixel
        coordinates (COCO convention: pixel centres at half-integers).
    height, width : int
        Image size (pixels).
    where : str
        Names the object in messages (e.g. ``"annotation 7 of image 'a.png'"``).

    Returns
    -------
    numpy.ndarray of bool, shape (height, width), or None
        The mask; None (after a warning) when no valid polygon remains or the mask covers
        no pixel centre.

    Raises
    ------
    ValueError
        For a polygon with an odd number of coordinates, NaN/infinite coordinates, or all
        vertices outside the image.
    """
    valid = []
    for k, poly in enumerate(polygons):
        xy = np.asarray(poly, dtype=float).reshape(-1)
        if len(xy) % 2:
            raise ValueError(f"{where}: polygon {k} has an odd number of coordinates ({len(xy)})")
        xy = xy.reshape(-1, 2)
        if not np.all(np.isfinite(xy)):
            raise ValueError(f"{where}: polygon {k} has NaN or infinite coordinates")
        if len(xy) < 3 or polygon_area(xy) == 0:
            warnings.warn(f"{where}: polygon {k} is degenerate ({len(xy)} points, zero area); skipped", stacklevel=3)
            continue
        inside = (xy[:, 0] >= 0) & (xy[:, 0] <= width) & (xy[:, 1] >= 0) & (xy[:, 1] <= height)
        fully_outside = (
            xy[:, 0].max() <= 0 or xy[:, 1].max() <= 0 or xy[:, 0].min() >= width or xy[:, 1].min() >= height
        )
        if fully_outside:
            raise ValueError(
                f"{where}: polygon {k} lies entirely outside the {width} x {height} image "
                f"(x {xy[:, 0].min():.1f}..{xy[:, 0].max():.1f}, y {xy[:, 1].min():.1f}..{xy[:, 1].max():.1f}); "
                "is it annotated on another image or in another coordinate system?"
            )
        if not inside.all():
            warnings.warn(
                f"{where}: polygon {k} has {int((~inside).sum())} vertices outside the {width} x {height} image; clipped",
                stacklevel=3,
            )
            xy = np.column_stack([np.clip(xy[:, 0], 0, width), np.clip(xy[:, 1], 0, height)])
        if len(xy) == 3:  # pycocotools reads a 6-number list as a box; repeat a vertex to keep it a polygon
            xy = np.vstack([xy, xy[-1:]])
        valid.append(xy.reshape(-1).tolist())
    if not valid:
        warnings.warn(f"{where}: no valid polygon left; object skipped", stacklevel=3)
        return None
    mask = coco.polygons_to_mask(valid, height, width)
    if not mask.any():
        warnings.warn(f"{where}: polygon covers no pixel centre (too small); object skipped", stacklevel=3)
        return None
    return mask


def mask_to_polygons(mask: np.ndarray, tolerance: float = 0.5) -> list[list[float]]:
    """Outer contours of a mask as COCO polygons.

    Contours come from ``skimage.measure.find_contours`` at level 0.5 on the zero-padded
    mask and are simplified with ``approximate_polygon(tolerance)``. Holes are not
    representable as COCO polygons and are filled; use RLE for exact masks.

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape (H, W)
        One object's mask.
    tolerance : float
        Simplification tolerance (pixels); 0 keeps every contour point.

    Returns
    -------
    list of list of float
        One flat ``[x0, y0, x1, y1, ...]`` list per outer contour (pixel-edge
        coordinates, rounded to 0.01 px); contours with fewer than 3 points or zero area
        are dropped.
    """
    from scipy.ndimage import binary_fill_holes
    from skimage.measure import approximate_polygon, find_contours

    # filling holes first leaves only outer contours
    padded = np.pad(binary_fill_holes(np.asarray(mask, dtype=bool)).astype(float), 1)
    polys = []
    for contour in find_contours(padded, 0.5):
        # contour is (row, col) in padded pixel-index coordinates; shift to pixel-edge x, y
        c = approximate_polygon(contour, tolerance) if tolerance > 0 else contour
        xy = np.column_stack([c[:, 1] - 1 + 0.5, c[:, 0] - 1 + 0.5])
        if len(xy) >= 3 and polygon_area(xy) > 0:
            polys.append(np.round(xy, 2).reshape(-1).tolist())
    return polys


# --------------------------------------------------------------------------- readers


def detect_format(source) -> str:
    """Which annotation format a file, folder or loaded JSON dict is in.

    Parameters
    ----------
    source : str or pathlib.Path or dict
        A JSON file, a folder of mask images, or an already-loaded JSON dict.

    Returns
    -------
    str
        ``"coco"``, ``"vgg"``, ``"labelme"`` or ``"masks"`` (a folder of mask images).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        Naming the file, for invalid JSON or JSON that matches none of the formats.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            return "masks"
        data = _load_json(path)
        name = str(path)
    else:
        data, name = source, "annotation dict"
    if isinstance(data, dict):
        if "annotations" in data and "images" in data:
            return "coco"
        if "shapes" in data and ("imageHeight" in data or "imagePath" in data):
            return "labelme"
        if "_via_img_metadata" in data:
            return "vgg"
        values = list(data.values())
        if values and all(isinstance(v, dict) and "regions" in v and "filename" in v for v in values):
            return "vgg"
    keys = list(data)[:6] if isinstance(data, dict) else type(data).__name__
    raise ValueError(
        f"{name}: unknown annotation format (top-level keys {keys}); expected COCO "
        "(images, annotations), labelme (shapes, imageHeight, imageWidth) or VGG/VIA "
        "({key: {filename, regions}}) JSON, or a folder of binary mask images"
    )


def _load_json(path: Path):
    if not path.exists():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text (JSON) file") from None


def _image_info(image, image_size):
    """(file name or None, (h, w) or None) of the image the user gives to check against."""
    if image is None:
        return None, (tuple(int(s) for s in image_size) if image_size is not None else None)
    if isinstance(image, np.ndarray):
        return None, tuple(image.shape[:2])
    from PIL import Image

    path = Path(image)
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    if path.suffix.lower() in (".tif", ".tiff"):
        from nanowire_utils.real.preprocessing import read_image

        return path.name, tuple(read_image(path).shape[:2])
    try:
        with Image.open(path) as im:
            return path.name, (im.height, im.width)
    except Exception as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None


def _check_against_image(ann: ImageAnnotation, file_name, shape, source) -> None:
    if shape is not None and (ann.height, ann.width) != tuple(shape):
        raise ValueError(
            f"{source}: annotations are for a {ann.width} x {ann.height} (w x h) image "
            f"'{ann.file_name}', but the image given is {shape[1]} x {shape[0]}; "
            "annotate the same image, or rescale the annotations"
        )
    if file_name is not None and ann.file_name and Path(ann.file_name).name != file_name:
        raise ValueError(
            f"{source}: annotations are for image '{ann.file_name}', not '{file_name}'; "
            "pass the matching image (or check_file_name=False if the file was renamed)"
        )


def read_annotations(
    source,
    image=None,
    *,
    image_size: tuple[int, int] | None = None,
    format: str = "auto",
    check_file_name: bool = True,
) -> ImageAnnotation:
    """Read the annotations of one image from a makesense.ai / COCO / VGG / labelme export
    or a folder of binary masks.

    Parameters
    ----------
    source : str or pathlib.Path or dict
        JSON file (or its loaded dict), or a folder of mask images (one instance per
        file, nonzero = object, read in sorted name order).
    image : str or pathlib.Path or numpy.ndarray or None
        Optional image (path or array) the annotations belong to. Its size must match the
        annotated size; its file name must match the annotated one (unless
        ``check_file_name=False``). In a file with several images, the one with this file
        name is read.
    image_size : tuple of int or None
        ``(height, width)`` (pixels) when no ``image`` is given and the format does not
        store the size (VGG/VIA exports do not).
    format : str
        ``"auto"`` (default: :func:`detect_format`) or one of :data:`FORMATS`.
    check_file_name : bool
        Require the annotated file name to match ``image``'s (False for a renamed file).

    Returns
    -------
    ImageAnnotation
        File name, size (pixels) and instances of the image.

    Raises
    ------
    FileNotFoundError
        When ``source`` or ``image`` does not exist.
    ValueError
        For an unknown format, invalid annotations, a size or file name that does not
        match ``image``, or a multi-image file without ``image`` to choose one.
    """
    check_choice("format", format, ("auto",) + FORMATS)
    fmt = detect_format(source) if format == "auto" else format
    file_name, shape = _image_info(image, image_size)
    want_name = file_name if check_file_name else None
    if fmt == "masks":
        ann = read_mask_folder(source, file_name=file_name or "")
    elif fmt == "coco":
        ann = _select(read_coco(source), want_name, source)
    elif fmt == "labelme":
        ann = read_labelme(source)
    else:
        ann = _select(read_vgg(source, image_size=shape), want_name, source)
    _check_against_image(ann, want_name, shape, source)
    return ann


def _select(anns: list[ImageAnnotation], file_name, source) -> ImageAnnotation:
    if not anns:
        raise ValueError(f"{source}: contains no images")
    if file_name is not None:
        hits = [a for a in anns if Path(a.file_name).name == file_name]
        if hits:
            return hits[0]
        if len(anns) > 1:
            names = ", ".join(a.file_name for a in anns[:10])
            raise ValueError(f"{source}: no image named '{file_name}' (it has: {names})")
        return anns[0]  # one image under another name: the caller's name check reports it
    if len(anns) > 1:
        names = ", ".join(a.file_name for a in anns[:10])
        raise ValueError(
            f"{source} annotates {len(anns)} images ({names}); pass image= to choose one, or use read_coco"
        )
    return anns[0]


def _stack(masks, shape) -> Instances:
    if not masks:
        return Instances.empty(shape)
    return Instances.from_masks(np.stack(masks))


def read_coco(source, *, category_ids=None) -> list[ImageAnnotation]:
    """All images of a COCO instances file (makesense.ai's "COCO JSON" export is one),
    segmentations as polygons, compressed RLE or uncompressed RLE.

    Images without annotations give empty Instances; annotations without a segmentation use
    their bbox (with a warning).

    Parameters
    ----------
    source : str or pathlib.Path or dict
        The COCO JSON file or its loaded dict.
    category_ids : collection of int or None
        Keep only these categories (default all).

    Returns
    -------
    list of ImageAnnotation
        One per image, in the file's order.

    Raises
    ------
    ValueError
        For duplicate image or annotation ids, annotations of unknown images, and RLE
        sizes that disagree with the image size.
    """
    data = source if isinstance(source, dict) else _load_json(Path(source))
    name = "COCO dict" if isinstance(source, dict) else str(source)
    for key in ("images", "annotations"):
        if key not in data:
            raise ValueError(f"{name}: not a COCO instances file (no '{key}')")
    images = {}
    for img in data["images"]:
        for key in ("id", "width", "height"):
            if key not in img:
                raise ValueError(f"{name}: image entry {img} has no '{key}'")
        if img["id"] in images:
            raise ValueError(f"{name}: duplicate image id {img['id']}")
        images[img["id"]] = img
    seen = set()
    per_image = {i: [] for i in images}
    for ann in data["annotations"]:
        aid = ann.get("id")
        if aid is None:
            raise ValueError(f"{name}: an annotation has no 'id'")
        if aid in seen:
            raise ValueError(f"{name}: duplicate annotation id {aid}; ids must be unique")
        seen.add(aid)
        if ann.get("image_id") not in images:
            raise ValueError(f"{name}: annotation {aid} refers to unknown image id {ann.get('image_id')}")
        if category_ids is not None and ann.get("category_id") not in category_ids:
            continue
        per_image[ann["image_id"]].append(ann)
    out = []
    for iid, img in images.items():
        h, w = int(img["height"]), int(img["width"])
        fname = str(img.get("file_name", ""))
        masks = []
        for ann in per_image[iid]:
            where = f"{name}: annotation {ann['id']} of image '{fname}'"
            seg = ann.get("segmentation")
            if isinstance(seg, dict):
                size = seg.get("size")
                if size is not None and list(size) != [h, w]:
                    raise ValueError(f"{where}: RLE size {size} differs from the image size [{h}, {w}]")
                m = coco.decode_segmentation(seg, h, w)
                if not m.any():
                    warnings.warn(f"{where}: empty mask; skipped", stacklevel=2)
                    continue
            elif seg:
                m = polygons_to_mask(seg, h, w, where=where)
                if m is None:
                    continue
            elif "bbox" in ann:
                warnings.warn(f"{where}: no segmentation, using its bbox as the mask", stacklevel=2)
                x, y, bw, bh = ann["bbox"]
                m = polygons_to_mask([[x, y, x + bw, y, x + bw, y + bh, x, y + bh]], h, w, where=where)
                if m is None:
                    continue
            else:
                raise ValueError(f"{where}: has neither segmentation nor bbox")
            masks.append(m)
        out.append(ImageAnnotation(fname, h, w, _stack(masks, (h, w))))
    return out


def read_vgg(source, *, image_size: tuple[int, int] | None = None) -> list[ImageAnnotation]:
    """All images of a VGG Image Annotator (VIA) JSON, as makesense.ai's "VGG JSON" export
    writes it (``{key: {filename, size, regions: [{shape_attributes: {name: "polygon",
    all_points_x, all_points_y}}]}}``; VIA project files with ``_via_img_metadata`` too).

    VIA does not store the image size: give ``image_size`` or the image (via
    :func:`read_annotations`). Polygons and rectangles are read; other shapes (points,
    circles, polylines) are skipped with a warning.

    Parameters
    ----------
    source : str or pathlib.Path or dict
        The VIA JSON file or its loaded dict.
    image_size : tuple of int
        ``(height, width)`` of the images (pixels); required.

    Returns
    -------
    list of ImageAnnotation
        One per image entry.

    Raises
    ------
    ValueError
        When ``image_size`` is missing or a polygon is invalid.
    """
    data = source if isinstance(source, dict) else _load_json(Path(source))
    name = "VGG dict" if isinstance(source, dict) else str(source)
    if image_size is None:
        raise ValueError(
            f"{name}: VGG/VIA JSON does not record the image size; pass image= or image_size=(height, width)"
        )
    h, w = (int(s) for s in image_size)
    entries = data.get("_via_img_metadata", data)
    out = []
    for key, entry in entries.items():
        fname = str(entry.get("filename", key))
        regions = entry.get("regions", [])
        if isinstance(regions, dict):  # VIA 1.x stores regions as {"0": {...}, ...}
            regions = list(regions.values())
        masks = []
        for k, region in enumerate(regions):
            shape = region.get("shape_attributes", {})
            kind = shape.get("name")
            where = f"{name}: region {k} of image '{fname}'"
            if kind == "polygon":
                xs, ys = shape.get("all_points_x", []), shape.get("all_points_y", [])
                if len(xs) != len(ys):
                    raise ValueError(f"{where}: all_points_x and all_points_y differ in length")
                poly = np.column_stack([xs, ys]).reshape(-1).tolist()
            elif kind == "rect":
                x, y, bw, bh = (shape[k2] for k2 in ("x", "y", "width", "height"))
                poly = [x, y, x + bw, y, x + bw, y + bh, x, y + bh]
            else:
                warnings.warn(f"{where}: shape '{kind}' is not an area; skipped", stacklevel=2)
                continue
            m = polygons_to_mask([poly], h, w, where=where)
            if m is not None:
                masks.append(m)
        out.append(ImageAnnotation(fname, h, w, _stack(masks, (h, w))))
    return out


def read_labelme(source) -> ImageAnnotation:
    """Read a labelme JSON file (``shapes`` with ``points``, ``imageHeight``, ``imageWidth``, ``imagePath``).

    Shapes sharing a ``group_id`` form one instance (labelme's convention); polygons and
    rectangles are read, other shape types skipped with a warning.

    Parameters
    ----------
    source : str or pathlib.Path or dict
        The labelme JSON file or its loaded dict.

    Returns
    -------
    ImageAnnotation
        The image's file name, size (pixels) and instances.

    Raises
    ------
    ValueError
        When ``imageHeight`` or ``imageWidth`` is missing, or a polygon is invalid.
    """
    data = source if isinstance(source, dict) else _load_json(Path(source))
    name = "labelme dict" if isinstance(source, dict) else str(source)
    for key in ("imageHeight", "imageWidth"):
        if key not in data:
            raise ValueError(f"{name}: labelme file without '{key}'")
    h, w = int(data["imageHeight"]), int(data["imageWidth"])
    fname = Path(str(data.get("imagePath", "") or "")).name
    groups: dict = {}
    for k, shape in enumerate(data.get("shapes", [])):
        kind = shape.get("shape_type", "polygon")
        pts = np.asarray(shape.get("points", []), dtype=float).reshape(-1, 2)
        if kind == "rectangle" and len(pts) == 2:
            (x0, y0), (x1, y1) = pts
            pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        elif kind != "polygon":
            warnings.warn(f"{name}: shape {k} of type '{kind}' is not an area; skipped", stacklevel=2)
            continue
        gid = shape.get("group_id")
        groups.setdefault(("g", gid) if gid is not None else ("s", k), []).append(pts.reshape(-1).tolist())
    masks = []
    for key, polys in groups.items():
        m = polygons_to_mask(polys, h, w, where=f"{name}: shape group {key[1]}")
        if m is not None:
            masks.append(m)
    return ImageAnnotation(fname, h, w, _stack(masks, (h, w)))


def read_mask_folder(folder, *, file_name: str = "") -> ImageAnnotation:
    """Read a folder of binary mask images (PNG/TIFF/BMP), one instance per file.

    Nonzero pixels are the object; all masks have the same size. Empty masks are skipped
    with a warning.

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder; files are read in sorted name order.
    file_name : str
        File name of the annotated image, stored in the result.

    Returns
    -------
    ImageAnnotation
        The instances, one per non-empty mask file.

    Raises
    ------
    FileNotFoundError
        When ``folder`` is not a directory.
    ValueError
        When it holds no mask image, or masks differ in size.
    """
    from nanowire_utils.real.preprocessing import read_image, to_gray_float

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"mask folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _MASK_SUFFIXES)
    if not files:
        raise ValueError(f"{folder}: no mask images ({', '.join(sorted(_MASK_SUFFIXES))}) found")
    masks, shape = [], None
    for p in files:
        m = to_gray_float(read_image(p)) > 0
        if shape is None:
            shape = m.shape
        elif m.shape != shape:
            raise ValueError(f"{p}: mask size {m.shape} differs from {files[0].name}'s {shape}")
        if not m.any():
            warnings.warn(f"{p}: empty mask; skipped", stacklevel=2)
            continue
        masks.append(m)
    return ImageAnnotation(file_name, shape[0], shape[1], _stack(masks, shape))


# --------------------------------------------------------------------------- writer


def instances_to_coco(
    instances_by_image,
    *,
    encoding: str = "rle",
    categories=None,
    results: bool = False,
    tolerance: float = 0.5,
) -> dict | list:
    """COCO dict (or, with ``results=True``, a COCO results list with scores) of Instances.

    Parameters
    ----------
    instances_by_image : dict of str to Instances, or list of ImageAnnotation
        ``{file_name: Instances}`` or a list of :class:`ImageAnnotation`. Image ids are
        1, 2, ... in this order; annotation ids 1, 2, ... over all images.
    encoding : str
        ``"rle"`` (exact, compressed RLE with ``counts`` as str) or ``"polygon"``
        (:func:`mask_to_polygons`, simplified with ``tolerance``; holes are filled).
    categories : list of dict or None
        COCO categories; default ``[{"id": 1, "name": "nanowire"}]``. All instances get
        the first category's id.
    results : bool
        Return a COCO results list (``image_id``, ``category_id``, ``segmentation``,
        ``bbox``, ``score``) instead of a COCO dict.
    tolerance : float
        Polygon simplification tolerance (pixels), for ``encoding="polygon"``.

    Returns
    -------
    dict or list of dict
        The COCO dict (``images``, ``annotations``, ``categories``; area in pixels, bbox
        ``[x, y, w, h]`` in pixels), or the results list. Empty masks are left out.

    Raises
    ------
    ValueError
        For an unknown encoding, or masks whose size differs from their image's.
    """
    check_choice("encoding", encoding, ("rle", "polygon"))
    if isinstance(instances_by_image, dict):
        items = [ImageAnnotation(str(k), *v.image_shape, v) for k, v in instances_by_image.items()]
    else:
        items = list(instances_by_image)
    categories = categories or [{"id": 1, "name": "nanowire"}]
    cat_id = categories[0]["id"]
    images, anns = [], []
    for iid, item in enumerate(items, start=1):
        inst = item.instances
        if inst.image_shape != (item.height, item.width):
            raise ValueError(
                f"image '{item.file_name}': masks are {inst.image_shape} but the image is {(item.height, item.width)}"
            )
        images.append({"id": iid, "file_name": item.file_name, "width": int(item.width), "height": int(item.height)})
        for k in range(len(inst)):
            m = inst.masks[k]
            if not m.any():
                continue
            rle = coco.encode_mask(m)
            x, y, bw, bh = coco.rle_bbox(rle)
            if encoding == "rle":
                seg, area = rle, float(m.sum())
            else:
                seg = mask_to_polygons(m, tolerance)
                if not seg:
                    continue
                area = float(coco.polygons_to_mask(seg, item.height, item.width).sum())
            ann = {
                "id": len(anns) + 1,
                "image_id": iid,
                "category_id": cat_id,
                "segmentation": seg,
                "area": area,
                "bbox": [x, y, bw, bh],
                "iscrowd": 0,
            }
            if results:
                ann = {k2: ann[k2] for k2 in ("image_id", "category_id", "segmentation", "bbox")}
                ann["score"] = float(inst.scores[k])
            anns.append(ann)
    if results:
        return anns
    return {"images": images, "annotations": anns, "categories": categories}


def write_coco(path, instances_by_image, *, encoding: str = "rle", categories=None, info: dict | None = None) -> Path:
    """Write Instances as a COCO instances JSON file.

    Parameters
    ----------
    path : str or pathlib.Path
        Destination file; its folder is created.
    instances_by_image : dict of str to Instances, or list of ImageAnnotation
        As in :func:`instances_to_coco`.
    encoding : str
        ``"rle"`` or ``"polygon"``, as in :func:`instances_to_coco`.
    categories : list of dict or None
        COCO categories, as in :func:`instances_to_coco`.
    info : dict or None
        Stored under COCO's ``info`` key.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    data = instances_to_coco(instances_by_image, encoding=encoding, categories=categories)
    if info:
        data = {"info": info, **data}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    return path


# --------------------------------------------------------------------------- references


def reference_path(name: str) -> Path:
    """Path of the package's reference annotation (COCO JSON) of a sample image.

    Parameters
    ----------
    name : str
        One of :data:`REFERENCE_NAMES` (``"ptychography"``, ``"stxm"``, ``"sem"``).

    Returns
    -------
    pathlib.Path
        The JSON file's path inside the package (it may not exist yet).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    check_choice("name", name, REFERENCE_NAMES)
    return _REFERENCE_DIR / f"{name}.json"


def load_reference_annotation(name: str) -> ImageAnnotation:
    """The reference annotation of a sample image, with its file name and size.

    Made by eye, see book/annotation_protocol.md.

    Parameters
    ----------
    name : str
        ``"ptychography"``, ``"stxm"`` or ``"sem"``.

    Returns
    -------
    ImageAnnotation
        File name, size (pixels) and reference instances.

    Raises
    ------
    ValueError
        For an unknown name.
    FileNotFoundError
        When the reference file is missing from the installed package.
    """
    path = reference_path(name)
    if not path.exists():
        raise FileNotFoundError(f"reference annotation {path} is missing from the installed package")
    (ann,) = read_coco(path)
    return ann


def load_reference(name: str) -> Instances:
    """The reference instances of a sample image.

    Parameters
    ----------
    name : str
        ``"ptychography"``, ``"stxm"`` or ``"sem"``.

    Returns
    -------
    Instances
        The reference masks (scores 1).
    """
    return load_reference_annotation(name).instances


# --------------------------------------------------------------------------- sketch source


def wire_polygon(x0: float, y0: float, x1: float, y1: float, width: float) -> list[float]:
    """Rectangle polygon (flat COCO list) of a straight wire.

    Parameters
    ----------
    x0, y0, x1, y1 : float
        End points of the centreline (pixels, x to the right, y down).
    width : float
        Full width of the wire (pixels).

    Returns
    -------
    list of float
        ``[x0, y0, ..., x3, y3]``, the four corners (rounded to 0.01 px).

    Raises
    ------
    ValueError
        When the centreline has zero length.
    """
    d = np.array([x1 - x0, y1 - y0], float)
    length = np.hypot(*d)
    if length == 0:
        raise ValueError(f"wire centreline has zero length at ({x0}, {y0})")
    n = np.array([-d[1], d[0]]) / length * width / 2
    p0, p1 = np.array([x0, y0], float), np.array([x1, y1], float)
    pts = [p0 + n, p1 + n, p1 - n, p0 - n]
    return np.round(np.array(pts), 2).reshape(-1).tolist()


def parse_sketch(text: str) -> list[list[float]]:
    """Polygons (one per object) from a hand-written sketch, the source of the reference annotations.

    One object per line; ``#`` starts a comment; blank lines ignored:

    ``W x0 y0 x1 y1 width``
        a straight wire: centreline end points and full width (px).
    ``P x0 y0 x1 y1 x2 y2 ...``
        any polygon (vertices in order).

    Parameters
    ----------
    text : str
        The sketch.

    Returns
    -------
    list of list of float
        One flat polygon (pixels) per object, in line order.

    Raises
    ------
    ValueError
        Naming the line, for a non-numeric value, a wrong count of numbers or an unknown
        object kind.
    """
    polys = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        kind, *nums = line.split()
        try:
            vals = [float(v) for v in nums]
        except ValueError:
            raise ValueError(f"sketch line {lineno}: non-numeric value in {line!r}") from None
        if kind == "W":
            if len(vals) != 5:
                raise ValueError(f"sketch line {lineno}: W needs x0 y0 x1 y1 width, got {len(vals)} numbers")
            polys.append(wire_polygon(*vals))
        elif kind == "P":
            if len(vals) < 6 or len(vals) % 2:
                raise ValueError(f"sketch line {lineno}: P needs at least 3 x y pairs")
            polys.append(vals)
        else:
            raise ValueError(f"sketch line {lineno}: unknown object kind {kind!r} (use W or P)")
    return polys


def sketch_to_instances(text: str, height: int, width: int) -> Instances:
    """Instances from a sketch (:func:`parse_sketch`), one per line.

    Parts outside the image are cut off (no warning: wires that leave the field of view
    are drawn past its edge on purpose).

    Parameters
    ----------
    text : str
        The sketch.
    height, width : int
        Image size (pixels).

    Returns
    -------
    Instances
        One mask per object that covers a pixel inside the image.
    """
    masks = []
    for k, poly in enumerate(parse_sketch(text)):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*outside.*clipped")
            # rasterise without vertex clipping (exact cut at the border): pad, then crop
            pad = 64
            shifted = (np.asarray(poly, float).reshape(-1, 2) + pad).reshape(-1).tolist()
            m = polygons_to_mask([shifted], height + 2 * pad, width + 2 * pad, where=f"sketch object {k}")
        if m is None:
            continue
        m = m[pad:-pad, pad:-pad]
        if m.any():
            masks.append(m)
    return _stack(masks, (height, width))


#: The sample images the references annotate: file name, (height, width).
_REFERENCE_IMAGES = {
    "ptychography": ("Ptychography.png", (531, 449)),
    "stxm": ("STXM.png", (531, 449)),
    "sem": ("SEM_.png", (953, 1279)),
}


def build_reference(name: str, sketch_dir=None) -> Path:
    """Rebuild the package's reference annotation ``name`` (COCO JSON, RLE masks) from its sketch.

    Run ``python -m nanowire_utils.real.annotations`` to rebuild all three after editing
    a sketch.

    Parameters
    ----------
    name : str
        ``"ptychography"``, ``"stxm"`` or ``"sem"``.
    sketch_dir : str or pathlib.Path or None
        Folder holding ``<name>.txt``; default the ``sketches`` folder next to the JSON
        files, kept in the repository.

    Returns
    -------
    pathlib.Path
        The reference JSON written (:func:`reference_path`).

    Raises
    ------
    ValueError
        For an unknown name or an invalid sketch.
    """
    file_name, (h, w) = _REFERENCE_IMAGES[check_choice("name", name, REFERENCE_NAMES)]
    sketch_dir = Path(sketch_dir) if sketch_dir else _REFERENCE_DIR / "sketches"
    inst = sketch_to_instances((sketch_dir / f"{name}.txt").read_text(), h, w)
    info = {
        "description": f"Reference annotation of {file_name}, drawn by eye (book/annotation_protocol.md)",
        "source": f"sketches/{name}.txt",
    }
    return write_coco(reference_path(name), [ImageAnnotation(file_name, h, w, inst)], encoding="rle", info=info)


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    for _name in REFERENCE_NAMES:
        if (_REFERENCE_DIR / "sketches" / f"{_name}.txt").exists():
            print(build_reference(_name), len(load_reference(_name)), "instances")
