"""Answers of reads kept, and sent again while nothing they depend on has changed.

A handler whose answer depends on nothing but its request's path, query and bearer token,
the mock's records and configuration, and the time, gives with it a test of whether it
still holds at an instant (``Answer.holds``: a session's, while the session is unchanged
and its derived status would be the same). The engine tells where the state stands
(``MockEngine.reads_as_of``: the store's generation, which moves at every change to the
store's records, the configuration in force, the clock's instant). The router keeps such
an answer when it holds at the instant the handler is done, and gives it to the same
request (GET, same path, query and ``Authorization``) without calling the handler while
the generation and configuration are the same, the answer holds at the clock's instant,
and the header still authenticates as the same token, scopes included. All of that is
judged under the store's lock, as the handler reads, so no change is seen half made.

So a client that polls a session is answered at once, and the first change (a
heartbeat, a revocation, an expiry or idle threshold reached as the clock moves, the
clock set back, a new configuration, a token gone) is what the next request sees. The
answers kept are bounded in number and in bytes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from kontext_mock.core.errors import ApiError
from kontext_mock.core.records import AccessToken
from kontext_mock.http.routing import MEMO_KEY_MAX, Endpoint
from kontext_mock.http.serving.exchange import Answer, Exchange

__all__ = ["KEPT_ANSWERS", "KEPT_BYTES", "Before", "KeptAnswers", "Mark", "State"]

#: the most answers kept at once, and the most bytes of their bodies (all forgotten past
#: either: the usual client asks the same few things again and again)
KEPT_ANSWERS = 256
KEPT_BYTES = 4 * 1024 * 1024
#: where the state a read depends on stands: the store's generation, the configuration in
#: force (compared by value), the clock's instant
State = tuple[int, object, datetime]
Mark = Callable[[], State]
_Key = tuple[str, bytes, str]
#: what :meth:`KeptAnswers.before` takes: the request's key, the state, the token
Before = tuple[_Key, State, AccessToken]
#: the longest request (path, query and Authorization together) whose answer is kept
_KEY_MAX = 4 * MEMO_KEY_MAX


@dataclass(slots=True, frozen=True)
class _Kept:
    endpoint: Endpoint
    token: AccessToken
    generation: int
    config: object
    #: the handler's test of the answer at an instant (``Answer.holds``)
    holds_at: Callable[[datetime], bool]
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def holds(self, state: State) -> bool:
        generation, config, now = state
        return (generation == self.generation
                and (config is self.config or config == self.config) and self.holds_at(now))


class KeptAnswers:
    """The kept answers of a router (see the module's docstring)."""

    def __init__(self, mark: Mark, lock: AbstractContextManager[object]) -> None:
        #: the engine's account of where the state a read depends on stands
        self.mark = mark
        #: the store's lock, every change is made under (re-entrant: the server's loop may
        #: hold it already)
        self._store_lock = lock
        self._kept: dict[_Key, _Kept] = {}
        self._bytes = 0
        # (found without it: a dict's get is atomic; kept and forgotten with it, so that
        # the bytes counted are the bytes kept)
        self._lock = threading.Lock()

    def find(self, exchange: Exchange) -> tuple[Endpoint, Answer] | None:
        """The endpoint and a copy of the answer kept for this request, if one is kept and
        still holds; else None (the handler's turn)."""
        key = _key(exchange)
        kept = self._kept.get(key) if key is not None else None
        if kept is None:
            return None
        with self._store_lock:
            holds = kept.holds(self.mark()) and _same_token(kept, key[2])  # type: ignore[index]
        if not holds:
            with self._lock:
                if self._kept.get(key) is kept:  # type: ignore[arg-type]
                    del self._kept[key]  # type: ignore[arg-type]
                    self._bytes -= len(kept.body)
            return None
        return kept.endpoint, Answer(kept.status, list(kept.headers), kept.body)

    def before(self, exchange: Exchange, endpoint: Endpoint) -> Before | None:
        """Taken before ``endpoint``'s handler runs for ``exchange``: where its answer would
        be kept, the state, and the token its credential names now; None for a request
        whose answer is never kept."""
        if not endpoint.reads_only:
            return None
        key = _key(exchange)
        if key is None:
            return None
        state = self.mark()
        try:
            token = endpoint.token_for(key[2])
        except ApiError:
            return None  # (refused: its refusal is the handler path's to make)
        return key, state, token

    def keep(self, before: Before, endpoint: Endpoint, answer: Answer) -> None:
        """Keep ``answer``, made for the request ``before`` was taken for, when the handler
        said how to tell it holds, it holds now, and no record or configuration changed
        while the handler ran.
        (The token is the one named before the handler ran: were the credential to name
        another since, no request would ever find the answer kept.)"""
        key, (generation, config, _), token = before
        holds = answer.holds
        if holds is None:
            return
        now_generation, now_config, now = self.mark()
        if now_generation != generation or now_config is not config or not holds(now):
            return  # (changed while the handler ran, or not true now: never found)
        size = len(answer.body)
        if size > KEPT_BYTES:
            return
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            if len(self._kept) >= KEPT_ANSWERS or self._bytes + size > KEPT_BYTES:
                self._kept.clear()
                self._bytes = 0
            self._kept[key] = _Kept(endpoint, token, generation, config, holds, answer.status,
                                    tuple(answer.headers), answer.body)
            self._bytes += size

    def clear(self) -> None:
        """Forget every kept answer."""
        with self._lock:
            self._kept.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._kept)


def _key(exchange: Exchange) -> _Key | None:
    # (a GET with one Authorization line, read as the endpoint reads it; short enough to
    # keep)
    if exchange.method != "GET":
        return None
    authorization = exchange.header("authorization")  # (indexes the fields if not yet)
    if authorization is None or exchange.repeated:
        return None
    path, query = exchange.path, exchange.query
    if len(path) + len(query) + len(authorization) > _KEY_MAX:
        return None
    return path, query, authorization


def _same_token(kept: _Kept, authorization: str) -> bool:
    try:
        return kept.endpoint.token_for(authorization) is kept.token
    except ApiError:
        return False
