"""ImdbExampleGen: run inside a real (one-component) TFX pipeline and read back what downstream components will read."""

import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from tfx import v1 as tfx
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts

from pipeline_modules import features
from pipeline_modules.components.imdb_example_gen import ImdbExampleGen, write_examples_artifact, write_split
from pipeline_modules.data import (
    ImdbDataNotFound,
    ImdbRecord,
    SyntheticArchiveInfo,
    source_fingerprint,
    write_synthetic_archive,
)

N_PER_CLASS = 30


def _read_split(split_dir: Path) -> tuple[list[str], list[tf.train.Example]]:
    """Shard names and examples, shards in name order (the order readers without shuffling use)."""
    shards = sorted(p.name for p in split_dir.iterdir())
    examples = []
    for shard in shards:
        for raw in tf.data.TFRecordDataset(str(split_dir / shard), compression_type="GZIP"):
            examples.append(tf.train.Example.FromString(raw.numpy()))
    return shards, examples


def _longest_label_run(examples: list[tf.train.Example]) -> int:
    longest = run = 0
    previous = None
    for example in examples:
        label = example.features.feature[features.LABEL_KEY].int64_list.value[0]
        run = run + 1 if label == previous else 1
        previous = label
        longest = max(longest, run)
    return longest


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticArchiveInfo, object]:
    """One LocalDagRunner run with sqlite metadata; returns the archive info and the published Examples artifact."""
    root = tmp_path_factory.mktemp("pipeline")
    info = write_synthetic_archive(root / "aclImdb_v1.tar.gz", n_per_class=N_PER_CLASS, seed=21)
    example_gen = ImdbExampleGen(source=str(info.path), seed=5, source_fingerprint=source_fingerprint(str(info.path)))
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(root / "metadata.sqlite"))
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="imdb-example-gen-test",
        pipeline_root=str(root / "pipeline_root"),
        components=[example_gen],
        metadata_connection_config=connection,
        enable_cache=False,
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)
    store = metadata_store.MetadataStore(connection)
    [artifact] = store.get_artifacts_by_type(standard_artifacts.Examples.TYPE_NAME)
    return info, artifact


def test_pipeline_publishes_a_standard_examples_artifact(pipeline_run: tuple) -> None:
    info, artifact = pipeline_run
    assert artifact_utils.decode_split_names(artifact.properties["split_names"].string_value) == ["train", "eval"]
    assert artifact.properties["span"].int_value == 0
    assert artifact.properties["version"].int_value == 0
    custom = artifact.custom_properties
    assert custom["payload_format"].string_value == "FORMAT_TF_EXAMPLE"
    assert custom["file_format"].string_value == "tfrecords_gzip"
    assert custom["input_fingerprint"].string_value == source_fingerprint(str(info.path))
    for split in ("train", "eval"):
        assert custom[f"{split}_read"].int_value == info.read_per_split
        assert custom[f"{split}_kept"].int_value == info.kept_per_split
        assert custom[f"{split}_dropped"].int_value == info.dropped_per_split
        assert custom[f"{split}_examples"].int_value == 2 * N_PER_CLASS
    assert custom["imdb_ignored_files"].int_value == info.ignored_files
    report = json.loads(custom["imdb_report"].string_value)
    assert report["splits"]["eval"]["dropped"] == info.bad_files_per_split


def test_pipeline_writes_shuffled_sharded_gzip_tf_examples(pipeline_run: tuple) -> None:
    _, artifact = pipeline_run
    uri = Path(artifact.uri)
    assert sorted(p.name for p in uri.iterdir()) == ["Split-eval", "Split-train"]
    for split in ("train", "eval"):
        shards, examples = _read_split(uri / f"Split-{split}")
        assert shards == [f"data_tfrecord-{i:05d}-of-00004.gz" for i in range(4)]
        assert len(examples) == 2 * N_PER_CLASS
        for example in examples:
            feature = example.features.feature
            assert set(feature) == {
                features.REVIEW_KEY,
                features.LABEL_KEY,
                features.RATING_KEY,
                features.WORD_COUNT_KEY,
                features.LENGTH_BUCKET_KEY,
            }
            review = feature[features.REVIEW_KEY].bytes_list.value[0].decode("utf-8")
            [label] = feature[features.LABEL_KEY].int64_list.value
            [rating] = feature[features.RATING_KEY].int64_list.value
            [word_count] = feature[features.WORD_COUNT_KEY].int64_list.value
            assert review.strip()
            assert rating in (range(7, 11) if label == 1 else range(1, 5))
            assert word_count == ImdbRecord(text=review, label=label, rating=rating, id="").word_count
            [bucket] = feature[features.LENGTH_BUCKET_KEY].bytes_list.value
            assert bucket.decode() == features.length_bucket(word_count)
        labels = Counter(e.features.feature[features.LABEL_KEY].int64_list.value[0] for e in examples)
        assert labels == {0: N_PER_CLASS, 1: N_PER_CLASS}
        assert _longest_label_run(examples) < 10  # the archive is ordered by class; the examples must not be


