"""Cross-stack scores: the same model scores the same reviews within 1e-5 on every supported stack.

Why: the project runs on Python 3.11 / TFX 1.16 / TF 2.16 and on Python 3.13 / TFX 1.21 / TF 2.21, and a user must
get the same probability for the same review from the same weights on either. This module builds a small BERT
sentiment model from numbers no library version can change (NumPy's legacy `RandomState` stream, not `default_rng`
and not Keras initialisers), through the product's own code paths: a Hugging Face checkpoint with the real
all-MiniLM-L6-v2 vocabulary and a shrunk copy of its config, `resolve_encoder` (the converter), a real Transform
graph from `preprocessing_fn` with the smoke preset's `TransformSettings`, `build_model` and
`export_serving_model`. It scores fixed reviews through both exported signatures and compares the probabilities,
labels and signature specs with `cross_stack_scores.json`.

The golden file was generated on Python 3.11 / TFX 1.16; the same file must pass unchanged on Python 3.13 / TFX
1.21. To regenerate it (only when the model, the reviews or the product's tokenization deliberately change), run on
the Python 3.11 stack:

    UPDATE_CROSS_STACK_SCORES=1 python -m pytest tests/pipeline_modules/trainer/test_cross_stack_scores.py

which writes the file instead of comparing with it (the comparing tests then report as skipped, saying so).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_transform.output_wrapper import TFTransformOutput

from pipeline_modules import features
from pipeline_modules.config import PipelineConfig, config_for
from pipeline_modules.encoder import ResolvedEncoder, resolve_encoder
from pipeline_modules.settings import TransformSettings
from tests.conftest import packaged_checkpoint_dir

GOLDEN_FILE = Path(__file__).with_name("cross_stack_scores.json")
UPDATE_ENV = "UPDATE_CROSS_STACK_SCORES"

SCORE_ATOL = 1e-5  # the requirement: the same model scores the same reviews within 1e-5 on either stack
SIGNATURE_ATOL = 1e-6  # `serving_default` and `from_examples` run the same graph on the same stack

SEED = 20240611
# The tiny encoder: all-MiniLM-L6-v2's config and vocabulary (30522 tokens), shrunk.
TINY_SIZES = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
WORD_SCALE = 1.0  # standard deviation of the word embeddings: what tells one review from another
WEIGHT_SCALE = 0.2  # of the encoder's other weights (LayerNorm gammas: 1 + 0.5 * this), large enough that they matter
# The head. Mean-pooled outputs of a random transformer share a large common component (with the kernel below it
# adds about 2.65 to every logit), so a constant bias takes it off: the probabilities then spread over 0.15-0.85
# instead of crowding near 0 or 1, and a difference between stacks cannot hide in a saturated sigmoid.
HEAD_SCALE = 0.45  # standard deviation of the head's kernel
HEAD_BIAS = -2.3

REVIEWS = [
    "Great.",
    "A wonderful film with a great cast, I loved it.",
    "Terrible.<br /><br />The plot was boring and the acting was awful.",
    "Une critique élogieuse : très réussi, Amélie ! Crème brûlée et café.",
    "这部电影非常好看！素晴らしい映画でした。정말 최고예요.",
    "Loved it 😍🍿👍 would watch again 🎬",
    "NOT good. Not good at all!!! 2/10, WOULDN'T recommend.",
    # Well over the smoke preset's 32-token budget: head and tail are kept, the middle is dropped.
    "It starts well, with a sharp script.<br />"
    + "Then the middle drags on and on, scene after scene of nothing happening. " * 8
    + "<br /><br />But the ending is moving and beautifully shot.",
]


def _normal(rng: np.random.RandomState, *shape: int, scale: float = WEIGHT_SCALE) -> np.ndarray:
    """float32 draws from the legacy stream, whose values NumPy keeps identical across versions."""
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def tiny_bert_weights(config: dict[str, Any], seed: int = SEED) -> dict[str, np.ndarray]:
    """A random BERT in the Hugging Face BertModel layout (all-MiniLM-L6-v2's names), drawn in a fixed order."""
    rng = np.random.RandomState(seed)
    hidden, inter = int(config["hidden_size"]), int(config["intermediate_size"])
    vocab, positions = int(config["vocab_size"]), int(config["max_position_embeddings"])

    def layer_norm(prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}.weight": 1.0 + _normal(rng, hidden, scale=WEIGHT_SCALE / 2),
            f"{prefix}.bias": _normal(rng, hidden),
        }

    def dense(prefix: str, out_dim: int, in_dim: int) -> dict[str, np.ndarray]:
        return {f"{prefix}.weight": _normal(rng, out_dim, in_dim), f"{prefix}.bias": _normal(rng, out_dim)}

    weights = {
        "embeddings.word_embeddings.weight": _normal(rng, vocab, hidden, scale=WORD_SCALE),
        "embeddings.position_embeddings.weight": _normal(rng, positions, hidden),
        "embeddings.token_type_embeddings.weight": _normal(rng, int(config["type_vocab_size"]), hidden),
        **layer_norm("embeddings.LayerNorm"),
        "embeddings.position_ids": np.arange(positions, dtype=np.int64)[None],
    }
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}"
        weights.update(dense(f"{p}.attention.self.query", hidden, hidden))
        weights.update(dense(f"{p}.attention.self.key", hidden, hidden))
        weights.update(dense(f"{p}.attention.self.value", hidden, hidden))
        weights.update(dense(f"{p}.attention.output.dense", hidden, hidden))
        weights.update(layer_norm(f"{p}.attention.output.LayerNorm"))
        weights.update(dense(f"{p}.intermediate.dense", inter, hidden))
        weights.update(dense(f"{p}.output.dense", hidden, inter))
        weights.update(layer_norm(f"{p}.output.LayerNorm"))
    weights.update(dense("pooler.dense", hidden, hidden))
    return weights


