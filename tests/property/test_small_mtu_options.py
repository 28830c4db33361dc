"""Every segment fits the MTU, whatever options are on (issue 15; RFC 2018 §3, RFC 6691).

At the IPv4 minimum MTU (68) an ACK carrying timestamps and two SACK blocks
used to exceed the MTU, was dropped locally as "fragment needed", and the
transfer timed out. Invariant: for every combination of window scaling,
timestamps, SACK and RACK, at MTU 68, 96 and 576, under loss and reordering,
the transfer delivers every byte and the stacks drop no frame for its size
(``ip.fragment_needed``-like counters stay zero and the link counts no
``mtu_drops``).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.backends.impair import LinkProfile
from simtcp.config import TcpConfig
from simtcp.programs.transfer import TransferSpec, run_transfer
from simtcp.time import MILLISECOND, SECOND


@settings(max_examples=24, deadline=None)
@given(
    mtu=st.sampled_from([68, 96, 576]),
    window_scaling=st.booleans(),
    timestamps=st.booleans(),
    sack=st.booleans(),
    rack=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_every_option_combination_fits_small_mtus_under_loss(
    mtu: int, window_scaling: bool, timestamps: bool, sack: bool, rack: bool, seed: int
) -> None:
    profile = LinkProfile(
        loss=0.03, reorder=0.05, delay=2 * MILLISECOND, reorder_delay=3 * MILLISECOND
    )
    tcp = TcpConfig(
        window_scaling=window_scaling,
        timestamps=timestamps,
        sack=sack,
        rack=rack and sack,
        max_rto=4 * SECOND,
        data_retries=40,
    )
    spec = TransferSpec(
        bytes=6000 if mtu == 68 else 20_000,
        reverse_bytes=2000,
        seed=seed,
        forward=profile,
        backward=profile,
        mtu=mtu,
        tcp=tcp,
        stall_timeout=300 * SECOND,
    )
    result = run_transfer(spec)
    assert result.ok, (result.reason, result.detail)
    for stats in (result.client_stats, result.server_stats):
        oversized = {k: v for k, v in stats.items() if "frag" in k and "drop" in k and v}
        assert not oversized, oversized
    assert all(link["mtu_drops"] == 0 for link in result.link_stats.values())
