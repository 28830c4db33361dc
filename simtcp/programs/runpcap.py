"""The pcap of one transfer run, which ends with the run (issue 23)."""

from __future__ import annotations

from typing import BinaryIO

from simtcp.wire.checksum import Buffer
from simtcp.wire.pcap import PcapWriter


class RunPcap(PcapWriter):
    """The pcap of one run: it ends with the run's last TCP segment.

    Once the data phase is over (:attr:`lingering`), the stacks only wait out TIME-WAIT
    (2*MSL, a minute of virtual time by default), and what they send meanwhile that is
    not TCP (ARP re-validation at 60 s) is housekeeping after the run: such frames are
    held, and recorded only if a TCP segment (a retransmitted FIN, say) follows them."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(stream)
        self.lingering = False
        self._held: list[tuple[int, bytes]] = []

    def write(self, timestamp_us: int, frame: Buffer) -> None:
        if not self.lingering:
            super().write(timestamp_us, frame)
            return
        if not _is_tcp(frame):
            self._held.append((timestamp_us, bytes(frame)))
            return
        for held in self._held:
            super().write(*held)
        self._held.clear()
        super().write(timestamp_us, frame)


def _is_tcp(frame: Buffer) -> bool:
    """An untagged Ethernet frame carrying IPv4 protocol 6 (RFC 791 §3.1)."""
    view = memoryview(frame)
    return len(view) > 23 and view[12] == 0x08 and view[13] == 0x00 and view[23] == 6
