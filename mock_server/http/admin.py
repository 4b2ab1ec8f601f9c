"""Who may use the control plane: the admin token, and loopback.

Without an admin token the control plane is open, but only while the mock is bound to
loopback and the request comes from this machine: local development needs no
credentials. With an admin token every control request must carry it as a bearer
token; the public API's tokens are a different thing and never open it. The one
exception is the dashboard's files (operations whose security allows no credentials):
they hold no data, and a browser cannot send a header when it opens a page, so they are
served without the token and the page asks for it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kontext_mock.core.credentials import secrets_equal
from kontext_mock.core.errors import ApiError
from kontext_mock.core.loopback import is_loopback
from kontext_mock.http.spec import default_spec_path, load_spec

if TYPE_CHECKING:
    from kontext_mock.config import MockConfig
    from kontext_mock.core.engine import MockEngine
    from kontext_mock.http.routing import Inputs
    from kontext_mock.http.spec import Operation

__all__ = ["CONTROL_PREFIX", "ControlVerdict", "control_refusal", "generate_token", "guard",
           "is_control", "judge"]

CONTROL_PREFIX = "/_mock"


_CHALLENGE = 'Bearer realm="kontext-mock control plane"'


def generate_token() -> str:
    """A fresh admin token (printed by ``kontext-mock serve`` when it needs one)."""
    return secrets.token_urlsafe(24)


def _local_peer(address: str | None) -> bool:
    return not address or is_loopback(address)  # (no address: an in-process client)


def _anonymous_operations() -> frozenset[str]:
    """The control operations whose security lists "no credentials" among its
    alternatives (``security: [{adminToken: []}, {}]`` in control.yaml)."""
    spec = load_spec(str(default_spec_path("control.yaml")))
    return frozenset(op.operation_id for op in spec if any(not alt for alt in op.security))


def control_refusal(config: MockConfig, authorization: str | None, peer: str | None
                    ) -> ApiError | None:
    """Why a control-plane request with this ``Authorization`` header, from the address
    ``peer`` (None: in-process), is refused; None when it may use the control plane."""
    token = config.admin_token
    if token:
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not secrets_equal(given.strip(), token):
            return ApiError(
                401, "unauthorized",
                "the control plane needs the mock's admin token"
                " (Authorization: Bearer <admin token>)",
                headers={"WWW-Authenticate": _CHALLENGE},
            )
        return None
    if not is_loopback(config.host) or not _local_peer(peer):
        return ApiError(
            403, "admin_token_required",
            f"the mock is reachable from other machines (bound to {config.host}) and"
            " has no admin token; restart it with --admin-token to use the control plane",
        )
    return None


@dataclass(frozen=True, slots=True)
class ControlVerdict:
    """Whether a control-plane request may use it, judged once, from its head: the body
    limit reads it before the body (only an admitted request may send the control
    plane's large bodies), and the route's guard after (:func:`guard`)."""

    #: why the request is refused; None when it may use the control plane
    refusal: ApiError | None


def judge(config: MockConfig, authorization: str | None, peer: str | None) -> ControlVerdict:
    """The verdict on a control-plane request's credentials (see :func:`control_refusal`)."""
    return ControlVerdict(control_refusal(config, authorization, peer))


def guard(mock: MockEngine) -> Callable[[Operation, Inputs], None]:
    """The check the control plane's routes run before anything else: the verdict made at
    the request's head (``Inputs.verdict``), or, for a request that came without one,
    made now."""

    anonymous = _anonymous_operations()

    def check(op: Operation, inputs: Inputs) -> None:
        verdict = inputs.verdict
        if not isinstance(verdict, ControlVerdict):
            verdict = judge(mock.config, inputs.header("Authorization"), inputs.peer)
        refusal = verdict.refusal
        if refusal is not None:
            if refusal.status == 401 and op.operation_id in anonymous:
                return  # the dashboard's files: they hold no data, and ask for the token
            raise refusal

    return check


def is_control(path: str) -> bool:
    """True for the control plane's paths (``/_mock`` and below)."""
    return path.startswith(CONTROL_PREFIX) and (
        len(path) == len(CONTROL_PREFIX) or path[len(CONTROL_PREFIX)] == "/")
