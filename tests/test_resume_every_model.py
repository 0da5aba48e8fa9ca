"""Every registered model resumes exactly through the command line.

`scratchgen train MODEL --epochs 2` against `--epochs 1`, then `--resume --epochs 2`: every array
of the final checkpoint (weights, buffers, optimiser state, the loop's per-step losses) and the
per-epoch history in metrics.json must be identical (numpy backend). This is what catches state
that lives outside the checkpoint: a GAN's discriminator-step counter, an RBM's recent-data buffer,
an autoencoder's code distribution. A model added to the registry is tested here automatically.
"""
import json
import os

import numpy as np
import pytest

from scratchgen.cli import main
from scratchgen.models import MODEL_REGISTRY

# Small networks, so every model runs in about a second; d_steps 3 exercises the GAN's counter.
SMALL = {
    "gan": ["--hidden", "32", "--d-steps", "3"], "dcgan": ["--width", "8", "--d-steps", "3"],
    "cgan": ["--width", "8", "--d-steps", "3"], "lapgan": ["--hidden", "32", "--features", "4"],
    "srgan": ["--features", "4", "--width", "4", "--d-steps", "3"], "conv-ae": ["--channels", "4,8"],
    "conv-vae": ["--channels", "4,8", "--hidden", "16"], "dbn": ["--hidden", "32,16"], "bm": ["--hidden", "4"],
    "m2": ["--hidden", "32", "--num-labels", "20", "--labelled-batch", "10"],
}
TINY_TEXT = ["--hidden", "16", "--layers", "1", "--heads", "2", "--feedforward", "32"]
SMALL.update({"bert": ["--vocab-size", "64", "--max-len", "24", *TINY_TEXT],
              "bert-classifier": ["--vocab-size", "64", "--max-len", "24", "--encoder-init", "random", *TINY_TEXT],
              "charlm": ["--context", "16", *TINY_TEXT]})
# The text models read text: a tiny file of each kind they take, written beside the runs.
TEXT = {"bert": ("pairs", "pairs.txt", "the dog barked at the moon\nthe cat slept by the fire\na bird sang\n\n"
                                       "the farmer planted corn\nrain fell on the fields\nthe corn grew tall\n"),
        "bert-classifier": ("labelled", "labels.tsv", "animal\tthe dog barked\nanimal\tthe cat slept\n"
                                                      "plant\tthe corn grew\nplant\tthe tree fell\n" * 3),
        "charlm": ("stream", "stream.txt", "".join(f"{w}: a kind of {w}\n" for w in ("dog", "cat", "cow", "hen") * 15))}
TIMING = ("seconds", "examples_per_second")


def dataset(name, folder):
    """``--dataset`` for model ``name``: synthetic images, or a tiny text file of the kind it reads."""
    if name == "memnet":
        return "babi-1"  # generated stories (scratchgen/data/babi.py): no file needed
    if name not in TEXT:
        return "synthetic"
    kind, filename, text = TEXT[name]
    path = folder / filename
    path.write_text(text)
    return f"{kind}:{path}"


def run(name, out, *extra):
    argv = ["train", name, "--dataset", dataset(name, out.parent), "--batch-size", "16", "--max-batches", "3",
            "--seed", "2", "--no-progress", "--no-pictures", "--out", str(out), *SMALL.get(name, []), *extra]
    assert main(argv) == 0, argv


def contents(out):
    with np.load(os.path.join(out, "checkpoint.npz"), allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files if k != "__meta__"}
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    history = [{k: v for k, v in record.items() if k not in TIMING} for record in metrics["history"]]
    return arrays, history, metrics["test"]


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_two_epochs_equal_one_plus_resume_plus_one(tmp_path, capsys, name):
    run(name, tmp_path / "straight", "--epochs", "2")
    run(name, tmp_path / "resumed", "--epochs", "1")
    run(name, tmp_path / "resumed", "--epochs", "2", "--resume")
    capsys.readouterr()
    (expected, expected_history, expected_test), (got, history, test) = contents(tmp_path / "straight"), contents(tmp_path / "resumed")
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=f"{name}: {key}")
    assert history == expected_history and test == expected_test


@pytest.mark.parametrize("name", ["vae", "rbm", "dcgan"])
def test_resume_is_exact_on_the_numba_backend_too(tmp_path, capsys, name):
    """Numba's loops split work statically by thread count, so a fixed thread count (1 here, as CI
    pins it) repeats bit for bit, and resume is exact on the numba backend as well."""
    pytest.importorskip("numba", reason="the numba backend needs Numba")
    run(name, tmp_path / "straight", "--epochs", "2", "--backend", "numba")
    run(name, tmp_path / "resumed", "--epochs", "1", "--backend", "numba")
    run(name, tmp_path / "resumed", "--epochs", "2", "--resume", "--backend", "numba")
    capsys.readouterr()
    (expected, expected_history, _), (got, history, _) = contents(tmp_path / "straight"), contents(tmp_path / "resumed")
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=f"{name} (numba): {key}")
    assert history == expected_history
