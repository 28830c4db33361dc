"""SYN-cookie clients that meet a full accept queue or lose their first segment get in.

RFC 4987 §3.6: a listener past its backlog answers SYNs with cookies and keeps
no state. The cookie binds the client's ISN, which only the segment at ISN + 1
carries. Two ways a burst of clients used to be reset (RFC 9293 §3.10.7.2's
"ACK to LISTEN") instead of getting in:

- a valid cookie ACK arriving while the accepted-but-unclaimed connections
  fill the backlog (now dropped and counted, like Linux with
  tcp_abort_on_overflow=0; a later retransmission gets in);
- a later segment of a cookie client (SEQ past ISN + 1) whose cookie check
  must fail (now dropped silently while the listener's cookies can still come
  back and the ACK has a cookie's shape; the client retransmits from ISN + 1).
"""

from __future__ import annotations

from simtcp.events import ConnectionAccepted
from simtcp.rng import SeededRandom
from simtcp.tcp import TcpConfig
from simtcp.tcp.syncookie_codec import COOKIE_SLOT, MAX_REMEMBERED_LISTENERS, SynCookies
from simtcp.time import SECOND
from simtcp.wire.tcp import ACK, PSH, SYN, MssOption, TcpSegment, flags_to_str

from .harness import A_ADDR, B_ADDR, Endpoint

CONFIG = TcpConfig(timestamps=False, window_scaling=False)
MASK = 0xFFFFFFFF


class Listening:
    """The layer at B_ADDR:80 with backlog 2: one client accepted (unclaimed), two half-open.

    New SYNs get cookies (the SYN queue is full, the accept queue is not); once a
    half-open client completes, the accept queue is full too.
    """

    def __init__(self) -> None:
        self.endpoint = Endpoint(B_ADDR, CONFIG, seed=3)
        self.layer = self.endpoint.layer
        self.host = self.endpoint.host
        self.layer.listen(80, backlog=2)
        self.first = self.handshake(5000, 100, now=0)
        syn_ack = self.deliver(TcpSegment(4999, 80, 500, 0, SYN, 65535, (MssOption(1460),)), now=0)
        self.second_ack = (syn_ack[0].seq + 1) & MASK
        # A third client, half-open too: the SYN queue (bounded by the backlog) is full.
        self.deliver(TcpSegment(4998, 80, 700, 0, SYN, 65535, (MssOption(1460),)), now=0)

    def handshake(self, port: int, isn: int, *, now: int) -> int:
        syn_ack = self.deliver(
            TcpSegment(port, 80, isn, 0, SYN, 65535, (MssOption(1460),)), now=now
        )
        self.deliver(
            TcpSegment(port, 80, isn + 1, (syn_ack[0].seq + 1) & MASK, ACK, 65535), now=now
        )
        accepted = [e for e in self.host.take_events() if isinstance(e, ConnectionAccepted)]
        assert len(accepted) == 1
        return accepted[0].connection

    def fill_accept_queue(self, *, now: int) -> None:
        """The half-open client completes: two accepted, unclaimed connections."""
        self.deliver(TcpSegment(4999, 80, 501, self.second_ack, ACK, 65535), now=now)
        assert len([e for e in self.host.take_events() if isinstance(e, ConnectionAccepted)]) == 1

    def deliver(self, segment: TcpSegment, *, now: int) -> list[TcpSegment]:
        self.layer.segment_received(A_ADDR, B_ADDR, segment, now=now)
        return self.host.take_sent()

    def cookie_for(self, port: int, isn: int, *, now: int) -> int:
        replies = self.deliver(
            TcpSegment(port, 80, isn, 0, SYN, 65535, (MssOption(1460),)), now=now
        )
        assert [flags_to_str(r.flags) for r in replies] == ["S."]
        return replies[0].seq


def test_a_valid_cookie_ack_meeting_a_full_accept_queue_is_dropped_then_gets_in() -> None:
    listening = Listening()
    cookie = listening.cookie_for(5001, 2000, now=1000)
    assert listening.host.stats["tcp.syn_cookies_sent"] == 1
    listening.fill_accept_queue(now=1500)
    ack = (cookie + 1) & MASK
    assert listening.deliver(TcpSegment(5001, 80, 2001, ack, ACK, 65535), now=2000) == []
    assert listening.host.stats["drop.tcp_backlog_full"] == 1
    assert listening.layer.connection_count() == 3
    listening.layer.receive(listening.first, now=3000)  # the application takes the first
    replies = listening.deliver(
        TcpSegment(5001, 80, 2001, ack, ACK | PSH, 65535, (), b"hello"), now=4000
    )
    assert listening.host.stats["tcp.syn_cookies_accepted"] == 1
    assert listening.layer.connection_count() == 4
    accepted = [e for e in listening.host.take_events() if isinstance(e, ConnectionAccepted)]
    assert len(accepted) == 1
    assert listening.layer.receive(accepted[0].connection, now=4000) == b"hello"
    assert all(not r.flags & 0x04 for r in replies)  # no RST


