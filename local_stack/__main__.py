"""``python -m local_stack [--port 8080]``: run the local stack until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

from chat.config import MAX_PRESENCE_GRACE_SECONDS

from local_stack import REPO_ROOT
from local_stack.breaks import BREAKS
from local_stack.stack import LocalStack, StackOptions

DEFAULT_DATA_DIR = REPO_ROOT / ".local-stack"


def parse_options(argv: list[str] | None = None) -> tuple[StackOptions, Path | None]:
    defaults = StackOptions()
    parser = argparse.ArgumentParser(
        prog="python -m local_stack",
        description="The chat backend on 127.0.0.1: API Gateway WebSocket emulator, Lambda handlers, "
        "moto's DynamoDB and Cognito.",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=defaults.port,
        help="WebSocket, web client and /config.json (default %(default)s; 0: a free port)",
    )
    parser.add_argument(
        "--management-port",
        type=int,
        default=None,
        help="management API and Cognito endpoint (default: PORT+1; a free one when PORT is 0)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=defaults.idle_timeout_s,
        metavar="SECONDS",
        help="close sockets without a data frame for this long, 1001 (default %(default)s)",
    )
    parser.add_argument(
        "--max-lifetime",
        type=float,
        default=defaults.max_lifetime_s,
        metavar="SECONDS",
        help="close sockets open this long, 1001 (default %(default)s)",
    )
    parser.add_argument(
        "--management-latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="delay every management API call (fault injection; default 0)",
    )
    parser.add_argument(
        "--management-throttle-rate",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="answer this share of management API calls with 429 (default 0)",
    )
    parser.add_argument(
        "--presence-grace",
        type=_grace_seconds,
        default=defaults.presence_grace_s,
        metavar="SECONDS",
        help="announce a user offline only once their last connection has been closed this long "
        "(0 to 900; 0: at once; default %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default=defaults.log_level,
        help="the handlers' Powertools log level (default %(default)s)",
    )
    parser.add_argument(
        "--record-events",
        action="store_true",
        help="keep every event built and serve them at /_local/events on the management port",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        metavar="PATH",
        help="keep accounts, the user pool and every table here across restarts (default: "
        ".local-stack/ in the project)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="start empty: delete what the data directory holds first"
    )
    parser.add_argument(
        "--functions-dir",
        type=Path,
        default=defaults.functions_dir,
        metavar="PATH",
        help="the Lambda code's root, watched for changes (default: functions/ of the project)",
    )
    parser.add_argument(
        "--no-reload",
        action="store_true",
        help="do not reload the handlers when a file under the functions folder changes",
    )
    parser.add_argument(
        "--break",
        dest="breaks",
        action="append",
        choices=BREAKS,
        default=[],
        metavar="FAULT",
        help=f"break part of the contract on purpose, to test a checker ({', '.join(BREAKS)})",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="once serving, write the URLs and /config.json to this file as JSON",
    )
    args = parser.parse_args(argv)
    options = StackOptions(
        port=args.port,
        management_port=args.management_port,
        idle_timeout_s=args.idle_timeout,
        max_lifetime_s=args.max_lifetime,
        management_latency_s=args.management_latency,
        management_throttle_rate=args.management_throttle_rate,
        log_level=args.log_level.upper(),
        record_events=args.record_events,
        functions_dir=args.functions_dir,
        reload=not args.no_reload,
        breaks=tuple(args.breaks),
        quiet=args.quiet,
        data_dir=args.data_dir,
        fresh=args.fresh,
        presence_grace_s=args.presence_grace,
    )
    return options, args.ready_file


def _grace_seconds(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number of seconds, not {raw!r}") from None
    if not 0 <= value <= MAX_PRESENCE_GRACE_SECONDS:
        raise argparse.ArgumentTypeError(f"0 to {MAX_PRESENCE_GRACE_SECONDS} seconds (SQS's longest delay)")
    return value


async def serve(options: StackOptions, ready_file: Path | None) -> None:
    stack = LocalStack(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Ctrl-C and SIGTERM both stop cleanly: sockets closed with 1001, $disconnect run, moto stopped.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        urls = await stack.start()
    except Exception:
        await stack.stop()
        raise
    stack.console.note(f"State is kept in {options.data_dir} (--fresh starts empty).")
    try:
        if ready_file is not None:
            ready = {"urls": vars(urls), "config": stack.config(), "resources": stack.describe_resources()}
            temporary = ready_file.with_suffix(".tmp")
            temporary.write_text(json.dumps(ready))
            temporary.replace(ready_file)  # whoever waits for it never reads half a file
        await stop.wait()
        stack.console.note("stopping: closing sockets, running $disconnect")
    finally:
        await stack.stop()


def main(argv: list[str] | None = None) -> None:
    options, ready_file = parse_options(argv)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(serve(options, ready_file))
        except RuntimeError as exc:  # moto's process could not start: the data directory says why
            sys.exit(f"local stack: {exc}")


if __name__ == "__main__":
    main()
