"""The server side of `make bench`, run as its own process so it gets a core of its own.

    python -m tests.load.bench_server --echo       a bare grpc.aio server, one unary method
    python -m tests.load.bench_server              the profile service, configured like
                                                   `backcrm serve profile` from the environment
                                                   (DATABASE_URL, REDIS_URL, BACKCRM_*)
    python -m tests.load.bench_server --suite profile,segmentation
                                                   services.suite.Suite serving both services
                                                   in one process (`backcrm serve all`)
    python -m tests.load.bench_server --suite profile,segmentation --workers 2
                                                   the same in 2 worker processes on one port
                                                   under libs.supervisor, like `backcrm serve
                                                   all --workers 2` (PostgreSQL + Redis only)

Either way it binds 127.0.0.1:0, prints `PORT <n>` on stdout once it is serving, and stops
on SIGTERM or SIGINT (a supervisor forwards it to its workers). `--cprofile FILE` writes
cProfile stats of the whole run to FILE (one process only).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import signal
import sys
from pathlib import Path

import grpc

__all__ = ["ECHO_METHOD", "ECHO_RESPONSE_BYTES", "main"]

ECHO_METHOD = "/bench.v1.EchoService/Echo"
ECHO_RESPONSE_BYTES = 500
_ECHO_RESPONSE = b"x" * ECHO_RESPONSE_BYTES


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return _ECHO_RESPONSE


def _echo_server() -> grpc.aio.Server:
    """No interceptors, no (de)serialisation: the floor of what grpc.aio costs per call."""
    server = grpc.aio.server()
    service, method = ECHO_METHOD.strip("/").split("/")
    handler = grpc.unary_unary_rpc_method_handler(_echo)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service, {method: handler}),)
    )
    return server


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _announce(port: int) -> None:
    print(f"PORT {port}", flush=True)


async def serve_echo() -> None:
    server = _echo_server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    _announce(port)
    await _until_signal()
    await server.stop(0.5)


async def serve_profile() -> None:
    """What `backcrm serve profile` does, on port 0 (see services/cli.py)."""
    from libs.auth import TokenRegistry
    from libs.config import Settings
    from libs.gc_tuning import settle_heap
    from libs.rpc.server import Server
    from libs.runtime import Resources
    from libs.telemetry import setup_logging, setup_telemetry
    from services.profile.app import ProfileApp

    settings = Settings()
    setup_logging(settings.log_level)
    setup_telemetry(settings, "backcrm-profile")
    resources = Resources.open(settings)
    app = ProfileApp.build(resources)
    tokens = TokenRegistry.from_sources(settings.auth_tokens, settings.auth_tokens_file)
    server = Server([app.rpc], settings, readiness=[resources.storage_ready], tokens=tokens)
    port = await server.start("127.0.0.1:0")
    await app.start()
    await server.wait_serving()
    settle_heap()  # as `backcrm serve` does once it serves
    _announce(port)
    try:
        await _until_signal()
        await server.stop(0.5)
    finally:
        await app.stop()
        await resources.close()


async def serve_suite(names: tuple[str, ...], worker_address: str = "") -> None:
    """Profile and segmentation in one process, as services.suite.Suite composes them; with
    `worker_address`, one of a supervisor's workers sharing that address."""
    from libs.config import Settings
    from libs.gc_tuning import settle_heap
    from libs.supervisor import die_with_parent
    from libs.telemetry import setup_logging, setup_telemetry
    from services.suite import Suite

    settings = Settings()
    setup_logging(settings.log_level)
    setup_telemetry(settings, "backcrm-suite")
    if worker_address:
        die_with_parent()
    suite = Suite(settings, names, reuse_port=bool(worker_address))
    port = await suite.start(worker_address or "127.0.0.1:0")
    settle_heap()  # as `backcrm serve` does once it serves
    if not worker_address:
        _announce(port)
    try:
        await _until_signal()
    finally:
        await suite.stop(0.5)


async def serve_workers(names: tuple[str, ...], workers: int) -> int:
    """`workers` processes of serve_suite on one port (libs.supervisor, as `backcrm serve
    --workers`); the port is announced once one of them serves."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from libs.config import Settings
    from libs.supervisor import Supervisor, claim_address
    from libs.telemetry import setup_logging
    from services.suite import worker_environment

    settings = Settings()
    setup_logging(settings.log_level)
    guard, address = claim_address("127.0.0.1:0")
    command = [sys.executable, "-m", "tests.load.bench_server", "--suite", ",".join(names)]
    supervisor = Supervisor(
        lambda _slot: [*command, "--worker-address", address],
        workers,
        worker_environment(settings),
    )
    running = asyncio.create_task(supervisor.run())
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while not running.done():
                try:
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.2)
        if not running.done():
            _announce(int(address.rsplit(":", 1)[1]))
        return await running
    finally:
        guard.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load.bench_server")
    parser.add_argument("--echo", action="store_true", help="the bare echo server")
    parser.add_argument("--suite", help="comma-separated services to serve with Suite")
    parser.add_argument("--cprofile", type=Path, help="write cProfile stats here on exit")
    parser.add_argument("--workers", type=int, default=1, help="--suite in N processes")
    parser.add_argument("--worker-address", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.suite:
        names = tuple(n.strip() for n in args.suite.split(",") if n.strip())
        if args.workers > 1:
            if args.cprofile is not None:
                parser.error("--cprofile profiles one process: not with --workers")
            return asyncio.run(serve_workers(names, args.workers))

        async def run() -> None:
            await serve_suite(names, args.worker_address)

    else:
        run = serve_echo if args.echo else serve_profile
    if args.cprofile is None:
        asyncio.run(run())
        return 0
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(run())
    finally:
        profiler.disable()
        profiler.dump_stats(args.cprofile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
