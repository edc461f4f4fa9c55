"""The IMDB reader: layouts, unreadable input, subsampling and order, the TFDS mapping, the real archive."""

import io
import os
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from pipeline_modules.data import ImdbLayoutError, ImdbRecord, ImdbSource, SyntheticArchiveInfo, read_imdb
from tests.pipeline_modules.data.shared_archive import N_PER_CLASS


def _copy_tree(extracted: Path, tmp_path: Path) -> Path:
    shutil.copytree(extracted / "aclImdb", tmp_path / "aclImdb")
    return tmp_path / "aclImdb"


def test_extracted_folder_reads_the_same_as_the_archive(archive: SyntheticArchiveInfo, extracted: Path) -> None:
    from_archive = read_imdb(archive.path, seed=5)
    for folder in (extracted, extracted / "aclImdb"):  # the folder holding aclImdb/, or aclImdb/ itself
        from_folder = read_imdb(folder, seed=5)
        assert from_folder.splits == from_archive.splits  # same records in the same shuffled order
        for split in ("train", "eval"):
            assert from_folder.report.splits[split].log_line() == from_archive.report.splits[split].log_line()
        assert from_folder.report.ignored == from_archive.report.ignored


def test_missing_split_folder_is_a_clear_error(extracted: Path, tmp_path: Path) -> None:
    root = _copy_tree(extracted, tmp_path)
    shutil.rmtree(root / "test" / "neg")
    with pytest.raises(ImdbLayoutError, match=r"aclImdb/test/neg") as error:
        read_imdb(root)
    assert "aclImdb/test/pos" not in str(error.value)


