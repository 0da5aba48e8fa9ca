"""``load_dataset``: named datasets and IDX directories as ready-to-train ``DatasetSplits``.

Names (``DATASET_NAMES``):

    digits          scikit-learn's bundled 8x8 digits (1797 images, grey levels 0..16 -> [0, 1]).
                    The default: it needs no download and no data directory.
    synthetic       ``make_synthetic``: 10 classes of 8x8 bars/blobs, any size, for tests.
    mnist           LeCun, Cortes & Burges' 28x28 handwritten digits, IDX files.
    fashion-mnist   Zalando's 28x28 clothing images, same IDX layout (Debian: dataset-fashion-mnist).
    <a directory>   any directory of IDX files named like MNIST's (see ``find_idx_files``).
    babi-1..3       generated bAbI-style stories and questions (``babi.py``): word ids, not images.

Where named IDX datasets are looked for, in order (the first directory with the full train +
test set wins; failing that, the first with at least one images/labels pair):

    root/<name>                         when ``root`` is given (and nowhere else)
    $SCRATCHGEN_DATA/<name>             each entry of the os.pathsep-separated list
    ~/.cache/scratchgen/<name>          the download cache
    /usr/share/datasets/fashion-mnist   Debian's package (fashion-mnist only)

With ``download=True`` a missing full set is fetched (``download_dataset``) into
``root/<name>`` or the first data root. Nothing is assumed about where a repository sits.
``search_report(name)`` says where a dataset was found, or every place searched and how to add one.

IDX files are untrusted input. Beyond the checks of ``read_idx`` (see ``idx.py``), a directory's
files must make sense together, else a ``DataFileError`` names the file at fault: images are
(N, H, W) or (N, C, H, W) with N >= 1 and no empty dimension, uint8 or floats in [0, 1] (NaN and
infinities refused); labels are a 1-D integer array with one label per image. Labels are class
numbers: the classes of a directory that is not a known dataset are 0..max(label), so the labels
present decide how many there are, up to ``MAX_CLASSES`` (10,000: more than any IDX dataset has,
few enough that class-name tuples and one-hot codes stay small). A label beyond that, say
2,000,000,000, is a corrupt file, not a request for two billion classes.

Splits. A directory with train and t10k files keeps the official test set and carves the
validation set out of the training set (default 1/6: 60000 -> 50000 / 10000). A source with
no official test set (digits, synthetic, or an MNIST directory holding only the t10k files)
is split three ways (default 80/10/10: 10000 -> 8000 / 1000 / 1000), and ``source`` says so.
All splits are seeded (``train_val_test_split``): same seed, same split.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..optional import require
from .babi import BABI_DATASETS, load_babi
from .download import DATA_ENV, default_data_root, download_dataset, mirrors_for
from .idx import DataFileError, read_idx
from .splits import DatasetSplits, Split, train_val_test_split
from .synthetic import SYNTHETIC_CLASS_NAMES, make_synthetic
from .text import TEXT_DATASET_NAMES, is_text_dataset, load_text_dataset, text_search_report

__all__ = ["DATASET_NAMES", "CLASS_NAMES", "SYSTEM_DIRS", "MAX_CLASSES", "load_dataset", "find_idx_files",
           "dataset_dirs", "search_report"]

DATASET_NAMES = ("digits", "synthetic", "mnist", "fashion-mnist")
IDX_DATASETS = ("mnist", "fashion-mnist")
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist"}

CLASS_NAMES = {
    "digits": tuple(str(k) for k in range(10)),
    "synthetic": SYNTHETIC_CLASS_NAMES,
    "mnist": tuple(str(k) for k in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
}
# Directories installed by system packages.
SYSTEM_DIRS = {"fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),)}

DEFAULT_VAL_FRACTION_OF_TRAIN = 1 / 6   # with an official test set: 60000 -> 50000 + 10000
DEFAULT_VAL_FRACTION = 0.1              # without one: 80% / 10% / 10%
DEFAULT_TEST_FRACTION = 0.1

_IDX_PARTS = {"images": 3, "labels": 1}

# The most classes a directory of IDX files may have (labels 0 .. MAX_CLASSES - 1); see the module doc.
MAX_CLASSES = 10_000


# ---- finding the files ------------------------------------------------------------------------
def find_idx_files(directory) -> dict:
    """The IDX files in ``directory``: ``{"train-images": path, "train-labels": ..., "t10k-images": ...,
    "t10k-labels": ...}``, only the keys found.

    Accepted names for, e.g., train images: ``train-images-idx3-ubyte`` and ``train-images.idx3-ubyte``,
    each raw or with ``.gz``; the raw file is preferred when both exist (no decompression).
    """
    directory = Path(directory)
    found = {}
    for prefix in ("train", "t10k"):
        for part, ndim in _IDX_PARTS.items():
            stems = (f"{prefix}-{part}-idx{ndim}-ubyte", f"{prefix}-{part}.idx{ndim}-ubyte")
            for filename in list(stems) + [stem + ".gz" for stem in stems]:
                if _is_file(directory / filename):
                    found[f"{prefix}-{part}"] = directory / filename
                    break
    return found


def _is_file(path: Path) -> bool:
    """``path.is_file()``, but False where the answer is an error (a directory that may not be searched)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _pairs(files: dict) -> list:
    """The prefixes ("train", "t10k") whose images *and* labels are both present."""
    return [prefix for prefix in ("train", "t10k") if f"{prefix}-images" in files and f"{prefix}-labels" in files]


