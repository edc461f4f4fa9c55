"""The IMDB reader: source precedence, exact counts for bad input, layouts, subsampling, TFDS mapping, the generator."""

import gzip
import io
import logging
import math
import os
import shutil
import socket
import tarfile
import time
from collections import Counter
from pathlib import Path

import pytest

from pipeline_modules import imdb_data
from pipeline_modules.imdb_data import (
    DATASET_URL,
    ImdbDataNotFound,
    ImdbLayoutError,
    ImdbRecord,
    ImdbSource,
    locate_imdb_source,
    read_imdb,
    write_synthetic_archive,
)

N_PER_CLASS = 20
EXPECTED_DROPS = {"empty": 2, "not_utf8": 1, "no_rating": 1, "rating_mismatch": 1}


def _no_network() -> bool:
    raise AssertionError("the network check must not run when a local source decides")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> imdb_data.SyntheticArchiveInfo:
    return write_synthetic_archive(
        tmp_path_factory.mktemp("imdb") / "aclImdb_v1.tar.gz", n_per_class=N_PER_CLASS, seed=11
    )


@pytest.fixture(scope="module")
def extracted(archive: imdb_data.SyntheticArchiveInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder that holds aclImdb/, as after ``tar xzf aclImdb_v1.tar.gz``."""
    target = tmp_path_factory.mktemp("extracted")
    with tarfile.open(archive.path) as handle:
        handle.extractall(target, filter="data")
    return target


def _copy_tree(extracted: Path, tmp_path: Path) -> Path:
    shutil.copytree(extracted / "aclImdb", tmp_path / "aclImdb")
    return tmp_path / "aclImdb"


# --------------------------------------------------------------------------------------------------------------------
# Reading: exact counts and reasons
# --------------------------------------------------------------------------------------------------------------------


def test_archive_with_bad_files_gives_exact_counts_and_reasons(archive: imdb_data.SyntheticArchiveInfo) -> None:
    assert archive.bad_files_per_split == EXPECTED_DROPS
    data = read_imdb(archive.path)
    report = data.report
    assert report.ignored == archive.ignored_files == 6  # README, imdb.vocab, 2 urls files, 2 unsup reviews
    for split in ("train", "eval"):
        split_report = report.splits[split]
        assert split_report.read == archive.read_per_split == 2 * N_PER_CLASS + 5
        assert split_report.kept == archive.kept_per_split == 2 * N_PER_CLASS
        assert dict(split_report.dropped) == EXPECTED_DROPS
        assert split_report.sampled is None
        records = data.splits[split]
        assert len(records) == 2 * N_PER_CLASS
        assert Counter(r.label for r in records) == {0: N_PER_CLASS, 1: N_PER_CLASS}
        assert len({r.id for r in records}) == len(records)
        for record in records:
            assert record.text.strip()
            assert record.rating in (range(7, 11) if record.label == 1 else range(1, 5))
            folder = "train" if split == "train" else "test"
            assert record.id.startswith(f"{folder}/{'pos' if record.label else 'neg'}/")
    assert report.splits["train"].log_line() == (
        f"IMDB train: read {2 * N_PER_CLASS + 5}, kept {2 * N_PER_CLASS}, dropped 5 "
        "(empty: 2, no_rating: 1, not_utf8: 1, rating_mismatch: 1)"
    )
    assert report.splits["train"].dropped_examples["not_utf8"] == [f"train/pos/{N_PER_CLASS + 1}_9.txt"]
    assert report.splits["eval"].dropped_examples["no_rating"] == [f"test/neg/{N_PER_CLASS + 1}.txt"]
    assert report.log_line().endswith("; ignored 6 other files")


def test_counts_and_drop_reasons_are_logged(
    archive: imdb_data.SyntheticArchiveInfo, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="pipeline_modules.imdb_data"):
        read_imdb(archive.path)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("IMDB eval: read 45, kept 40, dropped 5 (empty: 2") for m in messages)
    assert any("dropped 1 review(s) as rating_mismatch, e.g. test/neg/22_9.txt" in m for m in messages)


def test_extracted_folder_reads_the_same_as_the_archive(
    archive: imdb_data.SyntheticArchiveInfo, extracted: Path
) -> None:
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


def test_unreadable_and_truncated_archives_are_clear_errors(
    archive: imdb_data.SyntheticArchiveInfo, tmp_path: Path
) -> None:
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


def test_word_count_ignores_html_line_breaks() -> None:
    record = ImdbRecord(text="Great film.<br /><br />Loved it. <br/>Really", label=1, rating=9, id="x")
    assert record.word_count == 5


# --------------------------------------------------------------------------------------------------------------------
# Where the data comes from
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture()
def project(tmp_path: Path, archive: imdb_data.SyntheticArchiveInfo) -> Path:
    """A project root with an archive in the first conventional place."""
    (tmp_path / "project" / "data").mkdir(parents=True)
    shutil.copy(archive.path, tmp_path / "project" / "data" / "aclImdb_v1.tar.gz")
    return tmp_path / "project"


@pytest.fixture()
def other_archive(tmp_path: Path, archive: imdb_data.SyntheticArchiveInfo) -> Path:
    return Path(shutil.copy(archive.path, tmp_path / "elsewhere.tar.gz"))


def _empty_env(tmp_path: Path) -> dict[str, str]:
    """No IMDB_ARCHIVE and a TFDS data dir that holds nothing, so the real home directory cannot leak in."""
    (tmp_path / "no_tfds").mkdir(exist_ok=True)
    return {"TFDS_DATA_DIR": str(tmp_path / "no_tfds")}


def test_flag_beats_env_and_conventional_place(project: Path, other_archive: Path, tmp_path: Path) -> None:
    env = {**_empty_env(tmp_path), "IMDB_ARCHIVE": str(project / "data" / "aclImdb_v1.tar.gz")}
    source = locate_imdb_source(str(other_archive), project_root=project, env=env, network_check=_no_network)
    assert (source.kind, source.origin, source.path) == ("archive", "flag", other_archive.resolve())
    assert source.as_parameter() == str(other_archive.resolve())


def test_env_beats_conventional_place_and_accepts_a_folder(project: Path, extracted: Path, tmp_path: Path) -> None:
    env = {**_empty_env(tmp_path), "IMDB_ARCHIVE": str(extracted)}
    source = locate_imdb_source(None, project_root=project, env=env, network_check=_no_network)
    assert (source.kind, source.origin, source.path) == ("folder", "env", extracted.resolve())


def test_empty_flag_and_env_count_as_unset(project: Path, tmp_path: Path) -> None:
    env = {**_empty_env(tmp_path), "IMDB_ARCHIVE": ""}
    source = locate_imdb_source("", project_root=project, env=env, network_check=_no_network)
    assert (source.origin, source.path) == ("conventional", (project / "data" / "aclImdb_v1.tar.gz").resolve())


def test_conventional_places_in_order(tmp_path: Path, archive: imdb_data.SyntheticArchiveInfo, extracted: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(extracted / "aclImdb", project / "data" / "aclImdb")
    env = _empty_env(tmp_path)
    found = locate_imdb_source(None, project_root=project, env=env, network_check=_no_network)
    assert (found.kind, found.path) == ("folder", (project / "data" / "aclImdb").resolve())
    shutil.copy(archive.path, project / "data" / "aclImdb_v1_labeled.tar.gz")
    found = locate_imdb_source(None, project_root=project, env=env, network_check=_no_network)
    assert found.path == (project / "data" / "aclImdb_v1_labeled.tar.gz").resolve()
    shutil.copy(archive.path, project / "data" / "aclImdb_v1.tar.gz")
    found = locate_imdb_source(None, project_root=project, env=env, network_check=_no_network)
    assert (found.kind, found.origin) == ("archive", "conventional")
    assert found.path == (project / "data" / "aclImdb_v1.tar.gz").resolve()


@pytest.mark.parametrize("named_by", ["flag", "env"])
def test_named_path_that_does_not_exist_is_an_error_not_a_fall_through(
    named_by: str, project: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "typo" / "aclImdb_v1.tar.gz"
    env = _empty_env(tmp_path)
    if named_by == "env":
        env["IMDB_ARCHIVE"] = str(missing)
    explicit = str(missing) if named_by == "flag" else None
    with pytest.raises(ImdbDataNotFound, match=f"does not exist: {missing}"):
        locate_imdb_source(explicit, project_root=project, env=env, network_check=_no_network)


def test_tfds_when_nothing_local_and_the_network_answers(tmp_path: Path) -> None:
    calls = []

    def network_up() -> bool:
        calls.append(1)
        return True

    source = locate_imdb_source(None, project_root=tmp_path, env=_empty_env(tmp_path), network_check=network_up)
    assert (source.kind, source.origin, source.path) == ("tfds", "tfds-network", None)
    assert source.as_parameter() == "tfds"
    assert calls == [1]


def test_prepared_tfds_data_dir_needs_no_network(tmp_path: Path) -> None:
    data_dir = tmp_path / "tfds"
    (data_dir / "imdb_reviews" / "plain_text" / "1.0.0").mkdir(parents=True)
    (data_dir / "imdb_reviews" / "plain_text" / "1.0.0" / "dataset_info.json").write_text("{}")
    env = {"TFDS_DATA_DIR": str(data_dir)}
    source = locate_imdb_source(None, project_root=tmp_path, env=env, network_check=_no_network)
    assert (source.kind, source.origin, source.tfds_data_dir) == ("tfds", "tfds-prepared", data_dir)


def test_explicit_tfds(tmp_path: Path, project: Path) -> None:
    source = locate_imdb_source("tfds", project_root=project, env=_empty_env(tmp_path), network_check=_no_network)
    assert (source.kind, source.origin) == ("tfds", "flag")


def test_no_data_and_no_network_says_how_to_provide_the_data(tmp_path: Path) -> None:
    project = tmp_path / "project"
    with pytest.raises(ImdbDataNotFound) as error:
        locate_imdb_source(
            None, project_root=project, env=_empty_env(tmp_path), network_check=lambda: False, flag="--imdb"
        )
    message = str(error.value)
    assert DATASET_URL in message
    assert "--imdb /path/to/aclImdb_v1.tar.gz" in message
    assert "IMDB_ARCHIVE=/path/to/aclImdb_v1.tar.gz" in message
    for place in ("aclImdb_v1.tar.gz", "aclImdb_v1_labeled.tar.gz", "aclImdb"):
        assert str(project / "data" / place) in message
    assert "TensorFlow Datasets" in message


def test_network_check_is_bounded_and_needs_no_internet() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        assert imdb_data.tfds_reachable(timeout_s=2.0, hosts=[("127.0.0.1", listener.getsockname()[1])])
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    started = time.monotonic()
    assert not imdb_data.tfds_reachable(timeout_s=2.0, hosts=[("127.0.0.1", port)])
    assert time.monotonic() - started < 1.5  # a refused connection returns at once instead of waiting out the timeout


def test_source_fingerprint_changes_with_the_file(archive: imdb_data.SyntheticArchiveInfo, tmp_path: Path) -> None:
    path = Path(shutil.copy(archive.path, tmp_path / "a.tar.gz"))
    before = imdb_data.source_fingerprint(str(path))
    assert before == imdb_data.source_fingerprint(str(path))
    write_synthetic_archive(path, n_per_class=N_PER_CLASS + 1, seed=11)
    assert imdb_data.source_fingerprint(str(path)) != before


# --------------------------------------------------------------------------------------------------------------------
# Subsampling and order
# --------------------------------------------------------------------------------------------------------------------


def test_subsampling_is_balanced_deterministic_and_reported(
    archive: imdb_data.SyntheticArchiveInfo, extracted: Path
) -> None:
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


def test_subsampling_beyond_the_data_keeps_balance(archive: imdb_data.SyntheticArchiveInfo) -> None:
    data = read_imdb(archive.path, max_per_split=1000, seed=0)
    assert Counter(r.label for r in data.splits["train"]) == {0: N_PER_CLASS, 1: N_PER_CLASS}
    with pytest.raises(ValueError, match="at least 2"):
        read_imdb(archive.path, max_per_split=1)


def test_records_are_shuffled_deterministically(archive: imdb_data.SyntheticArchiveInfo) -> None:
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
# The synthetic archive
# --------------------------------------------------------------------------------------------------------------------


def test_synthetic_archive_is_deterministic_and_fast(tmp_path: Path) -> None:
    started = time.monotonic()
    first = write_synthetic_archive(tmp_path / "a" / "aclImdb_v1.tar.gz", n_per_class=200, seed=1)
    assert time.monotonic() - started < 1.0
    second = write_synthetic_archive(tmp_path / "b" / "aclImdb_v1.tar.gz", n_per_class=200, seed=1)
    third = write_synthetic_archive(tmp_path / "c" / "aclImdb_v1.tar.gz", n_per_class=200, seed=2)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.path.read_bytes() != third.path.read_bytes()
    with gzip.open(first.path) as raw:
        assert raw.read(1)  # a real gzip stream, as downloaded


def test_synthetic_archive_without_bad_files(tmp_path: Path) -> None:
    info = write_synthetic_archive(tmp_path / "aclImdb_v1.tar.gz", n_per_class=7, seed=0, include_bad_files=False)
    assert info.bad_files_per_split == {}
    data = read_imdb(info.path)
    for split in ("train", "eval"):
        assert (data.report.splits[split].read, data.report.splits[split].kept) == (14, 14)


def test_synthetic_reviews_look_like_imdb(tmp_path: Path) -> None:
    info = write_synthetic_archive(tmp_path / "aclImdb_v1.tar.gz", n_per_class=100, seed=3, max_words=80)
    records = read_imdb(info.path).splits["train"]
    counts = [r.word_count for r in records]
    assert max(counts) <= 80
    assert min(counts) < 30 < 50 < max(counts)  # varied lengths
    assert sum("<br /><br />" in r.text for r in records) > len(records) / 4
    assert sum(any(ord(c) > 127 for c in r.text) for r in records) > len(records) / 4


def test_synthetic_reviews_are_learnable_but_noisy(tmp_path: Path) -> None:
    """A word-count naive Bayes trained on the train split must beat chance clearly on eval, but not be perfect."""
    info = write_synthetic_archive(tmp_path / "aclImdb_v1.tar.gz", n_per_class=150, seed=4)
    data = read_imdb(info.path)

    def words(text: str) -> list[str]:
        return text.lower().replace("<br />", " ").replace(".", " ").replace(",", " ").replace("!", " ").split()

    counts = {0: Counter[str](), 1: Counter[str]()}
    for record in data.splits["train"]:
        counts[record.label].update(words(record.text))
    vocabulary = set(counts[0]) | set(counts[1])
    totals = {label: sum(c.values()) + len(vocabulary) for label, c in counts.items()}

    def log_odds(text: str) -> float:
        return sum(
            math.log((counts[1][w] + 1) / totals[1]) - math.log((counts[0][w] + 1) / totals[0]) for w in words(text)
        )

    eval_records = data.splits["eval"]
    accuracy = sum((log_odds(r.text) > 0) == (r.label == 1) for r in eval_records) / len(eval_records)
    assert accuracy > 0.85
    noisy = sum(any(w in imdb_data._NEGATIVE for w in words(r.text)) for r in data.splits["train"] if r.label == 1)
    assert noisy > 10  # positives also use negative words, so one keyword cannot decide


# --------------------------------------------------------------------------------------------------------------------
# The real archive, when a run points at it
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("IMDB_ARCHIVE"), reason="set IMDB_ARCHIVE to the real aclImdb archive")
def test_real_archive_has_12500_reviews_per_class_per_split() -> None:
    data = read_imdb(os.environ["IMDB_ARCHIVE"])
    for split in ("train", "eval"):
        assert Counter(r.label for r in data.splits[split]) == {0: 12_500, 1: 12_500}
        assert data.report.splits[split].dropped_total == 0
