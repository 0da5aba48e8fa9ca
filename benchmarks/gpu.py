"""The GPU check: ``python -m benchmarks gpu --out DIR [--part tests|bench|all] [--quick]``.

One command for a machine with one NVIDIA GPU (numpy, numba, numba-cuda, cupy-cuda13x, PyTorch
with CUDA, pytest and hypothesis installed; run from a plain checkout with ``PYTHONPATH=.``; no
network). It runs, each part in a child process with a time limit:

* ``tests``: the real-GPU tests (``SCRATCHGEN_REAL_CUDA=1``, simulator off): every Numba CUDA and
  CuPy kernel against the NumPy reference in float32 and float64 (hypothesis-drawn and
  model-sized inputs), the tests that skip in the simulator (PTX compilation, the xoroshiro RNG
  Gibbs step, the tiled GEMM against cuBLAS), and three training steps of every model family
  on both GPU backends against the numpy backend with the same noise
  (``tests/test_model_steps.py``). A test that skips for want of a GPU or a compiler here is an
  *unexpected skip* and fails the part: on a GPU machine nothing may quietly not run.
* ``bench``: the GPU rows of ``benchmarks/gpu_bench.py`` beside PyTorch CUDA eager (bandwidth of
  the elementwise kernels, the tiled GEMM against cuBLAS, conv layers, launch overhead, the VAE
  epoch, DCGAN step and RBM epoch with launches per step, a CUDA-graph experiment), with the
  device, driver and the two ceilings (peak bandwidth, FP32 peak) in the header.

It writes ``gpu_check.json`` and ``gpu_check.md`` (plus the logs, the pytest junit XML and the
raw bench rows) to DIR, merging with what an earlier part wrote there, so a failed half can be
rerun alone. Exit status: 0 when every check passed; 1 when a test failed or skipped
unexpectedly, a bench row errored or its result disagreed with the reference, or a part timed
out. The issue's speed goals (>= 75% of peak bandwidth, >= 30% of FP32 peak, <= 1.0x PyTorch)
are reported as met or missed; they inform and do not fail the check.

Without a GPU it says so in one line and exits 0, measuring nothing and writing nothing (never
a silent fallback to the CPU). ``--simulate`` runs the same machinery in Numba's CUDA
simulator with tiny sizes: it tests the check itself (CI does), and measures nothing.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from typing import Dict, List, Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_FILES = ("tests/test_kernels_numba_cuda.py", "tests/test_kernels_cupy.py", "tests/test_model_steps.py",
              "tests/test_kernels_model_parity.py", "tests/test_backend.py")
# In the simulator the check tests itself on a few fast tests (the whole files are CI's job).
SIMULATED_SELECTION = ("tests/test_kernels_numba_cuda.py", "-k", "rejects or refused or has_a_parity_case")
# Part time limits, seconds. `--part all` must finish in 8 minutes: 4.5 for the tests, 3 for the bench.
LIMITS_ALONE = {"tests": 540, "bench": 540}
LIMITS_ALL = {"tests": 270, "bench": 180}
# A skip with one of these reasons means the test could not run *here*: on a GPU machine that is a failure.
UNEXPECTED_SKIP_WORDS = ("no real gpu", "unavailable", "cannot reach", "not installed", "compiler libraries not found",
                         "sees no cuda", "no cuda gpu usable", "cannot run")
FILES = {"json": "gpu_check.json", "markdown": "gpu_check.md", "junit": "gpu_tests.xml", "tests_log": "gpu_tests.log",
         "bench_rows": "gpu_bench_rows.json", "bench_log": "gpu_bench.log"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks gpu", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for gpu_check.json, gpu_check.md and the logs")
    parser.add_argument("--part", choices=("tests", "bench", "all"), default="all",
                        help="run only the tests or only the benchmark rows (default: both)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats in the bench")
    parser.add_argument("--simulate", action="store_true",
                        help="Numba's CUDA simulator, tiny sizes: tests the check itself; measures nothing")
    parser.add_argument("--limit", type=float, default=None, help="seconds allowed per part (default: per part)")
    parser.add_argument("--bench-groups", default=None,
                        help="only these bench groups, comma-separated (elementwise,gemm,conv,launch,model,graph)")
    return parser


# ---- is there a GPU? -------------------------------------------------------------------------------
def gpu_problem() -> Optional[str]:
    """None if CuPy can use a GPU here, else why not (CuPy imports without a GPU: ask for a device)."""
    from scratchgen.device import _cuda_problem

    return _cuda_problem()


def gpu_listed_by_driver() -> bool:
    """True when ``nvidia-smi -L`` lists a GPU (then a CuPy that cannot use it is a broken setup, not 'no GPU')."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


