"""IPv6 on a bad link: DAD never mistakes loss, duplication, reordering or corruption for a
conflict, neighbours resolve through it, and ping6 gets through; the same seed, the same run."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.backends.sim import LinkProfile, Simulator
from simtcp.config import StackConfig
from simtcp.events import EchoReplyReceived
from simtcp.stack import Stack

SECOND = 1_000_000


def _run(
    seed: int, profile: LinkProfile
) -> tuple[list[tuple[int, int]], dict[str, int], dict[str, int]]:
    sim = Simulator(seed)
    stacks = []
    for number in (1, 2):
        stack = Stack(StackConfig(seed=seed * 10 + number))
        stack.add_interface("eth0", mac=f"02:00:00:00:00:0{number}", now=0)
        stack.add_address("eth0", f"2001:db8::{number}/64", now=0)
        sim.add_host(f"h{number}", stack)
        stacks.append(stack)
    sim.connect(("h1", "eth0"), ("h2", "eth0"), profile)
    sim.run_for(4 * SECOND)
    a, b = stacks
    replies: list[tuple[int, int]] = []
    for sequence in range(20):
        a.ping("2001:db8::2", identifier=1, sequence=sequence, payload=b"abc", now=sim.now)
        sim.run_for(SECOND // 2)
        while (event := a.next_event()) is not None:
            if isinstance(event, EchoReplyReceived):
                replies.append((event.sequence, sim.now))
    return replies, a.stats(), b.stats()


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**16),
    st.floats(0, 0.3),
    st.floats(0, 0.3),
    st.floats(0, 0.3),
    st.floats(0, 0.05),
)
def test_dad_and_nd_survive_a_bad_link(
    seed: int, loss: float, duplicate: float, reorder: float, corrupt: float
) -> None:
    profile = LinkProfile(
        loss=loss, duplicate=duplicate, reorder=reorder, corrupt=corrupt, delay=1_000
    )
    replies, a, b = _run(seed, profile)
    for stats in (a, b):
        assert stats.get("nd.dad_conflicts", 0) == 0  # our own probes never come back to us
        assert stats["nd.dad_completed"] == 2
    assert replies, (a, b)  # 20 tries at most 30% loss each way: one gets through
    assert _run(seed, profile)[0] == replies  # deterministic from the seed
