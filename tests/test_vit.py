"""The vision transformer: patches, augmentation, schedule, the network against PyTorch, gradchecks,
attention maps, and `scratchgen train vit` (resume bit for bit, eval, bad input)."""
import json
import math
import os

import numpy as np
import pytest

import scratchgen as sg
from scratchgen.cli import main
from scratchgen.data.augmentation import augment_images, random_horizontal_flip, random_shift
from scratchgen.gradcheck import run_cases
from scratchgen.models import DataInfo, build_model, load_model
from scratchgen.models.attention.vit import VisionTransformer, ViT, attention_maps, cls_attention, patchify, warmup_cosine
from scratchgen.models.attention.vit_pictures import attention_rollout

TINY = ["--dataset", "synthetic", "--patch", "4", "--dim", "8", "--depth", "1", "--heads", "2", "--mlp-dim", "8",
        "--batch-size", "50", "--max-batches", "3", "--seed", "2", "--no-progress", "--no-pictures"]

try:  # pictures are drawn only where matplotlib is installed (training goes on without them)
    import matplotlib  # noqa: F401
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False


def tiny_network(rng, **kwargs):
    options = dict(patch=2, dim=8, depth=2, heads=2, mlp_dim=10)
    options.update(kwargs)
    network = VisionTransformer((2, 4, 6), 3, rng=rng, dtype=np.float64, **options)
    for parameter in network.parameters():  # off LayerNorm's 1 / 0 and [CLS]'s 0
        parameter.data += 0.1 * rng.standard_normal(parameter.shape)
    return network


# ---- patches -----------------------------------------------------------------------------------------
def test_patchify_orders_patches_row_major_and_features_like_a_conv_weight():
    x = np.random.default_rng(0).random((2, 3, 4, 6))
    patches = patchify(x, 2)
    assert patches.shape == (2, 6, 12)
    for r in range(2):
        for c in range(3):
            np.testing.assert_array_equal(patches[:, r * 3 + c], x[:, :, 2 * r:2 * r + 2, 2 * c:2 * c + 2].reshape(2, -1))


