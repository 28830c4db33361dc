"""The drill runner: sequence spaces, tolerance windows, failures that must fail, reports."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from simtcp.drill import run_script
from simtcp.drill.compare import format_line, options_mismatch
from simtcp.drill.peer import (
    SequenceSpace,
    options_to_script,
    options_to_wire,
    payload_pattern,
)
from simtcp.drill.report import format_result, junit_xml, summary_line
from simtcp.drill.runner import ScriptResult
from simtcp.programs.drill import main
from simtcp.stack import Stack
from simtcp.wire.tcp import (
    ACK,
    SYN,
    EndOfOptionList,
    MssOption,
    NopOption,
    SackOption,
    TimestampsOption,
)

LISTEN = """\
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  bind(3, ..., ...) = 0
+0  listen(3, 1) = 0
"""
HANDSHAKE = (
    LISTEN
    + """\
+0  < S 0:0(0) win 65535 <mss 1460>
+0  > S. 0:0(0) ack 1 <mss 1460>
+.1 < . 1:1(0) ack 1 win 65535
+0  accept(3, ..., ...) = 4
"""
)


def failed_at(result: ScriptResult, line: int) -> str:
    assert result.status == "failed", format_result(result)
    assert result.failure is not None
    assert result.failure.line == line, format_result(result)
    return result.failure.message


# --- sequence arithmetic ------------------------------------------------------------


def test_sequence_space_round_trip_across_the_wrap() -> None:
    space = SequenceSpace(2**32 - 10)
    assert space.to_wire(0) == 2**32 - 10
    assert space.to_wire(10) == 0
    assert space.to_wire(1010) == 1000
    assert space.to_script(1000) == 1010
    assert space.to_script(2**32 - 10) == 0
    for relative in (0, 1, 9, 10, 11, 2**31, 2**32 - 1):
        assert space.to_script(space.to_wire(relative)) == relative


def test_unknown_isn_counts_from_zero() -> None:
    space = SequenceSpace()
    assert space.to_wire(5) == 5 and space.to_script(7) == 7


def test_payload_pattern_is_continuous() -> None:
    assert payload_pattern(0, 300) == payload_pattern(0, 100) + payload_pattern(100, 200)
    assert payload_pattern(250, 2) == bytes((250, 0))


def test_options_compare_ignores_tsval_and_zero_padding() -> None:
    assert not options_mismatch((MssOption(1460),), (MssOption(1460), EndOfOptionList()))
    assert not options_mismatch((TimestampsOption(1, 7),), (TimestampsOption(99, 7),))
    assert options_mismatch((TimestampsOption(1, 7),), (TimestampsOption(1, 8),))
    assert options_mismatch((MssOption(1460),), (NopOption(), MssOption(1460)))
    assert options_mismatch((), (MssOption(1460),))


def test_packetdrill_line_rendering() -> None:
    text = format_line(
        inbound=False,
        flags=SYN | ACK,
        seq=0,
        length=0,
        ack=1,
        window=100,
        options=(MssOption(1460),),
    )
    assert text == "> S. 0:0(0) ack 1 win 100 <mss 1460>"
    assert (
        format_line(
            inbound=True, flags=ACK, seq=2**32 - 2, length=4, ack=None, window=None, options=None
        )
        == "< . 4294967294:2(4) <...>"
    )


# --- scripts that pass ----------------------------------------------------------------


def test_handshake_passes() -> None:
    result = run_script(HANDSHAKE)
    assert result.status == "passed", format_result(result)
    assert result.events_run == 7


@pytest.mark.parametrize("remote_isn", [0, 2**32 - 1, 2**32 - 50, 123_456_789])
def test_data_across_the_remote_wrap(remote_isn: int) -> None:
    script = (
        HANDSHAKE
        + """\