def _search_places(name: str, root=None) -> list:
    """``(directory, why it is searched)`` for the IDX dataset ``name``, in search order."""
    if root is not None:
        return [(Path(root).expanduser() / name, "root= / --data-root")]
    places = [(Path(entry).expanduser() / name, f"${DATA_ENV}")
              for entry in os.environ.get(DATA_ENV, "").split(os.pathsep) if entry]
    places.append((Path.home() / ".cache" / "scratchgen" / name, "the download cache"))
    places += [(directory, "system package") for directory in SYSTEM_DIRS.get(name, ())]
    return places


def dataset_dirs(name: str, root=None) -> list:
    """The directories searched for the IDX dataset ``name``, in order (see the module docstring)."""
    return [directory for directory, _ in _search_places(name, root)]


def _directory_state(directory: Path) -> str:
    """What ``directory`` holds, in a few words, for ``search_report``."""
    if not _is_dir(directory):
        return "no such directory"
    files = find_idx_files(directory)
    pairs = _pairs(files)
    if pairs == ["train", "t10k"]:
        return "train and t10k files"
    if pairs:
        return f"only the {pairs[0]} files"
    if files:
        return f"only {', '.join(sorted(path.name for path in files.values()))} (an images file needs its labels file)"
    return "no IDX files"


def search_report(name: str, root=None) -> str:
    """Where ``load_dataset(name, root=root)`` finds dataset ``name``, or where it looked and how to add a place.

    For mnist / fashion-mnist: the first line says "found at DIR" (what ``load_dataset`` would read)
    or "not found"; the following lines, indented, list every directory searched, why it is searched
    (in brackets) and what it holds, then how to add a place (``--data-root`` / ``root=``, ``$SCRATCHGEN_DATA``,
    ``--download``). Only file names are looked at (nothing is read), so this is quick and never
    fails on a corrupt file. digits and synthetic are one line. An unknown name raises ``ValueError``.
    """
    if is_text_dataset(name):
        return text_search_report(str(name), root=root)
    name = _canonical_name(str(name))
    if name not in DATASET_NAMES:
        raise ValueError(f"search_report: unknown dataset {name!r}; valid names: "
                         f"{', '.join(DATASET_NAMES + TEXT_DATASET_NAMES)}")
    if name == "synthetic":
        return "synthetic: built in (make_synthetic), nothing to find"
    if name == "digits":
        try:
            import sklearn
        except ImportError:
            return "digits: needs scikit-learn, which is not installed: pip install scratchgen[data]"
        return f"digits: bundled with scikit-learn {sklearn.__version__} (sklearn.datasets.load_digits)"

    places = _search_places(name, root)
    states = [(directory, why, _directory_state(directory)) for directory, why in places]
    full = [directory for directory, _, state in states if state == "train and t10k files"]
    partial = [directory for directory, _, state in states if state.startswith("only the ")]
    if full:
        head = f"{name}: found at {full[0]}"
    elif partial:
        head = f"{name}: found at {partial[0]} (test files only: split three ways; no full train + t10k set)"
    else:
        head = f"{name}: not found"
    width = max(len(str(directory)) for directory, _ in places)
    lines = [head, "  searched, in order:"]
    lines += [f"    {str(directory):<{width}}  [{why}] {state}" for directory, why, state in states]
    target = (Path(root).expanduser() if root is not None else default_data_root()) / name
    lines.append(f"  to add a place: --data-root DIR (reads DIR/{name}); ${DATA_ENV}=DIR{os.pathsep}... "
                 f"(reads DIR/{name} for each entry); or --download (fetches into {target})")
    if name == "fashion-mnist":
        lines.append("  or: apt-get install dataset-fashion-mnist")
    return "\n".join(lines)


