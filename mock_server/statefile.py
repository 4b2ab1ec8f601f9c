"""A served mock's state in a file: every acknowledged write is on disk before its answer.

``kontext-mock serve --state-file PATH`` keeps two files:

* ``PATH``: a whole state (the document of :meth:`KontextMock.export_state`, plus
  ``logSeq``, the last change it includes), always replaced atomically: written to a
  temporary file, flushed (``fsync``), renamed over, and the folder flushed;
* ``PATH.log``: the changes made since, one line each (a CRC-32, then the change as
  JSON: the records added or changed, tokens forgotten, the clock, settings, fault rules,
  rate limit and lifecycles), appended and flushed.

A request that may change the state (any POST, PUT, PATCH or DELETE that reached a
handler) is answered only once its changes are in ``PATH.log`` and flushed: the request
pipeline's last step (``pipeline.py``) waits for :meth:`StateFile.commit`. Concurrent
writers share a flush (group commit): one thread writes and flushes whatever is waiting,
so many acknowledgements cost one ``fsync``. Changes made without a request (a running
clock playing lifecycles, a Python caller) are written within ``flush_interval``.

When the log passes ``compact_bytes``, and on a clean stop, the whole state is written to
``PATH`` again and the log is emptied. After a failed write (a full disk) the log may end
in part of a line, so nothing more is appended to it: the next write is the whole state,
and writes are acknowledged again once it is on disk. Loading reads ``PATH``, then applies each line of
the log in order; a line cut short by a crash fails its CRC and ends the replay there
(its write was never acknowledged). So after SIGKILL at any moment the file loads, and
it holds every acknowledged write.

The files hold client secrets and tokens, so they are created readable by their owner
only. One process at a time may serve from a file; a second one is refused (an advisory
lock beside it, released by the system when the holder dies).
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from kontext_mock.config import FLUSH_INTERVAL
from kontext_mock.core.errors import ApiError, log
from kontext_mock.core.fields import application_record, client_record, organization_record, token_record
from kontext_mock.core.records import Session
from kontext_mock.core.statedoc import export_state

if TYPE_CHECKING:
    from kontext_mock.core.lifecycles import Script
    from kontext_mock.mock import KontextMock

__all__ = [
    "StateFile",
    "StateFileError",
    "open_state_file",
    "read_document",
    "read_state_file",
    "write_atomic",
]

#: log size past which the whole state is written again and the log emptied
COMPACT_BYTES = 64 * 1024 * 1024
_KINDS = ("organizations", "applications", "clients", "tokens", "sessions", "lifecycles")
_KEYS = {"organizations": "id", "applications": "id", "clients": "clientId", "tokens": "token",
         "sessions": "id", "lifecycles": "sessionId"}


class StateFileError(RuntimeError):
    """A state file that cannot be used; the message names the file and the reason."""


class NotSavedError(ApiError):
    """503: the change was made but could not be written to the state file."""

    def __init__(self, reason: str) -> None:
        super().__init__(503, "state_not_saved",
                         f"the change could not be written to the state file: {reason}",
                         headers={"Retry-After": "1"})


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader (or a crash) sees the old or the new
    content whole: write a temporary file, fsync it, rename it over, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_directory(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some systems cannot open a directory; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_document(path: Path) -> dict[str, Any]:
    """The JSON document of a state file; :class:`StateFileError` when it is not one."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StateFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StateFileError(f"{path}: not a state file (invalid JSON: {exc})") from None
    if not isinstance(data, dict):
        raise StateFileError(f"{path}: not a state file (not a JSON object)")
    return data


def read_state_file(path: Path) -> tuple[dict[str, Any], int]:
    """The state a state file holds (``PATH`` with ``PATH.log`` applied), and how many
    changes of the log that applied; it takes no lock and writes nothing."""
    document = read_document(path)
    base = int(document.get("logSeq") or 0)
    rebuilt = _Document(document)
    replayed = 0
    log_path = path.with_name(path.name + ".log")
    if log_path.exists():
        for record in _records(log_path.read_bytes()):
            if int(record.get("seq") or 0) > base:
                rebuilt.apply(record)
                replayed += 1
    return rebuilt.document(), replayed


