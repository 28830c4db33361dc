"""SYN cookies at a full listener (RFC 4987 §3.6): the stateless SYN-ACK, the TCB it restores.

The cookie arithmetic lives in :mod:`.syncookie_codec`; this module builds the
SYN-ACK a full listener sends instead of keeping state (RFC 4987 §3.6) and
fills a fresh connection from what the handshake's final ACK proves. The
LISTEN -> ESTABLISHED transition itself is a row of :mod:`.machine`, taken
by :func:`.handshake.become_established`.
"""

from __future__ import annotations

from ..rng import SeededRandom
from ..time import Instant
from ..wire.address import Address
from ..wire.tcp import (
    ACK,
    SYN,
    MssOption,
    NopOption,
    SackPermittedOption,
    TcpOption,
    TcpSegment,
    TimestampsOption,
    WindowScaleOption,
)
from . import congestion
from .config import TcpConfig, window_shift
from .connection import Connection
from .family import default_mss, ip_tcp_headers
from .host import TcpHost
from .options import TimestampClock, send_mss
from .rack import RackTlp
from .sack import SackReceiver, SackScoreboard
from .seq import SEQ_MASK
from .syncookie_codec import CookieOptions, SynCookies

_NOP = NopOption()
DEFAULT_MSS = 536


def send_cookie_syn_ack(
    host: TcpHost,
    cookies: SynCookies,
    rng: SeededRandom,
    config: TcpConfig,
    *,
    local: Address,
    remote: Address,
    mtu: int,
    segment: TcpSegment,
    now: Instant,
) -> None:
    """Answer ``segment`` (a SYN from ``remote``) with a SYN-ACK whose ISN is a cookie."""
    our_mss = min(config.mss, mtu - ip_tcp_headers(remote))
    peer_mss = segment.mss or default_mss(remote)
    local_port, remote_port = segment.destination_port, segment.source_port
    isn = cookies.isn(
        local=local,
        local_port=local_port,
        remote=remote,
        remote_port=remote_port,
        peer_isn=segment.seq,
        mss=min(peer_mss, our_mss),
        now=now,
    )
    options: tuple[TcpOption, ...] = (MssOption(our_mss),)
    timestamps = segment.timestamps
    if timestamps is not None and config.timestamps:
        # Window scale and SACK survive only inside the TSval (see syncookie_codec).
        sack = config.sack and segment.sack_permitted
        shift = segment.window_scale if config.window_scaling else None
        if sack:
            options += (_NOP, _NOP, SackPermittedOption())
        if shift is not None:
            options += (_NOP, WindowScaleOption(window_shift(config)))
        clock = TimestampClock.for_connection(rng, local, local_port, remote, remote_port)
        tsval = SynCookies.tsval(clock.tsval(now), window_shift=shift, sack_permitted=sack)
        options += (_NOP, _NOP, TimestampsOption(tsval, timestamps.value))
    reply = TcpSegment(
        local_port,
        remote_port,
        isn,
        (segment.seq + 1) & SEQ_MASK,
        SYN | ACK,
        min(config.receive_buffer, 0xFFFF),
        options,
    )
    host.send_tcp(local, remote, reply, now=now)


def check_cookie(
    cookies: SynCookies, *, local: Address, remote: Address, segment: TcpSegment, now: Instant
) -> CookieOptions | None:
    """What a handshake-completing ACK's cookie restores, or None if it is not ours."""
    timestamps = segment.timestamps
    return cookies.validate(
        local=local,
        local_port=segment.destination_port,
        remote=remote,
        remote_port=segment.source_port,
        seg_seq=segment.seq,
        seg_ack=segment.ack,
        tsecr=timestamps.echo_reply if timestamps is not None else None,
        now=now,
    )


def restore(conn: Connection, restored: CookieOptions, segment: TcpSegment, now: Instant) -> None:
    """Fill ``conn`` (ISN = the cookie) as if SYN, SYN-ACK and this ACK had been exchanged."""
    config = conn.config
    conn.irs = (segment.seq - 1) & SEQ_MASK
    conn.rcv_nxt = conn.irs + 1
    conn.last_ack_sent = conn.rcv_nxt
    conn.rcv_adv = conn.rcv_nxt + min(config.receive_buffer, 0xFFFF)
    conn.snd_una = conn.snd_nxt = conn.snd_max = conn.iss + 1
    timestamps = segment.timestamps
    conn.ts_ok = restored.timestamps and timestamps is not None
    if conn.ts_ok and timestamps is not None:
        conn.ts.learn_from_syn(timestamps.value, now)
    if restored.window_shift is not None:
        conn.offered_wscale = window_shift(config)
        conn.snd_wscale = restored.window_shift
        conn.rcv_wscale = conn.offered_wscale
    else:
        conn.offered_wscale = -1
    conn.snd_mss = send_mss(restored.mss, conn.rcv_mss, conn.ts_ok)
    conn.sack_ok = restored.sack_permitted and config.sack
    if conn.sack_ok:
        conn.sack_receiver = SackReceiver()
        conn.scoreboard = SackScoreboard(snd_una=conn.snd_una, mss=conn.snd_mss)
        if config.rack:
            conn.rack = RackTlp()
    conn.cc = congestion.create(
        config.congestion_control,
        mss=conn.snd_mss,
        initial_window_segments=config.initial_window_segments,
    )
    conn.snd_wnd = conn.max_snd_wnd = segment.window << conn.snd_wscale
    conn.snd_wl1 = conn.rcv_nxt
    conn.snd_wl2 = conn.snd_una
