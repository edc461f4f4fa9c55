"""Length bucketing: training batches padded to their longest review, serving batches to a length bucket.

Both only remove padding, so the exported model must score exactly as the always-`max_seq_length` one (to float
rounding); these tests hold the bucketed export to 1e-5 of the unbucketed export of the same weights.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import tensorflow as tf

from pipeline_modules import features
from pipeline_modules.trainer.data import bucket_by_length
from pipeline_modules.trainer.export import serving_buckets, serving_signatures, trim_to_length_bucket
from pipeline_modules.trainer.model import build_model

MAX_LENGTH = 64


def _padded(lengths: list[int], max_length: int = MAX_LENGTH) -> dict[str, tf.Tensor]:
    ids = np.zeros((len(lengths), max_length), np.int64)
    mask = np.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, :length] = np.arange(1, length + 1) + 1000 * row
        mask[row, :length] = 1
    return {
        features.INPUT_WORD_IDS: tf.constant(ids),
        features.INPUT_MASK: tf.constant(mask),
        features.INPUT_TYPE_IDS: tf.zeros_like(ids),
    }


@pytest.mark.parametrize(
    ("lengths", "width"),
    [([3, 7], 8), ([3, 9], 16), ([16], 16), ([17, 2], 64), ([64, 1], 64), ([1], 8)],
)
def test_serving_batch_is_cut_to_the_smallest_bucket_that_fits(lengths: list[int], width: int) -> None:
    trimmed = trim_to_length_bucket(_padded(lengths), [8, 16, 64])
    for key in features.ENCODER_INPUT_KEYS:
        assert trimmed[key].shape == (len(lengths), width)
    full = _padded(lengths)
    np.testing.assert_array_equal(trimmed[features.INPUT_WORD_IDS], full[features.INPUT_WORD_IDS][:, :width])
    assert int(tf.reduce_sum(full[features.INPUT_MASK][:, width:])) == 0  # only padding was removed


def test_empty_serving_batch_keeps_its_shape() -> None:
    trimmed = trim_to_length_bucket(_padded([]), [8, 64])
    assert trimmed[features.INPUT_WORD_IDS].shape == (0, 8)


def test_serving_buckets_end_at_the_padded_length() -> None:
    assert serving_buckets([512, 16, 64, 16, 0], 128) == [16, 64, 128]
    assert serving_buckets([], 128) == [128]
    assert serving_buckets((), 256) == [256]


def test_training_batches_hold_every_review_once_padded_to_their_longest() -> None:
    rng = np.random.default_rng(3)
    lengths = [int(n) for n in rng.integers(1, MAX_LENGTH + 1, size=45)]
    inputs = _padded(lengths)
    labels = tf.constant(np.arange(len(lengths)), tf.int64)  # the label doubles as the review's identity
    batched = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(8)
    seen: dict[int, int] = {}
    for batch_inputs, batch_labels in bucket_by_length(batched, 8, MAX_LENGTH, drop_remainder=False, granularity=16):
        mask = batch_inputs[features.INPUT_MASK].numpy()
        assert mask.shape[1] == mask.sum(axis=1).max()  # padded to the batch's longest, no further
        assert batch_inputs[features.INPUT_WORD_IDS].shape == mask.shape
        for row, label in enumerate(batch_labels.numpy().reshape(-1)):
            seen[int(label)] = int(mask[row].sum())
            expected = inputs[features.INPUT_WORD_IDS][int(label), : seen[int(label)]].numpy()
            np.testing.assert_array_equal(batch_inputs[features.INPUT_WORD_IDS][row, : seen[int(label)]], expected)
        within_bucket = (mask.sum(axis=1) - 1) // 16
        assert len(set(within_bucket.tolist())) == 1  # one length bucket per batch
    assert seen == dict(enumerate(lengths))


def test_training_batches_drop_the_remainder_when_repeating() -> None:
    batched = tf.data.Dataset.from_tensor_slices((_padded([5] * 10), tf.zeros([10], tf.int64))).batch(4)
    sizes = [int(labels.shape[0]) for _, labels in bucket_by_length(batched, 4, MAX_LENGTH, drop_remainder=True)]
    assert sizes == [4, 4]


@pytest.mark.parametrize("max_length", [MAX_LENGTH, 60])
def test_under_xla_training_batches_take_only_the_bucket_edges_as_lengths(max_length: int) -> None:
    rng = np.random.default_rng(5)
    lengths = [int(n) for n in rng.integers(1, max_length + 1, size=60)] + [max_length, 1]
    inputs = _padded(lengths, max_length)
    labels = tf.constant(np.arange(len(lengths)), tf.int64)
    batched = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(8)
    edges = {16, 32, 48, max_length}  # at most max_length / 16 shapes to compile, whatever the reviews
    seen: dict[int, int] = {}
    for batch_inputs, batch_labels in bucket_by_length(
        batched, 8, max_length, drop_remainder=False, granularity=16, pad_to_bucket=True
    ):
        mask = batch_inputs[features.INPUT_MASK].numpy()
        assert mask.shape[1] in edges and mask.shape[1] >= mask.sum(axis=1).max() > mask.shape[1] - 16
        for row, label in enumerate(batch_labels.numpy().reshape(-1)):
            seen[int(label)] = int(mask[row].sum())
            expected = inputs[features.INPUT_WORD_IDS][int(label), : seen[int(label)]].numpy()
            np.testing.assert_array_equal(batch_inputs[features.INPUT_WORD_IDS][row, : seen[int(label)]], expected)
            assert not mask[row, seen[int(label)] :].any()  # the rest is padding
    assert seen == dict(enumerate(lengths))


# --- the exported model: bucketed and unbucketed signatures of the same weights agree --------------------------------


@pytest.fixture(scope="module")
def transform_output(tmp_path_factory: pytest.TempPathFactory, smoke_encoder):
    """A real Transform graph for `preprocessing_fn` (no analyzers, so analysing two reviews is enough)."""
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    from pipeline_modules.transform_module import preprocessing_fn

    raw_spec = {
        features.REVIEW_KEY: tf.io.FixedLenFeature([], tf.string),
        features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(raw_spec))
    custom_config = {
        "vocab_file": smoke_encoder.vocab_file,
        "do_lower_case": smoke_encoder.do_lower_case,
        "max_seq_length": MAX_LENGTH,
        "head_fraction": 0.25,
    }
    out = tmp_path_factory.mktemp("transform")
    data = [{features.REVIEW_KEY: b"good", features.LABEL_KEY: 1}, {features.REVIEW_KEY: b"bad", features.LABEL_KEY: 0}]
    with tft_beam.Context(temp_dir=str(out / "tmp"), force_tf_compat_v1=False):
        transform_fn = (data, metadata) | tft_beam.AnalyzeDataset(
            functools.partial(preprocessing_fn, custom_config=custom_config)
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(out / "transform_output"))
    metadata_io.write_metadata(metadata, str(out / "transform_output" / tft.TFTransformOutput.RAW_METADATA_DIR))
    return tft.TFTransformOutput(str(out / "transform_output"))


TEXTS = [
    "Great.",
    "A wonderful film with a great cast, I loved it.",
    "Dull and far too long. " * 3,
    "The plot was boring, the acting was awful and the ending made no sense at all. " * 6,  # > 64 tokens
]


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_bucketed_export_scores_as_the_unbucketed_one(tmp_path, transform_output, smoke_encoder, pooling) -> None:
    tf.keras.utils.set_random_seed(5)
    model = build_model(smoke_encoder.path, pooling=pooling, dropout=0.1)
    exported = {}
    for name, buckets in (("bucketed", [8, 16, 32, MAX_LENGTH]), ("unbucketed", None)):
        path = str(tmp_path / name)
        model.save(path, save_format="tf", signatures=serving_signatures(model, transform_output, buckets))
        exported[name] = tf.saved_model.load(path)

    batches = [TEXTS[:1], TEXTS[:2], TEXTS[2:3], TEXTS, TEXTS[::-1], TEXTS[3:]]
    for batch in batches:
        text = tf.constant(batch)
        examples = tf.constant(
            [
                tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            features.REVIEW_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[t.encode()]))
                        }
                    )
                ).SerializeToString()
                for t in batch
            ]
        )
        scores = {}
        for name, loaded in exported.items():
            by_text = loaded.signatures[features.SERVING_SIGNATURE](text=text)
            by_example = loaded.signatures[features.EXAMPLES_SIGNATURE](examples=examples)
            np.testing.assert_allclose(by_text[features.PROBABILITY_OUTPUT], by_example[features.PROBABILITY_OUTPUT])
            scores[name] = by_text
        np.testing.assert_allclose(
            scores["bucketed"][features.PROBABILITY_OUTPUT],
            scores["unbucketed"][features.PROBABILITY_OUTPUT],
            atol=1e-5,
        )
        np.testing.assert_array_equal(
            scores["bucketed"][features.LABEL_OUTPUT], scores["unbucketed"][features.LABEL_OUTPUT]
        )
    # The contract is unchanged: one string in, probability and label out, any batch size.
    signature = exported["bucketed"].signatures[features.SERVING_SIGNATURE]
    assert list(signature.structured_input_signature[1]) == [features.TEXT_INPUT]
    assert set(signature.structured_outputs) == {features.PROBABILITY_OUTPUT, features.LABEL_OUTPUT}
