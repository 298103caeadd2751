"""`backcrm`: serve (one process, or `--workers N` under a supervisor), migrate, import, seed,
train, token, call, bus: the command line of the suite."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from libs.auth import TokenRegistry, add_token_to_file, mint_token
from libs.config import Settings
from libs.db.migrate import upgrade
from libs.gc_tuning import settle_heap
from libs.runtime import Resources
from libs.supervisor import Supervisor, claim_address, die_with_parent
from libs.telemetry import setup_logging, setup_telemetry
from services.registry import SERVICES
from services.suite import Suite, worker_environment

__all__ = ["main"]

log = logging.getLogger("backcrm")
DEMO_SCOPES = ["admin"]


def _demo_token(settings: Settings) -> str:
    """The demo's admin token: made once, kept in var/demo.token, registered by its hash."""
    path = settings.var_dir / "demo.token"
    if path.exists() and path.read_text().strip():
        token = path.read_text().strip()
    else:
        token = mint_token()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(token + "\n")
        path.chmod(0o600)
    add_token_to_file(settings.auth_tokens_file, "demo", DEMO_SCOPES, token)
    return token


async def _serve(
    settings: Settings, which: str, address: str, demo: bool, worker: bool = False
) -> None:
    setup_telemetry(settings, f"backcrm-{which}")
    token = _demo_token(settings) if demo else None
    tokens = TokenRegistry.from_sources(settings.auth_tokens, settings.auth_tokens_file)
    if settings.auth_enabled and not len(tokens):
        log.warning("auth is on and no token is configured: every call will be UNAUTHENTICATED")
    names = tuple(SERVICES) if which == "all" else (which,)
    suite = Suite(settings, names, tokens, reuse_port=worker)
    try:
        port = await suite.start(address)
        settle_heap()
        assert suite.resources is not None and suite.server is not None
        host = address.rsplit(":", 1)[0]
        log.info(
            "serving %s on %s:%d (%s)", ", ".join(names), host, port, suite.resources.describe()
        )
        if token is not None:
            _print_banner(host, port, token)
        await suite.server.serve_until_signal()
    finally:
        await suite.stop(0)


def _print_banner(host: str, port: int, token: str) -> None:
    target = f"{host}:{port}"
    request = (
        '{"customer": {"identity": {"type": "IDENTITY_TYPE_EMAIL", "value": "demo@example.com"}}}'
    )
    print(
        f"""
Back CRM is serving on {target} (embedded mode unless DATABASE_URL / REDIS_URL are set).
Demo token (admin scope, also in var/demo.token):
  {token}
Try it:
  grpcurl -plaintext -H "authorization: Bearer {token}" \\
    -d '{request}' \\
    {target} backcrm.profile.v1.ProfileService/GetProfile
or without grpcurl:
  .venv/bin/backcrm call GetProfile '{request}'
Stop with Ctrl-C.
""",
        flush=True,
    )


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    address = args.address or settings.address
    if args.workers is not None:
        return _supervise(settings, args, address)
    if args.worker:
        die_with_parent()
    asyncio.run(_serve(settings, args.service, address, args.demo, worker=args.worker))
    return 0


def _supervise(settings: Settings, args: argparse.Namespace, address: str) -> int:
    """`serve --workers N`: N processes of `serve` on one address, restarted when they die."""
    if args.workers > 1 and (settings.embedded_bus or settings.database_url.startswith("sqlite")):
        print(
            "backcrm: --workers above 1 needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL): "
            "the embedded default's bus and cache live inside one process, and its SQLite file "
            "takes one writer process. Serve it as one process (no --workers, or --workers 1).",
            file=sys.stderr,
        )
        return 2
    try:
        guard, address = claim_address(address)
    except OSError as exc:
        print(f"backcrm: {exc}", file=sys.stderr)
        return 1
    token = _demo_token(settings) if args.demo else None  # before the workers read the file
    command = [sys.executable, "-m", "services.cli", "serve", args.service]
    supervisor = Supervisor(
        lambda _slot: [*command, "--address", address, "--worker"],
        args.workers,
        worker_environment(settings),
        stop_seconds=settings.shutdown_grace_seconds + settings.bus_drain_seconds + 15,
    )

    async def run() -> int:
        log.info("supervising %d workers of %s on %s", args.workers, args.service, address)
        running = asyncio.create_task(supervisor.run())
        if token is not None:
            host, _, port = address.rpartition(":")
            _print_banner(host, int(port), token)
        return await running

    try:
        return asyncio.run(run())
    finally:
        guard.close()


def _cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    upgrade(settings.database_url, SERVICES)
    print(f"migrated {settings.database_url.split('@')[-1]}")
    return 0


def _cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from services.tools.importer import import_orders

    async def run() -> None:
        resources = Resources.open(settings)
        try:
            summary = await import_orders(resources, Path(args.file), progress=not args.quiet)
        finally:
            await resources.close()
        print(summary.report())

    asyncio.run(run())
    return 0


def _cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from services.tools.seed import seed

    async def run() -> None:
        resources = Resources.open(settings)
        try:
            summary = await seed(
                resources,
                customers=args.customers,
                rng_seed=args.seed,
                if_empty=args.if_empty,
                progress=not args.quiet,
            )
        finally:
            await resources.close()
        print(summary.report())

    asyncio.run(run())
    return 0


