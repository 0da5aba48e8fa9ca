"""Adversarial IDX input: hypothesis draws corrupt files and hostile directories.

The property, for any bytes at all: ``read_idx`` returns exactly the array an independent reading
of the IDX spec finds in them, or raises one ``DataFileError`` whose one-line message starts with
the file's path; nothing else escapes. ``load_dataset`` on a directory of such files returns splits
that keep the ``DatasetSplits`` contract, or raises such an error naming one of its files. Memory
is measured with tracemalloc (NumPy reports its buffers to it): reading a file may take about twice
what its header implies (and never more than the file really holds), so a header claiming 4e9
images allocates nothing and megabytes of zeros behind a small header are never inflated whole.
"""
from __future__ import annotations

import gzip
import io
import math
import struct
import tempfile
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scratchgen.data import CLASS_NAMES, MAX_CLASSES, DataFileError, load_dataset, read_idx, write_idx

# The IDX spec, written out again here so that the reference reading below shares no code with idx.py.
SPEC_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
SLACK = 2 << 20   # bytes of bookkeeping any call may use (buffers of gzip, Python objects)

SETTINGS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def reference_parse(content: bytes):
    """The array ``content`` holds by the IDX spec, or None when it is not a valid IDX file."""
    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        return None
    code, ndim = content[2], content[3]
    if code not in SPEC_DTYPES or ndim == 0 or len(content) < 4 + 4 * ndim:
        return None
    dims = struct.unpack(f">{ndim}I", content[4:4 + 4 * ndim])
    dtype = np.dtype(SPEC_DTYPES[code])
    if len(content) - 4 - 4 * ndim != math.prod(dims) * dtype.itemsize:
        return None
    try:
        return np.frombuffer(content[4 + 4 * ndim:], dtype=dtype).reshape(dims)
    except ValueError:    # shapes NumPy cannot make (0 beside huge dimensions, > 64 dimensions)
        return None


