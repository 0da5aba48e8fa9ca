"""The everyday ops a learner types, and the public API around them.

Gradchecks on hypothesis-drawn shapes (broadcasting, axes, keepdims, ddof), values against
NumPy, the documented conventions (ties in maximum/minimum/min, std's subgradient at 0), the
constructors, what ``from scratchgen import *`` exports, and NumPy / DLPack interop.
"""
import builtins
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchgen as sg
from scratchgen import Tensor, gradcheck

SETTINGS = settings(max_examples=15, deadline=None)
SEEDS = st.integers(0, 2**31 - 1)


@st.composite
def broadcast_shapes(draw, count=2):
    """``count`` shapes that broadcast together (axes of length 1 or missing on some of them)."""
    full = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    shapes = []
    for _ in range(count):
        shape = [1 if draw(st.booleans()) else s for s in full]
        shapes.append(tuple(shape[draw(st.integers(0, len(shape))):]))
    return shapes


@st.composite
def axes_of(draw, ndim):
    return draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                          st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple)))


def no_ties(rng, shape):
    """Distinct values (so max/min/maximum have a derivative everywhere in the finite differences)."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) + rng.uniform(0.1, 0.4, shape)) / 3.0


# ---- elementwise: where, maximum, minimum, log1p, square -------------------------------------------
@SETTINGS
@given(broadcast_shapes(count=3), SEEDS)
def test_where_gradchecks_and_matches_numpy(shapes, seed):
    rng = np.random.default_rng(seed)
    cond = rng.random(shapes[0]) < 0.5
    a, b = rng.standard_normal(shapes[1]), rng.standard_normal(shapes[2])
    np.testing.assert_array_equal(sg.where(cond, Tensor(a), Tensor(b)).data, np.where(cond, a, b))
    gradcheck(lambda x, y: sg.where(cond, x, y), [a, b])
    gradcheck(lambda x: sg.where(Tensor(cond), x, 0.0), [a])  # a number on one side, cond as a Tensor


def test_where_routes_the_gradient_and_refuses_non_boolean_conditions():
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([10.0]), requires_grad=True)
    sg.where(np.array([True, False, True]), a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [1, 0, 1])
    np.testing.assert_array_equal(b.grad, [1])  # the broadcast b collects every position it filled
    with pytest.raises(TypeError, match=r"^where: cond must be a boolean array \(e.g. x.data > 0\), got dtype float64"):
        sg.where(np.array([1.0, 0.0, 1.0]), a, b)
    with pytest.raises(ValueError, match=r"^where: shapes cond \(2,\), a \(3,\), b \(1,\) do not broadcast"):
        sg.where(np.array([True, False]), a, b)


@SETTINGS
@given(broadcast_shapes(), SEEDS, st.sampled_from(["maximum", "minimum"]))
def test_maximum_minimum_gradcheck_with_broadcasting(shapes, seed, name):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    fn = getattr(sg, name)
    np.testing.assert_array_equal(fn(Tensor(a), Tensor(b)).data, getattr(np, name)(a, b))
    gradcheck(fn, [a, b])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_split_the_gradient_at_ties(name):
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([1.0, 0.0, 5.0]), requires_grad=True)
    getattr(sg, name)(a, b).sum().backward()
    wins_a = [0.5, 1.0, 0.0] if name == "maximum" else [0.5, 0.0, 1.0]
    np.testing.assert_array_equal(a.grad, wins_a)
    np.testing.assert_array_equal(b.grad, 1 - np.array(wins_a))  # the two shares add up to g
    x = Tensor(np.array([-1.0, 2.0]), requires_grad=True)
    getattr(sg, name)(x, x).sum().backward()  # max(x, x) = x: both halves arrive at x
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_maximum_tie_convention_matches_torch():
    torch = pytest.importorskip("torch", reason="the cross-check against PyTorch needs torch")
    values_a, values_b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])
    for name in ("maximum", "minimum"):
        a, b = Tensor(values_a.copy(), requires_grad=True), Tensor(values_b.copy(), requires_grad=True)
        getattr(sg, name)(a, b).sum().backward()
        ta, tb = torch.tensor(values_a, requires_grad=True), torch.tensor(values_b, requires_grad=True)
        getattr(torch, name)(ta, tb).sum().backward()
        np.testing.assert_array_equal(a.grad, ta.grad.numpy())
        np.testing.assert_array_equal(b.grad, tb.grad.numpy())


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), SEEDS)
def test_log1p_and_square_gradcheck(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.9, 3.0, shape)
    np.testing.assert_allclose(sg.log1p(Tensor(x)).data, np.log1p(x), rtol=1e-15)
    gradcheck(sg.log1p, [x])
    np.testing.assert_array_equal(sg.square(Tensor(x)).data, x * x)
    gradcheck(sg.square, [x])


def test_log1p_keeps_tiny_values():
    x = Tensor(np.array([1e-20, -1e-30], np.float32), requires_grad=True)
    y = sg.log1p(x)
    np.testing.assert_array_equal(y.data, x.data)  # log(1 + x) would give 0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    assert y.dtype == np.float32


# ---- reductions: min, logsumexp, var, std ------------------------------------------------------------
@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.data(), SEEDS)
def test_min_and_logsumexp_over_drawn_axes(shape, data, seed):
    rng = np.random.default_rng(seed)
    axis, keepdims = data.draw(axes_of(len(shape))), data.draw(st.booleans())
    x = no_ties(rng, shape)
    np.testing.assert_array_equal(sg.min(Tensor(x), axis=axis, keepdims=keepdims).data, x.min(axis=axis, keepdims=keepdims))
    gradcheck(lambda t: sg.min(t, axis=axis, keepdims=keepdims), [x])
    z = rng.standard_normal(shape) * 3
    expected = np.log(np.exp(z).sum(axis=axis, keepdims=keepdims))
    np.testing.assert_allclose(sg.logsumexp(Tensor(z), axis=axis, keepdims=keepdims).data, expected, rtol=1e-13)
    gradcheck(lambda t: sg.logsumexp(t, axis=axis, keepdims=keepdims), [z])


def test_min_shares_ties_and_tensor_method():
    x = Tensor(np.array([[1.0, 1.0, 2.0], [0.0, 3.0, 4.0]]), requires_grad=True)
    x.min(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="min: cannot reduce an empty input"):
        sg.min(Tensor(np.zeros((0, 2))))


def test_logsumexp_is_stable():
    z = Tensor(np.array([[1000.0, 1000.0], [-1000.0, -np.inf]], np.float32), requires_grad=True)
    y = sg.logsumexp(z, axis=1)
    np.testing.assert_allclose(y.data, [1000 + np.log(2), -1000], rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(z.grad, [[0.5, 0.5], [1.0, 0.0]])
    all_minus_inf = Tensor(np.full((1, 3), -np.inf), requires_grad=True)
    with np.errstate(divide="ignore"):
        y = sg.logsumexp(all_minus_inf, axis=1)
    assert y.item() == -np.inf
    y.sum().backward()
    np.testing.assert_array_equal(all_minus_inf.grad, [[0.0, 0.0, 0.0]])  # not 0 / 0


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.data(), SEEDS)
def test_var_and_std_match_numpy_and_gradcheck(shape, data, seed):
    rng = np.random.default_rng(seed)
    axis, keepdims = data.draw(axes_of(len(shape))), data.draw(st.booleans())
    x = rng.standard_normal(shape)
    count = x.size // np.ones(shape).sum(axis=axis, keepdims=True).size
    ddof = data.draw(st.integers(0, min(1, count - 1)))
    for ours, theirs in ((sg.var, np.var), (sg.std, np.std)):
        got = ours(Tensor(x), axis=axis, keepdims=keepdims, ddof=ddof).data
        np.testing.assert_allclose(got, theirs(x, axis=axis, keepdims=keepdims, ddof=ddof), rtol=1e-12, atol=1e-15)
        if count > 1:  # a single element has std 0: the subgradient case, tested below
            gradcheck(lambda t: ours(t, axis=axis, keepdims=keepdims, ddof=ddof), [x])


def test_std_of_equal_values_has_gradient_zero_and_ddof_errors():
    x = Tensor(np.full((2, 3), 0.75), requires_grad=True)  # its mean is exactly 0.75: std exactly 0
    y = sg.std(x, axis=1)
    y.sum().backward()
    np.testing.assert_array_equal(y.data, [0.0, 0.0])
    np.testing.assert_array_equal(x.grad, np.zeros((2, 3)))  # a subgradient, not NaN
    with pytest.raises(ValueError, match=r"var: ddof=1 leaves no degrees of freedom for 1 element\(s\) per reduction"):
        sg.var(Tensor(np.zeros((3, 1))), axis=1, ddof=1)
    with pytest.raises(ValueError, match="std: axis 2 is out of range"):
        sg.std(Tensor(np.zeros((3, 1))), axis=2)


# ---- shape: squeeze, unsqueeze, broadcast_to -----------------------------------------------------
@SETTINGS
@given(st.lists(st.integers(1, 3), min_size=1, max_size=4), st.data(), SEEDS)
def test_squeeze_unsqueeze_broadcast_to(shape, data, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    ones = tuple(a for a, s in enumerate(shape) if s == 1)
    axis = data.draw(st.one_of(st.none(), st.sampled_from([ones] if ones else [None])))
    assert sg.squeeze(Tensor(x), axis).shape == np.squeeze(x, axis).shape
    gradcheck(lambda t: sg.squeeze(t, axis), [x])
    new_axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    assert sg.unsqueeze(Tensor(x), new_axis).shape == np.expand_dims(x, new_axis).shape
    gradcheck(lambda t: sg.unsqueeze(t, new_axis), [x])
    target = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2))) + tuple(
        data.draw(st.integers(1, 3)) if s == 1 else s for s in shape)
    np.testing.assert_array_equal(sg.broadcast_to(Tensor(x), target).data, np.broadcast_to(x, target))
    gradcheck(lambda t: sg.broadcast_to(t, target), [x])


def test_shape_op_errors():
    x = Tensor(np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match=r"^squeeze: axis 0 has length 2, not 1 \(input shape \(2, 1, 3\)\)"):
        sg.squeeze(x, 0)
    with pytest.raises(ValueError, match=r"^unsqueeze: axis 5 is out of range for an input of shape \(2, 1, 3\)"):
        sg.unsqueeze(x, 5)
    with pytest.raises(ValueError, match=r"^broadcast_to: cannot broadcast an input of shape \(2, 1, 3\) to \(2, 4, 2\)"):
        sg.broadcast_to(x, (2, 4, 2))
    with pytest.raises(ValueError, match=r"^broadcast_to: cannot broadcast an input of shape \(2, 1, 3\) to \(1, 3\)"):
        sg.broadcast_to(x, (1, 3))


# ---- constructors ------------------------------------------------------------------------------------
def test_constructors():
    z = sg.zeros((2, 3))
    assert z.shape == (2, 3) and z.dtype == np.float64 and not z.requires_grad and np.all(z.data == 0)
    o = sg.ones(4, dtype=np.float32, requires_grad=True)
    assert o.shape == (4,) and o.dtype == np.float32 and o.requires_grad and o.is_leaf
    like = sg.zeros_like(o)
    assert like.shape == (4,) and like.dtype == np.float32 and not like.requires_grad
    assert sg.ones_like(np.zeros((2, 2), np.int64)).dtype == np.int64
    assert sg.ones_like(Tensor(np.zeros(3)), dtype=np.float32).dtype == np.float32
    a = sg.randn((3, 2), rng=np.random.default_rng(5), dtype=np.float32, requires_grad=True)
    b = sg.randn((3, 2), rng=np.random.default_rng(5), dtype=np.float32)
    assert a.dtype == np.float32 and a.requires_grad and np.array_equal(a.data, b.data)
    np.testing.assert_array_equal(sg.randn(3, np.random.default_rng(1)).data, np.random.default_rng(1).standard_normal(3))
    with pytest.raises(TypeError, match=r"^randn: rng must be a numpy.random.Generator"):
        sg.randn((2,), rng=0)
    with pytest.raises(TypeError, match=r"^randn: dtype must be float32 or float64, got int64"):
        sg.randn((2,), rng=np.random.default_rng(0), dtype=np.int64)
    with pytest.raises(TypeError, match="only floating tensors can require grad"):
        sg.zeros(2, dtype=np.int64, requires_grad=True)


# ---- the public namespace ------------------------------------------------------------------------------
def test_star_import_exports_no_modules_and_shadows_no_builtins():
    namespace = {}
    exec("from scratchgen import *", namespace)
    namespace.pop("__builtins__", None)
    modules = sorted(name for name, value in namespace.items() if isinstance(value, types.ModuleType))
    assert not modules, f"modules star-exported: {modules}"
    for name in ("sum", "max", "min", "abs", "pow"):
        assert name not in namespace, name
        assert getattr(sg, name) is getattr(sg.ops, name)  # still reachable, qualified
        assert hasattr(builtins, name)
    for name in ("shape", "reduce", "conv", "tensor", "arithmetic", "losses", "nn", "optim", "models"):
        assert name not in namespace, name
    assert set(namespace) == set(sg.__all__)
    for name in ("where", "maximum", "minimum", "log1p", "logsumexp", "var", "std", "square", "squeeze",
                 "unsqueeze", "broadcast_to", "zeros", "ones", "zeros_like", "ones_like", "randn", "from_dlpack",
                 "Tensor", "no_grad", "gradcheck", "softmax_cross_entropy"):
        assert name in namespace, name


def test_every_op_is_listed_in_the_ops_table():
    import re

    doc = sg.ops.__doc__
    helpers = {"BERNOULLI_KL_EPS", "conv_output_size", "conv_transpose_output_size"}  # not ops
    unlisted = [name for name in list(sg.ops.__all__) + list(sg.ops.SHADOWS_BUILTINS)
                if name not in helpers and not re.search(rf"(?<![\w.]){name}(?![\w(])", doc)]
    assert not unlisted, f"ops not in the table of scratchgen/ops/__init__.py: {unlisted}"


# ---- interop: NumPy's array protocol and DLPack ------------------------------------------------------
def test_numpy_asarray_shares_memory_on_the_host():
    t = Tensor(np.arange(6.0).reshape(2, 3))
    view = np.asarray(t)
    assert np.shares_memory(view, t.data)
    view[0, 0] = 42.0
    assert t.data[0, 0] == 42.0
    assert np.asarray(t, dtype=np.float32).dtype == np.float32  # a requested dtype converts (a copy)


def test_from_dlpack_of_a_numpy_array_shares_memory():
    array = np.arange(4.0)
    t = sg.from_dlpack(array, requires_grad=True)
    assert isinstance(t, Tensor) and t.requires_grad and np.shares_memory(t.data, array)
    back = np.from_dlpack(t)  # and NumPy reads a Tensor through __dlpack__
    assert np.shares_memory(back, array)


def test_dlpack_round_trips_through_torch():
    torch = pytest.importorskip("torch", reason="the DLPack round trip needs torch")
    t = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    as_torch = torch.from_dlpack(t)  # no copy: a change on one side shows on the other
    as_torch[0, 0] = -1.0
    assert t.data[0, 0] == -1.0
    capsule_way = torch.utils.dlpack.from_dlpack(t.__dlpack__())
    assert capsule_way.data_ptr() == as_torch.data_ptr()
    back = sg.from_dlpack(torch.arange(4, dtype=torch.float64))
    assert back.dtype == np.float64 and np.array_equal(back.data, [0, 1, 2, 3])
    source = torch.zeros(3)
    shared = sg.from_dlpack(source)
    source[1] = 5.0
    assert shared.data[1] == 5.0
