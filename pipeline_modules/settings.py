"""What the pipeline hands its module files through TFX's `custom_config`, typed, with no defaults of its own.

Why: `preprocessing_fn`, `run_fn` and `tuner_fn` run in other processes (Beam workers, a Trainer container) and get
only a JSON dict. These classes say exactly what is in it. They are built from `PipelineConfig` (the one place a
default is written) and the resolved encoder, and reading one back refuses a missing or unknown key, so a knob can
never fall back to a second default that drifted from the configuration's.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pipeline_modules.config import PipelineConfig

if TYPE_CHECKING:  # the encoder package loads TensorFlow Hub; the module files need only the settings
    from pipeline_modules.encoder import ResolvedEncoder

_Settings = TypeVar("_Settings", bound="CustomConfigSettings")


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """`value` as read back from JSON, in the type its field declares (tuples travel as lists)."""
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"custom_config[{name!r}] must be a list, got {value!r}")
        (item, _) = typing.get_args(hint)
        return tuple(_coerce(v, item, name) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"custom_config[{name!r}] must be true or false, got {value!r}")
        return value
    if hint in (int, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ValueError(f"custom_config[{name!r}] must be a number, got {value!r}")
    if hint is str and not isinstance(value, str):
        raise ValueError(f"custom_config[{name!r}] must be a string, got {value!r}")
    return hint(value)


@dataclasses.dataclass(frozen=True)
class CustomConfigSettings:
    """Fields named as `PipelineConfig`'s, except those in `ENCODER_FIELDS`, which the resolved encoder supplies."""

    # settings field -> `ResolvedEncoder` attribute it is read from (the encoder is resolved before the pipeline).
    ENCODER_FIELDS: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_config(cls: type[_Settings], config: PipelineConfig, encoder: ResolvedEncoder) -> _Settings:
        values = {
            field.name: (
                getattr(encoder, cls.ENCODER_FIELDS[field.name])
                if field.name in cls.ENCODER_FIELDS
                else getattr(config, field.name)
            )
            for field in dataclasses.fields(cls)
        }
        return cls(**values)

    def to_custom_config(self) -> dict[str, Any]:
        """A JSON-safe dict for a component's `custom_config`."""
        return {
            field.name: list(value) if isinstance(value := getattr(self, field.name), tuple) else value
            for field in dataclasses.fields(self)
        }

    @classmethod
    def from_custom_config(cls: type[_Settings], custom_config: Mapping[str, Any]) -> _Settings:
        """What `to_custom_config` wrote; a missing or unknown key is an error that names it."""
        names = [field.name for field in dataclasses.fields(cls)]
        missing = [name for name in names if name not in custom_config]
        unknown = sorted(set(custom_config) - set(names))
        if missing or unknown:
            problems = [f"missing {', '.join(missing)}"] if missing else []
            problems += [f"unknown {', '.join(unknown)}"] if unknown else []
            raise ValueError(
                f"{cls.__name__}: custom_config key(s) {'; '.join(problems)} "
                f"(the pipeline writes it with {cls.__name__}.from_config(...).to_custom_config())"
            )
        hints = typing.get_type_hints(cls)
        return cls(**{name: _coerce(custom_config[name], hints[name], name) for name in names})


@dataclasses.dataclass(frozen=True)
class TransformSettings(CustomConfigSettings):
    """What `preprocessing_fn` reads: the encoder's vocabulary and casing, the token budget and its split."""

    ENCODER_FIELDS: ClassVar[Mapping[str, str]] = {"vocab_file": "vocab_file", "do_lower_case": "do_lower_case"}

    vocab_file: str
    do_lower_case: bool
    max_seq_length: int
    head_fraction: float


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    """The values one training run uses: the configured ones, with the Tuner's best (or imported) ones on top."""

    learning_rate: float
    dropout: float
    warmup_fraction: float
    weight_decay: float
    num_epochs: float

    def with_tuned(self, values: Mapping[str, Any]) -> Hyperparameters:
        """These values, replaced by those in `values` that name a hyperparameter (others are ignored)."""
        names = {field.name for field in dataclasses.fields(self)}
        return dataclasses.replace(self, **{key: float(value) for key, value in values.items() if key in names})

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class TrainerSettings(CustomConfigSettings):
    """What `run_fn` and `tuner_fn` read: the encoder, the model, fixed hyperparameters and the Tuner's search."""

    ENCODER_FIELDS: ClassVar[Mapping[str, str]] = {
        "encoder_path": "path",
        "encoder_handle": "handle",
        "vocab_file": "vocab_file",
        "do_lower_case": "do_lower_case",
    }

    encoder_path: str
    encoder_handle: str
    # Transform's tokenization, repeated for the `explain` signature, which must cut reviews into the same pieces.
    vocab_file: str
    do_lower_case: bool
    head_fraction: float
    explain_steps: int
    pooling: str
    dropout: float
    learning_rate: float
    weight_decay: float
    warmup_fraction: float
    num_epochs: float
    train_batch_size: int
    eval_batch_size: int
    jit_compile: bool
    training_precision: str
    learning_rate_schedule: str
    train_length_bucketing: bool
    serving_length_buckets: tuple[int, ...]
    serving_engine: str
    int8_max_accuracy_drop: float
    engine_eval_examples: int
    seed: int
    tuner_trials: int
    tuner_learning_rates: tuple[float, ...]
    tuner_dropouts: tuple[float, ...]
    tuner_warmup_fractions: tuple[float, ...]

    @property
    def hyperparameters(self) -> Hyperparameters:
        """The configured hyperparameters (what Trainer uses without a Tuner or imported values)."""
        return Hyperparameters(
            **{field.name: getattr(self, field.name) for field in dataclasses.fields(Hyperparameters)}
        )


__all__ = ["CustomConfigSettings", "Hyperparameters", "TrainerSettings", "TransformSettings"]
