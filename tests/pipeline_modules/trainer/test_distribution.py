"""The Trainer's strategy choice, and a few real training steps under a two-device MirroredStrategy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline_modules.config import config_for
from pipeline_modules.encoder import ResolvedEncoder
from pipeline_modules.settings import TrainerSettings
from pipeline_modules.trainer import distribution

PROJECT_ROOT = Path(__file__).resolve().parents[3]

# Logical devices must be configured before TensorFlow initialises, so the two-device run gets its own process.
TWO_CPU_TRAINING = textwrap.dedent(
    """
    import json, sys
    from stacks.compat import use_legacy_keras
    use_legacy_keras()
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from pipeline_modules import features
    from pipeline_modules.config import config_for
    from pipeline_modules.encoder import ResolvedEncoder
    from pipeline_modules.settings import TrainerSettings
    from pipeline_modules.trainer import distribution, model as trainer_model

    strategy = distribution.distribution_strategy()
    encoder = ResolvedEncoder(path=sys.argv[1], vocab_file="", do_lower_case=True, hidden_size=0, handle=sys.argv[1])
    config = config_for("demo", train_batch_size=4, eval_batch_size=4, pooling="mean")
    settings = TrainerSettings.from_config(config, encoder)
    train_batch, _ = distribution.global_batch_sizes(settings, strategy)
    hparams = settings.hyperparameters.with_tuned({"learning_rate": 1e-4, "dropout": 0.0})
    with strategy.scope():
        model = trainer_model.compile_model(settings, hparams, train_steps=3)
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 2000, size=(train_batch * 3, 16))
    inputs = {features.INPUT_WORD_IDS: ids, features.INPUT_MASK: np.ones_like(ids),
              features.INPUT_TYPE_IDS: np.zeros_like(ids)}
    labels = (ids[:, 0] > 1500).astype("int64")
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(train_batch).repeat()
    history = model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0)
    variable = model.trainable_variables[0]
    print(json.dumps({
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "global_batch": train_batch,
        "mirrored_on": sorted(v.device for v in getattr(variable, "values", [variable])),
        "losses": history.history["loss"],
    }))
    """
)


def _settings(**overrides: object) -> TrainerSettings:
    encoder = ResolvedEncoder(
        path="/encoder", vocab_file="/encoder/vocab.txt", do_lower_case=True, hidden_size=0, handle="x"
    )
    return TrainerSettings.from_config(config_for("demo", **overrides), encoder)


def test_default_strategy_on_one_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    strategy = distribution.distribution_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert distribution.global_batch_sizes(_settings(train_batch_size=8, eval_batch_size=16), strategy) == (8, 16)


def test_tf_config_with_several_workers_means_multi_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = {}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker"}}))
    monkeypatch.setattr(
        distribution.tf.distribute,
        "MultiWorkerMirroredStrategy",
        lambda: captured.setdefault("strategy", "multi-worker"),
    )
    assert distribution.distribution_strategy() == "multi-worker"


@pytest.mark.slow
def test_trains_a_few_steps_on_two_logical_cpus(smoke_encoder) -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "-c", TWO_CPU_TRAINING, smoke_encoder.path],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["strategy"] == "MirroredStrategy"
    assert result["replicas"] == 2
    assert result["global_batch"] == 8  # 4 per replica, scaled by the replicas in sync
    assert len(result["mirrored_on"]) == 2 and result["mirrored_on"][0] != result["mirrored_on"][1]
    assert all(loss == loss for loss in result["losses"])  # finite, not NaN


@pytest.mark.parametrize(
    ("cpu_flags", "gpus", "native"),
    [
        ({"avx2", "avx512f", "amx_bf16", "amx_tile"}, [], True),  # Sapphire Rapids and later: AMX
        ({"avx2", "avx512f", "avx512_bf16"}, [], True),  # Zen 4, Cooper Lake
        ({"avx2", "avx512f"}, [], False),  # Skylake / Cascade Lake (Colab's usual CPUs): bfloat16 is emulated
        ({"avx2"}, [], False),
        (set(), [(8, 0)], True),  # A100
        ({"amx_bf16"}, [(7, 5)], False),  # a T4 trains, whatever the host CPU has
        (set(), [(9, 0), (7, 5)], False),  # every GPU must have it
    ],
)
def test_native_bfloat16_from_the_cpu_flags_or_the_gpus(cpu_flags: set[str], gpus: list, native: bool) -> None:
    assert distribution.native_bfloat16(cpu_flags, gpus) is native


def test_auto_precision_is_bfloat16_only_where_native() -> None:
    assert distribution.training_precision("auto", native=True) == "mixed_bfloat16"
    assert distribution.training_precision("auto", native=False) == "float32"
    for configured in ("float32", "mixed_bfloat16"):  # an explicit choice is kept, native or not
        assert distribution.training_precision(configured, native=False) == configured
    assert distribution.training_precision("auto") in ("mixed_bfloat16", "float32")  # this machine's answer
