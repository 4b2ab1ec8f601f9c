"""Schema validation failures in words that say what to give.

jsonschema says "is not valid under any of the given schemas" when a value matches none
of a ``oneOf``/``anyOf``'s alternatives, which tells a user nothing. A schema of the
specs can carry ``x-error-message``: what to give, said once beside the rule. It words
the failures of the value as a whole (the alternatives, ``enum``, ``const``,
``pattern``, ``type``); an object's own complaints (a missing or unknown field) keep
their words, which name the field. Without a hint, the alternative the value came
closest to speaks (jsonschema's ``best_match``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema.exceptions import ValidationError, best_match

__all__ = ["HINT", "Failure", "explain"]

#: the extension keyword of a schema that words its failures
HINT = "x-error-message"

#: the validators whose failure is about the value as a whole, which a hint words
_WORDED = frozenset({"anyOf", "oneOf", "enum", "const", "pattern", "type", "format"})
_ALTERNATIVES = frozenset({"anyOf", "oneOf"})
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")

#: (the dotted path of the failing value, or None for the whole; the message; the
#: validator that failed, for callers that map one to an error code)
Failure = tuple[str | None, str, str]


def explain(errors: Iterable[ValidationError]) -> list[Failure]:
    """What failed, each as (field, message, validator), in words that say what to give;
    complaints that only echo another (an unevaluated property whose own value failed)
    are left out."""
    failures = [_worded(e) for e in errors]
    named = {f for f, _, v in failures if f is not None and v != "unevaluatedProperties"}
    kept = []
    for field, message, validator in failures:
        if validator == "unevaluatedProperties":
            prefix = f"{field}." if field else ""
            unknown = [n for n in _QUOTED.findall(message) if f"{prefix}{n}" not in named]
            if not unknown:
                continue  # the property did not fail for being unknown, but for its value
            message = _unknown(unknown)
        kept.append((field, message, validator))
    return kept or failures


def _worded(error: ValidationError) -> Failure:
    hinted = _hinted(error)
    if hinted is not None:
        carrier, hint = hinted
        return _field(carrier), _with_value(hint, carrier.instance), str(error.validator)
    if error.validator == "additionalProperties" and isinstance(error.schema, Mapping):
        unknown = _QUOTED.findall(str(error.message))
        known = ", ".join(error.schema.get("properties") or ()) or "none"
        return _field(error), f"{_unknown(unknown)} (known: {known})", str(error.validator)
    if error.validator in _ALTERNATIVES and error.context:
        closest = _closest(error)
        if closest is not None:
            return _field(closest), closest.message, str(error.validator)
        types = [s.validator_value for s in error.context if s.validator == "type"]
        wanted = " or ".join(str(t) for t in types)
        return _field(error), f"must be {wanted}, not {_json_type(error.instance)}", str(
            error.validator)
    return _field(error), error.message, str(error.validator)


def _unknown(names: list[str]) -> str:
    return f"unknown field{'s' if len(names) > 1 else ''}: {', '.join(names)}"


def _closest(error: ValidationError) -> ValidationError | None:
    """The failure of the alternative the value came closest to: not one of a type the
    value does not even have (``{}`` is no null), else jsonschema's best match."""
    fitting = [s for s in error.context or () if not (s.validator == "type" and not s.relative_path)]
    return best_match(fitting) if fitting else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _hinted(error: ValidationError) -> tuple[ValidationError, str] | None:
    """The error whose schema has words for it: this one, else (for alternatives) the
    first alternative's failure that has them, e.g. a nullable time's time."""
    if error.validator not in _WORDED:
        return None
    schema = error.schema
    if isinstance(schema, Mapping) and isinstance(schema.get(HINT), str):
        return error, schema[HINT]
    if error.validator in _ALTERNATIVES:
        for sub in error.context or ():
            found = _hinted(sub)
            if found is not None:
                return found
    return None


def _field(error: ValidationError) -> str | None:
    path = ".".join(str(x) for x in error.absolute_path)
    if not path and error.validator == "required":
        missing = _QUOTED.search(str(error.message))
        return missing.group(1) if missing else None
    return path or None


def _with_value(hint: str, value: Any) -> str:
    if isinstance(value, (Mapping, list)):
        return hint
    shown = repr(value)
    return f"{hint}; got {shown if len(shown) <= 80 else shown[:77] + '...'}"
