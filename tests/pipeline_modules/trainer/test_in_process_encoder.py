"""The Trainer's encoder built in-process from the converter's layers: same scores as `hub.KerasLayer`, every weight
matched, bfloat16 compute under `mixed_bfloat16` with float32 weights, logits and export, and `hub.KerasLayer` kept
for encoders that exist only as SavedModels."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
from safetensors.numpy import save_file

from pipeline_modules import features
from pipeline_modules.config import config_for
from pipeline_modules.encoder import ResolvedEncoder, resolve_encoder
from pipeline_modules.encoder.conversion import CONVERSION_INFO
from pipeline_modules.encoder.loading import is_converted_encoder, load_converted_encoder
from pipeline_modules.settings import TrainerSettings
from pipeline_modules.trainer.model import build_model, compile_model, float32_model

HIDDEN, INTERMEDIATE, LAYERS, VOCAB, POSITIONS = 32, 64, 2, 120, 64
ATOL = 1e-5  # the requirement: the in-process encoder scores as hub.KerasLayer does, at float32


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> ResolvedEncoder:
    """A random 2-layer BERT as Hugging Face files, converted by `resolve_encoder` as the pipeline does."""
    rng = np.random.RandomState(3)
    config = {
        "model_type": "bert",
        "hidden_size": HIDDEN,
        "num_attention_heads": 4,
        "num_hidden_layers": LAYERS,
        "intermediate_size": INTERMEDIATE,
        "vocab_size": VOCAB,
        "max_position_embeddings": POSITIONS,
        "type_vocab_size": 2,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
    }

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": rand(VOCAB, HIDDEN) * 5,
        "embeddings.position_embeddings.weight": rand(POSITIONS, HIDDEN),
        "embeddings.token_type_embeddings.weight": rand(2, HIDDEN),
        "embeddings.LayerNorm.weight": 1.0 + rand(HIDDEN),
        "embeddings.LayerNorm.bias": rand(HIDDEN),
        "pooler.dense.weight": rand(HIDDEN, HIDDEN),
        "pooler.dense.bias": rand(HIDDEN),
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        for name, (out_dim, in_dim) in {
            "attention.self.query": (HIDDEN, HIDDEN),
            "attention.self.key": (HIDDEN, HIDDEN),
            "attention.self.value": (HIDDEN, HIDDEN),
            "attention.output.dense": (HIDDEN, HIDDEN),
            "intermediate.dense": (INTERMEDIATE, HIDDEN),
            "output.dense": (HIDDEN, INTERMEDIATE),
        }.items():
            weights[f"{p}.{name}.weight"] = rand(out_dim, in_dim)
            weights[f"{p}.{name}.bias"] = rand(out_dim)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[f"{p}.{norm}.weight"] = 1.0 + rand(HIDDEN)
            weights[f"{p}.{norm}.bias"] = rand(HIDDEN)
    checkpoint = tmp_path_factory.mktemp("hf") / "tiny"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps(config))
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (checkpoint / "vocab.txt").write_text("\n".join(special + [f"w{i}" for i in range(VOCAB - 5)]) + "\n")
    save_file(weights, str(checkpoint / "model.safetensors"))
    return resolve_encoder(str(checkpoint), tmp_path_factory.mktemp("encoders"))


def encoder_inputs(batch: int = 4, length: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """Random reviews' ids with padding (one row fully real, the others cut short), as int64 like Transform's."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(5, VOCAB, size=(batch, length)).astype(np.int64)
    mask = np.ones_like(ids)
    for row in range(1, batch):
        mask[row, length - 3 * row :] = 0
    return {
        features.INPUT_WORD_IDS: ids * mask,
        features.INPUT_MASK: mask,
        features.INPUT_TYPE_IDS: np.zeros_like(ids),
    }


def set_head(model: tf.keras.Model, seed: int = 1) -> None:
    rng = np.random.RandomState(seed)
    head = model.get_layer("logit")
    head.set_weights([rng.standard_normal((HIDDEN, 1)).astype(np.float32), np.array([0.1], np.float32)])


def settings_for(encoder: ResolvedEncoder, **overrides: object) -> TrainerSettings:
    return TrainerSettings.from_config(config_for("smoke", **overrides), encoder)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def in_process(encoder: ResolvedEncoder) -> tf.keras.Model:
    """The Trainer's float32 model as `build_model` makes it for a converted encoder, its head fixed."""
    model = build_model(encoder.path, pooling="mean", dropout=0.1)
    set_head(model)
    return model


