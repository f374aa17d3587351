"""What check E3 asks Exchange servers for, shaped as real servers answer (../shared/captures/exchange).

The Setup registry key (install path, version and build), the setting overrides of Exchange 2016/2019,
the installed certificates (DER only, over Exchange's remote endpoint), which of them the server holds a
private key for (its certificate store, over the Windows endpoint), and the Exchange Server Auth
certificate's thumbprint.
"""

from __future__ import annotations

from collectors.contract import Field, Shape

SETUP_KEY = r"HKLM:\SOFTWARE\Microsoft\ExchangeServer\v15\Setup"
WEB_CONFIG_RELATIVE = r"ClientAccess\Owa\web.config"
EXCHANGE_2013 = (15, 0)

SETUP = Shape(
    "Get-ItemProperty",
    (
        Field("MsiInstallPath", "str"),
        Field("MsiProductMajor", "int"),
        Field("MsiProductMinor", "int"),
        # The build, for a setting override's MinVersion/MaxVersion (absent: every override applies).
        Field("MsiBuildMajor", "int", required=False, nullable=True),
        Field("MsiBuildMinor", "int", required=False, nullable=True),
    ),
)
# Property names as real Exchange 2016/2019 servers send them (../shared/captures/exchange/E19).
SETTING_OVERRIDE = Shape(
    "Get-SettingOverride",
    (
        Field("ComponentName", "str", required=False, nullable=True),
        Field("SectionName", "str", required=False, nullable=True),
        Field("Parameters", "list", required=False, nullable=True),
        Field("Server", "list", required=False, nullable=True),
        Field("MinVersion", "str", required=False, nullable=True),
        Field("MaxVersion", "str", required=False, nullable=True),
        Field("Status", "str", required=False, nullable=True),
        # When the override last changed: did OWA's worker start after it (override_recycle)?
        Field("WhenChangedUTC", "datetime", required=False, nullable=True),
        Field("WhenChanged", "datetime", required=False, nullable=True),
    ),
)
# Over Exchange's remote endpoint a certificate carries only its DER (../shared/captures/exchange/wire).
EXCHANGE_CERTIFICATE = Shape("Get-ExchangeCertificate", (Field("RawData", "bytes"),))
# Whether the server holds a certificate's private key: its LocalMachine\My store, through the Windows
# endpoint. PowerShell's type table sends an X509Certificate2 as RawData only, so the two properties
# are selected on the server (Get-ChildItem | Select-Object -Property Thumbprint,HasPrivateKey).
CERT_STORE = r"Cert:\LocalMachine\My"
STORE_CERTIFICATE = Shape(
    "Get-ChildItem",
    (Field("Thumbprint", "str", nullable=True), Field("HasPrivateKey", "bool", nullable=True)),
    select=True,
)
AUTH_CONFIG = Shape("Get-AuthConfig", (Field("CurrentCertificateThumbprint", "str", required=False, nullable=True),))