def test_a_later_segment_of_a_cookie_client_is_dropped_and_its_first_gets_in() -> None:
    listening = Listening()
    cookie = listening.cookie_for(5003, 9000, now=0)
    ack = (cookie + 1) & MASK
    # The handshake's ACK and the first data segment were lost; the second arrives.
    late = TcpSegment(5003, 80, 9001 + 1000, ack, ACK | PSH, 65535, (), b"y" * 500)
    assert listening.deliver(late, now=5000) == []
    assert listening.host.stats["tcp.syn_cookie_acks_dropped"] == 1
    assert listening.host.stats["drop.tcp_no_connection"] == 1
    # The client's retransmission from ISN + 1 validates.
    first = TcpSegment(5003, 80, 9001, ack, ACK, 65535, (), b"x" * 1000)
    replies = listening.deliver(first, now=205_000)
    assert [flags_to_str(r.flags) for r in replies] in ([], ["."])
    assert listening.host.stats["tcp.syn_cookies_accepted"] == 1
    accepted = [e for e in listening.host.take_events() if isinstance(e, ConnectionAccepted)]
    assert [listening.layer.info(e.connection).remote_port for e in accepted] == [5003]
    assert listening.layer.receive(accepted[0].connection, now=205_000) == b"x" * 1000


def test_acks_that_cannot_be_cookies_are_still_reset() -> None:
    listening = Listening()
    cookie = listening.cookie_for(5004, 3000, now=0)
    not_shaped = (7 << 24) + 1  # MSS index 7: no cookie of ours
    replies = listening.deliver(TcpSegment(5004, 80, 3001, not_shaped, ACK, 65535), now=10)
    assert [flags_to_str(r.flags) for r in replies] == ["R"]
    # Once the listener's last cookie can no longer validate, RFC 9293 §3.10.7.2 again.
    later = 4 * COOKIE_SLOT
    shaped = ((later // COOKIE_SLOT & 0x1F) << 27 | 3 << 24 | 0x123456) + 1
    assert SynCookies(SeededRandom(0)).looks_like_cookie(shaped, now=later)
    replies = listening.deliver(TcpSegment(5004, 80, 3500, shaped, ACK, 65535), now=later)
    assert [flags_to_str(r.flags) for r in replies] == ["R"]
    assert listening.host.stats["tcp.syn_cookie_acks_dropped"] == 0
    assert cookie != shaped - 1


def test_a_listener_that_never_sent_cookies_resets_a_cookie_shaped_ack() -> None:
    endpoint = Endpoint(B_ADDR, CONFIG, seed=3)
    endpoint.layer.listen(80)
    shaped = (3 << 24 | 0x654321) + 1  # slot 0, MSS index 3
    endpoint.layer.segment_received(
        A_ADDR, B_ADDR, TcpSegment(5005, 80, 1, shaped, ACK, 100), now=0
    )
    assert [flags_to_str(s.flags) for s in endpoint.host.take_sent()] == ["R"]


def test_cookie_memory_per_listener_is_bounded_and_expires() -> None:
    cookies = SynCookies(SeededRandom(1))
    assert cookies.lifetime == 3 * COOKIE_SLOT
    cookies.note_sent(local=B_ADDR, local_port=80, now=0)
    assert cookies.recently_sent(local=B_ADDR, local_port=80, now=3 * COOKIE_SLOT)
    assert not cookies.recently_sent(local=B_ADDR, local_port=80, now=3 * COOKIE_SLOT + 1)
    assert not cookies.recently_sent(local=B_ADDR, local_port=81, now=0)
    for port in range(1, 2 * MAX_REMEMBERED_LISTENERS):
        cookies.note_sent(local=A_ADDR, local_port=port, now=port * SECOND)
    assert len(cookies._sent_at) <= MAX_REMEMBERED_LISTENERS
    last = 2 * MAX_REMEMBERED_LISTENERS - 1
    assert cookies.recently_sent(local=A_ADDR, local_port=last, now=last * SECOND)


def test_cookie_shape_needs_a_used_mss_index_and_a_live_slot() -> None:
    cookies = SynCookies(SeededRandom(1))
    now = 10 * COOKIE_SLOT
    real = cookies.isn(
        local=B_ADDR, local_port=80, remote=A_ADDR, remote_port=9, peer_isn=5, mss=1460, now=now
    )
    assert cookies.looks_like_cookie((real + 1) & MASK, now=now)
    assert cookies.looks_like_cookie((real + 1) & MASK, now=now + 2 * COOKIE_SLOT)
    assert not cookies.looks_like_cookie((real + 1) & MASK, now=now + 3 * COOKIE_SLOT)
    assert not cookies.looks_like_cookie((real | 4 << 24) + 1, now=now)  # index 4 unused
