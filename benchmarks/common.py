"""What every benchmark shares: the machine description, a measured matmul peak, FLOP counts, and the JSON writer.

Benchmarks run from the repository root as modules (``python -m benchmarks.<name>``) and import this as
``from benchmarks.common import ...``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stacks.compat import use_legacy_keras

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
use_legacy_keras()  # before any benchmark loads TensorFlow: the pipeline's modules need Keras 2
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def machine() -> dict[str, Any]:
    """CPU model, cores, memory and library versions: figures mean nothing without them."""
    import tensorflow as tf

    cpu, mem_gb = platform.processor(), None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
        with open("/proc/meminfo", encoding="utf-8") as f:
            mem_gb = round(int(next(line.split()[1] for line in f if line.startswith("MemTotal"))) / 1024**2, 1)
    except (OSError, StopIteration, ValueError):
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }


def matmul_peak_flops(size: int = 2048, seconds: float = 4.0, dtype: str = "float32") -> dict[str, float]:
    """The best `dtype` matmul rate TensorFlow reaches on this machine (all cores): the denominator of MFU.

    A dense square matmul is the most efficient thing the CPU does for a transformer, so "fraction of this" is the
    honest utilisation figure. Best of several timed repeats, after a warm-up.
    """
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_normal([size, size], seed=[1, 2]), dtype)
    b = tf.cast(tf.random.stateless_normal([size, size], seed=[3, 4]), dtype)

    @tf.function  # type: ignore[untyped-decorator]
    def repeat(a: tf.Tensor, b: tf.Tensor, n: int = 4) -> tf.Tensor:
        total = tf.zeros([], tf.float32)
        for k in range(n):
            # The sum keeps grappler from pruning the product (a float32 cast of a float32 tensor is the tensor).
            total += tf.reduce_sum(tf.cast(tf.matmul(a + float(k), b), tf.float32))
        return total

    repeat(a, b).numpy()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        repeat(a, b).numpy()
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - started))
    return {"matmul_size": size, "peak_flops": best, "peak_gflops": round(best / 1e9, 1)}


def encoder_dimensions(encoder_path: str) -> dict[str, int]:
    """Layers, hidden and feed-forward sizes of a converted encoder, read from its variables."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(encoder_path, "variables", "variables"))
    shapes = reader.get_variable_to_shape_map()
    dense = [shape for name, shape in shapes.items() if len(shape) == 2]
    hidden = max(shape[1] for shape in dense if shape[0] == shape[1]) if dense else 0
    intermediate = max((shape[1] for shape in dense if shape[0] == hidden and shape[1] > hidden), default=4 * hidden)
    layers = sum(1 for shape in dense if shape == [hidden, intermediate])
    return {"layers": layers, "hidden": hidden, "intermediate": intermediate}


def training_flops_per_example(dims: Mapping[str, int], seq_length: float) -> float:
    """Model FLOPs to train on one example of `seq_length` tokens: 3 x forward (forward + 2 x backward).

    Forward per token and layer: 2 x (4 h^2 attention projections + 2 h i feed-forward) for the weights, plus
    2 x 2 x seq x h for the attention scores and their weighted sum. Embedding lookups and the head are negligible.
    """
    h, i, n = dims["hidden"], dims["intermediate"], dims["layers"]
    forward_per_token = n * (2 * (4 * h * h + 2 * h * i) + 4 * seq_length * h)
    return 3.0 * forward_per_token * seq_length


def write_result(name: str, payload: Mapping[str, Any], output: str | os.PathLike[str] | None = None) -> Path:
    """benchmarks/results/<name>.json (or `output`), with the date and machine always included."""
    path = Path(output) if output else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"benchmark": name, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    if "machine" not in payload:
        record["machine"] = machine()
    record.update(payload)
    path.write_text(json.dumps(finite(record), indent=2, default=float, allow_nan=False) + "\n", encoding="utf-8")
    return path


def finite(value: Any) -> Any:
    """NaN and infinities (TFMA's recall on a one-class slice, say) as null: strict JSON readers reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """A right-aligned plain-text table (floats to 4 significant digits, None as blank), for the terminal."""
    cells = [[h for h in headers]] + [
        ["" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)) for v in row] for row in rows
    ]
    widths = [max(len(row[c]) for row in cells) for c in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(value.rjust(widths[c]) for c, value in enumerate(row)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def served_engine(version_dir: str | None, test_accuracy: float | None, signature: str) -> dict[str, Any]:
    """What the pushed version's `signature` is answered by, and that engine's accuracy on the eval split: an int8
    graph's is the Trainer's gate measurement (row by row, as served); an fp32 graph or TensorFlow answers as the
    SavedModel does (within 1e-4), so the Evaluator's accuracy is its own."""
    from model_server.onnx_manifest import read_onnx_manifest

    found = read_onnx_manifest(version_dir).get(signature) if version_dir else None
    if found is None or found.precision == "fp32":
        engine = "tensorflow" if found is None else "onnxruntime fp32"
        return {"engine": engine, "accuracy": test_accuracy, "accuracy_source": "Evaluator (the SavedModel)"}
    return {
        "engine": f"onnxruntime {found.precision}",
        "accuracy": found.accuracy[found.precision],
        "accuracy_examples": int(found.accuracy.get("examples", 0)),
        "fp32_accuracy_same_examples": found.accuracy["fp32"],
        "accuracy_source": "the Trainer's engine gate (assets.extra/onnx_engine.json)",
    }
