"""Fail when a JUnit report holds a skipped test, or (--browser) when no browser test ran."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def main(path: str, need_browser: bool) -> int:
    cases = ET.parse(path).getroot().iter("testcase")
    ran, skipped, browser = 0, [], 0
    for case in cases:
        ran += 1
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("skipped") is not None:
            skipped.append(name)
        elif (case.get("classname") or "").startswith("tests.browser."):
            browser += 1
    print(f"{path}: {ran} tests, {browser} browser tests, {len(skipped)} skipped")
    if skipped:
        print("skipped tests are not allowed in CI:\n  " + "\n  ".join(skipped))
        return 1
    if need_browser and browser == 0:
        print("no browser test ran")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], "--browser" in sys.argv[2:]))
