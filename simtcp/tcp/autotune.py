"""Buffers sized for the path: send- and receive-buffer auto-tuning (issue 15).

Both are on by default, with ceilings above Linux's (``TcpConfig.send_buffer_max``
8 MiB, ``receive_buffer_max`` 16 MiB; Linux's ``tcp_wmem`` / ``tcp_rmem`` maxima of
4 MiB / 6 MiB cannot fill 1 Gbit/s at 40 ms with one stream; see the fields):

- **receive** (dynamic right-sizing, Linux's ``tcp_rcv_space_adjust``): once per
  RTT the receiver looks at what the application read in that RTT -- the rate
  the sender achieved -- and grows the buffer toward four times that, so the
  window it offers stays ahead of the sender's congestion window and can cover
  the path's bandwidth-delay product. A slow reader never grows it.
- **send** (Linux's ``tcp_sndbuf_expand``): when the application finds the
  send buffer full, the buffer grows toward two congestion windows, so a
  window's worth of data can be in flight while the next is queued.
"""

from __future__ import annotations

from ..time import Instant
from .connection import Connection


def grow_send_buffer(conn: Connection) -> bool:
    """The application found the send buffer full: make room for 2 * cwnd. True if grown."""
    buffer = conn.send_buffer
    limit = conn.config.send_buffer_max
    target = min(2 * max(conn.cc.cwnd, conn.snd_wnd), limit)
    if target <= buffer.capacity:
        return False
    buffer.capacity = target
    conn.host.stats.count("tcp.send_buffer_grown")
    return True


def receive_space_adjust(conn: Connection, copied: int, now: Instant) -> None:
    """The application read ``copied`` bytes: once per RTT, grow the receive buffer
    toward four times what was read in that RTT, at most ``receive_buffer_max``."""
    buffer = conn.receive_buffer
    limit = conn.config.receive_buffer_max
    if buffer.capacity >= limit:
        return
    conn.rcv_space_copied += copied
    srtt = conn.rto.srtt
    if srtt is None or now - conn.rcv_space_at < srtt:
        return
    target = 4 * conn.rcv_space_copied
    if target > buffer.capacity:
        buffer.capacity = min(target, limit)
        conn.host.stats.count("tcp.receive_buffer_grown")
    conn.rcv_space_copied = 0
    conn.rcv_space_at = now
