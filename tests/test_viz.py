"""draw_graph / graph_dot: the autograd graph of one step as DOT text, SVG or PNG."""
import re
import shutil

import numpy as np
import pytest

import scratchgen as sg
from scratchgen import Tensor, nn
from scratchgen.viz import graph_dot

HAVE_DOT = shutil.which("dot") is not None


def small_step():
    """A linear layer, a sigmoid-BCE loss: x (4, 3) -> logits (4, 2) -> scalar loss."""
    rng = np.random.default_rng(0)
    layer = nn.Linear(3, 2, rng=0, dtype=np.float64)
    layer.weight.name = "weight"
    x = Tensor(rng.standard_normal((4, 3)))
    x.name = "x"
    target = rng.integers(0, 2, (4, 2)).astype(np.float64)
    logits = layer(x)
    loss = sg.sigmoid_bce_with_logits(logits, target, reduction="batch_sum")
    return loss, layer


def test_dot_text_names_every_op_and_shape():
    loss, layer = small_step()
    text = graph_dot(loss)
    assert text.startswith("digraph autograd {") and text.rstrip().endswith("}")
    for op in ("linear", "sigmoid_bce_with_logits"):
        assert f'label="{op}' in text
    for shape in ("(4, 3) float64", "(2, 3) float64", "(2,) float64", "(4, 2) float64", "() float64"):
        assert shape in text, shape
    assert '"weight\\n(2, 3) float64\\nleaf, requires grad"' in text
    assert '"x\\n(4, 3) float64\\nleaf, no grad"' in text
    assert "non-leaf, requires grad" in text  # the logits and the loss
    # Every edge joins declared nodes, inputs go into ops, and the ops into their outputs.
    declared = set(re.findall(r"^  (\w+) \[", text, re.M))
    edges = re.findall(r"^  (\w+) -> (\w+)", text, re.M)
    assert edges and all(a in declared and b in declared for a, b in edges)
    assert all(b.startswith("op") or a.startswith("op") for a, b in edges)


def test_constants_and_argument_order_are_shown():
    a = Tensor(np.ones((2, 2)), requires_grad=True)
    text = graph_dot(sg.sub(a, np.zeros((2, 2))))
    assert "constant (2, 2) float64" in text
    assert 'label="0"' in text and 'label="1"' in text


def test_a_graph_freed_by_backward_still_draws_and_says_so():
    loss, _ = small_step()
    loss.backward()
    text = graph_dot(loss)
    assert "(freed)" in text and "dashed" in text and "linear" in text
    kept, _ = small_step()
    kept.backward(retain_graph=True)
    assert "(freed)" not in graph_dot(kept)


def test_a_deep_graph_draws_without_recursion():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(5000):  # deeper than Python's recursion limit
        y = y * 1.0
    assert graph_dot(y).count("label=\"mul") == 5000


def test_names_with_quotes_are_escaped():
    x = Tensor(np.ones(2), requires_grad=True)
    x.name = 'say "hi"\\'
    assert 'say \\"hi\\"\\\\' in graph_dot(sg.exp(x))


def test_without_dot_the_dot_text_is_written_and_returned(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    loss, _ = small_step()
    with pytest.warns(UserWarning, match="not installed.*wrote the DOT text"):
        written = sg.draw_graph(loss, str(tmp_path / "graph.svg"))
    assert written == str(tmp_path / "graph.dot")
    assert open(written).read() == graph_dot(loss)
    assert sg.draw_graph(loss, str(tmp_path / "g.dot")).endswith("g.dot")
    with pytest.raises(ValueError, match="no extension"):
        sg.draw_graph(loss, str(tmp_path / "graph"))


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz `dot` is not installed (apt install graphviz)")
@pytest.mark.parametrize("extension, magic", [("svg", b"<?xml"), ("png", b"\x89PNG")])
def test_svg_and_png_through_graphviz(tmp_path, extension, magic):
    loss, _ = small_step()
    path = str(tmp_path / f"graph.{extension}")
    assert sg.draw_graph(loss, path) == path
    content = open(path, "rb").read()
    assert content.startswith(magic)
    if extension == "svg":
        assert b"sigmoid_bce_with_logits" in content and b"(4, 3) float64" in content
