"""The local stack's state on disk: moto's DynamoDB and Cognito, kept in a data directory.

Why this mechanism: moto keeps everything in Python objects, and nothing else reads them, so the
state is saved as those objects (pickle) rather than re-created through the API. A full pickle of
DynamoDB costs about a second per 10,000 items, too slow to take every second inside the lock that
serialises moto's requests, so DynamoDB has a write-through journal as well:

- ``dynamodb.pickle``: every DynamoDB backend, written at start (after replaying the journal), at a
  clean stop, and soon after any request that changes more than items (a new table, TTL...);
- ``dynamodb.journal``: one JSON line per item written since that pickle, the item as it is after
  the request (or ``null`` once deleted), appended inside moto's lock before the answer leaves.
  Replaying states, not operations, is idempotent: a journal that outlives its pickle by a crash
  replays to the same items;
- ``cognito.pickle``: every Cognito backend (users, password hashes, pools, app clients, tokens),
  at most a second after any change; it is small.

Every file is written whole to a temporary name, flushed to disk, then renamed over the old one
(``os.replace``): a crash leaves the old file or the new one, never half of one. The journal is
flushed to the OS on every write (a ``kill -9`` loses none of it) and to disk every second, so a
crash of the whole machine loses at most the last second. A lock file keeps a second stack off
the same directory.

The pickles hold moto's classes: a moto of another version may not read them (the stack then says
so and keeps the files; ``--fresh`` starts over). Only the developer's own stack writes them.
"""

from __future__ import annotations

import contextlib
import copyreg
import io
import json
import os
import pickle
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import moto
from joserfc import jwk
from moto.backends import get_backend

from local_stack.moto_server import AtomicMotoServer, ItemWrite

FORMAT = 1
DYNAMODB_PICKLE = "dynamodb.pickle"
DYNAMODB_JOURNAL = "dynamodb.journal"
COGNITO_PICKLE = "cognito.pickle"
LOCK_FILE = ".lock"
STATE_FILES = (DYNAMODB_PICKLE, DYNAMODB_JOURNAL, COGNITO_PICKLE)
SNAPSHOT_INTERVAL_S = 1.0
# Past this, the journal is folded into a new pickle while running (a pause of moto's requests).
JOURNAL_COMPACT_BYTES = 64 * 1024 * 1024
LOCK_WAIT_S = 10.0


class StateError(Exception):
    """The data directory cannot be used: locked by another stack, or unreadable."""


def _rsa_key(data: dict[str, Any]) -> jwk.RSAKey:
    return jwk.RSAKey.import_key(data)


def _reduce_rsa_key(key: jwk.RSAKey) -> tuple[Any, tuple[dict[str, Any]]]:
    # moto's user pools hold their signing key as a joserfc key, which pickle cannot take as is.
    return _rsa_key, (key.as_dict(private=True),)


