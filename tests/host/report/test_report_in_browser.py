"""report.html as a newcomer sees it: opened in a real headless browser (chromium, `make system-packages`).

The page's own layout is measured by a script appended to a copy of it, which writes what it found into the DOM
that `chromium --dump-dom` prints: the first screen must hold the answer, and no table may be wider than the page.
"""
import pytest

from orchestrator.report.build import build_report
from testkit.browser import chromium, layout, probe_script
from testkit.synthetic_sweep import journal, unavailable_journal, write_sweep

# measured in the window a laptop gives a browser (testkit.browser: 1400 x 1000)
_PROBE = probe_script("""{innerWidth: window.innerWidth, innerHeight: window.innerHeight,
    pageWidth: document.documentElement.scrollWidth,
    firstSection: document.querySelector('h2').textContent,
    answerBottom: document.getElementById('answer') ? document.getElementById('answer').getBoundingClientRect().bottom
                                                     : null,
    tables: [...document.querySelectorAll('table')].map(t => ({id: t.id, right: t.getBoundingClientRect().right,
                                                                 scroll: t.scrollWidth, client: t.clientWidth}))}""")


@pytest.mark.process
@pytest.mark.parametrize("records", [unavailable_journal, journal], ids=["energy unavailable", "energy measured"])
def test_the_first_screen_holds_the_answer_and_no_table_is_wider_than_the_page(tmp_path, records):
    files = build_report(write_sweep(tmp_path / "sweep", records(), with_samples=False))
    page = layout(files.html, _PROBE)
    assert page["firstSection"] == "The answer"
    assert page["answerBottom"] is not None and page["answerBottom"] <= page["innerHeight"], page
    assert page["pageWidth"] <= page["innerWidth"], page
    for table in page["tables"]:
        assert table["right"] <= page["innerWidth"] and table["scroll"] <= table["client"] + 1, table
    shot = tmp_path / "first-screen.png"
    done = chromium(f"--screenshot={shot}", files.html.as_uri())
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", done.stderr[-2000:]
