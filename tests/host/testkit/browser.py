"""A report page as a real headless browser lays it out (chromium, `make system-packages`).

A script appended to a copy of the page measures it once loaded and writes what it found into the DOM as JSON,
which `chromium --dump-dom` prints: the tests read layout (widths, the first screen) from the browser itself.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

WIDTH, HEIGHT = 1400, 1000


def probe_script(measure: str) -> str:
    """The script that stores `measure` (a JavaScript expression) as JSON in <pre id="probe"> once the page loaded."""
    return ("<script>\nwindow.addEventListener('load', () => {\n  const found = " + measure + ";\n"
            "  const out = document.createElement('pre');\n  out.id = 'probe';\n"
            "  out.textContent = JSON.stringify(found);\n  document.body.appendChild(out);\n});\n</script>")


def chromium(*args: str, width: int = WIDTH, height: int = HEIGHT) -> subprocess.CompletedProcess:
    browser = shutil.which("chromium")
    assert browser, "chromium is not installed: `make system-packages` installs it"
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={width},{height}",
                           *args], capture_output=True, text=True, timeout=180)


def layout(html: Path, script: str, probe: Path | None = None, **window) -> dict:
    """What `script` (from probe_script) found in `html` laid out by chromium; the probe copy is written beside it."""
    probe = probe or html.with_name("probe.html")
    probe.write_text(html.read_text().replace("</body>", script + "</body>"))
    done = chromium("--dump-dom", probe.as_uri(), **window)
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-2000:]
    return json.loads(found.group(1))
