"""Review 29b, settings 1: `TROTH_CHANNELS_*` values that break every channel were still taken
at start (docs/protocols.md, "Load limits": "the settings refuse every value that would break
each connection or turn a defence off ... a timeout ... that is not positive").

Review 28a (settings 1) checked the TCP settings, the backoff and two channel timers; the rest
of `ChannelLimits` was taken as given:

- `REASSEMBLY_TIMEOUT` 0 or below: the reassembler gives up every incomplete message at each
  fragment's arrival (`now - started >= timeout`), so no message longer than one channel frame
  ever arrives (an echo of 200,000 bytes went unanswered; one of 100 bytes was answered);
- `MAX_HALF_OPEN` 0: each message 1 raised IndexError in the manager (a `most_common` of no
  handshakes), logged as "a message failed": no channel to the node ever opened;
- `MAX_HALF_OPEN_PER_SOURCE`, `MAX_CHANNELS_PER_SOURCE` 0: every handshake refused;
  `MAX_CHANNELS_PER_PEER` 0: every peer refused ("peer not allowed").

Was a strict xfail until `ChannelLimits` refused a count limit below 1 and a reassembly timeout
that is not positive (ConfigError naming the field, from the environment).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from troth.errors import ConfigError
from troth.node.channels import ChannelLimits
from troth.transport.settings import TcpSettings


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REASSEMBLY_TIMEOUT", "0"),
        ("REASSEMBLY_TIMEOUT", "-60"),
        ("MAX_HALF_OPEN", "0"),
        ("MAX_HALF_OPEN_PER_SOURCE", "0"),
        ("MAX_CHANNELS_PER_SOURCE", "0"),
        ("MAX_CHANNELS_PER_PEER", "-1"),
        ("MAX_CHANNELS_PER_MEMBER", "0"),  # review 43a's
    ],
)
def test_a_channel_limit_that_breaks_every_channel_is_refused_at_start(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        ChannelLimits.from_environment({f"TROTH_CHANNELS_{name}": value})
    assert name.lower() in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REASSEMBLY_TIMEOUT", "1"),
        ("MAX_HALF_OPEN", "1"),
        ("MAX_CHANNELS_PER_PEER", "1"),
        ("MAX_CHANNELS_PER_MEMBER", "1"),
    ],
)
def test_the_least_working_channel_limits_are_taken(name: str, value: str) -> None:
    limits = ChannelLimits.from_environment({f"TROTH_CHANNELS_{name}": value})
    assert getattr(limits, name.lower()) == int(value)


@pytest.mark.parametrize(
    "load", [ChannelLimits.from_environment, TcpSettings.from_environment], ids=["channels", "tcp"]
)
def test_no_reply_paths_is_refused_at_start(load: Callable[[dict[str, str]], object]) -> None:
    """Settings 2: `MAX_REPLY_PATHS` 0 (`TROTH_CHANNELS_` or `TROTH_TCP_`) was taken at start,
    then every channel end (each message 1: "a message failed") or every TCP connection failed
    as it was made: an allow-set keeps at least one reply path (`AllowSet`, ValueError).

    Was a strict xfail until `ChannelLimits` and `TcpSettings` refused it at start."""
    prefix = "TROTH_CHANNELS_" if load == ChannelLimits.from_environment else "TROTH_TCP_"
    with pytest.raises(ConfigError) as caught:
        load({f"{prefix}MAX_REPLY_PATHS": "0"})
    assert "max_reply_paths" in str(caught.value)


def test_a_huge_whole_number_is_a_config_error() -> None:
    """Settings 3: review 28a's finite check (`math.isfinite`) was applied to whole numbers too,
    which it converts to float: a value past a float's range (`TROTH_TCP_MAX_CONNECTIONS` of 400
    digits) raised OverflowError, a traceback at `python -m troth.node` where every other bad
    value is a ConfigError naming the variable (the node does not start either way).

    Was a strict xfail until the finite check applied to floats only (a whole number is
    finite), so the settings judge the value as any other."""
    huge = "1" + "0" * 400
    limits = TcpSettings.from_environment({"TROTH_TCP_MAX_CONNECTIONS": huge})
    assert limits.max_connections == int(huge)  # as before review 28a: a bound no one meets
    with pytest.raises(ConfigError) as caught:
        TcpSettings.from_environment({"TROTH_TCP_MAX_CONNECTIONS": "-" + huge})
    assert "connection limits must be at least 1" in str(caught.value)
