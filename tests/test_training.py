"""The shared training loop: exact resume, Ctrl-C checkpoints, divergence errors, checkpoint checks."""
import json
import os
import signal

import numpy as np
import pytest

import scratchgen as sg
from scratchgen import nn, optim
from scratchgen.checkpoint import CheckpointError, load_into, read_checkpoint
from scratchgen.data import load_dataset
from scratchgen.models.base import DataInfo, GenerativeModel
from scratchgen.training import Trainer, TrainOptions


class TinyDenoiser(GenerativeModel):
    """A linear denoising autoencoder: uses the noise generator, Adam state and the data order."""

    cli_name = "tiny"

    def __init__(self, features, hidden=6, seed=0, lr=1e-2, interrupt_at=None):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.encoder = nn.Linear(features, hidden, rng=rng)
        self.decoder = nn.Linear(hidden, features, rng=rng)
        self.optimizers = {"adam": optim.Adam(self.parameters(), lr=lr)}
        self.interrupt_at, self.calls = interrupt_at, 0

    def loss(self, x, noise):
        x = sg.Tensor(x.reshape(len(x), -1))
        logits = self.decoder(sg.tanh(self.encoder(x + sg.Tensor(noise))))
        return sg.sigmoid_bce_with_logits(logits, x)

    def train_step(self, x, y, rng):
        self.calls += 1
        if self.interrupt_at is not None and self.calls == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives in the middle of this step
        noise = rng.normal(0, 0.1, x.reshape(len(x), -1).shape).astype(np.float32)
        loss = self.loss(x, noise)
        self.optimizers["adam"].zero_grad()
        loss.backward()
        self.optimizers["adam"].step()
        return {"loss": loss.item()}

    def evaluate(self, x, y, rng):
        with sg.no_grad():
            return {"loss": self.loss(x, np.zeros(x.reshape(len(x), -1).shape, np.float32)).item()}


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", num_examples=300, seed=0)


def options(tmp_path, name, epochs, **kwargs):
    return TrainOptions(epochs=epochs, batch_size=32, seed=3, binarize="dynamic", out_dir=str(tmp_path / name),
                        progress=False, pictures=False, **kwargs)


def weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def test_two_epochs_equal_one_plus_resume_plus_one_bit_for_bit(tmp_path, data):
    features = int(np.prod(data.image_shape))
    straight = TinyDenoiser(features)
    Trainer(straight, data, options(tmp_path, "straight", 2)).fit()

    first = TinyDenoiser(features)
    Trainer(first, data, options(tmp_path, "resumed", 1)).fit()
    second = TinyDenoiser(features, seed=99)  # different init: everything must come from the checkpoint
    trainer = Trainer(second, data, options(tmp_path, "resumed", 2))
    trainer.resume()
    trainer.fit()
    for key, value in weights(straight).items():
        np.testing.assert_array_equal(value, weights(second)[key], err_msg=key)


def test_ctrl_c_inside_a_step_checkpoints_after_that_step_and_resume_is_exact(tmp_path, data):
    features = int(np.prod(data.image_shape))
    straight = TinyDenoiser(features)
    Trainer(straight, data, options(tmp_path, "straight", 2)).fit()

    interrupted = TinyDenoiser(features, interrupt_at=13)  # inside the second epoch (8 batches of 32 per epoch)
    with pytest.raises(KeyboardInterrupt):
        Trainer(interrupted, data, options(tmp_path, "interrupted", 2)).fit()
    meta, _, _, _ = read_checkpoint(str(tmp_path / "interrupted" / "checkpoint.npz"))
    assert (meta["epoch"], meta["batch_in_epoch"], meta["step"]) == (1, 5, 13)  # step 13 finished first

    resumed = TinyDenoiser(features, seed=5)
    trainer = Trainer(resumed, data, options(tmp_path, "interrupted", 2))
    trainer.resume()
    trainer.fit()
    for key, value in weights(straight).items():
        np.testing.assert_array_equal(value, weights(resumed)[key], err_msg=key)


def test_outputs_metrics_json_and_csv(tmp_path, data):
    model = TinyDenoiser(int(np.prod(data.image_shape)))
    history = Trainer(model, data, options(tmp_path, "run", 2)).fit()
    assert history[1]["train_loss"] < history[0]["train_loss"] * 1.05
    results = json.load(open(tmp_path / "run" / "metrics.json"))
    assert results["epochs"] == 2 and "loss" in results["test"]
    assert open(tmp_path / "run" / "metrics.csv").readline().startswith("epoch,")


def test_a_diverging_loss_stops_training_with_a_clear_error(tmp_path, data):
    model = TinyDenoiser(int(np.prod(data.image_shape)), lr=1e30)
    model.train_step = lambda x, y, rng: {"loss": float("nan")}
    with pytest.raises(FloatingPointError, match="loss 'loss' is nan at epoch 1, step 1"):
        Trainer(model, data, options(tmp_path, "nan", 1)).fit()


def test_checkpoints_of_another_model_or_shape_are_refused(tmp_path, data):
    features = int(np.prod(data.image_shape))
    model = TinyDenoiser(features)
    Trainer(model, data, options(tmp_path, "run", 1)).fit()
    path = str(tmp_path / "run" / "checkpoint.npz")
    wider = TinyDenoiser(features, hidden=7)
    with pytest.raises(CheckpointError, match=r"encoder.weight has shape \(6, 64\) in the checkpoint but \(7, 64\)"):
        load_into(wider, path)
    other = TinyDenoiser(features)
    other.cli_name = "vae"
    with pytest.raises(CheckpointError, match="checkpoint is of model 'tiny', cannot load into 'vae'"):
        load_into(other, path)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(open(path, "rb").read()[:100])
    with pytest.raises(CheckpointError, match="broken.npz: not a readable scratchgen checkpoint"):
        load_into(model, str(broken))
