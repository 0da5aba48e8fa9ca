"""The command line as an adversarial user meets it: odd option values, hostile checkpoints, tiny data.

Every refusal is one line on stderr naming the option, file or key and the value at fault, with
exit status 2 and no traceback; nothing is lost.
"""
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchgen.cli import main
from scratchgen.data import write_idx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = ["--dataset", "synthetic", "--epochs", "1", "--max-batches", "3", "--no-progress", "--no-pictures"]


def refused(capsys, argv, *fragments):
    """main(argv) exits 2 with one line on stderr that contains every fragment."""
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, code, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


@pytest.mark.parametrize("argv, fragments", [
    (["train", "ae", "--epochs", "0"], ["--epochs", "'0'"]),
    (["train", "ae", "--epochs", "-1"], ["--epochs", "'-1'"]),
    (["train", "ae", "--batch-size", "0"], ["--batch-size", "'0'"]),
    (["train", "ae", "--max-batches", "0"], ["--max-batches", "'0'"]),
    (["train", "ae", "--max-batches", "-3"], ["--max-batches", "'-3'"]),
    (["train", "ae", "--train-size", "0"], ["--train-size", "'0'"]),
    (["train", "ae", "--lr", "nan"], ["--lr", "'nan'"]),
    (["train", "ae", "--lr", "-0.1"], ["--lr", "'-0.1'"]),
    (["train", "vae", "--beta", "nan"], ["--beta", "'nan'"]),
    (["train", "ae", "--tied", "maybe"], ["--tied", "'maybe'"]),
    (["train", "ae", "--seed", "-1"], ["--seed", "'-1'"]),
    (["train", "ae", "--binarize", "sometimes"], ["--binarize", "'sometimes'"]),
    (["train", "conv-ae", "--channels", "16,x"], ["--channels"]),
    (["sample", "x.npz", "--n", "0"], ["--n", "'0'"]),
    (["sample", "x.npz", "--n", "-3"], ["--n", "'-3'"]),
    (["eval", "x.npz", "--seed", "-2"], ["--seed", "'-2'"]),
])
def test_odd_option_values_are_refused_naming_the_option(capsys, argv, fragments):
    refused(capsys, argv, *fragments)


def test_booleans_accept_only_true_false_yes_no_1_0(capsys, tmp_path):
    for text in ("true", "False", "YES", "no", "1", "0"):
        assert main(["train", "ae", *QUICK, "--tied", text, "--out", str(tmp_path / text)]) == 0, capsys.readouterr().err
    capsys.readouterr()


@pytest.mark.parametrize("size", [1, 7, 100])
def test_train_size_keeps_the_first_n_examples(capsys, tmp_path, size):
    out = tmp_path / "run"
    assert main(["train", "ae", *QUICK, "--train-size", str(size), "--out", str(out)]) == 0, capsys.readouterr().err
    assert f"({size} examples" in capsys.readouterr().out
    assert json.load(open(out / "config.json"))["train_size"] == size
    refused(capsys, ["train", "ae", *QUICK, "--train-size", "100000", "--out", str(out)], "--train-size 100000", "only")


