"""Reports of drill runs: one block per script, a closing count line, JUnit XML, and the
``--report`` file (Markdown or JSON: each script's result, totals by reason).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from .runner import ScriptResult, format_time


def format_result(result: ScriptResult, *, verbose: bool = False) -> str:
    """``PASS name``, ``SKIP name: why`` or ``FAIL name:line: why`` plus expected/actual."""
    timing = (
        f"{result.events_run} events, {format_time(result.virtual_us)} s virtual, "
        f"{result.wall_seconds * 1000:.1f} ms"
    )
    lines: list[str] = []
    if result.status == "passed":
        lines.append(f"PASS {result.name} ({timing})")
    elif result.status == "skipped":
        lines.append(f"SKIP {result.name}: {result.skip_reason}")
    else:
        failure = result.failure
        assert failure is not None
        lines.append(f"FAIL {result.name}:{failure.line}: {failure.message}")
        if failure.expected is not None:
            lines.append(f"    expected: {failure.expected}")
        if failure.actual is not None:
            lines.append(f"    actual:   {failure.actual}")
        if result.xfail:
            lines.append(f"    (known failure: {result.xfail})")
    if verbose or result.status != "passed":
        if result.skipped_lines:
            where = ", ".join(f"{line} ({why})" for line, why in result.skipped_lines)
            lines.append(f"    skipped lines: {where}")
        if result.ignored_options:
            lines.append(f"    ignored options: {' '.join(result.ignored_options)}")
        if result.commands:
            where = ", ".join(f"{line} ({note})" for line, note in result.commands)
            lines.append(f"    commands: {where}")
    return "\n".join(lines)


def summary_line(results: Sequence[ScriptResult]) -> str:
    """``N passed, N failed, N skipped``."""
    counts = {
        status: sum(1 for result in results if result.status == status)
        for status in ("passed", "failed", "skipped")
    }
    return f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"


def junit_xml(results: Sequence[ScriptResult], *, suite: str = "simtcp drill") -> str:
    """A JUnit XML document with one test case per script."""
    failures = sum(1 for result in results if result.status == "failed")
    skipped = sum(1 for result in results if result.status == "skipped")
    total_time = sum(result.wall_seconds for result in results)
    root = ElementTree.Element("testsuites")
    node = ElementTree.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{total_time:.6f}",
    )
    for result in results:
        case = ElementTree.SubElement(
            node, "testcase", classname="drill", name=result.name, time=f"{result.wall_seconds:.6f}"
        )
        if result.status == "failed" and result.failure is not None:
            failure = result.failure
            element = ElementTree.SubElement(
                case, "failure", message=f"line {failure.line}: {failure.message}"
            )
            element.text = format_result(result)
        elif result.status == "skipped":
            ElementTree.SubElement(case, "skipped", message=result.skip_reason or "")
        if result.skipped_lines or result.ignored_options:
            output = ElementTree.SubElement(case, "system-out")
            output.text = format_result(result, verbose=True)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


_LINE_PREFIX = re.compile(r"^line \d+: ")


def reason_of(result: ScriptResult) -> str:
    """A skip's or failure's reason without its line and numbers, for totals by reason."""
    if result.status == "skipped":
        text = _LINE_PREFIX.sub("", result.skip_reason or "")
        text = text.removeprefix("unsupported: ")
        text = _LINE_PREFIX.sub("", text.split("; ")[0])
        command = re.match(r"^shell command not run: `\s*(\S+)", text)
        if command:
            return f"shell command not run: {command.group(1)}"
        return re.sub(r"\s*\((--[^)]*)\)$", "", text)
    if result.status == "failed" and result.failure is not None:
        message = result.failure.message
        if message.startswith("syntax error"):
            return "syntax error: " + re.sub(r"'[^']*'|\"[^\"]*\"", "'...'", message[14:])[:60]
        return re.sub(r"-?\d+(?:\.\d+)?", "N", message)[:80]
    return "passed"


def totals_by_reason(results: Sequence[ScriptResult]) -> dict[str, dict[str, int]]:
    """{"skipped": {reason: count}, "failed": {reason: count}}, most frequent first."""
    totals: dict[str, Counter[str]] = {"skipped": Counter(), "failed": Counter()}
    for result in results:
        if result.status in totals:
            totals[result.status][reason_of(result)] += 1
    return {status: dict(counter.most_common()) for status, counter in totals.items()}


def _entry(result: ScriptResult) -> dict[str, object]:
    entry: dict[str, object] = {"script": result.name, "status": result.status}
    if result.status == "skipped":
        entry["reason"] = result.skip_reason
    elif result.failure is not None:
        entry.update(
            line=result.failure.line,
            reason=result.failure.message,
            expected=result.failure.expected,
            actual=result.failure.actual,
        )
    if result.commands:
        entry["commands"] = [f"line {line}: {note}" for line, note in result.commands]
    if result.ignored_options:
        entry["ignored_options"] = list(result.ignored_options)
    return entry


def report_json(results: Sequence[ScriptResult], *, elapsed: float = 0.0) -> str:
    counts = Counter(result.status for result in results)
    document = {
        "totals": {status: counts.get(status, 0) for status in ("passed", "failed", "skipped")},
        "scripts_per_second": round(len(results) / elapsed, 1) if elapsed > 0 else None,
        "by_reason": totals_by_reason(results),
        "scripts": [_entry(result) for result in results],
    }
    return json.dumps(document, indent=2) + "\n"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def report_markdown(results: Sequence[ScriptResult], *, elapsed: float = 0.0) -> str:
    lines = ["# simtcp drill report", "", summary_line(results)]
    if elapsed > 0:
        lines[-1] += f" ({len(results) / elapsed:.0f} scripts/s)"
    for status, reasons in totals_by_reason(results).items():
        if reasons:
            lines += ["", f"## {status.capitalize()} by reason", "", "| count | reason |"]
            lines.append("| ---: | --- |")
            lines += [f"| {count} | {_cell(reason)} |" for reason, count in reasons.items()]
    lines += [
        "",
        "## Scripts",
        "",
        "| script | result | line | why |",
        "| --- | --- | ---: | --- |",
    ]
    for result in results:
        entry = _entry(result)
        why = _cell(entry.get("reason", ""))
        if entry.get("expected") is not None or entry.get("actual") is not None:
            why += f"<br>expected: `{_cell(entry.get('expected'))}`"
            why += f"<br>actual: `{_cell(entry.get('actual'))}`"
        lines.append(
            f"| {_cell(result.name)} | {result.status} | {entry.get('line', '')} | {why} |"
        )
    return "\n".join(lines) + "\n"


def write_report(results: Sequence[ScriptResult], path: Path, *, elapsed: float = 0.0) -> None:
    """Write ``path`` as Markdown (``.md``) or JSON (``.json``)."""
    if path.suffix == ".json":
        text = report_json(results, elapsed=elapsed)
    else:
        text = report_markdown(results, elapsed=elapsed)
    path.write_text(text, encoding="utf-8")
