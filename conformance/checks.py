"""The checks, in the order they run. Each takes the run and raises ``CheckFailed`` with a reason.

Every check looks only at frames about this run's own users (a shared stack sends frames of other
users too) and waits with bounded timeouts. A frame that must *not* arrive is looked for after a
barrier (``Run.barrier``): a message from the same sender, sent later, that must arrive after it.

Not provoked: ``rate_limited`` (it takes more sends in a minute than the stack allows one user, 120
by default, and leaves the user throttled for the checks after it) and ``internal_error`` (it takes
a broken backend).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from websockets.exceptions import ConnectionClosed

from conformance import frames
from conformance.run import Run, copies, is_message
from conformance.session import CheckFailed, Frame, Session, connect_url, refused_status

REFUSED = (401, 403)
TEXT_LIMIT = 4000
KB = 1024
# API Gateway: a frame is at most 32 KB and a message (frames joined) at most 128 KB; beyond either
# the connection is closed with 1009 (its WebSocket quotas page). Sizes here stay clear of the edges.
OVER_FRAME_LIMIT = 40 * KB
FRAGMENT = 16 * KB
UNDER_MESSAGE_LIMIT = 40 * KB
OVER_MESSAGE_LIMIT = 160 * KB
MESSAGE_TOO_BIG = 1009
# A messages frame (version 1.1) holds as many messages as fit in one frame of 32 KB as sent.
FRAME_BYTES = 32 * KB


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Run], None]


def expect(condition: bool, why: str) -> None:
    if not condition:
        raise CheckFailed(why)


def expect_shape(frame: Frame) -> None:
    issues = frames.problems(frame)
    expect(not issues, "; ".join(issues))


def presence_of(user: str, online: bool) -> Callable[[Frame], bool]:
    return lambda f: f.get("type") == "presence" and f.get("user") == user and f.get("online") is online


# -- accounts


def username_rule(run: Run) -> None:
    """Sign-up refuses usernames outside 3 to 32 characters of a-z 0-9 _ . -"""
    # Both carry this run's prefix, so one wrongly accepted is still recognisably ours to delete.
    for username in (f"{run.username('x')}!", run.username("x" * 20)):
        refusal = run.accounts.refusal_of(username)
        expect(refusal is not None, f"the username {username!r} was accepted")


# -- handshakes


def handshake_with_access_token(run: Run) -> None:
    """Two tabs each for a and b: the sessions later checks use, opened early so that they have
    settled in the stack (its reads may be eventually consistent) before anything is sent to them."""
    for key in ("a1", "a2", "b1", "b2"):
        session = run.session(key)
        expect(session.open, f"{key}'s connection closed at once with {session.close_code}")
    pong = run.request(run.session("b2"), {"action": "ping"}, "pong", "pong")
    expect(pong == {"type": "pong"}, f"pong is {pong}")


def handshake_without_token(run: Run) -> None:
    status = refused_status(run.target.websocket_url)
    expect(status in REFUSED, f"a handshake without a token got {status or 'a connection'}, not 401/403")


def handshake_with_garbage_token(run: Run) -> None:
    for token in ("not-a-token", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"):
        status = refused_status(connect_url(run.target.websocket_url, token))
        expect(status in REFUSED, f"the token {token[:20]!r} got {status or 'a connection'}, not 401/403")


def handshake_with_id_token(run: Run) -> None:
    c = run.users["c"]
    observer = run.session("a1")
    started = time.monotonic()
    status = refused_status(connect_url(run.target.websocket_url, c.id_token))
    expect(status in REFUSED, f"an ID token got {status or 'a connection'}, not 401/403")
    # No connection may have been recorded for c: nobody hears c come online, who does not list c.
    who = run.request(observer, {"action": "who"}, "who", "who")
    expect(c.username not in who.get("users", []), f"who lists {c.username} after a refused handshake")
    time.sleep(run.timing.quiet_s)
    expect(
        not observer.frames(presence_of(c.username, True), since=started),
        f"{c.username} was announced online after a refused handshake",
    )


# -- ping


def bare_ping(run: Run) -> None:
    pong = run.request(run.session("a1"), "ping", "pong", "pong to the text ping")
    expect(pong == {"type": "pong"}, f"pong is {pong}")


def ping_action(run: Run) -> None:
    pong = run.request(run.session("a1"), {"action": "ping"}, "pong", "pong to the ping action")
    expect(pong == {"type": "pong"}, f"pong is {pong}")


# -- presence and who


def presence_once_per_user(run: Run) -> None:
    """c opens two tabs and closes both: the others hear one online and one offline, not two."""
    c = run.username("c")
    observers = [run.session("a1"), run.session("b1")]
    run.close_user("c")
    started = time.monotonic()
    run.open_session("c1")
    for observer in observers:
        observer.wait_for(
            presence_of(c, True), f"presence online of {c}", run.timing.timeout_s, since=started
        )
    c2 = run.open_session("c2")
    # A message from the second tab, sent once it is open: a presence frame its opening caused
    # would come before it (the stack announces a connection while accepting it), or soon after.
    run.barrier(c2, run.username("a"), [observers[0]])
    for observer in observers:
        onlines = len(observer.frames(presence_of(c, True), since=started))
        expect(onlines == 1, f"{observer.name} heard {c} come online {onlines} times for two tabs")
    first_closing = time.monotonic()
    run.close_session("c1")
    time.sleep(run.timing.quiet_s)
    expect(c2.open, "c2 closed with c1")
    last_closing = time.monotonic()
    run.close_session("c2")
    offline = presence_of(c, False)
    for observer in observers:
        observer.wait_for(
            offline, f"presence offline of {c}", run.timing.presence_timeout_s, since=first_closing
        )
    # A second offline (one per tab) would follow the first within the time between the two closes.
    time.sleep(max(2 * run.timing.quiet_s, last_closing - first_closing + run.timing.quiet_s))
    for observer in observers:
        arrivals = observer.arrivals(offline, since=first_closing)
        expect(len(arrivals) == 1, f"{observer.name} heard {c} go offline {len(arrivals)} times for two tabs")
        expect(arrivals[0] >= last_closing, f"{c} was announced offline while its second tab was open")
    for frame in observers[0].frames(lambda f: f.get("type") == "presence" and f.get("user") == c):
        expect_shape(frame)
    # The third user's tab for the delivery checks, opened well before they send anything.
    run.open_session("c1")


def who_lists_online_users(run: Run) -> None:
    a, b = run.username("a"), run.username("b")
    run.session("b1")
    who = run.request(run.session("a1"), {"action": "who"}, "who", "who")
    expect_shape(who)
    missing = {a, b} - set(who["users"])
    expect(not missing, f"who does not list {sorted(missing)}, who are online")


# -- delivery


def public_delivery(run: Run) -> None:
    sessions = [run.session(key) for key in ("a1", "a2", "b1", "b2", "c1")]
    text = run.text("public")
    ack = run.send(sessions[0], text=text, label="public")
    expect_shape(ack)
    expect(ack["duplicate"] is False, "the first ack says duplicate: true")
    for session in sessions:
        frame = session.wait_for(lambda f: is_message(f, ack["id"]), "public message", run.timing.timeout_s)
        expect_shape(frame)
        expected = {"from": run.username("a"), "to": None, "text": text, "clientMsgId": ack["clientMsgId"]}
        got = {name: frame.get(name) for name in expected}
        expect(got == expected, f"{session.name} got {got}, not {expected}")
    time.sleep(run.timing.quiet_s)
    for session in sessions:
        count = copies(session, ack["id"])
        expect(count == 1, f"{session.name} got the public message {count} times")


def private_delivery(run: Run) -> None:
    """To every tab of the recipient and every other tab of the sender; nowhere else."""
    a1, a2, b1, b2, c1 = (run.session(key) for key in ("a1", "a2", "b1", "b2", "c1"))
    b = run.username("b")
    text = run.text("private")
    ack = run.send(a1, text=text, to=b, label="private")
    expect_shape(ack)
    for session in (b1, b2, a2):
        frame = session.wait_for(lambda f: is_message(f, ack["id"]), "private message", run.timing.timeout_s)
        expect_shape(frame)
        got = (frame["from"], frame["to"], frame["text"])
        expect(got == (run.username("a"), b, text), f"{session.name} got {got}")
    run.barrier(a1, run.username("c"), [c1])
    expect(copies(c1, ack["id"]) == 0, "a third user got the private message")
    expect(copies(a1, ack["id"]) == 0, "the sending connection got its own private message (it gets the ack)")
    for session in (b1, b2, a2):
        count = copies(session, ack["id"])
        expect(count == 1, f"{session.name} got the private message {count} times")


def private_by_command(run: Run) -> None:
    a1, a2, b1 = (run.session(key) for key in ("a1", "a2", "b1"))
    b = run.username("b")
    words = run.text("by /msg")
    ack = run.send(a1, text=f"/msg {b} {words}", label="command")
    for session in (b1, a2):
        frame = session.wait_for(lambda f: is_message(f, ack["id"]), "/msg message", run.timing.timeout_s)
        got = (frame["to"], frame["text"])
        expect(got == (b, words), f"{session.name} got to/text {got}, not {(b, words)}")


def usernames_ignore_case(run: Run) -> None:
    """A recipient named in capitals is the same user, shown lower-case."""
    b1 = run.session("b1")
    b = run.username("b")
    ack = run.send(run.session("a1"), text=run.text("to capitals"), to=b.upper(), label="case")
    frame = b1.wait_for(lambda f: is_message(f, ack["id"]), "message to capitals", run.timing.timeout_s)
    expect(frame["to"] == b, f"the message says to {frame['to']!r}, not {b!r}")


def sender_from_token(run: Run) -> None:
    """A ``from`` in the frame changes nothing: the sender is the token's user (or it is refused)."""
    a1, b1 = run.session("a1"), run.session("b1")
    frame = {
        "action": "sendmessage",
        "text": run.text("forged from"),
        "to": run.username("b"),
        "from": run.username("c"),
        "clientMsgId": run.tag("forged"),
    }
    sent = time.monotonic()
    a1.send(frame)
    reply = a1.wait_for(
        lambda f: f.get("clientMsgId") == frame["clientMsgId"] and f.get("type") in ("ack", "error"),
        "answer",
        run.timing.timeout_s,
        since=sent,
    )
    if reply["type"] == "error":
        expect(reply["code"] == "invalid_message", f"refused with {reply['code']}, not invalid_message")
        return
    message = b1.wait_for(lambda f: is_message(f, reply["id"]), "message", run.timing.timeout_s)
    expect(message["from"] == run.username("a"), f"the message says from {message['from']}")