@pytest.fixture(scope="module")
def through_hub(encoder: ResolvedEncoder) -> tf.keras.Model:
    """The same model the way it was built before: the SavedModel through `hub.KerasLayer`."""
    model = build_model(encoder.path, pooling="mean", dropout=0.1, in_process=False)
    set_head(model)
    return model


def test_a_converted_encoder_is_rebuilt_in_process_under_its_layer_names(
    encoder: ResolvedEncoder, in_process: tf.keras.Model, through_hub: tf.keras.Model
) -> None:
    assert is_converted_encoder(encoder.path)
    nested = in_process.get_layer("bert_encoder")
    assert isinstance(nested, tf.keras.Model) and not isinstance(nested, hub.KerasLayer)
    assert isinstance(through_hub.get_layer("bert_encoder"), hub.KerasLayer)
    names = [layer.name for layer in nested.layers]
    assert {"embeddings", "attention_bias", "pooler", *(f"transformer_layer_{i}" for i in range(LAYERS))} <= set(names)
    assert len(nested.trainable_weights) == 5 + 16 * LAYERS + 2  # every weight of the encoder trains


def test_in_process_scores_equal_hub_keras_layer_at_float32(
    in_process: tf.keras.Model, through_hub: tf.keras.Model
) -> None:
    inputs = encoder_inputs()
    got = in_process(inputs, training=False).numpy()
    want = through_hub(inputs, training=False).numpy()
    assert np.ptp(want) > 0.1  # the reviews score apart, so agreement means something
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
    # Both encoder outputs (what "mean" and "cls" pooling read) agree too.
    as_int32 = {key: tf.constant(value, tf.int32) for key, value in inputs.items()}
    got_encoded = in_process.get_layer("bert_encoder")(as_int32, training=False)
    want_encoded = through_hub.get_layer("bert_encoder")(as_int32, training=False)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(got_encoded[key].numpy(), want_encoded[key].numpy(), rtol=0, atol=ATOL, err_msg=key)


def test_every_saved_weight_is_restored(in_process: tf.keras.Model, through_hub: tf.keras.Model) -> None:
    """The rebuilt encoder's weights are the SavedModel's values, one for one (what `hub.KerasLayer` trains)."""

    def described(layer: tf.keras.layers.Layer) -> list[tuple[str, tuple[int, ...], float]]:
        return sorted((v.name, tuple(v.shape), float(np.sum(v.numpy()))) for v in layer.trainable_weights)

    assert described(in_process.get_layer("bert_encoder")) == described(through_hub.get_layer("bert_encoder"))


@pytest.mark.parametrize(
    ("num_layers", "named"), [(LAYERS - 1, "transformer_layer_1"), (LAYERS + 1, "transformer_layer_2")]
)
def test_a_saved_model_that_does_not_match_the_rebuilt_network_fails(
    encoder: ResolvedEncoder, tmp_path: Path, num_layers: int, named: str
) -> None:
    """A value left over in the SavedModel, or a weight nothing restores, is an error that names it."""
    changed = tmp_path / "changed"
    shutil.copytree(encoder.path, changed)
    info = json.loads((changed / CONVERSION_INFO).read_text())
    (changed / CONVERSION_INFO).write_text(json.dumps({**info, "num_layers": num_layers}))
    with pytest.raises(ValueError, match=named):
        build_model(str(changed), pooling="mean", dropout=0.1)


def test_a_saved_model_of_other_shapes_fails(encoder: ResolvedEncoder, tmp_path: Path) -> None:
    changed = tmp_path / "wider"
    shutil.copytree(encoder.path, changed)
    info = json.loads((changed / CONVERSION_INFO).read_text())
    (changed / CONVERSION_INFO).write_text(json.dumps({**info, "intermediate_size": 2 * INTERMEDIATE}))
    with pytest.raises(ValueError, match="do not match the rebuilt network"):
        load_converted_encoder(changed)


