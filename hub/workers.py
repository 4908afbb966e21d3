"""`hub serve --workers N`: N processes serving one port.

Each worker listens on a socket of its own bound with SO_REUSEPORT, so the kernel spreads new
connections over them evenly. (Behind one shared socket, as uvicorn's own workers listen,
the first worker to wake accepted a whole burst of connections: 16 clients connecting at
once all landed on one worker, and two workers served no more than one.) A worker listens
only once its hub is built, so no connection waits on a worker that fails to start.

The first process only supervises. SIGHUP reaches every worker, which reloads its policy
files as a single process does (keeping the policy it has when the files are unsound);
SIGTERM and SIGINT end them all; a worker that dies is started again, and a worker whose
supervisor is gone ends itself. Since any process of the same user may join a SO_REUSEPORT
group, the supervisor holds a lock named after the address: a second `hub serve` on it is
refused instead of silently sharing its connections.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["AddressTaken", "listening_socket", "supervise"]

logger = logging.getLogger("hub.workers")

BACKLOG = 2048  # uvicorn's own
STOP_SECONDS = 30  # a worker's graceful end, then it is killed
RESTART_SECONDS = 1  # how often ended workers are started again, at most
ORPHAN_SECONDS = 1  # how often a worker checks that its supervisor is there


class AddressTaken(OSError):
    """Another `hub serve --workers` serves on this address."""


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port) that the other workers may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def _work(host: str, port: int, options: dict[str, Any], supervisor: int) -> None:
    """One worker: the hub from the environment (hub.app.from_environment) on its socket."""
    import uvicorn

    # SIGHUP was blocked when this process started (supervise): until the hub reloads on it
    # (its lifespan), a SIGHUP must not end the worker.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    threading.Thread(target=_end_with, args=(supervisor,), daemon=True).start()
    config = uvicorn.Config("hub.app:from_environment", factory=True, **options)
    config.load()  # the hub first: unsound policy files end the worker before it listens
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])


def _end_with(supervisor: int) -> None:
    """End this worker once its supervisor is gone (killed, say): no orphan keeps serving."""
    while os.getppid() == supervisor:
        time.sleep(ORPHAN_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


@contextmanager
def _address_lock(host: str, port: int) -> Iterator[None]:
    name = re.sub(r"[^0-9A-Za-z.-]", "_", host)  # an address, never a path
    path = Path(tempfile.gettempdir()) / f"hub-serve-{name}-{port}.lock"
    with path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AddressTaken(
                f"another `hub serve --workers` serves on {host}:{port} (lock {path})"
            ) from None
        yield


def supervise(host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """Run ``workers`` workers until SIGTERM or SIGINT; forward SIGHUP to each. Raises
    AddressTaken, or OSError when the address cannot be bound."""
    with _address_lock(host, port):
        listening_socket(host, port).close()  # bindable (or this fails naming why)
        _supervise(host, port, workers, options)


def _supervise(host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    context = multiprocessing.get_context("spawn")
    running: list[BaseProcess] = []
    stopping = False

    def start() -> BaseProcess:
        process = context.Process(
            target=_work, args=(host, port, options, os.getpid()), name="hub worker"
        )
        # Blocked while it starts, so that a SIGHUP then cannot end it (see _work).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
        return process

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    def hang_up(signum: int, _: FrameType | None) -> None:
        logger.info("reloading the policy files in %d workers", len(running))
        for process in running:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGHUP)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, hang_up)
    try:
        running.extend(start() for _ in range(workers))
        while not stopping:
            time.sleep(RESTART_SECONDS)
            for index, process in enumerate(running):
                if not process.is_alive() and not stopping:
                    logger.error(
                        "worker %s ended with status %s; starting another",
                        process.pid,
                        process.exitcode,
                    )
                    running[index] = start()
    finally:
        for process in running:
            process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
