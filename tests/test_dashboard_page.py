"""The dashboard's files (``/_mock/ui/``): served from the package, confined to the mock's
own origin, small, and driving the mock through documented control-plane routes only.
What the page does in a browser is ``test_dashboard_browser.py``."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from kontext_mock import KontextMock
from kontext_mock.cli import banner
from kontext_mock.http.spec import default_spec_path, load_spec
from kontext_mock.http.ui import FILES, POLICY, content

from .conftest import NOW

#: the issue's budget for HTML + CSS + JavaScript, uncompressed
MAX_PAGE_BYTES = 150 * 1024
CONTROL = load_spec(str(default_spec_path("control.yaml")))


def test_the_page_and_its_files_are_served_with_their_media_types(client: FlaskClient) -> None:
    for path, media in (("/_mock/ui/", "text/html"), ("/_mock/ui/dashboard.js", "text/javascript"),
                        ("/_mock/ui/dashboard.css", "text/css")):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.mimetype == media
        assert answer.data == content("index.html" if path.endswith("/") else path.rsplit("/", 1)[1])


def test_without_the_slash_it_redirects_to_the_page(client: FlaskClient) -> None:
    answer = client.get("/_mock/ui")
    assert answer.status_code == 308
    assert answer.headers["Location"] == "/_mock/ui/"


def test_no_other_file_is_served(client: FlaskClient) -> None:
    for path in ("/_mock/ui/__init__.py", "/_mock/ui/..%2F..%2Fopenapi.yaml", "/_mock/ui/index.html"):
        assert client.get(path).status_code in (400, 404), path


def test_the_page_may_load_and_call_its_own_origin_only_and_never_be_framed(
    client: FlaskClient,
) -> None:
    for name in FILES:
        answer = client.get("/_mock/ui/" + ("" if name == "index.html" else name))
        policy = answer.headers["Content-Security-Policy"]
        assert policy == POLICY
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["connect-src"] == directives["script-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_the_files_name_no_other_origin() -> None:
    for name in FILES:
        text = content(name).decode()
        assert not re.search(r"(?:https?:)?//[A-Za-z0-9]", text.replace("data:,", "")), name


def test_the_page_weighs_under_its_budget() -> None:
    weight = sum(len(content(name)) for name in FILES)
    print(f"dashboard: {weight} bytes (HTML + CSS + JS, uncompressed)")
    assert weight < MAX_PAGE_BYTES


def _route(literal: str) -> str:
    """A path as the script writes it (``/_mock/faults/${id}${query(...)}``), concrete."""
    path = re.sub(r"\$\{(?:journalQuery|query)\(.*\)\}$", "", literal)
    return re.sub(r"\$\{[^}]+\}", "x", path)


def _documented(path: str, method: str | None = None) -> bool:
    return any(
        (method is None or op.method == method)
        and re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(op.path)), path)
        for op in CONTROL
    )


def test_every_route_the_script_calls_is_a_documented_control_route() -> None:
    script = content("dashboard.js").decode()
    routes = re.findall(r"[`'](/_mock/[^`'?]*)", script)
    assert len(routes) >= 20
    for literal in routes:
        assert _documented(_route(literal)), literal
    # and with the documented method, where the call names it
    calls = re.findall(r"api\('([A-Z]+)', [`'](/_mock/[^`'?]*)", script)
    calls += [("POST", path) for path in re.findall(r"clockAction\('([^']+)'", script)]
    assert len(calls) >= 15
    for method, literal in calls:
        assert _documented(_route(literal), method), (method, literal)
    # the script reaches nothing but the control plane: no public API route, no other path
    assert not re.search(r"[`'](/(?!_mock/)[a-z])", script)


def test_the_serve_banner_prints_the_dashboard_url() -> None:
    mock = KontextMock(seed=7, now=NOW, frozen=True)
    assert "dashboard:     http://localhost:8080/_mock/ui/" in banner(mock, "127.0.0.1", 8080)