+0  < P. 1:101(100) ack 1 win 65535
+.04 > . 1:1(0) ack 101
+0  read(4, ..., 1000) = 100
"""
    )
    result = run_script(script, remote_isn=remote_isn, lenient=True)
    assert result.status == "passed", format_result(result)


def test_shell_commands_are_never_run_and_code_blocks_are_skipped(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = run_script(LISTEN + f"+0 %{{ open('{marker}', 'w') }}%\n")
    assert result.status == "passed"
    assert [line for line, _ in result.skipped_lines] == [4]
    # A command off the allow-list skips the script, showing the command; it never runs.
    result = run_script(LISTEN + f"+0 `touch {marker}`\n")
    assert result.status == "skipped"
    assert result.skip_reason == f"line 4: shell command not run: `touch {marker}`"
    assert not marker.exists()


def test_ignored_header_options_are_reported() -> None:
    result = run_script("--tolerance_usecs=5000\n--speed=1000\n" + LISTEN)
    assert result.status == "passed"
    assert result.ignored_options == ["--speed=1000"]


def test_ipv6_scripts_run_over_ipv6_on_the_wire() -> None:
    result = run_script(
        "--ip_version=ipv6\n" + HANDSHAKE + "+0 write(4, ..., 1000) = 1000\n"
        "+0 > P. 1:1001(1000) ack 1\n"
    )
    assert result.status == "passed", result.failure


def test_ipv6_runs_skip_scripts_about_ipv4_alone() -> None:
    result = run_script("// ipv4-only: needs ARP\n--ip_version=ipv6\n" + LISTEN)
    assert result.status == "skipped"
    assert result.skip_reason == "IPv4 only: needs ARP"


def test_unsupported_lines_skip_the_script() -> None:
    result = run_script(LISTEN + "+0 < 8080>9000 S 0:0(0) win 100\n")
    assert result.status == "skipped"
    assert result.unsupported == ["line 4: explicit ports on packet lines"]


# --- scripts that must fail, and do -------------------------------------------------------


def test_wrong_flags_fail_at_the_line() -> None:
    script = LISTEN + "+0 < S 0:0(0) win 65535 <mss 1460>\n+0 > R. 0:0(0) ack 1\n"
    message = failed_at(run_script(script), 5)
    assert message == "flags S. instead of R."
    result = run_script(script)
    assert result.failure is not None
    assert result.failure.expected == "0.000000 > R. 0:0(0) ack 1"
    assert result.failure.actual == "0.000000 > S. 0:0(0) ack 1 win 65535 <mss 1460>"


def test_wrong_ack_and_length_fail() -> None:
    script = LISTEN + "+0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 2 <...>\n"
    assert failed_at(run_script(script), 5) == "acknowledgement number 1 instead of 2"
    script = HANDSHAKE + "+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1\n"
    assert run_script(script).status == "passed"
    script = HANDSHAKE + "+0 write(4, ..., 10) = 10\n+0 > P. 1:12(11) ack 1\n"
    assert failed_at(run_script(script), 9) == "payload of 10 bytes instead of 11"


def test_segment_sent_too_early_fails() -> None:
    script = LISTEN + "+0 < S 0:0(0) win 65535 <mss 1460>\n+0.010 > S. 0:0(0) ack 1 <...>\n"
    message = failed_at(run_script(script), 5)
    assert message == "sent at 0.000000, outside 0.006000..0.014000"


# Data arriving at 0.100 is acknowledged when the delayed-ACK timer (TcpConfig
# default 40 ms, RFC 1122 §4.2.3.2) expires, at 0.140.
DELAYED = HANDSHAKE + "+0 < P. 1:101(100) ack 1 win 65535\n"


@pytest.mark.parametrize(
    ("at", "tolerance", "passes"),
    [
        ("0.140", None, True),
        ("0.144", None, True),
        ("0.136", None, True),
        ("0.145", None, False),
        ("0.135", None, False),
        ("0.149", 10_000, True),
        ("0.131", 10_000, True),
        ("0.151", 10_000, False),
    ],
)
def test_tolerance_window(at: str, tolerance: int | None, passes: bool) -> None:
    result = run_script(DELAYED + f"{at} > . 1:1(0) ack 101\n", tolerance_us=tolerance)
    assert result.passed is passes, format_result(result)


def test_tolerance_from_the_header() -> None:
    script = "--tolerance_usecs=10000\n" + DELAYED + "0.149 > . 1:1(0) ack 101\n"
    assert run_script(script).passed


def test_late_segment_fails() -> None:
    result = run_script(DELAYED + "0.200 > . 1:1(0) ack 101\n")
    message = failed_at(result, 9)
    assert message == "sent at 0.140000, outside 0.196000..0.204000"


def test_range_and_any_times() -> None:
    assert run_script(DELAYED + "0.1~0.2 > . 1:1(0) ack 101\n").passed
    assert run_script(DELAYED + "* > . 1:1(0) ack 101\n").passed
    assert run_script(DELAYED + "+0~+0.03 > . 1:1(0) ack 101\n").status == "failed"


def test_missing_segment_fails() -> None:
    script = HANDSHAKE + "+0 > P. 1:11(10) ack 1\n"
    message = failed_at(run_script(script), 8)
    assert message == "expected segment not sent by 0.104000"


def test_unexpected_segment_fails_at_the_next_line() -> None:
    script = LISTEN + "+0 < S 0:0(0) win 65535 <mss 1460>\n+.1 < . 1:1(0) ack 1 win 65535\n"
    result = run_script(script)
    assert failed_at(result, 5) == "unexpected outbound segment"
    assert result.failure is not None
    assert result.failure.actual == "0.000000 > S. 0:0(0) ack 1 win 65535 <mss 1460>"


def test_unexpected_segment_at_the_end_fails_only_in_strict_mode() -> None:
    script = LISTEN + "+0 < S 0:0(0) win 65535 <mss 1460>\n"
    assert "end of the script" in failed_at(run_script(script), 4)
    assert run_script(script, lenient=True).status == "passed"


def test_lenient_mode_ignores_windows_and_options() -> None:
    script = LISTEN + "+0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 1 win 9 <mss 9>\n"
    assert run_script(script).status == "failed"
    assert run_script(script, lenient=True).status == "passed"
    script = LISTEN + "+0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S 0:0(0) ack 1 <...>\n"
    assert run_script(script, lenient=True).status == "failed"


def test_wrong_syscall_result_fails() -> None:
    script = HANDSHAKE.replace("accept(3, ..., ...) = 4", "accept(3, ..., ...) = 5")
    assert failed_at(run_script(script), 7) == "accept() returned 4 instead of 5"


def test_nonblocking_calls_report_errno() -> None:
    script = (
        LISTEN
        + """\
