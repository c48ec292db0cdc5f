"""Use a trained model: export a run's best model, classify image files.

``automnist export-model RUN --out best.keras`` copies ``<results>/<run>/best.keras`` (and
writes the class names next to it as ``<out>.classes.json``).  ``automnist predict
MODEL_OR_RUN IMAGE...`` loads a model (``keras.saving.load_model(..., safe_mode=True)``)
and prints the top classes of each image.

Images are prepared the way the model's training images looked (:func:`prepare_image`):

1. transparent pixels are put on white, then the image is converted to grayscale when
   the model takes 1 channel (RGB when 3);
2. it is padded to a square with its mean border colour (the aspect ratio is kept) and
   resized to the model's input size (box filter when shrinking, bicubic when growing);
   scikit-learn digits models take 8x8, so a drawing is shrunk to 8x8;
3. a dark-on-light drawing is inverted -- ``invert="auto"``: the mean brightness of the
   original image's one-pixel border is above 0.5 and the model takes grayscale, as seed
   004 inverts its hand-drawn "4" by hand;
4. values are scaled to [0, 1].
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from automnist.errors import AutomnistError, DataError
from automnist.runs import run_dir
from automnist.store import Store

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image

__all__ = ["export_model", "load_classifier", "predict_images", "prepare_image", "read_image"]

INVERT_CHOICES = ("auto", "yes", "no")


def _run_model_path(run: str, results_dir: str | Path) -> Path:
    with Store.at(results_dir) as store:
        store.require_run(run)
    path = run_dir(results_dir, run) / "best.keras"
    if not path.is_file():
        raise AutomnistError(
            f"run {run!r} has no saved model ({path} is missing): a search saves best.keras when at least "
            f"one trial finished ok (lr_find and denoise-compare runs save none)"
        )
    return path


def _class_names_near(model_path: Path) -> list[str] | None:
    """Class names from ``<model>.classes.json`` or the run's ``predictions.npz`` beside it."""
    sidecar = model_path.with_name(model_path.name + ".classes.json")
    if sidecar.is_file():
        names = json.loads(sidecar.read_text(encoding="utf-8"))
        if isinstance(names, list):
            return [str(n) for n in names]
    npz = model_path.parent / "predictions.npz"
    if npz.is_file():
        with np.load(npz, allow_pickle=False) as data:
            if "class_names" in data:
                return [str(n) for n in data["class_names"]]
    return None


