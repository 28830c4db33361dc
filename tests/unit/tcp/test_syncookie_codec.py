"""SYN cookies (RFC 4987 §3.6): round trip, expiry, forgery, determinism, TSval bits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.rng import SeededRandom
from simtcp.tcp.syncookie_codec import COOKIE_SLOT, CookieOptions, SynCookies

LOCAL, LPORT, REMOTE, RPORT = 0x0A000001, 80, 0x0A000002, 40000
TUPLE = {"local": LOCAL, "local_port": LPORT, "remote": REMOTE, "remote_port": RPORT}
PEER_ISN = 0xFFFF_FFFF  # the ACK's SEQ wraps to 0


def _cookie(cookies: SynCookies, mss: int = 1460, now: int = 0) -> int:
    return cookies.isn(**TUPLE, peer_isn=PEER_ISN, mss=mss, now=now)


def _check(
    cookies: SynCookies, cookie: int, now: int, tsecr: int | None = None, **changes: int
) -> CookieOptions | None:
    fields = dict(TUPLE, **changes)
    return cookies.validate(
        **fields,
        seg_seq=(PEER_ISN + 1) & 0xFFFF_FFFF,
        seg_ack=(cookie + 1) & 0xFFFF_FFFF,
        tsecr=tsecr,
        now=now,
    )


def test_round_trip_recovers_the_mss() -> None:
    cookies = SynCookies(SeededRandom(7))
    for mss, expected in (
        (1460, 1460),
        (1500, 1460),
        (1448, 1440),
        (1400, 1300),
        (600, 536),
        (100, 536),
    ):
        cookie = _cookie(cookies, mss, now=5 * COOKIE_SLOT + 3)
        result = _check(cookies, cookie, now=5 * COOKIE_SLOT + 10)
        assert result == CookieOptions(
            mss=expected, window_shift=None, sack_permitted=False, timestamps=False
        )


def test_cookie_expires_after_two_slots() -> None:
    cookies = SynCookies(SeededRandom(7))
    made_at = 10 * COOKIE_SLOT + 5
    cookie = _cookie(cookies, now=made_at)
    assert _check(cookies, cookie, now=made_at) is not None
    assert _check(cookies, cookie, now=12 * COOKIE_SLOT + COOKIE_SLOT - 1) is not None
    assert _check(cookies, cookie, now=13 * COOKIE_SLOT) is None
    assert _check(cookies, cookie, now=9 * COOKIE_SLOT) is None  # from the future
    # 32 slots later the 5-bit counter matches again, but the hash covers the full count.
    assert _check(cookies, cookie, now=42 * COOKIE_SLOT + 5) is None


def test_cookie_is_bound_to_the_tuple_and_the_peer_isn() -> None:
    cookies = SynCookies(SeededRandom(7))
    cookie = _cookie(cookies)
    assert _check(cookies, cookie, now=0, remote_port=RPORT + 1) is None
    assert _check(cookies, cookie, now=0, remote=REMOTE + 1) is None
    assert _check(cookies, cookie, now=0, local_port=81) is None
    assert cookies.validate(**TUPLE, seg_seq=5, seg_ack=cookie + 1, tsecr=None, now=0) is None


def test_changing_the_mss_bits_breaks_the_cookie() -> None:
    cookies = SynCookies(SeededRandom(7))
    cookie = _cookie(cookies, mss=536)
    forged = cookie | 3 << 24
    assert _check(cookies, forged, now=0) is None


def test_determinism_per_seed() -> None:
    assert _cookie(SynCookies(SeededRandom(1))) == _cookie(SynCookies(SeededRandom(1)))
    assert _cookie(SynCookies(SeededRandom(1))) != _cookie(SynCookies(SeededRandom(2)))
    other_seed = SynCookies(SeededRandom(2))
    assert _check(other_seed, _cookie(SynCookies(SeededRandom(1))), now=0) is None


def test_timestamp_bits_carry_window_scale_and_sack() -> None:
    cookies = SynCookies(SeededRandom(7))
    cookie = _cookie(cookies)
    tsval = SynCookies.tsval(0x1234_5678, window_shift=7, sack_permitted=True)
    assert tsval <= 0x1234_5678 and 0x1234_5678 - tsval < 64
    assert _check(cookies, cookie, now=0, tsecr=tsval) == CookieOptions(
        mss=1460, window_shift=7, sack_permitted=True, timestamps=True
    )
    no_scale = SynCookies.tsval(0x1234_5678, window_shift=None, sack_permitted=False)
    assert _check(cookies, cookie, now=0, tsecr=no_scale) == CookieOptions(
        mss=1460, window_shift=None, sack_permitted=False, timestamps=True
    )
    capped = SynCookies.tsval(100, window_shift=20, sack_permitted=False)
    assert capped & 0x0F == 14


def test_tsval_never_runs_ahead_even_at_the_wrap() -> None:
    value = SynCookies.tsval(3, window_shift=14, sack_permitted=True)
    assert value & 0x1F == 0x1E
    assert value == 0xFFFF_FFFE
    assert (3 - value) & 0xFFFF_FFFF == 5  # just behind our clock, across 2**32


@given(
    st.integers(min_value=0, max_value=0xFFFF_FFFF), st.integers(min_value=0, max_value=0xFFFF_FFFF)
)
@settings(max_examples=2000, deadline=None)
def test_random_acks_almost_never_validate(seq: int, ack: int) -> None:
    cookies = SynCookies(SeededRandom(99))
    assert (
        cookies.validate(**TUPLE, seg_seq=seq, seg_ack=ack, tsecr=None, now=100 * COOKIE_SLOT)
        is None
    )


def test_a_blind_sweep_of_acks_finds_no_cookie() -> None:
    # A forged ACK passes with probability ~3 * 2**-24 * 4/8; 2**15 tries should find none.
    cookies = SynCookies(SeededRandom(5))
    stream = SeededRandom(6).stream("forger")
    hits = sum(
        cookies.validate(
            **TUPLE, seg_seq=1, seg_ack=stream.getrandbits(32), tsecr=None, now=7 * COOKIE_SLOT
        )
        is not None
        for _ in range(1 << 15)
    )
    assert hits == 0
