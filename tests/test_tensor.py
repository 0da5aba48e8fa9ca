"""The autograd engine: backward, accumulation, graph freeing, no_grad, detach, anomaly mode."""
import numpy as np
import pytest

import scratchgen as sg
from scratchgen import Tensor


def leaf(shape, seed=0, dtype=np.float64):
    return Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=True)


def test_gradient_of_a_simple_expression_matches_hand_derivation():
    x = leaf((3,))
    y = (x * x + 3 * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3)


def test_a_tensor_used_twice_receives_both_gradients():
    x = leaf((2, 2))
    (x * x.exp()).sum().backward()
    np.testing.assert_allclose(x.grad, np.exp(x.data) * (1 + x.data))


def test_deep_graph_has_no_recursion_limit():
    x = leaf((4,))
    z = x
    for _ in range(50_000):
        z = z + 1.0
    z.sum().backward()
    np.testing.assert_allclose(x.grad, np.ones(4))


def test_leaves_accumulate_across_backward_calls():
    x = leaf((3,))
    (2 * x).sum().backward()
    (3 * x).sum().backward()
    np.testing.assert_allclose(x.grad, np.full(3, 5.0))
    x.zero_grad()
    assert x.grad is None


def test_backward_twice_through_a_freed_graph_raises():
    x = leaf((3,))
    y = (x.exp()).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward_that_accumulates():
    x = leaf((3,))
    y = (x.exp()).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * first)


def test_backward_needs_grad_for_non_scalar_outputs():
    x = leaf((3,))
    with pytest.raises(RuntimeError, match="single-element"):
        (x * 2).backward()
    (x * 2).backward(np.ones(3))
    np.testing.assert_allclose(x.grad, np.full(3, 2.0))


def test_no_grad_records_nothing_and_detach_cuts_the_graph():
    x = leaf((3,))
    with sg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    z = (x.detach() * x).sum()
    z.backward()
    np.testing.assert_allclose(x.grad, x.data)


def test_leaf_grad_is_a_fresh_writable_array():
    x = leaf((3,))
    y = leaf((3,), seed=1)
    (x + y).sum().backward()
    x.grad *= 2  # must not change y.grad, nor fail on a read-only broadcast view
    np.testing.assert_allclose(y.grad, np.ones(3))


def test_retain_grad_keeps_an_intermediate_gradient():
    x = leaf((3,))
    h = (x * 2).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)


def test_constants_and_int_tensors_get_no_gradient():
    x = leaf((3,))
    c = Tensor(np.arange(3.0))
    (x * c).sum().backward()
    assert c.grad is None
    with pytest.raises(TypeError, match="only floating"):
        Tensor(np.arange(3), requires_grad=True)


def test_mixed_float_dtypes_are_refused_with_the_op_name():
    a, b = leaf((2,), dtype=np.float32), leaf((2,), dtype=np.float64)
    with pytest.raises(TypeError, match="mul: inputs mix floating dtypes"):
        a * b


def test_float32_stays_float32_through_scalars():
    x = leaf((3,), dtype=np.float32)
    y = (x * 0.5 + 1.0).exp().sum()
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the NaN is the point
def test_detect_anomaly_names_the_op_in_forward():
    x = Tensor(np.array([1.0, -1.0]), requires_grad=True)
    with sg.detect_anomaly():
        with pytest.raises(sg.AnomalyError, match="log: forward produced 1 non-finite"):
            sg.log(x)


@pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")  # the inf is the point
def test_detect_anomaly_names_the_op_in_backward():
    x = Tensor(np.array([0.0, 4.0]), requires_grad=True)
    with sg.detect_anomaly():
        y = sg.sqrt(x).sum()
        with pytest.raises(sg.AnomalyError, match="sqrt: backward"):
            y.backward()


def test_without_anomaly_mode_nan_passes_silently_as_numpy_would():
    x = Tensor(np.array([-1.0]), requires_grad=True)
    with np.errstate(invalid="ignore"):
        assert np.isnan(sg.log(x).data).all()