def export_model(run: str, out: str | Path, *, results_dir: str | Path = "results") -> Path:
    """Copy a run's best model to ``out`` (a file, or a directory to put ``best.keras`` in).

    The class names (from the run's ``predictions.npz``) go to ``<out>.classes.json`` so
    :func:`predict_images` can name classes for the exported file.

    Raises
    ------
    StoreError
        If there is no run ``run`` (the message lists the known runs).
    AutomnistError
        If the run saved no model.
    """
    src = _run_model_path(run, results_dir)
    dest = Path(out)
    if dest.is_dir():
        dest = dest / "best.keras"
    if dest.suffix != ".keras":
        raise AutomnistError(f"--out: a Keras model file must end in .keras, got {str(out)!r}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    names = _class_names_near(src)
    if names is not None:
        dest.with_name(dest.name + ".classes.json").write_text(json.dumps(names), encoding="utf-8")
    return dest


def load_classifier(model_or_run: str | Path, *, results_dir: str | Path = "results") -> tuple[Any, list[str] | None, Path]:
    """A Keras model from a ``.keras`` file or a run name, with its class names.

    Returns
    -------
    (keras.Model, list of str or None, Path)
    """
    import keras

    candidate = Path(model_or_run)
    path = candidate if candidate.suffix == ".keras" or candidate.is_file() else _run_model_path(str(model_or_run), results_dir)
    if not path.is_file():
        raise AutomnistError(f"{path}: no such model file (give a .keras file or a run name)")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - any load failure becomes one clear line
        raise AutomnistError(f"{path}: cannot load the model: {type(exc).__name__}: {exc}") from exc
    return model, _class_names_near(path), path


#: Largest side of an image to classify: it is padded to a square before resizing, so a
#: 50,000 x 1 image would need a 50,000 x 50,000 canvas (7.5 GB).
MAX_IMAGE_SIDE = 10_000


def read_image(path: str | Path) -> Image.Image:
    """Open an image file with Pillow (EXIF orientation applied).

    Raises
    ------
    DataError
        Missing, unreadable or damaged file, or a side over :data:`MAX_IMAGE_SIDE` pixels
        (checked from the header, before the pixels are decoded).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if max(img.size) > MAX_IMAGE_SIDE or min(img.size) < 1:
                raise DataError(f"{path}: image of {img.size[0]}x{img.size[1]} pixels: "
                                f"sides must be from 1 to {MAX_IMAGE_SIDE}")
            img.load()
            return ImageOps.exif_transpose(img)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError, EOFError) as exc:
        # a damaged file fails inside Pillow's decoders in many ways
        raise DataError(f"{path}: cannot read the image ({type(exc).__name__}: {exc})") from None


def prepare_image(img: Image.Image, input_shape: Sequence[int], invert: str | bool = "auto") -> np.ndarray:
    """One image as the model's input: ``(h, w, c)`` float32 in [0, 1] (see the module docstring).

    Parameters
    ----------
    img : PIL.Image.Image
    input_shape : (h, w, c)
        The model's input shape; ``c`` is 1 (grayscale) or 3 (RGB).
    invert : {"auto", "yes", "no"} or bool
        ``auto`` inverts grayscale images whose border is bright (dark drawing on white).
    """
    from PIL import Image, ImageOps

    h, w, c = (int(s) for s in input_shape)
    if c not in (1, 3):
        raise AutomnistError(f"the model takes {c} channels; only 1 (grayscale) or 3 (RGB) images can be predicted")
    if invert not in (*INVERT_CHOICES, True, False):
        raise ValueError(f"invert: must be one of auto, yes, no, got {invert!r}")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    img = img.convert("L" if c == 1 else "RGB")
    arr = np.asarray(img, dtype=np.float32)
    border = np.concatenate([arr[0].reshape(-1, c), arr[-1].reshape(-1, c), arr[:, 0].reshape(-1, c),
                             arr[:, -1].reshape(-1, c)])
    fill = tuple(int(round(v)) for v in border.mean(axis=0))
    side = max(img.size)
    shrink = side >= max(h, w)
    method = Image.Resampling.BOX if shrink else Image.Resampling.BICUBIC
    square = ImageOps.pad(img, (side, side), method=method, color=fill[0] if c == 1 else fill)
    small = square.resize((w, h), resample=method)
    out = np.asarray(small, dtype=np.float32).reshape(h, w, c) / 255.0
    flip = invert in ("yes", True) or (invert == "auto" and c == 1 and border.mean() / 255.0 > 0.5)
    if flip:
        out = 1.0 - out
    return out


def predict_images(
    model_or_run: str | Path,
    images: Sequence[str | Path],
    *,
    top: int = 3,
    results_dir: str | Path = "results",
    invert: str | bool = "auto",
) -> pd.DataFrame:
    """Classify image files with a saved model.

    Parameters
    ----------
    model_or_run : str or Path
        A ``.keras`` file or the name of a run in ``results_dir``.
    images : sequence of paths
    top : int
        Classes per image.
    results_dir : path
    invert : {"auto", "yes", "no"}
        See :func:`prepare_image`.

    Returns
    -------
    DataFrame
        ``image, rank, class_index, class_name, probability``: ``top`` rows per image,
        most probable first.
    """
    import pandas as pd

    if not isinstance(top, int) or top < 1:
        raise ValueError(f"top: must be an integer >= 1, got {top!r}")
    if not images:
        raise ValueError("images: give at least one image file")
    model, names, _ = load_classifier(model_or_run, results_dir=results_dir)
    shape = tuple(int(s) for s in model.input_shape[1:])
    if len(shape) != 3:
        raise AutomnistError(f"the model takes inputs of shape {shape}, not images (h, w, c)")
    batch = np.stack([prepare_image(read_image(p), shape, invert) for p in images])
    prob = np.asarray(model.predict(batch, verbose=0), dtype=np.float64)
    k = min(top, prob.shape[1])
    rows = []
    for path, p in zip(images, prob):
        order = np.argsort(-p, kind="stable")[:k]
        for rank, idx in enumerate(order, start=1):
            name = names[idx] if names is not None and idx < len(names) else str(idx)
            rows.append({"image": str(path), "rank": rank, "class_index": int(idx), "class_name": name,
                         "probability": float(p[idx])})
    return pd.DataFrame(rows, columns=["image", "rank", "class_index", "class_name", "probability"])
