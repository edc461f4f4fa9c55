"""Plots of the benchmark results (matplotlib, Agg backend: no display needed).

    python -m benchmarks.plots                     # every plot whose input JSON exists in benchmarks/results/

Each plot is a function ``(json_path, png_path) -> png_path`` registered in ``PLOTS`` under the PNG's file name,
with the JSON file it reads. To add one, write the function and add a line to ``PLOTS``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR

PlotFunction = Callable[[Path, Path], Path]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _load(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# --- serve.json ------------------------------------------------------------------------------------------------------


def plot_latency_vs_concurrency(serve_json_path: str | Path, png_path: str | Path) -> Path:
    """p50 and p99 latency (log scale) and throughput vs concurrency, from ``benchmarks/serve_bench.py``'s JSON.

    One line per protocol x input with batching on; batching-off points as crosses; the in-process reference
    (one input per call) as a star at concurrency 1 and a dotted line, and, in the throughput panel, the in-process
    batched throughput as a dashed line (the limit the server approaches).
    """
    plt = _pyplot()
    data = _load(serve_json_path)
    server = data.get("server", {})
    on = server.get("batching_on", {})
    if any("c1" in on.get(protocol, {}) for protocol in ("rest", "grpc")):
        raise ValueError(
            f"{serve_json_path} has the older layout (no input kinds): re-run python -m benchmarks.serve_bench"
        )
    in_process = data.get("in_process", {})
    top = data.get("headline_concurrency") or max(data.get("settings", {}).get("concurrency", [1]))

    colors = {("rest", "short"): "tab:blue", ("grpc", "short"): "tab:orange"}
    colors |= {("rest", "long"): "tab:green", ("grpc", "long"): "tab:red"}
    styles = {"rest": "-", "grpc": "--"}
    inputs = [kind for kind in ("short", "long") if any(kind in on.get(p, {}) for p in ("rest", "grpc"))]
    levels_seen: set[int] = set()

    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
    panels = (("p50_ms", "p50 latency (ms)"), ("p99_ms", "p99 latency (ms)"))
    for ax, (metric, title) in zip(axes[:2], panels, strict=True):
        for protocol in ("rest", "grpc"):
            for kind in inputs:
                points = _series(on.get(protocol, {}).get(kind, {}), metric)
                if not points:
                    continue
                levels_seen.update(x for x, _ in points)
                ax.plot(
                    *zip(*points, strict=True),
                    styles[protocol],
                    marker="o",
                    color=colors[(protocol, kind)],
                    label=f"{protocol} {kind}",
                )
                off = _series(server.get("batching_off", {}).get(protocol, {}).get(kind, {}), metric)
                if off:
                    ax.scatter(
                        *zip(*off, strict=True),
                        marker="x",
                        s=70,
                        color=colors[(protocol, kind)],
                        label=f"{protocol} {kind}, batching off",
                        zorder=3,
                    )
        for kind in inputs:
            value = in_process.get(kind, {}).get("c1_batch1", {}).get(metric)
            if value:
                color = "black" if kind == "short" else "dimgray"
                ax.axhline(value, color=color, linestyle=":", linewidth=1)
                ax.scatter([1], [value], marker="*", s=160, color=color, label=f"in-process {kind}, c1", zorder=4)
        ax.set_yscale("log")
        ax.set_ylabel(title)
        ax.set_title(f"{title.split(' ')[0]} latency vs concurrency (batching on)")

    ax = axes[2]
    for protocol in ("rest", "grpc"):
        for kind in inputs:
            points = _series(on.get(protocol, {}).get(kind, {}), "instances_per_s")
            if points:
                ax.plot(
                    *zip(*points, strict=True),
                    styles[protocol],
                    marker="o",
                    color=colors[(protocol, kind)],
                    label=f"{protocol} {kind}",
                )
    for kind in inputs:
        limit = in_process.get(kind, {}).get(f"batch{top}", {}).get("instances_per_s")
        if limit:
            label = f"in-process {kind}, batch {top}"
            ax.axhline(limit, color=colors[("rest", kind)], linestyle="-.", linewidth=1, label=label)
    ax.set_yscale("log")
    ax.set_ylabel("throughput (instances/s)")
    ax.set_title("throughput vs concurrency (batching on)")

    ticks = sorted(levels_seen) or [1]
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("concurrency (clients, one input per request)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)

    settings, machine = data.get("settings", {}), data.get("machine", {})
    fig.suptitle(
        f"Model server: {settings.get('model_base_path', '?')} - {machine.get('cpu', '?')}, "
        f"{machine.get('cores', '?')} cores - {settings.get('duration_s', '?')} s per point - {data.get('date', '')}",
        fontsize=10,
    )
    fig.tight_layout()
    png = Path(png_path)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def _series(levels: dict, metric: str) -> list[tuple[int, float]]:
    """``{"c1": stats, "c8": stats}`` -> ``[(1, stats[metric]), (8, ...)]``, sorted, missing values dropped."""
    points = []
    for key, stats in levels.items():
        if key.startswith("c") and key[1:].isdigit() and isinstance(stats, dict) and stats.get(metric):
            points.append((int(key[1:]), float(stats[metric])))
    return sorted(points)


# --- the registry and the command line -------------------------------------------------------------------------------

# PNG file name -> (input JSON file name, plot function); both relative to the results directory.
# --- accuracy-levers.json (+ train-full.json) ------------------------------------------------------------------------


def plot_accuracy_vs_seq_length(levers_json_path: str | Path, png_path: str | Path) -> Path:
    """Test accuracy vs the token budget (head+tail, and head-only at 128) from ``accuracy_levers.py``; beside it,
    when ``train-full.json`` sits next to the levers file, the full run's accuracy per review-length slice."""
    plt = _pyplot()
    levers = _load(levers_json_path)
    results = {r["lever"]: r for r in levers["results"]}
    full_path = Path(levers_json_path).with_name("train-full.json")
    full = _load(full_path) if full_path.exists() else None
    fig, axes = plt.subplots(1, 2 if full else 1, figsize=(11 if full else 6, 4.2), squeeze=False)

    ax = axes[0][0]
    budget = sorted(
        (r["max_seq_length"], r["test_accuracy"])
        for name, r in results.items()
        if name in ("baseline", "seq_256", "seq_512")
    )
    if budget:
        ax.plot(*zip(*budget, strict=True), marker="o", label="head+tail truncation")
        for x, y in budget:
            ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    if "head_only" in results:
        r = results["head_only"]
        ax.plot([r["max_seq_length"]], [r["test_accuracy"]], marker="x", linestyle="none", label="head only")
    ax.set_xscale("log", base=2)
    ax.set_xticks([x for x, _ in budget] or [128])
    ax.set_xticklabels([str(x) for x, _ in budget] or ["128"])
    ax.set_xlabel("max_seq_length (tokens)")
    ax.set_ylabel("test accuracy")
    ax.set_title(
        f"Same budget: {levers['train_examples']} training reviews, {levers['test_examples']} test", fontsize=9
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)

    if full:
        ax = axes[0][1]
        slices = sorted(
            (name.split("=", 1)[1], values)
            for name, values in full["eval_slices"].items()
            if name.startswith("length_bucket=")
        )
        names = [name for name, _ in slices]
        accuracy = [values.get("binary_accuracy", float("nan")) for _, values in slices]
        bars = ax.bar(names, accuracy, color="tab:green")
        for bar, (_, values) in zip(bars, slices, strict=True):
            ax.annotate(
                f"{bar.get_height():.3f}\nn={int(values.get('example_count', 0))}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                textcoords="offset points",
                xytext=(0, 3),
                ha="center",
                fontsize=8,
            )
        overall = full.get("test_accuracy")
        if overall is not None:
            ax.axhline(overall, linestyle="--", color="gray", label=f"overall {overall:.4f}")
        ax.set_ylim(min(accuracy + [overall or 1.0]) - 0.08, 1.0)
        ax.set_xlabel("review length (words)")
        ax.set_ylabel("test accuracy")
        seq = full.get("config", {}).get("max_seq_length")
        ax.set_title(f"full run ({full['test_examples']} test reviews, {seq} tokens) by review length", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return png_path


PLOTS: dict[str, tuple[str, PlotFunction]] = {
    "latency-vs-concurrency.png": ("serve.json", plot_latency_vs_concurrency),
    "accuracy-vs-seq-length.png": ("accuracy-levers.json", plot_accuracy_vs_seq_length),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results_dir", default=str(RESULTS_DIR), help="where the JSON files are and the PNGs go")
    args = p.parse_args(argv)
    results = Path(args.results_dir)
    failed = 0
    for png_name, (json_name, plot) in PLOTS.items():
        source = results / json_name
        if not source.exists():
            print(f"skip {png_name}: no {source}")
            continue
        try:
            print(f"wrote {plot(source, results / png_name)}")
        except (ValueError, KeyError, TypeError) as exc:
            failed += 1
            print(f"FAILED {png_name} from {source}: {exc}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