def test_patch_embedding_equals_a_strided_convolution():
    rng = np.random.default_rng(1)
    network = tiny_network(rng)
    x = rng.random((3, 2, 4, 6))
    weight = network.patch_embedding.weight.numpy().reshape(8, 2, 2, 2)  # (D, C, P, P)
    conv = sg.conv2d(sg.Tensor(x), sg.Tensor(weight), sg.Tensor(network.patch_embedding.bias.numpy()), stride=2).numpy()
    tokens = network.embed(x).numpy()
    expected = conv.reshape(3, 8, 6).transpose(0, 2, 1) + network.positions.weight.numpy()[1:]
    np.testing.assert_allclose(tokens[:, 1:], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("patch", [5, 3])
def test_image_size_not_divisible_by_the_patch_size_is_one_line_naming_both(patch):
    with pytest.raises(ValueError, match=f"image size 28x28 is not divisible by the patch size {patch}"):
        VisionTransformer((1, 28, 28), 10, patch=patch)
    with pytest.raises(ValueError, match="not divisible by the patch size"):
        patchify(np.zeros((1, 1, 28, 28)), patch)


def test_cli_refuses_a_patch_size_that_does_not_tile_the_images(tmp_path, capsys):
    status = main(["train", "vit", *TINY[:2], "--patch", "3", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "image size 8x8 is not divisible by the patch size 3" in err and "Traceback" not in err


def test_wrong_image_shape_and_odd_options_are_refused():
    network = tiny_network(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"expected images \(N, 2, 4, 6\), got shape \(1, 2, 6, 4\)"):
        network(np.zeros((1, 2, 6, 4)))
    with pytest.raises(ValueError, match="dim 8 is not divisible by heads 3"):
        VisionTransformer((1, 8, 8), 10, patch=4, dim=8, heads=3)
    with pytest.raises(ValueError, match="ViT: weight_decay"):
        ViT((1, 8, 8), 10, patch=4, dim=8, depth=1, heads=2, weight_decay=-1.0)
    with pytest.raises(ValueError, match="ViT: shift"):
        ViT((1, 8, 8), 10, patch=4, dim=8, depth=1, heads=2, shift=-2)


# ---- augmentation ---------------------------------------------------------------------------------
def test_random_shift_moves_each_image_by_its_drawn_offset_and_fills_with_zeros():
    x = np.random.default_rng(0).random((5, 2, 6, 7)).astype(np.float32) + 1  # no zeros of its own
    shifted = random_shift(x, 2, np.random.default_rng(3))
    offsets = np.random.default_rng(3).integers(-2, 3, size=(5, 2))  # the documented draw
    for n, (dy, dx) in enumerate(offsets):
        expected = np.zeros_like(x[n])
        for i in range(6):
            for j in range(7):
                if 0 <= i + dy < 6 and 0 <= j + dx < 7:
                    expected[:, i, j] = x[n, :, i + dy, j + dx]
        np.testing.assert_array_equal(shifted[n], expected)


def test_flips_are_mirrors_drawn_one_uniform_per_image_and_augmentation_repeats_from_the_seed():
    x = np.random.default_rng(1).random((6, 1, 4, 4)).astype(np.float32)
    flipped = random_horizontal_flip(x, np.random.default_rng(5))
    chosen = np.random.default_rng(5).random(6) < 0.5
    np.testing.assert_array_equal(flipped[chosen], x[chosen][..., ::-1])
    np.testing.assert_array_equal(flipped[~chosen], x[~chosen])
    a = augment_images(x, np.random.default_rng(9), max_shift=1, flip=True)
    b = augment_images(x, np.random.default_rng(9), max_shift=1, flip=True)
    np.testing.assert_array_equal(a, b)
    assert augment_images(x, np.random.default_rng(9)) is x  # nothing asked: nothing drawn, nothing copied


def test_augmentation_refuses_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"random_shift: images must be \(N, C, H, W\)"):
        random_shift(np.zeros((4, 4)), 1, rng)
    with pytest.raises(TypeError, match="random_shift: images must be floating point"):
        random_shift(np.zeros((1, 1, 4, 4), np.uint8), 1, rng)
    with pytest.raises(ValueError, match="max_shift 4 must be smaller than the image size 4x4"):
        random_shift(np.zeros((1, 1, 4, 4)), 4, rng)
    with pytest.raises(TypeError, match="rng must be a np.random.Generator"):
        random_horizontal_flip(np.zeros((1, 1, 4, 4)), 0)


# ---- learning-rate schedule ---------------------------------------------------------------------------
def test_warmup_cosine_closed_form():
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10) == pytest.approx(0.5)
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.0)
    assert warmup_cosine(30, 100, 0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.3)))


# ---- the network: gradients, PyTorch, attention maps -----------------------------------------------
def test_gradcheck_of_the_vit_cross_entropy():
    assert run_cases(["vit_cross_entropy"])


