"""Tests for scratchgen.data: IDX files, datasets, splits, binarisation, batches, downloads."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from scratchgen.data import (
    REMOTE_FILES,
    BatchIterator,
    ChecksumError,
    MAX_CLASSES,
    MAX_IDX_BYTES,
    DataFileError,
    DownloadError,
    DownloadInterrupted,
    RemoteFile,
    binarize,
    download_dataset,
    download_file,
    file_digests,
    flatten_images,
    iterate_batches,
    load_dataset,
    make_synthetic,
    one_hot,
    read_idx,
    search_report,
    train_val_test_split,
    write_idx,
)
from scratchgen.data import download as download_module

REPO_ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist").resolve()
MNIST_T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

needs_mnist = pytest.mark.skipif(
    not all((MNIST_DIR / name).is_file() for name in MNIST_T10K),
    reason=f"the MNIST t10k files are not in {MNIST_DIR}")
needs_fashion = pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Fashion-MNIST is not installed in {FASHION_DIR} (apt-get install dataset-fashion-mnist)")


@pytest.fixture(autouse=True)
def isolated_data_roots(monkeypatch, tmp_path):
    """No test may read the user's data roots or write to ~/.cache."""
    monkeypatch.delenv("SCRATCHGEN_DATA", raising=False)
    monkeypatch.delenv("SCRATCHGEN_MIRROR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


# ---- IDX reading and writing ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(0)
    for shape in [(7,), (5, 3, 4), (2, 1, 3, 2)]:
        array = (rng.standard_normal(shape) * 100).astype(dtype)
        path = write_idx(tmp_path / f"a{len(shape)}-idx{suffix}", array)
        back = read_idx(path)
        assert back.dtype == np.dtype(dtype) and back.dtype.isnative and back.flags.writeable
        np.testing.assert_array_equal(back, array)


def test_idx_header_bytes_and_deterministic_gzip(tmp_path):
    raw = write_idx(tmp_path / "x-idx3-ubyte", np.zeros((10, 28, 28), np.uint8)).read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03" and raw[4:16] == bytes.fromhex("0000000a 0000001c 0000001c")
    assert len(raw) == 16 + 10 * 28 * 28
    a = write_idx(tmp_path / "a.gz", np.arange(50, dtype=np.int32)).read_bytes()
    b = write_idx(tmp_path / "b.gz", np.arange(50, dtype=np.int32)).read_bytes()
    assert a == b


@pytest.mark.parametrize("array", [np.zeros(3, bool), np.zeros(3, np.int64), np.zeros(3, np.uint16), np.float32(1)])
def test_write_idx_rejects_what_idx_cannot_hold(tmp_path, array):
    with pytest.raises((TypeError, ValueError), match="write_idx"):
        write_idx(tmp_path / "bad", array)


def _valid_idx_bytes(tmp_path) -> bytes:
    return write_idx(tmp_path / "valid", np.arange(60, dtype=np.uint8).reshape(5, 3, 4)).read_bytes()


CORRUPTIONS = {
    # name: (how to damage the 16 + 60 valid bytes, what the error must say)
    "empty": (lambda b: b"", "too short"),
    "wrong magic": (lambda b: b"\x01\x00" + b[2:], "bad magic number 0x01000803"),
    "unknown type code": (lambda b: b[:2] + b"\x07" + b[3:], "unknown IDX data type code 0x07"),
    "zero dimensions": (lambda b: b[:3] + b"\x00", "0 dimensions"),
    "truncated header": (lambda b: b[:10], "declares 3 dimensions"),
    "truncated data": (lambda b: b[:-7], "header says 5x3x4 = 60 bytes of data, file holds 53"),
    "extra data": (lambda b: b + b"\x00\x00", "file holds 62"),
    "dims disagree with data": (lambda b: b[:4] + bytes.fromhex("00000006") + b[8:], "6x3x4 = 72 bytes"),
}


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_idx_raises_error_naming_the_file(tmp_path, corruption, compress):
    damage, expected = CORRUPTIONS[corruption]
    content = damage(_valid_idx_bytes(tmp_path))
    path = tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(DataFileError) as info:
        read_idx(path)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_idx_error_for_int32_counts_bytes_per_value(tmp_path):
    path = tmp_path / "v-idx1"
    path.write_bytes(write_idx(tmp_path / "ok", np.arange(4, dtype=np.int32)).read_bytes()[:-1])
    with pytest.raises(DataFileError, match="header says 4 int32 values of 4 bytes = 16 bytes of data, file holds 15"):
        read_idx(path)


@pytest.mark.parametrize("damage, expected", [
    (lambda gz: gz[: len(gz) // 2], "truncated"),                        # stream stops early
    (lambda gz: gz[:-8] + bytes(8), "broken gzip stream"),               # CRC and length trailer wiped
    (lambda gz: gz[:12] + bytes(len(gz) - 20) + gz[-8:], "broken gzip"),  # deflate data wiped
])
def test_broken_gzip_raises_error_naming_the_file(tmp_path, damage, expected):
    good = write_idx(tmp_path / "good.gz", np.arange(4000, dtype=np.int16)).read_bytes()
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(damage(good))
    with pytest.raises(DataFileError, match=expected) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def _peak_bytes(function, *args):
    """(result or exception, peak bytes traced while ``function(*args)`` ran); NumPy's buffers are traced too."""
    tracemalloc.start()
    try:
        try:
            outcome = function(*args)
        except Exception as exc:  # noqa: BLE001 - the caller inspects it
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _header(type_code: int, dims) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("dims, compress", [
    ((65536, 65536, 65536, 65536), False),   # the int64 product is 2**64: it used to wrap to 0 ...
    ((65536, 65536, 65536, 65536), True),    # ... and match an empty data section
    ((4096,) * 6, False),                    # 2**72
])
def test_idx_size_is_computed_without_wrapping_round(tmp_path, dims, compress):
    path = tmp_path / ("huge-idx" + (".gz" if compress else ""))
    content = _header(0x08, dims)
    path.write_bytes(gzip.compress(content) if compress else content)
    size = 1
    for d in dims:
        size *= d
    with pytest.raises(DataFileError, match=f"= {size} bytes of data") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def _gzip_bomb(path, header: bytes, zero_bytes: int) -> Path:
    """``header`` then ``zero_bytes`` zeros, gzip-compressed a MiB at a time (about 1000-fold)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as out:
        out.write(packer.compress(header))
        for _ in range(zero_bytes >> 20):
            out.write(packer.compress(bytes(1 << 20)))
        out.write(packer.flush())
    return path


def test_gzip_bomb_is_refused_from_its_header_without_inflating(tmp_path):
    # 32 MiB of zeros behind a header claiming 1e9 MNIST images: refused before any data is inflated.
    bomb = _gzip_bomb(tmp_path / "train-images-idx3-ubyte.gz", _header(0x08, (10**9, 28, 28)), 32 << 20)
    assert bomb.stat().st_size < 100_000
    error, peak = _peak_bytes(read_idx, bomb)
    assert isinstance(error, DataFileError) and str(bomb) in str(error)
    assert f"= {784 * 10**9} bytes of data, more than the {MAX_IDX_BYTES} bytes" in str(error)
    assert peak < 1 << 20


def test_gzip_with_more_data_than_its_header_is_inflated_only_that_far(tmp_path):
    # A modest header (10 images) followed by 32 MiB: reading stops just past the 7840 promised bytes.
    bomb = _gzip_bomb(tmp_path / "t10k-images-idx3-ubyte.gz", _header(0x08, (10, 28, 28)), 32 << 20)
    error, peak = _peak_bytes(read_idx, bomb)
    assert isinstance(error, DataFileError) and str(bomb) in str(error)
    assert "header says 10x28x28 = 7840 bytes of data, file holds more than" in str(error)
    assert peak < 4 << 20


def test_gzip_header_promising_more_than_deflate_can_give_is_refused(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_header(0x08, (100_000, 28, 28)) + bytes(100)))
    error, peak = _peak_bytes(read_idx, path)
    assert isinstance(error, DataFileError) and str(path) in str(error)
    assert "inflates to at most" in str(error) and peak < 1 << 20


@pytest.mark.parametrize("header", [b"\x01\x02\x03\x04", _header(0x08, (10, 28, 28))],
                         ids=["bad magic", "header disagrees with size"])
def test_raw_file_is_not_read_whole_before_its_header_is_checked(tmp_path, header):
    path = tmp_path / "t10k-images-idx3-ubyte"
    with open(path, "wb") as out:
        out.write(header)
        out.truncate(32 << 20)                      # 32 MiB (sparse: no disk space used)
    error, peak = _peak_bytes(read_idx, path)
    assert isinstance(error, DataFileError) and str(path) in str(error)
    assert peak < 1 << 20


def test_max_bytes_bounds_the_data_section(tmp_path):
    path = write_idx(tmp_path / "a-idx1-ubyte.gz", np.arange(60, dtype=np.uint8))
    assert read_idx(path, max_bytes=60).tolist() == list(range(60))
    with pytest.raises(DataFileError, match="60 bytes of data, more than the 59 bytes"):
        read_idx(path, max_bytes=59)


@pytest.mark.parametrize("dims", [(0, 2**32 - 1, 2**32 - 1), (0,) * 70], ids=["zero beside huge", "70 dims"])
def test_header_numpy_cannot_hold_is_a_data_file_error(tmp_path, dims):
    path = tmp_path / "odd-idx"
    path.write_bytes(_header(0x08, dims))           # no data: the header's size is 0 bytes
    with pytest.raises(DataFileError, match="cannot be a NumPy array") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unreadable_file_is_a_data_file_error(tmp_path):
    path = write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    path.chmod(0)
    with pytest.raises(DataFileError, match="cannot read the file"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        read_idx(tmp_path / "nothing")


# ---- datasets --------------------------------------------------------------------------------
def _check_splits(data, image_shape, num_classes):
    for split in (data.train, data.validation, data.test):
        x, y = split
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == image_shape and y.shape == (x.shape[0],)
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert 0 <= y.min() and y.max() < num_classes
    assert data.image_shape == image_shape and data.num_classes == num_classes == len(data.class_names)


@pytest.fixture(scope="module")
def mnist_t10k():
    if not all((MNIST_DIR / name).is_file() for name in MNIST_T10K):
        pytest.skip(f"the MNIST t10k files are not in {MNIST_DIR}")
    return read_idx(MNIST_DIR / MNIST_T10K[0]), read_idx(MNIST_DIR / MNIST_T10K[1])


def test_mnist_t10k_files(mnist_t10k):
    images, labels = mnist_t10k
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert images.max() == 255 and images.min() == 0


@needs_mnist
def test_mnist_t10k_only_directory_is_split_three_ways(monkeypatch):
    by_path = load_dataset(MNIST_DIR, seed=3)
    monkeypatch.setenv("SCRATCHGEN_DATA", str(MNIST_DIR.parent))
    by_name = load_dataset("mnist", seed=3)
    by_root = load_dataset("mnist", root=MNIST_DIR.parent, seed=3)
    for data in (by_path, by_name, by_root):
        _check_splits(data, (1, 28, 28), 10)
        assert (data.train.num_examples, data.validation.num_examples, data.test.num_examples) == (8000, 1000, 1000)
        assert "t10k" in data.source and "8000/1000/1000" in data.source and str(MNIST_DIR) in data.source
        np.testing.assert_array_equal(data.test.x, by_path.test.x)
    assert by_name.name == "mnist" and by_name.class_names == tuple("0123456789")
    # Every test-file example lands in exactly one split, as the file's bytes / 255.
    images, labels = (read_idx(MNIST_DIR / name) for name in MNIST_T10K)
    pooled = np.concatenate([by_path.train.y, by_path.validation.y, by_path.test.y])
    np.testing.assert_array_equal(np.sort(pooled), np.sort(labels))
    first_train = np.sort(np.random.default_rng(3).permutation(10000)[:8000])[0]
    np.testing.assert_array_equal(by_path.train.x[0, 0], images[first_train].astype(np.float32) / 255)


@needs_fashion
def test_fashion_mnist_from_debian_package():
    data = load_dataset("fashion-mnist", seed=0)
    _check_splits(data, (1, 28, 28), 10)
    assert (data.train.num_examples, data.validation.num_examples, data.test.num_examples) == (50000, 10000, 10000)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    assert str(FASHION_DIR) in data.source
    assert np.bincount(data.test.y).tolist() == [1000] * 10  # the official test set is balanced


def test_digits_dataset():
    pytest.importorskip("sklearn")
    data = load_dataset("digits", seed=0)
    _check_splits(data, (1, 8, 8), 10)
    sizes = (data.train.num_examples, data.validation.num_examples, data.test.num_examples)
    assert sum(sizes) == 1797 and sizes == (1437, 180, 180)
    assert data.train.x.max() == 1.0
    assert np.all(data.train.x * 16 == np.round(data.train.x * 16))  # grey levels 0..16
    assert "load_digits" in data.source


def test_digits_without_sklearn_says_how_to_install(monkeypatch):
    # A None entry in sys.modules makes every import of that name raise ImportError, even when an
    # earlier test has already imported scikit-learn (patching builtins.__import__ would not stop
    # importlib.import_module from returning the cached module).
    import sys
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")] + ["sklearn"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install scratchgen\[data\]"):
        load_dataset("digits")


def test_synthetic_is_deterministic_balanced_and_separable():
    x, y = make_synthetic(500, seed=1)
    x2, y2 = make_synthetic(500, seed=1)
    assert x.shape == (500, 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(make_synthetic(500, seed=2)[0], x)
    assert np.bincount(y).tolist() == [50] * 10
    # Nearest class mean classifies almost perfectly: the classes are genuinely different.
    means = np.stack([x[y == k].reshape(-1, 64).mean(0) for k in range(10)])
    distances = ((x.reshape(-1, 1, 64) - means[None]) ** 2).sum(-1)
    assert (distances.argmin(1) == y).mean() > 0.95
    data = load_dataset("synthetic", num_examples=200, seed=4)
    _check_splits(data, (1, 8, 8), 10)
    assert (data.train.num_examples, data.validation.num_examples, data.test.num_examples) == (160, 20, 20)


def test_idx_directory_with_official_split(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 20)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 5, 4), dtype=np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 3, n, dtype=np.uint8))
    data = load_dataset(str(tmp_path), val_fraction=0.25)
    _check_splits(data, (1, 5, 4), 3)
    assert (data.train.num_examples, data.validation.num_examples, data.test.num_examples) == (45, 15, 20)
    assert data.name == tmp_path.name and data.class_names == ("0", "1", "2")
    test_images = read_idx(tmp_path / "t10k-images-idx3-ubyte.gz")[:, None]
    np.testing.assert_array_equal(data.test.x, test_images.astype(np.float32) / 255)
    with pytest.raises(ValueError, match="official test set"):
        load_dataset(tmp_path, test_fraction=0.1)


def test_idx_directory_errors(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((4, 2, 2), np.uint8))
    with pytest.raises(DataFileError, match="found t10k-images-idx3-ubyte"):
        load_dataset(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(DataFileError, match="holds 4 images but t10k-labels-idx1-ubyte holds 5 labels"):
        load_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_dataset(tmp_path / "absent")


def _idx_directory(directory, images, labels, prefix="t10k"):
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / f"{prefix}-images-idx3-ubyte", images)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)
    return directory


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_images_with_nan_or_infinity_are_refused(tmp_path, bad):
    images = np.full((6, 3, 3), 0.5, np.float32)
    images[4, 1, 2] = bad
    directory = _idx_directory(tmp_path / "floats", images, np.zeros(6, np.uint8))
    with pytest.raises(DataFileError, match=r"floating images must be finite, found .* \(first in image 4\)") as info:
        load_dataset(directory)
    assert str(directory / "t10k-images-idx3-ubyte") in str(info.value)


@pytest.mark.parametrize("label", [MAX_CLASSES, 30_000_000, 2_000_000_000])
def test_labels_beyond_max_classes_are_refused_naming_file_and_value(tmp_path, label):
    directory = _idx_directory(tmp_path / "mine", np.zeros((4, 2, 2), np.uint8), np.array([0, 1, label, 2], np.int32))
    error, peak = _peak_bytes(load_dataset, directory)
    assert isinstance(error, DataFileError), error
    assert str(directory / "t10k-labels-idx1-ubyte") in str(error)
    assert f"found label {label} (at index 2)" in str(error) and f"at most {MAX_CLASSES} classes" in str(error)
    assert peak < 1 << 20


def test_classes_come_from_the_labels_present(tmp_path):
    labels = np.array([0, 3, 1, MAX_CLASSES - 1] * 5, np.int16)
    data = load_dataset(_idx_directory(tmp_path / "mine", np.zeros((20, 2, 2), np.uint8), labels))
    assert data.num_classes == MAX_CLASSES == len(data.class_names) and data.class_names[-1] == str(MAX_CLASSES - 1)
    data = load_dataset(_idx_directory(tmp_path / "small", np.zeros((20, 2, 2), np.uint8), np.array([0, 2, 1, 2] * 5, np.uint8)))
    assert data.class_names == ("0", "1", "2")


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32])
def test_negative_labels_are_refused_naming_file_and_value(tmp_path, dtype):
    directory = _idx_directory(tmp_path / "mine", np.zeros((3, 2, 2), np.uint8), np.array([0, -7, 1], dtype))
    with pytest.raises(DataFileError, match=r"labels must be class numbers >= 0, found -7 \(at index 1\)") as info:
        load_dataset(directory)
    assert str(directory / "t10k-labels-idx1-ubyte") in str(info.value)


def test_labels_of_a_known_dataset_must_fit_its_classes(tmp_path):
    directory = _idx_directory(tmp_path / "mnist", np.zeros((3, 2, 2), np.uint8), np.array([0, 10, 1], np.uint8))
    with pytest.raises(DataFileError, match=r"labels must lie in \[0, 10\), found 10 \(at index 1\)"):
        load_dataset(directory)


HOSTILE_DIRECTORIES = {
    # name: (images, labels, the file at fault, what the error says)
    "no images": (np.zeros((0, 2, 2), np.uint8), np.zeros(0, np.uint8), "images", "holds no images"),
    "empty images": (np.zeros((3, 2, 0), np.uint8), np.zeros(3, np.uint8), "images", "hold no pixels"),
    "1-D images": (np.zeros(3, np.uint8), np.zeros(3, np.uint8), "images", "(N, H, W) or (N, C, H, W)"),
    "5-D images": (np.zeros((3, 1, 1, 2, 2), np.uint8), np.zeros(3, np.uint8), "images", "(N, H, W) or (N, C"),
    "int16 images": (np.zeros((3, 2, 2), np.int16), np.zeros(3, np.uint8), "images", "must be uint8"),
    "floats above 1": (np.full((3, 2, 2), 1.5), np.zeros(3, np.uint8), "images", "must lie in [0, 1]"),
    "2-D labels": (np.zeros((3, 2, 2), np.uint8), np.zeros((3, 2), np.uint8), "labels", "1-D integer"),
    "float labels": (np.zeros((3, 2, 2), np.uint8), np.zeros(3, np.float32), "labels", "1-D integer"),
    "more labels": (np.zeros((3, 2, 2), np.uint8), np.zeros(4, np.uint8), "images", "holds 3 images but"),
    "fewer labels": (np.zeros((3, 2, 2), np.uint8), np.zeros(0, np.uint8), "images", "holds 3 images but"),
}


@pytest.mark.parametrize("prefixes", [("t10k",), ("train", "t10k")], ids=["test files only", "train and test"])
@pytest.mark.parametrize("case", sorted(HOSTILE_DIRECTORIES))
def test_hostile_idx_directory_is_one_data_file_error_naming_the_file(tmp_path, case, prefixes):
    images, labels, culprit, expected = HOSTILE_DIRECTORIES[case]
    directory = tmp_path / "mine"
    for prefix in prefixes:
        _idx_directory(directory, images, labels, prefix)
    with pytest.raises(DataFileError) as info:
        load_dataset(directory)
    message = str(info.value)
    assert message.startswith(str(directory / f"{prefixes[0]}-{culprit}-idx")) and expected in message
    assert "\n" not in message


def test_train_and_test_images_of_different_shapes(tmp_path):
    directory = _idx_directory(tmp_path / "mine", np.zeros((3, 2, 2), np.uint8), np.zeros(3, np.uint8), "train")
    _idx_directory(directory, np.zeros((3, 2, 3), np.uint8), np.zeros(3, np.uint8), "t10k")
    with pytest.raises(DataFileError, match=r"t10k-images-idx3-ubyte: holds images of shape \(1, 2, 3\)"):
        load_dataset(directory)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="digits, synthetic, mnist, fashion-mnist"):
        load_dataset("cifar10")


def test_named_dataset_not_found_explains_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no mnist IDX files in .*download=True"):
        load_dataset("mnist", root=tmp_path)


def test_search_report_says_where_it_looked_and_how_to_add_a_place(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    (second / "mnist").mkdir(parents=True)
    write_idx(second / "mnist" / "t10k-images-idx3-ubyte", np.zeros((3, 2, 2), np.uint8))
    monkeypatch.setenv("SCRATCHGEN_DATA", f"{first}{os.pathsep}{second}")
    report = search_report("mnist")
    lines = report.splitlines()
    assert lines[0] == "mnist: not found"
    cache = tmp_path / "home" / ".cache" / "scratchgen" / "mnist"
    for place, why, state in ((first / "mnist", "$SCRATCHGEN_DATA", "no such directory"),
                              (second / "mnist", "$SCRATCHGEN_DATA",
                               "only t10k-images-idx3-ubyte (an images file needs its labels file)"),
                              (cache, "the download cache", "no such directory")):
        assert any(line.split()[0] == str(place) and line.endswith(f"[{why}] {state}") for line in lines), report
    assert "--data-root DIR" in report and "$SCRATCHGEN_DATA" in report
    assert f"--download (fetches into {first / 'mnist'})" in report

    write_idx(second / "mnist" / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    assert search_report("mnist").startswith(f"mnist: found at {second / 'mnist'} (test files only")
    for prefix in ("train", "t10k"):
        _idx_directory(cache, np.zeros((3, 2, 2), np.uint8), np.zeros(3, np.uint8), prefix)
    assert search_report("mnist").splitlines()[0] == f"mnist: found at {cache}"

    by_root = search_report("fashion_mnist", root=tmp_path / "elsewhere").splitlines()
    assert by_root[0] == "fashion-mnist: not found"
    assert [line.split()[0] for line in by_root if line.startswith("    ")] == [str(tmp_path / "elsewhere" / "fashion-mnist")]
    assert any("apt-get install dataset-fashion-mnist" in line for line in by_root)
    assert search_report("synthetic").startswith("synthetic: built in")
    assert search_report("digits").startswith("digits: ")
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'"):
        search_report("cifar10")


# ---- splits ----------------------------------------------------------------------------------
def test_seeded_splits_are_reproducible_and_disjoint():
    ids = np.arange(1000)
    a = train_val_test_split(ids, ids, (None, 0.2, 150), seed=7)
    b = train_val_test_split(ids, ids, (None, 0.2, 150), seed=7)
    c = train_val_test_split(ids, ids, (None, 0.2, 150), seed=8)
    assert [len(s.x) for s in a] == [650, 200, 150]
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left.x, right.x)
    assert not np.array_equal(a[1].x, c[1].x)
    union = np.concatenate([s.x for s in a])
    assert len(np.unique(union)) == 1000  # disjoint and covering
    for split in a:
        np.testing.assert_array_equal(split.x, split.y)  # x and y stay paired
        assert np.all(np.diff(split.x) > 0)              # file order kept inside a split
    d1, d2 = load_dataset("synthetic", seed=5), load_dataset("synthetic", seed=5)
    np.testing.assert_array_equal(d1.validation.x, d2.validation.x)


def test_split_size_errors():
    ids = np.arange(10)
    with pytest.raises(ValueError, match="only 10 examples"):
        train_val_test_split(ids, ids, (8, 3))
    with pytest.raises(ValueError, match="at most one size may be None"):
        train_val_test_split(ids, ids, (None, None))
    with pytest.raises(ValueError, match="x has 10 examples"):
        train_val_test_split(ids, ids[:9], (None, 2))


# ---- binarisation, one-hot, flatten ------------------------------------------------------------
def test_binarize_modes():
    x = np.linspace(0, 1, 101, dtype=np.float32).reshape(1, 1, 101)
    assert binarize(x, "none") is x
    static = binarize(x, "static")
    assert static.dtype == np.float32 and set(np.unique(static).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(static, (x > 0.5).astype(np.float32))
    assert binarize(x, "static", threshold=0.25).sum() == (x > 0.25).sum()

    means = np.full((200, 1, 10, 10), 0.3, dtype=np.float32)
    draw1 = binarize(means, "dynamic", np.random.default_rng(0))
    draw2 = binarize(means, "dynamic", np.random.default_rng(0))
    rng = np.random.default_rng(0)
    first, second = binarize(means, "dynamic", rng), binarize(means, "dynamic", rng)
    assert draw1.dtype == np.float32 and set(np.unique(draw1).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(draw1, draw2)           # same seed, same draw
    np.testing.assert_array_equal(first, draw1)
    assert not np.array_equal(first, second)              # a fresh draw each call (each epoch)
    assert abs(draw1.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / draw1.size)
    extremes = np.array([0.0, 1.0] * 50)
    np.testing.assert_array_equal(binarize(extremes, "dynamic", np.random.default_rng(1)), extremes)
    assert binarize(extremes, "dynamic", np.random.default_rng(1)).dtype == np.float64


def test_binarize_errors():
    x = np.full(4, 0.5, np.float32)
    with pytest.raises(ValueError, match="unknown mode 'stochastic'"):
        binarize(x, "stochastic")
    with pytest.raises(TypeError, match="needs rng"):
        binarize(x, "dynamic")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binarize(x * 3, "static")
    with pytest.raises(TypeError, match="floating"):
        binarize(np.ones(3, np.uint8), "none")


def test_one_hot_and_flatten():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    assert one_hot(np.array([1]), 2).dtype == np.float32
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got \[3, 7\]"):
        one_hot(np.array([0, 3, 7]), 3)
    x = np.zeros((5, 1, 28, 28), np.float32)
    assert flatten_images(x).shape == (5, 784) and np.shares_memory(flatten_images(x), x)
    with pytest.raises(ValueError, match="flatten_images"):
        flatten_images(np.zeros(3))


# ---- batches ---------------------------------------------------------------------------------
def _epoch_ids(batches):
    return [yb.tolist() for _, yb in batches]


def test_batch_iterator_order_is_seeded_and_complete():
    x = np.arange(23, dtype=np.float32).reshape(23, 1)
    y = np.arange(23)
    a = BatchIterator(x, y, batch_size=5, rng=np.random.default_rng(3))
    b = BatchIterator(x, y, batch_size=5, rng=np.random.default_rng(3))
    epoch1, epoch2 = _epoch_ids(a), _epoch_ids(a)
    assert epoch1 == _epoch_ids(b) and epoch2 == _epoch_ids(b)
    assert epoch1 != epoch2                                  # a new order each epoch
    assert [len(batch) for batch in epoch1] == [5, 5, 5, 5, 3] and len(a) == 5
    assert sorted(sum(epoch1, [])) == list(range(23))        # every example exactly once
    for xb, yb in BatchIterator(x, y, batch_size=4, rng=0):
        np.testing.assert_array_equal(xb[:, 0], yb)          # x and y stay paired
    dropped = BatchIterator(x, y, batch_size=5, drop_last=True)
    assert len(dropped) == 4 and all(len(batch) == 5 for batch in _epoch_ids(dropped))
    assert _epoch_ids(BatchIterator(x, y, batch_size=10, shuffle=False)) == [list(range(10)), list(range(10, 20)),
                                                                             list(range(20, 23))]
    assert _epoch_ids(iterate_batches(x, y, 5, rng=np.random.default_rng(3))) == epoch1
    assert all(yb is None for _, yb in BatchIterator(x, None, batch_size=8))


def test_batch_iterator_resumes_exactly_from_saved_state():
    y = np.arange(50)
    iterator = BatchIterator(y, y, batch_size=8, rng=np.random.default_rng(11))
    _epoch_ids(iterator)                                     # epoch 0
    saved = iterator.rng.bit_generator.state                 # checkpoint at the start of epoch 1
    reference = _epoch_ids(iterator) + _epoch_ids(iterator)  # epochs 1 and 2, uninterrupted

    resumed = BatchIterator(y, y, batch_size=8, rng=np.random.default_rng(999))
    resumed.rng.bit_generator.state = saved
    after_crash = [yb.tolist() for _, yb in resumed.epoch(start_batch=3)] + _epoch_ids(resumed)
    assert after_crash == reference[3:]


def test_batch_iterator_errors():
    with pytest.raises(ValueError, match="x has 4 examples .* but y has 3"):
        BatchIterator(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        BatchIterator(np.zeros(4), batch_size=0)
    with pytest.raises(TypeError, match="rng must be"):
        BatchIterator(np.zeros(4), rng="seed")


# ---- downloads from a loopback HTTP server -------------------------------------------------------
class _QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; ``/truncated/<file>`` announces the full length but sends half."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if not self.path.startswith("/truncated/"):
            return super().do_GET()
        content = (Path(self.directory) / self.path.rsplit("/", 1)[1]).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content[: len(content) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def serve(tmp_path):
    """serve(directory) -> base URL of a loopback HTTP server for that directory."""
    servers = []

    def start(directory):
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_QuietFileHandler, directory=str(directory)))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _leftovers(directory):
    return sorted(p.name for p in Path(directory).iterdir()) if Path(directory).exists() else []


@needs_mnist
def test_published_checksums_match_the_shared_mnist_files():
    specs = {spec.name: spec for spec in REMOTE_FILES["mnist"]}
    for name in MNIST_T10K:
        digests = file_digests(MNIST_DIR / name)
        assert digests == {"md5": specs[name].md5, "sha256": specs[name].sha256}
        assert (MNIST_DIR / name).stat().st_size == specs[name].size


@needs_mnist
def test_download_verifies_and_loads(tmp_path, serve):
    base = serve(MNIST_DIR)
    directory = download_dataset("mnist", tmp_path / "cache", mirror=base + "/", files=MNIST_T10K, verbose=False)
    assert directory == tmp_path / "cache" / "mnist" and _leftovers(directory) == sorted(MNIST_T10K)
    for name in MNIST_T10K:
        assert (directory / name).read_bytes() == (MNIST_DIR / name).read_bytes()
    # Present and verified: a second call downloads nothing (a dead mirror proves it).
    download_dataset("mnist", tmp_path / "cache", mirror="http://127.0.0.1:9/", files=MNIST_T10K, verbose=False)
    assert load_dataset("mnist", root=tmp_path / "cache").test.num_examples == 1000


@needs_mnist
def test_download_rejects_a_bad_checksum_and_leaves_no_file(tmp_path, serve):
    served = tmp_path / "served"
    served.mkdir()
    content = bytearray((MNIST_DIR / MNIST_T10K[1]).read_bytes())
    content[100] ^= 0xFF                                      # same size, one byte flipped
    (served / MNIST_T10K[1]).write_bytes(bytes(content))
    base = serve(served)
    with pytest.raises(ChecksumError) as info:
        download_dataset("mnist", tmp_path / "cache", mirror=base, files=[MNIST_T10K[1]], verbose=False)
    message = str(info.value)
    spec = {s.name: s for s in REMOTE_FILES["mnist"]}[MNIST_T10K[1]]
    assert f"{base}/{MNIST_T10K[1]}" in message
    assert spec.sha256 in message and hashlib.sha256(bytes(content)).hexdigest() in message
    assert _leftovers(tmp_path / "cache" / "mnist") == []


@needs_mnist
def test_download_survives_interrupted_transfers_leaving_no_file(tmp_path, serve):
    base = serve(MNIST_DIR)
    spec = {s.name: s for s in REMOTE_FILES["mnist"]}[MNIST_T10K[0]]
    dest = tmp_path / "cache" / spec.name
    # The server drops the connection half way through.
    with pytest.raises(DownloadError, match=r"transfer interrupted: server announced 1648877 bytes, received 824438"):
        download_file(f"{base}/truncated/{spec.name}", dest, spec)
    assert _leftovers(dest.parent) == []
    # The process is interrupted (Ctrl-C) mid-transfer.
    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_file(f"{base}/{spec.name}", dest, spec, progress=interrupt)
    assert _leftovers(dest.parent) == []
    # A missing file (404) names the URL; the mirror list falls through to the next mirror.
    with pytest.raises(DownloadError, match=f"{base}/nothing/{spec.name}.*404"):
        download_file(f"{base}/nothing/{spec.name}", dest, spec)
    download_dataset("mnist", tmp_path / "c2", mirror=[f"{base}/nothing", base], files=[spec.name], verbose=False)
    assert _leftovers(tmp_path / "c2" / "mnist") == [spec.name]


def test_download_size_check_and_mirror_environment(tmp_path, serve, monkeypatch):
    served = tmp_path / "served" / "tiny"
    served.mkdir(parents=True)
    payload = b"0123456789" * 100
    (served / "f.bin").write_bytes(payload[:500])             # a short file, no interruption
    digests = {"md5": hashlib.md5(payload).hexdigest(), "sha256": hashlib.sha256(payload).hexdigest()}
    spec = RemoteFile("f.bin", len(payload), **digests)
    base = serve(tmp_path / "served")
    with pytest.raises(DownloadError, match="received 500 bytes, the published f.bin has 1000"):
        download_file(f"{base}/tiny/f.bin", tmp_path / "out" / "f.bin", spec)
    assert _leftovers(tmp_path / "out") == []
    # $SCRATCHGEN_MIRROR with a {dataset} placeholder; a file:// mirror works too.
    monkeypatch.setenv("SCRATCHGEN_MIRROR", f"{base}/{{dataset}}/ file://{tmp_path}/served/{{dataset}}")
    assert download_module.mirrors_for("tiny") == (f"{base}/tiny/", f"file://{tmp_path}/served/tiny")
    (served / "f.bin").write_bytes(payload)
    assert download_file(f"file://{served}/f.bin", tmp_path / "out" / "f.bin", spec).read_bytes() == payload


@needs_mnist
def test_load_dataset_download_true_fetches_the_full_set(tmp_path, serve, monkeypatch):
    """A stand-in 'mnist' whose train files are copies of t10k: exercises load_dataset(download=True)."""
    served = tmp_path / "served"
    served.mkdir()
    fake_specs = []
    for name in MNIST_T10K:
        for prefix in ("train", "t10k"):
            target = served / name.replace("t10k", prefix)
            shutil.copyfile(MNIST_DIR / name, target)
            digests = file_digests(target)
            fake_specs.append(RemoteFile(target.name, target.stat().st_size, digests["md5"], digests["sha256"]))
    monkeypatch.setitem(REMOTE_FILES, "mnist", tuple(fake_specs))
    monkeypatch.setenv("SCRATCHGEN_MIRROR", serve(served))
    monkeypatch.setenv("SCRATCHGEN_DATA", str(tmp_path / "data"))
    data = load_dataset("mnist", download=True, seed=0)
    assert (data.train.num_examples, data.validation.num_examples, data.test.num_examples) == (8333, 1667, 10000)
    assert str(tmp_path / "data" / "mnist") in data.source and "official" in data.source



# ---- a misbehaving mirror on loopback --------------------------------------------------------------
class _HostileHandler(http.server.BaseHTTPRequestHandler):
    """A mirror that misbehaves, by path:

    /drip/<seconds>/<size>            announces <size> bytes, sends one every <seconds>
    /steady/<bytes>/<size>            announces <size> bytes, sends <bytes> every 0.05 s
    /announce/<size>                  announces <size> bytes, sends zeros until the client hangs up
    /endless                          no Content-Length: sends zeros until the client hangs up
    /file/<name>                      serves <name> from the server's ``files`` dict
    Sending stops at ENDLESS_CAP bytes, when the client hangs up, or when the test ends.
    ``server.sent[path]`` counts the bytes sent; ``server.started`` / ``server.finished`` are Events.
    """

    ENDLESS_CAP = 64 << 20

    def log_message(self, *args):
        pass

    def do_GET(self):
        kind, *args = self.path.strip("/").split("/")
        self.server.sent[self.path] = 0
        try:
            self.send_response(200)
            if kind == "file":
                content = self.server.files[args[0]]
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self._send(content, pause=0)
            elif kind in ("drip", "steady"):
                per_piece, pause = (1, float(args[0])) if kind == "drip" else (int(args[0]), 0.05)
                self.send_header("Content-Length", args[1])
                self.end_headers()
                self._send(b"x" * int(args[1]), pause, per_piece)
            else:
                if kind == "announce":
                    self.send_header("Content-Length", args[0])
                self.end_headers()
                self._send(bytes(self.ENDLESS_CAP), pause=0)
        except OSError:       # the client hung up
            pass
        finally:
            self.server.finished.set()
            self.close_connection = True

    def _send(self, content, pause, per_piece=1 << 16):
        for start in range(0, len(content), per_piece):
            if self.server.stopping.is_set():
                return
            self.wfile.write(content[start:start + per_piece])
            self.server.sent[self.path] += len(content[start:start + per_piece])
            self.server.started.set()
            if pause:
                self.server.stopping.wait(pause)


@pytest.fixture
def hostile():
    """A loopback server of ``_HostileHandler``; the fixture value is the server, ``server.base`` its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostileHandler)
    server.sent, server.files = {}, {}
    server.started, server.finished, server.stopping = threading.Event(), threading.Event(), threading.Event()
    server.base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.stopping.set()
    server.shutdown()
    server.server_close()


def _spec_of(name: str, content: bytes, sha256: bool = True) -> RemoteFile:
    return RemoteFile(name, len(content), hashlib.md5(content).hexdigest(),
                      hashlib.sha256(content).hexdigest() if sha256 else None)


def test_download_refuses_an_announced_size_beyond_the_published_one(tmp_path, hostile):
    spec = _spec_of("f.bin", b"y" * 1000)
    with pytest.raises(DownloadError, match=r"/announce/300000000: server announces 300000000 bytes, more than "
                                            r"the published 1000 bytes of f.bin; not downloading"):
        download_file(f"{hostile.base}/announce/300000000", tmp_path / "out" / "f.bin", spec)
    assert _leftovers(tmp_path / "out") == []


def test_download_stops_reading_at_the_published_size(tmp_path, hostile):
    spec = _spec_of("f.bin", b"y" * 1000)
    seen = []
    with pytest.raises(DownloadError, match=r"/endless: server sends more than the published 1000 bytes of f.bin; "
                                            r"stopped reading there"):
        download_file(f"{hostile.base}/endless", tmp_path / "out" / "f.bin", spec,
                      progress=lambda done, total: seen.append(done))
    assert _leftovers(tmp_path / "out") == []
    assert max(seen, default=0) <= 1000                    # nothing past the published size was kept
    assert hostile.finished.wait(30)
    assert hostile.sent["/endless"] < _HostileHandler.ENDLESS_CAP  # the client hung up early


def test_download_deadline_ends_a_slow_transfer(tmp_path, hostile):
    spec = _spec_of("f.bin", b"x" * 100_000)              # 200 bytes / 0.05 s: 25 s for all of it
    with pytest.raises(DownloadError, match=r"/steady/200/100000: not finished within the deadline of 0.4 s "
                                            r"\(received \d+ of 100000 bytes"):
        download_file(f"{hostile.base}/steady/200/100000", tmp_path / "out" / "f.bin", spec,
                      deadline=0.4, min_rate=None)
    assert _leftovers(tmp_path / "out") == []


def test_download_minimum_rate_ends_a_trickle(tmp_path, hostile):
    spec = _spec_of("f.bin", b"x" * 1000)                 # one byte every 0.1 s, each read well inside timeout
    with pytest.raises(DownloadError, match=r"/drip/0.1/1000: too slow: [\d.]+ bytes/s on average, below the "
                                            r"minimum of 500 bytes/s \(min_rate, after a grace of 0.3 s"):
        download_file(f"{hostile.base}/drip/0.1/1000", tmp_path / "out" / "f.bin", spec,
                      deadline=None, min_rate=500, rate_grace=0.3)
    assert _leftovers(tmp_path / "out") == []
    with pytest.raises(ValueError, match="min_rate must be > 0 or None"):
        download_file(f"{hostile.base}/drip/0.1/1000", tmp_path / "out" / "f.bin", spec, min_rate=0)


def test_download_dataset_leaves_a_too_slow_mirror_for_the_next(tmp_path, hostile, monkeypatch):
    content = bytes(range(256)) * 4
    hostile.files["f.bin"] = content
    monkeypatch.setitem(REMOTE_FILES, "mnist", (_spec_of("f.bin", content),))
    directory = download_dataset("mnist", tmp_path / "cache", mirror=[f"{hostile.base}/drip/0.1", f"{hostile.base}/file"],
                                 verbose=False, min_rate=500, rate_grace=0.3)
    assert (directory / "f.bin").read_bytes() == content and _leftovers(directory) == ["f.bin"]


@pytest.mark.parametrize("sha256", [True, False], ids=["sha256 and md5", "md5 only"])
def test_download_refuses_one_flipped_byte_and_leaves_nothing(tmp_path, hostile, monkeypatch, sha256):
    """Runs on a clean clone (no real MNIST needed): switching the checksum off must fail a test."""
    published = bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8))
    served = bytearray(published)
    served[2345] ^= 0x01                                   # same size, one bit of one byte
    hostile.files["f.bin"] = bytes(served)
    spec = _spec_of("f.bin", published, sha256)
    monkeypatch.setitem(REMOTE_FILES, "mnist", (spec,))
    with pytest.raises(ChecksumError) as info:
        download_dataset("mnist", tmp_path / "cache", mirror=f"{hostile.base}/file", verbose=False)
    algorithm = "sha256" if sha256 else "md5"
    got = hashlib.new(algorithm, bytes(served)).hexdigest()
    assert str(info.value) == (f"{hostile.base}/file/f.bin: {algorithm} checksum mismatch: "
                               f"expected {getattr(spec, algorithm)}, got {got}")
    assert _leftovers(tmp_path / "cache" / "mnist") == []
    hostile.files["f.bin"] = published                     # the same server with the right bytes: accepted
    directory = download_dataset("mnist", tmp_path / "cache", mirror=f"{hostile.base}/file", verbose=False)
    assert (directory / "f.bin").read_bytes() == published


