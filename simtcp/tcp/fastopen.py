"""TCP Fast Open (RFC 7413): cookies, the client's cookie cache, the SYN's option and data.

Theory of operation
-------------------

Off by default, as in Linux (``TcpConfig.fast_open_client`` and
``fast_open_server``, the two bits of ``net.ipv4.tcp_fastopen``; a listener
also needs ``fast_open_queue``, the TCP_FASTOPEN socket option's qlen).

* **Client** (RFC 7413 §4.2.1). ``TcpLayer.connect(..., data=...)`` queues
  the data; with a cookie cached for the server its first SYN carries the
  cookie and as much of the data as the server's cached MSS allows, else an
  empty option asks for a cookie and the data waits for the handshake. A
  SYN-ACK's cookie is cached (:class:`CookieCache`). Data the SYN-ACK does not
  acknowledge is sent again at once after the handshake (§4.2.1's fallback);
  a retransmitted SYN carries no data, as Linux's.
* **Server** (RFC 7413 §4.2.2). A SYN asking for a cookie, or with an invalid
  one, gets a SYN-ACK carrying the cookie for the client's address; its data
  is not acknowledged. A valid cookie, while fewer than ``fast_open_queue``
  such connections are still in SYN-RECEIVED, makes the SYN's data
  acknowledged and the connection handed to the application at once
  (``ConnectionAccepted`` then ``DataReceived``), which may answer before the
  handshake completes.
* **Cookies** (RFC 7413 §4.1.2) are a keyed MAC of the client's address,
  keyed from the seed (:meth:`SeededRandom.keyed_hash32`), so the same seed
  gives the same cookies and no one else can forge them.
* **Option kind**: 34 (§4.1.1). The pre-RFC experimental kind 254 with ExID
  0xF989 is ignored unless ``TcpConfig.fast_open_experimental`` accepts it;
  a server answers in the kind the SYN used.
"""

from __future__ import annotations

from collections import OrderedDict

from ..rng import SeededRandom
from ..stats import Stats
from ..wire.address import Address, hash_words
from ..wire.tcp import FastOpenOption, TcpSegment
from .config import TcpConfig
from .connection import Connection

COOKIE_LENGTH = 8
"""Bytes of the cookies we issue (Linux's TCP_FASTOPEN_COOKIE_SIZE)."""
CACHE_ENTRIES = 1024
"""Servers whose cookie the client remembers (least recently used ones leave first)."""
SYN_OPTIONS_MAX = 24
"""Option bytes of our SYN without Fast Open: MSS, SACK-permitted, window scale,
timestamps, each aligned with NOPs (see ``output.send_syn``)."""
OPTIONS_SPACE = 40


def server_cookie(rng: SeededRandom, client: Address) -> bytes:
    """The cookie for ``client``: a keyed MAC of its address (RFC 7413 §4.1.2), all 16
    bytes of an IPv6 one."""
    words = hash_words(client)
    return b"".join(
        rng.keyed_hash32("tcp.fast_open", *words, part).to_bytes(4, "big")
        for part in range(COOKIE_LENGTH // 4)
    )


def segment_option(config: TcpConfig, segment: TcpSegment) -> FastOpenOption | None:
    """The segment's Fast Open option if we honour it (kind 254 only when asked)."""
    option = segment.fast_open
    if option is None or (option.experimental and not config.fast_open_experimental):
        return None
    return option


def option_fits(cookie: bytes) -> bool:
    """Whether a Fast Open option with ``cookie`` (NOP-aligned) fits beside our SYN's."""
    size = 2 + len(cookie)
    return SYN_OPTIONS_MAX + (size + 3) // 4 * 4 <= OPTIONS_SPACE


def syn_option_space(cookie: bytes) -> int:
    """Option bytes of a SYN carrying ``cookie``: what its data leaves to the MSS."""
    return SYN_OPTIONS_MAX + (2 + len(cookie) + 3) // 4 * 4


def prepare_client_syn(conn: Connection, cache: CookieCache, stats: Stats) -> None:
    """The Fast Open option of a client's SYN: the cached cookie with as much of the
    queued data as fits, or a cookie request (RFC 7413 §4.1.3, §4.2.1)."""
    cached = cache.get(conn.remote_address)
    if cached is None:
        conn.fast_open_option = FastOpenOption()
        stats.count("tcp.fast_open_cookie_requested")
        return
    cookie, mss = cached
    if not option_fits(cookie):
        return
    conn.fast_open_option = FastOpenOption(cookie)
    # The SYN's data fits the server's MSS beside the SYN's options (RFC 6691).
    room = min(mss, conn.rcv_mss) - syn_option_space(cookie)
    conn.syn_data = max(min(len(conn.send_buffer), room), 0)
    conn.fast_open = conn.syn_data > 0
    if conn.fast_open:
        stats.count("tcp.fast_open_syn_data_sent")


class CookieCache:
    """The client's cookies (and the server's MSS) by server address (RFC 7413 §4.1.3)."""

    __slots__ = ("_entries", "limit")

    def __init__(self, limit: int = CACHE_ENTRIES) -> None:
        self.limit = limit
        self._entries: OrderedDict[Address, tuple[bytes, int]] = OrderedDict()

    def get(self, server: Address) -> tuple[bytes, int] | None:
        entry = self._entries.get(server)
        if entry is not None:
            self._entries.move_to_end(server)
        return entry

    def put(self, server: Address, cookie: bytes, mss: int) -> None:
        self._entries[server] = (cookie, mss)
        self._entries.move_to_end(server)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