def gunzip(data: bytes):
    """What a gzip reader makes of ``data`` (None if it is broken); inputs here inflate to a few MB at most."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        return None


def gunzip_prefix(data: bytes) -> bytes:
    """The bytes a gzip reader gets out of ``data`` before it stops (at the end, or at damage)."""
    out, rest = [], data
    try:
        while rest[:2] == b"\x1f\x8b":
            inflater = zlib.decompressobj(wbits=31)
            for start in range(0, len(rest), 256):     # small steps: keep what came out before damage
                out.append(inflater.decompress(rest[start:start + 256]))
                if inflater.eof:
                    rest = inflater.unused_data + rest[start + 256:]
                    break
            else:
                break
    except zlib.error:
        pass
    return b"".join(out)


def header_implies(content: bytes) -> int:
    """How many bytes a reader needs to take from ``content`` to judge it: all that its header
    implies when the header is whole and valid, the magic number alone when that is wrong."""
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in SPEC_DTYPES or content[3] == 0:
        return 4
    ndim = content[3]
    if len(content) < 4 + 4 * ndim:
        return len(content)
    dims = struct.unpack(f">{ndim}I", content[4:4 + 4 * ndim])
    return 4 + 4 * ndim + math.prod(dims) * np.dtype(SPEC_DTYPES[content[2]]).itemsize


def traced(function, *args):
    """(result or exception, peak traced bytes) of ``function(*args)``."""
    tracemalloc.start()
    try:
        try:
            outcome = function(*args)
        except Exception as exc:  # noqa: BLE001 - the property inspects every exception
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---- strategies -------------------------------------------------------------------------------
HOSTILE_DIMS = st.one_of(st.integers(0, 6), st.sampled_from([2**16, 2**24, 2**31, 2**32 - 1]),
                         st.integers(0, 2**32 - 1))
FLOAT_PIXELS = st.sampled_from([0.0, 0.25, 1.0, -0.0, 1.5, -0.5, float("nan"), float("inf"), float("-inf"), 1e300])


@st.composite
def arrays(draw, code=None, shape=None, plausible=False):
    """A small array of an IDX dtype. Shapes: any 1 to 4 small dimensions, or the given ones.
    Floats include NaN, infinities and values outside [0, 1]; ``plausible`` makes those rare."""
    code = draw(st.sampled_from(sorted(SPEC_DTYPES))) if code is None else code
    dtype = np.dtype(SPEC_DTYPES[code]).newbyteorder("=")
    if shape is None:
        shape = [draw(st.integers(0, 6))] + draw(st.lists(st.integers(0, 4), max_size=3))
    count = math.prod(shape)
    if dtype.kind == "f":
        unit = st.floats(0, 1, width=32)
        pixel = st.one_of(unit, FLOAT_PIXELS) if not plausible or draw(st.integers(0, 3)) == 0 else unit
        values = draw(st.lists(pixel, min_size=count, max_size=count))
        with np.errstate(over="ignore"):
            return np.array(values, dtype=dtype).reshape(shape)
    info = np.iinfo(dtype)
    values = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=count, max_size=count))
    return np.array(values, dtype=dtype).reshape(shape)


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype(v).newbyteorder("="): k for k, v in SPEC_DTYPES.items()}[array.dtype]
    return (bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.astype(array.dtype.newbyteorder(">")).tobytes())


@st.composite
def damaged(draw, content: bytes) -> bytes:
    """``content`` with one kind of damage (or none)."""
    kind = draw(st.sampled_from(["none", "truncate", "flip", "dims", "ndim", "code", "append", "insert", "random",
                                 "zeros"]))
    data = bytearray(content)
    if kind == "truncate":
        del data[draw(st.integers(0, len(data))):]
    elif kind == "flip" and data:
        for _ in range(draw(st.integers(1, 3))):
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif kind == "dims" and len(data) >= 4:
        ndim = data[3]
        dims = draw(st.lists(HOSTILE_DIMS, min_size=ndim, max_size=ndim))
        data[4:4 + 4 * ndim] = struct.pack(f">{ndim}I", *dims)
    elif kind == "ndim" and len(data) >= 4:
        data[3] = draw(st.integers(0, 255))
    elif kind == "code" and len(data) >= 4:
        data[2] = draw(st.integers(0, 255))
    elif kind == "append":
        data += draw(st.binary(min_size=1, max_size=64))
    elif kind == "zeros":
        data += bytes(draw(st.integers(3, 5)) << 20)   # a bomb: megabytes of zeros behind a small header
    elif kind == "insert":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=16))
    elif kind == "random":
        data = bytearray(draw(st.binary(max_size=64)))
        if draw(st.booleans()) and len(data) >= 4:
            data[:2] = b"\0\0"   # past the magic check, into the header checks
    return bytes(data)


def _gzip(content: bytes, level: int, filename: str = "") -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename=filename, mode="wb", fileobj=out, compresslevel=level, mtime=0) as packer:
        packer.write(content)
    return out.getvalue()


@st.composite
def packed(draw, content: bytes) -> bytes:
    """``content`` as a file: raw, or one of several gzip variants, some of them damaged."""
    kind = draw(st.sampled_from(["raw", "gzip", "named gzip", "two members", "gzip of gzip", "truncated gzip",
                                 "flipped gzip", "zero padding", "trailing garbage"]))
    level = draw(st.integers(0, 9))
    if kind == "raw":
        return content
    if kind == "named gzip":
        return _gzip(content, level, filename="t10k-images-idx3-ubyte")
    if kind == "two members":
        cut = draw(st.integers(0, len(content)))
        return _gzip(content[:cut], level) + _gzip(content[cut:], level)
    if kind == "gzip of gzip":
        return _gzip(_gzip(content, level), level)
    data = bytearray(_gzip(content, level))
    if kind == "truncated gzip":
        del data[draw(st.integers(0, len(data) - 1)):]
    elif kind == "flipped gzip":
        data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif kind == "zero padding":
        data += bytes(draw(st.integers(1, 64)))
    elif kind == "trailing garbage":
        data += draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


class FileCase(bytes):
    """File bytes with a short repr: hypothesis prints failing examples, and some are megabytes."""

    def __repr__(self):
        return f"FileCase({len(self)} bytes: {bytes(self[:48])!r}{'...' if len(self) > 48 else ''})"


@st.composite
def idx_files(draw):
    """The bytes of a file: any of the above, stacked."""
    content = draw(damaged(idx_bytes(draw(arrays()))))
    return FileCase(draw(packed(content)))


def _what(error: BaseException) -> str:
    """The kind of an error, for hypothesis' statistics (--hypothesis-show-statistics)."""
    problem = getattr(error, "problem", str(error))
    return type(error).__name__ + ": " + " ".join(word for word in problem.split()[:3] if not any(c.isdigit() for c in word))