def head_weights(hidden: int, seed: int = SEED + 1) -> tuple[np.ndarray, np.ndarray]:
    """The `logit` Dense layer's kernel [hidden, 1] (from its own legacy stream) and bias [1]."""
    rng = np.random.RandomState(seed)
    return _normal(rng, hidden, 1, scale=HEAD_SCALE), np.array([HEAD_BIAS], np.float32)


def stack() -> dict[str, str]:
    """The versions that decide the numbers, recorded in the golden file (and printed on a mismatch)."""
    versions = {"python": platform.python_version(), "tensorflow": tf.__version__}
    for name in ("tfx", "tensorflow-transform", "tensorflow-text", "tensorflow-hub", "tf-keras", "numpy"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _example(review: str) -> bytes:
    feature = {features.REVIEW_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[review.encode()]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _spec(spec: Any) -> dict[str, Any]:
    return {"dtype": spec.dtype.name, "shape": spec.shape.as_list()}


def signature_specs(loaded: Any) -> dict[str, Any]:
    """Input and output names, dtypes and shapes of the exported signatures, as the golden file records them."""
    specs = {}
    for name in (features.SERVING_SIGNATURE, features.EXAMPLES_SIGNATURE):
        signature = loaded.signatures[name]
        specs[name] = {
            "inputs": {key: _spec(value) for key, value in sorted(signature.structured_input_signature[1].items())},
            "outputs": {key: _spec(value) for key, value in sorted(signature.structured_outputs.items())},
        }
    return specs


# --- the model, built deterministically through the product's code paths ---------------------------------------------


@pytest.fixture(scope="module")
def smoke_config() -> PipelineConfig:
    return config_for("smoke")


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory, smoke_config: PipelineConfig) -> ResolvedEncoder:
    """The tiny checkpoint written as Hugging Face files and converted by `resolve_encoder`, as the pipeline does."""
    source = packaged_checkpoint_dir()
    config = {**json.loads((source / "config.json").read_text()), **TINY_SIZES}
    assert smoke_config.encoder_num_layers <= config["num_hidden_layers"]
    checkpoint = tmp_path_factory.mktemp("hf") / "tiny-minilm"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps(config, indent=2))
    shutil.copy(source / "vocab.txt", checkpoint / "vocab.txt")
    from safetensors.numpy import save_file

    save_file(tiny_bert_weights(config), str(checkpoint / "model.safetensors"))
    encoder = resolve_encoder(
        str(checkpoint), tmp_path_factory.mktemp("encoders"), num_layers=smoke_config.encoder_num_layers
    )
    assert (encoder.hidden_size, encoder.do_lower_case) == (TINY_SIZES["hidden_size"], True)
    return encoder


