"""The benchmark harness works end to end and reports honestly. No timing assertions: only that
a quick run completes, writes valid JSON and markdown, and treats missing peers and missing
suites as skipped (not failed)."""
import json
import os

import numpy as np
import pytest

from benchmarks import harness, machine, report
from benchmarks.__main__ import add_gemm_bounds, main


def _torch_installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def test_quick_ops_suite_writes_json_markdown_and_plot(tmp_path):
    out = tmp_path / "bench"
    status = main(["ops", "--quick", "--threads", "1", "--backend", "numpy", "--out", str(out)])
    assert status == 0
    run = json.loads((out / "results.json").read_text())
    rows = [r for r in run["rows"] if r["suite"] == "ops"]
    names = {r["name"] for r in rows}
    assert {"linear", "conv2d_k3", "conv2d_k3_wide", "conv_transpose2d", "conv_transpose2d_out",
            "sigmoid_bce_with_logits"} <= names
    for row in rows:
        assert row["status"] == "ok" and row["threads"] == 1 and row["backend"] == "numpy"
        assert row["median_s"] > 0 and row["min_s"] <= row["median_s"] <= row["max_s"]
        assert row["first_call_s"] is not None and row["repeats"] == 5
        if _torch_installed():
            assert row["peer"] == "torch" and row["ratio"] > 0
            assert row["extra"]["max_abs_diff_vs_peer"] < 1e-3  # the same op on both sides
        else:
            assert row["ratio"] is None and "torch" in row["extra"]["peer_skipped"]
    assert run["children"]["1"]["rates"]["sgemm"]["gflops"] > 0
    assert run["children"]["1"]["thread_report"]["OPENBLAS_NUM_THREADS"] == "1"
    assert run["machine"]["cpu"] and run["machine"]["blas"]["name"]
    markdown = (out / "results.md").read_text()
    assert "| case | size | backend |" in markdown and "| linear | 128x784->400 | numpy |" in markdown
    assert "ratio 1 thr" in markdown
    if (out / "ops_time_vs_size.png").exists():
        assert (out / "ops_time_vs_size.png").read_bytes()[:4] == b"\x89PNG"


def test_missing_peer_is_skipped_not_failed(tmp_path, monkeypatch):
    monkeypatch.setenv(harness.HIDE_PEERS_VARIABLE, "torch")
    out = tmp_path / "bench"
    status = main(["ops", "--quick", "--threads", "1", "--backend", "numpy", "--cases", "linear",
                   "--repeat", "2", "--out", str(out), "--no-plots"])
    assert status == 0
    (row,) = json.loads((out / "results.json").read_text())["rows"]
    assert row["status"] == "ok" and row["median_s"] > 0
    assert row["ratio"] is None and row["peer"] is None
    assert "hidden" in row["extra"]["peer_skipped"]


def test_missing_suite_module_is_a_skipped_row():
    (row,) = harness.run_external("benchmarks.bench_not_written_yet", "run", "models", threads=1, quick=True)
    assert row["status"] == "skipped" and "does not exist" in row["reason"]
    (row,) = harness.run_external("benchmarks.harness", "no_such_function", "models", threads=1)
    assert row["status"] == "skipped" and "no_such_function" in row["reason"]


def test_failing_suite_module_is_an_error_row_not_a_crash():
    def broken(**kwargs):
        raise RuntimeError("boom")

    harness.__dict__["_test_broken"] = broken
    try:
        (row,) = harness.run_external("benchmarks.harness", "_test_broken", "kernels")
    finally:
        del harness.__dict__["_test_broken"]
    assert row["status"] == "error" and "boom" in row["reason"]


def test_adapter_passes_only_supported_keywords():
    def run(quick=False, threads=1):
        return [{"model": "rbm", "seconds": 2.0, "baseline_s": 4.0, "quality": 0.5, "epochs": 3}]

    assert harness.call_with_supported(run, quick=True, threads=2, backends=["numpy"], epochs=None)[0]["model"] == "rbm"
    row = harness.normalise_row(run()[0], "models", threads=2, source="bench_x")
    assert row["name"] == "rbm" and row["median_s"] == 2.0 and row["peer_median_s"] == 4.0
    assert row["ratio"] == pytest.approx(0.5) and "ratio of medians" in row["ratio_method"]
    assert row["metrics"] == {"value": 0.5} and row["threads"] == 2 and row["status"] == "ok"
    assert set(harness.ROW_KEYS) <= set(row)


