"""Who the sessions belong to: organizations, their applications, and OAuth clients."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from kontext_mock.core.credentials import covers
from kontext_mock.core.errors import ConflictError, NotFoundError, UnprocessableError
from kontext_mock.core.fields import application_record, client_record, scopes_of, unprocessable
from kontext_mock.core.oauth import app_client_id
from kontext_mock.core.records import AccessToken, Application, OAuthClient, Organization
from kontext_mock.core.state import MockState
from kontext_mock.core.store import StoreError

__all__ = ["Accounts", "Reach"]


@dataclass(frozen=True, slots=True)
class Reach:
    """An organization, its applications and the credentials that read them."""

    id: str
    name: str
    #: ``(id, name)`` of each application, the dev one first
    applications: list[tuple[str, str]]
    #: static bearer tokens, the dev one first
    tokens: list[str]
    #: ``(client id, secret)`` of each client of ``/oauth2/token``
    clients: list[tuple[str, str]]


class Accounts:
    """Organizations, applications and clients: added explicitly, listed, looked up."""

    def __init__(self, state: MockState) -> None:
        self.state = state

    def add_organization(self, org: Organization | None = None, *, id: str | None = None,
                         name: str | None = None) -> Organization:
        """Add an organization (an :class:`Organization`, or its id and name, faked when
        not given). 409 when the id is taken."""
        state = self.state
        with state.store.lock:
            if org is None:
                org = Organization(id or state.faker.uuid(), name or state.faker.fake.company())
            if org.id in state.store.organizations:
                raise ConflictError(f"organization {org.id!r} already exists")
            return state.store.add_organization(org)

    def add_application(self, organization_id: str | None = None, *, id: str | None = None,
                        name: str | None = None) -> Application:
        """Add an application to an organization (default: the dev organization)."""
        state = self.state
        org_id = organization_id or state.config.dev_organization_id
        with state.store.lock:
            if org_id not in state.store.organizations:
                raise NotFoundError(f"organization {org_id} not found")
            app_id = unprocessable(lambda: str(uuid.UUID(id)), "id") if id else state.faker.uuid()
            if app_id in state.store.applications:
                raise ConflictError(f"application {app_id} already exists")
            app = Application(app_id, org_id, name or f"{state.faker.fake.word().title()} Agent")
            return state.store.add_application(app)

    def add_client(
        self, client: OAuthClient | None = None, *, client_id: str | None = None,
        client_secret: str | None = None, scopes: Any = ("management:all",),
        organization_id: str | None = None, application_id: str | None = None,
        name: str | None = None, token: str | None = None,
    ) -> OAuthClient:
        """Register an OAuth client of ``/oauth2/token`` with its scopes (an
        :class:`OAuthClient`, or its fields; the organization defaults to the application's,
        else the dev organization). ``token`` also registers a static bearer token of the
        client that never expires."""
        state = self.state
        store = state.store
        with store.lock:
            if client is None:
                if not client_id or not client_secret:
                    raise UnprocessableError([{"field": "clientId",
                                               "message": "client_id and client_secret are needed"}])
                app = None
                if application_id is not None:
                    app = store.applications.get(application_id)
                    if app is None:
                        raise NotFoundError(f"application {application_id} not found")
                org_id = organization_id or (app.organization_id if app else
                                             state.config.dev_organization_id)
                if org_id not in store.organizations:
                    raise NotFoundError(f"organization {org_id} not found")
                if app is not None and app.organization_id != org_id:
                    raise UnprocessableError([{"field": "applicationId", "message":
                                               f"application {app.id} is not of organization {org_id}"}])
                client = OAuthClient(client_id, client_secret, org_id,
                                     unprocessable(lambda: scopes_of(list(scopes)), "scopes"),
                                     application_id, name or "")
            if client.client_id in store.clients:
                raise ConflictError(f"client {client.client_id!r} already exists")
            if token is not None and token in store.tokens:
                raise ConflictError("this token is already taken")
            try:
                store.add_client(client)
            except StoreError as exc:
                raise NotFoundError(str(exc)) from None
            if token is not None:
                store.add_token(AccessToken(token, client.client_id, client.organization_id,
                                            client.scopes, client.application_id, None))
            return client

    def client_info(self, client_id: str) -> dict[str, Any]:
        """A registered client as data, without its secret."""
        client = self.state.store.clients.get(client_id)
        if client is None:
            raise NotFoundError(f"client {client_id!r} not found")
        return client_record(client, secret=False)

    def application_ids(self, organization_id: str | None = None) -> list[str]:
        """Ids of the applications (of one organization, if given), dev application first."""
        state = self.state
        with state.store.lock:
            ids = [a.id for a in state.store.applications.values()
                   if organization_id is None or a.organization_id == organization_id]
        return sorted(ids, key=lambda i: (i != state.config.dev_application_id, i))

    def reach(self) -> list[Reach]:
        """Each organization (the dev one first, then as added) with its applications and
        the credentials that can read them: static tokens (never expiring) and clients of
        ``/oauth2/token``, each with the sessions read scope. What the serve banner
        prints, so that it names a credential for every application it lists."""
        state = self.state
        store = state.store
        config = state.config
        read = "management:applications:read"
        with store.lock:
            found = [Reach(
                org.id, org.name,
                sorted(((a.id, a.name) for a in store.applications.values()
                        if a.organization_id == org.id),
                       key=lambda a: (a[0] != config.dev_application_id, a[1], a[0])),
                sorted((t.token for t in store.tokens.values()
                        if t.organization_id == org.id and t.expires_at is None
                        and covers(t.scopes, read)),
                       key=lambda t: (t != config.dev_token, t)),
                sorted(((c.client_id, c.client_secret) for c in store.clients.values()
                        if c.organization_id == org.id and covers(c.scopes, read)),
                       key=lambda c: (c[0] != config.dev_client_id, c)),
            ) for org in store.organizations.values()]
        return sorted(found, key=lambda r: r.id != config.dev_organization_id)

    def applications(self) -> list[dict[str, Any]]:
        """Every application with its organization's name, how many sessions it holds and
        its public OAuth client (the MCP gateway's, ``app_<applicationId>``):
        the dev application first, then by organization and application name."""
        state = self.state
        store = state.store
        with store.lock:
            orgs = store.organizations
            rows = [
                {**application_record(app), "organizationName": orgs[app.organization_id].name,
                 "sessions": len(store.application_sessions(app.id)),
                 "oauthClientId": app_client_id(app.id)}
                for app in store.applications.values()
            ]
        dev = state.config.dev_application_id
        return sorted(rows, key=lambda r: (r["id"] != dev, r["organizationName"], r["name"], r["id"]))