def idempotent_resend(run: Run) -> None:
    sessions = [run.session(key) for key in ("a1", "a2", "b1", "b2", "c1")]
    a1 = sessions[0]
    frame = {"action": "sendmessage", "text": run.text("sent twice"), "clientMsgId": run.tag("twice")}
    first = run.answer(a1, dict(frame), expect="ack")
    for session in sessions:
        session.wait_for(lambda f: is_message(f, first["id"]), "message", run.timing.timeout_s)
    again = run.answer(a1, dict(frame), expect="ack")
    expect_shape(again)
    expect(first["duplicate"] is False, "the first ack says duplicate: true")
    expect(again["duplicate"] is True, "the resend's ack says duplicate: false")
    expect(again["id"] == first["id"], f"the resend's ack has id {again['id']}, not {first['id']}")
    expect(again["clientMsgId"] == frame["clientMsgId"], "the resend's ack has another clientMsgId")
    run.barrier(a1, run.username("b"), [sessions[2]])
    for session in sessions:
        count = copies(session, first["id"])
        expect(count == 1, f"{session.name} got the message {count} times")


def sync_after_drop(run: Run) -> None:
    """b drops off; a sends public and private messages; b comes back and syncs from its cursor."""
    a1, b, held = _b_drops_off(run, "before the drop")
    missed = [
        run.send(a1, text=run.text("missed public 1"), label="missed"),
        run.send(a1, text=run.text("missed private"), to=b, label="missed"),
        run.send(a1, text=run.text("missed public 2"), label="missed"),
    ]
    b3 = run.open_session("b3")
    replayed, synced = _sync_all(run, b3, held)
    order = [frame["id"] for frame in replayed]
    for ack, kind in zip(missed, ("public", "private", "public"), strict=True):
        expect(ack["id"] in order, f"sync did not replay the missed {kind} message")
    _expect_in_order_and_visible(replayed, missed, b, "sync")
    for frame in replayed:
        expect_shape(frame)
    expect_shape(synced)
    expect(synced["complete"] is True, "synced says complete: false for a cursor seconds old")


