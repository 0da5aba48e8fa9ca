"""The package's layers import downward only, and nothing forms an import cycle.

Every import statement counts, also the ones inside functions. The layers, bottom to top
(docs/architecture.md draws them):

    0  foundation     backend device info threads memory data/ plots progress metrics
    1  autograd       grad_mode tensor function gradcheck viz
    2  ops            ops/                (every op: NumPy reference kernel, backward, gradcheck case)
    3  nn, optim      nn/ optim
    4  kernels        scratchgen.kernels  (the kernels/ folder: Numba CPU, Numba CUDA, CuPy)
    5  training       checkpoint training (the one loop; it knows models only by their contract)
    6  models         models/             (grouped by family)
    7  evaluation     evaluation/
    8  experiments    experiments/
    9  entry points   cli __main__ gradcheck.__main__, and the package's own __init__ (the API)

A module may import its own layer or a lower one. The documented exceptions:
* ``tensor.py`` imports ``scratchgen.ops`` inside its operator overloads (``a + b`` is the ``add``
  op): the one place a lower layer calls up, lazily, so ``Tensor`` can have operators;
* ``backend.py`` loads ``scratchgen.kernels.<backend>`` by name with ``importlib`` when a backend
  is chosen (a registry loading its plug-ins; not an import statement, so not counted here).
"""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LAYERS = [
    ("scratchgen.backend", "scratchgen.device", "scratchgen.info", "scratchgen.data", "scratchgen.plots",
     "scratchgen.progress", "scratchgen.metrics", "scratchgen._source", "scratchgen.optional", "scratchgen.threads",
     "scratchgen.memory"),
    ("scratchgen.grad_mode", "scratchgen.tensor", "scratchgen.function", "scratchgen.gradcheck", "scratchgen.viz"),
    ("scratchgen.ops",),
    ("scratchgen.nn", "scratchgen.optim"),
    ("scratchgen.kernels",),
    ("scratchgen.checkpoint", "scratchgen.training"),
    ("scratchgen.models",),
    ("scratchgen.evaluation",),
    ("scratchgen.experiments",),
    ("scratchgen.cli", "scratchgen.__main__", "scratchgen.gradcheck.__main__", "scratchgen"),
]
ALLOWED_UPWARD = {("scratchgen.tensor", "scratchgen.ops")}


def layer_of(module: str) -> int:
    best, best_length = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS (and to docs/architecture.md)"
    return best


def modules():
    """{module name: file path} for scratchgen/ and kernels/ (installed as scratchgen.kernels)."""
    found = {}
    for folder, package in (("scratchgen", "scratchgen"), ("kernels", "scratchgen.kernels")):
        for directory, _, files in os.walk(os.path.join(ROOT, folder)):
            if "__pycache__" in directory:
                continue
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                relative = os.path.relpath(path, os.path.join(ROOT, folder))[:-3].replace(os.sep, ".")
                module = package if relative == "__init__" else f"{package}.{relative}"
                found[module.removesuffix(".__init__")] = path
    return found


def imports_of(module: str, path: str, known) -> set:
    """Every project module that ``path`` imports (submodules resolved), anywhere in the file."""
    is_package = path.endswith("__init__.py")
    package = module if is_package else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[: len(base) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in ("scratchgen", "kernels", "benchmarks"):
                found.add(name)
    return found - {module}


def graph():
    known = modules()
    return {module: imports_of(module, path, known) for module, path in known.items()}, known


def test_every_import_goes_to_the_same_or_a_lower_layer():
    edges, known = graph()
    upward = []
    for module, targets in edges.items():
        for target in targets:
            if target.split(".")[0] in ("kernels", "benchmarks"):
                upward.append(f"{module} imports {target} (use scratchgen.kernels; benchmarks are never imported)")
                continue
            if module == "scratchgen" or any(module.startswith(a) and target.startswith(b) for a, b in ALLOWED_UPWARD):
                continue
            if target == "scratchgen":
                upward.append(f"{module} imports the package facade 'scratchgen' (import the module it needs)")
            elif layer_of(target) > layer_of(module):
                upward.append(f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})")
    assert not upward, "imports that go up a layer:\n  " + "\n  ".join(sorted(upward))


def test_no_import_cycles_besides_the_tensor_operators():
    edges, _ = graph()
    edges = {m: {t for t in ts if t in edges and not any(m.startswith(a) and t.startswith(b) for a, b in ALLOWED_UPWARD)}
             for m, ts in edges.items() if m != "scratchgen"}
    state, cycle = {}, []

    def visit(node, path):
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                cycle.extend(path[path.index(target):] + [target])
                return True
            if target not in state and visit(target, path + [target]):
                return True
        state[node] = "done"
        return False

    for node in sorted(edges):
        if node not in state and visit(node, [node]):
            break
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The test itself can fail: a model-importing kernel is flagged."""
    path = tmp_path / "rbm.py"
    path.write_text("def f():\n    from scratchgen.models.boltzmann import bernoulli_rbm\n")
    found = imports_of("scratchgen.kernels.numba_cpu.rbm", str(path), {"scratchgen.models.boltzmann.bernoulli_rbm"})
    assert found == {"scratchgen.models.boltzmann.bernoulli_rbm"}
    assert layer_of("scratchgen.models.boltzmann.bernoulli_rbm") > layer_of("scratchgen.kernels.numba_cpu.rbm")
