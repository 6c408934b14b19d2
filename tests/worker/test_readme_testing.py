"""The README's "Testing your handlers" example runs as written, in a directory of its own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> dict[str, str]:
    """The README section's Python blocks, by the file name on their first line."""
    text = (ROOT / "README.md").read_text()
    section = text.split("#### Testing your handlers", 1)[1].split("\n#### ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    return {block.splitlines()[0].removeprefix("# ").strip(): block for block in blocks}


def test_the_readme_example_is_a_handler_and_its_test() -> None:
    files = readme_example()
    assert sorted(files) == ["tasks.py", "test_tasks.py"]
    assert len(files["test_tasks.py"].strip().splitlines()) <= 20


def test_the_readme_example_passes_as_written(tmp_path: Path) -> None:
    for name, body in readme_example().items():
        (tmp_path / name).write_text(body)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