def sync_batched(run: Run) -> None:
    """As sync-after-drop with `batch: true` (version 1.1): the replay comes only as `messages`
    frames of at most 32 KB, each message with its own cursor, and resuming from one works."""
    a1, b, held = _b_drops_off(run, "before the batched drop")
    long_text = run.text("missed, long ") + "ü" * 3_000  # 6 KB of UTF-8: five fit in 32 KB
    missed = [run.send(a1, text=long_text, label="missed") for _ in range(2)]
    missed.append(run.send(a1, text=run.text("missed private"), to=b, label="missed"))
    missed += [run.send(a1, text=long_text, label="missed") for _ in range(3)]
    b3 = run.open_session("b3")
    asked = time.monotonic()
    replayed, synced = _sync_all(run, b3, held, batch=True)
    expect(
        not b3.frames(lambda f: f.get("type") == "message", since=asked), "a batched sync sent message frames"
    )
    sizes = [len(_raw_bytes(r.raw)) for r in b3.received if r.at >= asked and _is_messages(r.frame)]
    expect(bool(sizes), "a batched sync sent no messages frame")
    expect(max(sizes) <= FRAME_BYTES, f"a messages frame of {max(sizes):,} bytes is over 32 KB")
    expect(len(sizes) > 1, f"over 32 KB of messages came in {len(sizes)} messages frame")
    order = [frame["id"] for frame in replayed]
    for ack in missed:
        expect(ack["id"] in order, "the batched sync did not replay a missed message")
    _expect_in_order_and_visible(replayed, missed, b, "the batched sync")
    expect(synced["complete"] is True, "synced says complete: false for a cursor seconds old")
    middle = replayed[order.index(missed[2]["id"])]
    again, _ = _sync_all(run, run.open_session("b3"), middle["cursor"], batch=True)
    rest = [ack["id"] for ack in missed[3:]]
    expect(all(i in [f["id"] for f in again] for i in rest), "resuming from a packed cursor lost messages")


