"""The API reference: every public name (troth.__all__) and each public method and property
of the public classes has a docstring, and docs/api holds what docs/api/generate.py writes
from them (pdoc), so the committed reference cannot drift from the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import troth

pytest.importorskip("pdoc", reason="pdoc is in the dev extra (make test installs it)")
from pdoc import doc as pdoc_doc

ROOT = Path(__file__).resolve().parent.parent
API_DOCS = ROOT / "docs" / "api"


def _module() -> pdoc_doc.Module:
    for name in troth.__all__:  # imported on first use: load them as docs/api/generate.py does
        getattr(troth, name)
    return pdoc_doc.Module(troth)


def _undocumented() -> list[str]:
    module = _module()
    missing = [name for name, member in module.members.items() if not member.docstring.strip()]
    for name, member in module.members.items():
        if not isinstance(member, pdoc_doc.Class) or issubclass(member.obj, Exception):
            continue
        for own in member.own_members:
            if own.name.startswith("_") or isinstance(own, pdoc_doc.Variable):
                continue  # fields: documented where the class is ours (below)
            if not own.docstring.strip():
                missing.append(f"{name}.{own.name}")
        if member.obj.__module__.startswith("troth._api"):
            missing += [
                f"{name}.{own.name}"
                for own in member.own_members
                if isinstance(own, pdoc_doc.Variable)
                and not own.name.startswith("_")
                and not own.docstring.strip()
            ]
    return missing


def test_every_public_name_and_member_has_a_docstring() -> None:
    assert set(_module().members) == set(troth.__all__)
    assert _undocumented() == []


def test_the_reference_in_docs_api_is_current(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(API_DOCS / "generate.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    generated = sorted(p.name for p in tmp_path.iterdir())
    assert generated == sorted(p.name for p in API_DOCS.glob("*.html"))
    stale = [n for n in generated if (tmp_path / n).read_bytes() != (API_DOCS / n).read_bytes()]
    assert stale == [], "docs/api is out of date: run `make docs` and commit it"


def test_help_troth_shows_the_guide_and_the_public_names() -> None:
    import pydoc

    text = pydoc.render_doc(troth, renderer=pydoc.plaintext)  # type: ignore[attr-defined]
    assert "troth.Verifier(trust=[acme.identifier], feeds=acme)" in text
    for name in ("Node", "Verifier", "Service", "CredentialError"):
        assert f"class {name}" in text


def test_the_example_in_troths_docstring_runs() -> None:
    import textwrap

    doc = troth.__doc__ or ""
    example = textwrap.dedent(doc.split("import troth", 1)[1].split("Networking is", 1)[0])
    scope: dict[str, object] = {}
    exec(compile("import troth\n" + example, "troth.__doc__", "exec"), scope)  # noqa: S102
    verified = scope["verified"]
    assert isinstance(verified, troth.VerifiedCredential)
    assert verified.attributes == troth.Attributes({"orders.access": "read"})