# ---- read_idx ---------------------------------------------------------------------------------
def check_read(path: Path, data: bytes):
    outcome, peak = traced(read_idx, path)
    compressed = data[:2] == b"\x1f\x8b"
    decoded = gunzip(data) if compressed else data
    expected = reference_parse(decoded) if decoded is not None else None
    event("read" if not isinstance(outcome, BaseException) else f"refused: {_what(outcome)}")
    if isinstance(outcome, BaseException):
        assert isinstance(outcome, DataFileError), f"{type(outcome).__name__}: {outcome}"
        message = str(outcome)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        assert expected is None, f"a valid file was refused: {message}"
    else:
        assert expected is not None, f"an invalid file was read as {outcome.shape} {outcome.dtype}"
        assert outcome.dtype == expected.dtype.newbyteorder("=") and outcome.dtype.isnative
        assert outcome.shape == expected.shape and outcome.flags.writeable
        np.testing.assert_array_equal(outcome, expected)      # NaN equals NaN here
    # Memory: at most about what the header implies, and never more than the file really holds.
    holds = gunzip_prefix(data) if compressed else data
    assert peak <= 2 * min(len(holds), header_implies(holds)) + SLACK, (peak, len(holds), header_implies(holds))


@settings(max_examples=400, **SETTINGS)
@given(idx_files())
def test_any_bytes_load_exactly_or_raise_one_data_file_error(data):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "train-images-idx3-ubyte.gz"
        path.write_bytes(data)
        check_read(path, data)


@settings(max_examples=100, **SETTINGS)
@given(st.lists(HOSTILE_DIMS, min_size=1, max_size=8), st.sampled_from(sorted(SPEC_DTYPES)),
       st.binary(max_size=256), st.booleans())
def test_hostile_headers_never_allocate_what_they_claim(dims, code, body, compress):
    content = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body
    data = _gzip(content, 6) if compress else content
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "t10k-labels-idx1-ubyte"
        path.write_bytes(data)
        check_read(path, data)


# ---- load_dataset on a directory ----------------------------------------------------------------
LABEL_VALUES = st.sampled_from([0, 1, 2, 9, 10, 255, -1, -128, 9999, 10000, 30_000_000, 2**31 - 1, -2**31])


@st.composite
def image_arrays(draw):
    """Mostly plausible images ((N, H, W) or (N, C, H, W), N >= 1), now and then not."""
    pixels = draw(st.sampled_from([0x08, 0x08, 0x08, 0x0D, 0x0E, 0x09, 0x0B]))
    ndim = draw(st.sampled_from([3, 3, 4]) if draw(st.integers(0, 9)) else st.sampled_from([1, 2, 5]))
    sizes = st.integers(1, 4) if draw(st.integers(0, 7)) else st.integers(0, 4)
    shape = [draw(st.integers(1, 8) if draw(st.integers(0, 7)) else st.just(0))]
    shape += [draw(sizes) for _ in range(ndim - 1)]
    return draw(arrays(code=pixels, shape=shape, plausible=True))


