"""Review 28a, settings 1: load-limit settings that break every connection, or turn a defence
off, were accepted from the environment without a word (docs/protocols.md, "Load limits").

Review 27a made `TROTH_TCP_MAX_QUEUED_PER_SOURCE` default to a share of the total and checked
the queue bounds against each other (a ConfigError naming them). The other settings read the
same way (`settings_from_environment`: `TROTH_TCP_*`, `TROTH_CHANNELS_*`,
`TROTH_RECONNECT_*`) were checked for being a number only, or for `<= 0`, which a NaN passes:

- `TROTH_TCP_MAX_QUEUED_FRAMES=1` (or 0): a connection pauses reading at that many frames and
  resumes below half of it, 0: it never reads again once paused (every peer hangs up to its
  idle timeout);
- `TROTH_TCP_WRITE_BUFFER=-5`: asyncio refuses the write limits as each connection is made
  (every connection fails);
- `TROTH_TCP_SMALL_READ_BUFFER=0`: the frame reader refuses its sizes as each connection is
  made (every connection fails);
- `TROTH_TCP_WRITE_TIMEOUT=nan`: a timer set to NaN seconds fires at once, so a connection
  whose write buffer fills once is dropped as not reading; `TROTH_TCP_STALL_TIMEOUT=inf`: a
  stalled peer is never found, its queue held until the write timeout;
- `TROTH_TCP_EVICT_IDLE_AFTER=-1`: at the connection limit any idle connection is evicted;
- `TROTH_CHANNELS_REASSEMBLY_SWEEP=0`: the channels' sweep re-arms itself with no delay, a loop
  that takes the CPU; `TROTH_CHANNELS_HANDSHAKE_TIMEOUT=0`: every handshake expires as it
  starts;
- `TROTH_RECONNECT_BASE=nan`: a NaN wait ends at once, a link reconnects with no backoff.

Was a strict xfail until `settings_from_environment` refused a value that is not a finite
number, and `TcpSettings`, `ChannelLimits` and `Backoff` refused the values above (a
ConfigError at start naming the setting).
"""

from __future__ import annotations

import pytest

from troth.errors import ConfigError
from troth.node.channels import ChannelLimits
from troth.node.links import Backoff
from troth.transport.settings import TcpSettings

CASES = [
    (TcpSettings, "TROTH_TCP_MAX_QUEUED_FRAMES", "1", "max_queued_frames"),
    (TcpSettings, "TROTH_TCP_MAX_QUEUED_FRAMES", "0", "max_queued_frames"),
    (TcpSettings, "TROTH_TCP_WRITE_BUFFER", "-5", "write_buffer"),
    (TcpSettings, "TROTH_TCP_SMALL_READ_BUFFER", "0", "read_buffer"),
    (TcpSettings, "TROTH_TCP_WRITE_TIMEOUT", "nan", "not a finite number"),
    (TcpSettings, "TROTH_TCP_STALL_TIMEOUT", "inf", "not a finite number"),
    (TcpSettings, "TROTH_TCP_EVICT_IDLE_AFTER", "-1", "evict_idle_after"),
    (TcpSettings, "TROTH_TCP_LOG_LINES_PER_MINUTE", "-3", "log_lines_per_minute"),
    (ChannelLimits, "TROTH_CHANNELS_REASSEMBLY_SWEEP", "0", "reassembly_sweep"),
    (ChannelLimits, "TROTH_CHANNELS_HANDSHAKE_TIMEOUT", "0", "handshake_timeout"),
    (Backoff, "TROTH_RECONNECT_BASE", "nan", "not a finite number"),
]


@pytest.mark.parametrize(("cls", "variable", "value", "named"), CASES)
def test_a_setting_that_breaks_connections_is_refused_at_start(
    cls: type[TcpSettings | ChannelLimits | Backoff], variable: str, value: str, named: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        cls.from_environment({variable: value})
    assert named in str(refused.value)


def test_the_defaults_and_sound_values_are_accepted() -> None:
    """What the checks must not refuse: the defaults, and the smallest sound values."""
    TcpSettings.from_environment({})
    TcpSettings.from_environment(
        {
            "TROTH_TCP_MAX_QUEUED_FRAMES": "2",
            "TROTH_TCP_WRITE_BUFFER": "1",
            "TROTH_TCP_EVICT_IDLE_AFTER": "0",
            "TROTH_TCP_LOG_LINES_PER_MINUTE": "0",
            "TROTH_TCP_WRITE_TIMEOUT": "0.5",
        }
    )
    ChannelLimits.from_environment({"TROTH_CHANNELS_REASSEMBLY_SWEEP": "0.5"})
    Backoff.from_environment({"TROTH_RECONNECT_BASE": "0.1"})
