"""Reporting a benchmark run: a printed table, JSON, a README-ready markdown table, PNG plots.

A *run* is the dict ``__main__`` assembles::

    {"command": [...], "options": {...}, "machine": machine_info(),
     "children": {"1": {"rates": ..., "threads": ..., "error": ...}, "2": {...}},
     "rows": [row, ...]}            # rows in harness.ROW_KEYS format, all suites, all thread counts

The markdown puts each thread count side by side (scratchgen, peer, ratio), 1 thread first:
the 1-thread ratio is the headline (see harness's note on 2-vCPU machines). A ratio below 1
means scratchgen is faster; a dagger marks a noisy multi-thread row (max > 2 x median).
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

from .harness import to_jsonable

SUITE_TITLES = {"ops": "Ops: forward + backward", "kernels": "Kernels", "models": "Models"}
NOISY_MARK = "\u2020"
CONTENDED_MARK = "\u2021"


# ---- formatting -------------------------------------------------------------------------------
def format_seconds(seconds: Optional[float]) -> str:
    """0.000123 -> '123 us', 0.0456 -> '45.6 ms', 3.2 -> '3.20 s'."""
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms" if seconds * 1e3 < 100 else f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2f} s"


def format_ratio(ratio: Optional[float]) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _thread_label(row: Dict) -> str:
    if row.get("device", "cpu") != "cpu":
        return "gpu"
    return f"{row['threads']} thr" if row.get("threads") else "cpu"


def _thread_order(label: str):
    return (1, 0) if label == "gpu" else (0, int(label.split()[0])) if label[0].isdigit() else (0, 0)


def _metrics_text(metrics: Dict) -> str:
    """The quality numbers of a row (floats only: counts and labels stay in the JSON)."""
    return ", ".join(f"{key} {value:.4g}" for key, value in (metrics or {}).items()
                     if isinstance(value, float) and not isinstance(value, bool))


# ---- the printed table ------------------------------------------------------------------------
def format_table(rows: Sequence[Dict]) -> str:
    """Every row on one line: times, spread (IQR), first call, peer, pair-ratio and flags."""
    header = ("suite", "case", "size", "backend", "thr", "median", "IQR", "first call", "peer", "peer median",
              "ratio", "flags")
    lines = [header]
    for row in rows:
        if row["status"] != "ok":
            lines.append((row["suite"], row["name"], row.get("size") or "", row.get("backend") or "",
                          str(row.get("threads") or ""), row["status"].upper(), "", "", "", "", "", (row.get("reason") or "")[:70]))
            continue
        iqr = f"{format_seconds(row['q1_s'])}-{format_seconds(row['q3_s'])}" if row.get("q1_s") is not None else "-"
        flags = []
        if row.get("noisy"):
            flags.append("NOISY")
        if (row.get("extra") or {}).get("contended"):
            cpu_ratio = row["extra"].get("ratio_cpu")
            flags.append("contended" + (f" (cpu-time ratio {cpu_ratio:.2f}x)" if cpu_ratio else ""))
        if (row.get("extra") or {}).get("peer_skipped"):
            flags.append("peer skipped")
        if row.get("extra", {}).get("x_gemm_bound") is not None:
            flags.append(f"{row['extra']['x_gemm_bound']:.2f}x GEMM bound")
        if (row.get("extra") or {}).get("peak_rss_mb"):
            extra = row["extra"]
            flags.append(f"peak {_pair_mb(extra.get('peak_rss_mb'), extra.get('peer_peak_rss_mb'))} MB")
        if (row.get("extra") or {}).get("over_numpy_s") is not None:
            flags.append(f"+{row['extra']['over_numpy_s']:.2f} s over numpy")
        lines.append((row["suite"], row["name"], str(row.get("size") or ""), row.get("backend") or "",
                      "gpu" if row.get("device", "cpu") != "cpu" else str(row.get("threads") or ""),
                      format_seconds(row["median_s"]), iqr, format_seconds(row.get("first_call_s")), row.get("peer") or "-",
                      format_seconds(row.get("peer_median_s")), format_ratio(row.get("ratio")), " ".join(flags)))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    text = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)


# ---- markdown ---------------------------------------------------------------------------------
def markdown_tables(run: Dict) -> str:
    """One markdown table per suite, thread counts side by side, skipped rows listed below it."""
    rows = run["rows"]
    out = []
    machine = run.get("machine", {})
    out.append(f"Measured {machine.get('date', '')} on {machine.get('cpu', '?')} ({machine.get('usable_cores', '?')} cores), "
               f"BLAS {machine.get('blas', {}).get('name', '?')} {machine.get('blas', {}).get('version', '')}; "
               f"times are medians, ratio = median of paired scratchgen/peer times (below 1: scratchgen faster).")
    rates = [f"{t} thr: sgemm {c['rates']['sgemm']['gflops']:.0f} GFLOP/s (1024^3) / "
             f"{c['rates'].get('sgemm_vae_shape', {}).get('gflops', float('nan')):.0f} GFLOP/s (128x784x400), "
             f"memcpy {c['rates']['memcpy']['gbs']:.1f} GB/s"
             for t, c in sorted(run.get("children", {}).items()) if c.get("rates")]
    if rates:
        out.append("Machine rates in the same run: " + "; ".join(rates) + ".")
    if machine.get("load_average"):
        out.append(f"Load average at the start: {', '.join(str(x) for x in machine['load_average'])}.")
    shares = [f"{t} thr {suite} {share:.2f}" for t, c in sorted(run.get("children", {}).items())
              for suite, share in (c.get("suite_cpu_share") or {}).items()]
    if shares:
        out.append("CPU cores used by the benchmark process (cpu time / wall time; ideally the thread count): "
                   + ", ".join(shares) + ".")
    unavailable = {}
    for child in run.get("children", {}).values():
        unavailable.update({b: why for b, why in (child.get("backends") or {}).items() if why != "ok"})
    if unavailable:
        out.append("Backends not run: " + "; ".join(f"{b} ({why})" for b, why in unavailable.items()) + ".")
    for suite in OrderedDict.fromkeys(r["suite"] for r in rows):
        suite_rows = [r for r in rows if r["suite"] == suite]
        out.append("")
        out.append(f"### {SUITE_TITLES.get(suite, suite)}")
        out.append("")
        ok = [r for r in suite_rows if r["status"] == "ok"]
        if ok:
            out.extend(_suite_markdown(ok))
        problems = [r for r in suite_rows if r["status"] != "ok"]
        if any(r.get("noisy") for r in ok):
            out.append("")
            out.append(f"{NOISY_MARK} noisy: max over 2x median (2 threads on a 2-vCPU machine); trust the 1-thread ratio.")
        if any((r.get("extra") or {}).get("contended") for r in ok):
            out.append("")
            out.append(f"{CONTENDED_MARK} contended: the benchmark process got under 80% of one core (other load on the "
                       f"machine); times inflated, wall-time ratio only as good as the A/B pairing: read the "
                       f"cpu-time ratio (median of paired CPU-time ratios, unaffected by waiting for the core).")
        if problems:
            out.append("")
            for r in problems:
                where = " ".join(str(x) for x in (r.get("backend"), f"{r['threads']} thr" if r.get("threads") else None) if x)
                out.append(f"- {r['status']}: {r['name']}{f' ({where})' if where else ''}: {r.get('reason')}")
    return "\n".join(out) + "\n"


def _suite_markdown(rows: Sequence[Dict]) -> List[str]:
    labels = sorted({_thread_label(r) for r in rows}, key=_thread_order)
    with_bound = any((r.get("extra") or {}).get("gemm_bound_s") is not None for r in rows)
    # On a busy machine, the 1-thread CPU-time ratio next to the wall-time one (see harness).
    with_cpu_ratio = any((r.get("extra") or {}).get("contended") and r.get("threads") == 1 for r in rows)
    with_metrics = any(r.get("metrics") for r in rows)
    with_memory = any((r.get("extra") or {}).get("peak_rss_mb") for r in rows)
    groups: "OrderedDict[tuple, Dict[str, Dict]]" = OrderedDict()
    for r in rows:
        key = (r["name"], str(r.get("size") or ""), r.get("backend") or "", r.get("peer") or "", r.get("unit") or "")
        groups.setdefault(key, {})[_thread_label(r)] = r
    header = ["case", "size", "backend", "unit"]
    for label in labels:
        header += [f"scratchgen {label}", f"peer {label}", f"ratio {label}"]
        if with_cpu_ratio and label == "1 thr":
            header += ["cpu-time ratio 1 thr"]
        if with_bound:
            header += [f"GEMM bound {label}", f"x bound {label}"]
        if with_memory:
            header += [f"peak MB {label} (ours / peer)", f"training MB {label} (ours / peer)"]
    header += ["peer"] + (["quality"] if with_metrics else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for (name, size, backend, peer, unit), by_label in groups.items():
        cells = [name, size, backend, unit]
        for label in labels:
            r = by_label.get(label)
            cpu_column = with_cpu_ratio and label == "1 thr"
            if r is None:
                cells += ["", "", ""] + ([""] if cpu_column else []) + (["", ""] if with_bound else []) \
                    + (["", ""] if with_memory else [])
                continue
            ratio = format_ratio(r.get("ratio")) + (NOISY_MARK if r.get("noisy") else "") + \
                (CONTENDED_MARK if (r.get("extra") or {}).get("contended") else "")
            cells += [format_seconds(r["median_s"]), format_seconds(r.get("peer_median_s")), ratio]
            if cpu_column:
                cells.append(format_ratio((r.get("extra") or {}).get("ratio_cpu")))
            if with_bound:
                extra = r.get("extra") or {}
                cells += [format_seconds(extra.get("gemm_bound_s")), format_ratio(extra.get("x_gemm_bound"))]
            if with_memory:
                extra = r.get("extra") or {}
                cells += [_pair_mb(extra.get("peak_rss_mb"), extra.get("peer_peak_rss_mb")),
                          _pair_mb(extra.get("training_mb"), extra.get("peer_training_mb"))]
        first = by_label[labels[0]] if labels[0] in by_label else next(iter(by_label.values()))
        cells.append(peer or "-")
        if with_metrics:
            peer_metrics = (first.get("extra") or {}).get("peer_metrics")
            text = _metrics_text(first.get("metrics"))
            if peer_metrics:
                text += " / " + _metrics_text(peer_metrics)
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _pair_mb(ours, peer) -> str:
    """'412 / 549 (0.75x)' megabytes, or what is known of it."""
    if ours is None:
        return "-"
    text = f"{ours:.0f}" + (f" / {peer:.0f}" if peer else "")
    return text + (f" ({ours / peer:.2f}x)" if peer else "")


# ---- plots ------------------------------------------------------------------------------------
def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt
    except ImportError:
        return None


def _series_label(row: Dict, who: str) -> str:
    return f"{who} {_thread_label(row)}"


def plot_time_vs_size(rows: Sequence[Dict], path: str, title: str) -> Optional[str]:
    """One panel per case: median time vs batch size per backend and thread count (peer dashed).

    When every case ran at a single size, a grouped bar chart (case on x) says more."""
    plt = _pyplot()
    rows = [r for r in rows if r["status"] == "ok" and r.get("median_s")]
    if plt is None or not rows:
        return None
    names = list(OrderedDict.fromkeys(r["name"] for r in rows))
    sizes_per_case = max(len({r.get("size_value") for r in rows if r["name"] == n}) for n in names)
    if sizes_per_case <= 1:
        return _bar_chart(rows, path, title, x_key="name")
    columns = min(3, len(names))
    lines = (len(names) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(5 * columns, 3.6 * lines), squeeze=False)
    for axis, name in zip(axes.flat, names):
        case_rows = [r for r in rows if r["name"] == name and r.get("size_value") is not None]
        series: Dict[str, List] = OrderedDict()
        for r in case_rows:
            series.setdefault(_series_label(r, f"scratchgen[{r['backend']}]"), []).append((r["size_value"], r["median_s"], "-"))
            if r.get("peer_median_s"):
                series.setdefault(_series_label(r, r["peer"]), []).append((r["size_value"], r["peer_median_s"], "--"))
        for label, points in series.items():
            points.sort()
            axis.plot([p[0] for p in points], [p[1] for p in points], points[0][2], marker="o", label=label)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("batch size")
        axis.set_ylabel("seconds per call")
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(names):]:
        axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _bar_chart(rows: Sequence[Dict], path: str, title: str, x_key: str = "name", ylabel: str = "seconds (median)") -> str:
    """Grouped bars: one group per case, one bar per (who, backend, threads)."""
    import numpy as np

    plt = _pyplot()
    groups = list(OrderedDict.fromkeys(r[x_key] for r in rows))
    bars: "OrderedDict[str, Dict[str, float]]" = OrderedDict()
    for r in rows:
        bars.setdefault(_series_label(r, f"scratchgen[{r.get('backend')}]"), {})[r[x_key]] = r["median_s"]
        if r.get("peer_median_s"):
            bars.setdefault(_series_label(r, r.get("peer") or "peer"), {})[r[x_key]] = r["peer_median_s"]
    width = 0.8 / max(1, len(bars))
    figure, axis = plt.subplots(figsize=(max(6, 1.3 * len(groups) + 2), 4.2))
    positions = np.arange(len(groups))
    for index, (label, values) in enumerate(bars.items()):
        heights = [values.get(g, np.nan) for g in groups]
        axis.bar(positions + (index - (len(bars) - 1) / 2) * width, heights, width, label=label,
                 hatch="//" if not label.startswith("scratchgen") else None)
    axis.set_xticks(positions)
    axis.set_xticklabels(groups, rotation=25, ha="right", fontsize=8)
    axis.set_yscale("log")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_models(rows: Sequence[Dict], path: str) -> Optional[str]:
    """Model time per epoch (or step) per backend and peer, at each thread count."""
    if _pyplot() is None:
        return None
    rows = [r for r in rows if r["status"] == "ok" and r.get("median_s")]
    if not rows:
        return None
    units = sorted({r.get("unit") or "s" for r in rows})
    return _bar_chart(rows, path, "Models: time per epoch / step", x_key="name", ylabel=" or ".join(units))


# ---- writing it all ---------------------------------------------------------------------------
def write_report(run: Dict, out_dir: str, plots: bool = True) -> Dict[str, str]:
    """Write results.json, results.md and the PNG plots into ``out_dir``; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, "results.json"), "markdown": os.path.join(out_dir, "results.md")}
    with open(paths["json"], "w") as handle:
        json.dump(to_jsonable(run), handle, indent=1)
    with open(paths["markdown"], "w") as handle:
        handle.write(markdown_tables(run))
    if plots:
        for suite in ("ops", "kernels"):
            suite_rows = [r for r in run["rows"] if r["suite"] == suite]
            if suite_rows:
                path = plot_time_vs_size(suite_rows, os.path.join(out_dir, f"{suite}_time_vs_size.png"),
                                         f"{SUITE_TITLES[suite]}: median time")
                if path:
                    paths[f"plot_{suite}"] = path
        model_rows = [r for r in run["rows"] if r["suite"] == "models"]
        if model_rows:
            path = plot_models(model_rows, os.path.join(out_dir, "models_time.png"))
            if path:
                paths["plot_models"] = path
    return paths
