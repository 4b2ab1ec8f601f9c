"""Every relative link of every Markdown file of the repository leads somewhere: to a
file that exists and, for a link into a Markdown file, to one of its headings (a page
named in inline code, `dir/page.md`, exists too). And the
page of evidence names every assumption of the contract, and only those."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
_SKIPPED_DIRS = {"build", "dist", "node_modules", "__pycache__"}

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
#: a Markdown file named in inline code (`docs/evidence.md`): a reader follows it too
_NAMED_PAGE = re.compile(r"`([\w.-]+(?:/[\w.-]+)+\.md)`")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def markdown_files() -> list[Path]:
    """The repository's Markdown files (not those of virtual environments or builds)."""
    return sorted(
        p for p in ROOT.rglob("*.md")
        if not any(part.startswith(".") or part in _SKIPPED_DIRS or part.endswith(".egg-info")
                   for part in p.relative_to(ROOT).parts[:-1])
    )


def prose(text: str) -> str:
    """The text without its code: fenced blocks and inline code hold no links."""
    return _CODE.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    """The targets of the inline and reference links (and images) of a Markdown text."""
    body = prose(text)
    return _INLINE.findall(body) + _REFERENCE.findall(body)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (a repeated one gets -1, -2 ...)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(path: Path) -> list[str]:
    """What is wrong with the relative links of one Markdown file."""
    broken = []
    for target in links(path.read_text()):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("//"):
            continue  # http:, https:, mailto: ... are not this repository's
        file_part, _, anchor = target.partition("#")
        file_part = file_part.split("?", 1)[0]
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no such heading")
    for named in _NAMED_PAGE.findall(_FENCE.sub("", path.read_text())):
        if not ((path.parent / named).exists() or (ROOT / named).exists()):
            broken.append(f"`{named}`: no such file")
    return broken


def test_the_markdown_files_are_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in markdown_files()}
    assert {"README.md", "docs/evidence.md", "contracts/README.md", "fixtures/README.md",
            "bench/ANALYSIS.md"} <= names
    assert not any(name.startswith(".venv") for name in names)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# The `kit`: what it does\n\n## Again\n## Again\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md) [ok](other.md#the-kit-what-it-does) [ok](other.md#again-1)\n"
        "[ok](#here) [web](https://example.com/x.md) `[code](nowhere.md)`\n"
        "```\n[fenced](nowhere.md)\n```\n"
        "# Here\n[gone](missing.md) ![pic](missing.png) [bad](other.md#nope)\n"
        "[ref]: gone-too.md\n"
        "as `reference/evidence.md` says; `other.md` and `docs/evidence.md` are there\n")
    assert broken_links(page) == ["missing.md: no such file", "missing.png: no such file",
                                  "other.md#nope: no such heading", "gone-too.md: no such file",
                                  "`reference/evidence.md`: no such file"]


# -- the evidence page and the contract's assumptions ----------------------------------------


def _assumption_ids(node: object) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "x-assumption":  # one assumption, or a list of them
                found.update(item["id"] for item in (value if isinstance(value, list) else [value]))
            else:
                found |= _assumption_ids(value)
    elif isinstance(node, list):
        for item in node:
            found |= _assumption_ids(item)
    return found


def test_the_evidence_page_names_every_assumption_of_the_contract_and_no_other() -> None:
    ids = _assumption_ids(yaml.safe_load((ROOT / "openapi.yaml").read_text()))
    page = (ROOT / "docs" / "evidence.md").read_text()
    cited = set(re.findall(r"\[`([a-z0-9-]+)`\]\(\.\./openapi\.yaml\)", page))
    assert ids, "openapi.yaml has no x-assumption ids"
    assert cited == ids