def _b_drops_off(run: Run, text: str) -> tuple[Session, str, str]:
    """a1 sends ``text`` and b1 gets it; then every connection of b closes. (a1, b's username, the
    cursor b held when it dropped off.)"""
    a1, b1 = run.session("a1"), run.session("b1")
    before = run.send(a1, text=run.text(text), label="before")
    held = b1.wait_for(
        lambda f: is_message(f, before["id"]), "message sent before the drop", run.timing.timeout_s
    )
    run.close_user("b")
    return a1, run.username("b"), held["cursor"]


def _expect_in_order_and_visible(replayed: list[Frame], missed: list[Frame], reader: str, what: str) -> None:
    """The missed messages (all replayed) came in the order they were sent, and nothing private
    between others reached ``reader``."""
    order = [frame["id"] for frame in replayed]
    positions = [order.index(ack["id"]) for ack in missed]
    expect(positions == sorted(positions), f"{what} replayed the missed messages out of order")
    for frame in replayed:
        visible = frame["to"] is None or reader in (frame["from"], frame["to"])
        expect(visible, f"sync replayed a private message between {frame['from']} and {frame['to']}")


def _is_messages(frame: Frame | None) -> bool:
    return frame is not None and frame.get("type") == "messages"


def _raw_bytes(raw: str | bytes) -> bytes:
    return raw.encode() if isinstance(raw, str) else raw


