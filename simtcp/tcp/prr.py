"""Proportional Rate Reduction (RFC 6937): how much fast recovery may send per ACK.

RFC 6675 §5 (C) sends while ``cwnd - pipe >= SMSS`` with cwnd cut to ssthresh
at once, so a sender that enters recovery with pipe above ssthresh falls
silent for half a round trip and then bursts. PRR spreads the reduction over
the round: while pipe > ssthresh it sends ``ssthresh / RecoverFS`` of what the
receiver reports delivered; once pipe is at or below ssthresh it catches up
towards ssthresh, bounded by the slow-start reduction bound (PRR-SSRB: what
was delivered plus one SMSS per ACK) or, conservatively, by what was delivered
(PRR-CRB). Pure arithmetic on byte counts; :mod:`.recovery` feeds it each ACK
and turns :meth:`Prr.on_ack`'s answer into ``cwnd = pipe + sndcnt``.
"""

from __future__ import annotations


class Prr:
    """The PRR state of one recovery episode (RFC 6937 §3.1), all in bytes."""

    __slots__ = ("ssthresh", "recover_fs", "mss", "prr_delivered", "prr_out", "conservative")

    def __init__(self, *, ssthresh: int, recover_fs: int, mss: int, conservative: bool = False):
        self.ssthresh = ssthresh
        self.recover_fs = max(recover_fs, 1)
        """RecoverFS: what was in flight when recovery began, less what the receiver
        already held (RFC 6937 §3.1; RFC 6675's pipe before the loss was known)."""
        self.mss = mss
        self.prr_delivered = 0
        self.prr_out = 0
        self.conservative = conservative
        """PRR-CRB instead of PRR-SSRB (RFC 6937 §3.1)."""

    def on_ack(self, delivered: int, pipe: int) -> int:
        """An ACK in recovery delivered ``delivered`` bytes (SND.UNA and SACK change,
        RFC 6937 DeliveredData); ``pipe`` is RFC 6675's SetPipe() after it. Returns
        sndcnt, the bytes that may be sent now (0 or more)."""
        self.prr_delivered += delivered
        if pipe > self.ssthresh:
            # Proportional Rate Reduction: CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out.
            target = -(-self.prr_delivered * self.ssthresh // self.recover_fs)
            sndcnt = target - self.prr_out
        else:
            banked = self.prr_delivered - self.prr_out
            if self.conservative:
                limit = banked  # PRR-CRB: never more than was delivered
            else:
                limit = max(banked, delivered) + self.mss  # PRR-SSRB
            sndcnt = min(self.ssthresh - pipe, limit)
        if sndcnt <= 0 and self.prr_out == 0:
            # RFC 6675 §5 (4.3): the fast retransmission itself goes whatever pipe says.
            return self.mss
        return max(sndcnt, 0)

    def on_sent(self, size: int) -> None:
        """``size`` bytes were sent or resent in recovery (RFC 6937: prr_out += data sent)."""
        self.prr_out += size