# ---- the parts -----------------------------------------------------------------------------------------
def child_environment(simulate: bool) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([REPO_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["NUMBA_ENABLE_CUDASIM"] = "1" if simulate else "0"
    if simulate:
        env.pop("SCRATCHGEN_REAL_CUDA", None)
    else:
        env["SCRATCHGEN_REAL_CUDA"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_logged(command: List[str], log_path: str, limit: float, simulate: bool) -> Dict:
    """Run ``command`` with its output in ``log_path`` (and echoed); returns status, exit code, seconds."""
    started = time.perf_counter()
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=child_environment(simulate), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, bufsize=1)
        deadline = started + limit
        timed_out = False
        for line in process.stdout:  # echo as it comes: a device run returns only the last lines
            log.write(line)
            sys.stdout.write("    " + line)
            sys.stdout.flush()
            if time.perf_counter() > deadline:
                timed_out = True
                break
        if timed_out:
            process.kill()
        try:
            code = process.wait(timeout=max(1.0, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            process.kill()
            code, timed_out = process.wait(), True
    seconds = time.perf_counter() - started
    return {"exit_code": code, "wall_s": seconds, "timed_out": timed_out or seconds > limit,
            "command": " ".join(command), "limit_s": limit}


def run_tests(out_dir: str, limit: float, simulate: bool) -> Dict:
    junit = os.path.join(out_dir, FILES["junit"])
    if os.path.exists(junit):
        os.remove(junit)
    selection = list(SIMULATED_SELECTION if simulate else TEST_FILES)
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"--junitxml={junit}", *selection]
    print(f"gpu check: tests ({'simulator' if simulate else 'real GPU'}), up to {limit:.0f} s", flush=True)
    result = run_logged(command, os.path.join(out_dir, FILES["tests_log"]), limit, simulate)
    result.update(summarize_junit(junit, expect_gpu=not simulate))
    failed = result["timed_out"] or result["counts"]["failed"] or result["counts"]["errors"] or result["unexpected_skips"] \
        or result["exit_code"] not in (0,) or not result["counts"]["passed"]
    result["status"] = "timeout" if result["timed_out"] else ("failed" if failed else "passed")
    return result


def summarize_junit(path: str, expect_gpu: bool) -> Dict:
    """Counts, failures (test and first line of the message) and unexpected skips from pytest's junit XML."""
    summary = {"counts": {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}, "failures": [], "unexpected_skips": [],
               "skip_reasons": {}}
    if not os.path.exists(path):
        summary["failures"].append({"test": "(pytest)", "message": "no junit XML was written (pytest crashed or was killed)"})
        return summary
    root = ElementTree.parse(path).getroot()
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
                message = (child.get("message") or child.text or "").strip()
                break
        if outcome == "passed":
            summary["counts"]["passed"] += 1
            continue
        first_line = message.splitlines()[0][:300] if message else ""
        if outcome == "skipped":
            summary["counts"]["skipped"] += 1
            summary["skip_reasons"][first_line] = summary["skip_reasons"].get(first_line, 0) + 1
            if expect_gpu and any(word in message.lower() for word in UNEXPECTED_SKIP_WORDS):
                summary["unexpected_skips"].append({"test": name, "message": first_line})
            continue
        summary["counts"]["failed" if outcome == "failure" else "errors"] += 1
        summary["failures"].append({"test": name, "message": first_line})
    return summary


def run_bench(out_dir: str, limit: float, quick: bool, simulate: bool, groups: Optional[str] = None) -> Dict:
    rows_path = os.path.join(out_dir, FILES["bench_rows"])
    if os.path.exists(rows_path):
        os.remove(rows_path)
    command = [sys.executable, "-m", "benchmarks.gpu_bench", rows_path] + (["--quick"] if quick else []) + \
        (["--simulate"] if simulate else []) + (["--groups", groups] if groups else [])
    print(f"gpu check: bench ({'simulator' if simulate else 'real GPU'}{', quick' if quick else ''}), up to {limit:.0f} s",
          flush=True)
    result = run_logged(command, os.path.join(out_dir, FILES["bench_log"]), limit, simulate)
    measured = {"header": {}, "rows": [], "goals": [], "groups_done": []}
    if os.path.exists(rows_path):
        with open(rows_path) as handle:
            measured.update(json.load(handle))
    result.update(measured)
    bad = [r for r in result["rows"] if r["status"] == "error" or (r.get("check") or {}).get("ok") is False]
    result["errors"] = [f"{r['group']} {r['name']} {r['size']} {r['backend']}: "
                        f"{r['reason'] or 'result disagrees: ' + json.dumps(r.get('check'))}" for r in bad]
    failed = result["timed_out"] or bad or result["exit_code"] != 0 or not result["rows"]
    result["status"] = "timeout" if result["timed_out"] else ("failed" if failed else "passed")
    return result


# ---- the report --------------------------------------------------------------------------------------------
def _fmt_time(seconds) -> str:
    if seconds is None:
        return ""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def _fmt(value, spec: str = ".3g") -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return format(value, spec)


def markdown(report: Dict) -> str:
    header = report.get("header") or {}
    lines = [f"# GPU check: {header.get('device', 'device unknown')}", ""]
    lines.append(f"`{' '.join(report['command'])}` at {report['date']}, commit {report.get('commit') or '?'}"
                 + (" - **simulator: nothing here is a measurement**" if report.get("simulated") else ""))
    lines.append("")
    lines.append(f"**Result: {'FAILED' if report['failed'] else 'passed'}** "
                 + ", ".join(f"{part} {data['status']}" for part, data in report["parts"].items()))
    lines += ["", "| device | driver | CUDA runtime | compute capability | SMs | memory | peak bandwidth | FP32 peak | copy |",
              "|---|---|---|---|---|---|---|---|---|",
              "| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                  header.get("device", ""), header.get("driver", ""), header.get("cuda_runtime", ""),
                  header.get("compute_capability", ""), header.get("sms", ""),
                  f"{header['memory_gib']} GiB" if header.get("memory_gib") else "",
                  f"{header['peak_memory_gbs']:.0f} GB/s ({header.get('peak_memory_source')})" if header.get("peak_memory_gbs") else "",
                  f"{header['peak_fp32_tflops']:.1f} TFLOP/s ({header.get('peak_fp32_source')})" if header.get("peak_fp32_tflops") else "",
                  f"{header['copy_gbs']:.0f} GB/s" if header.get("copy_gbs") else "")]
    versions = header.get("versions") or {}
    if versions:
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v)]
    tests = report["parts"].get("tests")
    if tests:
        c = tests["counts"]
        lines += ["", f"## Tests: {tests['status']}", "",
                  f"{c['passed']} passed, {c['failed']} failed, {c['errors']} errors, {c['skipped']} skipped "
                  f"({len(tests['unexpected_skips'])} unexpected) in {tests['wall_s']:.0f} s (limit {tests['limit_s']:.0f} s)"]
        for failure in tests["failures"][:40]:
            lines.append(f"- FAILED `{failure['test']}`: {failure['message']}")
        for skip in tests["unexpected_skips"][:40]:
            lines.append(f"- UNEXPECTED SKIP `{skip['test']}`: {skip['message']}")
    bench = report["parts"].get("bench")
    if bench:
        lines += ["", f"## Benchmark rows: {bench['status']} ({bench['wall_s']:.0f} s, limit {bench['limit_s']:.0f} s)"]
        for error in bench["errors"][:40]:
            lines.append(f"- ERROR {error}")
        if bench.get("goals"):
            lines += ["", "### Goals (reported, not failing the check)", "", "| goal | row | value | met |", "|---|---|---|---|"]
            for goal in bench["goals"]:
                met = {True: "yes", False: "**no**", None: "not measured"}[goal["met"]]
                lines.append(f"| {goal['goal']} | {goal['row']} | {_fmt(goal['value'])} | {met} |")
        groups: Dict[str, List[Dict]] = {}
        for r in bench["rows"]:
            groups.setdefault(r["group"], []).append(r)
        for group, rows in groups.items():
            lines += ["", f"### {group}", "",
                      "| name | size | backend | first call | device / call | wall / call | rate | of peak | our launches | all kernels (CUPTI) | x torch | check |",
                      "|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for r in rows:
                if r["status"] != "ok":
                    lines.append(f"| {r['name']} | {r['size']} | {r['backend']} | {r['status']}: {r['reason']} |||||||||")
                    continue
                rate = f"{r['gbs']:.0f} GB/s" if r.get("gbs") else (f"{r['tflops']:.2f} TFLOP/s" if r.get("tflops") else "")
                check = r.get("check") or {}
                check_text = "" if not check else ("ok" if check.get("ok") else "**DIFFERS**") + \
                    "".join(f" {k}={v:.2g}" for k, v in check.items() if isinstance(v, float))
                lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                    r["name"], r["size"], r["backend"], _fmt_time(r.get("first_call_s")), _fmt_time(r.get("device_s")),
                    _fmt_time(r.get("wall_s")), rate,
                    f"{r['fraction_of_peak']:.0%}" if r.get("fraction_of_peak") is not None else "",
                    _fmt(r.get("launches")), _fmt(r.get("cupti_kernels")),
                    f"{r['ratio_to_torch']:.2f}" if r.get("ratio_to_torch") else "", check_text))
        lines += ["", "Model rows: wall time per epoch (``*_epoch``) or per step; launches and kernels per training step. "
                  "x torch: our time over PyTorch's (below 1: faster)."]
        shares = [r for r in bench["rows"] if (r.get("extra") or {}).get("launch_overhead_share") is not None]
        if shares:
            lines += ["", "Launch overhead (launches per step x one empty launch) as a share of the step: "
                      + ", ".join(f"{r['name']} {r['backend']} {r['extra']['launch_overhead_share']:.0%}" for r in shares)]
    lines.append("")
    return "\n".join(lines)


