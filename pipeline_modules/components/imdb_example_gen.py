"""ImdbExampleGen: the IMDB archive, its extracted folder or TFDS ``imdb_reviews`` in; a standard Examples artifact out.

Why a function-based component and not a FileBasedExampleGen with a custom Beam executor: the stock ExampleGen
splits by glob patterns over files that each hold many records, while the IMDB archive holds one review per tar member
and its split lives in member paths inside one gzip stream, so a Beam source would need a custom reader anyway.
The whole labeled dataset (50,000 reviews, about 65 MB of text) fits in memory and is read in about two seconds, so
Beam's parallelism buys nothing here, and a plain function runs unchanged under LocalDagRunner and
InteractiveContext. What downstream components rely on is reproduced by hand: ``split_names``, ``Split-<name>/``
folders of GZIP TFRecords of ``tf.train.Example``, and the ``span``/``version``/``payload_format``/``file_format``/
``input_fingerprint`` properties ExampleGen's driver and executor set.
"""

import json
import logging
import os
import time
from collections.abc import Sequence

import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from pipeline_modules import features
from pipeline_modules.data import ImdbData, ImdbRecord, read_imdb, resolve_source, source_fingerprint, summary

logger = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "eval")
DEFAULT_NUM_SHARDS = 4
FILE_PREFIX = "data_tfrecord"  # ExampleGen's own shard names: data_tfrecord-00000-of-00004.gz
FILE_FORMAT = "tfrecords_gzip"


def to_tf_example(record: ImdbRecord) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                features.REVIEW_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[record.text.encode()])),
                features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[record.label])),
                features.RATING_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[record.rating])),
                features.WORD_COUNT_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[record.word_count])),
                features.LENGTH_BUCKET_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[features.length_bucket(record.word_count).encode()])
                ),
            }
        )
    )


def write_split(records: Sequence[ImdbRecord], split_dir: str, num_shards: int = DEFAULT_NUM_SHARDS) -> list[str]:
    """Write records, in their given (already shuffled) order, as contiguous GZIP TFRecord shards; return the paths.

    Reading the shards in name order reproduces the given order, so the on-disk order is as deterministic as the
    seed that shuffled the records. No more shards than records, so no shard is empty.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}")
    shards = max(1, min(num_shards, len(records)))
    tf.io.gfile.makedirs(split_dir)
    paths = []
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    for shard in range(shards):
        begin, end = len(records) * shard // shards, len(records) * (shard + 1) // shards
        path = os.path.join(split_dir, f"{FILE_PREFIX}-{shard:05d}-of-{shards:05d}.gz")
        with tf.io.TFRecordWriter(path, options=options) as writer:
            for record in records[begin:end]:
                writer.write(to_tf_example(record).SerializeToString())
        paths.append(path)
    return paths


def write_examples_artifact(
    examples: tfx.types.standard_artifacts.Examples,
    source: str,
    max_per_split: int = 0,
    seed: int = 0,
    num_shards: int = DEFAULT_NUM_SHARDS,
) -> ImdbData:
    """The component's body, callable without a pipeline (tests, scripts) on any Examples artifact with a uri."""
    started = time.monotonic()
    resolved = resolve_source(source)
    fingerprint = source_fingerprint(resolved)
    data = read_imdb(resolved, max_per_split=max_per_split, seed=seed)
    read_s = time.monotonic() - started

    examples.split_names = artifact_utils.encode_split_names(list(SPLIT_NAMES))
    for split in SPLIT_NAMES:
        write_split(data.splits[split], artifact_utils.get_split_uri([examples], split), num_shards)

    # What ExampleGen's driver and executor set, so span/version resolvers and tfx_bsl readers treat this the same.
    examples.span = 0
    examples.version = 0
    examples.set_int_custom_property(example_gen_utils.SPAN_PROPERTY_NAME, 0)
    examples.set_int_custom_property(example_gen_utils.VERSION_PROPERTY_NAME, 0)
    examples.set_string_custom_property(example_gen_utils.FINGERPRINT_PROPERTY_NAME, fingerprint)
    payload_format = example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE
    examples_utils.set_payload_format(examples, payload_format)
    examples_utils.set_file_format(examples, FILE_FORMAT)

    # The counts travel with the artifact, so a notebook or MLMD query can see what was dropped and why.
    counts = summary(data)
    examples.set_string_custom_property("imdb_source", data.report.source)
    examples.set_string_custom_property("imdb_report", json.dumps(counts, sort_keys=True))
    examples.set_int_custom_property("imdb_ignored_files", data.report.ignored)
    for split, report in data.report.splits.items():
        examples.set_int_custom_property(f"{split}_read", report.read)
        examples.set_int_custom_property(f"{split}_kept", report.kept)
        examples.set_int_custom_property(f"{split}_dropped", report.dropped_total)
        examples.set_int_custom_property(f"{split}_examples", len(data.splits[split]))
    logger.info(
        "ImdbExampleGen: %s | wrote %s to %s in %.1f s (reading %.1f s)",
        data.report.log_line(),
        ", ".join(f"{len(data.splits[s])} {s} examples" for s in SPLIT_NAMES),
        examples.uri,
        time.monotonic() - started,
        read_s,
    )
    return data


@tfx.dsl.components.component
def ImdbExampleGen(
    examples: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
    source: tfx.dsl.components.Parameter[str],
    max_per_split: tfx.dsl.components.Parameter[int] = 0,
    seed: tfx.dsl.components.Parameter[int] = 0,
    num_shards: tfx.dsl.components.Parameter[int] = DEFAULT_NUM_SHARDS,
    source_fingerprint: tfx.dsl.components.Parameter[str] = "",
) -> None:
    """Reads IMDB reviews into shuffled, sharded ``train``/``eval`` splits of tf.Examples.

    Args:
      examples: the output; features review (bytes), label (int64, 1 = positive), rating (int64, 0 = unknown) and
        word_count (int64); counts as custom properties (``train_read``, ``train_kept``, ``train_dropped``, ...).
      source: an ``aclImdb_v1.tar.gz``-layout archive, its extracted ``aclImdb/`` folder (or the folder holding it),
        or ``"tfds"`` for TensorFlow Datasets ``imdb_reviews``; resolve it with ``locate_imdb_source``.
      max_per_split: 0 keeps every review; otherwise a seed-determined, class-balanced sample of at most this many
        reviews per split.
      seed: drives subsampling and the shuffle (the archive is sorted by class).
      num_shards: TFRecord files per split.
      source_fingerprint: ignored by the executor; pass ``pipeline_modules.data.source_fingerprint(...)`` so that
        TFX's cache (keyed on parameters) notices when the file behind an unchanged ``source`` path changes.
    """
    del source_fingerprint  # only part of the cache key; the executor records the fingerprint it actually read
    # At run time TFX passes the Examples artifact and plain values, not the annotations' types.
    write_examples_artifact(examples, source, max_per_split=max_per_split, seed=seed, num_shards=num_shards)
