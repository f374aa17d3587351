"""Pure parts of the OWA application pool collector: state names, settings, the health-check URL."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from collectors.owa_app_pool.collector import (
    POOL_STATES,
    OwaAppPoolSettings,
    healthcheck_url_for,
    pool_state_of,
)


@pytest.mark.parametrize(
    "value, state",
    [
        ("Started", "Started"),
        ("stopped", "Stopped"),
        (" STARTING\r\n", "Starting"),
        ("\u200eStopping", "Stopping"),
        ("Unknown", "Unknown"),
        ("Recycling", None),
        ("", None),
        (None, None),
        (1, None),
    ],
)
def test_pool_state_of(value, state):
    assert pool_state_of(value) == state


def test_states_are_iis_states_in_order():
    assert POOL_STATES == ("Starting", "Started", "Stopping", "Stopped", "Unknown")


def test_defaults_probe_nothing_and_verify_tls():
    settings = OwaAppPoolSettings()
    assert settings.pool_name == "MSExchangeOWAAppPool"
    assert settings.healthcheck_url is None and settings.healthcheck_tls_verify is True
    assert settings.healthcheck_ca_file is None and 0 < settings.healthcheck_timeout < settings.timeout


@pytest.mark.parametrize("name", ["MSExchange*", "Pool?", "a/b", 'say "x"', " lead", "", "x" * 65, "tab\tname"])
def test_pool_names_that_iis_would_not_have_are_refused(name):
    with pytest.raises(ValidationError):
        OwaAppPoolSettings(pool_name=name)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://{host}/owa/healthcheck.htm",
        "{host}/owa/healthcheck.htm",
        "https://{host}/owa/{path}",
        "https://{host.__class__}/owa/healthcheck.htm",
        "https://user:secret@{host}/owa/healthcheck.htm",
        "https:///owa/healthcheck.htm",
        "https://{host}/owa/health check.htm",
    ],
)
def test_bad_healthcheck_urls_are_refused(url):
    with pytest.raises(ValidationError):
        OwaAppPoolSettings(healthcheck_url=url)


def test_healthcheck_url_template():
    template = "https://{host}/owa/healthcheck.htm"
    assert OwaAppPoolSettings(healthcheck_url=template).healthcheck_url == template
    assert healthcheck_url_for(template, "ex01.contoso.com") == "https://ex01.contoso.com/owa/healthcheck.htm"
    assert healthcheck_url_for(template, "fd00::10") == "https://[fd00::10]/owa/healthcheck.htm"
    assert healthcheck_url_for("http://mail.contoso.com:8080/x", "ex01") == "http://mail.contoso.com:8080/x"


def test_ca_file_must_exist_and_is_resolved_against_the_config_directory(tmp_path):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    settings = OwaAppPoolSettings.model_validate({"healthcheck_ca_file": "ca.pem"}, context={"base_dir": tmp_path})
    assert settings.healthcheck_ca_file == str(tmp_path / "ca.pem")
    with pytest.raises(ValidationError, match="does not exist"):
        OwaAppPoolSettings.model_validate({"healthcheck_ca_file": "nope.pem"}, context={"base_dir": tmp_path})


def test_tls_verify_takes_a_real_bool_only():
    with pytest.raises(ValidationError):
        OwaAppPoolSettings(healthcheck_tls_verify="no")
