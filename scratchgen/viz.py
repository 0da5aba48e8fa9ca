"""The autograd graph as a picture: ``draw_graph(loss, "graph.svg")``.

What ``loss.backward()`` walks, drawn: a box for every op (its ``Function`` name), an ellipse
for every tensor (its ``name`` if set, shape, dtype; "leaf" or not; whether it requires grad),
and an arrow from each input to the op and from the op to its output, so the picture reads in
the direction of the forward pass and backward runs against the arrows. Inputs that are not
tensors (a constant array, a number) are small grey notes; ``None`` inputs are left out.

Colours: leaves that require grad (the parameters, whose ``.grad`` backward fills) are yellow,
tensors that require no grad (data, targets) grey, the tensor drawn from bold. An op whose
saved arrays were freed by a ``backward`` without ``retain_graph=True`` is drawn dashed and
marked "(freed)": the graph is still there to look at, it just cannot be walked twice.

The graph is found like ``Tensor.backward`` finds it: an iterative walk over ``_node.inputs``
(no recursion, so a 10,000-step graph draws too), here also through inputs that require no grad.
``graph_dot`` returns the Graphviz DOT text; ``draw_graph`` renders it with the ``dot`` program
when Graphviz is installed and otherwise writes the DOT text beside the requested path.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import warnings

import numpy as np

from .tensor import Tensor


def graph_dot(tensor: Tensor) -> str:
    """The graph that produced ``tensor``, as Graphviz DOT text (nodes numbered in the order found)."""
    lines = ["digraph autograd {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    names = {}  # id(tensor) -> DOT node name, given when first seen

    def name_of(t: Tensor) -> str:
        return names.setdefault(id(t), f"t{len(names)}")

    drawn, stack = set(), [tensor]
    while stack:
        t = stack.pop()
        if id(t) in drawn:
            continue
        drawn.add(id(t))
        name = name_of(t)
        lines.append(f"  {name} [{_tensor_style(t, is_root=t is tensor)}];")
        node = t._node
        if node is None:
            continue
        freed = node.ctx is None
        op = "op" + name[1:]
        label = _quote(node.function.name()) + ("\\n(freed)" if freed else "")
        lines.append(f'  {op} [shape=box, style="rounded,filled{",dashed" if freed else ""}", fillcolor="#cfe2f3", label="{label}"];')
        lines.append(f"  {op} -> {name};")
        many = sum(x is not None for x in node.inputs) > 1
        for position, x in enumerate(node.inputs):
            if x is None:
                continue
            edge = f' [label="{position}", fontsize=8]' if many else ""  # argument order matters (a - b)
            if isinstance(x, Tensor):
                lines.append(f"  {name_of(x)} -> {op}{edge};")
                stack.append(x)
            else:
                constant = f"c{name[1:]}_{position}"
                lines.append(f'  {constant} [shape=note, style=filled, fillcolor="#eeeeee", fontsize=8, label="{_quote(_describe_constant(x))}"];')
                lines.append(f"  {constant} -> {op}{edge};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_graph(tensor: Tensor, path: str) -> str:
    """Draw the graph that produced ``tensor`` into ``path`` and return the path written.

    ``path`` ending in .svg, .png or .pdf: rendered by Graphviz's ``dot`` program. If ``dot`` is not
    installed, the DOT text is written to ``path`` with its extension replaced by .dot instead, a
    warning says so, and that path is returned (render it later with ``dot -Tsvg FILE.dot -o
    FILE.svg``, or paste it into any Graphviz viewer). ``path`` ending in .dot or .gv: the text.
    """
    text = graph_dot(tensor)
    root, extension = os.path.splitext(path)
    extension = extension.lower().lstrip(".")
    if not extension:
        raise ValueError(f"draw_graph: {path!r} has no extension; use .svg, .png, .pdf or .dot")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if extension not in ("dot", "gv"):
        dot = shutil.which("dot")
        if dot is not None:
            done = subprocess.run([dot, f"-T{extension}", "-o", path], input=text.encode(), capture_output=True)
            if done.returncode != 0:
                raise RuntimeError(f"draw_graph: dot -T{extension} failed: {done.stderr.decode().strip()}")
            return path
        path = root + ".dot"
        warnings.warn(f"draw_graph: Graphviz's `dot` program is not installed (apt install graphviz, brew install "
                      f"graphviz); wrote the DOT text to {path} instead", stacklevel=2)
    with open(path, "w") as handle:
        handle.write(text)
    return path


def _tensor_style(t: Tensor, is_root: bool) -> str:
    kind = "leaf" if t.is_leaf else "non-leaf"
    grad = "requires grad" if t.requires_grad else "no grad"
    label = "\\n".join(
        ([_quote(t.name)] if t.name else []) + [f"{tuple(t.shape)} {t.dtype}", f"{kind}, {grad}"]
    )
    fill = "#fff2cc" if t.is_leaf and t.requires_grad else ("#ffffff" if t.requires_grad else "#eeeeee")
    return f'shape=ellipse, style="filled{",bold" if is_root else ""}", fillcolor="{fill}", label="{label}"'


def _describe_constant(x) -> str:
    if np.ndim(x) == 0 and not hasattr(x, "shape"):
        return f"constant {x!r}"[:40]
    return f"constant {tuple(np.shape(x))} {getattr(x, 'dtype', type(x).__name__)}"


def _quote(text: str) -> str:
    """Text inside a DOT double-quoted string: backslashes, quotes and newlines escaped."""
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