def test_logits_and_gradients_equal_pytorch_on_the_same_weights():
    torch = pytest.importorskip("torch", reason="PyTorch is the peer this test compares with")
    from benchmarks.exp_vit import torch_twin

    rng = np.random.default_rng(0)
    network = tiny_network(rng)
    twin = torch_twin(network)
    x, y = rng.random((5, 2, 4, 6)), np.array([0, 1, 2, 1, 0])
    logits = network(x)
    sg.softmax_cross_entropy(logits, y, reduction="mean").backward()
    theirs = twin(torch.from_numpy(x))
    torch.nn.functional.cross_entropy(theirs, torch.from_numpy(y)).backward()
    np.testing.assert_allclose(logits.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
    grads = dict(twin.named_parameters())
    for name, parameter in network.named_parameters():
        np.testing.assert_allclose(parameter.grad, grads[name].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_attention_maps_equal_pytorchs_attention_weights_and_rows_sum_to_one():
    torch = pytest.importorskip("torch", reason="PyTorch is the peer this test compares with")
    from benchmarks.exp_vit import torch_twin

    rng = np.random.default_rng(2)
    network = tiny_network(rng)
    twin = torch_twin(network)
    x = rng.random((3, 2, 4, 6))
    maps = attention_maps(network, x)
    assert maps.shape == (3, 2, 2, 7, 7)
    np.testing.assert_allclose(maps.sum(axis=-1), 1.0, rtol=1e-12)
    with torch.no_grad():
        tokens = network.embed(x).numpy()
        for b, block in enumerate(twin.blocks):
            h = block.norm1(torch.from_numpy(tokens))
            _, weights = block.self_attn(h, h, h, need_weights=True, average_attn_weights=False)
            np.testing.assert_allclose(maps[:, b], weights.numpy(), rtol=1e-10, atol=1e-12)
            tokens = block(torch.from_numpy(tokens)).numpy()
    np.testing.assert_array_equal(cls_attention(network, x), maps[:, :, :, 0, :])


def test_attention_rollout_of_one_block_mixes_its_head_mean_with_the_identity():
    rng = np.random.default_rng(0)
    attention = rng.random((1, 2, 4, 4))
    attention /= attention.sum(axis=-1, keepdims=True)
    rollout = attention_rollout(attention)
    np.testing.assert_allclose(rollout, 0.5 * (attention[0].mean(axis=0) + np.eye(4)))
    two = attention_rollout(np.concatenate([attention, attention]))
    np.testing.assert_allclose(two, rollout @ rollout)
    np.testing.assert_allclose(two.sum(axis=1), 1.0)


def test_train_step_follows_the_planned_schedule_and_draws_augmentation_from_rng():
    model = ViT((1, 8, 8), 3, patch=4, dim=8, depth=1, heads=2, mlp_dim=8, lr=0.01, warmup_epochs=1.0, rng=0)
    x = np.random.default_rng(0).random((4, 1, 8, 8)).astype(np.float32)
    y = np.array([0, 1, 2, 0])
    model.train_step(x, y, np.random.default_rng(0))
    assert model.optimizers["classifier"].lr == 0.01  # no plan: the constant rate
    model.plan_training(epochs=2, steps_per_epoch=4)
    assert model.learning_rate(0) == pytest.approx(0.0025) and model.learning_rate(3) == pytest.approx(0.01)
    assert model.learning_rate(6) == pytest.approx(0.005)
    model.train_step(x, y, np.random.default_rng(0))
    assert model.optimizers["classifier"].lr == pytest.approx(model.learning_rate(1))


# ---- the command line --------------------------------------------------------------------------------
def arrays(path):
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files if k.startswith(("model/", "optimizer/"))}


def test_cli_one_epoch_then_resume_equals_two_epochs_bit_for_bit(tmp_path, capsys):
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    assert main(["train", "vit", *TINY, "--epochs", "2", "--out", straight]) == 0
    assert main(["train", "vit", *TINY, "--epochs", "1", "--out", resumed]) == 0
    assert main(["train", "vit", "--epochs", "2", "--max-batches", "3", "--out", resumed, "--resume", "--no-progress",
                 "--no-pictures"]) == 0
    expected, got = arrays(os.path.join(straight, "checkpoint.npz")), arrays(os.path.join(resumed, "checkpoint.npz"))
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    history = [json.load(open(os.path.join(d, "metrics.json")))["history"] for d in (straight, resumed)]
    assert [r["validation_accuracy"] for r in history[0]] == [r["validation_accuracy"] for r in history[1]]


def test_cli_eval_works_and_sample_says_a_classifier_does_not_sample(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "vit", *TINY[:-1], "--epochs", "1", "--out", out]) == 0  # pictures on
    assert os.path.exists(os.path.join(out, "cls_attention_final.png")) or not HAVE_MATPLOTLIB  # pictures need matplotlib
    checkpoint = os.path.join(out, "checkpoint.npz")
    model, meta = load_model(checkpoint)
    assert isinstance(model, ViT) and meta["model"] == "vit"
    capsys.readouterr()
    assert main(["eval", checkpoint]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) == {"evaluate_accuracy", "evaluate_cross_entropy"}
    assert main(["sample", checkpoint]) == 2
    err = capsys.readouterr().err
    assert "is a classifier" in err and len(err.strip().splitlines()) == 1


