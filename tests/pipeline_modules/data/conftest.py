"""One synthetic archive per test module, and the folder it extracts to, for the IMDB data tests."""

import tarfile
from pathlib import Path

import pytest

from pipeline_modules.data import SyntheticArchiveInfo, write_synthetic_archive
from tests.pipeline_modules.data.shared_archive import N_PER_CLASS


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> SyntheticArchiveInfo:
    return write_synthetic_archive(
        tmp_path_factory.mktemp("imdb") / "aclImdb_v1.tar.gz", n_per_class=N_PER_CLASS, seed=11
    )


@pytest.fixture(scope="module")
def extracted(archive: SyntheticArchiveInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder that holds aclImdb/, as after ``tar xzf aclImdb_v1.tar.gz``."""
    target = tmp_path_factory.mktemp("extracted")
    with tarfile.open(archive.path) as handle:
        handle.extractall(target, filter="data")
    return target
