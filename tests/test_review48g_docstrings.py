"""Public API docstrings (review 48g, docstrings): every class and function each troth package
exports (its `__all__`) has a docstring of its own (tests/test_api_docs.py checks `troth`'s
names and members; this checks every subpackage's: 26 had none), and every reference from the
code to a section of docs/ ("docs/traces.md, "Verification"") names a section that exists (8
named sections renamed or never written)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import troth

ROOT = Path(__file__).resolve().parent.parent
_SUBPACKAGES = pkgutil.walk_packages(troth.__path__, "troth.")
PACKAGES = ["troth", *sorted(info.name for info in _SUBPACKAGES if info.ispkg)]
_OPTIONAL = ("troth.integrations",)  # needs an extra (mcp, otel): skipped when not installed


def _own_docstring(obj: object) -> str:
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    if not isinstance(doc, str):
        return ""
    if inspect.isclass(obj) and re.fullmatch(rf"{obj.__name__}\(.*\)", doc, re.DOTALL):
        return ""  # the signature a dataclass writes in place of a docstring
    return doc.strip()


def _undocumented(package: str) -> list[str]:
    try:
        module = importlib.import_module(package)
    except ImportError:
        if package.startswith(_OPTIONAL):
            pytest.skip(f"{package} needs an extra that is not installed")
        raise
    missing = [] if (module.__doc__ or "").strip() else ["(the package)"]
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not _own_docstring(obj):
            missing.append(f"{name} ({obj.__module__})")
    return missing


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_class_and_function_has_a_docstring(package: str) -> None:
    assert _undocumented(package) == []


def _sections() -> dict[str, set[str]]:
    """Each doc's section titles and its paragraphs' bold leads (`**Proof bundle**`); a
    reference names one, or a part of one's title (`mcp_grantors`, "`http-inject`: ...")."""
    found = {}
    for doc in (ROOT / "docs").glob("*.md"):
        text = doc.read_text()
        titles = {title.strip() for title in re.findall(r"^#+ (.*)$", text, re.MULTILINE)}
        leads = {lead.rstrip(".") for lead in re.findall(r"\*\*([^*\n]+)\*\*", text)}
        found[doc.name] = titles | leads
    return found


def _references() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted((ROOT / "src" / "troth").rglob("*.py")):
        flat = re.sub(r"\s*\n\s*(?:#\s*)?", " ", path.read_text())  # a reference may wrap
        for match in re.finditer(r'docs/(\w+\.md),? "([^"]+)"', flat):
            found.append((str(path.relative_to(ROOT)), match.group(1), match.group(2)))
    return found


def test_the_code_cites_sections_of_docs() -> None:
    assert len(_references()) > 100


@pytest.mark.parametrize(("source", "doc", "section"), _references())
def test_each_section_the_code_cites_exists(source: str, doc: str, section: str) -> None:
    sections = _sections()
    assert doc in sections, f"{source}: no docs/{doc}"
    bare = section.replace("`", "")
    assert any(bare in title.replace("`", "") for title in sections[doc]), (
        f'{source}: docs/{doc} has no section "{section}"'
    )
