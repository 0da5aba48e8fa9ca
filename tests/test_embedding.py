"""embedding and nn.Embedding: gather forward, scatter-add backward with repeated ids, torch cross-check, errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchgen as sg
from scratchgen import Tensor, gradcheck, nn

TORCH_REASON = "the PyTorch cross-checks need torch (pip install torch); scratchgen itself never imports it"


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.lists(st.integers(1, 4), min_size=0, max_size=3), st.integers(0, 2**16))
def test_embedding_gradchecks(vocab, dim, ids_shape, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, ids_shape)  # small vocabularies: ids repeat
    gradcheck(lambda w: sg.embedding(ids, w), [rng.standard_normal((vocab, dim))])


def test_repeated_ids_add_up():
    weight = Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    ids = np.array([[1, 1, 1], [3, 1, 0]])
    y = sg.embedding(ids, weight)
    np.testing.assert_array_equal(y.data, weight.data[ids])
    y.backward(np.ones((2, 3, 3)))
    np.testing.assert_array_equal(weight.grad[:, 0], [1, 4, 0, 1])  # id 1 four times, id 2 never


def test_padding_idx_gets_no_gradient():
    weight = Tensor(np.random.default_rng(0).standard_normal((5, 2)), requires_grad=True)
    y = sg.embedding(np.array([0, 2, 0, 4]), weight, padding_idx=-5)
    y.backward(np.ones((4, 2)))
    np.testing.assert_array_equal(weight.grad, [[0, 0], [0, 0], [1, 1], [0, 0], [1, 1]])
    module = nn.Embedding(5, 2, padding_idx=1, rng=0)
    np.testing.assert_array_equal(module.weight.data[1], 0)
    assert module.weight.dtype == np.float32


def test_embedding_matches_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    rng = np.random.default_rng(1)
    w, ids = rng.standard_normal((7, 4)), rng.integers(0, 7, (3, 5))
    grad = rng.standard_normal((3, 5, 4))
    for padding_idx in (None, 2):
        weight = Tensor(w, requires_grad=True)
        y = sg.embedding(ids, weight, padding_idx=padding_idx)
        y.backward(grad)
        tw = torch.tensor(w, requires_grad=True)
        ty = torch.nn.functional.embedding(torch.tensor(ids), tw, padding_idx=padding_idx)
        ty.backward(torch.tensor(grad))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(weight.grad, tw.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_embedding_module_gradchecks_and_is_seeded():
    module = nn.Embedding(6, 3, rng=2, dtype=np.float64)
    np.testing.assert_array_equal(module.weight.data, nn.Embedding(6, 3, rng=2, dtype=np.float64).weight.data)
    ids = np.array([[0, 5, 5], [1, 0, 5]])
    gradcheck(lambda w: module(ids), [module.weight])
    assert module(Tensor(ids)).shape == (2, 3, 3)  # an integer Tensor of ids works too


def test_embedding_errors():
    weight = Tensor(np.zeros((10, 2)))
    with pytest.raises(IndexError, match=r"^embedding: id 12 at index \(1, 0\) is out of range for 10 embeddings "
                                         r"\(ids must lie in \[0, 9\]\)$"):
        sg.embedding(np.array([[1, 2], [12, 3]]), weight)
    with pytest.raises(IndexError, match=r"embedding: id -1 at index \(0,\)"):
        sg.embedding(np.array([-1, 2]), weight)
    with pytest.raises(TypeError, match=r"^embedding: ids must be integers, got dtype float64 \(shape \(2,\)\)$"):
        sg.embedding(np.array([1.0, 2.0]), weight)
    with pytest.raises(ValueError, match=r"embedding: weight must be \(num_embeddings, embedding_dim\)"):
        sg.embedding(np.array([1]), Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match=r"Embedding: padding_idx 7 is out of range for 5 embeddings"):
        nn.Embedding(5, 2, padding_idx=7)
