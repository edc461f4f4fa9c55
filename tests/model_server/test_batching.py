"""The batch scheduler with a fake model: batch formation, padding, splitting, queue limits, error isolation."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from model_server.batching import BatchScheduler, DirectRunner
from model_server.errors import InvalidArgument, ResourceExhausted
from model_server.metrics import Metrics
from model_server.model_config import BatchingOptions


class FakeModel:
    """Doubles its input; records every batch it saw; can be held to build up a queue; rejects negative values
    the way a real model rejects an unparsable tf.Example."""

    name = "fake"

    def __init__(self) -> None:
        self.batches: list[list[float]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def predict(self, signature: str, inputs):
        self.entered.set()
        self.gate.wait(10)
        x = inputs["x"]
        self.batches.append(x.tolist())
        if (x < 0).any():
            raise InvalidArgument("negative input")
        return {"y": x * 2, "n": np.full(len(x), len(x))}


def _x(*values: float) -> dict[str, np.ndarray]:
    return {"x": np.array(values, dtype=np.float32)}


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_are_scored_together() -> None:
    model = FakeModel()
    scheduler = BatchScheduler(
        BatchingOptions(max_batch_size=8, batch_timeout_micros=1_000_000, num_batch_threads=1), Metrics()
    )

    async def main():
        # Six requests arrive together; max size is not reached, so they leave together when the timeout hits
        # (the queue is flushed now via begin_drain, to keep the test fast without timing assumptions).
        tasks = [asyncio.ensure_future(scheduler.run(model, "s", _x(i), 1)) for i in range(6)]
        await asyncio.sleep(0)
        while sum(len(q.tasks) for q in list(scheduler._queues.values())) < 6:
            await asyncio.sleep(0.001)
        scheduler.begin_drain()
        return await asyncio.gather(*tasks)

    results = _run(main())
    scheduler.stop()
    assert [r["y"].tolist() for r in results] == [[2.0 * i] for i in range(6)]
    assert model.batches == [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]
    assert all(r["n"].tolist() == [6] for r in results)


def test_a_full_batch_leaves_without_waiting_for_the_timeout() -> None:
    model = FakeModel()
    scheduler = BatchScheduler(
        BatchingOptions(max_batch_size=4, batch_timeout_micros=60_000_000, num_batch_threads=1), Metrics()
    )

    async def main():
        return await asyncio.gather(*(scheduler.run(model, "s", _x(i, i), 2) for i in range(2)))

    results = _run(main())  # would hang for a minute if the full batch waited for its timeout
    scheduler.stop()
    assert model.batches == [[0.0, 0.0, 1.0, 1.0]]
    assert [r["y"].tolist() for r in results] == [[0.0, 0.0], [2.0, 2.0]]


def test_batches_are_padded_to_allowed_sizes_and_the_padding_is_cut_off() -> None:
    model = FakeModel()
    metrics = Metrics()
    scheduler = BatchScheduler(
        BatchingOptions(max_batch_size=8, allowed_batch_sizes=(4, 8), num_batch_threads=1), metrics
    )
    result = _run(scheduler.run(model, "s", _x(1, 2, 3), 3))
    scheduler.stop()
    assert model.batches == [[1.0, 2.0, 3.0, 3.0]]  # padded with the last row
    assert result["y"].tolist() == [2.0, 4.0, 6.0]
    assert metrics.registry.get_sample_value("model_server_batch_size_sum", {"model": "fake"}) == 3


def test_an_oversized_request_is_split_into_max_batch_size_chunks() -> None:
    model = FakeModel()
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, num_batch_threads=1), Metrics())
    result = _run(scheduler.run(model, "s", _x(*range(10)), 10))
    scheduler.stop()
    assert [len(b) for b in model.batches] == [4, 4, 2]
    assert result["y"].tolist() == [2.0 * i for i in range(10)]


def test_a_full_queue_refuses_work_with_resource_exhausted() -> None:
    model = FakeModel()
    metrics = Metrics()
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=2, max_enqueued_batches=1, num_batch_threads=1), metrics)

    async def main():
        model.gate.clear()
        first = asyncio.ensure_future(scheduler.run(model, "s", _x(1), 1))
        await asyncio.to_thread(model.entered.wait, 10)  # the only thread is now busy with `first`
        queued = asyncio.ensure_future(scheduler.run(model, "s", _x(2, 3), 2))  # fills the queue (capacity 2)
        await asyncio.sleep(0)
        with pytest.raises(ResourceExhausted, match="queue .* is full"):
            await scheduler.run(model, "s", _x(4), 1)
        model.gate.set()
        return await first, await queued

    first, queued = _run(main())
    scheduler.stop()
    assert first["y"].tolist() == [2.0] and queued["y"].tolist() == [4.0, 6.0]
    assert metrics.registry.get_sample_value("model_server_batch_queue_rejections_total", {"model": "fake"}) == 1


def test_one_bad_request_does_not_fail_the_others_in_its_batch() -> None:
    model = FakeModel()
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=8, num_batch_threads=1), Metrics())

    async def main():
        model.gate.clear()
        blocker = asyncio.ensure_future(scheduler.run(model, "s", _x(0), 1))
        await asyncio.to_thread(model.entered.wait, 10)
        batch = [asyncio.ensure_future(scheduler.run(model, "s", _x(v), 1)) for v in (1, -1, 2)]
        await asyncio.sleep(0.01)
        model.gate.set()
        await blocker
        return await asyncio.gather(*batch, return_exceptions=True)

    good1, bad, good2 = _run(main())
    scheduler.stop()
    assert model.batches[1] == [1.0, -1.0, 2.0]  # they were batched together, the batch failed, then retried alone
    assert good1["y"].tolist() == [2.0] and good2["y"].tolist() == [4.0]
    assert isinstance(bad, InvalidArgument)


def test_queues_are_separate_per_model_and_signature() -> None:
    a, b = FakeModel(), FakeModel()
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=8, num_batch_threads=1), Metrics())

    async def main():
        return await asyncio.gather(
            scheduler.run(a, "s", _x(1), 1), scheduler.run(b, "s", _x(2), 1), scheduler.run(a, "t", _x(3), 1)
        )

    _run(main())
    scheduler.stop()
    assert sorted(sum(a.batches, [])) == [1.0, 3.0] and a.batches != [[1.0, 3.0]]
    assert b.batches == [[2.0]]


def test_direct_runner_runs_each_request_alone() -> None:
    model = FakeModel()
    runner = DirectRunner(2, Metrics())

    async def main():
        return await asyncio.gather(*(runner.run(model, "s", _x(i), 1) for i in range(3)))

    results = _run(main())
    runner.stop()
    assert sorted(len(b) for b in model.batches) == [1, 1, 1]
    assert [r["y"].tolist() for r in results] == [[0.0], [2.0], [4.0]]