+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)
"""
    )
    assert run_script(script).status == "passed"
    wrong = script.replace("EAGAIN", "EINVAL")
    assert failed_at(run_script(wrong), 5) == "accept() returned -1 EAGAIN instead of -1 EINVAL"


def test_blocking_accept_returns_when_the_handshake_completes() -> None:
    script = (
        LISTEN
        + """\
+0...0.1 accept(3, ..., ...) = 4
+0  < S 0:0(0) win 65535 <mss 1460>
+0  > S. 0:0(0) ack 1 <mss 1460>
+.1 < . 1:1(0) ack 1 win 65535
"""
    )
    assert run_script(script).status == "passed"
    late = script.replace("+0...0.1", "+0...0.3")
    assert "returned at 0.100000" in failed_at(run_script(late), 4)


def test_syntax_error_is_a_failure_with_a_line() -> None:
    result = run_script(LISTEN + "+0 < S 0:0 win 1\n")
    assert failed_at(result, 4).startswith("syntax error")


# --- reports and the command --------------------------------------------------------------


def test_report_and_summary() -> None:
    passed = run_script(HANDSHAKE)
    failed = run_script(LISTEN + "+0 < S 0:0(0) win 65535 <mss 1460>\n+0 > R 0:0(0)\n")
    skipped = run_script("--ip_version=ipv6\n--mtu=1000\n" + LISTEN)
    assert summary_line([passed, failed, skipped]) == "1 passed, 1 failed, 1 skipped"
    text = format_result(failed)
    assert text.splitlines()[0] == "FAIL <script>:5: flags S. instead of R"
    assert text.splitlines()[1].strip().startswith("expected: 0.000000 > R 0:0(0)")
    assert text.splitlines()[2].strip().startswith("actual:   0.000000 > S. 0:0(0) ack 1")
    document = ElementTree.fromstring(junit_xml([passed, failed, skipped]))
    suite = document.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = suite.findall("testcase")
    assert cases[1].find("failure") is not None
    assert cases[2].find("skipped") is not None


def test_cli_exit_status_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.pkt"
    good.write_text(HANDSHAKE)
    bad = tmp_path / "bad.pkt"
    bad.write_text(LISTEN + "+0 < S 0:0(0) win 65535 <mss 1460>\n+0 > R 0:0(0)\n")
    junit = tmp_path / "report.xml"
    assert main([str(good)]) == 0
    assert main([str(good), str(bad), "--junit", str(junit)]) == 1
    output = capsys.readouterr().out
    assert f"FAIL {bad}:5: flags S. instead of R" in output
    assert output.rstrip().splitlines()[-1].startswith("1 passed, 1 failed, 0 skipped")
    assert ElementTree.parse(junit).getroot().find("testsuite") is not None


# A script in the style of corpora written for Linux: timestamps and SACK in the
# SYN, Linux window values and option lists, a sysctl, a buffer size read back.
LINUX_STYLE = """\
--tcp_ts_tick_usecs=1000
0   `sysctl -q net.ipv4.tcp_timestamps=1`
+0  socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0  bind(3, ..., ...) = 0
+0  listen(3, 1) = 0
+0  < S 0:0(0) win 29200 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
+0  > S. 0:0(0) ack 1 win 28960 <mss 1460,sackOK,TS val 100 ecr 100,nop,wscale 7>
+.02 < . 1:1(0) ack 1 win 229 <nop,nop,TS val 102 ecr 100>
+0  accept(3, ..., ...) = 4
+0  getsockopt(4, SOL_SOCKET, SO_RCVBUF, [131072], [4]) = 0
+0  setsockopt(4, SOL_SOCKET, SO_SNDBUF, [65536], 4) = 0
+0  write(4, ..., 1000) = 1000
+0  > P. 1:1001(1000) ack 1 win 227 <nop,nop,TS val 120 ecr 102>
+.02 < . 1:1(0) ack 1001 win 240 <nop,nop,TS val 122 ecr 120>
"""


def test_lenient_mode_runs_a_linux_style_script() -> None:
    strict = run_script(LINUX_STYLE)
    assert strict.status == "failed"
    assert strict.failure is not None and strict.failure.line == 8
    assert strict.failure.message.startswith("window 65535 instead of 28960")
    lenient = run_script(LINUX_STYLE, lenient=True)
    assert lenient.status == "passed", format_result(lenient)
    assert lenient.skipped_lines == []
    assert lenient.commands == [(2, "sysctl mapped onto TcpConfig: {'timestamps': True}")]
    assert lenient.ignored_options == ["--tcp_ts_tick_usecs=1000"]


def test_lenient_mode_still_checks_sequence_numbers_and_results() -> None:
    wrong_seq = LINUX_STYLE.replace("> P. 1:1001(1000)", "> P. 2:1002(1000)")
    assert failed_at(run_script(wrong_seq, lenient=True), 14).startswith("sequence number 1")
    wrong_result = LINUX_STYLE.replace("write(4, ..., 1000) = 1000", "write(4, ..., 1000) = 999")
    assert "returned 1000 instead of 999" in failed_at(run_script(wrong_result, lenient=True), 13)


def test_socket_options_after_the_stack_runs_are_unsupported_in_strict_mode() -> None:
    script = HANDSHAKE + "+0 setsockopt(4, SOL_SOCKET, SO_SNDBUF, [65536], 4) = 0\n"
    result = run_script(script)
    assert result.status == "skipped"
    assert "SO_SNDBUF once the stack runs" in (result.skip_reason or "")


def test_socket_options_before_listen_configure_the_stack() -> None:
    script = (
        LISTEN.replace(
            "+0  bind", "+0  setsockopt(3, SOL_SOCKET, SO_RCVBUF, [3000], 4) = 0\n+0  bind"
        )
        + """\
