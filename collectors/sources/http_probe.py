"""One HTTP(S) GET from the exporter to a server, bounded in time: is it up, and what did it answer.

Used for OWA's Managed Availability page (``/owa/healthcheck.htm`` answers 200 while OWA is up).
Redirects are not followed (a redirect to a sign-in page is not "up"), the body is not read, and
environment proxies are ignored: monitoring traffic to servers on the LAN must not wander
through a proxy. TLS certificates are verified unless the caller turns that off; then urllib3's
InsecureRequestWarning, which it raises on every such request (its "always" filter), is silenced, as
pypsrp does for a WSMan endpoint told not to verify: the caller says so once in its own log instead.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import requests
from urllib3.exceptions import InsecureRequestWarning

from collectors.helpers.version import VERSION

USER_AGENT = f"lync-owa-exporter/{VERSION}"
# Why a probe got no HTTP answer; a closed set, so it may be logged and compared across runs.
FAILURES = ("timeout", "tls", "connect", "http")


@dataclass(frozen=True)
class ProbeResult:
    status_code: int  # 0 when there was no HTTP answer
    failure: str | None = None  # one of FAILURES when there was no HTTP answer

    @property
    def up(self) -> bool:
        return self.status_code == 200


_filters_lock = threading.Lock()


def _silence_unverified_warning() -> None:
    with _filters_lock:  # warnings.filters is one list for the whole process
        if not any(f[0] == "ignore" and f[2] is InsecureRequestWarning for f in warnings.filters):
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)


def probe(url: str, timeout: float, verify: bool | str = True) -> ProbeResult:
    """GET ``url`` within about ``timeout`` seconds; ``verify`` is True, False or a CA bundle (PEM).

    Half the time is for connecting (TCP and TLS), half for the status line and headers.
    """
    step = timeout / 2
    if verify is False:
        _silence_unverified_warning()
    session = requests.Session()
    session.trust_env = False  # no proxies, .netrc or CA bundles from the environment
    try:
        response = session.get(
            url,
            timeout=(step, step),
            verify=verify,
            allow_redirects=False,
            stream=True,
            headers={"User-Agent": USER_AGENT},
        )
        response.close()
        return ProbeResult(response.status_code)
    except requests.exceptions.SSLError:
        return ProbeResult(0, "tls")
    except (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout):
        return ProbeResult(0, "timeout")
    except requests.exceptions.ConnectionError:
        return ProbeResult(0, "connect")
    except requests.exceptions.RequestException:
        return ProbeResult(0, "http")
    finally:
        session.close()