@pytest.fixture(scope="module")
def transform_output(
    tmp_path_factory: pytest.TempPathFactory, smoke_config: PipelineConfig, tiny_encoder: ResolvedEncoder
) -> TFTransformOutput:
    """A real Transform graph for `preprocessing_fn` (no analyzers, so analysing two reviews is enough)."""
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    from pipeline_modules.transform_module import preprocessing_fn

    tft_beam: Any = importlib.import_module("tensorflow_transform.beam")  # its re-exports are untyped to mypy
    raw_spec = {
        features.REVIEW_KEY: tf.io.FixedLenFeature([], tf.string),
        features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(raw_spec))
    custom_config = TransformSettings.from_config(smoke_config, tiny_encoder).to_custom_config()
    out = tmp_path_factory.mktemp("transform")
    data = [{features.REVIEW_KEY: b"good", features.LABEL_KEY: 1}, {features.REVIEW_KEY: b"bad", features.LABEL_KEY: 0}]
    with tft_beam.Context(temp_dir=str(out / "tmp"), force_tf_compat_v1=False):
        transform_fn = (data, metadata) | tft_beam.AnalyzeDataset(
            functools.partial(preprocessing_fn, custom_config=custom_config)
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(out / "transform_output"))
    metadata_io.write_metadata(metadata, str(out / "transform_output" / TFTransformOutput.RAW_METADATA_DIR))
    return TFTransformOutput(str(out / "transform_output"))


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    smoke_config: PipelineConfig,
    tiny_encoder: ResolvedEncoder,
    transform_output: TFTransformOutput,
) -> Any:
    """`build_model` with every trainable weight fixed (encoder: the checkpoint; head: set here), exported, loaded."""
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the loaded Transform graph uses)

    from pipeline_modules.trainer.export import export_serving_model
    from pipeline_modules.trainer.model import build_model

    model = build_model(tiny_encoder.path, pooling="mean", dropout=smoke_config.dropout)
    encoder_layer, head = model.get_layer("bert_encoder"), model.get_layer("logit")
    kernel, bias = head_weights(tiny_encoder.hidden_size)
    head.kernel.assign(kernel)
    head.bias.assign(bias)
    # No trainable weight is left to a Keras initialiser: all are the converted checkpoint's or the head's.
    fixed = {id(v) for v in encoder_layer.trainable_weights} | {id(head.kernel), id(head.bias)}
    assert [v.name for v in model.trainable_weights if id(v) not in fixed] == []
    assert len(encoder_layer.trainable_weights) == 5 + 16 * TINY_SIZES["num_hidden_layers"] + 2

    path = str(tmp_path_factory.mktemp("serving_model") / "1")
    export_serving_model(model, transform_output, smoke_config.serving_length_buckets, path)
    return tf.saved_model.load(path)


@pytest.fixture(scope="module")
def scored(served: Any) -> dict[str, dict[str, np.ndarray]]:
    """The reviews scored in one batch through each signature."""
    by_text = served.signatures[features.SERVING_SIGNATURE](**{features.TEXT_INPUT: tf.constant(REVIEWS)})
    examples = tf.constant([_example(review) for review in REVIEWS])
    by_example = served.signatures[features.EXAMPLES_SIGNATURE](**{features.EXAMPLES_INPUT: examples})
    return {
        name: {key: outputs[key].numpy() for key in (features.PROBABILITY_OUTPUT, features.LABEL_OUTPUT)}
        for name, outputs in ((features.SERVING_SIGNATURE, by_text), (features.EXAMPLES_SIGNATURE, by_example))
    }


@pytest.fixture(scope="module")
def token_ids(transform_output: TFTransformOutput) -> list[list[int]]:
    """The reviews' encoder input ids as the Transform graph makes them, padding cut off (tokenization's share)."""
    transformed = transform_output.transform_features_layer()({features.REVIEW_KEY: tf.constant(REVIEWS)})
    ids, mask = transformed[features.INPUT_WORD_IDS].numpy(), transformed[features.INPUT_MASK].numpy()
    return [row[: int(length)].tolist() for row, length in zip(ids, mask.sum(axis=1), strict=True)]


@pytest.fixture(scope="module")
def golden(
    served: Any, scored: dict[str, dict[str, np.ndarray]], token_ids: list[list[int]]
) -> Iterator[dict[str, Any]]:
    """The committed golden values, or (with UPDATE_CROSS_STACK_SCORES=1) this stack's, written to the file."""
    if os.environ.get(UPDATE_ENV) == "1":
        text = scored[features.SERVING_SIGNATURE]
        record = {
            "about": (
                "Golden scores of tests/pipeline_modules/trainer/test_cross_stack_scores.py: generated on Python "
                f"3.11 / TFX 1.16 with {UPDATE_ENV}=1; the same file must pass on Python 3.13 / TFX 1.21."
            ),
            "generated_on": stack(),
            "seed": SEED,
            "tiny_sizes": TINY_SIZES,
            "atol": SCORE_ATOL,
            "signatures": signature_specs(served),
            "reviews": REVIEWS,
            "input_word_ids": token_ids,
            "probabilities": [float(p) for p in text[features.PROBABILITY_OUTPUT]],
            "labels": [label.decode() for label in text[features.LABEL_OUTPUT]],
        }
        text_json = json.dumps(record, indent=2, ensure_ascii=False)
        text_json = re.sub(r"\[[\d,\s]+\]", lambda m: json.dumps(json.loads(m.group(0))), text_json)  # ids: a line each
        GOLDEN_FILE.write_text(text_json + "\n", encoding="utf-8")
        pytest.skip(f"{UPDATE_ENV}=1: wrote {GOLDEN_FILE} from this stack ({stack()}); nothing was compared")
    if not GOLDEN_FILE.is_file():
        pytest.fail(f"{GOLDEN_FILE} is missing: generate it on Python 3.11 / TFX 1.16 with {UPDATE_ENV}=1")
    yield json.loads(GOLDEN_FILE.read_text(encoding="utf-8"))