def test_vit_on_stories_of_word_ids_says_why_it_cannot_tile_them(tmp_path, capsys):
    assert main(["train", "vit", "--dataset", "babi-1", "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "image size 11x7 is not divisible by the patch size 4" in capsys.readouterr().err


def test_build_model_matches_the_cli_defaults():
    model = build_model("vit", {"dim": 8, "depth": 1, "heads": 2, "mlp_dim": 8}, DataInfo((1, 28, 28), 10),
                        np.random.default_rng(0))
    assert model.net.num_patches == 49 and model.shift == 2 and model.flip


def test_the_pytorch_twin_of_benchmarks_exp_vit_follows_the_same_protocol(tmp_path):
    """Same init, batches, augmentation draws, AdamW and learning rates: after three steps the PyTorch
    weights equal those of `scratchgen train vit` to float32 rounding."""
    torch = pytest.importorskip("torch", reason="PyTorch is the peer this test compares with")
    from benchmarks.exp_vit import torch_twin, train_twin

    torch.set_num_threads(1)
    out = str(tmp_path / "run")
    assert main(["train", "vit", *TINY, "--epochs", "1", "--lr", "0.01", "--out", out]) == 0
    ours, meta = load_model(os.path.join(out, "checkpoint.npz"))
    data = sg.data.load_dataset("synthetic", seed=2)
    initial = build_model("vit", {k: meta["config"][k] for k in ("patch", "dim", "depth", "heads", "mlp_dim", "lr")},
                          DataInfo(tuple(data.image_shape), data.num_classes), np.random.default_rng(2))
    twin = torch_twin(initial)
    train_twin(twin, data, initial.config, epochs=1, seed=2, batch_size=50, max_batches=3)
    theirs = {name: value.detach().numpy() for name, value in twin.state_dict().items()}
    moved, e = 0.0, ours.net.dim
    for name, value in ours.net.state_dict().items():
        moved = max(moved, float(np.abs(value - initial.net.state_dict()[name]).max()))
        mine = value
        if name.endswith("in_proj_bias"):
            # The key bias adds q.b_k to every score of a row: softmax does not see it, its true
            # gradient is 0, and Adam turns each side's rounding noise (~1e-9) into steps of size lr.
            mine, theirs[name] = np.delete(value, np.s_[e:2 * e]), np.delete(theirs[name], np.s_[e:2 * e])
        np.testing.assert_allclose(theirs[name], mine, rtol=1e-3, atol=2e-5, err_msg=name)
    assert moved > 1e-3  # the weights did move: the agreement is not that of two untrained copies


def test_the_pytorch_twin_resumes_where_it_stopped(tmp_path):
    """An interrupted twin run continued from its state file ends with the weights of one that ran
    straight through (the long ViT schedules of benchmarks/exp_vit.py span several sittings)."""
    torch = pytest.importorskip("torch", reason="PyTorch is the peer this test compares with")
    from benchmarks.exp_vit import torch_twin, train_twin

    torch.set_num_threads(1)
    data = sg.data.load_dataset("synthetic", seed=2)
    initial = build_model("vit", {"patch": 4, "dim": 8, "depth": 1, "heads": 2, "mlp_dim": 8, "lr": 0.01},
                          DataInfo(tuple(data.image_shape), data.num_classes), np.random.default_rng(2))
    straight = torch_twin(initial)
    train_twin(straight, data, initial.config, epochs=3, seed=2, batch_size=50, max_batches=2)

    class Stop(Exception):
        pass

    def stop_in_the_second_epoch(epoch, record):
        if epoch == 1:
            raise Stop

    state = str(tmp_path / "torch_state.npz")
    with pytest.raises(Stop):
        train_twin(torch_twin(initial), data, initial.config, epochs=3, seed=2, batch_size=50, max_batches=2,
                   after_epoch=stop_in_the_second_epoch, state_path=state)
    with pytest.raises(ValueError, match="torch_state.npz: written by a twin run with"):
        train_twin(torch_twin(initial), data, initial.config, epochs=4, seed=2, batch_size=50, max_batches=2,
                   state_path=state)  # another schedule: refused, not continued
    resumed = torch_twin(initial)
    history = train_twin(resumed, data, initial.config, epochs=3, seed=2, batch_size=50, max_batches=2, state_path=state)
    assert [record["epoch"] for record in history] == [1, 2, 3]
    expected = straight.state_dict()
    for name, value in resumed.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), expected[name].numpy(), err_msg=name)