def test_normalise_keeps_rows_already_in_our_format():
    ours = harness.make_row(suite="models", name="vae", median_s=1.0, max_s=3.0, threads=2, extra={"a": 1}, status="ok")
    row = harness.normalise_row(ours, "models", threads=2)
    assert row["name"] == "vae" and row["extra"] == {"a": 1} and row["noisy"] is True


def test_pair_ratio_is_the_median_of_per_pair_ratios():
    result = harness.measure_pair(lambda: sum(range(200)), lambda: sum(range(100)), repeat=5, target_s=1e-4)
    ratios = np.asarray(result["ours"]["times"]) / np.asarray(result["peer"]["times"])
    assert result["ratio"] == pytest.approx(float(np.median(ratios)))
    assert result["ours"]["repeats"] == result["peer"]["repeats"] == 5
    assert result["ours"]["first_call_s"] > 0 and result["ours"]["number"] >= 1


def test_noise_flag_only_for_multithread_rows():
    assert harness.is_noisy(1.0, 2.5, threads=2)
    assert not harness.is_noisy(1.0, 1.9, threads=2)
    assert not harness.is_noisy(1.0, 2.5, threads=1)  # 1-thread rows are the headline, never flagged
    stats = harness.summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats["median_s"] == 3.0 and stats["min_s"] == 1.0 and stats["max_s"] == 100.0


def test_thread_environment_pins_every_pool():
    env = harness.thread_environment(2, base={"PATH": "/bin"})
    assert all(env[v] == "2" for v in harness.THREAD_VARIABLES)
    assert env["PYTHONPATH"].split(os.pathsep)[0] == harness.REPO_ROOT


def test_vae_matmul_flops_closed_form_and_gemm_bound():
    # forward 2 i o per layer and example; backward 2 i o (dW) + 2 i o (dx), no dx for the data
    layer_products = 784 * 400 + 400 * 40 + 20 * 400 + 400 * 784
    assert machine.vae_epoch_matmul_flops(100) == 100 * 2 * (3 * layer_products - 784 * 400)
    rows = [harness.make_row(suite="models", name="vae_fashion_mnist", device="cpu", threads=1, median_s=4.0,
                             metrics={"train_examples": 60000}),
            harness.make_row(suite="models", name="dcgan", device="cpu", threads=1, median_s=1.0)]
    add_gemm_bounds(rows, {"sgemm": {"gflops": 100.0}, "sgemm_vae_shape": {"gflops": 50.0}})
    bound = machine.vae_epoch_matmul_flops(60000) / 100e9
    assert rows[0]["extra"]["gemm_bound_s"] == pytest.approx(bound)
    assert rows[0]["extra"]["x_gemm_bound"] == pytest.approx(4.0 / bound)
    assert "gemm_bound_s" not in rows[1]["extra"]


def test_markdown_lists_thread_counts_side_by_side_and_skips():
    common = dict(suite="ops", name="linear", size="128x784->400", backend="numpy", device="cpu", unit="s/call", peer="torch")
    rows = [harness.make_row(threads=1, median_s=1e-3, max_s=1.1e-3, peer_median_s=2e-3, ratio=0.5, **common),
            harness.make_row(threads=2, median_s=1e-3, max_s=5e-3, peer_median_s=1e-3, ratio=1.0, **common),
            harness.skipped_row("models", "bench_rbm", "benchmarks.bench_rbm does not exist", threads=1)]
    text = report.markdown_tables({"rows": rows, "machine": {}, "children": {}})
    line = next(l for l in text.splitlines() if l.startswith("| linear"))
    assert "0.50x" in line and "1.00x" + report.NOISY_MARK in line
    assert "- skipped: bench_rbm" in text
    table = report.format_table(rows)
    assert "SKIPPED" in table and "NOISY" in table


def test_bad_arguments_are_rejected():
    with pytest.raises(SystemExit):
        main(["no-such-suite"])
    with pytest.raises(SystemExit):
        main(["ops", "--backend", "fortran"])
    with pytest.raises(SystemExit):
        main(["ops", "--cases", "not_an_op"])


def test_scratchgen_bench_runs_the_checkout_benchmarks_in_a_subprocess(capfd):
    from scratchgen.cli import main as cli_main

    assert cli_main(["bench", "no-such-suite"]) == 2  # python -m benchmarks's own parser refuses the suite
    assert "no-such-suite" in capfd.readouterr().err
