"""Where training runs: the distribution strategy for what this process can see, and the global batch sizes."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence

import tensorflow as tf

from pipeline_modules.settings import TrainerSettings

logger = logging.getLogger(__name__)
BFLOAT16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})  # /proc/cpuinfo flags of native bfloat16 matmuls


def distribution_strategy() -> tf.distribute.Strategy:
    """The strategy for what this process can see: several workers, several GPUs or CPUs, or one device.

    `TF_CONFIG` naming more than one worker (Vertex AI / Kubeflow multi-worker jobs set it) means
    MultiWorkerMirroredStrategy; several local GPUs, or several logical CPU devices configured before TensorFlow
    starts, mean MirroredStrategy; otherwise the default one-device strategy.
    """
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    if len(cluster.get("worker", [])) + len(cluster.get("chief", [])) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    for device_type in ("GPU", "CPU"):
        devices = tf.config.list_logical_devices(device_type)
        if len(devices) > 1:
            return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.get_strategy()


def global_batch_sizes(settings: TrainerSettings, strategy: tf.distribute.Strategy) -> tuple[int, int]:
    """Global (train, eval) batch sizes: the configured per-replica sizes times the replicas that train in sync."""
    replicas = strategy.num_replicas_in_sync
    return settings.train_batch_size * replicas, settings.eval_batch_size * replicas


def native_bfloat16(
    cpu_flags: set[str] | None = None, gpu_capabilities: Sequence[tuple[int, int]] | None = None
) -> bool:
    """Whether training computes bfloat16 natively here: on every visible GPU (compute capability 8.0+), or with no
    GPU on a CPU with AMX or AVX512-BF16. Elsewhere bfloat16 is emulated and slower than float32 (a T4, an AVX2 CPU).
    The arguments stand in for this machine's (tests)."""
    if gpu_capabilities is None:
        details = [tf.config.experimental.get_device_details(g) for g in tf.config.list_physical_devices("GPU")]
        gpu_capabilities = [d.get("compute_capability", (0, 0)) for d in details]
    if gpu_capabilities:
        return all(tuple(c) >= (8, 0) for c in gpu_capabilities)
    if cpu_flags is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                line = next((line for line in f if line.startswith("flags")), "")
        except OSError:  # not Linux: no way to tell, so no bfloat16
            line = ""
        cpu_flags = set(line.partition(":")[2].split())
    return bool(BFLOAT16_CPU_FLAGS & cpu_flags)


def training_precision(configured: str, native: bool | None = None) -> str:
    """The Keras dtype policy to train under: `configured`, with "auto" resolved by :func:`native_bfloat16`."""
    if configured != "auto":
        return configured
    chosen = "mixed_bfloat16" if (native_bfloat16() if native is None else native) else "float32"
    logger.info("Trainer: training precision auto -> %s (native bfloat16: %s)", chosen, chosen != "float32")
    return chosen
