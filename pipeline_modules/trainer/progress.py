"""What training reports: loss, throughput and ETA in the log, TensorBoard events, the curve and a summary."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from pipeline_modules.settings import Hyperparameters

logger = logging.getLogger(__name__)


class ProgressLog(tf.keras.callbacks.Callback):
    """Logs loss, throughput and ETA about every tenth of training, and keeps the curve for the notebook."""

    def __init__(self, total_steps: int, batch_size: int, path: str) -> None:
        super().__init__()
        self.total_steps = total_steps
        self.batch_size = batch_size
        self.path = path
        self.log_every = max(total_steps // 10, 1)
        self.curve_every = max(total_steps // 200, 1)  # reading the metrics syncs the device: not every step
        self.curve: list[dict[str, float]] = []
        self.started = 0.0

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self.started = time.monotonic()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        step = batch + 1
        last = step == self.total_steps
        if step % self.curve_every and step % self.log_every and not last:
            return
        values = {k: float(v) for k, v in (logs or {}).items()}
        elapsed = time.monotonic() - self.started
        self.curve.append({"step": step, "elapsed_s": round(elapsed, 2), **values})
        if step % self.log_every == 0 or last:
            rate = step * self.batch_size / max(elapsed, 1e-9)
            eta = (self.total_steps - step) * elapsed / step
            logger.info(
                "Trainer step %d/%d  loss %.4f  accuracy %.3f  %.1f reviews/s  ETA %.0f s",
                step,
                self.total_steps,
                values.get("loss", float("nan")),
                values.get("binary_accuracy", float("nan")),
                rate,
                eta,
            )

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        with tf.io.gfile.GFile(self.path, "w") as handle:
            json.dump({"batch_size": self.batch_size, "steps": self.curve}, handle)


def training_callbacks(model_run_dir: str, train_steps: int, train_batch: int) -> list[tf.keras.callbacks.Callback]:
    """TensorBoard logs and `training_curve.json` in Trainer's model run directory."""
    os.makedirs(model_run_dir, exist_ok=True)
    return [
        tf.keras.callbacks.TensorBoard(log_dir=model_run_dir, update_freq=max(train_steps // 20, 1)),
        ProgressLog(train_steps, train_batch, os.path.join(model_run_dir, "training_curve.json")),
    ]


def write_training_summary(
    model_run_dir: str,
    history: tf.keras.callbacks.History,
    train_steps: int,
    train_batch: int,
    hparams: Hyperparameters,
) -> dict[str, Any]:
    """`training_summary.json`: the final metrics, the steps and the hyperparameters this model trained with."""
    summary: dict[str, Any] = {key: float(values[-1]) for key, values in history.history.items()}
    summary.update(train_steps=train_steps, train_batch_size=train_batch, hyperparameters=hparams.as_dict())
    with tf.io.gfile.GFile(os.path.join(model_run_dir, "training_summary.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    logger.info("Trainer: finished, %s", {k: v for k, v in summary.items() if k != "hyperparameters"})
    return summary
