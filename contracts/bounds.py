"""The list's parameters at their bounds and defaults, against enough sessions to tell them apart.

A target that caps ``limit`` below its documented maximum, or defaults it to another
number, answers every request exactly as the contract says while the application holds
fewer sessions than that bound; a filter that ignores ``status`` looks right while every
session has one status. Only a population past each bound tells them apart. This module
reads the bounds and defaults of the list's parameters from the spec
(:class:`ListParameters`), creates such a population on a kontext-mock (:func:`populate`:
more connected sessions than ``limit``'s maximum, in an application of their own), and
says which bounds a population could not tell apart, and why (:func:`unexercised`): a
read-only run against anything else says so instead of passing in silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kontext_mock.contracts.openapi import ApiSpec

if TYPE_CHECKING:
    from kontext_mock.contracts.control import ControlPlane

__all__ = ["ListParameters", "populate", "unexercised"]


@dataclass(frozen=True, slots=True)
class ListParameters:
    """The documented bounds and defaults of the sessions list's query parameters."""

    limit_min: int
    limit_max: int
    limit_default: int
    #: the ``status`` a list without one uses
    status_default: str
    include_inactive_default: bool

    @classmethod
    def of(cls, spec: ApiSpec) -> ListParameters:
        """The bounds and defaults ``spec`` gives ``listSessions``'s parameters."""
        schemas = spec.list_parameter_schemas()
        lo, hi = spec.limit_range()
        status = schemas.get("status", {})
        return cls(lo, hi, spec.default_limit(), str(status.get("default", "active")),
                   bool(schemas.get("includeInactive", {}).get("default", False)))

    @property
    def telling_population(self) -> int:
        """Connected sessions that tell ``limit``'s maximum (and so its default) apart."""
        return self.limit_max + 1


def populate(control: ControlPlane, organization: str | None,
             params: ListParameters) -> tuple[str, int]:
    """A new application on the mock holding more connected sessions than ``limit``'s
    maximum: its id, and how many sessions its default list holds."""
    app = control.create_application("kontext-contract bounds", organization)
    count = params.telling_population
    for _ in range(count):
        control.create_session(str(app["id"]), "active")
    return str(app["id"]), count


def unexercised(params: ListParameters, counts: dict[str | None, int], hi: int,
                bounds_known: bool, why_none: str) -> list[tuple[str, str]]:
    """Which bounds the application's lists could not tell apart: (rules, why) pairs.

    ``counts`` are the sessions each filter listed at the largest limit ``hi`` (None: the
    default filter); ``bounds_known`` is True when the kit made a population past
    ``limit``'s bounds itself; ``why_none`` says why it made none (read-only, no control
    plane)."""
    out: list[tuple[str, str]] = []
    listed = max(counts.get(None, 0), counts.get("all", 0))
    if not bounds_known and listed < hi:
        out.append(("limit-respected", f"limit's maximum ({hi}): the application lists "
                    f"{listed} sessions at limit={hi}; only {hi} or more tell a smaller cap "
                    f"apart ({why_none})"))
    if not bounds_known and listed <= params.limit_default:
        out.append(("limit-default", f"limit's default ({params.limit_default}): the "
                    f"application lists {listed} sessions; only more than "
                    f"{params.limit_default} tell another default apart ({why_none})"))
    if not counts.get("inactive"):
        out.append(("filter-default, filter-include-inactive",
                    "status's values and default, and includeInactive: the application holds "
                    "no expired or disconnected session, so status=inactive lists nothing, "
                    "and status=all, status=active, the default and includeInactive=true all "
                    "list the same"))
    if not counts.get("active"):
        out.append(("filter-active", "status=active: the application holds no active or idle "
                    "session, so what status=active admits was not seen"))
    return out
