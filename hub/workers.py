"""`hub serve --workers N`: N processes serving one port.

Each worker listens on a socket of its own bound with SO_REUSEPORT, so the kernel spreads new
connections over them evenly. (Behind one shared socket, as uvicorn's own workers listen,
the first worker to wake accepted a whole burst of connections: 16 clients connecting at
once all landed on one worker, and two workers served no more than one.)

The first process only supervises. SIGHUP reaches every worker, which reloads its policy
files as a single process does (keeping the policy it has when the files are unsound);
SIGTERM and SIGINT end them all; a worker that dies is started again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

__all__ = ["listening_socket", "supervise"]

logger = logging.getLogger("hub.workers")

BACKLOG = 2048  # uvicorn's own
STOP_SECONDS = 30  # a worker's graceful end, then it is killed
RESTART_SECONDS = 1  # how often ended workers are started again, at most


def listening_socket(host: str, port: int, listen: bool = True) -> socket.socket:
    """A socket on (host, port) that the other workers may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def _work(host: str, port: int, options: dict[str, Any]) -> None:
    """One worker: the hub from the environment (hub.app.from_environment) on its socket."""
    import uvicorn

    # Until the hub reloads on SIGHUP (its lifespan), a SIGHUP must not end the worker.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sock = listening_socket(host, port)
    config = uvicorn.Config("hub.app:from_environment", factory=True, **options)
    uvicorn.Server(config).run(sockets=[sock])


def supervise(host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """Run ``workers`` workers until SIGTERM or SIGINT; forward SIGHUP to each."""
    # Bound, not listening: the port is the hub's (or this fails at once naming it), and
    # no connection waits on a socket nobody accepts from.
    reserved = listening_socket(host, port, listen=False)
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> BaseProcess:
        process = context.Process(target=_work, args=(host, port, options), name="hub worker")
        process.start()
        return process

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    def hang_up(signum: int, _: FrameType | None) -> None:
        logger.info("reloading the policy files in %d workers", len(running))
        for process in running:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGHUP)

    running = [start() for _ in range(workers)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, hang_up)
    try:
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
        reserved.close()
