"""The model repository: the configured models' version managers (:mod:`model_server.version_manager`), the one
thing the data plane asks for models, config reloads, and the start-up wait the server's ports open after.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from model_server.errors import NotFound
from model_server.metrics import Metrics
from model_server.model import ServableModel
from model_server.model_config import ModelConfig
from model_server.version_dirs import LoadGate, LoadOptions
from model_server.version_dirs import list_versions as list_versions  # re-exported (tests, benchmarks)
from model_server.version_manager import Loader, ModelVersionManager, State, VersionStatus

__all__ = ["ModelRepository", "ModelVersionManager", "State", "VersionStatus", "list_versions"]

log = logging.getLogger(__name__)
DEFAULT_LOAD_OPTIONS = LoadOptions()


class ModelRepository:
    """Model name → version manager; the only thing the data plane asks for models."""

    def __init__(
        self,
        configs: Sequence[ModelConfig],
        loader: Loader,
        metrics: Metrics,
        poll_wait_seconds: float,
        load_options: LoadOptions = DEFAULT_LOAD_OPTIONS,
    ):
        self._loader = loader
        self._metrics = metrics
        self._poll_wait = poll_wait_seconds
        self._load_options = load_options
        self._gate = LoadGate(load_options)  # shared: the load thread pools are per server, as in TF Serving
        self._lock = threading.Lock()
        self._managers: dict[str, ModelVersionManager] = {c.name: self._manager(c, initial=True) for c in configs}
        self._initial = list(self._managers.values())
        self._started = False

    def _manager(self, config: ModelConfig, initial: bool) -> ModelVersionManager:
        return ModelVersionManager(
            config, self._loader, self._metrics, self._poll_wait, self._load_options, self._gate, initial
        )

    def wait_first_load(self, timeout: float) -> bool:
        """Block until every model of the start-up config settled (loaded or failed; see
        :attr:`ModelVersionManager.settled`) or ``timeout`` passed; true when they all have. The server opens its
        ports only then, as TF Serving does."""
        deadline = time.monotonic() + timeout
        return all(m.wait_settled(max(0.0, deadline - time.monotonic())) for m in self._initial)

    def first_load_progress(self) -> str:
        """The models still loading at start-up and their versions' states, for the progress log line."""
        return "; ".join(f"{m.name}: {m.describe()}" for m in self._initial if not m.settled)

    def start(self) -> None:
        for m in self._managers.values():
            m.start()
        self._started = True

    def stop(self) -> None:
        for m in list(self._managers.values()):
            m.stop()

    def manager(self, name: str) -> ModelVersionManager | None:
        return self._managers.get(name)

    def names(self) -> list[str]:
        return list(self._managers)

    def get_model(self, name: str, version: int | None = None, label: str | None = None) -> ServableModel:
        m = self._managers.get(name)
        if m is None:
            what = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise NotFound(f"Servable not found for request: {what}")
        return m.get(version, label)

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[VersionStatus]:
        m = self._managers.get(name)
        if m is None:
            raise NotFound(f"Could not find any versions of model {name}")
        return m.status(version, label)

    def readiness(self) -> dict[str, list[int]]:
        return {name: m.available_versions() for name, m in self._managers.items()}

    def ready(self) -> bool:
        return all(m.ready() for m in self._managers.values())

    def reload(self, configs: Sequence[ModelConfig]) -> None:
        """Apply a new model list: add, remove, or update policy/labels (a new base path restarts the model)."""
        with self._lock:
            new = {c.name: c for c in configs}
            managers = dict(self._managers)
            for name in [n for n in managers if n not in new]:
                managers.pop(name).stop()
                self._metrics.loaded_versions.labels(name).set(0)
                self._metrics.set_engines(name, {})
                log.info("model %s: removed by config reload", name)
            for name, config in new.items():
                current = managers.get(name)
                if current is not None and current.config.base_path == config.base_path:
                    current.update_config(config)
                    continue
                if current is not None:
                    current.stop()
                manager = self._manager(config, initial=False)
                managers[name] = manager
                if self._started:
                    manager.start()
                log.info("model %s: added by config reload (base path %s)", name, config.base_path)
            self._managers = managers
