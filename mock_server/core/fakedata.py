"""Coherent, seeded fake data: organizations, applications, clients and sessions.

One seed gives the same population to the byte: every random choice comes from one
``random.Random`` and one seeded Faker, drawn in a fixed order, and times are placed
relative to the clock's start so that seeded data always looks fresh.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from faker import Faker

from kontext_mock.config import MockConfig
from kontext_mock.core.records import (
    DISCONNECTED,
    AccessToken,
    Application,
    OAuthClient,
    Organization,
    Session,
)

__all__ = ["Population", "SessionFaker", "apportion", "generate", "organization_credentials"]

DERIVED_STATES = ("active", "idle", "expired", "disconnected")

# MCP clients as they introduce themselves: clientInfo name, versions, and how their
# User-Agent looks. {v} is the version, {os}/{arch} the platform.
_CLIENTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("claude-code", ("1.0.98", "2.0.14", "2.0.31", "2.1.4"), "claude-code/{v} (external, cli)"),
    ("cursor-vscode", ("1.0.0",), "Cursor/1.{minor}.{patch} ({os}; {arch})"),
    ("Visual Studio Code", ("1.101.2", "1.103.0", "1.105.1"), "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)"),
    ("kontext-cli", ("0.4.2", "0.5.0", "0.6.1"), "kontext-cli/{v} ({os}; {arch})"),
    ("codex-mcp-client", ("0.36.0", "0.46.0"), "codex_cli_rs/{v} ({os}; {arch})"),
    ("gemini-cli-mcp-client", ("0.1.0",), "GeminiCLI/0.{minor}.{patch} ({os}; {arch})"),
    ("windsurf-client", ("1.12.2",), "Windsurf/{v} ({os}; {arch})"),
)
_PLATFORMS = (("darwin", "arm64"), ("darwin", "x64"), ("linux", "x64"), ("win32", "x64"))
_MACHINES = ("macbook-pro", "mbp", "macbook-air", "thinkpad", "xps-15", "desktop", "workstation", "devbox")
_APP_KINDS = ("Agent", "Assistant", "Copilot", "Support Bot", "MCP Gateway", "Research Agent")
#: the Faker providers the fake data draws from (first names; company names, which take
#: last names; words): a Faker with all of its providers costs a mock's start more than
#: seeding it, and draws the same values from these
FAKER_PROVIDERS = ["faker.providers.person", "faker.providers.company", "faker.providers.lorem"]


@dataclass
class Population:
    """What a seed produces, ready to load into a store."""

    organizations: list[Organization] = field(default_factory=list)
    applications: list[Application] = field(default_factory=list)
    clients: list[OAuthClient] = field(default_factory=list)
    #: static bearer tokens (never expiring) of the seeded organizations' clients
    tokens: list[AccessToken] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)


def organization_credentials(config: MockConfig, number: int) -> tuple[str, str, str]:
    """``(client id, secret, static token)`` of the ``number``-th seeded organization
    (the dev organization is the first): the dev credentials with ``-<number>`` added,
    so that every seeded application is reachable out of the box."""
    return (f"{config.dev_client_id}-{number}", f"{config.dev_client_secret}-{number}",
            f"{config.dev_token}-{number}")


def apportion(total: int, mix: dict[str, float]) -> dict[str, int]:
    """Split ``total`` by the weights of ``mix`` into whole numbers (largest remainder)."""
    weight = sum(mix.values())
    if total <= 0 or weight <= 0:
        return dict.fromkeys(mix, 0)
    exact = {k: total * v / weight for k, v in mix.items()}
    counts = {k: int(v) for k, v in exact.items()}
    by_remainder = sorted(mix, key=lambda k: (-(exact[k] - counts[k]), k))
    for key in by_remainder[: total - sum(counts.values())]:
        counts[key] += 1
    return counts


class SessionFaker:
    """Makes sessions that look real and are coherent in time.

    Timestamps keep createdAt <= connectedAt <= lastActiveAt (<= disconnectedAt) and
    lastActiveAt <= tokenExpiresAt, none but tokenExpiresAt after ``now``, and each
    session is placed so that at ``now`` its derivedStatus is the one asked for.
    """

    def __init__(self, seed: int, idle_after: timedelta) -> None:
        self.rng = random.Random(seed)
        self.fake = Faker("en_US", providers=FAKER_PROVIDERS)
        self.fake.seed_instance(seed)
        self.idle_after = idle_after

    def uuid(self) -> str:
        """A random (version 4) UUID from the seeded generator."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _seconds(self, low: float, high: float) -> timedelta:
        # whole milliseconds, as the API reports them
        return timedelta(milliseconds=round(self.rng.uniform(low, high) * 1000))

    def client_identity(self) -> tuple[str | None, str | None, dict[str, Any] | None]:
        """A hostname, User-Agent and MCP clientInfo that belong together."""
        name, versions, ua = self.rng.choice(_CLIENTS)
        version = self.rng.choice(versions)
        os_name, arch = self.rng.choice(_PLATFORMS)
        user_agent = ua.format(
            v=version, os=os_name, arch=arch,
            minor=self.rng.randint(1, 7), patch=self.rng.randint(0, 12),
        )
        info: dict[str, Any] = {"name": name, "version": version}
        if name == "kontext-cli" and self.rng.random() < 0.3:
            info = {"name": name, "os": os_name}
        first = self.fake.first_name().lower()
        hostname = f"{first}-{self.rng.choice(_MACHINES)}"
        if os_name == "darwin" and self.rng.random() < 0.5:
            hostname += ".local"
        roll = self.rng.random()
        # Clients do not always report themselves: a few sessions carry nulls.
        if roll < 0.04:
            return None, None, None
        if roll < 0.08:
            return hostname, None, info
        return hostname, user_agent, info

    def session(
        self,
        application: Application,
        state: str,
        now: datetime,
        *,
        session_id: str | None = None,
    ) -> Session:
        """A session of ``application`` whose derivedStatus at ``now`` is ``state``."""
        if state not in DERIVED_STATES:
            raise ValueError(f"unknown session state {state!r}; use one of {DERIVED_STATES}")
        sid = session_id or self.uuid()
        hostname, user_agent, info = self.client_identity()
        idle = self.idle_after.total_seconds()
        status = "active"
        disconnected_at = None
        reason = None
        if state == "active":
            last = now - self._seconds(0, min(60.0, idle / 2))
            expires = now + self._seconds(300, 3600)
        elif state == "idle":
            last = now - self._seconds(idle + 1, idle + 7200)
            expires = now + self._seconds(300, 3600)
        elif state == "expired":
            expires = now - self._seconds(60, 6 * 3600)
            last = expires - self._seconds(0, 1800)
        else:
            status = DISCONNECTED
            reason = self.rng.choice(("revoked", "agent", "agent", "timeout"))
            disconnected_at = now - self._seconds(60, 2 * 86400)
            if reason == "timeout":
                last = disconnected_at - self._seconds(90, 180)
            else:
                last = disconnected_at - self._seconds(0, 600)
            # The token may have died before the disconnect, but not before the last
            # activity: nothing is active on a dead token.
            expires = max(disconnected_at + self._seconds(-1800, 3600), last)
        created = last - self._seconds(30, 2 * 86400)
        connected = created + self._seconds(0.05, 3)
        user = f"user_{self.rng.getrandbits(48):012x}"
        client_name = info["name"] if info else "mcp-client"
        return Session(
            id=sid,
            application_id=application.id,
            organization_id=application.organization_id,
            name=f"{client_name}@{hostname}" if hostname else f"{client_name} session",
            status=status,  # type: ignore[arg-type]
            created_at=created,
            connected_at=connected,
            last_active_at=last,
            token_expires_at=expires,
            disconnected_at=disconnected_at,
            disconnect_reason=reason,  # type: ignore[arg-type]
            hostname=hostname,
            user_agent=user_agent,
            client_info=info,
            client_session_id=self.uuid(),
            authenticated_user_id=user,
            token_identifier=f"tok_{self.rng.getrandbits(64):016x}",
        )

    def sessions(
        self, application: Application, count: int, mix: dict[str, float], now: datetime
    ) -> list[Session]:
        """``count`` sessions split by ``mix`` (exact counts), in a seeded random order."""
        states = [s for s, n in apportion(count, mix).items() for _ in range(n)]
        self.rng.shuffle(states)
        return [self.session(application, state, now) for state in states]


