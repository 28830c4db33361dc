"""RackTlp keeps one record per TSO run (split lazily) yet answers exactly as the
per-piece implementation (``rack_reference``, the module before run records) does.

Random sequences of new runs and segments, retransmissions (aligned to pieces or not,
runs over old data), cumulative ACKs, SACK blocks (aligned or not), D-SACKs, reorder
timeouts, RTOs and probes at non-decreasing ``now`` drive both; every return value, every
public attribute, and the records expanded to pieces must agree after every call.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.tcp.rack import RackTlp

from . import rack_reference as ref

BASE = 10_000
STATE = (
    "outstanding_segments",
    "sacked_segments",
    "rack_xmit_ts",
    "rack_end_seq",
    "rack_rtt",
    "fack",
    "min_rtt",
    "reordering_seen",
    "reo_wnd_mult",
    "reo_wnd_persist",
    "dsack_round",
    "tlp_end_seq",
    "tlp_is_retrans",
    "tlp_sent_at",
    "tlp_original_acked",
    "reorder_at",
)


def _pieces(rack: RackTlp) -> list[tuple[int, int, int, bool, bool]]:
    """The run records of ``rack`` as the per-piece records they stand for, time order."""
    out = []
    for record in rack._segments.values():
        for k in range(record.count):
            start = record.start + k * record.piece
            end = start + record.piece if k < record.count - 1 else record.end
            out.append((start, end, record.xmit_ts + k, record.retransmitted, k < record.lost))
    return out


def _ref_pieces(rack: ref.RackTlp) -> list[tuple[int, int, int, bool, bool]]:
    return [(s.start, s.end, s.xmit_ts, s.retransmitted, s.lost) for s in rack._segments.values()]


def _check(fast: RackTlp, slow: ref.RackTlp, got: Any, want: Any) -> None:
    assert got == want
    assert [getattr(fast, name) for name in STATE] == [getattr(slow, name) for name in STATE]
    assert _pieces(fast) == _ref_pieces(slow)
    assert sorted(p[0] for p in _pieces(fast)) == slow._starts
    assert fast._sacked_ends == slow._sacked_ends


def _seq(data: st.DataObject, low: int, high: int, piece: int, name: str) -> int:
    """A sequence number in [low, high]: often on a piece boundary, sometimes not."""
    if high <= low:
        return low
    kind = data.draw(st.sampled_from(["aligned", "aligned", "any", "high"]), label=name)
    if kind == "high":
        return high
    if kind == "aligned":
        offset = data.draw(st.integers(0, (high - low) // piece), label=name)
        return min(high, low + offset * piece)
    return data.draw(st.integers(low, high), label=name)


def _call(fast: RackTlp, slow: ref.RackTlp, method: str, **kwargs: Any) -> None:
    got = getattr(fast, method)(**kwargs)
    want = getattr(slow, method)(**kwargs)
    if isinstance(want, ref.RackVerdict):
        want = (want.lost, want.reorder_at, want.tlp_repaired_loss)
        got = (got.lost, got.reorder_at, got.tlp_repaired_loss)
    elif isinstance(want, ref.Probe):
        want = (want.new_data, want.start, want.end)
        got = (got.new_data, got.start, got.end)
    _check(fast, slow, got, want)


OPS = [
    "run",
    "run",
    "run",
    "one",
    "retransmit",
    "retransmit_run",
    "ack",
    "ack",
    "ack",
    "sack",
    "sack",
    "reorder",
    "rto",
    "probe",
    "recovery_exit",
]


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    piece=st.sampled_from([1, 3, 100]),
    max_segments=st.sampled_from([1 << 16, 40, 6]),
)
def test_run_records_answer_as_per_piece_records(
    data: st.DataObject, piece: int, max_segments: int
) -> None:
    fast = RackTlp(max_segments=max_segments)
    slow = ref.RackTlp(max_segments=max_segments)
    una = nxt = BASE
    now = 0
    for _ in range(data.draw(st.integers(1, 40), label="steps")):
        now += data.draw(st.sampled_from([0, 0, 1, 2, 5, 30, 200]), label="dt")
        op = data.draw(st.sampled_from(OPS), label="op")
        common = {
            "srtt": data.draw(st.one_of(st.none(), st.integers(1, 100)), label="srtt"),
            "in_recovery": data.draw(st.booleans(), label="in_recovery"),
            "now": now,
        }
        if op == "run":
            size = data.draw(st.integers(1, 12 * piece), label="size")
            fin = data.draw(st.sampled_from([0, 0, 0, 1]), label="fin")
            _call(
                fast,
                slow,
                "on_transmit_run",
                start=nxt,
                data_end=nxt + size,
                piece=piece,
                fin=fin,
                now=now,
            )
            nxt += size + fin
        elif op == "one":
            size = data.draw(st.integers(1, 2 * piece), label="size")
            _call(fast, slow, "on_transmit", start=nxt, end=nxt + size, now=now)
            nxt += size
        elif op == "retransmit":
            start = _seq(data, una - piece, nxt, piece, "start")
            end = _seq(data, start, nxt + piece, piece, "end")
            _call(fast, slow, "on_transmit", start=start, end=end, now=now)
            nxt = max(nxt, end)
        elif op == "retransmit_run":
            start = _seq(data, una, nxt, piece, "start")
            data_end = _seq(data, start + 1, nxt + piece, piece, "data_end")
            _call(
                fast,
                slow,
                "on_transmit_run",
                start=start,
                data_end=data_end,
                piece=piece,
                fin=0,
                now=now,
            )
            nxt = max(nxt, data_end)
        elif op in ("ack", "sack"):
            if op == "ack":
                una = _seq(data, una, nxt, piece, "snd_una")
            blocks = []
            for _ in range(data.draw(st.integers(0 if op == "ack" else 1, 3), label="n")):
                low = _seq(data, una - 2 * piece, nxt, piece, "block start")
                high = _seq(data, low, nxt, piece, "block end")
                blocks.append((low, high))
            _call(
                fast,
                slow,
                "on_ack",
                snd_una=una,
                sack_blocks=blocks,
                dsack=data.draw(st.booleans(), label="dsack"),
                snd_nxt=nxt,
                **common,
            )
        elif op == "reorder":
            _call(fast, slow, "on_reorder_timeout", **common)
        elif op == "rto":
            _call(fast, slow, "on_rto", now=now)
        elif op == "probe":
            new_data = data.draw(st.booleans(), label="new data")
            _call(
                fast,
                slow,
                "probe_deadline",
                now=now,
                srtt=common["srtt"],
                rto_at=None,
                in_recovery=common["in_recovery"],
                flight_size=nxt - una,
                mss=piece,
            )
            _call(fast, slow, "choose_probe", new_data_available=new_data, snd_nxt=nxt, mss=piece)
            _call(fast, slow, "on_probe_sent", snd_nxt=nxt, retransmission=not new_data, now=now)
        else:
            _call(fast, slow, "on_recovery_exit")


def test_a_run_sent_over_sacked_data_and_acked_shows_reordering() -> None:
    """A run re-sent over a SACKed range: its first piece ends below RACK.fack when the
    ACK delivers it (reordering, RFC 8985 §6.2 step 3) though its last does not."""
    fast, slow = RackTlp(), ref.RackTlp()
    for rack in (fast, slow):
        rack.on_transmit(BASE, BASE + 100, now=0)
        rack.on_transmit(BASE + 100, BASE + 300, now=0)
        rack.on_ack(
            snd_una=BASE + 100,
            sack_blocks=[(BASE + 100, BASE + 300)],
            dsack=False,
            snd_nxt=BASE + 300,
            srtt=None,
            in_recovery=False,
            now=10,
        )
        assert not rack.reordering_seen
        rack.on_transmit_run(BASE + 100, BASE + 400, 100, fin=0, now=20)
        rack.on_ack(
            snd_una=BASE + 400,
            sack_blocks=[],
            dsack=False,
            snd_nxt=BASE + 400,
            srtt=None,
            in_recovery=False,
            now=30,
        )
    assert slow.reordering_seen
    _check(fast, slow, None, None)


def test_the_oracle_sees_a_difference() -> None:
    """The comparison can fail: a per-piece reference differs from a shifted stamp."""
    fast, slow = RackTlp(), ref.RackTlp()
    fast.on_transmit_run(BASE, BASE + 300, 100, fin=0, now=5)
    slow.on_transmit_run(BASE, BASE + 300, 100, fin=0, now=6)
    assert _pieces(fast) != _ref_pieces(slow)
