"""Baselines for the language model's bits per character: what a compressor and a unigram model get.

    python -m scratchgen.experiments.text_baselines [--dataset wordnet-stream] [--windows 2048]

The held-out text is what ``charlm``'s ``evaluate`` scores on the test split: the bytes its first
``--windows`` windows predict (a window's bytes 1..W-1; consecutive windows overlap by one byte, so
this is one contiguous stretch of the test text). On those bytes:

* unigram: the cross-entropy of the training text's byte frequencies (add-one), no context at all;
* xz alone: ``lzma`` at preset 9 | extreme on the held-out bytes, 8 |compressed| / |bytes|;
* xz given the training text: 8 (|xz(train + held-out)| - |xz(train)|) / |held-out|, the extra bits
  the compressor spends on the held-out text once it has seen the training text (what the model
  has seen too; LZMA's 64 MiB dictionary holds the whole of it).
"""
from __future__ import annotations

import argparse
import lzma
import sys
from typing import Dict, List, Optional

import numpy as np

from ..data import load_dataset

__all__ = ["held_out_bytes", "stream_bytes", "baselines", "main"]

XZ = {"format": lzma.FORMAT_XZ, "preset": 9 | lzma.PRESET_EXTREME}


def stream_bytes(windows: np.ndarray) -> bytes:
    """The contiguous text under windows (N, 1, 1, W) that overlap by one byte."""
    rows = windows[:, 0, 0]
    if len(rows) == 0:
        return b""
    return rows[0].tobytes() + b"".join(row[1:].tobytes() for row in rows[1:])


def held_out_bytes(windows: np.ndarray) -> bytes:
    """The bytes the windows predict: each window's bytes 1 .. W-1."""
    return b"".join(row[1:].tobytes() for row in windows[:, 0, 0])


def baselines(train: bytes, held_out: bytes) -> Dict[str, float]:
    """Bits per character of the three baselines of the module docstring."""
    counts = np.bincount(np.frombuffer(train, np.uint8), minlength=256) + 1.0
    probabilities = counts / counts.sum()
    unigram = float(-np.log2(probabilities[np.frombuffer(held_out, np.uint8)]).mean())
    alone = 8 * len(lzma.compress(held_out, **XZ)) / len(held_out)
    given = 8 * (len(lzma.compress(train + held_out, **XZ)) - len(lzma.compress(train, **XZ))) / len(held_out)
    return {"unigram_bits_per_character": unigram, "xz_alone_bits_per_character": alone,
            "xz_given_training_text_bits_per_character": given, "held_out_bytes": len(held_out),
            "training_bytes": len(train)}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scratchgen.experiments.text_baselines", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="wordnet-stream")
    parser.add_argument("--windows", type=int, default=2048, help="as charlm's eval_windows")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    data = load_dataset(args.dataset, root=args.data_root)
    result = baselines(stream_bytes(data.train.x), held_out_bytes(data.test.x[:args.windows]))
    for key, value in result.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