_DOWNLOAD_SCRIPT = """
import signal, sys
from scratchgen.data.download import RemoteFile, download_file
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in an interactive session
try:
    download_file(sys.argv[1], sys.argv[2], RemoteFile("f.bin", 100000, "0" * 32), deadline=None, min_rate=None)
except KeyboardInterrupt as exc:
    print(f"interrupted: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(130)
"""


@pytest.mark.parametrize("signum, raised", [(signal.SIGTERM, "DownloadInterrupted"), (signal.SIGINT, "KeyboardInterrupt")],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_during_download_leaves_no_part_file_and_no_traceback(tmp_path, hostile, signum, raised):
    out = tmp_path / "out"
    url = f"{hostile.base}/drip/0.05/100000"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen([sys.executable, "-c", _DOWNLOAD_SCRIPT, url, str(out / "f.bin")], cwd=REPO_ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert hostile.started.wait(60), "the download never started"
        assert [name for name in _leftovers(out) if name.endswith(".part")], _leftovers(out)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.startswith(f"interrupted: {raised}") and stderr.count("\n") == 1
    assert _leftovers(out) == []


def test_download_interrupted_is_a_keyboard_interrupt():
    error = DownloadInterrupted(signal.SIGTERM, "stopped")
    assert isinstance(error, KeyboardInterrupt) and error.signum == signal.SIGTERM and str(error) == "stopped"
