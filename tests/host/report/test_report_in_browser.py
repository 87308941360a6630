"""report.html as a newcomer sees it: opened in a real headless browser (chromium, `make system-packages`).

The page's own layout is measured by a script appended to a copy of it, which writes what it found into the DOM
that `chromium --dump-dom` prints: the first screen must hold the answer, and no table may be wider than the page.
"""
import json
import re
import shutil
import subprocess

import pytest

from orchestrator.report.build import build_report
from testkit.synthetic_sweep import journal, unavailable_journal, write_sweep

WIDTH, HEIGHT = 1400, 1000  # the window a laptop gives a browser
_PROBE = """<script>
window.addEventListener('load', () => {
  const answer = document.getElementById('answer');
  const found = {innerWidth: window.innerWidth, innerHeight: window.innerHeight,
    pageWidth: document.documentElement.scrollWidth,
    firstSection: document.querySelector('h2').textContent,
    answerBottom: answer ? answer.getBoundingClientRect().bottom : null,
    tables: [...document.querySelectorAll('table')].map(t => ({id: t.id, right: t.getBoundingClientRect().right,
                                                                 scroll: t.scrollWidth, client: t.clientWidth}))};
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>"""


def _chromium(*args: str) -> subprocess.CompletedProcess:
    browser = shutil.which("chromium")
    assert browser, "chromium is not installed: `make system-packages` installs it"
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={WIDTH},{HEIGHT}",
                           *args], capture_output=True, text=True, timeout=180)


def _layout(html):
    probe = html.with_name("probe.html")
    probe.write_text(html.read_text().replace("</body>", _PROBE + "</body>"))
    done = _chromium("--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-2000:]
    return json.loads(found.group(1))


@pytest.mark.process
@pytest.mark.parametrize("records", [unavailable_journal, journal], ids=["energy unavailable", "energy measured"])
def test_the_first_screen_holds_the_answer_and_no_table_is_wider_than_the_page(tmp_path, records):
    files = build_report(write_sweep(tmp_path / "sweep", records(), with_samples=False))
    page = _layout(files.html)
    assert page["firstSection"] == "The answer"
    assert page["answerBottom"] is not None and page["answerBottom"] <= page["innerHeight"], page
    assert page["pageWidth"] <= page["innerWidth"], page
    for table in page["tables"]:
        assert table["right"] <= page["innerWidth"] and table["scroll"] <= table["client"] + 1, table
    shot = tmp_path / "first-screen.png"
    done = _chromium(f"--screenshot={shot}", files.html.as_uri())
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", done.stderr[-2000:]