def generate(config: MockConfig, now: datetime) -> Population:
    """The population a configuration describes, placed relative to ``now``."""
    fake = SessionFaker(config.seed, config.idle_after)
    pop = Population()
    dev_org = Organization(config.dev_organization_id, config.dev_organization_name)
    dev_app = Application(config.dev_application_id, dev_org.id, config.dev_application_name)
    pop.organizations.append(dev_org)
    pop.applications.append(dev_app)
    pop.clients.append(
        OAuthClient(
            client_id=config.dev_client_id,
            client_secret=config.dev_client_secret,
            organization_id=dev_org.id,
            scopes=config.dev_scopes,
            application_id=dev_app.id,
            name="dev client",
        )
    )
    for number in range(2, config.organizations + 2):
        org = Organization(fake.uuid(), fake.fake.company())
        pop.organizations.append(org)
        # Drawn from nothing random: the seeded data stays what it was.
        client_id, secret, token = organization_credentials(config, number)
        pop.clients.append(OAuthClient(client_id, secret, org.id, config.dev_scopes, None,
                                       f"{org.name} dev client"))
        pop.tokens.append(AccessToken(token, client_id, org.id, config.dev_scopes, None, None))
        for _ in range(config.applications):
            kind = fake.rng.choice(_APP_KINDS)
            pop.applications.append(
                Application(fake.uuid(), org.id, f"{fake.fake.word().title()} {kind}")
            )
    for app in pop.applications:
        sessions = fake.sessions(app, config.sessions, config.status_mix, now)
        if app is dev_app and sessions:
            # The docs' example session id names a connected session of the dev app.
            first = next(
                (s for s in sessions if s.derived_status(now, config.idle_after) == "active"),
                sessions[0],
            )
            first.id = config.dev_session_id
        pop.sessions.extend(sessions)
    return pop
