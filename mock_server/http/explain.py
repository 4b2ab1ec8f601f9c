"""Schema validation failures in words that say what to give.

jsonschema says "is not valid under any of the given schemas" when a value matches none
of a ``oneOf``/``anyOf``'s alternatives, which tells a user nothing. A schema of the
specs can carry ``x-error-message``: what to give, said once beside the rule. It words
the failures of the value as a whole (the alternatives, ``enum``, ``const``,
``pattern``, ``type``); an object's own complaints (a missing or unknown field) keep
their words, which name the field. Without a hint, the alternative the value came
closest to speaks (jsonschema's ``best_match``).

The field a failure is about is read from the failure's structure (the schema's rule and
the instance), never from jsonschema's message, which is prose for people.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # failures come from jsonschema, imported by whoever validated
    from jsonschema.exceptions import ValidationError

__all__ = ["HINT", "Failure", "explain"]

#: the extension keyword of a schema that words its failures
HINT = "x-error-message"

#: the validators whose failure is about the value as a whole, which a hint words
_WORDED = frozenset({"anyOf", "oneOf", "enum", "const", "pattern", "type", "format"})
_ALTERNATIVES = frozenset({"anyOf", "oneOf"})
#: how deep a schema's combinators are followed for the properties it declares
_MAX_SCHEMA_DEPTH = 16

Resolve = Callable[[Any], Any]

#: (the dotted path of the failing value, or None for the whole; the message; the
#: validator that failed, for callers that map one to an error code)
Failure = tuple[str | None, str, str]


def explain(errors: Iterable[ValidationError], resolve: Resolve | None = None) -> list[Failure]:
    """What failed, each as (field, message, validator), in words that say what to give;
    complaints that only echo another (an unevaluated property whose own value failed)
    are left out. ``resolve`` follows the document's ``$ref`` (to learn the properties a
    schema declares)."""
    follow: Resolve = resolve or (lambda node: node)
    failures: list[Failure] = []
    missing_seen: dict[tuple[Any, ...], int] = {}
    first: ValidationError | None = None
    for error in errors:
        first = first or error
        if error.validator == "required":
            # one failure per missing name, in the rule's order: the nth is the nth missing
            where = tuple(error.absolute_path)
            nth = missing_seen[where] = missing_seen.get(where, -1) + 1
            failures.append((_missing(error, nth), error.message, "required"))
        elif error.validator == "unevaluatedProperties":
            unknown = _undeclared(error, follow)
            if unknown:  # else the properties failed for their values, said elsewhere
                failures.append((_field(error), _unknown(unknown), "unevaluatedProperties"))
        else:
            failures.append(_worded(error))
    if not failures and first is not None:  # a failure is never explained away to nothing
        failures.append((_field(first), first.message, str(first.validator)))
    return failures


def _worded(error: ValidationError) -> Failure:
    hinted = _hinted(error)
    if hinted is not None:
        carrier, hint = hinted
        return _field(carrier), _with_value(hint, carrier.instance), str(error.validator)
    if error.validator == "additionalProperties" and isinstance(error.schema, Mapping):
        declared = error.schema.get("properties") or {}
        patterns = list((error.schema.get("patternProperties") or {}).keys())
        unknown = [str(name) for name in (error.instance or {})
                   if name not in declared and not any(re.search(p, name) for p in patterns)]
        known = ", ".join(declared) or "none"
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


def _missing(error: ValidationError, nth: int) -> str | None:
    """The nth name the required rule lists that the object lacks."""
    path = ".".join(str(x) for x in error.absolute_path)
    instance = error.instance if isinstance(error.instance, Mapping) else {}
    missing = [str(n) for n in error.validator_value or () if n not in instance]
    name = missing[nth] if nth < len(missing) else None
    if name is None:
        return path or None
    return f"{path}.{name}" if path else name


def _undeclared(error: ValidationError, resolve: Resolve) -> list[str]:
    """The object's properties that its schema (with what it combines) does not declare."""
    declared = _declared(error.schema, resolve, 0)
    instance = error.instance if isinstance(error.instance, Mapping) else {}
    return [str(name) for name in instance if name not in declared]


def _declared(schema: Any, resolve: Resolve, depth: int) -> set[str]:
    schema = resolve(schema)
    if not isinstance(schema, Mapping) or depth > _MAX_SCHEMA_DEPTH:
        return set()
    names = set((schema.get("properties") or {}).keys())
    for keyword in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(keyword) or ():
            names |= _declared(sub, resolve, depth + 1)
    for keyword in ("then", "else"):
        if keyword in schema:
            names |= _declared(schema[keyword], resolve, depth + 1)
    return names


def _unknown(names: list[str]) -> str:
    return f"unknown field{'s' if len(names) > 1 else ''}: {', '.join(names)}"


def _closest(error: ValidationError) -> ValidationError | None:
    """The failure of the alternative the value came closest to: not one of a type the
    value does not even have (``{}`` is no null), else jsonschema's best match."""
    from jsonschema.exceptions import best_match

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
    return ".".join(str(x) for x in error.absolute_path) or None


def _with_value(hint: str, value: Any) -> str:
    if isinstance(value, (Mapping, list)):
        return hint
    shown = repr(value)
    return f"{hint}; got {shown if len(shown) <= 80 else shown[:77] + '...'}"
