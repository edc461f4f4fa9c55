"""Version managers: which versions of one model are served, watched on disk and swapped atomically.

Each configured model has a :class:`ModelVersionManager` with its own background thread that polls the base path,
loads what the version policy asks for, publishes a new immutable snapshot (one attribute assignment, so the request
path reads it without locks), then forgets versions that are no longer aspired. A version is only loaded when its
directory has ``saved_model.pb`` and has looked the same on two consecutive polls, so a copy in progress is never
loaded half-way; names that are not plain integers (``.123.tmp``, ``tmp-1``) are ignored. A version that fails to
load is retried ``--max_num_load_retries`` times, then reported (status END with the error, a log line, a metric)
and skipped until its files change, while the versions already serving keep serving. A manager's first load has
*settled* once everything the policy wants from disk loaded or failed: the server opens its ports only then.
"""

from __future__ import annotations

import dataclasses
import enum
import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping

from model_server.errors import Code, InvalidArgument, NotFound
from model_server.metrics import Metrics
from model_server.model import ModelLoadError, ServableModel
from model_server.model_config import ModelConfig
from model_server.version_dirs import Fingerprint, LoadGate, LoadOptions, fingerprint, has_saved_model, list_versions

log = logging.getLogger(__name__)

Loader = Callable[[str, int, str], ServableModel]
DEFAULT_LOAD_OPTIONS = LoadOptions()
STARTUP_SETTLE_SECONDS = 0.2  # gap between the first two scans, so the first load does not wait a full poll