def _sync_all(
    run: Run, session: Session, cursor: str, pages: int = 20, *, batch: bool = False
) -> tuple[list[Frame], Frame]:
    """Every message replayed from ``cursor`` (following ``more``), and the last ``synced``; with
    ``batch``, the messages unpacked from ``messages`` frames."""
    replayed: list[Frame] = []
    request: Frame = {"action": "sync", "limit": 100, **({"batch": True} if batch else {})}
    for _ in range(pages):
        asked = time.monotonic()
        session.send({**request, "since": cursor})
        synced = session.wait_for(
            lambda f: f.get("type") == "synced", "synced", run.timing.timeout_s, since=asked
        )
        for frame in session.frames(lambda f: f.get("type") in ("message", "messages"), since=asked):
            replayed += frame["messages"] if frame["type"] == "messages" else [frame]
        if not synced.get("more"):
            return replayed, synced
        cursor = synced["cursor"]
    raise CheckFailed(f"sync still said more: true after {pages} pages")


# -- errors


def _expect_error(
    run: Run, session: Session, frame: Frame | str, code: str, client_msg_id: str | None
) -> None:
    sent = time.monotonic()
    session.send(frame)
    error = session.wait_for(
        lambda f: f.get("type") in ("error", "ack"), f"{code} error", run.timing.timeout_s, since=sent
    )
    expect(error["type"] == "error", f"{str(frame)[:60]} was accepted, not refused with {code}")
    expect_shape(error)
    expect(error["code"] == code, f"{str(frame)[:60]} got {error['code']}, not {code}")
    expect(
        error["clientMsgId"] == client_msg_id,
        f"the {code} error carries clientMsgId {error['clientMsgId']!r}, not {client_msg_id!r}",
    )
    # The connection stays open and keeps working: it answers the next frame. The stack's per-user
    # budget for pings may answer rate_limited after this many probes; that is an answer too.
    sent = time.monotonic()
    session.send({"action": "ping"})
    session.wait_for(
        lambda f: f.get("type") == "pong" or (f.get("type") == "error" and f.get("code") == "rate_limited"),
        f"an answer after the {code} error",
        run.timing.timeout_s,
        since=sent,
    )


def invalid_json(run: Run) -> None:
    for raw in ("{not json", "[1, 2", "pong"):
        _expect_error(run, run.session("a1"), raw, "invalid_json", None)


def unknown_action(run: Run) -> None:
    for frame in ({"action": "no-such-action"}, {"text": "no action"}, [1, 2]):
        _expect_error(run, run.session("a1"), _json(frame), "unknown_action", None)


def invalid_message(run: Run) -> None:
    a1 = run.session("a1")
    for label, body in (
        ("no-text", {}),
        ("number-text", {"text": 42}),
        ("blank-text", {"text": "   "}),
        ("bad-to", {"text": "x", "to": "not a user!"}),
        ("msg-without-text", {"text": f"/msg {run.username('b')}"}),
    ):
        tag = run.tag(label)
        _expect_error(run, a1, {"action": "sendmessage", "clientMsgId": tag, **body}, "invalid_message", tag)
    _expect_error(
        run, a1, {"action": "sendmessage", "text": "x", "clientMsgId": "no spaces!"}, "invalid_message", None
    )
    _expect_error(run, a1, {"action": "sync", "since": "not-a-cursor"}, "invalid_message", None)
    _expect_error(run, a1, {"action": "sync", "limit": 0}, "invalid_message", None)


