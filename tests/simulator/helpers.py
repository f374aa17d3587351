"""Helpers for the simulator's tests: the real pypsrp client against a running Simulator."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from cryptography import x509
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from simulator.server import Simulator

USER = "sim-monitor"
PASSWORD = "Sim-Test-Pw-4b7e"

EX01, EX02 = "ex01.contoso.com", "ex02.contoso.com"
FE01, FE02, EDGE01 = "fe01.contoso.com", "fe02.contoso.com", "edge01.contoso.com"
IM_FOLDER = r"C:\Program Files\Microsoft\Exchange Server\V15\Logging\OWA\InstantMessaging"
WEB_CONFIG = r"C:\Program Files\Microsoft\Exchange Server\V15\ClientAccess\Owa\web.config"
IM_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchange OWA\InstantMessaging"


def wsman_for(sim: Simulator, host: str, exchange: bool = False, password: str = PASSWORD,
              **kwargs: Any) -> WSMan:
    info = sim.hosts()[host]
    options = dict(operation_timeout=5, read_timeout=10, connection_timeout=5)
    options.update(kwargs)
    return WSMan(
        "127.0.0.1",
        port=info.port,
        username=USER,
        password=password,
        ssl=sim.ca_cert_path is not None,
        path="PowerShell" if exchange else "wsman",
        auth="basic",
        encryption="never",
        cert_validation=sim.ca_cert_path or False,
        **options,
    )


@contextlib.contextmanager
def pool_for(sim: Simulator, host: str, exchange: bool = False, configuration: str | None = None,
             **kwargs: Any) -> Iterator[RunspacePool]:
    config = configuration or ("Microsoft.Exchange" if exchange else "Microsoft.PowerShell")
    pool = RunspacePool(wsman_for(sim, host, exchange, **kwargs), configuration_name=config)
    pool.open()
    try:
        yield pool
    finally:
        try:
            pool.close()
        except Exception:  # the test may have broken the connection on purpose
            pass


def run(pool: RunspacePool, cmdlet: str, **params: Any) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(cmdlet)
    for name, value in params.items():
        ps.add_parameter(name, value)
    ps.invoke()
    return ps


def props(obj: Any) -> dict:
    """Adapted and extended properties of a pypsrp GenericComplexObject."""
    return {**obj.adapted_properties, **obj.extended_properties}


def error_ids(ps: PowerShell) -> list[str]:
    return [e.fq_error for e in ps.streams.error]


def der_certificates(output: Iterable[Any]) -> dict[str, x509.Certificate]:
    """Thumbprint (the SHA-1 of the DER, as Windows computes it) -> certificate, for answer objects
    that carry a certificate as ``RawData`` (Get-ExchangeCertificate, Cert:\\LocalMachine\\My)."""
    found = {}
    for obj in output:
        der = obj.adapted_properties["RawData"]
        assert isinstance(der, bytes)
        found[hashlib.sha1(der).hexdigest().upper()] = x509.load_der_x509_certificate(der)
    return found


def thumbprint_with_serial(output: Iterable[Any], serial_hex: str) -> str:
    """The thumbprint of the answered certificate whose serial number the scenario set."""
    (thumbprint,) = [t for t, c in der_certificates(output).items() if c.serial_number == int(serial_hex, 16)]
    return thumbprint


def dns_names(certificate: x509.Certificate) -> list[str]:
    return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
