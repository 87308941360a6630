"""The docs a newcomer reads hold together: every relative link of README.md and docs/*.md names a file of the
repository, every #anchor a heading of the file it points into, and every guide can be reached from the README.

No network: links with a scheme (https:, mailto:) are not followed. Links inside code (fenced blocks, `spans`) are
not links. Anchors are GitHub's: the heading's text, lower-cased, punctuation dropped, spaces as hyphens, a repeated
heading numbered -1, -2, ...
"""
from __future__ import annotations

import re
from pathlib import Path
from testkit.paths import REPO

README_LIMIT_BYTES = 12_288  # issue 21: the README is at most about 12 KB

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"<a\s+[^>]*(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code spans blanked out."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)[0] * len(opening.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        lines.append((number, _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors by its text
    text = re.sub(r"[*`]|(?<!\w)_|_(?!\w)", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a link may name in the markdown file `path`."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    text = path.read_text(encoding="utf-8")
    fence = None
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)[0]
            continue
        if fence is not None:
            fence = None if line.strip().startswith(fence * 3) else fence
            continue
        heading = _HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(_HTML_ANCHOR.findall(line))
    return found


def link_targets(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every inline link, image and reference definition of `path`, outside code."""
    targets = []
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        targets += [(number, m.group(1)) for m in _INLINE_LINK.finditer(line)]
        definition = _REFERENCE_DEFINITION.match(line)
        if definition:
            targets.append((number, definition.group(1)))
    return targets


def broken_links(path: Path, root: Path = REPO) -> list[str]:
    """One line per link of `path` that does not resolve inside `root`: a missing file, a file outside the
    repository, or an anchor that is no heading of its file."""
    problems = []
    for number, target in link_targets(path):
        where = f"{path.relative_to(root)}:{number}: {target!r}"
        if not target or _SCHEME.match(target) or target.startswith("//"):
            if not target:
                problems.append(f"{where}: empty link")
            continue  # an external link: not followed (no network)
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path.resolve()
        if not linked.is_relative_to(root.resolve()):
            problems.append(f"{where}: points outside the repository")
        elif not linked.exists():
            problems.append(f"{where}: no such file {linked.relative_to(root.resolve())}")
        elif anchor:
            if linked.suffix != ".md":
                problems.append(f"{where}: an anchor into {linked.name}, which is not markdown")
            elif anchor not in anchors(linked):
                problems.append(f"{where}: no heading #{anchor} in {linked.relative_to(root.resolve())}")
    return problems


def doc_files(root: Path = REPO) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def reachable(start: Path, root: Path = REPO) -> set[Path]:
    """The markdown files reachable from `start` by relative links."""
    seen, todo = set(), [start.resolve()]
    while todo:
        here = todo.pop()
        if here in seen or not here.exists():
            continue
        seen.add(here)
        for _, target in link_targets(here):
            file_part = target.partition("#")[0]
            if file_part and not _SCHEME.match(file_part) and file_part.endswith(".md"):
                todo.append((here.parent / file_part).resolve())
    return seen


def test_every_link_of_the_readme_and_the_guides_resolves():
    problems = [line for path in doc_files() for line in broken_links(path)]
    assert problems == [], "broken links:\n" + "\n".join(problems)


def test_every_guide_is_reached_from_the_readme():
    orphans = [p.name for p in doc_files()[1:] if p.resolve() not in reachable(REPO / "README.md")]
    assert orphans == [], f"docs/ pages no link from README.md leads to: {orphans}"


def test_the_readme_stays_short_and_keeps_the_two_commands():
    readme = (REPO / "README.md").read_bytes()
    assert len(readme) <= README_LIMIT_BYTES, f"README.md is {len(readme)} bytes; the limit is {README_LIMIT_BYTES}"
    text = readme.decode()
    assert "make sweep" in text and "make test" in text  # CI and a hook look for both


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_a_link_to_a_missing_file_is_reported(tmp_path):
    root = _tree(tmp_path, {"README.md": "# R\n\nSee [the guide](docs/guide.md) and [gone](docs/gone.md).\n",
                            "docs/guide.md": "# Guide\n"})
    problems = broken_links(root / "README.md", root)
    assert len(problems) == 1 and "README.md:3: 'docs/gone.md'" in problems[0] and "no such file" in problems[0]


def test_a_link_to_a_missing_heading_is_reported_and_a_real_one_is_not(tmp_path):
    root = _tree(tmp_path, {
        "README.md": ("# R\n\n[ok](docs/g.md#the-gpu-math-policy) [ok too](docs/g.md#make-gpu-check-a-real-host)\n"
                      "[here](#r) [moved](docs/g.md#no-such-heading) [self](#nothing-here)\n"),
        "docs/g.md": "# G\n\n## The GPU math policy\n\n### `make gpu-check` (a real host)\n",
    })
    problems = broken_links(root / "README.md", root)
    assert [p.split(": ")[1] for p in problems] == ["'docs/g.md#no-such-heading'", "'#nothing-here'"]


def test_code_external_links_and_repeated_headings(tmp_path):
    root = _tree(tmp_path, {"a.md": ("# A\n\n## Step\n\n## Step\n\n[second](#step-1) [web](https://example.invalid/x)"
                                     " `[not a link](nowhere.md)`\n\n```toml\n[x](nowhere.md)\n# Not a heading\n```\n"
                                     "[no](#not-a-heading) [up](../outside.md)\n")})
    problems = broken_links(root / "a.md", root)
    assert len(problems) == 2
    assert "'#not-a-heading'" in problems[0] and "points outside the repository" in problems[1]


def test_slugs_follow_github():
    assert slug("Coverage: which GPUs and drivers each CUDA image runs on") == \
        "coverage-which-gpus-and-drivers-each-cuda-image-runs-on"
    assert slug("`make gpu-check` (a real NVIDIA host)") == "make-gpu-check-a-real-nvidia-host"
    assert slug("Containers: one image per runtime") == "containers-one-image-per-runtime"
    assert slug("Add a **runtime**, [a model](x.md)") == "add-a-runtime-a-model"
