"""The README is a front door and the docs stay whole: short, self-contained, every link resolves.

Issue 22: the README had grown into a 436-line wall that linked to a design note outside the repository.
It now says what the service is, gives the two commands for a fresh machine and points into docs/; these
checks keep it that way and keep the pages' links (files and #anchors) pointing at what exists.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_LINES = 160
# What is not the project's own documentation: tool caches, installed packages, run-time files.
SKIP_DIRS = {"node_modules", "var", "build", "dist", "__pycache__"}

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def markdown_files() -> list[Path]:
    """Every Markdown file of the repository (hidden folders and installed packages left out)."""
    found = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [
            d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and not d.endswith(".egg-info")
        ]
        found += [Path(root) / f for f in files if f.endswith(".md")]
    return sorted(found)


def front_and_docs() -> list[Path]:
    """The README and the docs/ pages: the documentation whose every link must resolve."""
    return [README, *sorted(DOCS.glob("*.md"))]


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where a bracket is code, not a link."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def link_targets(text: str) -> list[str]:
    """The targets of inline links and images, reference definitions and HTML href/src, in order."""
    body = prose(text)
    return [m[1] for pattern in (INLINE_LINK, REFERENCE_DEF, HTML_LINK) for m in pattern.finditer(body)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors as its text
    text = text.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The #fragments a Markdown file's headings answer to (repeats numbered as GitHub does)."""
    seen: dict[str, int] = {}
    found = set()
    for m in HEADING.finditer(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(m[2])
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def relative(target: str) -> bool:
    """A link into the file system (not a URL with a scheme, not protocol-relative)."""
    return not SCHEME.match(target) and not target.startswith("//")


def test_the_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_readme_gives_the_two_commands_and_ci_runs_its_test_command() -> None:
    """The two commands, each alone in a shell block, run scripts that exist; CI runs the test command."""
    text = README.read_text(encoding="utf-8")
    blocks = [b.strip() for b in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S)]
    assert "bash deploy/demo.sh" in blocks and "bash deploy/test.sh" in blocks
    assert (REPO / "deploy" / "demo.sh").is_file() and (REPO / "deploy" / "test.sh").is_file()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^bash deploy/test\.sh\s*$", ci, re.M), ".ci/run must run the README's test command"


def test_the_readme_names_nothing_outside_the_repository() -> None:
    """Not even as text: a reader of the checkout has only the checkout."""
    text = README.read_text(encoding="utf-8")
    assert "../" not in text and "..\\" not in text


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_markdown_file_links_outside_the_repository(path: Path) -> None:
    for target in link_targets(path.read_text(encoding="utf-8")):
        assert "../shared" not in target, f"{target}: outside the repository"
        if relative(target) and not target.startswith("#"):
            file_part = target.split("#", 1)[0].split("?", 1)[0]
            base = REPO if file_part.startswith("/") else path.parent
            resolved = (base / file_part.lstrip("/")).resolve()
            assert resolved.is_relative_to(REPO), f"{target}: resolves outside the repository"


@pytest.mark.parametrize("path", front_and_docs(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path: Path) -> None:
    """Each relative link names an existing file, and each #fragment a heading of the page it points at."""
    for target in link_targets(path.read_text(encoding="utf-8")):
        if not relative(target):
            continue
        file_part, _, fragment = target.partition("#")
        page = (path.parent / file_part).resolve() if file_part else path
        assert page.exists(), f"{target}: no such file"
        if fragment and page.suffix == ".md":
            assert fragment in anchors(page), f"{target}: no heading #{fragment} in {page.name}"


def test_the_docs_index_lists_every_page() -> None:
    index = DOCS / "README.md"
    listed = {t.partition("#")[0] for t in link_targets(index.read_text(encoding="utf-8"))}
    pages = {p.name for p in DOCS.glob("*.md")} - {"README.md"}
    assert sorted(pages - listed) == []
    assert "docs/README.md" in link_targets(README.read_text(encoding="utf-8"))


def test_the_operations_guide_opens_with_its_contents() -> None:
    """A 700-line guide is read by section: its contents list links every ## and ### heading, in order."""
    guide = DOCS / "operations.md"
    text = guide.read_text(encoding="utf-8")
    headings = [m[2] for m in HEADING.finditer(FENCE.sub("", text)) if len(m[1]) in (2, 3)]
    headings.remove("Contents")
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    assert [t.removeprefix("#") for t in link_targets(contents)] == [slug(h) for h in headings]


def test_every_figure_has_its_command() -> None:
    """performance.md: each row of a table with a command column names how to reproduce it."""
    text = (DOCS / "performance.md").read_text(encoding="utf-8")
    tables = re.findall(r"(?:^\|.*\|\n)+", text, re.M)
    with_commands = [t for t in tables if t.splitlines()[0].rstrip("| ").endswith("command")]
    assert len(with_commands) >= 2
    for table in with_commands:
        for row in table.splitlines()[2:]:
            command = re.split(r"(?<!\\)\|", row.strip().strip("|"))[-1].strip()
            assert "`" in command or command == "same", f"no command beside: {row[:80]}"
