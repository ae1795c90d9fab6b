"""One user's reliable chat connection over asyncio: the I/O around ``protocol.ChatState``.

It signs in, connects with the access token, resumes with ``sync`` from the cursor, resends what was
not acknowledged, sends ``ping`` before the idle timeout, and reconnects with backoff when the
socket drops — until ``stop()``. Everything the UI needs arrives through ``on_event``: server frames
(deduplicated, a batched replay's ``messages`` frames as one ``message`` event each) and events of
its own: ``{"type": "connection", "state": ...}``, and ``{"type": "sync-retry", ...}`` when a
``sync`` was refused for now (``rate_limited``, ``internal_error``) and is asked again later on the
same connection. ``request()`` sends a frame and waits for its answer (``who``, ``history``…).

After a lost or failed connection it reads the configuration again (``reload_config``), since a
restarted stack may have new ids. When the account is gone (a stack started afresh) it asks
``on_account_gone`` whether to sign up again; without it, or on a no, ``run`` raises
``AccountGone``. Messages not yet acknowledged stay queued either way and go out once connected.

A script of a few lines::

    session = ChatSession(config, CognitoAuth(config, "alice", password), ChatState("alice"), print)
    runner = asyncio.create_task(session.run())
    await session.send("hello")  # returns the ack; raises SendFailed on an error frame
    page = await session.request({"action": "history", "with": "bob"}, "history")
    await session.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from clients.cli.auth import AccountGone, AuthError, CognitoAuth
from clients.cli.config import ChatConfig, ConfigError
from clients.cli.protocol import PING_FRAME, PING_INTERVAL_SECONDS, Backoff, ChatState, Frame

CONNECTING, ONLINE, OFFLINE = "connecting", "online", "offline"
# Sign-in failures worth retrying: the network, not the credentials.
RETRYABLE_AUTH_CODES = ("ConnectionError", "TooManyRequestsException", "InternalErrorException")
# Refused handshakes in a row (each after a fresh token) before giving up: the token is not the cause.
MAX_REFUSED_HANDSHAKES = 3


class SendFailed(Exception):
    """The server answered a send with an ``error`` frame; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class HandshakeRefused(Exception):
    """The server refused the connection again and again, even with a fresh token."""


class _Dropped(Exception):
    """The connection closed before a request's answer came."""


def url_with_token(websocket_url: str, token: str) -> str:
    """``websocket_url`` with the access token in the query string (browsers cannot send headers)."""
    separator = "&" if urllib.parse.urlsplit(websocket_url).query else "?"
    return f"{websocket_url}{separator}token={urllib.parse.quote(token, safe='')}"


