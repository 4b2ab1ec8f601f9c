"""How deep JSON may nest: one limit for every JSON document the mock reads.

JSON bodies are parsed here, once, with one nesting limit for every route, so nothing
deeper than :data:`MAX_JSON_DEPTH` is ever validated, stored, journaled or saved.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["MAX_JSON_DEPTH", "JsonDepthError", "json_depth", "parse_json"]

#: the deepest nesting of arrays and objects a JSON body may have; far above any document
#: of the API (a state export is 3 levels deep, clientInfo a few) and far below what the
#: parser (1,024) and the serializer (254) refuse
MAX_JSON_DEPTH = 64


class JsonDepthError(ValueError):
    """A JSON document nested deeper than :data:`MAX_JSON_DEPTH`."""

    def __init__(self, limit: int = MAX_JSON_DEPTH) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels (the most the mock accepts)")


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep ``value`` nests arrays and objects (a scalar is 0), counted without recursion;
    :class:`JsonDepthError` as soon as it passes ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if depth > limit:
            raise JsonDepthError(limit)
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | tuple))
    return deepest


def parse_json(raw: bytes | str) -> Any:
    """Parse a JSON document no deeper than :data:`MAX_JSON_DEPTH`.

    ``orjson.JSONDecodeError`` when it is not JSON, :class:`JsonDepthError` when it nests
    too deep (the parser's own limit, 1,024, is reported as the same error).
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # The parser stops at its own depth limit too: told apart from other errors by
        # the text's nesting, never by the parser's message.
        if _bracket_depth(raw) > MAX_JSON_DEPTH:
            raise JsonDepthError() from None
        raise
    json_depth(value)
    return value


def _bracket_depth(raw: bytes | str) -> int:
    """How deep the brackets of a JSON text nest, strings aside (for a text that did not
    parse, so the scan costs only a refused request)."""
    text = raw.encode() if isinstance(raw, str) else raw
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest

