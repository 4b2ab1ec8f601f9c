"""Keeping a served mock's state in a file, so that a restart finds it as it was.

``kontext-mock serve --state-file PATH`` loads the file at start (or creates it) and
saves the whole state, the clock included (the document of
:meth:`KontextMock.export_state`), after every change, debounced by a short delay, at
an interval, and once more on SIGTERM or Ctrl-C.

Every save is atomic: the document is written to a temporary file beside the target,
flushed to disk (``fsync``), renamed over the target, and the directory is flushed
too. Whenever the process dies, even by SIGKILL in the middle of a save, the file is
the last complete save or the one before it, never a mix. What can be lost is what was
acknowledged in the last moments before the death: at most the save delay plus the
time of two saves (one in progress, one to follow).

The file holds client secrets and tokens, so it is created readable by its owner only.
One process at a time may serve from a file; a second one is refused (an advisory lock
beside it, released by the system when the holder dies).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from flask import Flask, Response

    from .mock import KontextMock

__all__ = ["StateFile", "StateFileError", "open_state_file", "read_document", "write_atomic"]

#: default debounce: a burst of changes is saved once, this long after its first change
SAVE_DELAY = 0.2
#: default interval of saves without a request (a running clock, Python-side changes)
SAVE_INTERVAL = 10.0
_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class StateFileError(RuntimeError):
    """A state file that cannot be used; the message names the file and the reason."""


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader (or a crash) sees the old or the new
    content whole: write a temporary file, fsync it, rename it over, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_directory(path.parent)


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


@dataclass
class SaveStats:
    """What the saver did, for the banner, tests and figures."""

    saves: int = 0
    skipped: int = 0  # interval saves of an unchanged state
    last_seconds: float = 0.0
    max_seconds: float = 0.0
    last_error: str | None = None


class StateFile:
    """Loads a mock's state from ``path`` and keeps saving it there.

    >>> state = StateFile(Path("mock-state.json"), mock)
    >>> state.open()            # load it, or create it from the mock as it is
    >>> state.attach(mock.app)  # requests that may change state trigger a save
    >>> state.start()           # the saver thread
    >>> ...
    >>> state.close()           # a last save, then release the file
    """

    def __init__(
        self,
        path: str | Path,
        mock: KontextMock,
        *,
        delay: float = SAVE_DELAY,
        interval: float = SAVE_INTERVAL,
    ) -> None:
        self.path = Path(path).resolve()
        self.mock = mock
        self.delay = delay
        self.interval = interval
        self.stats = SaveStats()
        self.loaded = False
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._save_lock = threading.Lock()
        self._last: bytes | None = None
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None

    # -- life cycle ------------------------------------------------------------------------

    def open(self) -> bool:
        """Take the file: load it if it exists (True), else create it from the mock (False).

        :class:`StateFileError` when another process serves from it, when it cannot be
        read or is not a state this mock can import; the file is then left untouched.
        """
        if not self.path.parent.is_dir():
            raise StateFileError(f"{self.path}: the folder {self.path.parent} does not exist")
        self._take_lock()
        try:
            if self.path.exists():
                self._load()
                self.loaded = True
            else:
                self.save()
        except BaseException:
            self._release_lock()
            raise
        return self.loaded

    def attach(self, app: Flask) -> None:
        """Save after every request that may have changed the state (any method but
        GET, HEAD and OPTIONS), once the request is answered, debounced by ``delay``."""

        def _mark(response: Response) -> Response:
            from flask import request

            if request.method in _CHANGING_METHODS:
                self._changed.set()
            return response

        app.after_request(_mark)

    def changed(self) -> None:
        """Tell the saver the state changed (for changes made from Python)."""
        self._changed.set()

    def start(self) -> None:
        """Run the saver in a background thread."""
        self._thread = threading.Thread(target=self._run, name="kontext-mock-state", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the saver, save a last time, and release the file."""
        self._stopping.set()
        self._changed.set()
        if self._thread is not None:
            self._thread.join(30)
        try:
            self.save()
        finally:
            self._release_lock()

    # -- saving ----------------------------------------------------------------------------

    def save(self, *, force: bool = True) -> bool:
        """Write the state now (atomically); with ``force=False`` only if it changed since
        the last save. True when a file was written."""
        with self._save_lock:
            started = time.perf_counter()
            data = orjson.dumps(self.mock.export_state())
            if not force and data == self._last:
                self.stats.skipped += 1
                return False
            write_atomic(self.path, data)
            self._last = data
            spent = time.perf_counter() - started
            self.stats.saves += 1
            self.stats.last_seconds = spent
            self.stats.max_seconds = max(self.stats.max_seconds, spent)
            return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            changed = self._changed.wait(self.interval)
            if self._stopping.is_set():
                return
            if changed:
                # Debounce: let the rest of a burst land, then save it in one write.
                self._stopping.wait(self.delay)
                self._changed.clear()  # before exporting: a later change saves again
            self._save_guarded(force=changed)

    def _save_guarded(self, *, force: bool) -> None:
        try:
            self.save(force=force)
            self.stats.last_error = None
        except Exception as exc:
            # A full disk or a vanished folder must not end the saving; try again later.
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            from .errors import log

            log.error("could not save the state to %s: %s", self.path, self.stats.last_error)
            self._changed.set()
            self._stopping.wait(min(self.interval, 1.0))

    # -- internals -------------------------------------------------------------------------

    def _load(self) -> None:
        from .errors import ApiError

        data = read_document(self.path)
        try:
            self.mock.import_state(data)
        except ApiError as exc:
            raise StateFileError(f"{self.path}: not a state this mock can load: {exc.body()}") from None
        self._last = orjson.dumps(self.mock.export_state())

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


def open_state_file(
    mock: KontextMock, path: str | Path, *, delay: float = SAVE_DELAY,
    interval: float = SAVE_INTERVAL,
) -> StateFile:
    """What ``serve --state-file`` does before serving: load or create the file, save after
    changing requests, and start the saver. Close the result when the server stops."""
    state = StateFile(path, mock, delay=delay, interval=interval)
    state.open()
    state.attach(mock.app)
    state.start()
    return state
