"""Pushed versions appear whole and in increasing order."""

from __future__ import annotations

from pathlib import Path

from pipeline_modules.components.atomic_pusher import next_version, publish_atomically


def _model(path: Path) -> Path:
    (path / "variables").mkdir(parents=True)
    (path / "variables" / "variables.index").write_bytes(b"index")
    (path / "saved_model.pb").write_bytes(b"graph")
    return path


def test_versions_are_timestamps_that_always_increase(tmp_path: Path) -> None:
    assert next_version(str(tmp_path / "missing"), now=1000.7) == 1000
    (tmp_path / "999").mkdir()
    assert next_version(str(tmp_path), now=1000.2) == 1000
    (tmp_path / "1000").mkdir()
    (tmp_path / ".1001.incomplete").mkdir()  # not a version
    assert next_version(str(tmp_path), now=1000.2) == 1001


def test_publish_leaves_only_the_complete_version(tmp_path: Path) -> None:
    model = _model(tmp_path / "model")
    base = tmp_path / "serving" / "bert"
    (base / ".5.incomplete").mkdir(parents=True)  # left over by an interrupted push
    final = Path(publish_atomically(str(model), str(base), 5))
    assert final == base / "5"
    assert sorted(p.name for p in base.iterdir()) == ["5"]
    assert (final / "saved_model.pb").read_bytes() == b"graph"
    assert (final / "variables" / "variables.index").read_bytes() == b"index"
