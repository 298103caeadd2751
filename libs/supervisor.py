"""N worker processes of one command serving one address, for machines without Kubernetes.

`backcrm serve --workers N` runs this: the supervisor claims the address, starts N copies of
the serve command, each binding the same port with `SO_REUSEPORT` (the kernel spreads new
connections over them), and

* restarts a worker that dies, after a backoff (0.5 s doubling to 10 s per slot, back to
  0.5 s once a worker has lived `stable_seconds`);
* gives up when a slot keeps dying: `max_quick_deaths` deaths in a row each within
  `stable_seconds` of its start (a bad configuration, a port taken, a database that refuses
  every connection) stop every worker and make `run()` return 1;
* on SIGTERM or SIGINT forwards SIGTERM to every worker, so each drains as a single process
  does (calls in flight, outbox relays, consumers), waits for them (killing what is left after
  `stop_seconds`) and returns 0 when every worker ended cleanly.

The address is claimed before the first worker starts: a probe bound *without*
`SO_REUSEPORT` fails when anything else holds the port (a single-process server, another
supervisor), then a guard socket bound *with* it is kept for the supervisor's life. The guard
never listens, so it takes no connections, but it holds the port while workers restart and
makes a single-process server (which binds without `SO_REUSEPORT`) fail on it. Port 0 picks a
free port once, for every worker. Workers die with the supervisor (`PR_SET_PDEATHSIG`, see
`die_with_parent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping, Sequence

from libs.retry import Backoff

__all__ = ["Supervisor", "claim_address", "die_with_parent"]

log = logging.getLogger(__name__)
PARENT_ENV = "BACKCRM_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1


def claim_address(address: str) -> tuple[socket.socket, str]:
    """A guard socket holding `address`'s port for workers sharing it (`SO_REUSEPORT`), and
    the address with its concrete port. `OSError` when the port is in use."""
    host_text, _, port_text = address.rpartition(":")
    host = host_text.strip("[]")
    family, kind, proto, _, sockaddr = socket.getaddrinfo(
        host or None, int(port_text), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    if int(port_text):
        with socket.socket(family, kind, proto) as probe:  # no SO_REUSEPORT: exclusive
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot serve {address}: {exc.strerror}") from exc
    guard = socket.socket(family, kind, proto)
    guard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    guard.bind(sockaddr)
    return guard, f"{host_text}:{guard.getsockname()[1]}"


def die_with_parent() -> None:
    """In a worker: get SIGTERM when the supervisor dies (Linux), and exit at once if it is
    already gone, so that no worker outlives it holding the port."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(parent):
        raise SystemExit("backcrm: the supervisor that started this worker is gone")


class Supervisor:
    def __init__(
        self,
        command: Callable[[int], Sequence[str]],
        workers: int,
        env: Mapping[str, str] | None = None,
        *,
        stable_seconds: float = 10.0,
        max_quick_deaths: int = 5,
        stop_seconds: float = 30.0,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._command = command
        self._workers = workers
        self._env = {**os.environ, **(env or {}), PARENT_ENV: str(os.getpid())}
        self._stable = stable_seconds
        self._max_quick_deaths = max_quick_deaths
        self._stop_seconds = stop_seconds
        self._stopping = asyncio.Event()
        self._failed = False
        self._processes: dict[int, asyncio.subprocess.Process] = {}

    @property
    def pids(self) -> dict[int, int]:
        """slot -> pid of the workers running now."""
        return {slot: p.pid for slot, p in self._processes.items() if p.returncode is None}

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        try:
            slots = [
                asyncio.create_task(self._keep(slot), name=f"worker-{slot}")
                for slot in range(self._workers)
            ]
            await self._stopping.wait()
            await self._stop_all()
            results = await asyncio.gather(*slots)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        clean = all(code == 0 for code in results)
        if self._failed:
            log.error("supervisor: workers kept dying; stopped every worker")
            return 1
        if not clean:
            log.error("supervisor: workers ended with %s", results)
        return 0 if clean else 1

    async def _keep(self, slot: int) -> int:
        """Run slot's worker until the supervisor stops; the last exit code. A worker that
        cannot even be started (no such executable) stops the supervisor."""
        try:
            return await self._run_slot(slot)
        except Exception:
            log.exception("supervisor: cannot run worker %d", slot)
            self._failed = True
            self._stopping.set()
            return 1

    async def _run_slot(self, slot: int) -> int:
        backoff, quick_deaths = Backoff(first=0.5, cap=10.0), 0
        while True:
            started = time.monotonic()
            process = await asyncio.create_subprocess_exec(*self._command(slot), env=self._env)
            self._processes[slot] = process
            log.info("supervisor: worker %d started (pid %d)", slot, process.pid)
            if self._stopping.is_set():  # started while the others were told to stop
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
            code = await process.wait()
            if self._stopping.is_set():
                # a worker stopped before its handler was installed ends by the signal: clean
                return 0 if code == -signal.SIGTERM else code
            lived = time.monotonic() - started
            if lived >= self._stable:
                backoff.reset()
                quick_deaths = 0
            else:
                quick_deaths += 1
            if quick_deaths >= self._max_quick_deaths:
                log.error(
                    "supervisor: worker %d died %d times in a row within %.0f s of its start "
                    "(last exit %d)",
                    slot,
                    quick_deaths,
                    self._stable,
                    code,
                )
                self._failed = True
                self._stopping.set()
                return code
            log.warning(
                "supervisor: worker %d (pid %d) exited with %d after %.1f s; restarting in %.1f s",
                slot,
                process.pid,
                code,
                lived,
                backoff.delay,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff.delay):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return 0
            backoff.advance()

    async def _stop_all(self) -> None:
        running = [p for p in self._processes.values() if p.returncode is None]
        log.info("supervisor: stopping %d workers (SIGTERM)", len(running))
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(self._stop_seconds):
                await asyncio.gather(*(p.wait() for p in running))
        except TimeoutError:
            for process in running:
                if process.returncode is None:
                    log.error("supervisor: worker pid %d did not stop; killing it", process.pid)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(p.wait() for p in running))