# ---- checking IDX arrays, turning them into float images and int64 labels ----------------------
def _check_images(images: np.ndarray, path) -> np.ndarray:
    """``images`` when they are usable training images, else a ``DataFileError`` naming ``path``."""
    if images.ndim not in (3, 4):
        raise DataFileError(path, f"expected images of shape (N, H, W) or (N, C, H, W), got {images.shape}")
    if images.shape[0] == 0:
        raise DataFileError(path, f"holds no images (shape {images.shape})")
    if 0 in images.shape[1:]:
        raise DataFileError(path, f"images of shape {images.shape[1:]} hold no pixels")
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind != "f":
        raise DataFileError(path, f"images must be uint8 (0..255) or floats in [0, 1], got {images.dtype}")
    # min and max propagate NaN and see infinities, without a temporary array as large as the images.
    low, high = float(images.min()), float(images.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        # NaN fails every comparison, so a plain range check would let it through to training.
        nan, infinite = int(np.isnan(images).sum()), int(np.isinf(images).sum())
        first = int(np.flatnonzero(~np.isfinite(images.reshape(len(images), -1)).all(axis=1))[0])
        raise DataFileError(path, f"floating images must be finite, found {nan} NaN and {infinite} infinite "
                                  f"pixel values (first in image {first})")
    if low < 0.0 or high > 1.0:
        raise DataFileError(path, f"floating images must lie in [0, 1], found values in [{low}, {high}]")
    return images


def _image_shape(images: np.ndarray) -> tuple:
    """(C, H, W) of checked (N, H, W) or (N, C, H, W) images."""
    return tuple(int(d) for d in ((1,) + images.shape[1:] if images.ndim == 3 else images.shape[1:]))


def _images_as_unit_float(images: np.ndarray) -> np.ndarray:
    """Checked uint8 or float (N, H, W) or (N, C, H, W) -> float32 (N, C, H, W) in [0, 1]."""
    if images.ndim == 3:
        images = images[:, None]
    if images.dtype == np.uint8:
        unit = images.astype(np.float32)
        unit /= 255  # a Python int keeps float32 (NumPy 2 rules)
        return unit
    return images.astype(np.float32)


def _labels_as_int64(labels: np.ndarray, path, num_classes: int | None) -> np.ndarray:
    """Labels as int64 class numbers in [0, num_classes) (default bound: ``MAX_CLASSES``), else a
    ``DataFileError`` naming ``path`` and the first offending value."""
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataFileError(path, f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    if labels.size == 0:
        return labels.astype(np.int64)
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise DataFileError(path, f"labels must be class numbers >= 0, found {low} "
                                  f"(at index {int(np.argmin(labels))})")
    if num_classes is not None and high >= num_classes:
        raise DataFileError(path, f"labels must lie in [0, {num_classes}), found {high} "
                                  f"(at index {int(np.argmax(labels))})")
    if high >= MAX_CLASSES:
        raise DataFileError(path, f"found label {high} (at index {int(np.argmax(labels))}), but labels are class "
                                  f"numbers 0..{MAX_CLASSES - 1}: a dataset may have at most {MAX_CLASSES} classes")
    return labels.astype(np.int64)


def _read_pair(files: dict, prefix: str, num_classes: int | None):
    """The checked images and int64 labels of ``prefix`` ("train" or "t10k")."""
    images_path, labels_path = files[f"{prefix}-images"], files[f"{prefix}-labels"]
    images = _check_images(read_idx(images_path), images_path)
    labels = _labels_as_int64(read_idx(labels_path), labels_path, num_classes)
    if images.shape[0] != labels.shape[0]:
        raise DataFileError(images_path, f"holds {images.shape[0]} images but {labels_path.name} "
                                         f"holds {labels.shape[0]} labels")
    return images, labels


# ---- assembling DatasetSplits -----------------------------------------------------------------
def _fraction(value, default: float, what: str) -> float:
    value = default if value is None else float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"load_dataset: {what} must lie in [0, 1), got {value}")
    return value


def _splits_from_pool(name, x, y, seed, val_fraction, test_fraction, class_names, source, convert):
    """One pool of examples (no separate test files): a seeded three-way train / validation / test split."""
    sizes = (None, _fraction(val_fraction, DEFAULT_VAL_FRACTION, "val_fraction"),
             _fraction(test_fraction, DEFAULT_TEST_FRACTION, "test_fraction"))
    train, validation, test = (Split(convert(s.x), s.y) for s in train_val_test_split(x, y, sizes, seed))
    if train.num_examples == 0:
        raise ValueError(f"load_dataset: {name}: val_fraction + test_fraction leave no training examples")
    source = (f"{source}; its {len(y)} examples are split train/validation/test "
              f"{train.num_examples}/{validation.num_examples}/{test.num_examples} with seed {seed}")
    return _assemble(name, train, validation, test, class_names, source)


def _assemble(name, train, validation, test, class_names, source):
    if class_names is None:
        # The labels present decide the classes; _labels_as_int64 has bounded them by MAX_CLASSES.
        top = max((int(split.y.max()) for split in (train, validation, test) if split.y.size), default=0)
        class_names = tuple(str(k) for k in range(top + 1))
    return DatasetSplits(name=name, train=train, validation=validation, test=test,
                         image_shape=tuple(int(d) for d in train.x.shape[1:]),
                         num_classes=len(class_names), class_names=tuple(class_names), source=source)


def _load_idx_directory(name, directory, seed, val_fraction, test_fraction, class_names):
    directory = Path(directory)
    files = find_idx_files(directory)
    pairs = _pairs(files)
    if not pairs:
        present = ", ".join(sorted(path.name for path in files.values())) or "no IDX files"
        raise DataFileError(directory, f"needs an images file and its labels file named like "
                                       f"train-images-idx3-ubyte[.gz] / train-labels-idx1-ubyte[.gz] "
                                       f"(or t10k-...); found {present}")
    num_classes = None if class_names is None else len(class_names)

    if pairs == ["train", "t10k"]:
        train_images, train_labels = _read_pair(files, "train", num_classes)
        test_images, test_labels = _read_pair(files, "t10k", num_classes)
        train_shape, test_shape = _image_shape(train_images), _image_shape(test_images)
        if train_shape != test_shape:
            raise DataFileError(files["t10k-images"], f"holds images of shape {test_shape} (C, H, W) but "
                                                      f"{files['train-images'].name} holds {train_shape}")
        if test_fraction is not None:
            raise ValueError(f"load_dataset: {name} has an official test set; test_fraction does not apply")
        fraction = _fraction(val_fraction, DEFAULT_VAL_FRACTION_OF_TRAIN, "val_fraction")
        train, validation = train_val_test_split(train_images, train_labels, (None, fraction), seed)
        if train.x.shape[0] == 0:
            raise ValueError(f"load_dataset: {name}: val_fraction {fraction} leaves none of its "
                             f"{len(train_labels)} training examples for training")
        train = Split(_images_as_unit_float(train.x), train.y)
        validation = Split(_images_as_unit_float(validation.x), validation.y)
        test = Split(_images_as_unit_float(test_images), test_labels)
        source = (f"{directory} (official {len(train_labels)} training / {len(test_labels)} test files; "
                  f"validation = {validation.num_examples} training examples drawn with seed {seed})")
        return _assemble(name, train, validation, test, class_names, source)

    prefix = pairs[0]
    images, labels = _read_pair(files, prefix, num_classes)
    other = "train" if prefix == "t10k" else "t10k"
    which = "official test" if prefix == "t10k" else "official training"
    source = f"{directory}: only the {prefix} ({which}) files are there, no {other} files"
    return _splits_from_pool(name, images, labels, seed, val_fraction, test_fraction, class_names, source,
                             convert=_images_as_unit_float)


def _load_digits(seed, val_fraction, test_fraction):
    sklearn = require("sklearn.datasets", "data", "load_dataset('digits') (the copy bundled with scikit-learn)")
    bunch = sklearn.load_digits()
    x = (bunch.images[:, None] / 16).astype(np.float32)  # grey levels 0..16; k/16 is exact in float32
    y = bunch.target.astype(np.int64)
    source = f"scikit-learn {require('sklearn', 'data', 'digits').__version__} sklearn.datasets.load_digits (UCI optical digits, 8x8)"
    return _splits_from_pool("digits", x, y, seed, val_fraction, test_fraction,
                             CLASS_NAMES["digits"], source, convert=lambda images: images)


def _canonical_name(name: str) -> str:
    lowered = name.strip().lower()
    return _ALIASES.get(lowered, lowered)


def _looks_like_path(text: str) -> bool:
    return os.sep in text or (os.altsep is not None and os.altsep in text) or text.startswith(("~", "."))


def load_dataset(name_or_path="digits", root=None, seed: int = 0, val_fraction: float | None = None,
                 test_fraction: float | None = None, download: bool = False,
                 num_examples: int | None = None) -> DatasetSplits:
    """Load a dataset as train / validation / test splits of float32 (N, C, H, W) images in [0, 1].

    name_or_path: one of ``DATASET_NAMES`` or a directory of IDX files.
    root: directory holding ``<name>/`` for mnist / fashion-mnist (default: search, see module doc).
    seed: seeds every split (and the synthetic data).
    val_fraction: share held out for validation (default 1/6 of an official training set, else 0.1).
    test_fraction: share held out for testing where there is no official test set (default 0.1).
    download: fetch mnist / fashion-mnist when no full local copy is found.
    num_examples: size of the synthetic dataset (default 1000); only for "synthetic".
    Text (``wordnet-pairs``, ``pairs:FILE``, ...) is read by ``text.load_text_dataset``.
    """
    if is_text_dataset(name_or_path):
        if val_fraction is not None or test_fraction is not None or num_examples is not None:
            raise ValueError(f"load_dataset: {name_or_path}: text is split by a fixed permutation of its documents; "
                             f"val_fraction, test_fraction and num_examples do not apply")
        return load_text_dataset(str(name_or_path), root=root)
    if isinstance(name_or_path, os.PathLike) or _looks_like_path(str(name_or_path)):
        directory = Path(name_or_path).expanduser()
        if not directory.is_dir():
            raise FileNotFoundError(f"load_dataset: {directory} is not a directory")
        known = _canonical_name(directory.name)
        class_names = CLASS_NAMES.get(known) if known in IDX_DATASETS else None
        return _load_idx_directory(directory.name, directory, seed, val_fraction, test_fraction, class_names)

    name = _canonical_name(str(name_or_path))
    if name in BABI_DATASETS:  # generated stories, not images: word ids (see babi.py)
        return load_babi(name, seed=seed, num_questions=1000 if num_examples is None else num_examples,
                         val_fraction=0.1 if val_fraction is None else val_fraction)
    if name not in DATASET_NAMES:
        raise ValueError(f"load_dataset: unknown dataset {name_or_path!r}; valid names: "
                         f"{', '.join(DATASET_NAMES + TEXT_DATASET_NAMES + BABI_DATASETS)} (or the path of a directory of "
                         f"IDX files, or pairs:FILE / stream:FILE / labelled:FILE for a text file)")
    if num_examples is not None and name != "synthetic":
        raise ValueError(f"load_dataset: num_examples applies only to 'synthetic' and the babi tasks, not {name!r}")

    if name == "digits":
        return _load_digits(seed, val_fraction, test_fraction)
    if name == "synthetic":
        count = 1000 if num_examples is None else num_examples
        x, y = make_synthetic(count, seed=seed)
        source = f"make_synthetic(num_examples={count}, seed={seed}): generated bars and blobs"
        return _splits_from_pool(name, x, y, seed, val_fraction, test_fraction, CLASS_NAMES[name], source,
                                 convert=lambda images: images)

    searched = dataset_dirs(name, root)
    full = [d for d in searched if _pairs(find_idx_files(d)) == ["train", "t10k"]]
    partial = [d for d in searched if _pairs(find_idx_files(d))]
    if full:
        directory = full[0]
    elif download:
        target = Path(root).expanduser() if root is not None else default_data_root()
        directory = download_dataset(name, target)
    elif partial:
        directory = partial[0]
    else:
        hint = " or `apt-get install dataset-fashion-mnist`" if name == "fashion-mnist" else ""
        raise FileNotFoundError(
            f"load_dataset: no {name} IDX files in {', '.join(str(d) for d in searched)}; pass root= or a "
            f"directory, set ${DATA_ENV}, use download=True (mirrors: {', '.join(mirrors_for(name))}){hint}")
    return _load_idx_directory(name, directory, seed, val_fraction, test_fraction, CLASS_NAMES[name])

