"""Interrupting `scratchgen train` the way a user does, and resuming: nothing lost, nothing different.

Real SIGINTs to a real `scratchgen train` subprocess, at random moments, many times (inside a
training step as well as between steps, during evaluation and during checkpoint writes); then
`--resume`; the final checkpoint must equal the uninterrupted run's bit for bit (numpy backend)
and metrics.json must tell the same history. Also: the interrupt and resume messages agree, a
second Ctrl-C quits at once keeping the previous checkpoint, two runs cannot write to one
directory, and stray temporary files of a killed save are cleaned up.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = ["train", "vae", "--dataset", "digits", "--epochs", "3", "--batch-size", "16", "--hidden", "768",
         "--latent", "8", "--seed", "3", "--no-progress", "--no-pictures"]
TIMING_KEYS = ("seconds", "examples_per_second")


def start(out, *extra, env=None):
    command = [sys.executable, "-m", "scratchgen", *TRAIN, "--out", str(out), *extra]
    environment = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=environment)


def wait_for_line(process, marker, timeout=120.0):
    """Read stdout until a line containing ``marker``; returns the lines read."""
    lines, deadline = [], time.time() + timeout
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no line with {marker!r} in: {''.join(lines)}")


def arrays(path):
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files if k.startswith(("model/", "optimizer/"))}


def history(out):
    results = json.load(open(os.path.join(out, "metrics.json")))
    return [{k: v for k, v in record.items() if k not in TIMING_KEYS} for record in results["history"]], results["test"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, and how long it trains (the random interrupts land inside that time)."""
    out = tmp_path_factory.mktemp("reference")
    process = start(out)
    wait_for_line(process, "training vae")
    began = time.time()
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return out, time.time() - began


def test_random_sigints_then_resume_end_bit_identical(reference, tmp_path):
    reference, seconds = reference
    expected, expected_history = arrays(os.path.join(reference, "checkpoint.npz")), history(reference)
    rng = np.random.default_rng(0)
    inside_a_step = 0
    for trial in range(6):
        out = tmp_path / f"trial{trial}"
        process = start(out)
        wait_for_line(process, "training vae")
        time.sleep(float(rng.uniform(0.0, 0.8 * seconds)))  # somewhere in the run, however fast this machine is
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
        assert "Traceback" not in stderr, stderr
        finished = "wrote " in stdout  # the run ended before the signal (it may still land during exit)
        if finished:
            continue
        assert process.returncode == 130, (process.returncode, stdout, stderr)
        inside_a_step += "stopping after this step" in stdout
        interrupted = [line for line in stdout.splitlines() if line.startswith("interrupted") and "checkpoint written" in line]
        assert len(interrupted) == 1, stdout
        where = interrupted[0].split("interrupted ", 1)[1].split(":")[0]  # e.g. "in epoch 2 after batch 27 of 90 (step 117)"
        resumed = start(out, "--resume")
        stdout, stderr = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, stderr
        assert f"resumed from {os.path.join(out, 'checkpoint.npz')} {where}" in stdout, (where, stdout)
        got = arrays(os.path.join(out, "checkpoint.npz"))
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            np.testing.assert_array_equal(got[key], value, err_msg=f"trial {trial}: {key} after an interrupt {where}")
        assert history(out) == expected_history
        assert not [name for name in os.listdir(out) if ".partial-" in name or name == "train.lock"]
    assert inside_a_step >= 1, "no trial interrupted a step in the middle: the test did not test that case"


def test_a_second_ctrl_c_quits_at_once_and_keeps_the_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    process = start(out, "--epochs", "50")
    wait_for_line(process, "epoch 1:")  # the first epoch's checkpoint is written
    before = arrays(os.path.join(out, "checkpoint.npz"))
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    after = arrays(os.path.join(out, "checkpoint.npz"))  # still a readable checkpoint
    assert after.keys() == before.keys()


def test_a_second_writer_is_refused_and_a_dead_writers_lock_is_taken_over(tmp_path):
    out = tmp_path / "run"
    first = start(out, "--epochs", "50")
    wait_for_line(first, "training vae")
    second = start(out)
    _, stderr = second.communicate(timeout=120)
    assert second.returncode == 2 and "Traceback" not in stderr
    assert f"another scratchgen run (pid {first.pid}) is writing to this directory" in stderr
    first.kill()  # SIGKILL: no clean-up, the lock file stays behind
    first.communicate(timeout=60)
    assert os.path.exists(out / "train.lock")
    stray = out / "checkpoint.npz.partial-99999-deadbeef"
    stray.write_bytes(b"half a checkpoint")
    third = start(out, "--epochs", "1")
    _, stderr = third.communicate(timeout=300)
    assert third.returncode == 0, stderr
    assert not stray.exists() and not (out / "train.lock").exists()


def test_resume_finishes_a_run_interrupted_after_its_last_checkpoint(tmp_path):
    """A Ctrl-C during the last epoch's evaluation stops the run after that epoch's checkpoint, before
    the test metrics and final pictures: --resume must finish the run, not say "nothing to train".

    The interrupted state is made exactly (the random-signal test above meets it by chance): a
    finished 1-epoch run whose metrics.json is put back to what it held before the finish."""
    out = tmp_path / "run"
    finished = start(out, "--epochs", "1")
    stdout, stderr = finished.communicate(timeout=300)
    assert finished.returncode == 0 and "test: " in stdout, stderr
    path = os.path.join(out, "metrics.json")
    results = json.load(open(path))
    expected_test = results.pop("test")
    json.dump(results, open(path, "w"))
    resumed = start(out, "--epochs", "1", "--resume")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert f"resumed from {os.path.join(out, 'checkpoint.npz')} after epoch 1" in stdout, stdout
    assert json.load(open(path))["test"] == expected_test
    again = start(out, "--epochs", "1", "--resume")
    stdout, _ = again.communicate(timeout=300)
    assert again.returncode == 0 and "nothing to train" in stdout, stdout
