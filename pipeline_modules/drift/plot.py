"""One PNG that says at a glance what moved: distances against thresholds, then the three distributions."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_report(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server or in CI
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    ax = axes[0][0]
    names = list(summary["features"])
    measured = summary["features"]
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [measured[n]["skew"] or 0.0 for n in names], width=0.4, label="vs training (skew)")
    ax.bar([i + 0.2 for i in x], [measured[n]["drift"] or 0.0 for n in names], width=0.4, label="vs previous (drift)")
    for i, n in enumerate(names):
        ax.hlines(measured[n]["threshold"], i - 0.45, i + 0.45, colors="black", linestyles="dashed")
    ax.set_xticks(
        list(x), [f"{n}\n({measured[n]['comparator'].replace('JENSEN_SHANNON_DIVERGENCE', 'JS')})" for n in names]
    )
    ax.set_ylim(0, 1.05)
    ax.set_title("distance (dashed: threshold)")
    ax.legend(fontsize=8)

    ax = axes[0][1]
    buckets = summary["length_buckets"]
    labels = list(buckets["serving"])
    ax.bar(
        [i - 0.2 for i in range(len(labels))], [buckets["training"].get(b, 0.0) for b in labels], 0.4, label="training"
    )
    ax.bar([i + 0.2 for i in range(len(labels))], [buckets["serving"][b] for b in labels], 0.4, label="window")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_title("length_bucket (share)")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    histogram = summary["word_count"]["histogram"]
    if histogram:
        edges = [f"{h['low']:.0f}" for h in histogram]
        idx = range(len(histogram))
        ax.bar([i - 0.2 for i in idx], [h["training"] for h in histogram], 0.4, label="training")
        ax.bar([i + 0.2 for i in idx], [h["serving"] for h in histogram], 0.4, label="window")
        ax.set_xticks(list(idx), edges, rotation=45, fontsize=7)
        ax.set_xlabel("bucket start (words)")
        ax.legend(fontsize=8)
    ax.set_title("word_count (share per training histogram bucket)")

    ax = axes[1][1]
    p = summary["predictions"]
    shares = [p["training_positive_share"] or 0.0, p["positive_share"] or 0.0]
    ax.bar(["training labels", "window predictions"], shares, color=["tab:blue", "tab:orange"])
    ax.set_ylim(0, 1)
    ax.set_title("positive share")

    window = summary["window"]
    verdict = "DRIFT/SKEW" if summary["drift_detected"] else "no drift"
    fig.suptitle(
        f"{summary['model']} v{summary['version']}: {summary['log']['records']} requests, "
        f"{window['since'] or 'start'} to {window['until']} — {verdict}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
