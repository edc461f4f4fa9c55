"""Execution of model calls off the event loop: a direct runner, and a batch scheduler like TF Serving's.

Both expose ``await runner.run(model, signature, inputs, size)``. The scheduler keeps one queue per (model version,
signature, input dtypes and inner shapes), forms a batch when a queue holds ``max_batch_size`` instances or its
oldest request has waited ``batch_timeout_micros``, and runs batches on ``num_batch_threads`` long-lived threads
(never a thread per request). A full queue refuses new work at once (RESOURCE_EXHAUSTED) rather than letting
latency grow without bound.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from model_server.errors import Internal, ResourceExhausted, to_serving_error
from model_server.metrics import Metrics
from model_server.model import ModelLoadError, ServableModel
from model_server.model_config import BatchingOptions, ConfigError, parse_batching_parameters_text

log = logging.getLogger(__name__)

Arrays = Mapping[str, np.ndarray]
PER_MODEL_BATCHING_FILE = "batching_params.pbtxt"  # TF Serving's kBatchingParamsFilename, in the version directory


def read_per_model_batching(version_path: str) -> BatchingOptions | None:
    """A version's own ``batching_params.pbtxt`` (``--enable_per_model_batching_parameters``), None when it has none;
    a bad file fails the version's load, as in TF Serving."""
    path = os.path.join(version_path, PER_MODEL_BATCHING_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return parse_batching_parameters_text(text, path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"Cannot read {path}: {exc}") from None
    except ConfigError as exc:
        raise ModelLoadError(str(exc)) from None


class DirectRunner:
    """No batching: each request is one model call on a fixed thread pool."""

    def __init__(self, threads: int, metrics: Metrics):
        self._executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="predict")
        self._metrics = metrics

    def _call(self, model: ServableModel, signature: str, inputs: Arrays, size: int) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        outputs = model.predict(signature, inputs)
        self._metrics.model_run_seconds.labels(model.name).observe(time.perf_counter() - start)
        self._metrics.batch_size.labels(model.name).observe(size)
        return outputs

    async def run(self, model: ServableModel, signature: str, inputs: Arrays, size: int) -> dict[str, np.ndarray]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, model, signature, inputs, size)

    def begin_drain(self) -> None:
        """Nothing waits in a queue here; running calls simply finish."""

    def stop(self, timeout: float = 10.0) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)


class _Task:
    __slots__ = ("inputs", "size", "loop", "future", "enqueued")

    def __init__(self, inputs: Arrays, size: int, loop: asyncio.AbstractEventLoop, future: asyncio.Future):
        self.inputs = inputs
        self.size = size
        self.loop = loop
        self.future = future
        self.enqueued = time.monotonic()


class _Queue:
    __slots__ = ("key", "model", "signature", "opt", "tasks", "size", "depth_gauge")

    def __init__(
        self, key: tuple, model: ServableModel, signature: str, opt: BatchingOptions, depth_gauge: Any
    ) -> None:
        self.key = key
        self.model = model
        self.signature = signature
        self.opt = opt  # the scheduler's, or the version's own batching_params.pbtxt
        self.tasks: deque[_Task] = deque()
        self.size = 0
        self.depth_gauge = depth_gauge


