"""Review 48p, cligaps 2: `troth policy test` trusted whatever authority the bundle named, and
did not say so: a bundle, a feed and a chain all from a made-up authority were "allowed". The
trusted authority is now chosen by the caller (`--authority`, `--trust`, or, for offline
testing, `--trust-bundle-authority`), and the output (text and --json) names it and why. The
tests were strict xfails until then."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run, run_json
from tests.test_gates_cli import create, desk  # noqa: F401  (the fixture)

ARGS = '{"order_id": "o1", "amount": 20}'


def _test(desk: dict[str, str], *extra: str, code: int = 0, json: bool = True) -> object:  # noqa: F811
    args: tuple[str, ...] = (
        "policy",
        "test",
        "--bundle",
        str(Path(desk["dir"]) / "b1"),
        "--chain",
        desk["chain"],
    )
    args += ("--tool", "refund", "--args", ARGS, *extra)
    return run_json(*args, code=code) if json else run(*args, code=code).stdout


def _feed(desk: dict[str, str]) -> str:  # noqa: F811
    path = str(Path(desk["dir"]) / "acme.feed")
    run("revocations", "show", "--authority", "acme", "--out", path)
    return path


def test_a_feed_alone_does_not_choose_the_authority(desk: dict[str, str]) -> None:  # noqa: F811
    """The made-up-authority case: nothing but the bundle names the authority to trust."""
    create(desk, "admin", "b1", "--revision", "1", "--ttl", "30m")
    refused = _test(desk, "--feed", _feed(desk), code=2)
    assert isinstance(refused, dict)
    assert "--trust-bundle-authority" in refused["message"]


def test_trusting_the_bundles_authority_is_said(desk: dict[str, str]) -> None:  # noqa: F811
    create(desk, "admin", "b1", "--revision", "1", "--ttl", "30m")
    feed = _feed(desk)
    allowed = _test(desk, "--feed", feed, "--trust-bundle-authority")
    assert isinstance(allowed, dict)
    assert allowed["allowed"] is True
    assert allowed["authority"] == {"identifier": desk["authority"], "trusted_by": "bundle"}
    text = _test(desk, "--feed", feed, "--trust-bundle-authority", json=False)
    assert isinstance(text, str)
    assert "allowed by policy refund" in text
    assert f"authority acme ({desk['authority']}) trusted because the bundle names it" in text
    assert "--trust-bundle-authority" in text


def test_a_named_authority_is_said_and_must_have_signed(desk: dict[str, str]) -> None:  # noqa: F811
    create(desk, "admin", "b1", "--revision", "1", "--ttl", "30m")
    feed = _feed(desk)
    by_trust = _test(desk, "--feed", feed, "--trust", "acme")
    assert isinstance(by_trust, dict)
    assert by_trust["authority"] == {"identifier": desk["authority"], "trusted_by": "--trust"}
    by_authority = _test(desk, "--authority", "acme")
    assert isinstance(by_authority, dict)
    assert by_authority["authority"] == {
        "identifier": desk["authority"],
        "trusted_by": "--authority",
    }
    text = _test(desk, "--authority", "acme", json=False)
    assert isinstance(text, str)
    assert f"authority acme ({desk['authority']}) trusted because --authority names it" in text
    other = run_json("authority", "create", "other")["identifier"]
    refused = _test(desk, "--feed", feed, "--trust", other, code=1)  # acme's feed: not trusted
    assert isinstance(refused, dict)
    assert "not a trusted authority" in refused["message"]
    other_feed = str(Path(desk["dir"]) / "other.feed")
    run("revocations", "show", "--authority", "other", "--out", other_feed)
    refused = _test(desk, "--feed", other_feed, "--trust", other, code=1)  # signed under acme
    assert isinstance(refused, dict)
    assert refused["reason"] == "the bundle's authority is not trusted"
    assert refused["detail"] == desk["authority"]


def test_trust_options_conflict(desk: dict[str, str]) -> None:  # noqa: F811
    """`--trust-bundle-authority` with `--trust` or `--authority` is a usage error, as is a
    `--trust` that differs from `--authority`."""
    create(desk, "admin", "b1", "--revision", "1", "--ttl", "30m")
    feed = _feed(desk)
    _test(desk, "--feed", feed, "--trust", "acme", "--trust-bundle-authority", code=2)
    _test(desk, "--authority", "acme", "--trust-bundle-authority", code=2)
    other = run_json("authority", "create", "other")["identifier"]
    differ = _test(desk, "--authority", "acme", "--trust", other, code=2)
    assert isinstance(differ, dict)
    assert differ["message"] == "--trust and --authority name different authorities"
