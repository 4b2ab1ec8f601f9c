"""The kit's HTTP client: the sessions API's client (:mod:`kontext_mock.clients.api`),
beneath the kit, ``kontext-mock record`` and the command line; the kit's modules take it
from here.
"""

from __future__ import annotations

from kontext_mock.clients.api import DEFAULT_AUTH, ApiClient, Exchange, NotJsonError, Redactor, dumps

__all__ = ["DEFAULT_AUTH", "ApiClient", "Exchange", "NotJsonError", "Redactor", "dumps"]
