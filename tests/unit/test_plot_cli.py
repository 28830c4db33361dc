"""simtcp plot and sim transfer --trace/--plot: images appear, bad input is one line and exit 2."""

from __future__ import annotations

import builtins
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from simtcp.programs import plot, sim
from simtcp.trace import TRACE_VERSION
from simtcp.wire.pcap import PcapWriter

TRANSFER = ["transfer", "--bytes", "100K", "--loss", "0.02", "--delay", "5ms", "--seed", "3"]


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int, fragment: str) -> None:
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and fragment in err, err
    assert "Traceback" not in err


def test_transfer_writes_a_trace_and_a_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace, image = tmp_path / "t.jsonl", tmp_path / "t.png"
    assert sim.main([*TRANSFER, "--trace", str(trace), "--plot", str(image), "--json"]) == 0
    lines = trace.read_text().splitlines()
    header, end = json.loads(lines[0]), json.loads(lines[-1])
    assert header["schema"] == "simtcp.trace" and header["seed"] == 3
    assert header["config"]["bytes"] == 102400 and header["config"]["forward"]["loss"] == 0.02
    assert (end["type"], end["records"], end["dropped"]) == ("end", len(lines) - 1, 0)
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["ok"] is True
    # simtcp plot reads the same trace back, as SVG this time.
    svg = tmp_path / "t.svg"
    assert plot.main([str(trace), "-o", str(svg), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["flow"].endswith(":5001") and summary["retransmissions"] >= 1
    assert summary["highest_ack"] == 102401 and summary["losses"] >= 1
    assert svg.read_text().lstrip().startswith("<?xml")


def test_a_truncated_pcap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "cut.pcap"
    assert sim.main([*TRANSFER, "--pcap", str(capture)]) == 0
    capture.write_bytes(capture.read_bytes()[:-10])
    capsys.readouterr()
    code = plot.main([str(capture), "-o", str(tmp_path / "x.png")])
    _one_line_error(capsys, code, "truncated pcap")
    capture.write_bytes(capture.read_bytes()[:20])
    code = plot.main([str(capture), "-o", str(tmp_path / "x.png")])
    _one_line_error(capsys, code, "truncated pcap")


def test_a_pcap_without_tcp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "arp.pcap"
    with capture.open("wb") as stream:
        writer = PcapWriter(stream)
        arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes(28)
        udp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x00" + bytes([0x45]) + bytes(8) + b"\x11"
        writer.write(1, arp)
        writer.write(2, udp + bytes(30))
    code = plot.main([str(capture), "-o", str(tmp_path / "x.png")])
    _one_line_error(capsys, code, "no IPv4 TCP segments")
    assert not (tmp_path / "x.png").exists()


def test_a_trace_from_a_newer_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "new.jsonl"
    header = {"type": "header", "schema": "simtcp.trace", "version": TRACE_VERSION + 1}
    trace.write_text(json.dumps(header) + "\n")
    code = plot.main([str(trace), "-o", str(tmp_path / "x.png")])
    _one_line_error(capsys, code, f"version {TRACE_VERSION + 1} is newer")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"", "empty"), (b"hello\n", "not JSON"), (b'{"type": "x"}\n', "not a simtcp trace")],
)
def test_files_that_are_neither(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, fragment: str
) -> None:
    path = tmp_path / "junk"
    path.write_bytes(content)
    _one_line_error(capsys, plot.main([str(path), "-o", str(tmp_path / "x.png")]), fragment)


def test_missing_input_and_bad_image_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = plot.main([str(tmp_path / "nothing.pcap"), "-o", str(tmp_path / "x.png")])
    _one_line_error(capsys, code, "cannot read")
    _one_line_error(capsys, sim.main([*TRANSFER, "--plot", "x.gif"]), ".png or .svg")


def test_missing_matplotlib(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    trace = tmp_path / "t.jsonl"
    code = sim.main([*TRANSFER, "--trace", str(trace), "--plot", str(tmp_path / "t.png")])
    _one_line_error(capsys, code, "pip install 'simtcp[plot]'")
    assert not trace.exists()  # refused before running
    assert sim.main([*TRANSFER, "--trace", str(trace)]) == 0
    capsys.readouterr()
    code = plot.main([str(trace), "-o", str(tmp_path / "t.png")])
    _one_line_error(capsys, code, "pip install 'simtcp[plot]'")


def test_big_endian_nanosecond_raw_ip_pcaps_are_read(tmp_path: Path) -> None:
    from simtcp.programs.tcpseries import packets_from_pcap
    from simtcp.wire.tcp import TcpSegment

    segment = TcpSegment(source_port=1, destination_port=2, seq=10, ack=0, flags=0x18,
                         window=100, payload=b"abc")  # fmt: skip
    tcp = segment.build(0x0A000001, 0x0A000002)
    ip = struct.pack(">BBHHHBBHII", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0,
                     0x0A000001, 0x0A000002) + tcp  # fmt: skip
    path = tmp_path / "ns.pcap"
    header = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 101)
    path.write_bytes(header + struct.pack(">IIII", 5, 7000, len(ip), len(ip)) + ip)
    with path.open("rb") as stream:
        (packet,) = packets_from_pcap(stream)
    assert (packet.at, packet.source, packet.length, packet.seq) == (5_000_007, "10.0.0.1:1", 3, 10)
