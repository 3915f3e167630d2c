"""The docs stay current (issue 15, item 6): the settings table is complete, every page and
ADR is in the MkDocs nav, every package is on the map, no page names a path that is gone,
and the README stays a front door (the two commands first, under 8,500 bytes).

`make docs` (in `make test`) builds the site with ``mkdocs build --strict`` on top of this.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gql_inventory.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGE = ROOT / "gql_inventory"
SETTINGS_PAGE = DOCS / "settings.md"
MAP_PAGE = DOCS / "map.md"
README = ROOT / "README.md"
README_MAX_BYTES = 8_500


def test_every_setting_is_in_the_settings_table() -> None:
    table = SETTINGS_PAGE.read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert missing == set()


# --- the MkDocs nav ------------------------------------------------------------------------


def _nav_files(entry: Any) -> Iterator[str]:
    """Every page path in a `nav` entry: a string, a ``{title: entry}`` mapping, or a list."""
    if isinstance(entry, str):
        yield entry
    elif isinstance(entry, list):
        for item in entry:
            yield from _nav_files(item)
    elif isinstance(entry, dict):
        for value in entry.values():
            yield from _nav_files(value)


def _nav() -> set[str]:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    return set(_nav_files(config["nav"]))


@pytest.mark.parametrize(
    "adr", sorted(p.relative_to(DOCS).as_posix() for p in (DOCS / "adr").glob("*.md"))
)
def test_every_adr_is_in_the_nav(adr: str) -> None:
    assert adr in _nav()


def test_every_page_is_in_the_nav() -> None:
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages - _nav() == set()


def test_the_nav_names_only_pages_that_exist() -> None:
    assert {page for page in _nav() if not (DOCS / page).is_file()} == set()


def test_the_adr_index_links_every_adr() -> None:
    index = (DOCS / "adr" / "index.md").read_text()
    adrs = {p.name for p in (DOCS / "adr").glob("[0-9]*.md")}
    assert {name for name in adrs if f"]({name})" not in index} == set()


# --- the package map -----------------------------------------------------------------------


def _package_folders() -> list[str]:
    return sorted(
        p.name
        for p in PACKAGE.iterdir()
        if p.is_dir() and not p.name.startswith(("_", ".")) and not p.name.endswith(".egg-info")
    )


@pytest.mark.parametrize("folder", _package_folders())
def test_every_package_folder_is_on_the_map(folder: str) -> None:
    assert f"`{folder}/`" in MAP_PAGE.read_text()


@pytest.mark.parametrize("module", sorted(p.name for p in PACKAGE.glob("[!_]*.py")))
def test_every_root_module_is_on_the_map(module: str) -> None:
    assert f"`{module}`" in MAP_PAGE.read_text()


def test_the_map_names_no_package_that_is_gone() -> None:
    named = set(re.findall(r"^\| `([a-z_]+)/` \|", MAP_PAGE.read_text(), re.MULTILINE))
    assert named - set(_package_folders()) == set()


# --- paths named in the docs ---------------------------------------------------------------

_PY_PATH = re.compile(r"(?<![\w/.*-])((?:[A-Za-z_][\w-]*/)+[A-Za-z_]\w*\.py)\b")


def _resolves(path: str, page: Path) -> bool:
    """A path a page names exists in the repository, inside the package, or relative to a
    package folder the page is about (``live/relay.py`` = ``gql_inventory/live/relay.py``)."""
    return any((base / path).exists() for base in (ROOT, PACKAGE, page.parent, *PACKAGE.glob("*/")))


def test_docs_name_no_module_that_is_gone() -> None:
    pages = [README, *sorted(DOCS.rglob("*.md"))]
    stale = [
        f"{page.relative_to(ROOT)}: {path}"
        for page in pages
        for path in sorted(set(_PY_PATH.findall(page.read_text())))
        if not _resolves(path, page)
    ]
    assert stale == []


# --- the README as a front door ------------------------------------------------------------


def test_the_readme_is_a_front_door_under_8500_bytes() -> None:
    assert len(README.read_bytes()) < README_MAX_BYTES


def test_the_readme_starts_with_the_two_commands() -> None:
    """Title, one paragraph, then a shell block whose first two commands are `make run`
    and `make test`."""
    blocks = README.read_text().split("\n\n")
    assert blocks[0].startswith("# ")
    paragraph, commands = blocks[1], blocks[2]
    assert paragraph.strip()
    assert not paragraph.startswith(("#", "```", "-", "|"))
    lines = commands.splitlines()
    assert lines[0] == "```sh"
    assert [line.split("#")[0].strip() for line in lines[1:3]] == ["make run", "make test"]


def test_the_readme_says_a_rerun_keeps_existing_stock() -> None:
    text = " ".join(README.read_text().split())
    assert "never changes stock that already exists" in text


def test_the_readme_links_only_pages_that_exist() -> None:
    links = re.findall(r"\]\(((?:docs/)?[\w/.-]+\.(?:md|png|graphql))\)", README.read_text())
    assert links, "the README links the docs"
    assert [link for link in links if not (ROOT / link).is_file()] == []