+0  < S 0:0(0) win 65535 <mss 1460>
+0  > S. 0:0(0) ack 1 win 3000 <mss 1460>
+0  getsockopt(3, SOL_SOCKET, SO_RCVBUF, [3000], [4]) = 0
"""
    )
    assert run_script(script, lenient=True).passed
    assert failed_at(run_script(script.replace("win 3000", "win 3001")), 6).startswith("window")


def test_read_checks_the_bytes_in_order() -> None:
    script = (
        HANDSHAKE
        + """\
+0  < P. 101:201(100) ack 1 win 65535
+0  > . 1:1(0) ack 1
+0  < P. 1:101(100) ack 1 win 65535
+0  > . 1:1(0) ack 201
+0  read(4, ..., 1000) = 200
"""
    )
    assert run_script(script, lenient=True).passed


def test_api_misuse_maps_to_errno() -> None:
    script = (
        LISTEN
        + """\
+0  socket(..., SOCK_STREAM, IPPROTO_TCP) = 4
+0  bind(4, ..., ...) = 0
+0  listen(4, 1) = -1 EADDRINUSE (Address already in use)
+0  write(3, ..., 10) = -1 ENOTCONN (Transport endpoint is not connected)
+0  close(9) = -1 EBADF (Bad file descriptor)
"""
    )
    result = run_script(script)
    assert result.passed, format_result(result)


def test_an_exception_in_the_stack_is_a_failure_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Stack, "receive_frame", explode)
    message = failed_at(run_script(HANDSHAKE), 3)
    assert message.startswith("the stack raised RuntimeError: boom")


def test_vector_and_addressed_calls() -> None:
    script = (
        HANDSHAKE
        + """\
