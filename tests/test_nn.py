"""Modules, layers and initialisers: registration, state dicts and checkpoints, train/eval, init statistics."""
import copy
import math

import numpy as np
import pytest

import scratchgen as sg
from scratchgen import Tensor, gradcheck, nn
from scratchgen.nn import init


class TwoLayer(nn.Module):
    def __init__(self, rng=0, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.encoder = nn.Sequential(nn.Linear(4, 3, rng=rng, dtype=dtype), nn.Tanh())
        self.head = nn.Linear(3, 2, rng=rng, dtype=dtype)
        self.scale = nn.Parameter(np.ones(2, dtype=dtype))
        self.register_buffer("count", np.zeros(1, dtype=dtype))

    def forward(self, x):
        return self.head(self.encoder(x)) * self.scale


# ---- registration ------------------------------------------------------------------------------------
def test_parameters_buffers_and_modules_are_registered_by_assignment():
    model = TwoLayer()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["scale", "encoder.0.weight", "encoder.0.bias", "head.weight", "head.bias"]
    assert [n for n, _ in model.named_buffers()] == ["count"]
    assert model.num_parameters() == 2 + 4 * 3 + 3 + 3 * 2 + 2
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in model.parameters())
    assert [n for n, _ in model.named_modules()] == ["", "encoder", "encoder.0", "encoder.1", "head"]


def test_reassigning_and_deleting_attributes_updates_the_registry():
    layer = nn.Linear(3, 2, rng=0)
    layer.bias = None  # a plain attribute now, no longer a parameter
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    assert layer.bias is None
    del layer.weight
    assert layer.parameters() == []
    with pytest.raises(AttributeError, match="Linear has no attribute 'weight'"):
        layer.weight


def test_shared_parameter_is_listed_once_but_saved_under_every_name():
    a = nn.Linear(3, 3, rng=0)
    b = nn.Linear(3, 3, rng=1)
    b.weight = a.weight  # tied weights
    model = nn.Sequential(a, b)
    assert len(model.parameters()) == 3
    assert set(model.state_dict()) == {"0.weight", "0.bias", "1.weight", "1.bias"}


def test_forgetting_super_init_gives_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Broken()


