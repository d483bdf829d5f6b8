#!/usr/bin/env python3
"""Structure limits of the tree (issue 14), checked by scripts/test-all.sh.

- No non-test Rust function over MAX_FN_LINES lines (from its `fn` line to
  its closing brace). Test code is exempt: files named tests.rs or under a
  tests/ folder, and functions marked #[test] or inside a `mod tests`.
- No Rust source file over MAX_FILE_LINES lines, test files aside (and
  the guest's suites are split by area, test files or not): past that a
  file holds more than one idea; split it by one (a submodule per part,
  unit tests in a file of their own).

It reads the files git tracks, as text; rustfmt's layout (a body closes
with a brace at the `fn` line's indentation) is what makes that enough.
"""
import re
import subprocess
import sys

MAX_FN_LINES = 150
MAX_FILE_LINES = 800
FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"C\"\s+)?fn\s+(\w+)")
TEST_MOD = re.compile(r"^(\s*)mod tests\b.*\{\s*$")


def is_test_file(path):
    return (
        "/tests/" in path
        or path.startswith("tests/")
        or path.endswith("tests.rs")
        or "/tests.rs" in path
    )


def long_functions(path, lines):
    found = []
    test_mod_end = None  # indentation of an enclosing `mod tests {`
    for i, line in enumerate(lines):
        if test_mod_end is not None:
            if line == test_mod_end + "}":
                test_mod_end = None
            continue
        m = TEST_MOD.match(line)
        if m:
            test_mod_end = m.group(1)
            continue
        m = FN.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent = m.group(1)
        end = next((j for j in range(i + 1, len(lines)) if lines[j] == indent + "}"), None)
        if end is None:
            continue
        length = end - i + 1
        attrs = "\n".join(lines[max(0, i - 3):i])
        if length > MAX_FN_LINES and "#[test]" not in attrs:
            found.append(f"{path}:{i + 1}: fn {m.group(8)} is {length} lines (limit {MAX_FN_LINES})")
    return found


def main():
    files = subprocess.check_output(["git", "ls-files", "*.rs"], text=True).split()
    problems = []
    for path in files:
        if "third_party/" in path:
            continue
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        length = len(lines) - 1
        if (path.startswith("guest-tools/src/") or not is_test_file(path)) and length > MAX_FILE_LINES:
            problems.append(f"{path}: {length} lines (limit {MAX_FILE_LINES})")
        if not is_test_file(path):
            problems.extend(long_functions(path, lines))
    for p in problems:
        print(p)
    print(f"check-structure: {len(files)} Rust files, {len(problems)} over the limits")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
