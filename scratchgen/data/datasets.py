"""``load_dataset``: named datasets and IDX directories as ready-to-train ``DatasetSplits``.

Names (``DATASET_NAMES``):

    digits          scikit-learn's bundled 8x8 digits (1797 images, grey levels 0..16 -> [0, 1]).
                    The default: it needs no download and no data directory.
    synthetic       ``make_synthetic``: 10 classes of 8x8 bars/blobs, any size, for tests.
    mnist           LeCun, Cortes & Burges' 28x28 handwritten digits, IDX files.
    fashion-mnist   Zalando's 28x28 clothing images, same IDX layout (Debian: dataset-fashion-mnist).
    <a directory>   any directory of IDX files named like MNIST's (see ``find_idx_files``).

Where named IDX datasets are looked for, in order (the first directory with the full train +
test set wins; failing that, the first with at least one images/labels pair):

    root/<name>                         when ``root`` is given (and nowhere else)
    $SCRATCHGEN_DATA/<name>             each entry of the os.pathsep-separated list
    ~/.cache/scratchgen/<name>          the download cache
    /usr/share/datasets/fashion-mnist   Debian's package (fashion-mnist only)

With ``download=True`` a missing full set is fetched (``download_dataset``) into
``root/<name>`` or the first data root. Nothing is assumed about where a repository sits.

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

from .download import DATA_ENV, default_data_root, download_dataset, mirrors_for
from .idx import DataFileError, read_idx
from .splits import DatasetSplits, Split, train_val_test_split
from .synthetic import SYNTHETIC_CLASS_NAMES, make_synthetic

__all__ = ["DATASET_NAMES", "CLASS_NAMES", "SYSTEM_DIRS", "load_dataset", "find_idx_files", "dataset_dirs"]

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
                if (directory / filename).is_file():
                    found[f"{prefix}-{part}"] = directory / filename
                    break
    return found


def _pairs(files: dict) -> list:
    """The prefixes ("train", "t10k") whose images *and* labels are both present."""
    return [prefix for prefix in ("train", "t10k") if f"{prefix}-images" in files and f"{prefix}-labels" in files]


def dataset_dirs(name: str, root=None) -> list:
    """The directories searched for the IDX dataset ``name``, in order (see the module docstring)."""
    if root is not None:
        return [Path(root).expanduser() / name]
    roots = [Path(entry).expanduser() for entry in os.environ.get(DATA_ENV, "").split(os.pathsep) if entry]
    roots.append(Path.home() / ".cache" / "scratchgen")
    return [r / name for r in roots] + list(SYSTEM_DIRS.get(name, ()))


# ---- turning IDX arrays into float images and int64 labels ------------------------------------
def _images_as_unit_float(images: np.ndarray, path) -> np.ndarray:
    """uint8 (N, H, W) or (N, C, H, W) -> float32 (N, C, H, W) in [0, 1]."""
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise DataFileError(path, f"expected images of shape (N, H, W) or (N, C, H, W), got {images.shape}")
    if images.dtype == np.uint8:
        unit = images.astype(np.float32)
        unit /= 255  # a Python int keeps float32 (NumPy 2 rules)
        return unit
    if images.dtype.kind == "f":
        low, high = float(images.min(initial=0.0)), float(images.max(initial=0.0))
        if low < 0.0 or high > 1.0:
            raise DataFileError(path, f"floating images must lie in [0, 1], found values in [{low}, {high}]")
        return images.astype(np.float32)
    raise DataFileError(path, f"images must be uint8 (0..255) or floats in [0, 1], got {images.dtype}")


def _labels_as_int64(labels: np.ndarray, path, num_classes: int | None) -> np.ndarray:
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataFileError(path, f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise DataFileError(path, f"labels must be >= 0, found {labels.min()}")
    if num_classes is not None and labels.size and labels.max() >= num_classes:
        raise DataFileError(path, f"labels must lie in [0, {num_classes}), found {labels.max()}")
    return labels


def _read_pair(files: dict, prefix: str):
    images_path, labels_path = files[f"{prefix}-images"], files[f"{prefix}-labels"]
    images, labels = read_idx(images_path), read_idx(labels_path)
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
        top = max(int(split.y.max()) for split in (train, validation, test) if split.y.size)
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

    def convert(images, prefix):
        return _images_as_unit_float(images, files[f"{prefix}-images"])

    if pairs == ["train", "t10k"]:
        train_images, train_labels = _read_pair(files, "train")
        test_images, test_labels = _read_pair(files, "t10k")
        if train_images.shape[1:] != test_images.shape[1:]:
            raise DataFileError(directory, f"train images are {train_images.shape[1:]} "
                                           f"but test images are {test_images.shape[1:]}")
        if test_fraction is not None:
            raise ValueError(f"load_dataset: {name} has an official test set; test_fraction does not apply")
        fraction = _fraction(val_fraction, DEFAULT_VAL_FRACTION_OF_TRAIN, "val_fraction")
        train_labels = _labels_as_int64(train_labels, files["train-labels"], num_classes)
        train, validation = train_val_test_split(train_images, train_labels, (None, fraction), seed)
        train = Split(convert(train.x, "train"), train.y)
        validation = Split(convert(validation.x, "train"), validation.y)
        test = Split(convert(test_images, "t10k"), _labels_as_int64(test_labels, files["t10k-labels"], num_classes))
        source = (f"{directory} (official {len(train_labels)} training / {len(test_labels)} test files; "
                  f"validation = {validation.num_examples} training examples drawn with seed {seed})")
        return _assemble(name, train, validation, test, class_names, source)

    prefix = pairs[0]
    images, labels = _read_pair(files, prefix)
    labels = _labels_as_int64(labels, files[f"{prefix}-labels"], num_classes)
    other = "train" if prefix == "t10k" else "t10k"
    which = "official test" if prefix == "t10k" else "official training"
    source = f"{directory}: only the {prefix} ({which}) files are there, no {other} files"
    return _splits_from_pool(name, images, labels, seed, val_fraction, test_fraction, class_names, source,
                             convert=lambda pool: convert(pool, prefix))


def _load_digits(seed, val_fraction, test_fraction):
    try:
        import sklearn
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("load_dataset('digits') reads the copy bundled with scikit-learn, which is not "
                          "installed: pip install scratchgen[data]") from exc
    bunch = load_digits()
    x = (bunch.images[:, None] / 16).astype(np.float32)  # grey levels 0..16; k/16 is exact in float32
    y = bunch.target.astype(np.int64)
    source = f"scikit-learn {sklearn.__version__} sklearn.datasets.load_digits (UCI optical digits, 8x8)"
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
    """
    if isinstance(name_or_path, os.PathLike) or _looks_like_path(str(name_or_path)):
        directory = Path(name_or_path).expanduser()
        if not directory.is_dir():
            raise FileNotFoundError(f"load_dataset: {directory} is not a directory")
        known = _canonical_name(directory.name)
        class_names = CLASS_NAMES.get(known) if known in IDX_DATASETS else None
        return _load_idx_directory(directory.name, directory, seed, val_fraction, test_fraction, class_names)

    name = _canonical_name(str(name_or_path))
    if name not in DATASET_NAMES:
        raise ValueError(f"load_dataset: unknown dataset {name_or_path!r}; valid names: "
                         f"{', '.join(DATASET_NAMES)} (or the path of a directory of IDX files)")
    if num_examples is not None and name != "synthetic":
        raise ValueError(f"load_dataset: num_examples applies only to 'synthetic', not {name!r}")

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