def test_train_eval_is_recursive_and_zero_grad_clears():
    model = TwoLayer()
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model(np.ones((5, 4), np.float32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_repr_is_readable():
    text = repr(nn.Sequential(nn.Linear(784, 400, rng=0), nn.LeakyReLU(0.2), nn.Dropout(0.3)))
    assert text.splitlines() == [
        "Sequential(",
        "  (0): Linear(in_features=784, out_features=400, bias=True)",
        "  (1): LeakyReLU(slope=0.2)",
        "  (2): Dropout(p=0.3)",
        ")",
    ]


# ---- state dicts and checkpoints -----------------------------------------------------------------------
def test_state_dict_round_trip_through_npz_without_pickle(tmp_path):
    source, target = TwoLayer(rng=0), TwoLayer(rng=1)
    source.count[...] = 7.0
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    assert not np.allclose(source(x).data, target(x).data)
    path = tmp_path / "model.npz"
    source.save(path)
    with np.load(path, allow_pickle=False) as archive:  # a plain-array file
        assert sorted(archive.files) == sorted(source.state_dict())
    weight = target.head.weight
    target.load(path)
    assert target.head.weight is weight  # loaded in place: optimisers keep their parameters
    np.testing.assert_array_equal(source(x).data, target(x).data)
    assert target.count[0] == 7.0


def test_state_dict_is_a_copy():
    model = TwoLayer()
    state = model.state_dict()
    state["head.bias"] += 1.0
    assert np.all(model.head.bias.data == 0.0)


def test_strict_load_names_missing_unexpected_and_mismatched_keys():
    model = TwoLayer()
    state = model.state_dict()
    del state["head.bias"]
    state["extra.weight"] = np.zeros(3, np.float32)
    state["encoder.0.weight"] = np.zeros((3, 5), np.float32)
    before = model.encoder[0].weight.data.copy()
    with pytest.raises(nn.StateDictError) as error:
        model.load_state_dict(state)
    message = str(error.value)
    assert "missing keys ['head.bias']" in message
    assert "unexpected keys ['extra.weight']" in message
    assert "'encoder.0.weight'" in message and "(3, 5)" in message and "(3, 4)" in message
    np.testing.assert_array_equal(model.encoder[0].weight.data, before)  # nothing was changed


def test_non_strict_load_reports_and_loads_what_matches():
    model, other = TwoLayer(rng=0), TwoLayer(rng=1)
    state = other.state_dict()
    del state["head.bias"]
    state["extra"] = np.zeros(1, np.float32)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(model.head.weight.data, other.head.weight.data)
    with pytest.raises(ValueError, match="shape mismatch for 'head.weight'"):  # shapes are checked even then
        model.load_state_dict({"head.weight": np.zeros((1, 1), np.float32)}, strict=False)


def test_load_casts_float64_checkpoint_into_float32_model():
    model = TwoLayer(dtype=np.float32)
    state = {k: v.astype(np.float64) + 1 for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert model.head.weight.dtype == np.float32
    np.testing.assert_allclose(model.head.weight.data, state["head.weight"], rtol=1e-6)


def test_to_dtype_casts_parameters_and_buffers_in_place_of_the_objects():
    model = TwoLayer(dtype=np.float32)
    weight = model.head.weight
    model.to(dtype=np.float64).to("cpu")
    assert model.head.weight is weight and weight.dtype == np.float64
    assert model.count.dtype == np.float64
    assert all(p.dtype == np.float64 for p in model.parameters())
    with pytest.raises(ValueError, match="unknown device"):
        model.to("tpu")


def test_deepcopy_gives_an_independent_model():
    model = TwoLayer()
    clone = copy.deepcopy(model)
    clone.head.weight.data += 1
    assert not np.allclose(clone.head.weight.data, model.head.weight.data)
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in model.named_parameters()]


# ---- layers ----------------------------------------------------------------------------------------
def test_linear_shape_error_names_the_layer_and_both_sizes():
    layer = nn.Linear(784, 400, rng=0)
    with pytest.raises(ValueError, match=r"Linear\(784 -> 400\): expected input of shape \(N, 784\), got \(2, 785\) \(785 features, 784 expected\)"):
        layer(np.zeros((2, 785), np.float32))
    with pytest.raises(ValueError, match=r"got \(785,\)"):
        layer(np.zeros(785, np.float32))


def test_linear_refuses_mixed_dtypes():
    with pytest.raises(TypeError, match="mix floating dtypes"):
        nn.Linear(3, 2, rng=0)(Tensor(np.zeros((1, 3))))  # float64 input, float32 layer


def test_same_seed_same_model():
    a = nn.Sequential(nn.Linear(5, 4, rng=3), nn.Linear(4, 2, rng=4))
    b = nn.Sequential(nn.Linear(5, 4, rng=3), nn.Linear(4, 2, rng=4))
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.data, pb.data)


def test_sequential_gradcheck_wrt_input_and_parameters_float64():
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Linear(3, 5, rng=rng, dtype=np.float64), nn.Tanh(),
        nn.Linear(5, 4, rng=rng, dtype=np.float64), nn.Softplus(),
        nn.Linear(4, 2, rng=rng, dtype=np.float64), nn.Sigmoid(),
    )
    for p in model.parameters():  # nonzero biases so the check also sees them
        p.data += 0.1 * rng.standard_normal(p.shape)
    x = rng.standard_normal((4, 3))
    gradcheck(lambda inp: model(inp), [x])
    gradcheck(lambda inp, *params: model(inp), [Tensor(x), *model.parameters()])


