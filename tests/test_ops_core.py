"""Gradchecks of the core ops on hypothesis-drawn shapes, broadcasting and non-contiguous inputs."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchgen as sg
from scratchgen import Tensor, gradcheck

SETTINGS = settings(max_examples=15, deadline=None)


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast together (some axes 1 or missing on one side)."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    other = [1 if draw(st.booleans()) else s for s in shape]
    other = other[draw(st.integers(0, len(other) - 1)):]
    if draw(st.booleans()):
        return tuple(shape), tuple(other)
    return tuple(other), tuple(shape)


def arrays(shape, seed, low=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    return x if low is None else np.abs(x) + low


@SETTINGS
@given(broadcast_pair(), st.integers(0, 1000), st.sampled_from(["add", "sub", "mul", "div"]))
def test_binary_ops_with_broadcasting(shapes, seed, name):
    a = arrays(shapes[0], seed)
    b = arrays(shapes[1], seed + 1, low=0.5) if name == "div" else arrays(shapes[1], seed + 1)
    gradcheck(getattr(sg, name), [a, b])


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 1000))
def test_unary_ops_on_non_contiguous_inputs(rows, cols, seed):
    base = arrays((cols, rows), seed, low=0.3)
    x = Tensor(base.T, requires_grad=True)  # a transposed, non-contiguous view
    assert not x.data.flags["C_CONTIGUOUS"] or rows == 1 or cols == 1
    for fn in (sg.exp, sg.log, sg.sqrt, sg.sigmoid, sg.tanh, sg.softplus, sg.log_sigmoid, lambda t: t ** 2.5):
        x.grad = None
        gradcheck(fn, [x])


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.data(), st.integers(0, 1000))
def test_reductions_over_drawn_axes(shape, data, seed):
    ndim = len(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1), st.just(tuple(range(ndim)))))
    keepdims = data.draw(st.booleans())
    x = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) / 3.0  # no ties for max
    for fn in (sg.sum, sg.mean, sg.max):
        gradcheck(lambda t: fn(t, axis=axis, keepdims=keepdims), [x])


@SETTINGS
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5), st.integers(0, 1000), st.booleans())
def test_linear_and_matmul(batch, n_in, n_out, seed, transposed_weight):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, n_in))
    w = rng.standard_normal((n_in, n_out)).T if transposed_weight else rng.standard_normal((n_out, n_in))
    gradcheck(sg.linear, [x, w, rng.standard_normal(n_out)])
    gradcheck(sg.linear, [x, w])
    gradcheck(sg.matmul, [rng.standard_normal((2, batch, n_in)), rng.standard_normal((n_in, n_out))])


def test_shape_ops():
    rng = np.random.default_rng(0)
    gradcheck(lambda t: sg.reshape(t, (6, 2)), [rng.standard_normal((3, 4))])
    gradcheck(lambda t: sg.transpose(t, (1, 2, 0)), [rng.standard_normal((2, 3, 4))])
    gradcheck(lambda t: t[1:, ::2], [rng.standard_normal((3, 5))])
    gradcheck(lambda t: t[np.array([0, 0, 2])], [rng.standard_normal((3, 2))])  # repeated index adds up
    gradcheck(lambda t: t[t.data > 0], [rng.standard_normal((4, 3))])
    gradcheck(lambda a, b: sg.concatenate([a, b, a], axis=0), [rng.standard_normal((2, 3)), rng.standard_normal((1, 3))])
    gradcheck(lambda a, b: sg.stack([a, b], axis=2), [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))])


def test_softmax_family_and_clip():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4))
    for axis in (0, 1, -1):
        gradcheck(lambda t: sg.softmax(t, axis=axis), [x])
        gradcheck(lambda t: sg.log_softmax(t, axis=axis), [x])
    np.testing.assert_allclose(sg.softmax(Tensor(x)).data.sum(axis=-1), 1.0)
    gradcheck(lambda t: sg.clip(t, -0.5, 0.5), [np.array([-1.0, -0.3, 0.2, 0.7])])


def test_sigmoid_and_softplus_are_stable_at_extreme_inputs():
    z = np.array([-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4])
    y = sg.sigmoid(Tensor(z)).data
    assert np.all(np.isfinite(y)) and y[0] == 0.0 and y[-1] == 1.0
    np.testing.assert_allclose(y[2], np.exp(-40.0) / (1 + np.exp(-40.0)), rtol=1e-15)  # tiny values keep precision
    s = sg.softplus(Tensor(z)).data
    np.testing.assert_allclose(s[-1], 1e4)
    np.testing.assert_allclose(s[0], 0.0)
    np.testing.assert_allclose(sg.log_sigmoid(Tensor(z)).data[0], -1e4)


def test_bad_shapes_name_the_op_and_the_shapes():
    x = Tensor(np.zeros((2, 785)))
    w = Tensor(np.zeros((400, 784)))
    with pytest.raises(ValueError, match="linear: input has 785 features, weight expects 784"):
        sg.linear(x, w)
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) do not broadcast"):
        Tensor(np.zeros((2, 3))) + Tensor(np.zeros(4))
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not align"):
        sg.matmul(Tensor(np.zeros((2, 3))), Tensor(np.zeros((4, 5))))
    with pytest.raises(ValueError, match="reshape: cannot reshape an input of shape"):
        Tensor(np.zeros((2, 3))).reshape(4, 2)
    with pytest.raises(ValueError, match="mean: axis 3 is out of range"):
        sg.mean(Tensor(np.zeros((2, 3))), axis=3)


def test_an_mlp_loss_goes_down_on_a_fixed_problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4))
    target = np.sin(x @ rng.standard_normal((4, 1)))
    w1 = Tensor(rng.standard_normal((16, 4)) * 0.5, requires_grad=True)
    b1 = Tensor(np.zeros(16), requires_grad=True)
    w2 = Tensor(rng.standard_normal((1, 16)) * 0.5, requires_grad=True)
    b2 = Tensor(np.zeros(1), requires_grad=True)
    losses = []
    for _ in range(300):
        prediction = sg.linear(sg.tanh(sg.linear(Tensor(x), w1, b1)), w2, b2)
        loss = ((prediction - target) ** 2).mean()
        for p in (w1, b1, w2, b2):
            p.grad = None
        loss.backward()
        for p in (w1, b1, w2, b2):
            p.data -= 0.1 * p.grad
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


# ---- dtypes: refused where they would silently change the result's dtype ---------------------------
def test_linear_and_matmul_refuse_integer_and_complex_operands_by_name():
    w = Tensor(np.ones((3, 4), np.float32), requires_grad=True)
    with pytest.raises(TypeError, match=r"^linear: x has dtype int64; linear takes floating-point arrays"):
        sg.linear(np.ones((2, 4), np.int64), w)
    with pytest.raises(TypeError, match=r"^linear: x has dtype uint8"):
        sg.linear(Tensor(np.ones((2, 4), np.uint8)), w)
    with pytest.raises(TypeError, match=r"^linear: x has dtype complex128"):
        sg.linear(np.ones((2, 4), np.complex128), w)
    with pytest.raises(TypeError, match=r"^linear: bias has dtype int64"):
        sg.linear(np.ones((2, 4), np.float32), w, np.zeros(3, np.int64))
    with pytest.raises(TypeError, match=r"^matmul: b has dtype int64"):
        Tensor(np.ones((2, 3))) @ np.arange(6).reshape(3, 2)
    with pytest.raises(TypeError, match=r"^matmul: a has dtype bool"):
        sg.matmul(np.ones((2, 3), bool), Tensor(np.ones((3, 2))))
    # float operands of one dtype still work, and integer indices stay indices
    assert sg.linear(np.ones((2, 4), np.float32), w).dtype == np.float32
    assert Tensor(np.arange(6.0).reshape(3, 2))[np.array([0, 2])].shape == (2, 2)


def test_losses_refuse_complex_inputs_by_name():
    z = Tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(TypeError, match=r"^mse_loss: target has dtype complex128; losses take real numbers"):
        sg.mse_loss(z, np.ones((2, 3)) * (1 + 1j))
    with pytest.raises(TypeError, match=r"^sigmoid_bce_with_logits: logits has dtype complex64"):
        sg.sigmoid_bce_with_logits(np.zeros((2, 3), np.complex64), np.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"^gaussian_nll: logvar has dtype complex128"):
        sg.gaussian_nll(z, np.zeros((2, 3)), np.zeros(3, complex))
    with pytest.raises(TypeError, match=r"^softmax_cross_entropy: logits has dtype complex128"):
        sg.softmax_cross_entropy(Tensor(np.zeros((2, 3), complex)), np.array([0, 1]))
    with pytest.raises(TypeError, match=r"^gaussian_kl_standard: mu has dtype complex128"):
        sg.gaussian_kl_standard(np.zeros(2, complex), z[0, :2])
    # integer targets (pixels, class labels) are still fine
    assert np.isfinite(sg.sigmoid_bce_with_logits(z, np.ones((2, 3), np.uint8)).item())
    assert np.isfinite(sg.softmax_cross_entropy(z, np.array([0, 2])).item())


# ---- matmul with NumPy's semantics, 1-D operands included ------------------------------------------
@st.composite
def matmul_shapes(draw):
    """Shapes (a, b) that np.matmul accepts: 1-D vectors, matrices, broadcasting batch axes."""
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    a_kind, b_kind = draw(st.sampled_from(["vector", "matrix", "batched"])), draw(st.sampled_from(["vector", "matrix", "batched"]))
    a = {"vector": (k,), "matrix": (m, k), "batched": batch + (m, k)}[a_kind]
    b_batch = tuple(1 if draw(st.booleans()) else s for s in batch)[draw(st.integers(0, len(batch))):]
    b = {"vector": (k,), "matrix": (k, n), "batched": b_batch + (k, n)}[b_kind]
    return a, b


@SETTINGS
@given(matmul_shapes(), st.integers(0, 1000))
def test_matmul_follows_numpy_for_vectors_matrices_and_batches(shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    out = sg.matmul(Tensor(a), Tensor(b))
    expected = np.matmul(a, b)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-13, atol=1e-14)
    gradcheck(sg.matmul, [a, b])


def test_matmul_vector_cases_and_errors():
    rng = np.random.default_rng(0)
    v, w, B = Tensor(rng.standard_normal(3)), Tensor(rng.standard_normal(3)), Tensor(rng.standard_normal((3, 4)))
    assert (v @ B).shape == (4,) and (B.T @ v).shape == (4,) and (v @ w).shape == ()
    np.testing.assert_allclose((v @ w).item(), v.data @ w.data)
    with pytest.raises(ValueError, match=r"^matmul: batch dimensions \(2,\) and \(5,\) of shapes \(2, 3, 4\) and \(5, 4, 6\) do not broadcast$"):
        sg.matmul(Tensor(np.zeros((2, 3, 4))), Tensor(np.zeros((5, 4, 6))))
    with pytest.raises(ValueError, match=r"^matmul: shapes \(3,\) and \(4, 5\) do not align \(3 != 4\)$"):
        sg.matmul(Tensor(np.zeros(3)), Tensor(np.zeros((4, 5))))
    with pytest.raises(ValueError, match=r"^matmul: operands need at least 1 dimension"):
        sg.matmul(Tensor(np.float64(2.0)), Tensor(np.zeros(3)))
