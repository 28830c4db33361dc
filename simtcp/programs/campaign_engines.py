"""Where a campaign's chunks run: this process, a local process pool, or Dask distributed.

Every engine has ``slots`` (how many chunks run at once), a one-line ``description`` and
``stream(plan, chunks)``, an iterator of :class:`~simtcp.programs.campaign.ChunkResult`
in the order they finish. Leaving the iterator early (an exception, Ctrl-C) cancels what
is still queued: the pool is terminated, Dask futures are cancelled and, for ``local``,
the LocalCluster is shut down, so an existing cluster is left with nothing of ours.

Dask (the ``cluster`` extra, ``pip install 'simtcp[cluster]'``) is imported only when
``--scheduler`` asks for it, so the package works without it. Scheduling, retries and
worker loss are Dask's: a chunk whose worker dies is re-run elsewhere by the scheduler
(up to ``distributed.scheduler.allowed-failures`` times); the driver counts each chunk
once (:class:`~simtcp.programs.campaign.Tally`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import multiprocessing
import signal
import uuid
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from simtcp.programs.campaign import CampaignPlan, Chunk, ChunkResult, run_chunk

if TYPE_CHECKING:
    from multiprocessing.pool import Pool


class EngineError(Exception):
    """The engine cannot start or lost the campaign (one line for the user)."""


class Engine(Protocol):
    slots: int
    description: str

    def stream(
        self, plan: CampaignPlan, chunks: list[Chunk]
    ) -> Generator[ChunkResult, None, None]: ...


class SerialEngine:
    """This process, one chunk after the other."""

    slots = 1
    description = "this process"

    def stream(self, plan: CampaignPlan, chunks: list[Chunk]) -> Generator[ChunkResult, None, None]:
        for chunk in chunks:
            yield run_chunk(plan, chunk)


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: only the driver handles it (and then
    # terminates the pool), so the workers print no tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def dask_setup(worker: object) -> None:
    """Run in each LocalCluster worker process (Dask's preload hook): Ctrl-C in a terminal
    reaches the workers too; the driver alone handles it (it cancels and shuts the
    cluster down), so the workers print no tracebacks."""
    _ignore_sigint()


class PoolEngine:
    """A local multiprocessing pool (forkserver: workers start clean, not from a fork of
    a threaded process)."""

    def __init__(self, pool: Pool, workers: int) -> None:
        self.pool = pool
        self.slots = workers
        self.description = f"local pool of {workers} processes"

    def stream(self, plan: CampaignPlan, chunks: list[Chunk]) -> Generator[ChunkResult, None, None]:
        yield from self.pool.imap_unordered(functools.partial(run_chunk, plan), chunks)


class DaskEngine:
    """A Dask distributed client: chunks are futures, streamed with ``as_completed``."""

    def __init__(self, client: Any, description: str) -> None:
        self.client = client
        threads = client.nthreads()
        self.slots = max(1, sum(threads.values()))
        self.description = f"{description} ({len(threads)} workers, {self.slots} threads)"

    def stream(self, plan: CampaignPlan, chunks: list[Chunk]) -> Generator[ChunkResult, None, None]:
        as_completed = _distributed().as_completed
        client = self.client
        token = uuid.uuid4().hex[:8]
        # The plan (the options, ~1 KB) travels with each task: no scattered data whose
        # loss, were a worker to die, could not be recovered.
        futures = [
            client.submit(
                run_chunk, plan, chunk, key=f"simtcp-chunk-{token}-{chunk.index}", pure=False
            )
            for chunk in chunks
        ]
        pending = set(futures)
        try:
            for future, result in as_completed(
                futures, loop=client.loop, with_results=True, raise_errors=False
            ):
                pending.discard(future)
                if future.status == "error":
                    error = future.exception()
                    raise EngineError(f"a chunk failed on the cluster: {error!r}"[:300])
                future.release()  # its result is ours now: free the worker's memory
                yield result
        finally:
            if pending:
                client.cancel(list(pending), force=True)


def _distributed() -> Any:
    """The ``distributed`` module (typed Any: it is an optional extra, partly typed)."""
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise EngineError(
            "--scheduler needs Dask distributed: pip install 'simtcp[cluster]'"
        ) from None


@contextlib.contextmanager
def open_engine(
    scheduler: str | None, workers: int, *, connect_timeout: float = 10.0
) -> Iterator[Engine]:
    """The engine the options ask for, shut down cleanly on the way out."""
    if scheduler is None:
        if workers <= 1:
            yield SerialEngine()
            return
        context = multiprocessing.get_context("forkserver")
        with context.Pool(workers, initializer=_ignore_sigint) as pool:
            yield PoolEngine(pool, workers)
        return
    distributed = _distributed()
    if scheduler == "local":
        with _local_cluster(distributed, workers) as client:
            yield DaskEngine(client, f"Dask LocalCluster at {client.scheduler.address}")
        return
    try:
        client = distributed.Client(scheduler, timeout=connect_timeout, set_as_default=False)
    except Exception as error:  # OSError, TimeoutError, ValueError for a bad address
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise EngineError(f"cannot reach the Dask scheduler at {scheduler}: {text}") from None
    try:
        yield DaskEngine(client, f"Dask cluster at {scheduler}")
    finally:
        client.close()


@contextlib.contextmanager
def _local_cluster(distributed: Any, workers: int) -> Iterator[Any]:
    # One thread per worker process: a seed is pure Python and holds the GIL.
    cluster = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # its HTTP server runs anyway: any free port, not 8787
        worker_dashboard_address=None,
        silence_logs=logging.CRITICAL,  # failures reach the driver as task errors
        worker_class=distributed.Nanny,  # a killed worker is restarted by its nanny
        preload=[__name__],  # dask_setup below: the workers leave Ctrl-C to the driver
    )
    try:
        client = distributed.Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    except KeyboardInterrupt:
        # Shutting down on Ctrl-C, mid-conversation: what Dask logs about the comms we
        # cut is noise (the driver reports the interruption in one line).
        for name in ("distributed", "tornado"):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        raise
    finally:
        cluster.close()
