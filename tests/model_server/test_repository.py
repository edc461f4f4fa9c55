"""The version manager without a server or TensorFlow: scans are driven by hand with poll_once()."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from model_server.errors import Code, InvalidArgument, NotFound
from model_server.metrics import Metrics
from model_server.model import ModelLoadError
from model_server.model_config import ModelConfig, VersionPolicy
from model_server.repository import ModelRepository, ModelVersionManager, State, list_versions
from model_server.version_dirs import LoadOptions


class FakeServable:
    def __init__(self, name: str, version: int, path: str):
        self.name, self.version, self.path = name, version, path
        self.warmup_requests = 0

    def engine_routes(self) -> dict[str, tuple[str, int]]:  # what the engine metrics read of a loaded version
        return {"serving_default": ("tensorflow", 0)}


class Loader:
    """Loads any directory with saved_model.pb, except those containing a BROKEN marker."""

    def __init__(self) -> None:
        self.loads: list[int] = []

    def __call__(self, name: str, version: int, path: str) -> Any:  # a FakeServable standing in for a model
        self.loads.append(version)
        if os.path.exists(os.path.join(path, "BROKEN")):
            raise ModelLoadError(f"cannot load {path}")
        return FakeServable(name, version, path)


def make_version(base: Path, name: str, complete: bool = True, broken: bool = False) -> Path:
    d = base / name
    (d / "variables").mkdir(parents=True)
    (d / "variables" / "variables.index").write_bytes(b"x")
    if complete:
        (d / "saved_model.pb").write_bytes(b"pb")
    if broken:
        (d / "BROKEN").write_text("")
    return d


def manager(
    base: Path,
    policy: VersionPolicy | None = None,
    labels: dict[str, int] | None = None,
    metrics: Metrics | None = None,
) -> tuple[ModelVersionManager, Loader]:
    loader = Loader()
    config = ModelConfig("m", str(base), policy or VersionPolicy(), labels or {})
    m = ModelVersionManager(config, loader, metrics or Metrics(), 1.0)
    return m, loader


def settle(m: ModelVersionManager) -> None:
    """Two scans: a version is trusted once it looked the same twice."""
    m.poll_once()
    m.poll_once()


def test_only_integer_directories_are_versions(tmp_path: Path) -> None:
    for name in ("1", "20", ".3.tmp", ".4.incomplete", "tmp-5", "6a", "-7", "٣"):
        make_version(tmp_path, name)
    (tmp_path / "8").write_text("a file, not a directory")
    assert sorted(list_versions(str(tmp_path))) == [1, 20]


def test_a_new_version_loads_only_after_two_identical_scans(tmp_path: Path) -> None:
    make_version(tmp_path, "1")
    m, loader = manager(tmp_path)
    m.poll_once()
    assert loader.loads == [] and not m.ready()
    m.poll_once()
    assert loader.loads == [1] and m.get().version == 1


def test_a_directory_still_being_written_is_not_loaded(tmp_path: Path) -> None:
    m, loader = manager(tmp_path)
    d = make_version(tmp_path, "1", complete=False)
    m.poll_once()
    (d / "variables" / "variables.data-00000-of-00001").write_bytes(b"weights")  # the copy goes on
    m.poll_once()
    assert loader.loads == []
    (d / "saved_model.pb").write_bytes(b"pb")  # the last file lands
    m.poll_once()
    assert loader.loads == []
    m.poll_once()
    assert loader.loads == [1]


def test_a_complete_looking_directory_without_saved_model_is_reported_not_loaded(tmp_path: Path) -> None:
    make_version(tmp_path, "1", complete=False)
    m, loader = manager(tmp_path)
    settle(m)
    assert loader.loads == []
    [status] = m.status()
    assert status.state == State.END and status.error_code == Code.NOT_FOUND
    assert "SavedModel file does not exist" in status.error_message


def test_latest_policy_swaps_to_the_new_version_and_retires_the_old(tmp_path: Path) -> None:
    make_version(tmp_path, "1")
    m, loader = manager(tmp_path)
    settle(m)
    old = m.get()
    make_version(tmp_path, "2")
    settle(m)
    assert m.get().version == 2 and m.available_versions() == [2]
    assert old.version == 1  # a request that already holds v1 keeps a working object
    states = {s.version: s.state for s in m.status()}
    assert states == {2: State.AVAILABLE, 1: State.END}
    with pytest.raises(NotFound, match=r"Specific\(m, 1\)"):
        m.get(version=1)


def test_a_broken_version_is_skipped_reported_and_the_previous_keeps_serving(tmp_path: Path) -> None:
    metrics = Metrics()
    make_version(tmp_path, "1")
    m, loader = manager(tmp_path, metrics=metrics)
    settle(m)
    make_version(tmp_path, "2", broken=True)
    settle(m)
    assert m.get().version == 1
    status = {s.version: s for s in m.status()}
    assert status[1].state == State.AVAILABLE
    assert status[2].state == State.END and "cannot load" in status[2].error_message
    assert metrics.registry.get_sample_value("model_server_model_load_failures_total", {"model": "m"}) == 1
    settle(m)
    assert loader.loads.count(2) == 1  # not retried while its files are unchanged
    os.remove(tmp_path / "2" / "BROKEN")  # fixed in place: its files changed, so it is tried again
    settle(m)
    assert m.get().version == 2 and loader.loads.count(2) == 2


def test_latest_n_all_and_specific_policies(tmp_path: Path) -> None:
    for v in ("1", "2", "3"):
        make_version(tmp_path, v)
    for policy, expected in [
        (VersionPolicy("latest", num_versions=2), [3, 2]),
        (VersionPolicy("all"), [3, 2, 1]),
        (VersionPolicy("specific", versions=(1, 3, 9)), [3, 1]),
    ]:
        m, _ = manager(tmp_path, policy)
        settle(m)
        assert m.available_versions() == expected, policy
        assert m.get().version == expected[0]


def test_labels_resolve_to_loaded_versions(tmp_path: Path) -> None:
    for v in ("1", "2"):
        make_version(tmp_path, v)
    m, _ = manager(tmp_path, VersionPolicy("specific", versions=(1, 2)), {"stable": 1, "canary": 2, "old": 7})
    settle(m)
    assert m.get(label="stable").version == 1 and m.get(label="canary").version == 2
    with pytest.raises(InvalidArgument, match="Unrecognized servable version label: nope"):
        m.get(label="nope")
    with pytest.raises(NotFound, match=r"Specific\(m, 7\)"):
        m.get(label="old")
    assert [s.version for s in m.status(label="canary")] == [2]


def test_a_removed_version_directory_is_unloaded(tmp_path: Path) -> None:
    for v in ("1", "2"):
        make_version(tmp_path, v)
    m, _ = manager(tmp_path, VersionPolicy("all"))
    settle(m)
    os.rename(tmp_path / "2", tmp_path / ".2.deleted")
    m.poll_once()
    assert m.available_versions() == [1]
    assert [s.version for s in m.status()] == [1]  # the status list forgets versions whose directory is gone


def test_status_of_unknown_things(tmp_path: Path) -> None:
    m, _ = manager(tmp_path / "missing")
    settle(m)
    with pytest.raises(NotFound, match="Could not find any versions of model m"):
        m.status()
    with pytest.raises(NotFound, match=r"Servable not found for request: Latest\(m\)"):
        m.get()
    repo = ModelRepository([], Loader(), Metrics(), 1.0)
    with pytest.raises(NotFound, match=r"Servable not found for request: Latest\(x\)"):
        repo.get_model("x")
    with pytest.raises(NotFound, match=r"Specific\(x, 3\)"):
        repo.get_model("x", 3)


def test_reload_adds_removes_and_relabels(tmp_path: Path) -> None:
    for v in ("1", "2"):
        make_version(tmp_path / "a", v)
    make_version(tmp_path / "b", "5")
    policy = VersionPolicy("specific", versions=(1, 2))
    repo = ModelRepository([ModelConfig("a", str(tmp_path / "a"), policy, {"stable": 1})], Loader(), Metrics(), 1.0)
    settle(managed(repo, "a"))
    assert repo.get_model("a", label="stable").version == 1
    repo.reload([ModelConfig("a", str(tmp_path / "a"), policy, {"stable": 2}), ModelConfig("b", str(tmp_path / "b"))])
    assert repo.get_model("a", label="stable").version == 2
    settle(managed(repo, "b"))
    assert repo.get_model("b").version == 5
    repo.reload([ModelConfig("b", str(tmp_path / "b"))])
    with pytest.raises(NotFound):
        repo.get_model("a")
    repo.stop()


# --- start-up settling, load retries and load threads (TF Serving's --max_num_load_retries, --num_load_threads) ---


def managed(repo: ModelRepository, name: str) -> ModelVersionManager:
    m = repo.manager(name)
    assert m is not None
    return m


def test_the_first_load_settles_once_what_is_on_disk_loaded_or_failed(tmp_path: Path) -> None:
    make_version(tmp_path / "a", "1")
    make_version(tmp_path / "b", "1", broken=True)
    d = make_version(tmp_path / "c", "1")
    configs = [ModelConfig(name, str(tmp_path / name)) for name in ("a", "b", "c", "empty")]
    repo = ModelRepository(configs, Loader(), Metrics(), 1.0)
    managers = {name: managed(repo, name) for name in ("a", "b", "c", "empty")}
    for m in managers.values():
        m.poll_once()
    assert not repo.wait_first_load(0.01)  # one look is not enough to trust a directory
    (d / "variables" / "variables.data-00000-of-00001").write_bytes(b"weights")  # c's copy goes on
    for m in managers.values():
        m.poll_once()
    assert {n: m.settled for n, m in managers.items()} == {"a": True, "b": True, "c": False, "empty": True}
    assert repo.first_load_progress() == "c: no complete version on disk yet"
    assert not repo.wait_first_load(0.01)
    managers["c"].poll_once()  # unchanged since the last look: loaded, settled
    assert managers["c"].settled and managers["c"].get().version == 1
    assert repo.wait_first_load(0.01) and repo.first_load_progress() == ""
    assert [s.state for s in managers["b"].status()] == [State.END]


class FlakyLoader(Loader):
    """Fails the first ``failures`` attempts of every version."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def __call__(self, name: str, version: int, path: str) -> Any:  # a FakeServable standing in for a model
        self.loads.append(version)
        if self.loads.count(version) <= self.failures:
            raise ModelLoadError(f"transient failure {self.loads.count(version)}")
        return FakeServable(name, version, path)


