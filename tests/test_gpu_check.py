"""The GPU check (``python -m benchmarks gpu``) works without a GPU: it says so and measures nothing;
and its machinery (parts, junit summary, rows, goals, JSON and markdown, launch counting) runs
end to end in Numba's CUDA simulator. The real run needs a GPU machine (docs/gpu.md)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from benchmarks import gpu, gpu_bench
from scratchgen import backend, device
from scratchgen.kernels import launches

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_check(args, env_extra=None, timeout=600):
    env = dict(os.environ, PYTHONPATH=ROOT, NUMBA_ENABLE_CUDASIM="1")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "benchmarks", "gpu", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.skipif(device.cuda_available(), reason="this machine has a GPU: the check would run")
def test_without_a_gpu_one_line_exit_0_nothing_written(tmp_path):
    out = tmp_path / "check"
    result = _run_check(["--out", str(out)])
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU here" in lines[0] and "nothing measured" in lines[0], result.stdout
    assert "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.skipif(device.cuda_available(), reason="this machine has a GPU: the check would run")
def test_cupy_that_imports_without_a_gpu_is_no_gpu(tmp_path):
    """``import cupy`` succeeds on a machine without a GPU and every device call raises: still 'no GPU'."""
    fake = tmp_path / "fake" / "cupy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(textwrap.dedent('''
        class _Runtime:
            @staticmethod
            def getDeviceCount():
                raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        class cuda:
            runtime = _Runtime
    '''))
    out = tmp_path / "check"
    result = _run_check(["--out", str(out), "--part", "bench"],
                        {"PYTHONPATH": os.pathsep.join([str(fake.parent), ROOT]), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("\n") == 1 and "no CUDA-capable device" in result.stdout
    assert not out.exists()


def test_the_check_runs_end_to_end_in_the_simulator(tmp_path):
    out = tmp_path / "check"
    result = _run_check(["--out", str(out), "--simulate", "--bench-groups", "elementwise,launch,model"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["simulated"] and not report["failed"]
    assert report["parts"]["tests"]["status"] == "passed" and report["parts"]["tests"]["counts"]["passed"] >= 3
    bench = report["parts"]["bench"]
    assert bench["status"] == "passed" and not bench["errors"]
    groups = {r["group"] for r in bench["rows"]}
    assert groups == {"elementwise", "launch", "model"}
    names = {r["name"] for r in bench["rows"]}
    assert {"sigmoid_forward", "bce_with_logits_forward", "bce_with_logits_backward", "adam_update", "gibbs_sample",
            "empty launch", "vae_epoch", "dcgan_step", "rbm_pcd1_epoch"} <= names
    for r in bench["rows"]:
        assert r["status"] == "ok" and r["backend"] == "numba-cuda", r
        if r["group"] == "model":
            assert r["launches"] > 0 and r["wall_s"] > 0 and r["first_call_s"] > 0
            assert 0 < r["extra"]["launch_overhead_share"]
    markdown = (out / "gpu_check.md").read_text()
    assert "simulator: nothing here is a measurement" in markdown and "### model" in markdown
    assert {p.name for p in out.iterdir()} == set(gpu.FILES.values())

    # Rerunning one part keeps the other part's results (a failed half is rerun alone).
    again = _run_check(["--out", str(out), "--simulate", "--part", "tests"])
    assert again.returncode == 0, again.stdout[-2000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert set(report["parts"]) == {"tests", "bench"} and report["parts"]["bench"]["rows"] == bench["rows"]


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.test_a" name="test_bad" time="0.1"><failure message="AssertionError: 3 != 4">trace</failure></testcase>
<testcase classname="tests.test_a" name="test_gpu_only" time="0"><skipped message="no real GPU: running in Numba's CUDA simulator"/></testcase>
<testcase classname="tests.test_a" name="test_why" time="0"><skipped message="this machine has a usable CUDA GPU"/></testcase>
<testcase classname="tests.test_a" name="test_crash" time="0"><error message="fixture broke"/></testcase>
</testsuite></testsuites>"""


