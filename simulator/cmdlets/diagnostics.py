"""Get-ExchangeDiagnosticInfo, as far as the IM check reads it, and the IM settings a server is configured with.

Microsoft's "Configure instant messaging integration with Outlook on the web in Exchange 2016" shows how
to see the IM settings a server has loaded::

    [xml]$diag=Get-ExchangeDiagnosticInfo -Server <ServerName> -Process MSExchangeMailboxAssistants
      -Component VariantConfiguration -Argument "Config,Component=OwaServer"
    $diag.Diagnostics.Components.VariantConfiguration.Configuration.OwaServer.IMSettings

The answer's XML is the text of the result's ``Result`` property (public scripts read
``(Get-ExchangeDiagnosticInfo ...).Result``). No capture of a real answer exists: the element path is
Microsoft's; IMServerName and IMCertificateThumbprint are written as attributes of ``IMSettings`` here
(the exporter reads attributes and child elements alike), and the result's type name is not known.
Other processes, components and arguments answer as a server does to a name it does not know.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from simulator import errors, psobjects
from simulator.cmdlets import certificates
from simulator.cmdlets.base import STRING, SWITCH, Invocation, Param, cmdlet
from simulator.estate import HostView
from simulator.scenario_model import Host

_RESULT_TYPE = "Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeDiagnosticInfoResult"
_PROCESS = "msexchangemailboxassistants"
_ARGUMENT = "config,component=owaserver"


def configured_im_settings(view: HostView, host_name: str) -> tuple[str | None, str | None]:
    """(IMServerName, IMCertificateThumbprint) as configured for a host, ``${cert:...}`` resolved: web.config
    on 2013, the last setting override (OwaServer/IMSettings) that applies to the server on 2016/2019."""
    host = view.scenario.model.hosts[host_name]
    exchange = host.exchange
    if exchange is None:
        return None, None
    if exchange.version == 2013:
        web = exchange.web_config_im
        if web is None:
            return None, None
        return web.server_name, certificates.resolve(web.certificate_thumbprint, view, host_name)
    values: dict[str, str] = {}
    org = view.scenario.model.exchange_org
    short = host_name.split(".", 1)[0].lower()
    # Organisation-wide overrides first: one for the server itself takes precedence.
    for override in sorted(org.setting_overrides.values() if org else (), key=lambda o: bool(o.servers)):
        if (override.component.lower(), override.section.lower()) != ("owaserver", "imsettings"):
            continue
        if override.servers and not {s.lower() for s in override.servers} & {short, host_name.lower()}:
            continue
        for parameter in override.parameters:
            key, _, value = parameter.partition("=")
            values[key.strip().lower()] = value.strip()
    return (values.get("imservername"),
            certificates.resolve(values.get("imcertificatethumbprint"), view, host_name))


def loaded_im_settings(view: HostView, host_name: str, host: Host) -> tuple[str | None, str | None]:
    """What the server has loaded: the scenario's ``loaded_im_settings``, else what is configured."""
    loaded = host.exchange.loaded_im_settings if host.exchange else None
    if loaded is None:
        return configured_im_settings(view, host_name)
    return loaded.server_name, certificates.resolve(loaded.certificate_thumbprint, view, host_name)


def _variant_configuration_xml(server_name: str | None, thumbprint: str | None) -> str:
    attributes = "".join(f" {key}={quoteattr(value)}" for key, value in
                         (("IMServerName", server_name), ("IMCertificateThumbprint", thumbprint)) if value is not None)
    return ("<Diagnostics><ProcessInfo><id>4711</id><serverName>{server}</serverName></ProcessInfo>"
            "<Components><VariantConfiguration><Configuration><OwaServer>"
            f'<IMSettings Name="IMSettings"{attributes} />'
            "</OwaServer></Configuration></VariantConfiguration></Components></Diagnostics>")


@cmdlet(
    "Get-ExchangeDiagnosticInfo",
    "Microsoft.Exchange.Management.SystemConfigurationTasks.GetExchangeDiagnosticInfo",
    "exchange",
    params=(Param("Server", STRING), Param("Process", STRING), Param("Component", STRING),
            Param("Argument", STRING), Param("Unlimited", SWITCH)),
)
def get_exchange_diagnostic_info(inv: Invocation) -> None:
    view = inv.view
    wanted = (inv.get("Server") or view.name).lower()
    found = next(((name, host) for name, host in view.scenario.model.hosts.items()
                  if host.exchange is not None and wanted in (name.lower(), name.split(".", 1)[0].lower())), None)
    if found is None:
        org = view.scenario.model.exchange_org
        inv.out.error(errors.exchange_not_found(inv.get("Server") or "", inv.cmdlet.name, inv.cmdlet.dotnet_class,
                                                org.domain_controller if org else ""))
        return
    name, host = found
    process, component = (inv.get("Process") or "").lower(), (inv.get("Component") or "").lower()
    argument = (inv.get("Argument") or "").replace(" ", "").lower()
    if (process, component, argument) != (_PROCESS, "variantconfiguration", _ARGUMENT):
        # Only the one question the exporter asks is simulated.
        text = "<Diagnostics><Components /></Diagnostics>"
    else:
        server_name, thumbprint = loaded_im_settings(view, name, host)
        text = _variant_configuration_xml(server_name, thumbprint).replace("{server}", name.split(".", 1)[0].upper())
    inv.out.write(psobjects.ps_object([_RESULT_TYPE, "System.Object"], adapted={"Server": name.split(".", 1)[0].upper(),
                                                                               "Result": text},
                                      to_string=text))
