"""The status page in a real headless browser: the demo, healthy and then with ex01's IM certificate
renewed behind web.config's back (``thumbprint-drift``, switched live through the simulator's control
API), served over HTTPS with basic authentication as ``--web.config.file`` sets it up.

Chromium renders ``/`` (``--dump-dom``: the verdict and the fix are in the page as rendered) and takes
a screenshot of each state. With UPDATE_STATUS_PAGE_SCREENSHOTS=1 the screenshots replace the ones in
docs/ that the README shows.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import requests

from tests.conftest import PROJECT_ROOT, free_port, unavailable
from tests.tls_material import (
    WEB_HASH,
    WEB_PASSWORD,
    WEB_USER,
    TestCA,
    write_web_config,
)

pytestmark = pytest.mark.e2e

# Bounds on waits on this small shared machine; nothing here measures time.
READY_WITHIN_SECONDS = 180
ATTEMPTS = 5  # a busy machine can fail one run between two page loads: take the pair again
BROWSER_TIMEOUT_SECONDS = 90
SCREENSHOT_SIZE = (1200, 1000)
HEALTHY = "Yes: OK on all 3"
FIX = "Get-ExchangeCertificate -Server ex01"


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        unavailable("chromium is not installed (scripts/bootstrap --with-system-packages installs Debian's chromium)")
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo behind TLS and basic auth; yields (base URL, CA file, simulator control URL)."""
    folder = tmp_path_factory.mktemp("status-page")
    ca = TestCA(folder)
    server = ca.issue("server", server=True)
    web = write_web_config(folder, {"tls_server_config": {"cert_file": str(server.cert_path),
                                                          "key_file": str(server.key_path)},
                                    "basic_auth_users": {WEB_USER: WEB_HASH}})
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "demo", "--web.listen-address", f"127.0.0.1:{port}",
         "--simulator.listen", "127.0.0.1:0", "--web.config.file", str(web)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        yield f"https://127.0.0.1:{port}", str(ca.cert_path), _control_url(process, lines)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        reader.join(10)
        output = "".join(lines)
        print(output)  # shown when a test fails
        assert WEB_PASSWORD not in output


def _control_url(process: subprocess.Popen, lines: list[str]) -> str:
    """The simulator's control API, as the demo's banner names it (its port is chosen at start)."""
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        for line in list(lines):
            found = re.search(r"simulator API:\s+(http://\S+)/control/state", line)
            if found:
                return found.group(1)
        time.sleep(0.2)
    pytest.fail(f"the demo printed no simulator API address:\n{''.join(lines)}")


def _page(url: str, ca_file: str) -> str:
    response = requests.get(url + "/", auth=(WEB_USER, WEB_PASSWORD), verify=ca_file, timeout=20)
    response.raise_for_status()
    return response.text


def _wait_for(url: str, ca_file: str, text: str) -> str:
    """The page once it shows ``text`` and every collector has run (nothing is "not checked")."""
    deadline, page = time.monotonic() + READY_WITHIN_SECONDS, ""
    while time.monotonic() < deadline:
        try:
            page = _page(url, ca_file)
        except requests.RequestException:
            page = ""
        if text in page and "not checked" not in page:
            return page
        time.sleep(0.5)
    pytest.fail(f"the status page did not show {text!r} within {READY_WITHIN_SECONDS}s:\n{page[:3000]}")


def _browser(url: str, *action: str) -> str:
    """Run headless Chromium on the protected page (credentials in the URL, the test CA not trusted)."""
    with_credentials = url.replace("https://", f"https://{WEB_USER}:{WEB_PASSWORD}@") + "/"
    result = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--ignore-certificate-errors", f"--window-size={SCREENSHOT_SIZE[0]},{SCREENSHOT_SIZE[1]}",
         *action, with_credentials],
        capture_output=True, text=True, timeout=BROWSER_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _text(dom: str) -> str:
    """What a reader sees: the DOM without tags and with entities resolved."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def _rows(dom: str) -> dict[str, str]:
    """The verdict table as rendered: server -> status."""
    table = dom.split("<table class=\"verdict\">", 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<tr class=\"(\w+)\"><td>([^<]*)</td><td><strong>(\w+)</strong>", table)
    for css_class, _, status in cells:
        assert css_class == status  # the colour follows the status
    return {server: status for _, server, status in cells}


def _capture(url: str, tmp_path: Path, name: str, rows: dict[str, str]) -> str:
    """Screenshot the page, then dump its DOM; the pair counts when the DOM shows ``rows`` and every check
    has run (a busy machine can make one run fail between the two loads)."""
    shot, dom = tmp_path / name, ""
    for _ in range(ATTEMPTS):
        _browser(url, f"--screenshot={shot}")
        dom = _browser(url, "--dump-dom")
        if _rows(dom) == rows and "not checked" not in _text(dom):
            break
        time.sleep(5)
    assert _rows(dom) == rows, _text(dom)[:3000]
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == SCREENSHOT_SIZE
    if os.environ.get("UPDATE_STATUS_PAGE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, PROJECT_ROOT / "docs" / name)
    return dom


def test_the_page_needs_the_credentials_of_the_web_config(demo):
    url, ca_file, _ = demo
    _wait_for(url, ca_file, "Is IM and presence in Outlook Web App working?")
    assert requests.get(url + "/", verify=ca_file, timeout=20).status_code == 401
    assert requests.get(url + "/", auth=(WEB_USER, "wrong"), verify=ca_file, timeout=20).status_code == 401


def test_healthy_then_broken_in_chromium(demo, tmp_path):
    url, ca_file, control = demo
    _wait_for(url, ca_file, HEALTHY)
    dom = _capture(url, tmp_path, "status-page-healthy.png",
                   {"ex01": "OK", "ex02": "OK", "Exchange Online (through edge01)": "OK"})
    assert HEALTHY in _text(dom) and "What is broken" not in _text(dom)

    request = urllib.request.Request(control + "/control/scenario", data=json.dumps({"name": "thumbprint-drift"}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as response:
        assert json.load(response)["scenario"] == "thumbprint-drift"
    _wait_for(url, ca_file, "No: IM in OWA is BROKEN for ex01")
    dom = _capture(url, tmp_path, "status-page-broken.png",
                   {"ex01": "BROKEN", "ex02": "OK", "Exchange Online (through edge01)": "OK"})
    text = _text(dom)
    assert "No: IM in OWA is BROKEN for ex01" in text
    assert "ex01: im_thumbprint_matches_no_certificate" in text
    assert "Check: E3 IM settings and certificate (collector im_certificate); failing: thumbprint_matches_certificate" in text
    assert re.search(r"Broken since: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text)
    assert f"<code>{FIX}</code>" in dom


def test_the_committed_screenshots_are_pngs_of_the_page():
    for name in ("status-page-healthy.png", "status-page-broken.png"):
        header = (PROJECT_ROOT / "docs" / name).read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", header[16:24]) == SCREENSHOT_SIZE
        assert f"docs/{name}" in (PROJECT_ROOT / "README.md").read_text()