class State(enum.IntEnum):
    """``ModelVersionStatus.State`` of get_model_status.proto."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    version: int
    state: State
    error_code: Code = Code.OK
    error_message: str = ""


@dataclasses.dataclass(frozen=True)
class _Snapshot:
    models: Mapping[int, ServableModel]
    latest: ServableModel | None


_EMPTY = _Snapshot({}, None)


class ModelVersionManager:
    """Versions of one model: polling, loading, swapping, status, label resolution."""

    def __init__(
        self,
        config: ModelConfig,
        loader: Loader,
        metrics: Metrics,
        poll_wait_seconds: float,
        load_options: LoadOptions = DEFAULT_LOAD_OPTIONS,
        gate: LoadGate | None = None,
        initial: bool = True,
    ):
        self.config = config
        self._load_options = load_options
        self._gate = gate or LoadGate(load_options)
        self._initial = initial  # part of the server's start-up load (bigger load pool, ports wait for it)
        self._settled = threading.Event()
        self._loader = loader
        self._metrics = metrics
        self._poll_wait = poll_wait_seconds
        self._snapshot = _EMPTY
        self._status: dict[int, VersionStatus] = {}
        self._status_lock = threading.Lock()
        self._seen: dict[int, Fingerprint] = {}
        self._failed: dict[int, Fingerprint] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_missing = False
        self._unsettled = False
        self.scans = 0

    @property
    def name(self) -> str:
        return self.config.name

    # --- request path (any thread, lock-free) ------------------------------------------------------------------

    def resolve_label(self, label: str) -> int:
        version = self.config.labels.get(label)
        if version is None:
            raise InvalidArgument(f"Unrecognized servable version label: {label}")
        return version

    def get(self, version: int | None = None, label: str | None = None) -> ServableModel:
        snap = self._snapshot
        if label is not None:
            version = self.resolve_label(label)
        if version is None:
            if snap.latest is None:
                raise NotFound(f"Servable not found for request: Latest({self.name})")
            return snap.latest
        model = snap.models.get(version)
        if model is None:
            raise NotFound(f"Servable not found for request: Specific({self.name}, {version})")
        return model

    def available_versions(self) -> list[int]:
        return sorted(self._snapshot.models, reverse=True)

    def ready(self) -> bool:
        return self._snapshot.latest is not None

    def status(self, version: int | None = None, label: str | None = None) -> list[VersionStatus]:
        if label is not None:
            version = self.resolve_label(label)
        with self._status_lock:
            table = dict(self._status)
        if version is not None:
            if version not in table:
                raise NotFound(f"Could not find version {version} of model {self.name}")
            return [table[version]]
        if not table:
            raise NotFound(f"Could not find any versions of model {self.name}")
        return [table[v] for v in sorted(table, reverse=True)]

    # --- background polling ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"versions-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._settled.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def update_config(self, config: ModelConfig) -> None:
        """New policy or labels (config reload); the next scan applies them."""
        self.config = config
        self._wake.set()

    def _run(self) -> None:
        first_gap = min(STARTUP_SETTLE_SECONDS, self._poll_wait) if self._poll_wait > 0 else STARTUP_SETTLE_SECONDS
        scans_when_static = 2  # poll wait 0: TF Serving reads the base path once; we need two looks to trust it
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - the watcher must survive any surprise on disk
                log.exception("model %s: scanning %s failed", self.name, self.config.base_path)
                if self.scans >= 2:
                    self._settled.set()  # an unreadable base path must not hold the ports closed for ever
            if self._poll_wait == 0 and self.scans >= scans_when_static and not self._unsettled:
                return
            gap = first_gap if self.scans < 2 or self._poll_wait == 0 else self._poll_wait
            self._wake.wait(gap)
            self._wake.clear()

    def poll_once(self) -> None:
        """One scan: load what the policy wants, publish, then retire what it no longer wants."""
        self.scans += 1
        self._unsettled = False
        on_disk = list_versions(self.config.base_path)
        if not on_disk and not self._warned_missing:
            self._warned_missing = True
            log.warning("model %s: no version found under base path %s", self.name, self.config.base_path)
        elif on_disk:
            self._warned_missing = False
        self._forget_vanished(on_disk)
        while True:
            loadable = self._loadable(on_disk)
            aspired = self.config.policy.select(loadable)
            missing = [v for v in aspired if v not in self._snapshot.models]
            if not missing:
                break
            any_failed = False
            for version in missing:  # highest first: the newest version serves as soon as it is ready
                if self._stop.is_set():
                    return
                if not self._load(version, on_disk[version]):
                    any_failed = True
            if not any_failed:
                break
        if self.scans >= 2 and not self._unsettled and not self._settled.is_set():
            self._settled.set()  # every version on disk the policy wants has loaded or failed: first load settled
            self._initial = False
            log.info("model %s: initial load settled (%s)", self.name, self.describe())
        keep = set(aspired)
        retired = [v for v in self._snapshot.models if v not in keep]
        if retired:
            self._publish({v: m for v, m in self._snapshot.models.items() if v in keep})
            for v in retired:
                self._set_status(v, State.END)
                log.info("model %s: version %d unloaded", self.name, v)
            gc.collect()  # TF objects held in reference cycles: free their memory now, not at some later GC

    def _forget_vanished(self, on_disk: Mapping[int, str]) -> None:
        gone = [v for v in self._snapshot.models if v not in on_disk]
        if gone:
            self._publish({v: m for v, m in self._snapshot.models.items() if v in on_disk})
            for v in gone:
                self._set_status(v, State.END)
                log.warning("model %s: version %d directory disappeared; unloaded", self.name, v)
        for v in [v for v in self._seen if v not in on_disk]:
            self._seen.pop(v, None)
            self._failed.pop(v, None)
        with self._status_lock:  # ended versions whose directory is gone leave the status list (it stays bounded)
            for v in [v for v, s in self._status.items() if s.state == State.END and v not in on_disk]:
                del self._status[v]

    def _loadable(self, on_disk: Mapping[int, str]) -> list[int]:
        """Versions that are loaded, or complete and unchanged since the last scan (and not known to be broken)."""
        policy = self.config.policy
        wanted = set(policy.versions) if policy.kind == "specific" else None
        result: list[int] = []
        for version in sorted(on_disk, reverse=True):
            if policy.kind == "latest" and len(result) >= policy.num_versions:
                break  # older directories are irrelevant: do not walk them on every poll
            if wanted is not None and version not in wanted:
                continue
            if version in self._snapshot.models:
                result.append(version)
                continue
            path = on_disk[version]
            fp = fingerprint(path)
            previous = self._seen.get(version)
            self._seen[version] = fp
            if self._failed.get(version) == fp:
                continue
            if previous != fp or not fp:
                self._unsettled = True
                continue  # new or still being written: look again next poll
            if not has_saved_model(path):
                self._fail(
                    version,
                    fp,
                    Code.NOT_FOUND,
                    f"SavedModel file does not exist at: {path}/{{saved_model.pbtxt|saved_model.pb}}",
                )
                continue
            result.append(version)
        return result

    def _load(self, version: int, path: str) -> bool:
        self._set_status(version, State.LOADING)
        log.info("model %s: loading version %d from %s", self.name, version, path)
        start = time.monotonic()
        retries = max(0, self._load_options.max_num_load_retries)
        for attempt in range(retries + 1):
            with self._gate.slot(self._initial):
                model, error = self._try_load(version, path)
            if model is not None:
                break
            if attempt < retries and not self._stop.is_set():
                interval = self._load_options.load_retry_interval_seconds
                log.warning(
                    "model %s: version %d failed to load (attempt %d of %d), retrying in %.3gs: %s",
                    self.name,
                    version,
                    attempt + 1,
                    retries + 1,
                    interval,
                    error,
                )
                if self._stop.wait(interval):
                    break
        if model is None:
            self._fail(version, self._seen.get(version, ()), Code.UNKNOWN, error)
            return False
        elapsed = time.monotonic() - start
        self._metrics.load_seconds.labels(self.name).observe(elapsed)
        self._metrics.warmup_requests.labels(self.name).inc(model.warmup_requests)
        self._publish({**self._snapshot.models, version: model})
        self._failed.pop(version, None)
        self._set_status(version, State.AVAILABLE)
        log.info(
            "model %s: version %d AVAILABLE after %.2fs (%d warm-up requests)",
            self.name,
            version,
            elapsed,
            model.warmup_requests,
        )
        return True

    def _try_load(self, version: int, path: str) -> tuple[ServableModel | None, str]:
        """One attempt: the model, or ``None`` and the message for the status API."""
        try:
            return self._loader(self.name, version, path), ""
        except ModelLoadError as exc:
            return None, str(exc)
        except Exception as exc:  # noqa: BLE001 - a foreign SavedModel can fail in any way
            log.exception("model %s: version %d raised while loading", self.name, version)
            return None, f"{type(exc).__name__}: {exc}"[:500]

    # --- start-up ------------------------------------------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """The first load is over: what the policy wants from disk loaded or failed (or the manager stopped)."""
        return self._settled.is_set()

    def wait_settled(self, timeout: float) -> bool:
        return self._settled.wait(timeout)

    def describe(self) -> str:
        """The versions' states in one phrase, for start-up progress lines."""
        with self._status_lock:
            table = dict(self._status)
        if not table:
            return "no complete version on disk yet" if self.scans else "not scanned yet"
        return ", ".join(f"version {v} {table[v].state.name}" for v in sorted(table, reverse=True))

    def _fail(self, version: int, fp: Fingerprint, code: Code, message: str) -> None:
        self._failed[version] = fp
        self._set_status(version, State.END, code, message)
        self._metrics.load_failures.labels(self.name).inc()
        log.error("model %s: version %d failed to load and is skipped: %s", self.name, version, message)

    def _publish(self, models: dict[int, ServableModel]) -> None:
        latest = models[max(models)] if models else None
        self._snapshot = _Snapshot(models, latest)  # one assignment: readers see the old or the new, never a mix
        self._metrics.loaded_versions.labels(self.name).set(len(models))
        self._metrics.set_engines(self.name, {v: m.engine_routes() for v, m in models.items()})

    def _set_status(self, version: int, state: State, code: Code = Code.OK, message: str = "") -> None:
        with self._status_lock:
            self._status[version] = VersionStatus(version, state, code, message)

    def wait_until_scanned(self, scans: int, timeout: float) -> bool:
        """For tests and tools: block until this many scans happened."""
        deadline = time.monotonic() + timeout
        while self.scans < scans and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.scans >= scans