@pytest.mark.parametrize(("retries", "available"), [(2, True), (1, False), (0, False)])
def test_failed_loads_are_retried_max_num_load_retries_times(tmp_path: Path, retries: int, available: bool) -> None:
    make_version(tmp_path, "1")
    loader = FlakyLoader(failures=2)
    options = LoadOptions(max_num_load_retries=retries, load_retry_interval_seconds=0.0)
    m = ModelVersionManager(ModelConfig("m", str(tmp_path)), loader, Metrics(), 1.0, options)
    settle(m)
    assert loader.loads == [1] * min(retries + 1, 3)
    [status] = m.status()
    assert (status.state == State.AVAILABLE) is available
    if not available:
        assert status.error_message == f"transient failure {retries + 1}"


def test_num_load_threads_limits_loads_across_models(tmp_path: Path) -> None:
    import threading
    import time

    active, peak, lock = [0], [0], threading.Lock()

    class SlowLoader(Loader):
        def __call__(self, name: str, version: int, path: str) -> Any:  # a FakeServable standing in for a model
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.2)
            with lock:
                active[0] -= 1
            return FakeServable(name, version, path)

    for name in ("a", "b", "c"):
        make_version(tmp_path / name, "1")
    configs = [ModelConfig(name, str(tmp_path / name)) for name in ("a", "b", "c")]
    options = LoadOptions(num_load_threads=1, num_initial_load_threads=2)
    repo = ModelRepository(configs, SlowLoader(), Metrics(), 1.0, options)
    scans = [threading.Thread(target=settle, args=(managed(repo, n),)) for n in ("a", "b", "c")]
    for t in scans:
        t.start()
    for t in scans:
        t.join()
    assert peak[0] == 2  # the start-up load: num_initial_load_threads at once
    for name in ("a", "b", "c"):
        make_version(tmp_path / name, "2")
    peak[0] = 0
    scans = [threading.Thread(target=settle, args=(managed(repo, n),)) for n in ("a", "b", "c")]
    for t in scans:
        t.start()
    for t in scans:
        t.join()
    assert peak[0] == 1  # later loads: num_load_threads (TF Serving's 0 and 1: one at a time)
    assert all(managed(repo, n).get().version == 2 for n in ("a", "b", "c"))