class ChatSession:
    def __init__(
        self,
        config: ChatConfig,
        auth: CognitoAuth,
        state: ChatState,
        on_event: Callable[[Frame], None],
        *,
        backoff: Backoff | None = None,
        ping_interval: float = PING_INTERVAL_SECONDS,
        reload_config: Callable[[], ChatConfig] | None = None,
        on_account_gone: Callable[[AccountGone], Awaitable[bool]] | None = None,
    ) -> None:
        self.config = config
        self.auth = auth
        self.state = state
        self.on_event = on_event
        self.backoff = backoff or Backoff()
        self.ping_interval = ping_interval
        self.reload_config = reload_config
        self.on_account_gone = on_account_gone
        self._config_stale = False
        self.connection_state = OFFLINE
        self._socket: ClientConnection | None = None
        self._waiting: dict[str, asyncio.Future[Frame]] = {}
        self._stopping = asyncio.Event()
        self._refused = 0
        self._online = asyncio.Event()
        # Requests awaiting their answer frame: (answer type, future), oldest first.
        self._asked: list[tuple[str, asyncio.Future[Frame]]] = []
        self._connection_tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Stay connected until ``stop()``; raises AuthError or HandshakeRefused when retrying is futile."""
        while not self._stopping.is_set():
            reason = await self._connect_once()
            if self._stopping.is_set():
                break
            self._config_stale = True
            delay = self.backoff.next_delay()
            self._set_state(OFFLINE, reason=reason, retryIn=round(delay, 1))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        self._set_state(OFFLINE, reason="stopped")

    async def stop(self) -> None:
        self._stopping.set()
        if self._socket is not None:
            await self._socket.close()

    async def send(self, text: str, to: str | None = None) -> Frame:
        """Send a message and wait for its ack, across reconnects if need be."""
        message = self.state.compose(text, to)
        acked: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._waiting[message.client_msg_id] = acked
        # Offline, the message waits in the outbox and goes out when the connection opens.
        await self._send_if_connected(message.frame())
        return await acked

    async def who(self) -> None:
        await self._send_if_connected({"action": "who"})

    async def send_frame(self, frame: Frame) -> bool:
        """Send ``frame`` if connected (``history``, ``read``, ``typing``…); False when offline."""
        return await self._send_if_connected(frame)

    async def request(self, frame: Frame, answer: str) -> Frame:
        """Send ``frame`` once connected and return the first ``answer``-type frame after it; sent
        again on the next connection if this one drops first. Raises SendFailed on an error frame
        without a clientMsgId (the protocol's errors do not say which request they answer)."""
        while True:
            await self._online.wait()
            socket = self._socket
            if socket is None:
                continue
            answered: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
            entry = (answer, answered)
            self._asked.append(entry)
            try:
                await socket.send(json.dumps(frame))
                return await answered
            except (ConnectionClosed, _Dropped):
                continue
            finally:
                with contextlib.suppress(ValueError):
                    self._asked.remove(entry)

    async def _connect_once(self) -> str:
        """One connection, from sign-in to close; returns why it ended."""
        self._set_state(CONNECTING)
        try:
            if self._config_stale and self.reload_config is not None:
                await self._reload_config()
            token = await self._token()
            async with connect(url_with_token(self.config.websocket_url, token)) as socket:
                self._refused = 0
                await self._serve(socket)
            return "closed by the server"
        except AuthError as exc:
            if exc.code not in RETRYABLE_AUTH_CODES:
                raise
            return f"sign-in failed: {exc}"
        except InvalidStatus as exc:
            return self._on_refused(exc)
        except ConfigError:
            return "the chat server does not answer"
        except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
            return str(exc) or type(exc).__name__

    async def _reload_config(self) -> None:
        assert self.reload_config is not None
        fresh = await asyncio.to_thread(self.reload_config)
        self._config_stale = False
        if fresh != self.config:
            self.config = fresh
            self.auth.use_config(fresh)

    async def _token(self) -> str:
        try:
            return await asyncio.to_thread(self.auth.access_token)
        except AccountGone as gone:
            if self.on_account_gone is None or not await self.on_account_gone(gone):
                raise
        return await asyncio.to_thread(self.auth.sign_up_again)

    def _on_refused(self, exc: InvalidStatus) -> str:
        if exc.response.status_code not in (401, 403):
            return str(exc)
        # An expired or revoked token: refresh it before the next attempt.
        self.auth.invalidate()
        self._refused += 1
        if self._refused >= MAX_REFUSED_HANDSHAKES:
            raise HandshakeRefused(str(exc)) from exc
        return str(exc)

    async def _serve(self, socket: ClientConnection) -> None:
        self._socket = socket
        self.backoff.reset()
        self._set_state(ONLINE)
        keepalive = asyncio.create_task(self._keepalive(socket))
        try:
            for frame in self.state.opening_frames():
                await socket.send(json.dumps(frame))
            self._online.set()
            async for raw in socket:
                await self._dispatch(socket, raw)
        finally:
            self._socket = None
            self._online.clear()
            keepalive.cancel()
            for task in self._connection_tasks:
                task.cancel()
            for _, answered in self._asked:
                if not answered.done():
                    answered.set_exception(_Dropped())

    async def _keepalive(self, socket: ClientConnection) -> None:
        # API Gateway closes a socket idle for 10 minutes; a protocol-level ping counts as activity.
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.ping_interval)
                await socket.send(json.dumps(PING_FRAME))

    async def _dispatch(self, socket: ClientConnection, raw: str | bytes) -> None:
        frame = _parse_frame(raw)
        if frame is None:
            return
        reaction = self.state.receive(frame)
        for reply in reaction.replies:
            await socket.send(json.dumps(reply))
        if reaction.retry_sync_in is not None:
            self._on_this_connection(self._retry_sync(socket, reaction.retry_sync_in))
        for event in reaction.events:
            self._settle(event)
            self._answer(event)
            self.on_event(event)

    async def _retry_sync(self, socket: ClientConnection, delay: float) -> None:
        await asyncio.sleep(delay)
        frame = self.state.sync_retry()
        if frame is not None:
            with contextlib.suppress(ConnectionClosed):
                await socket.send(json.dumps(frame))

    def _on_this_connection(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` until it ends or the connection closes, whichever is first."""
        task = asyncio.create_task(work)
        self._connection_tasks.add(task)
        task.add_done_callback(self._connection_tasks.discard)

    def _answer(self, event: Frame) -> None:
        """Resolve the oldest ``request()`` this frame answers."""
        kind = event.get("type")
        refused = kind == "error" and not event.get("clientMsgId")
        for wanted, answered in self._asked:
            if answered.done() or not (refused or wanted == kind):
                continue
            if refused:
                answered.set_exception(SendFailed(str(event.get("code")), str(event.get("message"))))
            else:
                answered.set_result(event)
            return

    def _settle(self, event: Frame) -> None:
        """Resolve the ``send()`` waiting for this ack or error."""
        if event.get("type") not in ("ack", "error"):
            return
        waiting = self._waiting.pop(event.get("clientMsgId") or "", None)
        if waiting is None or waiting.done():
            return
        if event["type"] == "ack":
            waiting.set_result(event)
        else:
            waiting.set_exception(SendFailed(str(event.get("code")), str(event.get("message"))))

    async def _send_if_connected(self, frame: Frame) -> bool:
        if self._socket is None:
            return False
        try:
            await self._socket.send(json.dumps(frame))
        except ConnectionClosed:
            return False
        return True

    def _set_state(self, state: str, **details: Any) -> None:
        self.connection_state = state
        self.on_event({"type": "connection", "state": state, **details})


def _parse_frame(raw: str | bytes) -> Frame | None:
    try:
        frame = json.loads(raw)
    except ValueError:
        return None  # not ours to show; the protocol only sends JSON objects
    return frame if isinstance(frame, dict) else None