def _resolve(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller gave up (deadline, disconnect)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class BatchScheduler:
    """Shared batching threads over per-servable queues (TF Serving's shared batch scheduler, in small)."""

    def __init__(self, options: BatchingOptions, metrics: Metrics):
        self._opt = options
        self._metrics = metrics
        # --enable_per_model_batching_parameters: each version's own parameters; versions without are not batched
        self._per_model: weakref.WeakKeyDictionary[ServableModel, BatchingOptions] | None = None
        self._unbatched: DirectRunner | None = None
        self._cond = threading.Condition(threading.Lock())
        self._queues: dict[tuple, _Queue] = {}
        self._draining = False
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._worker, name=f"batch-{i}", daemon=True) for i in range(options.threads)
        ]
        for t in self._threads:
            t.start()

    # --- submission (event loop) ---------------------------------------------------------------------------------

    def enable_per_model_parameters(self, unbatched: DirectRunner) -> None:
        """TF Serving's ``--enable_per_model_batching_parameters``: only versions given :meth:`set_model_options`
        are batched (with those parameters, on this scheduler's threads); the others run on ``unbatched``."""
        self._per_model = weakref.WeakKeyDictionary()
        self._unbatched = unbatched

    def set_model_options(self, model: ServableModel, options: BatchingOptions | None) -> None:
        if self._per_model is None:
            raise RuntimeError("per-model batching parameters are not enabled")
        if options is None:
            self._per_model.pop(model, None)
        else:
            self._per_model[model] = options

    async def run(self, model: ServableModel, signature: str, inputs: Arrays, size: int) -> dict[str, np.ndarray]:
        options = None
        if self._per_model is not None and self._unbatched is not None:
            options = self._per_model.get(model)
            if options is None:
                return await self._unbatched.run(model, signature, inputs, size)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.submit(model, signature, inputs, size, loop, future, options)
        return await future

    def submit(
        self,
        model: ServableModel,
        signature: str,
        inputs: Arrays,
        size: int,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future,
        options: BatchingOptions | None = None,
    ) -> None:
        key = (model, signature, tuple((k, v.dtype.str, v.shape[1:]) for k, v in sorted(inputs.items())))
        task = _Task(inputs, size, loop, future)
        with self._cond:
            if self._stopped:
                raise Internal("The batch scheduler is stopped")
            queue = self._queues.get(key)
            if queue is None:
                depth = self._metrics.batch_queue_depth.labels(model.name)
                queue = self._queues[key] = _Queue(key, model, signature, options or self._opt, depth)
            if queue.size and queue.size + size > queue.opt.max_batch_size * queue.opt.max_enqueued_batches:
                self._metrics.batch_queue_rejections.labels(model.name).inc()
                # TF Serving says UNAVAILABLE here; RESOURCE_EXHAUSTED (HTTP 429) tells clients to back off and retry.
                raise ResourceExhausted("The batch scheduling queue to which this task was submitted is full")
            queue.tasks.append(task)
            queue.size += size
            queue.depth_gauge.inc()
            self._cond.notify()

    # --- worker threads ------------------------------------------------------------------------------------------

    def _next_batch(self) -> tuple[_Queue, list[_Task]] | None:
        """Under the lock: wait for a ready queue and take one batch from it; None when stopped and empty."""
        while True:
            now = time.monotonic()
            ready: _Queue | None = None
            wait: float | None = None
            for q in self._queues.values():
                oldest = q.tasks[0].enqueued
                timeout = q.opt.batch_timeout_micros / 1e6
                if q.size >= q.opt.max_batch_size or self._draining or now - oldest >= timeout:
                    if ready is None or oldest < ready.tasks[0].enqueued:
                        ready = q
                else:
                    remaining = oldest + timeout - now
                    wait = remaining if wait is None else min(wait, remaining)
            if ready is not None:
                return ready, self._take(ready)
            if self._stopped:
                return None
            self._cond.wait(timeout=wait)

    def _take(self, q: _Queue) -> list[_Task]:
        batch: list[_Task] = []
        total = 0
        while q.tasks and (not batch or total + q.tasks[0].size <= q.opt.max_batch_size):
            task = q.tasks.popleft()
            q.size -= task.size
            q.depth_gauge.dec()
            if task.future.cancelled():
                continue
            batch.append(task)
            total += task.size
        if not q.tasks:
            del self._queues[q.key]
        elif self._queues:
            self._cond.notify()  # another thread may take the rest
        return batch

    def _worker(self) -> None:
        while True:
            with self._cond:
                item = self._next_batch()
            if item is None:
                return
            queue, tasks = item
            if tasks:
                self._process(queue.model, queue.signature, tasks, queue.opt)

    def _process(self, model: ServableModel, signature: str, tasks: list[_Task], opt: BatchingOptions) -> None:
        try:
            results = self._execute(model, signature, tasks, opt)
        except Exception as exc:  # noqa: BLE001 - delivered to every waiting request
            if len(tasks) > 1 and not to_serving_error(exc, "-")[1]:
                # One request's bad data (e.g. an unparsable tf.Example) must not fail the others in its batch.
                for task in tasks:
                    self._process(model, signature, [task], opt)
                return
            for task in tasks:
                task.loop.call_soon_threadsafe(_resolve, task.future, None, exc)
            return
        for task, result in zip(tasks, results, strict=True):
            task.loop.call_soon_threadsafe(_resolve, task.future, result, None)

    def _execute(
        self, model: ServableModel, signature: str, tasks: list[_Task], opt: BatchingOptions
    ) -> list[dict[str, np.ndarray]]:
        total = sum(t.size for t in tasks)
        names = list(tasks[0].inputs)
        if len(tasks) == 1:
            inputs = dict(tasks[0].inputs)
        else:
            inputs = {k: np.concatenate([t.inputs[k] for t in tasks]) for k in names}
        limit = opt.max_batch_size
        chunks = []
        for start in range(0, total, limit):  # only a single oversized request has more than one chunk
            part = {k: v[start : start + limit] for k, v in inputs.items()} if total > limit else inputs
            n = min(limit, total - start)
            chunks.append(self._run_padded(model, signature, part, n, opt.allowed_batch_sizes))
        outputs = chunks[0] if len(chunks) == 1 else {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        results = []
        offset = 0
        for task in tasks:
            results.append({k: v[offset : offset + task.size] for k, v in outputs.items()})
            offset += task.size
        return results

    def _run_padded(
        self, model: ServableModel, signature: str, inputs: Arrays, n: int, allowed: tuple[int, ...]
    ) -> dict[str, np.ndarray]:
        padded = n
        if allowed:
            padded = allowed[bisect.bisect_left(allowed, n)]
        if padded > n:
            # Repeat the last row: always a valid input, and the extra rows are cut off below.
            inputs = {k: np.concatenate([v, np.repeat(v[-1:], padded - n, axis=0)]) for k, v in inputs.items()}
        start = time.perf_counter()
        outputs = model.predict(signature, inputs)
        self._metrics.model_run_seconds.labels(model.name).observe(time.perf_counter() - start)
        self._metrics.batch_size.labels(model.name).observe(n)
        for k, v in outputs.items():
            if v.ndim == 0 or v.shape[0] != padded:
                raise Internal(f"Output '{k}' of signature '{signature}' is not batched along its first dimension")
        return {k: v[:n] for k, v in outputs.items()} if padded > n else outputs

    # --- lifecycle -----------------------------------------------------------------------------------------------

    def begin_drain(self) -> None:
        """Run what is queued now instead of waiting for batch timeouts (shutdown is under way)."""
        with self._cond:
            self._draining = True
            self._cond.notify_all()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._draining = True
            self._stopped = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
