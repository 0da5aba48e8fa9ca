"""The lectures' remaining models through the CLI: `scratchgen train hvae | fcvae | gmm | naive-bayes`,
resumed exactly (1 epoch + --resume + 1 epoch = 2 epochs, bit for bit, numpy backend; also from an
interruption in the middle of an epoch, where EM's and naive Bayes' half-accumulated statistics
must survive), then `sample` and `eval` from the checkpoint alone."""
import json
import os
import signal

import numpy as np
import pytest

from scratchgen.cli import main
from scratchgen.models import MODEL_REGISTRY

TINY = {
    "hvae": ["--hidden", "12", "--hidden2", "6", "--latent", "4", "--latent2", "2", "--hidden-layers", "1",
             "--kl-warmup", "7"],  # 5 steps per epoch: the warm-up's ramp crosses the resume
    "fcvae": ["--hidden", "12", "--latent", "3", "--classifier-epochs", "1", "--classifier-width", "2",
              "--classifier-features", "8"],
    "gmm": ["--components", "3"],
    "naive-bayes": [],
}
COMMON = ["--dataset", "synthetic", "--train-size", "160", "--batch-size", "32", "--seed", "3", "--no-progress",
          "--no-pictures"]
TIMING = ("seconds", "examples_per_second")


def _train(name, out, *extra):
    return main(["train", name, *COMMON, *TINY[name], "--out", str(out), *extra])


def _arrays(out):
    with np.load(os.path.join(out, "checkpoint.npz"), allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files if k.startswith(("model/", "optimizer/"))}


def _history(out):
    history = json.load(open(os.path.join(out, "metrics.json")))["history"]
    return [{k: v for k, v in record.items() if k not in TIMING} for record in history]


def _assert_same_run(a, b):
    expected, got = _arrays(a), _arrays(b)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    assert _history(a) == _history(b)


@pytest.mark.parametrize("name", sorted(TINY))
def test_one_epoch_then_resume_equals_two_epochs_bit_for_bit(name, tmp_path, capsys):
    assert name in MODEL_REGISTRY
    assert _train(name, tmp_path / "straight", "--epochs", "2") == 0
    assert _train(name, tmp_path / "resumed", "--epochs", "1") == 0
    assert _train(name, tmp_path / "resumed", "--epochs", "2", "--resume") == 0
    assert "resumed from" in capsys.readouterr().out
    _assert_same_run(tmp_path / "straight", tmp_path / "resumed")


@pytest.mark.parametrize("name", ["gmm", "naive-bayes"])
def test_an_interruption_inside_an_epoch_keeps_the_half_accumulated_statistics(name, tmp_path, monkeypatch, capsys):
    """A SIGINT during the third batch of epoch 2: the loop stops after that step and saves, mid-epoch."""
    assert _train(name, tmp_path / "straight", "--epochs", "2") == 0
    model_class = type(MODEL_REGISTRY[name].build({**MODEL_REGISTRY[name].defaults}, _info(), np.random.default_rng(0)))
    original, calls = model_class.train_step, []

    def interrupted_step(self, x, y, rng):
        calls.append(1)
        if len(calls) == 8:  # 5 batches per epoch: the 3rd batch of epoch 2
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, x, y, rng)

    monkeypatch.setattr(model_class, "train_step", interrupted_step)
    assert _train(name, tmp_path / "resumed", "--epochs", "2") == 130
    assert "in epoch 2 after batch 3 of 5" in capsys.readouterr().out
    monkeypatch.setattr(model_class, "train_step", original)
    assert _train(name, tmp_path / "resumed", "--epochs", "2", "--resume") == 0
    _assert_same_run(tmp_path / "straight", tmp_path / "resumed")


def _info():
    from scratchgen.models import DataInfo

    return DataInfo((1, 8, 8), 10)


@pytest.mark.parametrize("name", sorted(TINY))
def test_sample_and_eval_work_from_the_checkpoint_alone(name, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(name, out, "--epochs", "1") == 0
    assert main(["sample", str(out / "checkpoint.npz"), "--n", "9", "--out", str(tmp_path / "samples.png")]) == 0
    assert os.path.getsize(tmp_path / "samples.png") > 0
    capsys.readouterr()
    assert main(["eval", str(out / "checkpoint.npz"), "--quick"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert all(np.isfinite(v) for v in metrics.values() if isinstance(v, float))


def test_a_bad_option_is_one_line_and_exit_status_2(tmp_path, capsys):
    assert main(["train", "gmm", "--dataset", "synthetic", "--components", "0", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "components" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["train", "naive-bayes", "--dataset", "synthetic", "--alpha", "0", "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert "alpha must be > 0" in err and len(err.strip().splitlines()) == 1
