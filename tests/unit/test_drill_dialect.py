"""The packetdrill dialect of public corpora: each feature's rule, and a fuzzed runner.

The fuzz tests state the runner's contract: whatever the text (random tokens,
or a scenario with one line cut, doubled or garbled), ``run_script`` returns
one result with a status, and never raises.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtcp.drill import ScriptSyntaxError, parse_script, run_script
from simtcp.drill.commands import SYSCTLS, plan_command
from simtcp.drill.report import format_result
from simtcp.tcp.config import TcpConfig

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
SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.pkt"))


def test_ipv4_mapped_runs_ipv4_on_the_wire_with_mapped_socket_addresses() -> None:
    result = run_script("--ip_version=ipv4-mapped-ipv6\n" + HANDSHAKE)
    assert result.status == "passed", result.failure


@pytest.mark.parametrize(
    "header", ["--ip_version=ipv4 --local_ip=fd3d:fa7b:d17d::1", "--remote_ip=2001:db8::1"]
)
def test_an_address_of_the_other_family_is_a_bad_option(header: str) -> None:
    result = run_script("\n".join(header.split()) + "\n" + HANDSHAKE)
    assert result.status == "failed"
    assert result.failure is not None and "not an address of --ip_version" in result.failure.message


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("* < . 1:1(0) ack 1 win 100", "* can only be used with outbound packets"),
        ("+0~+1 < . 1:1(0) ack 1 win 100", "range can only be used with outbound"),
        ("+0...+1 read(4, ..., 1) = 1", "takes no '+'"),
        ("+0...1 < . 1:1(0) ack 1 win 100", "are for system calls"),
        ("+0 < . 1:1(0) ack 1", "window must be specified for inbound packets"),
        ("+0 < . 1:1(0) ack 1 win 9 <...>", "<...> for TCP options can only be used"),
        ("+0 < [ect01] . 1:1(0) ack 1 win 9", "[ect01] can only be used with outbound"),
        ("+0 < [purple] . 1:1(0) ack 1 win 9", "unknown IP header annotation"),
    ],
)
def test_packetdrill_semantic_errors(line: str, message: str) -> None:
    with pytest.raises(ScriptSyntaxError, match=re.escape(message)):
        parse_script(HANDSHAKE + line + "\n")


def test_untimed_commands_only_first_or_last() -> None:
    parse_script("`sysctl -q net.ipv4.tcp_sack=1`\n" + HANDSHAKE + "`true`\n")
    with pytest.raises(ScriptSyntaxError, match="first or last"):
        parse_script(LISTEN + "`sysctl -q net.ipv4.tcp_sack=1`\n" + HANDSHAKE)


def test_preprocessor_errors_name_the_line() -> None:
    with pytest.raises(ScriptSyntaxError) as error:
        parse_script(LISTEN + "#ifdef A\n")
    assert error.value.line == 4 and "without #endif" in error.value.message
    with pytest.raises(ScriptSyntaxError, match="without #ifdef"):
        parse_script(LISTEN + "#endif\n")


def test_outbound_ecn_annotation_is_checked() -> None:
    result = run_script(
        LISTEN + "+0 < S 0:0(0) win 65535 <mss 1460>\n+0 >[ect0] S. 0:0(0) ack 1 <...>\n"
    )
    assert result.status == "failed"
    assert result.failure is not None
    assert result.failure.message == "IP ECN field [noecn] instead of [ect0]"
    tos = LISTEN + "+0 < S 0:0(0) win 65535 <mss 1460>\n+0 >(tos 0x10) S. 0:0(0) ack 1 <...>\n"
    assert "IP TOS 0x00 instead of 0x10" in format_result(run_script(tos))


def test_lenient_mode_takes_a_tso_sized_line_as_consecutive_segments() -> None:
    script = HANDSHAKE + "+0 write(4, ..., 4000) = 4000\n+0 > . 1:4001(4000) ack 1\n"
    strict = run_script(script)
    assert strict.status == "failed"
    assert strict.failure is not None and "payload of 1460 bytes instead of 4000" in (
        strict.failure.message
    )
    lenient = run_script(script, lenient=True)
    assert lenient.passed, format_result(lenient)
    too_long = script.replace("1:4001(4000)", "1:4101(4100)")
    assert run_script(too_long, lenient=True).status == "failed"


def test_lenient_mode_ignores_psh_strict_mode_does_not() -> None:
    script = HANDSHAKE + "+0 write(4, ..., 10) = 10\n+0 > . 1:11(10) ack 1\n"
    assert run_script(script).status == "failed"
    assert run_script(script, lenient=True).passed


def test_command_allow_list() -> None:
    plan = plan_command("sysctl -q net.ipv4.tcp_rmem='4096 87380 6291456'")
    assert plan.config == {"receive_buffer": 87380} and plan.skip is None
    assert plan_command("sysctl net.inet.tcp.rfc1323=2").config == {
        "window_scaling": True,
        "timestamps": False,
    }
    assert plan_command("sysctl -q net.ipv4.tcp_ecn=1").skip == (
        "sysctl net.ipv4.tcp_ecn=1 (ECN is not in the engine)"
    )
    assert plan_command("sysctl -q net.ipv4.tcp_frobnicate=1").skip == (
        "sysctl with no TcpConfig mapping: net.ipv4.tcp_frobnicate"
    )
    assert plan_command("rm -rf /").skip == "shell command not run: `rm -rf /`"


def test_every_sysctl_maps_onto_real_tcpconfig_fields() -> None:
    fields = set(TcpConfig.__dataclass_fields__)
    samples = {"net.ipv4.tcp_rmem": "1 2 3", "net.ipv4.tcp_wmem": "1 2 3"}
    for name, convert in SYSCTLS.items():
        text = samples.get(name, "newreno" if "congestion" in name or ".cc." in name else "0")
        assert set(convert(text)) <= fields, name


def test_sysctl_once_the_stack_runs_skips() -> None:
    result = run_script(HANDSHAKE + "+0 `sysctl -q net.ipv4.tcp_sack=0`\n")
    assert result.status == "skipped"
    assert "sysctl once the stack runs" in (result.skip_reason or "")


def test_a_defined_value_stands_for_the_symbol() -> None:
    script = "--define=PORT_BACKLOG=7\n" + LISTEN.replace("listen(3, 1)", "listen(3, PORT_BACKLOG)")
    assert run_script(script).passed


_TOKENS = st.sampled_from(
    [
        "0",
        "+0",
        "+.1",
        "*",
        "1~2",
        "+0...0.1",
        "<",
        ">",
        "S",
        "S.",
        ".",
        "P.",
        "F.",
        "R",
        "0:0(0)",
        "1:1(0)",
        "1:11(10)",
        "ack",
        "1",
        "win",
        "65535",
        "<mss 1460>",
        "<...>",
        "[ect0]",
        "(tos 0x2)",
        "socket(..., SOCK_STREAM, IPPROTO_TCP)",
        "=",
        "3",
        "-1",
        "EAGAIN",
        "listen(3, 1)",
        "accept(3, ..., ...)",
        "read(4, ..., 10)",
        "`sysctl -q a=1`",
        "%{ x }%",
        "--mss=1000",
        "--ip_version=ipv6",
        "#ifdef X",
        "#endif",
        "\n",
        "\n",
        "\n",
        "//",
        "{",
        "}",
        "[",
        "]",
        "(",
        ")",
        ",",
        "...",
        "\x00",
        "\xff",
        "é",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TOKENS, max_size=40).map(" ".join))
def test_random_scripts_always_give_one_result(text: str) -> None:
    result = run_script(text + "\n")
    assert result.status in ("passed", "failed", "skipped")
    if result.status == "failed":
        assert result.failure is not None and "drill parser error" not in result.failure.message
        assert "drill runner error" not in result.failure.message


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(SCENARIOS),
    where=st.floats(0, 1),
    how=st.sampled_from(["cut", "double", "garble", "swap"]),
    junk=st.text(max_size=12),
)
def test_mutated_scenarios_always_give_one_result(
    path: Path, where: float, how: str, junk: str
) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    index = min(int(where * len(lines)), len(lines) - 1)
    if how == "cut":
        del lines[index]
    elif how == "double":
        lines.insert(index, lines[index])
    elif how == "garble":
        lines[index] = lines[index][: len(lines[index]) // 2] + junk
    elif index + 1 < len(lines):
        lines[index], lines[index + 1] = lines[index + 1], lines[index]
    result = run_script("\n".join(lines))
    assert result.status in ("passed", "failed", "skipped")
    if result.failure is not None:
        assert "drill parser error" not in result.failure.message
        assert "drill runner error" not in result.failure.message
