"""Where training runs: the distribution strategy for what this process can see, and the global batch sizes."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from pipeline_modules.settings import TrainerSettings


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