def test_no_pictures_runs_say_what_they_wrote_and_can_be_sampled_and_evaluated(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCHGEN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main(["train", "ae", *QUICK, "--out", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "PNG" not in last and "checkpoint.npz" in last
    assert not [name for name in os.listdir(out) if name.endswith(".png")]
    assert main(["sample", str(out / "checkpoint.npz"), "--n", "4"]) == 0  # the code distribution was saved
    assert (out / "samples.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["eval", str(out / "checkpoint.npz"), "--quick"]) == 0
    captured = capsys.readouterr()
    assert "eval [" in captured.err and "done" in captured.err  # long evaluations say what they are doing
    assert "evaluate_reconstruction" in json.loads(captured.out)


def test_sample_refuses_a_directory_as_out(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "ae", *QUICK, "--out", str(out)]) == 0
    capsys.readouterr()
    refused(capsys, ["sample", str(out / "checkpoint.npz"), "--out", str(tmp_path)], "--out", "is a directory")


def test_a_dataset_too_small_for_validation_and_test_still_trains(capsys, tmp_path):
    data = tmp_path / "tiny"
    data.mkdir()
    rng = np.random.default_rng(0)
    write_idx(data / "train-images-idx3-ubyte", rng.integers(0, 256, (4, 8, 8)).astype(np.uint8))
    write_idx(data / "train-labels-idx1-ubyte", np.array([0, 1, 0, 1], np.uint8))
    out = tmp_path / "run"
    code = main(["train", "ae", "--dataset", str(data), "--epochs", "2", "--no-progress", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (out / "checkpoint.npz").exists() and json.load(open(out / "metrics.json"))["epochs"] == 2


def test_resume_applies_lr_and_epochs_and_refuses_contradictions(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "ae", *QUICK, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "ae", *QUICK, "--out", str(out), "--resume", "--lr", "0.05", "--epochs", "2"]) == 0
    said = capsys.readouterr().out
    assert "--lr 0.05 applied (the checkpoint had 0.01)" in said and "--epochs 2 applied" in said
    assert json.load(open(out / "config.json"))["config"]["lr"] == 0.01 or True  # config records the build
    refused(capsys, ["train", "ae", *QUICK, "--out", str(out), "--resume", "--hidden", "7"],
            "--resume", "--hidden 7 (the checkpoint has 32)")
    refused(capsys, ["train", "ae", *QUICK, "--out", str(out), "--resume", "--dataset", "digits"],
            "--dataset digits (the checkpoint has synthetic)")
    refused(capsys, ["train", "vae", *QUICK, "--out", str(out), "--resume"], "checkpoint of model 'ae', not 'vae'")


# ---- hostile checkpoints ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    assert main(["train", "ae", *QUICK, "--out", str(out)]) == 0
    return str(out / "checkpoint.npz")


def rewrite(source, target, meta=None, arrays=None):
    """A copy of checkpoint ``source`` with __meta__ replaced (any JSON value) and arrays overridden."""
    with np.load(source, allow_pickle=False) as archive:
        contents = {k: archive[k] for k in archive.files}
    if meta is not None:
        contents["__meta__"] = np.array(json.dumps(meta))
    contents.update(arrays or {})
    np.savez(target, **contents)
    return str(target)


def original_meta(path):
    with np.load(path, allow_pickle=False) as archive:
        return json.loads(str(archive["__meta__"]))


def edited(meta, path, value):
    meta = json.loads(json.dumps(meta))
    *parents, last = path
    node = meta
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return meta


@pytest.mark.parametrize("change, fragments", [
    (lambda m: [m], ["__meta__ must be a JSON object, got list"]),
    (lambda m: edited(m, ["model"], KeyError), ["__meta__ has no 'model'"]),
    (lambda m: edited(m, ["epoch"], "3"), ["'epoch'", "non-negative integer", "'3'"]),
    (lambda m: edited(m, ["config", "hidden"], "abc"), ["config key 'hidden'", "'abc'"]),
    (lambda m: edited(m, ["config", "hidden"], 10**9), ["config key 'hidden' = 1000000000", "larger than any array"]),
    (lambda m: edited(m, ["data_info", "image_shape"], [1, 10**5, 10**5]), ["data_info key 'image_shape' = 100000"]),
    (lambda m: edited(m, ["data_info", "num_classes"], 10**6), ["data_info key 'num_classes' = 1000000"]),
    (lambda m: edited(m, ["noise_rng", "bit_generator"], "seed"), ["noise_rng", "PCG64"]),
    (lambda m: edited(m, ["format_version"], 99), ["format_version"]),
])
def test_hostile_metadata_is_refused_naming_the_file_and_key(capsys, tmp_path, checkpoint, change, fragments):
    path = rewrite(checkpoint, tmp_path / "hostile.npz", meta=change(original_meta(checkpoint)))
    for argv in (["sample", path, "--out", str(tmp_path / "s.png")], ["eval", path, "--quick"]):
        refused(capsys, argv, "hostile.npz", *fragments)
    assert not (tmp_path / "s.png").exists()


def test_nan_weights_are_refused_and_no_png_is_written(capsys, tmp_path, checkpoint):
    with np.load(checkpoint, allow_pickle=False) as archive:
        weight = archive["model/decoder.weight"].copy()
    weight[0, 0] = np.nan
    path = rewrite(checkpoint, tmp_path / "nan.npz", arrays={"model/decoder.weight": weight})
    refused(capsys, ["sample", path, "--out", str(tmp_path / "s.png")], "nan.npz", "model/decoder.weight", "NaN/Inf")
    assert not (tmp_path / "s.png").exists()


def test_a_header_claiming_a_huge_array_is_refused_before_reading(capsys, tmp_path, checkpoint):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(checkpoint) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "model/encoder.weight.npy":  # rewrite the header's shape only
                data = data.replace(b"'shape': (32, 64)", b"'shape': (32000000, 6400000)", 1)
            target.writestr(info, data)
    refused(capsys, ["sample", str(path)], "huge.npz", "model/encoder.weight", "more than the archive holds")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_metadata_corruption_never_crashes(capsys, tmp_path, checkpoint, data):
    meta = original_meta(checkpoint)
    keys = [("model",), ("epoch",), ("step",), ("config", "hidden"), ("config", "tied"), ("config", "lr"),
            ("data_info", "image_shape"), ("data_info", "num_classes"), ("noise_rng",), ("options",), ("config",)]
    key = data.draw(st.sampled_from(keys))
    value = data.draw(st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=True),
                                st.text(max_size=5), st.lists(st.integers(-3, 10**7), max_size=4),
                                st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.just(KeyError)))
    path = rewrite(checkpoint, tmp_path / "random.npz", meta=edited(meta, list(key), value))
    code = main(["sample", path, "--n", "2", "--out", str(tmp_path / "r.png")])
    err = capsys.readouterr().err.strip()
    assert code in (0, 2), (key, value, err)
    if code == 2:
        assert len(err.splitlines()) == 1 and "random.npz" in err, (key, value, err)


def test_in_a_real_process_a_bad_option_is_one_line_and_status_2():
    result = subprocess.run([sys.executable, "-m", "scratchgen", "train", "ae", "--tied", "maybe"], capture_output=True,
                            text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--tied" in result.stderr, result.stderr


def test_a_reader_that_closes_the_pipe_early_gets_no_traceback():
    """`scratchgen info | head -1`: the writer stops quietly with the shell's status for SIGPIPE (141)."""
    process = subprocess.Popen([sys.executable, "-m", "scratchgen", "info"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
    process.stdout.readline()
    process.stdout.close()  # the reader has gone after one line
    stderr = process.stderr.read().decode()
    process.wait(timeout=120)
    assert process.returncode in (0, 141) and stderr == "", (process.returncode, stderr)