def test_archive_without_test_split_names_both_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "train_only.tar.gz"
    with tarfile.open(path, "w:gz") as handle:
        for name, text in (("aclImdb/train/pos/0_9.txt", b"Great."), ("aclImdb/train/neg/0_1.txt", b"Awful.")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            handle.addfile(info, io.BytesIO(text))
    with pytest.raises(ImdbLayoutError, match=r"aclImdb/test/neg, aclImdb/test/pos"):
        read_imdb(path)


def test_class_with_no_usable_review_is_an_error(extracted: Path, tmp_path: Path) -> None:
    root = _copy_tree(extracted, tmp_path)
    for review in (root / "test" / "pos").iterdir():
        review.write_bytes(b"   ")
    with pytest.raises(ImdbLayoutError, match=r"IMDB eval: no usable pos review"):
        read_imdb(root)


def test_unreadable_and_truncated_archives_are_clear_errors(archive: SyntheticArchiveInfo, tmp_path: Path) -> None:
    garbage = tmp_path / "aclImdb_v1.tar.gz"
    garbage.write_bytes(b"this is not an archive" * 100)
    with pytest.raises(ImdbLayoutError, match="neither a folder nor a tar archive"):
        read_imdb(garbage)
    # An interrupted download: every folder is present, but the last reviews are cut off. tarfile alone reads this
    # as a normal end of archive; the reader must not.
    content = archive.path.read_bytes()
    for keep in (len(content) // 2, len(content) * 9 // 10, len(content) - 4):
        truncated = tmp_path / f"truncated_{keep}.tar.gz"
        truncated.write_bytes(content[:keep])
        with pytest.raises(ImdbLayoutError, match="not a readable .tar.gz archive"):
            read_imdb(truncated)


def test_folder_without_the_layout_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "reviews").mkdir()
    with pytest.raises(ImdbLayoutError, match="does not look like the IMDB dataset"):
        read_imdb(tmp_path / "reviews")


# --------------------------------------------------------------------------------------------------------------------
# Subsampling and order
# --------------------------------------------------------------------------------------------------------------------


def test_subsampling_is_balanced_deterministic_and_reported(archive: SyntheticArchiveInfo, extracted: Path) -> None:
    first = read_imdb(archive.path, max_per_split=11, seed=3)
    for split in ("train", "eval"):
        records = first.splits[split]
        assert Counter(r.label for r in records) == {0: 5, 1: 5}  # odd budget: balance wins
        assert first.report.splits[split].sampled == 10
        assert first.report.splits[split].output == 10
        assert first.report.splits[split].kept == 2 * N_PER_CLASS
        assert first.report.splits[split].log_line().endswith(", sampled 10 (5 pos / 5 neg)")
    again = read_imdb(extracted, max_per_split=11, seed=3)  # folder listing order must not matter
    assert again.splits == first.splits
    other = read_imdb(archive.path, max_per_split=11, seed=4)
    assert {r.id for r in other.splits["train"]} != {r.id for r in first.splits["train"]}


def test_subsampling_beyond_the_data_keeps_balance(archive: SyntheticArchiveInfo) -> None:
    data = read_imdb(archive.path, max_per_split=1000, seed=0)
    assert Counter(r.label for r in data.splits["train"]) == {0: N_PER_CLASS, 1: N_PER_CLASS}
    with pytest.raises(ValueError, match="at least 2"):
        read_imdb(archive.path, max_per_split=1)


def test_records_are_shuffled_deterministically(archive: SyntheticArchiveInfo) -> None:
    first = read_imdb(archive.path, seed=1).splits["train"]
    assert read_imdb(archive.path, seed=1).splits["train"] == first
    assert read_imdb(archive.path, seed=2).splits["train"] != first
    labels = [r.label for r in first]
    longest_run = max(len(run) for run in "".join(map(str, labels)).replace("01", "0 1").replace("10", "1 0").split())
    assert longest_run < 10  # the archive is ordered by class; the output must not be


# --------------------------------------------------------------------------------------------------------------------
# TensorFlow Datasets, without the network
# --------------------------------------------------------------------------------------------------------------------


def test_tfds_records_map_to_the_same_records_and_vetting(tmp_path: Path) -> None:
    fake = {
        "train": [
            {"text": b"A wonderful film.", "label": 1},
            {"text": b"Dull and <br /><br />tedious.", "label": 0},
            {"text": b"  ", "label": 1},
            {"text": b"Caf\xe9 scene", "label": 0},
            {"text": "Un film très réussi.".encode(), "label": 1},
            {"text": b"Awful.", "label": 0},
        ],
        "test": [{"text": b"Superb.", "label": 1}, {"text": b"Boring.", "label": 0}],
    }
    asked = []

    def load(split: str, data_dir: Path | None) -> list[dict[str, object]]:
        asked.append((split, data_dir))
        return fake[split]

    source = ImdbSource(kind="tfds", origin="test", tfds_data_dir=tmp_path)
    data = read_imdb(source, tfds_load=load, seed=0)
    assert asked == [("train", tmp_path), ("test", tmp_path)]
    train = data.report.splits["train"]
    assert (train.read, train.kept, dict(train.dropped)) == (6, 4, {"empty": 1, "not_utf8": 1})
    assert train.dropped_examples == {"empty": ["train[2]"], "not_utf8": ["train[3]"]}
    by_id = {r.id: r for r in data.splits["train"]}
    assert by_id["tfds/train/4"] == ImdbRecord(text="Un film très réussi.", label=1, rating=0, id="tfds/train/4")
    assert by_id["tfds/train/1"].word_count == 3
    assert {r.rating for r in data.splits["train"] + data.splits["eval"]} == {0}
    assert sorted(r.label for r in data.splits["eval"]) == [0, 1]
    assert data.report.source == f"TensorFlow Datasets imdb_reviews from {tmp_path} (test)"


def test_real_tfds_code_path_with_a_fake_tfds_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped ``tfds.load`` + ``tfds.as_numpy`` mapping, on an in-memory tf.data.Dataset instead of a download."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    calls = []

    def fake_load(name: str, *, split: str, data_dir: str | None, shuffle_files: bool) -> object:
        calls.append((name, split, data_dir, shuffle_files))
        texts = [f"{split} great movie".encode(), f"{split} terrible movie".encode()]
        return tf.data.Dataset.from_tensor_slices({"text": texts, "label": tf.constant([1, 0], tf.int64)})

    monkeypatch.setattr(tfds, "load", fake_load)
    data = read_imdb(ImdbSource(kind="tfds", origin="test"), seed=0)
    assert calls == [("imdb_reviews", "train", None, False), ("imdb_reviews", "test", None, False)]
    assert sorted((r.text, r.label, r.rating) for r in data.splits["eval"]) == [
        ("test great movie", 1, 0),
        ("test terrible movie", 0, 0),
    ]


# --------------------------------------------------------------------------------------------------------------------
# The real archive, when a run points at it
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("IMDB_ARCHIVE"), reason="set IMDB_ARCHIVE to the real aclImdb archive")
def test_real_archive_has_12500_reviews_per_class_per_split() -> None:
    data = read_imdb(os.environ["IMDB_ARCHIVE"])
    for split in ("train", "eval"):
        assert Counter(r.label for r in data.splits[split]) == {0: 12_500, 1: 12_500}
        assert data.report.splits[split].dropped_total == 0
