"""Reading the mock as a whole over the control plane: every application with its
organization, any page of an application's sessions with counts, the latest journal
entries. What the dashboard reads; the public list stops at 200 sessions."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from flask.testing import FlaskClient

from kontext_mock import KontextMock

from .conftest import AUTH, DEV_APP

DERIVED = ("active", "idle", "expired", "disconnected")


def page_of(client: FlaskClient, app_id: str, **params: object) -> dict[str, Any]:
    answer = client.get(f"/_mock/applications/{app_id}/sessions", query_string=params)
    assert answer.status_code == 200, answer.json
    page: dict[str, Any] = answer.json
    return page


def test_every_application_of_every_organization_is_listed(client: FlaskClient,
                                                           mock: KontextMock) -> None:
    other = mock.add_organization(name="Aardvark Inc")
    mock.add_application(organization_id=other.id, name="Zeta Bot")
    items = client.get("/_mock/applications").json["items"]
    assert {a["id"] for a in items} == set(mock.store.applications)
    assert items[0]["id"] == DEV_APP  # then by organization name and application name
    rest = [(a["organizationName"], a["name"]) for a in items[1:]]
    assert rest == sorted(rest) and ("Aardvark Inc", "Zeta Bot") in rest
    for app in items:
        assert app["organizationName"] == mock.store.organizations[app["organizationId"]].name
        assert app["sessions"] == len(mock.list_sessions(app["id"], status="all", limit=200))


def test_pages_put_together_are_the_apis_order_past_200(client: FlaskClient,
                                                        mock: KontextMock) -> None:
    mock.reset(sessions=450)
    pages = [page_of(client, DEV_APP, status="all", offset=offset, limit=200)
             for offset in (0, 200, 400)]
    ids = [s["id"] for p in pages for s in p["items"]]
    assert len(ids) == len(set(ids)) == 450 == pages[0]["total"]
    # the first 200 are exactly what the public list answers
    public = client.get(f"/api/v1/applications/{DEV_APP}/sessions?status=all&limit=200",
                        headers=AUTH).json["items"]
    assert pages[0]["items"] == public
    created = [mock.session_detail(i)["session"]["createdAt"] for i in ids]
    assert created == sorted(created, reverse=True)
    beyond = page_of(client, DEV_APP, status="all", offset=1000)
    assert beyond["items"] == [] and beyond["total"] == 450


@pytest.mark.parametrize("status", ["active", "inactive", "all"])
def test_a_page_filters_as_the_public_list_and_counts_every_state(
    client: FlaskClient, mock: KontextMock, status: str
) -> None:
    page = page_of(client, DEV_APP, status=status, limit=200)
    expected = mock.list_sessions(DEV_APP, status=status, limit=200)
    assert page["items"] == expected and page["total"] == len(expected)
    every = mock.list_sessions(DEV_APP, status="all", limit=200)
    assert page["counts"] == {d: Counter(s["derivedStatus"] for s in every)[d] for d in DERIVED}


def test_the_counts_tell_what_a_revoke_all_disconnects(client: FlaskClient) -> None:
    counts = page_of(client, DEV_APP, limit=1)["counts"]
    connected = sum(counts[d] for d in ("active", "idle", "expired"))
    assert connected > 0
    revoked = client.post(f"/_mock/applications/{DEV_APP}/revoke").json["disconnectedCount"]
    assert revoked == connected
    assert page_of(client, DEV_APP, limit=1)["counts"]["disconnected"] == sum(counts.values())


def test_paging_refuses_what_it_cannot_answer(client: FlaskClient) -> None:
    unknown = client.get("/_mock/applications/99999999-9999-4999-8999-999999999999/sessions")
    assert unknown.status_code == 404
    for bad in ("limit=0", "limit=201", "offset=-1", "status=idle"):
        answer = client.get(f"/_mock/applications/{DEV_APP}/sessions?{bad}")
        assert answer.status_code == 400, bad


def test_the_journal_gives_its_latest_entries_oldest_first(client: FlaskClient,
                                                            mock: KontextMock) -> None:
    for n in range(1, 8):
        client.get(f"/api/v1/applications/{DEV_APP}/sessions?limit={n}", headers=AUTH)
    client.delete(f"/api/v1/applications/{DEV_APP}/sessions", headers=AUTH)
    latest = client.get("/_mock/journal?limit=3").json["items"]
    assert [e["query"].get("limit") for e in latest] == ["6", "7", None]
    gets = client.get("/_mock/journal?limit=2&method=GET").json["items"]
    assert [e["query"]["limit"] for e in gets] == ["6", "7"]
    assert len(client.get("/_mock/journal?limit=100").json["items"]) == 8 == len(mock.journal)
