"""Connection traces (simtcp.trace) of seeded transfers, and the series drawn from them."""

from __future__ import annotations

import io
from dataclasses import asdict
from typing import Any

from simtcp.backends.impair import LinkProfile
from simtcp.programs.tcpseries import from_pcap, from_records
from simtcp.programs.transfer import TransferSpec, run_transfer
from simtcp.stack import Stack
from simtcp.time import MILLISECOND
from simtcp.trace import TRACE_SCHEMA, TRACE_VERSION, ConnectionTrace

BYTES = 300_000
# Seed 4 of this link loses exactly one frame, a data segment from the client (checked below).
ONE_LOSS = TransferSpec(
    bytes=BYTES,
    seed=4,
    forward=LinkProfile(loss=0.004, delay=10 * MILLISECOND, rate=20_000_000),
    backward=LinkProfile(delay=10 * MILLISECOND),
)


class ProbedTrace(ConnectionTrace):
    """A trace that also takes the engine's own ``tcp_info`` at each record it writes."""

    def __init__(self, **options: Any) -> None:
        self.stacks: dict[str, Stack] = {}
        self.snapshots: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        super().__init__(**options)

    def attach(self, stack: Stack, name: str) -> None:
        self.stacks[name] = stack
        super().attach(stack, name)

    def _write(self, record: dict[str, Any]) -> None:
        super()._write(record)
        stack = self.stacks.get(record.get("host", ""))
        if stack is not None and record["type"] in ("loss", "recovery", "update"):
            infos = [asdict(info) for info in stack.tcp.connections_info()]
            self.snapshots.append((record, infos))


def _one_loss_trace() -> tuple[ProbedTrace, io.BytesIO]:
    trace, pcap = ProbedTrace(header={"seed": 4}), io.BytesIO()
    result = run_transfer(ONE_LOSS, trace=trace, pcap=pcap)
    trace.close()
    assert result.ok
    lost = {name: stats["lost"] for name, stats in result.link_stats.items()}
    assert lost == {"client:eth0>server:eth0": 1, "server:eth0>client:eth0": 0}
    pcap.seek(0)
    return trace, pcap


def test_the_one_loss_is_detected_retransmitted_and_recovered_in_order() -> None:
    trace, _ = _one_loss_trace()
    records = trace.records
    assert records[0] == {
        "type": "header", "schema": TRACE_SCHEMA, "version": TRACE_VERSION, "seed": 4
    }  # fmt: skip
    end = records[-1]
    assert (end["type"], end["records"], end["dropped"]) == ("end", len(records) - 1, 0)
    assert end["counters"]["client"]["tcp.connections_established"] == 1
    client = [r for r in records[1:-1] if r["host"] == "client"]
    kinds = [r["type"] for r in client]
    loss = kinds.index("loss")
    entered = kinds.index("recovery")
    retransmit = next(i for i, r in enumerate(client) if r.get("retransmit"))
    left = next(i for i, r in enumerate(client) if r["type"] == "recovery" and not r["entered"])
    assert loss < entered < retransmit < left
    assert kinds.count("loss") == 1 and sum(1 for r in client if r.get("retransmit")) == 1
    assert client[loss]["cause"] == "recovery"
    assert client[entered]["entered"] is True
    # The retransmission resends the first byte not acknowledged when the loss was seen.
    assert client[retransmit]["seq"] == client[loss]["snd_una"]
    assert client[retransmit]["len"] == 1448
    # Recovery ends with the ACK that covers the hole: SND.UNA moves past the resent segment.
    acks_after = [r for r in client[retransmit:left] if r["type"] == "recv"]
    assert acks_after[-1]["ack"] != client[loss]["snd_una"]
    assert not any(r["type"] == "loss" for r in records if r.get("host") == "server")


def test_each_change_record_has_the_values_tcp_info_had() -> None:
    trace, _ = _one_loss_trace()
    fields = ("cwnd", "ssthresh", "srtt", "rto", "retransmits", "snd_una", "snd_nxt", "rcv_nxt")
    checked = 0
    for record, infos in trace.snapshots:
        local, _, remote = record["conn"].partition(">")
        info = next(
            i
            for i in infos
            if f"{i['local_address']}:{i['local_port']}" == local
            and f"{i['remote_address']}:{i['remote_port']}" == remote
        )
        if record["type"] == "recovery":
            assert (record["cwnd"], record["ssthresh"]) == (info["cwnd"], info["ssthresh"])
            checked += 1
        for name in fields:
            if name in record and record["type"] == "update":
                assert record[name] == info[name], (name, record)
                checked += 1
    assert checked > 500


def test_tracing_changes_nothing_the_engine_does() -> None:
    plain = io.BytesIO()
    run_transfer(ONE_LOSS, pcap=plain)
    _, traced = _one_loss_trace()
    assert traced.getvalue() == plain.getvalue()


def test_a_trace_is_bounded() -> None:
    lines: list[str] = []
    trace = ConnectionTrace(sink=lines.append, keep=True, max_records=100)
    assert run_transfer(ONE_LOSS, trace=trace).ok
    trace.close()
    assert len(trace.records) == 101 and len(lines) == 101
    assert trace.records[-1]["type"] == "end" and trace.records[-1]["records"] == 100
    assert trace.records[-1]["dropped"] > 1000


def test_series_from_the_trace_and_from_its_pcap_agree() -> None:
    trace, pcap = _one_loss_trace()
    from_trace = from_records(trace.records[1:-1])
    captured = from_pcap(pcap)
    assert from_trace.flow == captured.flow
    assert from_trace.flow.endswith(":5001") and from_trace.origin == "trace (client)"
    assert len(from_trace.retransmits) == len(captured.retransmits) == 1
    assert len(from_trace.data) == len(captured.data) == BYTES // 1448 + 1
    assert from_trace.data[0][1] == 0 and max(end for _, _, end in from_trace.data) == BYTES
    assert max(ack for _, ack in from_trace.acks) == BYTES + 1  # and the FIN
    assert [ack for _, ack in from_trace.acks] == [ack for _, ack in captured.acks]
    assert from_trace.sacks and len(from_trace.sacks) == len(captured.sacks)
    # Karn: the pcap's RTT samples equal the trace's; all near the 20 ms round trip.
    assert from_trace.rtt_samples == captured.rtt_samples
    assert all(20 <= rtt < 60 for _, rtt in from_trace.rtt_samples)
    # The engine's variables only come from a trace.
    assert from_trace.cwnd and from_trace.srtt and from_trace.rto and not captured.cwnd
    assert len(from_trace.losses) == 1
    assert [entered for _, entered in from_trace.recovery] == [True, False]
    resent_at = from_trace.retransmits[0][0]
    assert from_trace.losses[0] <= resent_at <= from_trace.recovery[1][0]
    # Goodput: the acknowledged bytes, summed over the intervals, are the data and the FIN.
    interval = from_trace.goodput[1][0] - from_trace.goodput[0][0]
    total = sum(rate for _, rate in from_trace.goodput) * interval * 1e6 / 8
    assert abs(total - (BYTES + 1 - from_trace.acks[0][1])) < 1