def text_too_long(run: Run) -> None:
    a1 = run.session("a1")
    tag = run.tag("too-long")
    frame = {"action": "sendmessage", "text": "x" * (TEXT_LIMIT + 1), "clientMsgId": tag}
    _expect_error(run, a1, frame, "text_too_long", tag)
    # Exactly at the limit is fine (sent privately, so nobody else sees it).
    run.send(a1, text="y" * TEXT_LIMIT, to=run.username("b"), label="at-limit")


def unknown_user(run: Run) -> None:
    a1 = run.session("a1")
    nobody = run.username("nobody")
    tag = run.tag("nobody")
    _expect_error(
        run,
        a1,
        {"action": "sendmessage", "text": "hi", "to": nobody, "clientMsgId": tag},
        "unknown_user",
        tag,
    )
    tag = run.tag("nobody")
    _expect_error(
        run,
        a1,
        {"action": "sendmessage", "text": f"/msg {nobody} hi", "clientMsgId": tag},
        "unknown_user",
        tag,
    )


# -- conversations (version 1.1)


def history(run: Run) -> None:
    """Public history holds a public message, the conversation of a and b their private one (for
    both of them), oldest first; neither holds the other's."""
    a1, b1 = run.session("a1"), run.session("b1")
    a, b = run.username("a"), run.username("b")
    public = run.send(a1, text=run.text("history public"), label="history")
    private = run.send(a1, text=run.text("history private"), to=b, label="history")
    page = run.request(a1, {"action": "history", "limit": 100}, "history", "public history")
    expect_shape(page)
    ids = [m["id"] for m in page["messages"]]
    expect(page["with"] is None, f"public history says with {page['with']!r}")
    expect(public["id"] in ids, "public history lacks the public message just sent")
    expect(private["id"] not in ids, "public history holds a private message")
    for session, partner in ((a1, b), (b1, a)):
        page = run.request(session, {"action": "history", "with": partner, "limit": 10}, "history", "history")
        expect_shape(page)
        ids = [m["id"] for m in page["messages"]]
        expect(page["with"] == partner, f"{session.name}'s history says with {page['with']!r}")
        expect(private["id"] in ids, f"{session.name}'s history with {partner} lacks their private message")
        expect(public["id"] not in ids, f"{session.name}'s private history holds a public message")
    older = run.request(
        a1, {"action": "history", "with": b, "before": private["id"], "limit": 10}, "history", "older page"
    )
    expect(private["id"] not in [m["id"] for m in older["messages"]], "`before` returned the message itself")


def read_receipts(run: Run) -> None:
    """a reads its conversation with b: a's other tab and both of b's get one `read` frame, the
    reading tab none; reading the same position again sends nothing."""
    a1, a2, b1, b2 = (run.session(key) for key in ("a1", "a2", "b1", "b2"))
    a, b = run.username("a"), run.username("b")
    last = run.send(b1, text=run.text("please read"), to=a, label="read")
    a1.wait_for(lambda f: is_message(f, last["id"]), "the message to read", run.timing.timeout_s)
    expected = {"type": "read", "user": a, "with": b, "upTo": last["id"]}
    a1.send({"action": "read", "with": b, "upTo": last["id"]})
    for session in (a2, b1, b2):
        frame = session.wait_for(lambda f: f.get("type") == "read" and f.get("user") == a, "read", 20)
        expect_shape(frame)
        expect(frame == expected, f"{session.name} got {frame}, not {expected}")
    a1.send({"action": "read", "with": b, "upTo": last["id"]})  # not forward: nothing is sent
    run.barrier(a1, b, [b1, a2])
    for session in (a2, b1, b2, a1):
        count = len(session.frames(lambda f: f.get("type") == "read" and f.get("user") == a))
        wanted = 0 if session is a1 else 1
        expect(count == wanted, f"{session.name} got {count} read frames, not {wanted}")


