"""Data for scratchgen: IDX files, named datasets, downloads, binarisation and minibatches.

    idx.py         read_idx / write_idx: the MNIST file format, strictly validated
    splits.py      Split, DatasetSplits, train_val_test_split (seeded, disjoint)
    datasets.py    load_dataset("digits" | "synthetic" | "mnist" | "fashion-mnist" | a directory);
                   search_report(name): where a dataset was found, or where it was looked for
    download.py    download_dataset: mirrors, checksums, atomic writes (urllib only)
    synthetic.py   make_synthetic: a tiny deterministic bars-and-blobs dataset for tests
    text.py        text as uint8 bytes: WordNet's glosses (Debian wordnet-base) and UTF-8 files, as
                   sentence pairs, byte streams or labelled sentences (load_text_dataset)
    tokenizer.py   WordPieceTokenizer: a vocabulary learnt by byte-pair merges, [CLS] [SEP] [MASK] ...
    transforms.py  binarize ("none" | "static" | "dynamic"), one_hot, flatten_images
    batches.py     BatchIterator / iterate_batches: seeded, resumable shuffling

Typical use::

    data = load_dataset("mnist", root="/data", seed=0)      # data.train.x: (N, 1, 28, 28) float32
    batches = BatchIterator(data.train.x, data.train.y, batch_size=128, rng=np.random.default_rng(0))
    noise = np.random.default_rng(1)
    for epoch in range(10):
        for xb, yb in batches:                                # a new order every epoch
            xb = binarize(xb, "dynamic", noise)               # a fresh binary draw every time
"""
from .batches import BatchIterator, iterate_batches
from .datasets import (
    CLASS_NAMES,
    DATASET_NAMES,
    MAX_CLASSES,
    dataset_dirs,
    find_idx_files,
    load_dataset,
    search_report,
)
from .download import (
    DEFAULT_MIRRORS,
    REMOTE_FILES,
    ChecksumError,
    DownloadError,
    DownloadInterrupted,
    RemoteFile,
    default_data_root,
    download_dataset,
    download_file,
    file_digests,
    verify_file,
)
from .idx import MAX_IDX_BYTES, DataFileError, read_idx, write_idx
from .splits import DatasetSplits, Split, train_val_test_split
from .synthetic import make_synthetic, synthetic_prototypes
from .text import LEXNAMES, TEXT_DATASET_NAMES, decode_texts, encode_texts, load_text_dataset, read_wordnet
from .tokenizer import SPECIAL_TOKENS, WordPieceTokenizer
from .transforms import BINARIZE_MODES, binarize, flatten_images, one_hot

__all__ = [
    "BatchIterator", "iterate_batches",
    "CLASS_NAMES", "DATASET_NAMES", "MAX_CLASSES", "dataset_dirs", "find_idx_files", "load_dataset", "search_report",
    "DEFAULT_MIRRORS", "REMOTE_FILES", "ChecksumError", "DownloadError", "DownloadInterrupted", "RemoteFile",
    "default_data_root", "download_dataset", "download_file", "file_digests", "verify_file",
    "DataFileError", "MAX_IDX_BYTES", "read_idx", "write_idx",
    "DatasetSplits", "Split", "train_val_test_split",
    "make_synthetic", "synthetic_prototypes",
    "LEXNAMES", "TEXT_DATASET_NAMES", "decode_texts", "encode_texts", "load_text_dataset", "read_wordnet",
    "SPECIAL_TOKENS", "WordPieceTokenizer",
    "BINARIZE_MODES", "binarize", "flatten_images", "one_hot",
]