def write_report(out_dir: str, report: Dict) -> Dict[str, str]:
    from benchmarks.harness import to_jsonable

    paths = {"json": os.path.join(out_dir, FILES["json"]), "markdown": os.path.join(out_dir, FILES["markdown"])}
    with open(paths["json"], "w") as handle:
        json.dump(to_jsonable(report), handle, indent=1)
    with open(paths["markdown"], "w") as handle:
        handle.write(markdown(report))
    return paths


def load_previous(out_dir: str) -> Dict:
    """An earlier run's report in ``out_dir`` (its parts are kept unless rerun), or {}."""
    path = os.path.join(out_dir, FILES["json"])
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def _commit() -> Optional[str]:
    try:
        from benchmarks.machine import git_commit

        return git_commit()
    except Exception:
        return None


# ---- main ------------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if not args.simulate:
        problem = gpu_problem()
        if problem is not None:
            if gpu_listed_by_driver():
                print(f"gpu check: FAILED: the driver lists a GPU but CuPy cannot use it ({problem})")
                return 1
            print(f"gpu check: no CUDA GPU here ({problem}); nothing measured")
            return 0
    os.makedirs(args.out, exist_ok=True)
    parts = ("tests", "bench") if args.part == "all" else (args.part,)
    limits = LIMITS_ALL if args.part == "all" else LIMITS_ALONE
    started = time.perf_counter()
    previous = load_previous(args.out)
    keep_previous = previous.get("simulated") == args.simulate
    report = {"command": ["python", "-m", "benchmarks", "gpu"] + argv,
              "date": datetime.datetime.now().isoformat(timespec="seconds"), "commit": _commit(),
              "simulated": args.simulate, "header": previous.get("header", {}) if keep_previous else {},
              "parts": {k: v for k, v in (previous.get("parts") or {}).items() if keep_previous and k not in parts}}
    if "bench" not in parts and not report["header"]:
        report["header"] = _light_header(args.simulate)
    for part in parts:
        limit = args.limit or limits[part]
        if part == "tests":
            report["parts"]["tests"] = run_tests(args.out, limit, args.simulate)
        else:
            bench = run_bench(args.out, limit, args.quick, args.simulate, args.bench_groups)
            report["header"] = bench.pop("header", {}) or _light_header(args.simulate)
            report["parts"]["bench"] = bench
        write_report(args.out, {**report, "failed": _failed(report), "wall_s": time.perf_counter() - started})
    report["wall_s"] = time.perf_counter() - started
    report["failed"] = _failed(report)
    paths = write_report(args.out, report)
    print()
    print(markdown(report)[-8000:])
    print(f"gpu check: {'FAILED' if report['failed'] else 'passed'} in {report['wall_s']:.0f} s; wrote "
          f"{paths['json']} and {paths['markdown']}")
    return 1 if report["failed"] else 0


def _failed(report: Dict) -> bool:
    return any(part.get("status") != "passed" for part in report["parts"].values())


def _light_header(simulate: bool) -> Dict:
    """Device and versions without measuring anything (a tests-only run)."""
    from scratchgen.device import describe_devices

    return {"device": "Numba CUDA simulator" if simulate else "; ".join(describe_devices()), "simulated": simulate}


if __name__ == "__main__":
    sys.exit(main())