def inbox(run: Run) -> None:
    """a's inbox lists the public conversation and b's, newest first, with b's last message, the
    unread count of what b sent after a's read position, and b's position."""
    a1, b1 = run.session("a1"), run.session("b1")
    a, b = run.username("a"), run.username("b")
    first = run.send(b1, text=run.text("inbox 1"), to=a, label="inbox")
    a1.wait_for(lambda f: is_message(f, first["id"]), "the message to read", run.timing.timeout_s)
    a1.send({"action": "read", "with": b, "upTo": first["id"]})
    b1.wait_for(lambda f: f.get("type") == "read" and f.get("upTo") == first["id"], "read", 20)
    second = run.send(b1, text=run.text("inbox 2"), to=a, label="inbox")
    b1.send({"action": "read", "with": a, "upTo": second["id"]})
    a1.wait_for(lambda f: f.get("type") == "read" and f.get("upTo") == second["id"], "b's read", 20)
    frame = run.request(a1, {"action": "inbox"}, "inbox", "inbox")
    expect_shape(frame)
    rows = {row["with"]: row for row in frame["conversations"]}
    expect(None in rows, "the inbox lacks the public conversation")
    expect(b in rows, f"the inbox lacks the conversation with {b}")
    row = rows[b]
    got = (row["last"]["id"] if row["last"] else None, row["unread"], row["readUpTo"], row["theirReadUpTo"])
    wanted = (second["id"], 1, first["id"], second["id"])
    expect(got == wanted, f"(last, unread, readUpTo, theirReadUpTo) is {got}, not {wanted}")


def typing(run: Run) -> None:
    """`typing` from a to b reaches both of b's tabs, and not a's other tab or c."""
    a1, a2, b1, b2, c1 = (run.session(key) for key in ("a1", "a2", "b1", "b2", "c1"))
    a, b = run.username("a"), run.username("b")
    a1.send({"action": "typing", "to": b})
    for session in (b1, b2):
        frame = session.wait_for(lambda f: f.get("type") == "typing" and f.get("from") == a, "typing", 20)
        expect_shape(frame)
    run.barrier(a1, b, [b1, a2])
    for session in (a1, a2, c1):
        expect(not session.frames(lambda f: f.get("type") == "typing"), f"{session.name} got a typing frame")


def conversation_errors(run: Run) -> None:
    """Each row of the protocol's table of errors for the new actions."""
    a1 = run.session("a1")
    a, nobody = run.username("a"), run.username("nobody")
    future = _id_at(int(time.time() * 1000) + 3_600_000)
    for frame, code in (
        ({"action": "history", "with": a}, "invalid_message"),
        ({"action": "history", "with": nobody}, "unknown_user"),
        ({"action": "history", "before": "not-an-id"}, "invalid_message"),
        ({"action": "history", "limit": 0}, "invalid_message"),
        ({"action": "history", "limit": 101}, "invalid_message"),
        ({"action": "read", "with": a, "upTo": _id_at(int(time.time() * 1000) - 1000)}, "invalid_message"),
        ({"action": "read", "upTo": "not-an-id"}, "invalid_message"),
        ({"action": "read", "upTo": future}, "invalid_message"),
        ({"action": "typing"}, "invalid_message"),
        ({"action": "typing", "to": a}, "invalid_message"),
        ({"action": "typing", "to": nobody}, "unknown_user"),
    ):
        _expect_error(run, a1, frame, code, None)
    for label, text in (("zero-width", "\u200b\u2060"), ("bidi-only", " \u202e\u2066 ")):
        tag = run.tag(label)
        _expect_error(
            run, a1, {"action": "sendmessage", "text": text, "clientMsgId": tag}, "invalid_message", tag
        )


