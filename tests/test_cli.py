"""The scratchgen command: train / sample / eval / gradcheck / info, and errors that speak to a person."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import scratchgen as sg
from scratchgen import nn, optim
from scratchgen.cli import main
from scratchgen.models.base import MODEL_REGISTRY, GenerativeModel, register_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LinearAutoencoder(GenerativeModel):
    def __init__(self, features, hidden, lr, rng, shape):
        super().__init__()
        self.shape = shape
        self.encoder = nn.Linear(features, hidden, rng=rng)
        self.decoder = nn.Linear(hidden, features, rng=rng)
        self.optimizers = {"adam": optim.Adam(self.parameters(), lr=lr)}

    def _loss(self, x):
        x = sg.Tensor(x.reshape(len(x), -1))
        return sg.sigmoid_bce_with_logits(self.decoder(sg.tanh(self.encoder(x))), x)

    def train_step(self, x, y, rng):
        loss = self._loss(x)
        self.optimizers["adam"].zero_grad()
        loss.backward()
        self.optimizers["adam"].step()
        return {"loss": loss.item()}

    def evaluate(self, x, y, rng):
        with sg.no_grad():
            return {"loss": self._loss(x).item()}

    def sample(self, n, rng, y=None):
        with sg.no_grad():
            h = sg.Tensor(rng.standard_normal((n, self.encoder.weight.shape[0])).astype(np.float32))
            return sg.sigmoid(self.decoder(h)).data.reshape((n,) + self.shape)


@pytest.fixture
def test_model():
    @register_model("test-linear-ae", family="test", description="a linear autoencoder for CLI tests",
                     defaults={"hidden": 5, "lr": 0.01, "epochs": 1, "batch_size": 50})
    def build(config, data_info, rng):
        return LinearAutoencoder(data_info.num_features, config["hidden"], config["lr"], rng, data_info.image_shape)

    yield "test-linear-ae"
    del MODEL_REGISTRY["test-linear-ae"]


def test_train_sample_eval_round_trip(tmp_path, test_model, capsys, monkeypatch):
    monkeypatch.setenv("SCRATCHGEN_CACHE", str(tmp_path / "cache"))  # eval trains its sample-quality classifier there
    out = str(tmp_path / "run")
    code = main(["train", test_model, "--dataset", "synthetic", "--epochs", "2", "--hidden", "4", "--out", out, "--no-progress", "--no-pictures"])
    assert code == 0
    assert {"checkpoint.npz", "config.json", "metrics.json", "metrics.csv"} <= set(os.listdir(out))
    assert json.load(open(os.path.join(out, "config.json")))["config"]["hidden"] == 4
    assert main(["sample", os.path.join(out, "checkpoint.npz"), "--n", "9"]) == 0
    assert os.path.exists(os.path.join(out, "samples.png"))
    capsys.readouterr()
    assert main(["eval", os.path.join(out, "checkpoint.npz"), "--quick"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert "evaluate_loss" in metrics and "reconstruction_mse_per_pixel" not in metrics  # no reconstruct() here
    assert metrics["classes_covered"] >= 1 and os.path.exists(tmp_path / "cache" / "classifiers" / "synthetic.npz")


def test_resume_continues_from_the_checkpoint(tmp_path, test_model, capsys):
    out = str(tmp_path / "run")
    main(["train", test_model, "--dataset", "synthetic", "--epochs", "1", "--out", out, "--no-progress", "--no-pictures"])
    assert main(["train", test_model, "--dataset", "synthetic", "--epochs", "2", "--out", out, "--resume", "--no-progress", "--no-pictures"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert json.load(open(os.path.join(out, "metrics.json")))["epochs"] == 2


def test_unknown_model_and_dataset_list_the_valid_ones(tmp_path, test_model, capsys):
    assert main(["train", "no-such-model"]) == 2
    assert "valid models:" in capsys.readouterr().err
    assert main(["train", test_model, "--dataset", "no-such-data", "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no-such-data" in err and "digits" in err


def test_a_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "nothing.npz")]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err


def test_gradcheck_command_prints_a_table(capsys):
    assert main(["gradcheck", "linear", "sigmoid"]) == 0
    table = capsys.readouterr().out
    assert "linear" in table and "ok" in table


def test_module_entry_points_run():
    env = {**os.environ, "PYTHONPATH": ROOT}
    result = subprocess.run([sys.executable, "-m", "scratchgen.gradcheck", "exp", "matmul"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "matmul" in result.stdout
    result = subprocess.run([sys.executable, "-m", "scratchgen", "info"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "backend" in result.stdout and "datasets:" in result.stdout
