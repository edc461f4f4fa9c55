"""The checkpoints the encoder tests convert: all-MiniLM-L6-v2 (converted once per session) and a tiny random BERT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from pipeline_modules.encoder import ResolvedEncoder, resolve_encoder


@pytest.fixture(scope="session")
def hf_config(minilm_checkpoint_dir: Path) -> dict:
    return json.loads((minilm_checkpoint_dir / "config.json").read_text())


@pytest.fixture(scope="session")
def hf_weights(minilm_checkpoint_dir: Path) -> dict[str, np.ndarray]:
    return load_file(str(minilm_checkpoint_dir / "model.safetensors"))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("encoder_cache")


@pytest.fixture(scope="session")
def minilm(cache_dir: Path) -> ResolvedEncoder:
    """The offline default, converted once for the session (the layers, conversion and handles tests share it)."""
    return resolve_encoder(None, cache_dir)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, minilm_checkpoint_dir: Path) -> Path:
    """A random 2-layer BERT in the older BertForPreTraining layout: 'bert.' prefixes, LayerNorm gamma/beta names,
    an MLM head to ignore, tanh-GELU and no pooler, to exercise what the MiniLM checkpoint does not."""
    rng = np.random.default_rng(0)
    hidden, inter, vocab_size, max_pos = 32, 64, 30522, 64
    config = {
        "model_type": "bert",
        "hidden_size": hidden,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "intermediate_size": inter,
        "vocab_size": vocab_size,
        "max_position_embeddings": max_pos,
        "type_vocab_size": 2,
        "hidden_act": "gelu_new",
        "layer_norm_eps": 1e-12,
    }

    def rand(*shape: int) -> np.ndarray:
        return rng.normal(0.0, 0.2, size=shape).astype(np.float32)

    weights = {
        "bert.embeddings.word_embeddings.weight": rand(vocab_size, hidden),
        "bert.embeddings.position_embeddings.weight": rand(max_pos, hidden),
        "bert.embeddings.token_type_embeddings.weight": rand(2, hidden),
        "bert.embeddings.LayerNorm.gamma": 1.0 + rand(hidden),
        "bert.embeddings.LayerNorm.beta": rand(hidden),
        "bert.embeddings.position_ids": np.arange(max_pos, dtype=np.int64)[None],
        "cls.predictions.bias": rand(vocab_size),
    }
    for i in range(2):
        p = f"bert.encoder.layer.{i}"
        for name, (out_dim, in_dim) in {
            "attention.self.query": (hidden, hidden),
            "attention.self.key": (hidden, hidden),
            "attention.self.value": (hidden, hidden),
            "attention.output.dense": (hidden, hidden),
            "intermediate.dense": (inter, hidden),
            "output.dense": (hidden, inter),
        }.items():
            weights[f"{p}.{name}.weight"] = rand(out_dim, in_dim)
            weights[f"{p}.{name}.bias"] = rand(out_dim)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[f"{p}.{ln}.gamma"] = 1.0 + rand(hidden)
            weights[f"{p}.{ln}.beta"] = rand(hidden)
    path = tmp_path_factory.mktemp("hf") / "tiny-bert"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    shutil.copy(minilm_checkpoint_dir / "vocab.txt", path / "vocab.txt")
    save_file(weights, str(path / "model.safetensors"))
    return path