def test_artifact_is_read_as_tf_examples_by_tfx_utilities(pipeline_run: tuple) -> None:
    """The helpers StatisticsGen/Transform use to pick a reader must see gzip TFRecords of tf.Example."""
    _, mlmd_artifact = pipeline_run
    examples = standard_artifacts.Examples()
    examples.set_mlmd_artifact(mlmd_artifact)
    assert examples_utils.get_payload_format(examples) == example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE
    assert examples_utils.get_file_format(examples) == "tfrecords_gzip"
    assert examples.splits == ["train", "eval"]


def _standalone_artifact(uri: Path) -> standard_artifacts.Examples:
    artifact = standard_artifacts.Examples()
    artifact.uri = str(uri)
    return artifact


def test_executor_subsamples_and_is_deterministic(tmp_path: Path) -> None:
    info = write_synthetic_archive(tmp_path / "aclImdb_v1.tar.gz", n_per_class=N_PER_CLASS, seed=2)
    runs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        artifact = _standalone_artifact(tmp_path / name)
        write_examples_artifact(artifact, str(info.path), max_per_split=20, seed=seed, num_shards=3)
        assert artifact.get_int_custom_property("train_examples") == 20
        runs[name] = {split: _read_split(tmp_path / name / f"Split-{split}") for split in ("train", "eval")}
    shards, examples = runs["a"]["train"]
    assert shards == [f"data_tfrecord-{i:05d}-of-00003.gz" for i in range(3)]
    assert Counter(e.features.feature[features.LABEL_KEY].int64_list.value[0] for e in examples) == {0: 10, 1: 10}
    assert runs["a"] == runs["b"]
    assert runs["a"]["train"][1] != runs["c"]["train"][1]


def test_executor_reads_the_extracted_folder_too(tmp_path: Path) -> None:
    info = write_synthetic_archive(tmp_path / "aclImdb_v1.tar.gz", n_per_class=5, seed=3)
    with tarfile.open(info.path) as archive:
        archive.extractall(tmp_path / "extracted", filter="data")
    from_archive, from_folder = _standalone_artifact(tmp_path / "a"), _standalone_artifact(tmp_path / "f")
    write_examples_artifact(from_archive, str(info.path), seed=9)
    write_examples_artifact(from_folder, str(tmp_path / "extracted" / "aclImdb"), seed=9)
    for split in ("train", "eval"):
        assert _read_split(tmp_path / "a" / f"Split-{split}") == _read_split(tmp_path / "f" / f"Split-{split}")


def test_missing_source_fails_before_writing(tmp_path: Path) -> None:
    artifact = _standalone_artifact(tmp_path / "out")
    with pytest.raises(ImdbDataNotFound, match="does not exist"):
        write_examples_artifact(artifact, str(tmp_path / "nowhere.tar.gz"))
    assert not (tmp_path / "out").exists()


def test_write_split_never_writes_empty_shards(tmp_path: Path) -> None:
    records = [ImdbRecord(text=f"review {i}", label=i % 2, rating=9 if i % 2 else 2, id=str(i)) for i in (0, 1)]
    paths = write_split(records, str(tmp_path / "Split-train"), num_shards=4)
    assert [Path(p).name for p in paths] == ["data_tfrecord-00000-of-00002.gz", "data_tfrecord-00001-of-00002.gz"]
    _, examples = _read_split(tmp_path / "Split-train")
    assert [e.features.feature[features.REVIEW_KEY].bytes_list.value[0] for e in examples] == [b"review 0", b"review 1"]