+0  writev(4, [{..., 600}, {iov_base=..., iov_len=400}], 2) = 1000
+0  > P. 1:1001(1000) ack 1
+0  sendto(4, ..., 10, 0, ..., ...) = 10
+.1 < P. 1:101(100) ack 1001 win 65535
+0  > P. 1001:1011(10) ack 101
+0  readv(4, [{..., 60}, {..., 60}], 2) = 100
+0  getpeername(4, ..., ...) = 0
"""
    )
    result = run_script(script, lenient=True)
    assert result.passed, format_result(result)


def test_poll_waits_for_readiness_or_its_timeout() -> None:
    script = (
        HANDSHAKE
        + """\
+0    poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, 1000) = 1
+.2   < P. 1:11(10) ack 1 win 65535
+0    read(4, ..., 100) = 10
"""
    )
    result = run_script(script, lenient=True)
    assert result.passed, format_result(result)
    # packetdrill: the end of "+a...b" counts from the same base as the start.
    timeout = HANDSHAKE + "+0...0.25 poll([{fd=4, events=POLLIN, revents=0}], 1, 250) = 0\n"
    result = run_script(timeout)
    assert result.passed, format_result(result)
    message = failed_at(run_script(timeout.replace("250", "300")), 8)
    assert message == "poll() returned at 0.400000, not at 0.350000"


def test_inbound_options_map_sack_edges_and_echo_timestamps() -> None:
    stack_side = SequenceSpace(2**32 - 5)
    options = (NopOption(), SackOption(((1, 11), (21, 31))), TimestampsOption(500, 7))
    wire = options_to_wire(options, acked=stack_side, echo={7: 123456}, latest_echo=99)
    assert wire[1] == SackOption(
        (
            (stack_side.to_wire(1), stack_side.to_wire(11)),
            (stack_side.to_wire(21), stack_side.to_wire(31)),
        )
    )
    assert wire[1] == SackOption(((2**32 - 4, 6), (16, 26)))
    assert wire[2] == TimestampsOption(500, 123456)
    unknown = options_to_wire((TimestampsOption(1, 8),), acked=stack_side, echo={}, latest_echo=99)
    assert unknown == (TimestampsOption(1, 99),)
    remote_side = SequenceSpace(1000)
    back = options_to_script((SackOption(((1001, 2001),)),), acked=remote_side)
    assert back == (SackOption(((1, 1001),)),)
