"""The README's own commands, run as a user runs them: default options, progress bar and pictures on."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()


def bash_blocks():
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def scratchgen(*args, cwd):
    """`scratchgen ARGS` as the README writes it, through this interpreter (the venv's entry point)."""
    env = dict(os.environ, PYTHONPATH=ROOT, COLUMNS="100")
    return subprocess.run([sys.executable, "-m", "scratchgen", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def test_the_main_command_trains_the_autoencoder_with_progress_and_pictures(tmp_path):
    pytest.importorskip("sklearn", reason="the main job trains on scikit-learn's digits (pip install scratchgen[data])")
    pytest.importorskip("matplotlib", reason="the main job draws pictures (pip install scratchgen[plot])")
    main_job = bash_blocks()[0].strip()
    command = main_job.split("&&")[-1].split()
    assert command[:2] == ["scratchgen", "train"], main_job
    result = scratchgen(*command[1:], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / command[command.index("--out") + 1]
    assert "epoch 1/" in result.stderr and "ex/s" in result.stderr  # the progress bar, on stderr
    pictures = sorted(name for name in os.listdir(out) if name.endswith(".png"))
    assert {"reconstructions_final.png", "samples_final.png", "curves_steps.png", "curves_epochs.png"} <= set(pictures), pictures
    assert {"checkpoint.npz", "config.json", "metrics.json", "metrics.csv"} <= set(os.listdir(out))
    assert re.search(r"test: reconstruction=[0-9.]+", result.stdout), result.stdout[-500:]


def test_the_test_command_is_the_one_ci_runs():
    test_job = bash_blocks()[1].strip()
    assert test_job.endswith("python -m pytest -q"), test_job
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    assert "block == 2" in ci  # .ci/run reads the second bash block of the README


@pytest.mark.parametrize("name", ["ae", "vae", "rbm", "dcgan"])
def test_train_model_help_lists_the_models_options(tmp_path, name):
    from scratchgen.models import MODEL_REGISTRY

    result = scratchgen("train", name, "-h", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for option in MODEL_REGISTRY[name].defaults:
        assert "--" + option.replace("_", "-") in result.stdout or option == "lr"


def test_every_claimed_figure_of_the_reproduce_registry_is_the_readmes():
    """`python -m benchmarks reproduce` checks its claims; the README must print those very claims,
    so that what reproduce checks is what a reader reads (a README edit without the registry fails)."""
    sys.path.insert(0, ROOT)
    from benchmarks.reproduce import FIGURES

    claimed = [figure for figure in FIGURES if figure.claim is not None]
    assert claimed
    for figure in claimed:
        assert f"✓ {figure.claimed()}" in README, (figure.key, figure.claimed())
