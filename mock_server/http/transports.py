"""In-process transports: HTTP clients talk to a WSGI app (the mock) without a socket.

A ``requests`` transport adapter and ``httpx`` transports (sync and async) that hand
each request to the app as a WSGI call in the same process. Code under test keeps its
real HTTP client and its real URLs; only the transport changes::

    session = requests_session(mock.app, "http://kontext.test")
    session.get("http://kontext.test/api/v1/...")      # no socket is opened

``httpx`` is optional (``pip install 'kontext-mock[httpx]'``): it is imported only when
an httpx transport is asked for, and :func:`require_httpx` says how to install it.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3 import HTTPHeaderDict, HTTPResponse
from werkzeug.test import EnvironBuilder

if TYPE_CHECKING:
    import httpx

__all__ = [
    "WSGIAdapter",
    "async_httpx_client",
    "async_httpx_transport",
    "httpx_client",
    "httpx_transport",
    "requests_session",
    "require_httpx",
]

WsgiApp = Callable[..., Iterable[bytes]]


class WSGIAdapter(BaseAdapter):
    """A ``requests`` transport adapter that calls a WSGI app instead of opening a socket.

    Mount it on a URL prefix of a :class:`requests.Session`; every request under that
    prefix becomes one WSGI call. ``stream=True`` reads the app's body lazily, so an
    endless response (the event stream) can be consumed chunk by chunk.
    """

    def __init__(self, app: WsgiApp) -> None:
        super().__init__()
        self.app = app

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """Run ``request`` through the app and answer as a real adapter would."""
        url = urlsplit(request.url or "")
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif body is not None and not isinstance(body, bytes):
            # a file or an iterable of chunks, as requests allows
            body = body.read() if hasattr(body, "read") else b"".join(body)
        headers = [(k, v if isinstance(v, str) else v.decode("latin-1"))
                   for k, v in request.headers.items()]
        builder = EnvironBuilder(
            path=url.path or "/",
            base_url=f"{url.scheme}://{url.netloc}",
            query_string=url.query,
            method=request.method or "GET",
            headers=headers,
            data=body,
        )
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        try:
            status, response_headers, body_reader = _call(self.app, environ)
        except ConnectionError as exc:
            # The app dropped the connection (a fault rule): what a socket client sees.
            raise requests.ConnectionError(
                ("Connection aborted.", exc), request=request
            ) from exc
        code, _, reason = status.partition(" ")
        raw = _StreamedResponse(
            body=io.BufferedReader(body_reader),
            headers=HTTPHeaderDict(response_headers),
            status=int(code),
            reason=reason,
            preload_content=False,
            decode_content=False,
            request_method=request.method,
            request_url=request.url,
        )
        response = requests.Response()
        response.status_code = int(code)
        response.reason = reason
        response.headers = CaseInsensitiveDict(response_headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = raw
        response.url = request.url or ""
        response.request = request
        response.connection = self  # type: ignore[assignment]  # what requests reads is send()
        if not stream:
            _ = response.content  # read now and release the app's iterator
        return response

    def close(self) -> None:
        """Nothing to release: there is no connection pool."""


def _call(app: WsgiApp, environ: dict[str, Any]
          ) -> tuple[str, list[tuple[str, str]], _BodyReader]:
    """Call a WSGI app: its status, headers and a lazy reader of its body.

    Nothing of the body is read beyond what ``start_response`` needs, so an endless
    body stays endless and a streaming client gets each chunk as the app produces it.
    """
    started: list[tuple[str, list[tuple[str, str]]]] = []
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [(status, headers)]
        return written.append

    result = app(environ, start_response)
    chunks: Iterator[bytes] = iter(result)
    first: list[bytes] = []
    if not started:  # WSGI lets an app call start_response when it yields its first chunk
        for chunk in chunks:
            first.append(chunk)
            if started:
                break
    if not started:
        raise RuntimeError("the WSGI app returned without calling start_response")
    status, headers = started[0]
    return status, list(headers), _BodyReader(result, itertools.chain(written, first, chunks))


class _StreamedResponse(HTTPResponse):
    """urllib3's response over the app's body, streamed as a chunked answer from a socket
    would be: each read hands over what the app has produced, without waiting to fill the
    chunk size (so an event stream delivers each event as it comes)."""

    def stream(self, amt: int | None = 2**16,
               decode_content: bool | None = None) -> Generator[bytes, None, None]:
        while True:
            data = self.read1(amt, decode_content=decode_content)
            if not data:
                return
            yield data


class _BodyReader(io.RawIOBase):
    """A WSGI response iterable read as a file, lazily; closing it closes the iterable."""

    def __init__(self, source: Iterable[bytes], chunks: Iterator[bytes]) -> None:
        self._source = source
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()
        super().close()


def requests_session(app: WsgiApp, base_url: str,
                     session: requests.Session | None = None) -> requests.Session:
    """A ``requests`` session (new, or the one given) whose requests under ``base_url``
    go to ``app`` in-process; other URLs keep their usual adapters."""
    session = session if session is not None else requests.Session()
    session.mount(base_url.rstrip("/") + "/", WSGIAdapter(app))
    return session


def require_httpx(what: str) -> None:
    """Nothing when ``httpx`` can be imported; else a ``ModuleNotFoundError`` that says
    ``what`` needs it and how to install it (kontext-mock does not depend on it)."""
    try:
        import httpx  # noqa: F401
    except ImportError:
        raise ModuleNotFoundError(
            f"{what} needs httpx, which kontext-mock does not install by itself: "
            "pip install 'kontext-mock[httpx]' (or pip install httpx)", name="httpx",
        ) from None


def httpx_transport(app: WsgiApp, *, raise_app_exceptions: bool = False) -> httpx.BaseTransport:
    """An ``httpx`` transport calling ``app`` in-process (``httpx.Client(transport=...)``).

    The app's own error handling answers errors (a 500 stays a 500) unless
    ``raise_app_exceptions`` is set; a connection the app drops raises
    ``httpx.RemoteProtocolError``, as it does over a socket.
    """
    require_httpx("httpx_transport()")
    import httpx

    # Built per call, over the httpx module imported now: a class kept from an earlier
    # import would hand back streams of that module's types, which a re-imported httpx
    # (pytester's in-process runs restore sys.modules) no longer takes for its own.
    class WSGITransport(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.WSGITransport(app=app, raise_app_exceptions=raise_app_exceptions)

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            try:
                return self.inner.handle_request(request)
            except ConnectionError as exc:
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                ) from exc

        def close(self) -> None:
            self.inner.close()

    return WSGITransport()


def httpx_client(app: WsgiApp, base_url: str, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` on ``base_url`` whose requests go to ``app`` in-process."""
    require_httpx("httpx_client()")
    import httpx

    return httpx.Client(base_url=base_url, transport=httpx_transport(app), **kwargs)


def async_httpx_transport(app: WsgiApp) -> httpx.AsyncBaseTransport:
    """An async ``httpx`` transport calling ``app`` in a worker thread.

    The response body is read whole before it is returned, so it does not suit endless
    responses (the event stream); use the sync transport for those.
    """
    require_httpx("async_httpx_transport()")
    import anyio.to_thread
    import httpx

    sync = httpx_transport(app)

    def call(request: httpx.Request) -> httpx.Response:
        response = sync.handle_request(request)
        response.read()
        return response

    class _AsyncWSGITransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            body = await request.aread()
            plain = httpx.Request(request.method, request.url, headers=request.headers,
                                  content=body)
            response = await anyio.to_thread.run_sync(call, plain)
            return httpx.Response(response.status_code, headers=response.headers,
                                  content=response.content, request=request)

    return _AsyncWSGITransport()


def async_httpx_client(app: WsgiApp, base_url: str, **kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on ``base_url`` whose requests go to ``app`` in-process."""
    require_httpx("async_httpx_client()")
    import httpx

    return httpx.AsyncClient(base_url=base_url, transport=async_httpx_transport(app), **kwargs)