# --- the checks ------------------------------------------------------------------------------------------------------


def test_weights_come_from_the_legacy_stream_alone() -> None:
    """Two draws give bit-identical weights: nothing in them depends on global state or a library's initialiser."""
    config = {**json.loads((packaged_checkpoint_dir() / "config.json").read_text()), **TINY_SIZES}
    first, second = tiny_bert_weights(config), tiny_bert_weights(config)
    assert list(first) == list(second)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    np.testing.assert_array_equal(head_weights(32)[0], head_weights(32)[0])


def test_both_signatures_score_alike(scored: dict[str, dict[str, np.ndarray]]) -> None:
    text, examples = scored[features.SERVING_SIGNATURE], scored[features.EXAMPLES_SIGNATURE]
    np.testing.assert_allclose(
        text[features.PROBABILITY_OUTPUT], examples[features.PROBABILITY_OUTPUT], rtol=0, atol=SIGNATURE_ATOL
    )
    np.testing.assert_array_equal(text[features.LABEL_OUTPUT], examples[features.LABEL_OUTPUT])


def test_scores_are_spread_so_the_comparison_means_something(scored: dict[str, dict[str, np.ndarray]]) -> None:
    probabilities = scored[features.SERVING_SIGNATURE][features.PROBABILITY_OUTPUT]
    assert probabilities.shape == (len(REVIEWS),)
    assert probabilities.max() - probabilities.min() >= 0.3, probabilities
    gaps = np.abs(probabilities[:, None] - probabilities[None, :]) + np.eye(len(REVIEWS))
    assert gaps.min() > 10 * SCORE_ATOL, probabilities  # every review scores its own, far apart at the tolerance
    labels = set(scored[features.SERVING_SIGNATURE][features.LABEL_OUTPUT].tolist())
    assert labels == {features.POSITIVE.encode(), features.NEGATIVE.encode()}


def test_golden_file_records_its_stack_and_reviews(golden: dict[str, Any]) -> None:
    assert set(golden["generated_on"]) == set(stack()), golden["generated_on"]
    assert golden["reviews"] == REVIEWS, f"the reviews changed: regenerate {GOLDEN_FILE.name} with {UPDATE_ENV}=1"
    assert (golden["seed"], golden["tiny_sizes"]) == (SEED, TINY_SIZES)
    assert len(golden["probabilities"]) == len(golden["labels"]) == len(REVIEWS)


def test_tokenization_equals_the_golden_one(
    token_ids: list[list[int]], golden: dict[str, Any], smoke_config: PipelineConfig
) -> None:
    """Tokenization is compared apart from the network, so a mismatch of scores says which of the two moved."""
    for review, ids, expected in zip(REVIEWS, token_ids, golden["input_word_ids"], strict=True):
        assert ids == expected, review
    lengths = [len(ids) for ids in token_ids]
    assert lengths[-1] == smoke_config.max_seq_length  # the long review is cut to the budget
    assert max(lengths[:-1]) < smoke_config.max_seq_length


def test_signatures_equal_the_golden_ones(served: Any, golden: dict[str, Any]) -> None:
    assert signature_specs(served) == golden["signatures"]
    text = golden["signatures"][features.SERVING_SIGNATURE]
    assert list(text["inputs"]) == [features.TEXT_INPUT]
    assert set(text["outputs"]) == {features.PROBABILITY_OUTPUT, features.LABEL_OUTPUT}


@pytest.mark.parametrize("signature", [features.SERVING_SIGNATURE, features.EXAMPLES_SIGNATURE])
def test_scores_equal_the_golden_ones(
    scored: dict[str, dict[str, np.ndarray]], golden: dict[str, Any], signature: str
) -> None:
    outputs = scored[signature]
    np.testing.assert_allclose(
        outputs[features.PROBABILITY_OUTPUT],
        np.asarray(golden["probabilities"], np.float64),
        rtol=0,
        atol=SCORE_ATOL,
        err_msg=f"generated on {golden['generated_on']}, scored on {stack()}",
    )
    assert [label.decode() for label in outputs[features.LABEL_OUTPUT]] == golden["labels"]


def test_each_review_alone_scores_as_in_the_batch(served: Any, golden: dict[str, Any]) -> None:
    """A batch of one is cut to a shorter length bucket than the whole batch: its score must not move."""
    serve = served.signatures[features.SERVING_SIGNATURE]
    for review, expected in zip(REVIEWS, golden["probabilities"], strict=True):
        alone = serve(**{features.TEXT_INPUT: tf.constant([review])})[features.PROBABILITY_OUTPUT].numpy()
        np.testing.assert_allclose(alone, [expected], rtol=0, atol=SCORE_ATOL, err_msg=review)
