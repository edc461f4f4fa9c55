"""Where the data comes from: source precedence, named paths that must exist, TFDS, the network check, fingerprints."""

import shutil
import socket
import time
from pathlib import Path

import pytest

from pipeline_modules.data import (
    DATASET_URL,
    ImdbDataNotFound,
    SyntheticArchiveInfo,
    locate,
    locate_imdb_source,
    write_synthetic_archive,
)
from tests.pipeline_modules.data.shared_archive import N_PER_CLASS


def _no_network() -> bool:
    raise AssertionError("the network check must not run when a local source decides")


@pytest.fixture()
def project(tmp_path: Path, archive: SyntheticArchiveInfo) -> Path:
    """A project root with an archive in the first conventional place."""
    (tmp_path / "project" / "data").mkdir(parents=True)
    shutil.copy(archive.path, tmp_path / "project" / "data" / "aclImdb_v1.tar.gz")
    return tmp_path / "project"


@pytest.fixture()
def other_archive(tmp_path: Path, archive: SyntheticArchiveInfo) -> Path:
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


def test_conventional_places_in_order(tmp_path: Path, archive: SyntheticArchiveInfo, extracted: Path) -> None:
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
        assert locate.tfds_reachable(timeout_s=2.0, hosts=[("127.0.0.1", listener.getsockname()[1])])
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    started = time.monotonic()
    assert not locate.tfds_reachable(timeout_s=60.0, hosts=[("127.0.0.1", port)])
    # a refused connection returns at once instead of waiting out the timeout (a bound far from any machine's speed)
    assert time.monotonic() - started < 30.0


def test_source_fingerprint_changes_with_the_file(archive: SyntheticArchiveInfo, tmp_path: Path) -> None:
    path = Path(shutil.copy(archive.path, tmp_path / "a.tar.gz"))
    before = locate.source_fingerprint(str(path))
    assert before == locate.source_fingerprint(str(path))
    write_synthetic_archive(path, n_per_class=N_PER_CLASS + 1, seed=11)
    assert locate.source_fingerprint(str(path)) != before