def dumps(state: Any) -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, jwk.RSAKey: _reduce_rsa_key}
    pickler.dump(state)
    return buffer.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` whole, or still its old content: never a mix, even after a crash."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def _fsync_directory(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform opens directories
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class StateStore:
    """Loads moto's state from ``folder`` and keeps it there while ``server`` runs."""

    def __init__(self, folder: Path, server: AtomicMotoServer) -> None:
        self.folder = folder
        self._server = server
        self._lock_file: IO[bytes] | None = None
        self._journal: IO[str] | None = None
        self._journal_dirty = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._every_second, name="snapshots", daemon=True)

    # -- start

    def open(self, *, fresh: bool) -> bool:
        """Take the folder and load what it holds (nothing with ``fresh``); whether anything was."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        if fresh:
            for name in STATE_FILES:
                (self.folder / name).unlink(missing_ok=True)
        with self._server.lock:
            restored = self._load()
            # The journal is folded in: start the new run from one pickle and an empty journal.
            self._write_dynamodb()
            self._journal = (self.folder / DYNAMODB_JOURNAL).open("w", encoding="utf-8")
        self._server.on_writes = self._append
        self._thread.start()
        return restored

    def _take_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here; one stack per folder is up to you
            return
        self._lock_file = (self.folder / LOCK_FILE).open("wb")
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                # Another stack, or one that is still saving as it stops.
                if time.monotonic() > deadline:
                    raise StateError(
                        f"another local stack is using {self.folder}; stop it, or start this one "
                        "with --data-dir elsewhere"
                    ) from None
                time.sleep(0.1)

    def _load(self) -> bool:
        restored = False
        for name in (DYNAMODB_PICKLE, COGNITO_PICKLE):
            path = self.folder / name
            if path.exists():
                self._install(path)
                restored = True
        journal = self.folder / DYNAMODB_JOURNAL
        if journal.exists():
            restored = self._replay(journal) or restored
        return restored

    def _install(self, path: Path) -> None:
        try:
            saved = pickle.loads(path.read_bytes())  # noqa: S301 - our own file, written by this stack
            if saved.get("format") != FORMAT:
                raise ValueError(f"format {saved.get('format')!r}, expected {FORMAT}")
        except Exception as exc:  # any failure means the same: unusable as it is
            raise StateError(
                f"cannot read {path} ({type(exc).__name__}: {exc}): damaged, or saved by a moto other "
                f"than {moto.__version__}. The file is kept; start with --fresh to begin empty, or "
                "with --data-dir to use another folder"
            ) from exc
        for (service, account, region), backend in saved["backends"].items():
            get_backend(service)[account][region] = backend

    def _replay(self, journal: Path) -> bool:
        replayed = False
        with journal.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                except ValueError:
                    break  # the last line, cut short by a crash: everything before it is whole
                backend = get_backend("dynamodb")[entry["account"]][entry["region"]]
                if entry["item"] is None:
                    backend.delete_item(entry["table"], entry["key"])
                else:
                    backend.put_item(entry["table"], entry["item"])
                replayed = True
        return replayed

    # -- while running

    def _append(self, writes: list[ItemWrite]) -> None:
        """Called inside moto's lock after a request that wrote items: their states, to the journal."""
        assert self._journal is not None
        for write in writes:
            self._journal.write(json.dumps(write.entry(), separators=(",", ":")) + "\n")
        self._journal.flush()
        self._journal_dirty = True

    def _every_second(self) -> None:
        while not self._stop.wait(SNAPSHOT_INTERVAL_S):
            self.save()

    def save(self, *, everything: bool = False) -> None:
        """Write what changed since the last time (all of it with ``everything``)."""
        server = self._server
        if self._journal is not None and self._journal_dirty:
            self._journal_dirty = False
            with contextlib.suppress(ValueError):  # closed by stop() meanwhile
                os.fsync(self._journal.fileno())
        cognito = None
        with server.lock:
            if everything or server.changed.cognito:
                server.changed.cognito = False
                cognito = dumps(_state("cognito-idp"))
            journal_large = self._journal is not None and self._journal.tell() > JOURNAL_COMPACT_BYTES
            if everything or server.changed.tables or journal_large:
                server.changed.tables = False
                self._write_dynamodb()
                if self._journal is not None:
                    self._journal.seek(0)
                    self._journal.truncate()
        if cognito is not None:
            write_atomically(self.folder / COGNITO_PICKLE, cognito)

    def _write_dynamodb(self) -> None:
        write_atomically(self.folder / DYNAMODB_PICKLE, dumps(_state("dynamodb")))

    # -- stop

    def close(self) -> None:
        """Save everything, then let go of the folder."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._server.on_writes = None
        self.save(everything=True)
        if self._journal is not None:
            self._journal.close()
        if self._lock_file is not None:
            self._lock_file.close()  # and with it the lock


def _state(service: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "moto": moto.__version__,
        "backends": dict(_backends(service)),
    }


def _backends(service: str) -> Iterator[tuple[tuple[str, str, str], Any]]:
    for account, region, backend in get_backend(service).iter_backends():
        yield (service, account, region), backend
