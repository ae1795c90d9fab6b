"""One run of the suite: its throwaway users, their sessions, and the helpers every check uses."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from conformance.accounts import PREFIX, Account, Accounts
from conformance.session import CheckFailed, Frame, Session, connect_url
from conformance.target import Target

LETTERS = ("a", "b", "c")


@dataclass(frozen=True)
class Timing:
    """How long to wait: for a frame that must come, and for frames that must not."""

    # A frame that must arrive: generous, for cold starts and a busy stack.
    timeout_s: float = 20.0
    # After a barrier, how much longer to watch for a frame that must not arrive.
    quiet_s: float = 1.0
    # The longest a user's offline presence may take (the stack may hold it for a grace period).
    presence_timeout_s: float = 45.0


class Run:
    """The users ``a``, ``b``, ``c`` of this run and their sessions (``a1``, ``a2``, ``b1``...)."""

    def __init__(self, target: Target, accounts: Accounts, run_id: str, timing: Timing) -> None:
        self.target = target
        self.accounts = accounts
        self.run_id = run_id
        self.timing = timing
        self.users: dict[str, Account] = {}
        self.every_session: list[Session] = []
        self._sessions: dict[str, Session] = {}
        self._counter = itertools.count(1)

    # -- users

    def username(self, letter: str) -> str:
        return f"{PREFIX}-{self.run_id}-{letter}"

    def sign_up_users(self) -> None:
        for letter in LETTERS:
            self.users[letter] = self.accounts.sign_up(self.username(letter))

    # -- sessions

    def session(self, key: str) -> Session:
        """The open session ``key`` (``a1``: user a's first tab), opened now if it is not open."""
        current = self._sessions.get(key)
        if current is not None and current.open:
            return current
        return self.open_session(key)

    def open_session(self, key: str) -> Session:
        """A new connection for ``key``'s user (closing the one ``key`` had)."""
        self.close_session(key)
        user = self.users[key[0]]
        session = Session(key, user.username, connect_url(self.target.websocket_url, user.access_token))
        self._sessions[key] = session
        self.every_session.append(session)
        return session

    def close_session(self, key: str) -> None:
        session = self._sessions.pop(key, None)
        if session is not None:
            session.close()

    def close_user(self, letter: str) -> None:
        for key in [key for key in self._sessions if key.startswith(letter)]:
            self.close_session(key)

    def close_all(self) -> None:
        for key in list(self._sessions):
            self.close_session(key)

    # -- frames

    def tag(self, label: str) -> str:
        """A clientMsgId unique to this run and call (``A-Za-z0-9_-``)."""
        return f"v{self.run_id}-{label}-{next(self._counter)}"

    def text(self, label: str) -> str:
        return f"conformance check {self.run_id}: {label}"

    def send(
        self, session: Session, *, text: str, to: str | None = None, label: str = "msg", **extra: Any
    ) -> Frame:
        """Send a message with a fresh clientMsgId and wait for its ack (an error frame fails)."""
        frame: dict[str, Any] = {"action": "sendmessage", "text": text, "clientMsgId": self.tag(label)}
        if to is not None:
            frame["to"] = to
        frame.update(extra)
        return self.answer(session, frame, expect="ack")

    def answer(self, session: Session, frame: Frame, *, expect: str) -> Frame:
        """Send ``frame`` (it has a clientMsgId) and return the ack or error that answers it."""
        client_msg_id = frame["clientMsgId"]
        sent = time.monotonic()
        session.send(frame)
        reply = session.wait_for(
            lambda f: f.get("type") in ("ack", "error") and f.get("clientMsgId") == client_msg_id,
            f"answer to {frame.get('action')} {client_msg_id}",
            self.timing.timeout_s,
            since=sent,
        )
        if reply["type"] != expect:
            if reply["type"] == "error":
                raise CheckFailed(f"{session.name} got error {reply.get('code')}: {reply.get('message')}")
            raise CheckFailed(f"{session.name} got an ack where an error was due: {reply}")
        return reply

    def request(self, session: Session, frame: Frame | str, reply_type: str, what: str) -> Frame:
        """Send ``frame`` and wait for the next frame of ``reply_type`` on that session."""
        sent = time.monotonic()
        session.send(frame)
        return session.wait_for(
            lambda f: f.get("type") == reply_type, what, self.timing.timeout_s, since=sent
        )

    def barrier(self, sender: Session, to: str, receivers: list[Session]) -> None:
        """A private message from ``sender`` to ``to``, waited for on every receiver.

        Live frames from one sender arrive in the order sent, so once it is there, anything the
        sender caused before it has arrived too.
        """
        ack = self.send(sender, text=self.text("barrier"), to=to, label="barrier")
        for receiver in receivers:
            receiver.wait_for(lambda f: is_message(f, ack["id"]), "barrier message", self.timing.timeout_s)
        time.sleep(self.timing.quiet_s)


def is_message(frame: Frame, message_id: str) -> bool:
    return frame.get("type") == "message" and frame.get("id") == message_id


def copies(session: Session, message_id: str) -> int:
    return len(session.frames(lambda f: is_message(f, message_id)))
