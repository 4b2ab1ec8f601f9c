"""The report as JUnit XML: one test suite per layer, one test case per rule."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from kontext_mock.contracts.report import Report
from kontext_mock.contracts.rules import LAYERS

__all__ = ["to_junit", "write_junit"]


def to_junit(report: Report) -> str:
    """The JUnit XML document of ``report``."""
    counts = report.counts()
    root = ET.Element("testsuites", {
        "name": "kontext-contract",
        "tests": str(len(report.results)),
        "failures": str(counts["failed"]),
        "skipped": str(counts["skipped"]),
        "errors": "0",
        "time": f"{report.duration:.3f}",
    })
    for layer in LAYERS:
        results = [r for r in report.results if r.rule.layer == layer]
        if not results:
            continue
        suite = ET.SubElement(root, "testsuite", {
            "name": f"kontext-contract.{layer}",
            "tests": str(len(results)),
            "failures": str(sum(r.status == "failed" for r in results)),
            "skipped": str(sum(r.status == "skipped" for r in results)),
            "errors": "0",
            "time": f"{sum(r.duration for r in results):.3f}",
        })
        props = ET.SubElement(suite, "properties")
        for name, value in (("base_url", report.base_url),
                            ("application_id", report.application_id or ""),
                            ("seed", str(report.seed)),
                            ("destructive", str(report.destructive).lower())):
            ET.SubElement(props, "property", {"name": name, "value": value})
        for r in results:
            case = ET.SubElement(suite, "testcase", {
                "classname": f"kontext-contract.{layer}",
                "name": r.name,
                "time": f"{r.duration:.3f}",
            })
            if r.status == "failed":
                first = r.violations[0].message.splitlines()[0] if r.violations else r.detail
                failure = ET.SubElement(case, "failure", {"message": first,
                                                          "type": "ContractViolation"})
                failure.text = "\n\n".join(v.render("") for v in r.violations)
            elif r.status == "skipped":
                ET.SubElement(case, "skipped", {"message": r.detail})
            else:
                out = ET.SubElement(case, "system-out")
                suffix = f" (assumes {', '.join(r.rule.assumes)})" if r.rule.assumes else ""
                out.text = f"{r.rule.summary}{suffix}: {r.detail}"
                if r.status == "drift":  # reported, not failed: the documented part holds
                    out.text += "\n\ndrift:\n" + "\n\n".join(
                        f"contradicts {v.assumption}\n{v.render('')}" for v in r.drift)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: Report, path: str | Path) -> Path:
    """Write the JUnit XML of ``report`` to ``path`` (directories created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(to_junit(report), encoding="utf-8")
    return target