def test_activation_modules_match_ops_and_shape_layers_round_trip():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 12)))
    for module, op in [(nn.Sigmoid(), sg.sigmoid), (nn.Tanh(), sg.tanh), (nn.ReLU(), sg.relu), (nn.Softplus(), sg.softplus)]:
        np.testing.assert_array_equal(module(x).data, op(x).data)
    np.testing.assert_array_equal(nn.LeakyReLU(0.2)(x).data, sg.leaky_relu(x, 0.2).data)
    images = nn.Unflatten(1, (3, 2, 2))(x)
    assert images.shape == (2, 3, 2, 2)
    assert nn.Reshape((3, 4))(x).shape == (2, 3, 4)
    np.testing.assert_array_equal(nn.Flatten()(images).data, x.data)
    with pytest.raises(ValueError, match="Unflatten"):
        nn.Unflatten(1, (5, 5))(x)


def test_conv_layers_shapes_and_gradcheck():
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=rng, dtype=np.float64)
    up = nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1, rng=rng, dtype=np.float64)
    assert conv.weight.shape == (3, 2, 3, 3) and up.weight.shape == (3, 2, 4, 4)
    x = rng.standard_normal((2, 2, 6, 6))
    h = conv(Tensor(x))
    assert h.shape == (2, 3, 3, 3)
    assert up(h).shape == (2, 2, 6, 6)
    conv.bias.data += 0.1
    up.bias.data -= 0.1
    model = nn.Sequential(conv, nn.Tanh(), up)
    gradcheck(lambda inp, *params: model(inp), [Tensor(x, requires_grad=True), *model.parameters()], mode="directions")
    with pytest.raises(ValueError, match=r"Conv2d\(2 -> 3\): expected input of shape \(N, 2, H, W\), got \(2, 4, 6, 6\)"):
        conv(Tensor(np.zeros((2, 4, 6, 6))))


# ---- train / eval behaviour --------------------------------------------------------------------------
def test_dropout_is_active_in_training_and_identity_in_eval():
    layer = nn.Dropout(0.5, rng=0)
    x = Tensor(np.ones((200, 50), np.float32))
    y = layer(x).data
    assert set(np.unique(y)) <= {0.0, 2.0}  # inverted dropout scales kept units by 1/(1-p)
    assert 0.4 < (y == 0).mean() < 0.6
    layer.eval()
    assert np.array_equal(layer(x).data, x.data)
    mask = np.zeros((200, 50), dtype=bool)
    mask[:, 0] = True
    np.testing.assert_array_equal(layer.train()(x, mask=mask).data, np.where(mask, 2.0, 0.0))


def test_batchnorm_uses_batch_statistics_in_training_and_running_ones_in_eval():
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(3, momentum=0.5)
    x = (5.0 + 2.0 * rng.standard_normal((64, 3))).astype(np.float32)
    y = bn(Tensor(x)).data
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=0), 1.0, atol=1e-3)
    # running = (1 - momentum) * running + momentum * batch statistic
    np.testing.assert_allclose(bn.running_mean, 0.5 * x.mean(axis=0), rtol=1e-5)
    assert np.all(bn.running_var > 1.0)
    bn.eval()
    running_mean, running_var = bn.running_mean.copy(), bn.running_var.copy()
    y_eval = bn(Tensor(x)).data
    expected = (x - running_mean) / np.sqrt(running_var + bn.eps)
    np.testing.assert_allclose(y_eval, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean, running_mean)  # eval does not update
    assert set(bn.state_dict()) == {"gamma", "beta", "running_mean", "running_var"}


def test_batchnorm2d_checks_channels_and_normalises_per_channel():
    bn = nn.BatchNorm2d(2)
    x = np.random.default_rng(1).standard_normal((4, 2, 3, 3)) * 3 + 1
    y = bn(Tensor(x.astype(np.float32))).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    with pytest.raises(ValueError, match=r"BatchNorm2d\(2\)"):
        bn(Tensor(np.zeros((4, 3, 3, 3), np.float32)))