def _cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from services.recommend.app import train_now
    from services.recommend.personal import Hyper

    async def run() -> None:
        resources = Resources.open(settings)
        try:
            with tqdm(total=Hyper().iterations, desc="ALS", unit="it", disable=args.quiet) as bar:

                def step(_iteration: int) -> None:
                    bar.update(1)

                version, model = await train_now(resources, step)
        finally:
            await resources.close()
        print(
            f"recommend: personal model version {version} "
            f"({len(model.customers)} customers, {len(model.items)} items)"
        )

    asyncio.run(run())
    return 0


def _cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    token = mint_token()
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    add_token_to_file(settings.auth_tokens_file, args.name, scopes, token)
    print(token)
    return 0


def _cmd_call(settings: Settings, args: argparse.Namespace) -> int:
    from libs.client import call_json

    token_file = settings.var_dir / "demo.token"
    token = args.token or (token_file.read_text().strip() if token_file.exists() else "")
    print(call_json(args.address or settings.address, token, args.method, args.json))
    return 0


def _cmd_bus_replay_dead(settings: Settings, args: argparse.Namespace) -> int:
    if settings.embedded_bus:
        print(
            "backcrm: the embedded (in-process) bus keeps no dead letters to replay: they live "
            "in the serving process only (its error log and a tail of <topic>.dead). Set "
            "REDIS_URL to the Redis the services use.",
            file=sys.stderr,
        )
        return 2
    from libs.bus.redis_streams import RedisStreamsBus

    async def run() -> None:
        bus = RedisStreamsBus(settings.redis_url, prefix=settings.redis_prefix)
        try:
            done = await bus.replay_dead(args.topic, args.limit)
        finally:
            await bus.close()
        print(f"replayed {done.replayed} dead letters onto {args.topic}")
        if done.unreadable:
            print(f"left {done.unreadable} unreadable entries (not an EventEnvelope) in place")

    asyncio.run(run())
    return 0


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backcrm", description="Back CRM customer-data platform")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve one service or all of them")
    serve.add_argument("service", choices=["all", *SERVICES], nargs="?", default="all")
    serve.add_argument("--address", help="host:port (default BACKCRM_ADDRESS)")
    serve.add_argument("--demo", action="store_true", help="make and print the demo admin token")
    serve.add_argument(
        "--workers",
        type=_positive,
        help="run N worker processes on the address (SO_REUSEPORT) under a supervisor that "
        "restarts a dead one; above 1 needs PostgreSQL and Redis",
    )
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(run=_cmd_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(run=_cmd_migrate)
    imp = sub.add_parser("import", help="bulk-load data")
    imp.add_argument("kind", choices=["orders"])
    imp.add_argument("file", help="Online Retail layout CSV, plain or .gz")
    imp.add_argument("--quiet", action="store_true")
    imp.set_defaults(run=_cmd_import)
    seed_cmd = sub.add_parser("seed", help="make a synthetic demo population")
    seed_cmd.add_argument("--customers", type=int, default=1000)
    seed_cmd.add_argument("--seed", type=int, default=42)
    seed_cmd.add_argument("--if-empty", action="store_true", help="only when no customer exists")
    seed_cmd.add_argument("--quiet", action="store_true")
    seed_cmd.set_defaults(run=_cmd_seed)
    train = sub.add_parser("train", help="train a model now (the services also train on schedule)")
    train.add_argument("model", choices=["recommend"])
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(run=_cmd_train)
    token = sub.add_parser("token", help="manage bearer tokens")
    create = token.add_subparsers(dest="token_command", required=True).add_parser(
        "create", help="mint a token; only its hash is stored (in the tokens file)"
    )
    create.add_argument("--name", required=True, help="the caller, also its trait namespace")
    create.add_argument("--scopes", required=True, help="comma-separated, e.g. profile:read")
    create.set_defaults(run=_cmd_token)
    call = sub.add_parser("call", help="call any RPC with a JSON request (e.g. GetProfile)")
    call.add_argument("method")
    call.add_argument("json", nargs="?", default="{}")
    call.add_argument("--address")
    call.add_argument("--token")
    call.set_defaults(run=_cmd_call)
    bus = sub.add_parser("bus", help="operate the event bus")
    replay = bus.add_subparsers(dest="bus_command", required=True).add_parser(
        "replay-dead",
        help="requeue a topic's dead letters onto the topic (Redis)",
        description=(
            "Moves the entries of <topic>.dead back onto <topic>, oldest first: each is "
            "re-published and removed from the dead-letter stream together. Every consumer "
            "group of the topic receives them again (consumers are idempotent). Needs "
            "REDIS_URL: in the embedded mode dead letters live in the serving process only "
            "(logged as errors, and visible to a tail of <topic>.dead), and are lost with it."
        ),
    )
    replay.add_argument("topic", help="e.g. profile.changed")
    replay.add_argument("--limit", type=_positive, help="at most this many (default: all)")
    replay.set_defaults(run=_cmd_bus_replay_dead)
    args = parser.parse_args(argv)
    settings = Settings()
    setup_logging(settings.log_level)
    return int(args.run(settings, args))


if __name__ == "__main__":
    raise SystemExit(main())
