"""A small client for the Kontext sessions API: token, list, get, revoke-all, with retries."""

from .client import ApiError, NotFoundError, SessionsClient

__all__ = ["ApiError", "NotFoundError", "SessionsClient"]