def test_junit_summary_counts_and_flags_skips_that_mean_no_gpu(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    summary = gpu.summarize_junit(str(path), expect_gpu=True)
    assert summary["counts"] == {"passed": 1, "failed": 1, "errors": 1, "skipped": 2}
    assert [f["test"] for f in summary["failures"]] == ["tests.test_a::test_bad", "tests.test_a::test_crash"]
    assert [s["test"] for s in summary["unexpected_skips"]] == ["tests.test_a::test_gpu_only"]
    assert gpu.summarize_junit(str(path), expect_gpu=False)["unexpected_skips"] == []
    missing = gpu.summarize_junit(str(tmp_path / "none.xml"), expect_gpu=True)
    assert missing["failures"] and "no junit XML" in missing["failures"][0]["message"]


def _fake_rows():
    row = gpu_bench.row
    rows = [row("elementwise", "sigmoid_forward", "16M", "numba-cuda", device_s=4e-5, gbs=3500.0, bytes=8 << 24),
            row("elementwise", "sigmoid_forward", "16M", "cupy", device_s=5e-5, gbs=2800.0, bytes=8 << 24),
            row("elementwise", "sigmoid_forward", "1M", "cupy", device_s=5e-6, gbs=1000.0, bytes=8 << 20),
            row("elementwise", "sigmoid_forward", "16M", "torch", device_s=4.5e-5, gbs=3000.0, bytes=8 << 24),
            row("gemm", "gemm", "4096^3 float32", "numba-cuda tiled", device_s=1e-2, tflops=13.4),
            row("model", "vae_epoch", "784-400-20", "cupy", wall_s=2.0, launches=40, steps_per_epoch=469),
            row("model", "vae_epoch", "784-400-20", "torch", wall_s=1.0),
            row("model", "dcgan_step", "28x28", "numba-cuda", status="error", reason="boom")]
    gpu_bench._ratios(rows)
    gpu_bench._ratios(rows, key="wall_s")
    return rows


def test_goals_and_fractions_from_rows():
    rows = _fake_rows()
    header = {"peak_memory_gbs": 4800.0, "peak_fp32_tflops": 67.0}
    gpu_bench.add_fractions(rows, header)
    assert rows[0]["fraction_of_peak"] == pytest.approx(3500 / 4800)
    goals = {(g["row"], g["goal"].split()[0]): g for g in gpu_bench.goals(rows)}
    assert goals[("sigmoid_forward 16M numba-cuda", ">=")]["met"] is False  # 73% < 75%
    assert ("sigmoid_forward 1M cupy", ">=") not in goals  # below 16M elements: no goal
    assert goals[("gemm 4096^3 float32 numba-cuda tiled", ">=")]["met"] is False  # 20% < 30%
    assert goals[("vae_epoch cupy", "<=")]["value"] == pytest.approx(2.0) and goals[("vae_epoch cupy", "<=")]["met"] is False
    assert rows[0]["ratio_to_torch"] == pytest.approx(4e-5 / 4.5e-5)


def test_markdown_and_json_of_a_report(tmp_path):
    rows = _fake_rows()
    header = {"device": "NVIDIA H200", "driver": "580.0", "peak_memory_gbs": 4800.0, "peak_memory_source": "device",
              "peak_fp32_tflops": 67.0, "peak_fp32_source": "device"}
    gpu_bench.add_fractions(rows, header)
    report = {"command": ["python", "-m", "benchmarks", "gpu", "--out", "x"], "date": "today", "commit": "abc",
              "simulated": False, "header": header, "failed": True,
              "parts": {"bench": {"status": "failed", "wall_s": 10.0, "limit_s": 180, "rows": rows,
                                  "goals": gpu_bench.goals(rows), "errors": ["model dcgan_step: boom"]}}}
    paths = gpu.write_report(str(tmp_path), report)
    text = open(paths["markdown"]).read()
    assert "# GPU check: NVIDIA H200" in text and "**Result: FAILED**" in text
    assert "| sigmoid_forward | 16M | numba-cuda |" in text and "73%" in text
    assert "ERROR model dcgan_step: boom" in text and "| error: boom |" in text
    assert json.loads(open(paths["json"]).read())["parts"]["bench"]["rows"][0]["gbs"] == 3500.0


def test_launch_counting_counts_our_numba_cuda_launches():
    ok, why = backend.backend_status("numba-cuda")
    if not ok:
        pytest.skip(why)
    x = np.linspace(-2, 2, 50).astype(np.float32)
    sigmoid = backend.implementation("sigmoid_forward", "numba-cuda")
    with launches.counting() as counts:
        sigmoid(x)
        sigmoid(x)
        with launches.counting() as inner:  # nested counters are independent
            backend.implementation("relu_forward", "numba-cuda")(x)
    assert counts == {("numba-cuda", "sigmoid"): 2} and inner == {("numba-cuda", "relu_element"): 1}
    assert launches.by_backend(counts) == {"numba-cuda": 2} and launches.top(counts) == (("numba-cuda:sigmoid", 2),)
    sigmoid(x)  # not counting: nothing recorded, nothing fails


def test_every_cupy_kernel_compiles_with_nvrtc():
    """The CuPy backend's CUDA C++ (unrolled fast paths, ElementwiseKernel bodies, RawModules) compiles
    for sm_90 without a GPU, where CuPy and libnvrtc are installed (else skipped with the reason)."""
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p)
    result = subprocess.run([sys.executable, "-m", "scratchgen.kernels.cupycheck", "--arch", "sm_90"], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=path), capture_output=True, text=True, timeout=600)
    if result.returncode == 2:
        pytest.skip(result.stderr.strip()[:300])
    assert result.returncode == 0 and " 0 failed" in result.stdout, result.stdout + result.stderr[-3000:]