# ---- initialisers ----------------------------------------------------------------------------------
def test_fans_of_linear_and_conv_weights():
    assert init.compute_fans((400, 784)) == (784, 400)
    assert init.compute_fans((16, 8, 3, 3)) == (72, 144)  # Conv2d (C_out, C_in, kH, kW)
    layer = nn.ConvTranspose2d(8, 4, 4, rng=0)  # weight (C_in, C_out, kH, kW) with fans given explicitly
    bound = math.sqrt(6.0 / (8 * 16 + 4 * 16))
    assert np.abs(layer.weight.data).max() <= bound


@pytest.mark.parametrize("name, shape, expected_std", [
    ("glorot_uniform", (300, 500), math.sqrt(2.0 / 800)),
    ("glorot_normal", (300, 500), math.sqrt(2.0 / 800)),
    ("he_uniform", (300, 500), math.sqrt(2.0 / 500)),
    ("he_normal", (300, 500), math.sqrt(2.0 / 500)),
    ("he_normal", (64, 32, 3, 3), math.sqrt(2.0 / (32 * 9))),
    ("glorot_uniform", (64, 32, 3, 3), math.sqrt(2.0 / (32 * 9 + 64 * 9))),
])
def test_initialiser_statistics_follow_the_fans(name, shape, expected_std):
    w = init.get_initializer(name)(shape, rng=0, dtype=np.float64)
    assert w.shape == shape
    assert abs(w.mean()) < 3 * expected_std / math.sqrt(w.size) + 1e-12
    assert abs(w.std() / expected_std - 1) < 0.02
    if name.endswith("uniform"):
        assert np.abs(w).max() <= math.sqrt(3) * expected_std


def test_gains_and_leaky_he_and_fan_out_mode():
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    w = init.he_normal((400, 600), nonlinearity="leaky_relu", slope=0.2, mode="fan_out", rng=1, dtype=np.float64)
    assert w.std() == pytest.approx(math.sqrt(2 / 1.04) / math.sqrt(400), rel=0.02)
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="unknown initialiser 'glorot'"):
        nn.Linear(3, 2, init="glorot")


def test_float32_and_float64_models_from_one_seed_agree():
    w32 = init.glorot_normal((5, 7), rng=4, dtype=np.float32)
    w64 = init.glorot_normal((5, 7), rng=4, dtype=np.float64)
    assert w32.dtype == np.float32 and w64.dtype == np.float64
    np.testing.assert_allclose(w32, w64, rtol=1e-6)
    np.testing.assert_array_equal(init.zeros((2, 3)), 0.0)
    np.testing.assert_array_equal(init.ones((2,), dtype=np.float64), 1.0)
    assert init.normal((1000, 100), std=0.01, rng=0).std() == pytest.approx(0.01, rel=0.02)


def test_batchnorm_module_gradcheck_in_training_and_without_affine():
    rng = np.random.default_rng(3)
    model = nn.Sequential(nn.Linear(3, 4, rng=rng, dtype=np.float64), nn.BatchNorm1d(4, dtype=np.float64), nn.Tanh())
    model[1].gamma.data[...] = rng.uniform(0.5, 2.0, 4)
    model[1].beta.data[...] = rng.standard_normal(4)
    x = rng.standard_normal((6, 3))
    gradcheck(lambda inp, *params: model(inp), [Tensor(x, requires_grad=True), *model.parameters()])
    plain = nn.BatchNorm2d(2, affine=False, dtype=np.float64)
    assert plain.parameters() == [] and set(plain.state_dict()) == {"running_mean", "running_var"}
    gradcheck(plain, [rng.standard_normal((3, 2, 2, 2))])


def test_save_without_extension_then_load_the_same_path(tmp_path):
    source, target = TwoLayer(rng=0), TwoLayer(rng=1)
    source.save(tmp_path / "ckpt")  # np.savez appends .npz
    target.load(tmp_path / "ckpt")
    np.testing.assert_array_equal(source.head.weight.data, target.head.weight.data)
    with pytest.raises(TypeError, match="buffer 'count' must be a raw array"):
        target.count = Tensor(np.zeros(1, np.float32))