def test_a_foreign_saved_model_stays_with_hub_keras_layer_in_float32(
    encoder: ResolvedEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    foreign = tmp_path / "foreign"
    shutil.copytree(encoder.path, foreign)
    (foreign / CONVERSION_INFO).unlink()  # a SavedModel from TF Hub: nothing says how to rebuild it
    assert not is_converted_encoder(foreign)
    caplog.set_level(logging.WARNING)
    model = build_model(str(foreign), pooling="mean", dropout=0.1, precision="mixed_bfloat16")
    layer = model.get_layer("bert_encoder")
    assert isinstance(layer, hub.KerasLayer) and layer.compute_dtype == "float32"
    assert "trains in float32" in caplog.text
    assert model(encoder_inputs(), training=False).dtype == tf.float32
    with pytest.raises(ValueError, match="not a complete encoder conversion"):
        build_model(str(foreign), pooling="mean", dropout=0.1, in_process=True)


def test_mixed_bfloat16_computes_the_encoder_in_bfloat16_with_float32_weights_and_logits(
    encoder: ResolvedEncoder, in_process: tf.keras.Model
) -> None:
    model = build_model(encoder.path, pooling="mean", dropout=0.1, precision="mixed_bfloat16")
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # set only while building
    nested = model.get_layer("bert_encoder")
    assert {nested.get_layer(name).compute_dtype for name in ("embeddings", "transformer_layer_0", "pooler")} == {
        "bfloat16"
    }
    assert {v.dtype for v in model.weights} == {tf.float32}
    assert model.get_layer("logit").compute_dtype == model.get_layer("mean_pooling").compute_dtype == "float32"
    set_head(model)
    inputs = encoder_inputs()
    logits = model(inputs, training=False)
    assert logits.dtype == tf.float32
    want = in_process(inputs, training=False).numpy()
    np.testing.assert_allclose(logits.numpy(), want, rtol=0, atol=0.1 * np.ptp(want))  # bfloat16 keeps 8 bits
    assert not np.allclose(logits.numpy(), want, rtol=0, atol=ATOL)  # and it did compute in bfloat16
    # XLA compiles the in-process encoder whole (it rounds in other places than the kernels do: compare to float32).
    compiled = tf.function(lambda x: model(x, training=False), jit_compile=True)
    np.testing.assert_allclose(compiled(inputs).numpy(), want, rtol=0, atol=0.1 * np.ptp(want))


def test_a_bfloat16_train_step_updates_float32_weights_and_exports_a_float32_model(
    encoder: ResolvedEncoder,
) -> None:
    tf.keras.utils.set_random_seed(5)
    settings = settings_for(encoder, training_precision="mixed_bfloat16")
    model = compile_model(settings, settings.hyperparameters, train_steps=4)
    assert model.get_layer("bert_encoder").compute_dtype == "bfloat16"
    before = [v.numpy().copy() for v in model.trainable_weights]
    inputs, labels = encoder_inputs(batch=8, seed=2), np.array([[0], [1]] * 4, np.int64)
    for _ in range(2):
        loss = model.train_on_batch(inputs, labels, return_dict=True)["loss"]
    assert np.isfinite(loss)
    assert all(v.dtype == tf.float32 for v in model.trainable_weights)
    assert sum(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_weights, strict=True)) > 30

    exported = float32_model(model, settings, settings.hyperparameters.dropout)
    assert exported.get_layer("bert_encoder").compute_dtype == "float32"
    assert exported.get_layer("bert_encoder").get_layer("transformer_layer_1").compute_dtype == "float32"
    for trained, copied in zip(model.weights, exported.weights, strict=True):
        np.testing.assert_array_equal(trained.numpy(), copied.numpy(), err_msg=trained.name)
    # The export scores as a float32 network with these weights, not as the bfloat16 one did.
    float32_twin = build_model(encoder.path, pooling=settings.pooling, dropout=0.1)
    float32_twin.set_weights(model.get_weights())
    inputs = encoder_inputs(seed=4)
    np.testing.assert_array_equal(
        exported(inputs, training=False).numpy(), float32_twin(inputs, training=False).numpy()
    )


def test_a_float32_model_is_exported_as_it_is(encoder: ResolvedEncoder, in_process: tf.keras.Model) -> None:
    settings = settings_for(encoder)
    assert settings.training_precision == "float32"
    assert float32_model(in_process, settings, settings.hyperparameters.dropout) is in_process


def test_training_precision_is_checked_with_the_configuration() -> None:
    assert config_for("smoke", training_precision="mixed_bfloat16").training_precision == "mixed_bfloat16"
    with pytest.raises(ValueError, match="training_precision must be one of float32, mixed_bfloat16"):
        config_for("smoke", training_precision="mixed_float16")