@st.composite
def labels_for(draw, count: int):
    """Mostly one small class number per image; now and then hostile values, dtype, shape or length."""
    code = draw(st.sampled_from([0x08, 0x08, 0x08, 0x09, 0x0B, 0x0C, 0x0D]))
    dtype = np.dtype(SPEC_DTYPES[code]).newbyteorder("=")
    if draw(st.integers(0, 9)) == 0:
        return draw(arrays(code=code))
    value = st.integers(0, 9) if draw(st.integers(0, 3)) else st.one_of(st.integers(0, 9), LABEL_VALUES)
    values = draw(st.lists(value, min_size=count, max_size=count))
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = [min(max(v, int(info.min)), int(info.max)) for v in values]
    return np.array(values).astype(dtype)


@st.composite
def idx_directories(draw):
    """(directory name, {file name: file bytes}) for an images/labels pair or two."""
    name = draw(st.sampled_from(["mnist", "fashion-mnist", "mine"]))
    files = {}
    for prefix in draw(st.sampled_from([("t10k",), ("train",), ("train", "t10k")])):
        images = draw(image_arrays())
        labels = draw(labels_for(images.shape[0]))
        for part, array in (("images", images), ("labels", labels)):
            content = idx_bytes(array)
            if draw(st.integers(0, 9)) == 0:            # now and then a damaged file too
                content = draw(damaged(content))
            gz = draw(st.booleans())
            ndim = 3 if part == "images" else 1
            files[f"{prefix}-{part}-idx{ndim}-ubyte" + (".gz" if gz else "")] = _gzip(content, 1) if gz else content
    return name, files


def check_splits(data, name):
    assert data.num_classes == len(data.class_names) <= MAX_CLASSES
    if name in CLASS_NAMES:
        assert data.class_names == CLASS_NAMES[name]
    for split in (data.train, data.validation, data.test):
        x, y = split
        assert x.dtype == np.float32 and x.ndim == 4 and x.shape[1:] == data.image_shape
        assert y.dtype == np.int64 and y.shape == (x.shape[0],)
        if x.size:
            assert np.isfinite(x).all() and 0.0 <= x.min() and x.max() <= 1.0
        if y.size:
            assert 0 <= y.min() and y.max() < data.num_classes
    assert data.train.num_examples >= 1 and 0 not in data.image_shape


@settings(max_examples=300, **SETTINGS)
@given(idx_directories())
def test_hostile_directory_loads_within_the_contract_or_names_a_file(case):
    name, files = case
    with tempfile.TemporaryDirectory() as root:
        directory = Path(root) / name
        directory.mkdir()
        for filename, data in files.items():
            (directory / filename).write_bytes(data)
        outcome, peak = traced(load_dataset, directory)
        event("loaded" if not isinstance(outcome, BaseException) else f"refused: {_what(outcome)}")
        if isinstance(outcome, BaseException):
            assert isinstance(outcome, DataFileError), f"{type(outcome).__name__}: {outcome}"
            message = str(outcome)
            assert "\n" not in message and any(message.startswith(f"{directory / f}: ") for f in files), message
        else:
            check_splits(outcome, name)
    held = sum(max(len(data), len(gunzip_prefix(data))) for data in files.values())
    # float32 images (4x uint8), int64 labels (8x), their splits: a few dozen times the data at most.
    assert peak <= 48 * held + 2 * SLACK, (peak, held)


def test_reference_parse_agrees_with_write_idx(tmp_path):
    """The reference reading used above is itself right about valid files."""
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    np.testing.assert_array_equal(reference_parse(write_idx(tmp_path / "a", array).read_bytes()), array)
    assert reference_parse(write_idx(tmp_path / "b", array).read_bytes()[:-1]) is None
