"""``chat``: the command-line client.

    chat [--user NAME] [--url URL | --stack NAME]   interactive (or one message per stdin line)
    chat send [--to USER] TEXT...                   send one message, wait for its ack
    chat history [--limit N]                        print the latest messages

The password comes from ``CHAT_PASSWORD`` or a prompt; a new username is registered on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable, Sequence

from clients.cli import batch
from clients.cli.auth import AccountGone, AuthError, CognitoAuth
from clients.cli.config import DEFAULT_URL, ChatConfig, ConfigError, load_from_stack, load_from_url
from clients.cli.interactive import Screen, run_interactive
from clients.cli.protocol import ChatState, Frame, normalize_username
from clients.cli.session import ChatSession, HandshakeRefused

EXIT_USAGE, EXIT_UNREACHABLE = 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    username = normalize_username(args.user)
    if username is None:
        print(f"chat: {args.user!r} is not a username (3-32 of a-z 0-9 _ . -)", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(args)
        auth = CognitoAuth(config, username, read_password(username))
        auth.access_token()  # sign in (or up) now: a wrong password should not wait for the UI
        return asyncio.run(run_mode(args, config, auth))
    except AccountGone as gone:
        print(f"chat: {gone.message}; run chat again to sign up anew.", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (ConfigError, AuthError, HandshakeRefused) as exc:
        print(f"chat: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chat", description="Chat from the terminal.")
    _add_common_options(parser, defaults=True)
    parser.add_argument("--history", type=int, default=20, help="messages shown on start (default 20)")
    commands = parser.add_subparsers(dest="command", metavar="{send,history}")
    send = commands.add_parser("send", help="send one message and wait for its ack")
    send.add_argument("--to", help="send privately to this user")
    send.add_argument("text", nargs="+", help="the message")
    history = commands.add_parser("history", help="print the latest messages")
    history.add_argument("--limit", type=int, default=50, help="how many (1-500; default 50)")
    for subcommand in (send, history):
        _add_common_options(subcommand, defaults=False)
    return parser


def _add_common_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    # Accepted before and after the subcommand; only the main parser sets defaults, or a
    # subcommand's unset option would overwrite the value given before it.
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", default=default(DEFAULT_URL), help="the local stack (or its /config.json)")
    where.add_argument("--stack", default=default(None), help="a deployed stack's CloudFormation name")
    parser.add_argument("--region", default=default(None), help="the deployed stack's region")
    parser.add_argument(
        "--user",
        default=default(os.environ.get("CHAT_USER") or getpass.getuser()),
        help="username (default: $CHAT_USER, else your login name)",
    )
    parser.add_argument("--timeout", type=float, default=default(30.0), help="seconds to wait for an ack")


def load_config(args: argparse.Namespace) -> ChatConfig:
    if args.stack:
        return load_from_stack(args.stack, args.region)
    return load_from_url(args.url)


def read_password(username: str, prompt: Callable[[str], str] = getpass.getpass) -> str:
    """``$CHAT_PASSWORD`` for scripts, else asked for without echo."""
    return os.environ.get("CHAT_PASSWORD") or prompt(f"password for {username}: ")


async def run_mode(args: argparse.Namespace, config: ChatConfig, auth: CognitoAuth) -> int:
    me = auth.username

    def session(state: ChatState, on_event: Callable[[Frame], None]) -> ChatSession:
        # The configuration is read again after a failure: a restarted stack may have new ids.
        return ChatSession(config, auth, state, on_event, reload_config=lambda: load_config(args))

    if args.command == "send":
        sender = session(ChatState(me), batch.print_errors)
        work = batch.send_one(sender, " ".join(args.text), args.to, args.timeout)
        return await batch.while_connected(sender, work)
    if args.command == "history":
        printer = batch.HistoryPrinter(me)
        reader = session(ChatState(me, history=args.limit), printer.on_event)
        return await batch.while_connected(reader, batch.print_history(printer, args.timeout))
    if not sys.stdin.isatty():
        lines = session(ChatState(me), batch.print_errors)
        return await batch.while_connected(lines, batch.send_lines(lines, sys.stdin, args.timeout))
    screen = Screen(me)
    return await run_interactive(session(ChatState(me, history=args.history), screen.on_event), screen)


if __name__ == "__main__":
    sys.exit(main())
