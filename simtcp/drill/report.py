"""Reports of drill runs: one block per script, a closing count line, and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence

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
