"""The evidence pack opened in headless Chromium: it renders offline, every section and plot, and a
screenshot is saved (``make test-browser`` installs Chromium; under ``.promote/screenshots/``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from promoter.report.evidence import SECTIONS
from tests.app.test_evidence import _decide, _evaluation, _pack_files, release_state  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no Chromium on PATH: run `make test-browser`, which installs it")


def test_the_pack_renders_in_a_browser_with_its_sections_and_plots(release_state, tmp_path):  # noqa: F811
    state, registry = release_state
    _decide(state, _evaluation(2, 0.3, seed=2), _evaluation(1, 1.0, seed=1))
    _, _, page, _ = _pack_files(registry, 2)
    html_file = tmp_path / "evidence.html"
    html_file.write_text(page)
    out_dir = ROOT / ".promote" / "screenshots"
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / "evidence-pack.png"
    shot.unlink(missing_ok=True)
    base = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    # offline: the page needs nothing from the network (plots are data URIs)
    dom = subprocess.run(
        [*base, "--dump-dom", f"file://{html_file}"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    for sid, *_ in SECTIONS:
        assert f'id="{sid}"' in dom, sid
    assert dom.count("data:image/png;base64,") == 3
    subprocess.run(
        [*base, "--window-size=1280,6000", f"--screenshot={shot}", f"file://{html_file}"],
        capture_output=True,
        timeout=120,
        check=True,
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    print(f"screenshot: {shot}")
