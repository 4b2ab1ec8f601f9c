"""Reading a spec file: the JSON form shipped beside the package's YAML, when it was made
from the very same text, else the YAML itself.

Building a document from YAML text costs a mock's start more than everything else it does
with the spec (PyYAML's C parser still builds each node in Python). So the package ships
``spec_cache.json``: the document of each of its specs (``openapi.yaml``,
``control.yaml``), keyed by the SHA-256 of the YAML text it was read from. A file whose
text has a digest the cache knows is read from there; any other text (an edited spec, a
spec of one's own) is read as YAML, so the cache can make a start faster but never serve
another document than the file's. ``tests/test_http_specfile.py`` fails while the cache is
behind the YAML; ``make spec-cache`` (``python -m kontext_mock.http.specfile``) writes it.
"""

from __future__ import annotations

import hashlib
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

__all__ = ["CACHE_NAME", "SPEC_NAMES", "cached_documents", "digest", "read_document",
           "read_yaml", "write_cache"]

#: the package's spec files the cache holds
SPEC_NAMES = ("openapi.yaml", "control.yaml")
#: the cache's file name, in the package beside the specs
CACHE_NAME = "spec_cache.json"


def _package_file(name: str) -> Path:
    return Path(str(resources.files("kontext_mock").joinpath(name)))


def digest(text: bytes) -> str:
    """The key of a spec's text in the cache (hex SHA-256)."""
    return hashlib.sha256(text).hexdigest()


def cached_documents() -> dict[str, Any]:
    """The shipped cache, read afresh: {digest of a YAML text: its document}; empty when
    there is none (a tree where it was never written reads its specs from YAML, slower)."""
    try:
        raw = _package_file(CACHE_NAME).read_bytes()
    except OSError:
        return {}
    documents = orjson.loads(raw)
    return documents if isinstance(documents, dict) else {}


def read_yaml(text: bytes) -> Any:
    """The document of a YAML (or JSON) text, read by PyYAML's safe loader."""
    import yaml  # only for a text the cache does not hold

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader, still safe
    return yaml.load(text, Loader=loader)  # noqa: S506


def read_document(path: str | Path) -> Any:
    """The document of the spec file at ``path``: from the cache when it holds this text,
    else read from the YAML. A fresh object each time (callers may change theirs)."""
    text = Path(path).read_bytes()
    document = cached_documents().get(digest(text))
    return read_yaml(text) if document is None else document


def write_cache(directory: Path | None = None) -> Path:
    """Write the cache of the package's specs (into ``directory``: the package's own by
    default). A document that JSON would not give back as YAML gave it (a date, a key
    that is no string) is refused: the cache must read as the YAML reads."""
    target = directory or _package_file(CACHE_NAME).parent
    documents: dict[str, Any] = {}
    for name in SPEC_NAMES:
        text = (target / name).read_bytes()
        document = read_yaml(text)
        try:
            encoded = orjson.dumps(document)
        except TypeError as exc:
            raise ValueError(f"{name} does not read as JSON: {exc}") from exc
        if orjson.loads(encoded) != document:
            raise ValueError(f"{name} does not read back from JSON as it reads from YAML")
        documents[digest(text)] = document
    path = target / CACHE_NAME
    path.write_bytes(orjson.dumps(documents) + b"\n")
    return path


if __name__ == "__main__":
    print(f"wrote {write_cache(Path(sys.argv[1]) if len(sys.argv) > 1 else None)}")