def _line(record: dict[str, Any]) -> bytes:
    data = orjson.dumps(record)
    return b"%08x %s\n" % (zlib.crc32(data), data)


def _records(raw: bytes) -> list[dict[str, Any]]:
    """The whole, intact lines of a log, in order (reading stops at the first bad one)."""
    records = []
    for line in raw.split(b"\n"):
        crc, _, data = line.partition(b" ")
        try:
            if len(crc) != 8 or int(crc, 16) != zlib.crc32(data):
                break
            record = orjson.loads(data)
        except (ValueError, orjson.JSONDecodeError):
            break
        if not isinstance(record, dict):
            break
        records.append(record)
    return records


class _Document:
    """A state document being rebuilt from ``PATH`` and the log: records by id."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.rest: dict[str, Any] = {}
        self.tables: dict[str, dict[str, Any]] = {}
        self.replace(document)

    def replace(self, document: dict[str, Any]) -> None:
        """Hold ``document`` instead of what was held (a log's whole-state record)."""
        self.rest = {k: v for k, v in document.items() if k not in _KINDS and k != "logSeq"}
        self.tables = {
            kind: {str(item.get(_KEYS[kind])): item for item in document.get(kind) or []
                   if isinstance(item, dict)}
            for kind in _KINDS
        }

    def apply(self, record: dict[str, Any]) -> None:
        """One change of the log."""
        if "state" in record:
            self.replace(record["state"])
            return
        self.rest.update(record.get("meta") or {})
        for kind, items in (record.get("put") or {}).items():
            table = self.tables[kind]
            for item in items:
                table[str(item.get(_KEYS[kind]))] = item
        for kind, keys in (record.get("drop") or {}).items():
            for key in keys:
                self.tables[kind].pop(str(key), None)

    def document(self) -> dict[str, Any]:
        """The state document."""
        return {**self.rest, **{kind: list(table.values()) for kind, table in self.tables.items()}}


@dataclass
class SaveStats:
    """What the state file did, for the banner, tests and figures."""

    commits: int = 0  # flushes of the log (each may acknowledge many writes)
    records: int = 0  # changes written to the log
    snapshots: int = 0  # whole states written
    last_error: str | None = None


class StateFile:
    """Loads a mock's state from ``path`` and keeps every change there (see the module).

    >>> state = StateFile(Path("mock-state.json"), mock)
    >>> state.open()            # load it, or create it from the mock as it is
    >>> state.start()           # the writer thread
    >>> state.commit()          # after a change: returns once it is on disk
    >>> state.close()           # the whole state once more, then release the file
    """

    def __init__(self, path: str | Path, mock: KontextMock, *,
                 compact_bytes: int = COMPACT_BYTES, flush_interval: float = FLUSH_INTERVAL) -> None:
        self.path = Path(path).resolve()
        self.log_path = self.path.with_name(self.path.name + ".log")
        self.mock = mock
        self.compact_bytes = compact_bytes
        self.flush_interval = flush_interval
        self.stats = SaveStats()
        self.loaded = False
        self._cond = threading.Condition()
        # one writer of the files at a time (the writer thread, or close() after it)
        self._io = threading.Lock()
        self._pending: list[tuple[int, bytes]] = []
        self._staged = 0  # the last change put in line for the log
        self._written = 0  # the last change on disk (log or whole state)
        self._failure: str | None = None
        self._failures = 0  # failed writes so far: a commit fails on one made after it asked
        self._stopping = False
        self._needs_snapshot = False  # the log may end in part of a line: write the whole state
        self._log_fd: int | None = None
        self._log_bytes = 0
        self._lock_fd: int | None = None
        self._thread: threading.Thread | None = None
        self._scripts: dict[str, Script] = {}
        self._meta: bytes = b""
        #: how many changes of the log the last load applied
        self.replayed = 0

    # -- life cycle ------------------------------------------------------------------------

    def open(self) -> bool:
        """Take the file: load it (and its log) if it exists (True), else create it from
        the mock (False). :class:`StateFileError` when another process serves from it, or
        it cannot be read or is not a state this mock can import; it is then left untouched."""
        if not self.path.parent.is_dir():
            raise StateFileError(f"{self.path}: the folder {self.path.parent} does not exist")
        self._take_lock()
        try:
            if self.path.exists():
                self._load()
                self.loaded = True
            with self.mock.store.lock:
                self.mock.store.take_changes()
                self._scripts = dict(self.mock.lifecycles.scripts)
                self._meta = orjson.dumps(self._meta_now())
            self._snapshot()
        except BaseException:
            self._release_lock()
            raise
        return self.loaded

    def start(self) -> None:
        """Run the writer thread, and have the mock's pipeline wait for it on writes."""
        self._thread = threading.Thread(target=self._run, name="kontext-mock-state", daemon=True)
        self._thread.start()
        pipeline = self.mock.app.extensions["kontext_pipeline"]
        pipeline.durable = self

    def close(self) -> None:
        """Stop the writer, write the whole state once more, and release the file."""
        pipeline = self.mock.app.extensions.get("kontext_pipeline")
        if pipeline is not None and pipeline.durable is self:
            pipeline.durable = None
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(30)
        try:
            self._snapshot()
        finally:
            with self._io:
                if self._log_fd is not None:
                    os.close(self._log_fd)
                    self._log_fd = None
            self._release_lock()

    # -- writing ---------------------------------------------------------------------------

    def commit(self) -> None:
        """Return once every change made so far is on disk; :class:`NotSavedError` when the
        disk refuses it (the change is made, but not acknowledged as saved)."""
        with self.mock.store.lock:
            ticket = self._stage(requested=True)
        with self._cond:
            failures = self._failures
            self._cond.notify_all()
            while (self._written < ticket and self._failures == failures and not self._stopping
                   and self._thread is not None and self._thread.is_alive()):
                self._cond.wait(1.0)
            if self._written < ticket:
                raise NotSavedError(self._failure or "the mock is stopping")

    def _stage(self, *, requested: bool = False) -> int:
        """Put the changes made since the last call in line for the log (call with the
        store's lock held); the number of the last change in line. A running clock alone
        is a change only when a request asks (``requested``): a clock move is a request."""
        mock = self.mock
        changes = mock.store.take_changes()
        meta = self._meta_now()
        meta_bytes = orjson.dumps(meta)
        if not requested and not mock.clock.frozen:
            meta_bytes = orjson.dumps({**meta, "clock": {"frozen": False}})
        scripts = mock.lifecycles.scripts
        changed_scripts = [s for sid, s in scripts.items() if self._scripts.get(sid) is not s]
        gone_scripts = [sid for sid in self._scripts if sid not in scripts]
        if not changes and not changed_scripts and not gone_scripts and meta_bytes == self._meta:
            with self._cond:
                return self._staged
        record: dict[str, Any]
        if changes.everything:
            record = {"state": export_state(mock.state)}
        else:
            store = mock.store
            put: dict[str, list[Any]] = {}
            pick: tuple[tuple[str, set[str], Mapping[str, Any], Callable[[Any], Any]], ...] = (
                ("organizations", changes.organizations, store.organizations, organization_record),
                ("applications", changes.applications, store.applications, application_record),
                ("clients", changes.clients, store.clients, client_record),
                ("tokens", changes.tokens, store.tokens, token_record),
                ("sessions", changes.sessions, store.sessions, Session.to_record),
            )
            for kind, ids, table, to_record in pick:
                items = [to_record(table[i]) for i in ids if i in table]
                if items:
                    put[kind] = items
            if changed_scripts:
                put["lifecycles"] = [s.to_dict() for s in changed_scripts]
            drop: dict[str, list[str]] = {}
            if changes.tokens_gone:
                drop["tokens"] = sorted(changes.tokens_gone)
            if gone_scripts:
                drop["lifecycles"] = gone_scripts
            record = {"meta": meta, "put": put, "drop": drop}
        self._scripts = dict(scripts)
        self._meta = meta_bytes
        with self._cond:
            self._staged += 1
            record["seq"] = self._staged
            self._pending.append((self._staged, _line(record)))
            self._cond.notify_all()
            return self._staged

    def _meta_now(self) -> dict[str, Any]:
        """The parts of the state document besides its records (small, written whole)."""
        return export_state(self.mock.state, records=False)

    def _run(self) -> None:
        try:
            self._write_while_open()
        except Exception as exc:  # a bug: the writers waiting on this thread are told
            log.exception("the state file's writer stopped")
            with self._cond:
                self._failure = self.stats.last_error = f"the state file's writer stopped: {exc!r}"
                self._failures += 1
                self._cond.notify_all()

    def _write_while_open(self) -> None:
        while True:
            with self._cond:
                if not self._pending and not self._stopping:
                    self._cond.wait(self.flush_interval)
                if self._stopping and not self._pending:
                    return
                batch = list(self._pending)  # (they leave the line once on disk)
            if not batch:
                # Nothing asked to be saved: changes made without a request, if any.
                with self.mock.store.lock:
                    self._stage()
                continue
            try:
                if self._needs_snapshot:
                    self._snapshot()  # everything staged so far, whole
                    self._needs_snapshot = False
                else:
                    self._append(b"".join(data for _, data in batch))
            except OSError as exc:
                # The log may now end in part of a line: a line after it would not be
                # read back, so the next write is the whole state.
                self._needs_snapshot = True
                self._failed(exc)
                if self._stopping:
                    return  # (close() tries the whole state once more)
                continue
            last = batch[-1][0]
            with self._cond:
                self._pending = [(n, data) for n, data in self._pending if n > last]
                self._written = max(self._written, last)
                self._failure = None
                self.stats.commits += 1
                self.stats.records += len(batch)
                self._cond.notify_all()
            if self._log_bytes > self.compact_bytes:
                try:
                    self._snapshot()
                except OSError as exc:
                    self._failed(exc)

    def _append(self, data: bytes) -> None:
        with self._io:
            if self._log_fd is None:
                self._log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                       0o600)
            _write_all(self._log_fd, data)
            os.fsync(self._log_fd)
            self._log_bytes += len(data)

    def _failed(self, exc: OSError) -> None:
        # A full disk or a vanished folder: the waiting writers are told (503); what was
        # not written stays in line for the next try.
        reason = f"{type(exc).__name__}: {exc}"
        log.error("could not write the state to %s: %s", self.path, reason)
        with self._cond:
            self._failure = self.stats.last_error = reason
            self._failures += 1
            self._cond.notify_all()
        time.sleep(min(self.flush_interval, 0.5))

    def _snapshot(self) -> None:
        """Write the whole state to ``PATH`` and empty the log."""
        with self._io:
            with self.mock.store.lock:
                seq = self._stage()
                document = export_state(self.mock.state)
            document["logSeq"] = seq
            write_atomic(self.path, orjson.dumps(document))
            with self._cond:
                # Everything up to seq is in the whole state; what is still in line is newer.
                self._pending = [(n, data) for n, data in self._pending if n > seq]
                self._written = max(self._written, seq)
                self.stats.snapshots += 1
                self._cond.notify_all()
            if self._log_fd is not None:
                os.ftruncate(self._log_fd, 0)
                os.fsync(self._log_fd)
            elif self.log_path.exists():
                self.log_path.write_bytes(b"")
            self._log_bytes = 0

    # -- loading ---------------------------------------------------------------------------

    def _load(self) -> None:
        document, self.replayed = read_state_file(self.path)
        try:
            self.mock.import_state(document)
        except ApiError as exc:
            raise StateFileError(f"{self.path}: not a state this mock can load: {exc.body()}") from None

    def _take_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no guard against a second server
            return
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StateFileError(
                f"{self.path}: another kontext-mock is serving from this state file"
            ) from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None


def open_state_file(mock: KontextMock, path: str | Path, *,
                    flush_interval: float = FLUSH_INTERVAL) -> StateFile:
    """What ``serve --state-file`` does before serving: load or create the file, and have
    every write wait for it. Close the result when the server stops."""
    state = StateFile(path, mock, flush_interval=flush_interval)
    state.open()
    state.start()
    return state
