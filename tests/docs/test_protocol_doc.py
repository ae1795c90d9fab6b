"""docs/protocol.md's version 1 tables name exactly what the runtime implements.

The page is prose for people; these tests keep its tables of actions, frame types and error codes
from drifting away from ``chat.protocol`` and ``chat.errors``.
"""

from __future__ import annotations

import re
from pathlib import Path

from chat import errors, protocol

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text under the heading ``title``, up to the next heading of the same or a higher level."""
    heading = re.search(rf"^(#+) {re.escape(title)}$", DOC, re.M)
    assert heading, f"no section {title!r}"
    rest = DOC[heading.end() :]
    end = re.search(rf"^#{{1,{len(heading.group(1))}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def first_column(text: str, header: str) -> list[str]:
    """The back-quoted first cells of the table whose header row starts with ``| header |``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    cells = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells.append(line.split("|")[1].strip().strip("`"))
    return cells


VERSION_1 = section("Version 1")


def test_version_1_lists_every_action_the_runtime_routes() -> None:
    """The actions table of version 1 is chat.protocol.ACTIONS, in order."""
    assert tuple(first_column(VERSION_1, "action")) == protocol.ACTIONS


def test_version_1_lists_every_frame_type_the_runtime_sends() -> None:
    """The frame table of version 1 is chat.protocol.FRAME_TYPES, in order."""
    assert tuple(first_column(VERSION_1, "type")) == protocol.FRAME_TYPES


def test_every_error_code_the_runtime_can_send_is_explained() -> None:
    """Each code of chat.errors' exception tree has a row in the error-code table, and no other."""
    codes = {cls.code for cls in vars(errors).values() if isinstance(cls, type) and hasattr(cls, "code")}
    assert set(first_column(VERSION_1, "code")) == codes


VERSION_1_1 = section("Version 1.1")


def test_version_1_1_lists_the_conversation_actions_the_runtime_routes() -> None:
    """The new actions of version 1.1 (beside `sync`'s new option) are chat.protocol.CONVERSATION_ACTIONS."""
    actions = first_column(VERSION_1_1, "action")
    assert tuple(a for a in actions if a != "sync") == protocol.CONVERSATION_ACTIONS


def test_version_1_1_lists_the_frames_that_answer_them() -> None:
    """Each conversation frame the runtime sends has a row in version 1.1's frame table."""
    assert set(protocol.CONVERSATION_FRAME_TYPES) <= set(first_column(VERSION_1_1, "type"))


def test_version_1_1_lists_the_batched_replay_frame() -> None:
    """The new frames of version 1.1 include chat.protocol.BATCHED_FRAME_TYPES, and its size limit."""
    new_frames = section("New frames")
    assert set(protocol.BATCHED_FRAME_TYPES) <= set(first_column(new_frames, "type"))
    assert protocol.MESSAGES_FRAME_BYTES == 32 * 1024 and "32 KB" in new_frames