def _id_at(time_ms: int) -> str:
    """The smallest message id the server could stamp at ``time_ms`` (48 bits of ms, base32)."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    digits = "".join(alphabet[(time_ms >> (5 * n)) & 31] for n in reversed(range(10)))
    return digits + "0" * 16


# -- limits


def frame_limit(run: Run) -> None:
    session = run.open_session("a8")
    # The server may close the socket before the client has finished writing.
    with contextlib.suppress(ConnectionClosed):
        session.send(_json({"action": "sendmessage", "text": "z" * OVER_FRAME_LIMIT}))
    code = session.wait_closed(run.timing.timeout_s)
    expect(code == MESSAGE_TOO_BIG, f"a {OVER_FRAME_LIMIT // KB} KB frame got close {code}, not 1009")


def message_limit(run: Run) -> None:
    session = run.open_session("a9")
    # Under 128 KB in frames of 16 KB: accepted and answered (the text is too long for a message).
    tag = run.tag("fragmented")
    sent = time.monotonic()
    session.send_fragments(
        _fragments({"action": "sendmessage", "text": "z" * UNDER_MESSAGE_LIMIT, "clientMsgId": tag})
    )
    answer = session.wait_for(
        lambda f: f.get("clientMsgId") == tag, "answer to a 40 KB message", run.timing.timeout_s, since=sent
    )
    expect(answer.get("code") == "text_too_long", f"a 40 KB message in 16 KB frames got {answer}")
    with contextlib.suppress(ConnectionClosed):
        session.send_fragments(_fragments({"action": "sendmessage", "text": "z" * OVER_MESSAGE_LIMIT}))
    code = session.wait_closed(run.timing.timeout_s)
    expect(code == MESSAGE_TOO_BIG, f"a {OVER_MESSAGE_LIMIT // KB} KB message got close {code}, not 1009")


def _fragments(frame: Frame) -> list[str]:
    text = _json(frame)
    return [text[start : start + FRAGMENT] for start in range(0, len(text), FRAGMENT)]


def _json(value: object) -> str:
    return json.dumps(value)


# -- every frame


def frame_shapes(run: Run) -> None:
    """Every frame any session received (other users' included) has exactly its type's fields."""
    issues: list[str] = []
    count = 0
    for session in run.every_session:
        for received in session.received:
            count += 1
            found = frames.problems(received.frame if received.frame is not None else received.raw)
            issues += [f"{session.name}: {issue}" for issue in found]
    expect(count > 0, "no frames were received at all")
    expect(not issues, f"{len(issues)} malformed of {count}: {'; '.join(issues[:3])}")


CHECKS = (
    Check("sign-up-username-rule", username_rule),
    Check("handshake-access-token", handshake_with_access_token),
    Check("handshake-without-token", handshake_without_token),
    Check("handshake-garbage-token", handshake_with_garbage_token),
    Check("handshake-id-token", handshake_with_id_token),
    Check("ping-bare-text", bare_ping),
    Check("ping-action", ping_action),
    Check("presence-once-per-user", presence_once_per_user),
    Check("who", who_lists_online_users),
    Check("public-delivery", public_delivery),
    Check("private-delivery", private_delivery),
    Check("private-by-command", private_by_command),
    Check("username-ignores-case", usernames_ignore_case),
    Check("sender-from-token", sender_from_token),
    Check("idempotent-resend", idempotent_resend),
    Check("sync-after-drop", sync_after_drop),
    Check("sync-batched", sync_batched),
    Check("error-invalid-json", invalid_json),
    Check("error-unknown-action", unknown_action),
    Check("error-invalid-message", invalid_message),
    Check("error-text-too-long", text_too_long),
    Check("error-unknown-user", unknown_user),
    Check("history", history),
    Check("read-receipts", read_receipts),
    Check("inbox", inbox),
    Check("typing", typing),
    Check("error-conversations", conversation_errors),
    Check("limit-frame-32kb", frame_limit),
    Check("limit-message-128kb", message_limit),
    Check("frame-shapes", frame_shapes),
)
