"""The text of OWA's web.config on a simulated Exchange server.

Exchange 2013 keeps the IM settings as two appSettings keys here; later versions keep them in a
setting override, so their web.config has no IM keys. A cumulative update rewrites the file and
drops the keys: a scenario expresses that with ``web_config_im: null`` (or a null key).
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from simulator.scenario_model import ExchangeServer

_HEAD = """<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <configSections>
    <sectionGroup name="system.web.extensions" type="System.Web.Configuration.SystemWebExtensionsSectionGroup" />
  </configSections>
  <appSettings>
    <add key="owa:StartUpAssemblies" value="Microsoft.Exchange.Clients.Owa2.Server.dll" />
    <add key="AggregateMailboxSessionCacheSize" value="600" />
    <add key="LogonHealthCheckEnabled" value="true" />
    <add key="ClientVersionForOwaPremium" value="15.0.0.0" />
"""
_TAIL = """  </appSettings>
  <system.web>
    <compilation debug="false" defaultLanguage="c#" targetFramework="4.5" batch="true" />
    <httpRuntime maxRequestLength="35000" requestValidationMode="2.0" />
    <sessionState mode="Off" />
  </system.web>
</configuration>
"""


def path_of(exchange: ExchangeServer) -> str:
    return exchange.install_path.rstrip("\\") + r"\ClientAccess\Owa\web.config"


def render(exchange: ExchangeServer, certificate_thumbprint: str | None = None) -> str:
    """The file; ``certificate_thumbprint`` is ``web_config_im.certificate_thumbprint`` with its
    ``${cert:...}`` references resolved (simulator/cmdlets/certificates.py)."""
    lines = []
    im = exchange.web_config_im
    if exchange.version == 2013 and im is not None:
        if im.certificate_thumbprint is not None:
            value = certificate_thumbprint if certificate_thumbprint is not None else im.certificate_thumbprint
            lines.append(f'    <add key="IMCertificateThumbprint" value={quoteattr(value)} />\n')
        if im.server_name is not None:
            lines.append(f'    <add key="IMServerName" value={quoteattr(im.server_name)} />\n')
    # Windows text files: CRLF line ends.
    return (_HEAD + "".join(lines) + _TAIL).replace("\n", "\r\n")
