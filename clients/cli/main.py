"""``chat``: the command-line client.

    chat [--user NAME] [--url URL | --stack NAME]   interactive (or one message per stdin line)
    chat send [--to USER] TEXT...                   send one message, wait for its ack
    chat history [--limit N]                        print the latest messages

The password comes from ``--password-file``, ``CHAT_PASSWORD`` or a prompt on the terminal; a new
username is registered on first use.
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
PASSWORD_ENV = "CHAT_PASSWORD"  # noqa: S105 (the variable's name, not a password)


class NoPassword(Exception):
    """No password was given and there is no terminal to ask for one on."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    username = normalize_username(args.user)
    if username is None:
        print(f"chat: {args.user!r} is not a username (3-32 of a-z 0-9 _ . -)", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(args)
        auth = CognitoAuth(config, username, read_password(username, args.password_file))
        auth.access_token()  # sign in (or up) now: a wrong password should not wait for the UI
        return asyncio.run(run_mode(args, config, auth))
    except AccountGone as gone:
        print(f"chat: {gone.message}; run chat again to sign up anew.", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (ConfigError, AuthError, HandshakeRefused, NoPassword) as exc:
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
    parser.add_argument(
        "--password-file",
        default=default(None),
        metavar="FILE",
        help=f"read the password from FILE's first line (else ${PASSWORD_ENV}, else a prompt)",
    )


def load_config(args: argparse.Namespace) -> ChatConfig:
    if args.stack:
        return load_from_stack(args.stack, args.region)
    return load_from_url(args.url)


def read_password(
    username: str,
    password_file: str | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
    terminal: Callable[[], bool] | None = None,
) -> str:
    """The password from ``password_file`` or ``$CHAT_PASSWORD`` (for scripts), else asked for on
    the terminal without echo. Raises ``NoPassword`` when none is given and no terminal can ask."""
    if password_file is not None:
        return _first_line(password_file)
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    missing = (
        f"no password for {username}: set {PASSWORD_ENV} or pass --password-file FILE"
        " (there is no terminal to ask on)"
    )
    # Without a terminal getpass would read the password from stdin, which in a script holds the
    # messages, or fail with EOFError.
    if not (terminal or has_terminal)():
        raise NoPassword(missing)
    try:
        password = prompt(f"password for {username}: ")
    except EOFError:
        raise NoPassword(missing) from None
    if not password:
        raise NoPassword(f"no password for {username}: an empty one cannot sign in")
    return password


def has_terminal() -> bool:
    """Whether this process has a controlling terminal, where getpass asks."""
    if os.name != "posix":
        return sys.stdin.isatty()  # getpass asks on the console there
    try:
        with open("/dev/tty", "rb"):
            return True
    except OSError:
        return False


def _first_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            password = file.readline().rstrip("\r\n")
    except OSError as exc:
        raise NoPassword(f"cannot read the password file {path}: {exc.strerror}") from exc
    if not password:
        raise NoPassword(f"the password file {path} is empty")
    return password


async def run_mode(args: argparse.Namespace, config: ChatConfig, auth: CognitoAuth) -> int:
    me = auth.username

    def session(state: ChatState, on_event: Callable[[Frame], None]) -> ChatSession:
        # The configuration is read again after a failure: a restarted stack may have new ids.
        return ChatSession(config, auth, state, on_event, reload_config=lambda: load_config(args))

    if args.command == "send":
        sender = session(ChatState(me, batch=True), batch.print_errors)
        work = batch.send_one(sender, " ".join(args.text), args.to, args.timeout)
        return await batch.while_connected(sender, work)
    if args.command == "history":
        printer = batch.HistoryPrinter(me)
        reader = session(ChatState(me, history=args.limit, batch=True), printer.on_event)
        return await batch.while_connected(reader, batch.print_history(printer, args.timeout))
    if not sys.stdin.isatty():
        lines = session(ChatState(me, batch=True), batch.print_errors)
        return await batch.while_connected(lines, batch.send_lines(lines, sys.stdin, args.timeout))
    screen = Screen(me)
    state = ChatState(me, history=args.history, batch=True, inbox=True)
    return await run_interactive(session(state, screen.on_event), screen)


if __name__ == "__main__":
    sys.exit(main())
