"""Configuration loading: every kind of bad input names its key path and line; valid files load."""

from __future__ import annotations

import copy
import logging
import os
import re
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from collectors import registry
from collectors.contract import CollectorSettings
from exporter.config import (
    ROLES,
    Config,
    ConfigError,
    Credential,
    Endpoint,
    GlobalSettings,
    JobSpec,
    Problem,
    Target,
    load_config,
)

REPO = Path(__file__).resolve().parents[2]
SECRET = "Zebra-Quartz-9f3!k7"  # distinctive, so a leak anywhere is found by a substring search
ENV = {"LYNC_OWA_PASSWORD": SECRET}


class ImLogSettings(CollectorSettings):
    """A collector with a key of its own, to check that subclasses merge and forbid extras."""

    folder: str = r"C:\Program Files\Microsoft\Exchange Server\V15\Logging\OWA\InstantMessaging"
    max_files: int = 10


COLLECTORS = {
    "cms_replication": SimpleNamespace(settings_model=CollectorSettings, roles=frozenset({"lync_frontend"})),
    "im_logs": SimpleNamespace(settings_model=ImLogSettings, roles=frozenset({"exchange_mailbox"})),
}

BASE = textwrap.dedent(
    r"""
    global:
      staleness_intervals: 3
      max_concurrent_jobs: 16
      lync_pool_fqdn: pool01.contoso.com
    credentials:
      monitoring:
        username: CONTOSO\svc-lyncowa
        password_env: LYNC_OWA_PASSWORD
        auth: negotiate
    collectors:
      cms_replication:
        interval: 60s
        timeout: 20s
    targets:
      - name: fe01
        host: fe01.contoso.com
        roles: [lync_frontend]
        credential: monitoring
        collectors:
          cms_replication:
            interval: 30s
      - name: ex01
        host: ex01.contoso.com
        roles: [exchange_mailbox, exchange_client_access]
        credential: monitoring
    """
).lstrip()


# ---- helpers -------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str, environ=None, collectors=None) -> Config:
    return load_config(
        write(tmp_path, text), COLLECTORS if collectors is None else collectors, ENV if environ is None else environ
    )


def problems(tmp_path: Path, text: str, environ=None) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, environ)
    return info.value.problems


def line_of(text: str, snippet: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing snippet."""
    hits = [number for number, line in enumerate(text.splitlines(), 1) if snippet in line]
    return hits[occurrence - 1]


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def assert_problem(found: list[Problem], path: str, line: int | None, fragment: str) -> Problem:
    """Exactly the problem at this key path and line whose message contains fragment."""
    for problem in found:
        if problem.path == path and problem.line == line and fragment in problem.message:
            return problem
    raise AssertionError(
        f"no problem {path!r} at line {line} containing {fragment!r} in:\n" + "\n".join(map(str, found))
    )


# ---- valid configurations ------------------------------------------------------------------------


def test_valid_config_round_trip(tmp_path):
    cfg = load(tmp_path, BASE)

    assert cfg.global_ == GlobalSettings(
        staleness_intervals=3, max_concurrent_jobs=16, lync_pool_fqdn="pool01.contoso.com"
    )
    assert [t.name for t in cfg.targets] == ["fe01", "ex01"]
    fe01, ex01 = cfg.targets
    assert fe01.host == "fe01.contoso.com"
    assert fe01.roles == frozenset({"lync_frontend"})
    assert ex01.roles == frozenset({"exchange_mailbox", "exchange_client_access"})
    assert fe01.credential == Credential("monitoring", "CONTOSO\\svc-lyncowa", SecretStr(SECRET), "negotiate")
    assert fe01.credential.password.get_secret_value() == SECRET
    assert cfg.credentials["monitoring"] is fe01.credential


def test_collector_settings_merge_defaults_section_and_target(tmp_path):
    cfg = load(tmp_path, BASE)
    fe01, ex01 = cfg.targets
    # model defaults <- collectors.cms_replication <- the target's own section
    on_fe01 = fe01.collector_settings("cms_replication")
    assert (on_fe01.enabled, on_fe01.interval, on_fe01.timeout, on_fe01.jitter) == (True, 30.0, 20.0, 3.0)
    # ex01 has no override: the shared section applies (even though it does not run there)
    assert ex01.collector_settings("cms_replication").interval == 60.0
    assert ex01.collector_settings("cms_replication").jitter == 6.0
    # no section at all: the model's defaults
    im = ex01.collector_settings("im_logs")
    assert isinstance(im, ImLogSettings)
    assert (im.interval, im.timeout, im.jitter, im.max_files) == (60.0, 30.0, 6.0, 10)
    with pytest.raises(KeyError, match="nope"):
        fe01.collector_settings("nope")


def test_collector_subclass_keys_merge(tmp_path):
    text = edit(
        "collectors:\n  cms_replication:",
        "collectors:\n  im_logs:\n    max_files: 3\n    interval: 2m\n  cms_replication:",
    )
    text += "    collectors:\n      im_logs: {folder: 'D:\\IM', jitter: 0s}\n"  # BASE ends inside ex01
    im = load(tmp_path, text).target("ex01").collector_settings("im_logs")
    assert (im.folder, im.max_files, im.interval, im.timeout, im.jitter) == ("D:\\IM", 3, 120.0, 30.0, 0.0)


def test_defaults_for_endpoints_and_global(tmp_path):
    text = edit(
        "global:\n  staleness_intervals: 3\n  max_concurrent_jobs: 16\n  lync_pool_fqdn: pool01.contoso.com\n", ""
    )
    cfg = load(tmp_path, text)
    assert cfg.global_ == GlobalSettings(staleness_intervals=3, max_concurrent_jobs=64, lync_pool_fqdn=None)
    fe01 = cfg.target("fe01")
    assert fe01.endpoint("windows") == Endpoint(
        "windows", "https://fe01.contoso.com:5986/wsman", "Microsoft.PowerShell", True, None, "auto"
    )
    assert fe01.endpoint("exchange") == Endpoint(
        "exchange", "http://fe01.contoso.com/PowerShell", "Microsoft.Exchange", True, None, "auto"
    )
    assert fe01.endpoint("lync") == Endpoint(
        "lync", "https://fe01.contoso.com/OcsPowershell", "Microsoft.PowerShell", True, None, "auto"
    )
    assert cfg.global_.hybrid == "auto"
    with pytest.raises(ValueError, match="unknown endpoint kind"):
        fe01.endpoint("ssh")


@pytest.mark.parametrize(("written", "read"), [("auto", "auto"), ("true", True), ("false", False)])
def test_hybrid_is_auto_true_or_false(tmp_path, written, read):
    text = edit("  lync_pool_fqdn: pool01.contoso.com\n", f"  lync_pool_fqdn: pool01.contoso.com\n  hybrid: {written}\n")
    assert load(tmp_path, text).global_.hybrid == read


def test_hybrid_other_values_are_one_clear_problem(tmp_path):
    text = edit("  lync_pool_fqdn: pool01.contoso.com\n", "  lync_pool_fqdn: pool01.contoso.com\n  hybrid: maybe\n")
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert_problem(found, "global.hybrid", line_of(text, "hybrid:"), "must be auto, true or false, got 'maybe'")


def test_lync_endpoint_overrides(tmp_path):
    text = edit(
        "    credential: monitoring\n",
        "    credential: monitoring\n"
        "    endpoints:\n"
        "      lync: {url: 'https://pool01.contoso.com:4443/OcsPowershell', spn_hostname: pool01.contoso.com}\n",
    )
    lync = load(tmp_path, text).target("fe01").endpoint("lync")
    assert (lync.url, lync.configuration, lync.spn_hostname) == (
        "https://pool01.contoso.com:4443/OcsPowershell", "Microsoft.PowerShell", "pool01.contoso.com")


def test_endpoint_overrides_and_relative_ca_file(tmp_path):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    text = edit(
        "    credential: monitoring\n",
        "    credential: monitoring\n"
        "    endpoints:\n"
        "      windows:\n"
        "        {url: 'https://10.0.0.5:5985/wsman', configuration: LyncOwaJEA, ca_file: ca.pem, encryption: always}\n"
        "      exchange:\n",  # null section: defaults
    )
    fe01 = load(tmp_path, text).target("fe01")
    assert fe01.endpoint("windows") == Endpoint(
        "windows", "https://10.0.0.5:5985/wsman", "LyncOwaJEA", True, str(tmp_path / "ca.pem"), "always"
    )
    assert fe01.endpoint("exchange").url == "http://fe01.contoso.com/PowerShell"


def test_ipv6_host_gets_bracketed_default_urls(tmp_path):
    fe01 = load(tmp_path, edit("host: fe01.contoso.com", "host: 'fd00::5'")).target("fe01")
    assert fe01.endpoint("windows").url == "https://[fd00::5]:5986/wsman"


def test_jobs_filter_by_role_and_enabled(tmp_path):
    text = BASE + textwrap.indent(
        textwrap.dedent(
            """\
            - name: fe02
              host: fe02.contoso.com
              roles: [lync_frontend]
              credential: monitoring
              collectors:
                cms_replication: {enabled: false}
            - name: edge01
              host: edge01.contoso.com
              roles: [lync_edge]
              credential: monitoring
            """
        ),
        "  ",
    )
    cfg = load(tmp_path, text)
    jobs = cfg.jobs(COLLECTORS)
    assert [(j.collector, j.target.name) for j in jobs] == [("cms_replication", "fe01"), ("im_logs", "ex01")]
    assert jobs == cfg.jobs()  # defaults to the registry it was loaded with
    assert all(isinstance(j, JobSpec) for j in jobs)
    assert jobs[0].settings == cfg.target("fe01").collector_settings("cms_replication")
    assert jobs[0].id == "cms_replication/fe01"
    assert len({*jobs}) == 2  # hashable, so a scheduler can key on them
    assert jobs[0].target in {cfg.target("fe01")}


def test_password_file_is_read_and_trailing_newline_stripped(tmp_path, caplog):
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    text = edit("password_env: LYNC_OWA_PASSWORD", "password_file: secret")
    with caplog.at_level(logging.WARNING):
        cfg = load(tmp_path, text, environ={})
    assert cfg.credentials["monitoring"].password.get_secret_value() == SECRET
    assert "readable" not in caplog.text


def test_password_file_readable_by_others_warns(tmp_path, caplog):
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\r\n")
    secret_file.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        cfg = load(tmp_path, edit("password_env: LYNC_OWA_PASSWORD", "password_file: secret"), environ={})
    assert cfg.credentials["monitoring"].password.get_secret_value() == SECRET
    assert "readable by group or others" in caplog.text and str(secret_file) in caplog.text
    assert SECRET not in caplog.text


def test_tls_verify_false_logs_a_warning_naming_the_target(tmp_path, caplog):
    text = edit(
        "    credential: monitoring\n",
        "    credential: monitoring\n    endpoints:\n      windows: {tls_verify: false}\n",
    )
    with caplog.at_level(logging.WARNING, logger="exporter.config"):
        cfg = load(tmp_path, text)
    assert cfg.target("fe01").endpoint("windows").tls_verify is False
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("fe01" in w and "TLS certificate verification is disabled" in w for w in warnings)


def test_basic_auth_over_http_warns_only_where_the_endpoint_is_used(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="exporter.config"):
        load(tmp_path, edit("auth: negotiate", "auth: basic"))
    warnings = [r.getMessage() for r in caplog.records if "Basic auth" in r.getMessage()]
    # ex01's Exchange endpoint is plain http; fe01 (a front end) never uses its Exchange endpoint
    assert len(warnings) == 1 and warnings[0].startswith("target ex01:") and "exchange endpoint" in warnings[0]


def test_yaml_merge_keys_and_aliases_are_supported(tmp_path):
    text = edit(
        "collectors:\n  cms_replication:\n    interval: 60s\n    timeout: 20s\n",
        "collectors:\n  cms_replication: &fast\n    interval: 60s\n    timeout: 20s\n",
    )
    text = edit(
        "      cms_replication:\n        interval: 30s\n",
        "      cms_replication:\n        <<: *fast\n        interval: 30s\n",
        text,
    )
    fe01 = load(tmp_path, text).target("fe01")
    assert (
        fe01.collector_settings("cms_replication").interval,
        fe01.collector_settings("cms_replication").timeout,
    ) == (30.0, 20.0)


def test_example_config_loads():
    example = REPO / "examples" / "config.yaml"
    text = example.read_text()
    variables = re.findall(r"^\s*password_env:\s*(\S+)", text, re.MULTILINE)
    assert variables, "the example should take its passwords from the environment"
    cfg = load_config(example, registry.by_name(), {v: SECRET for v in variables})

    roles = {t.name: t.roles for t in cfg.targets}
    assert roles == {
        "ex01": {"exchange_mailbox", "exchange_client_access"},
        "ex02": {"exchange_mailbox", "exchange_client_access"},
        "fe01": {"lync_frontend"},
        "fe02": {"lync_frontend"},
        "edge01": {"lync_edge"},
    }
    assert [(j.collector, j.target.name, j.settings.interval) for j in cfg.jobs() if j.collector == "cms_replication"] == [
        ("cms_replication", "fe01", 30.0),
        ("cms_replication", "fe02", 60.0),
    ]
    # Every collector shown in the example is a real one, and each runs on the targets of its roles.
    assert {j.collector for j in cfg.jobs()} == set(registry.by_name())
    for job in cfg.jobs():
        assert job.target.roles & registry.by_name()[job.collector].roles
    assert cfg.target("fe01").collector_settings("cms_replication").jitter == 5.0
    assert cfg.target("edge01").credential.auth == "ntlm"
    assert SECRET not in repr(cfg)


def test_example_shows_every_key():
    text = (REPO / "examples" / "config.yaml").read_text()
    keys = set(re.findall(r"^\s*(?:#\s*)?-?\s*([a-z_]+):", text, re.MULTILINE))
    expected = {
        "global", "staleness_intervals", "max_concurrent_jobs", "lync_pool_fqdn",
        "credentials", "username", "password_env", "password_file", "auth",
        "collectors", "enabled", "interval", "timeout", "jitter",
        "targets", "name", "host", "roles", "credential", "endpoints", "windows", "exchange",
        "url", "configuration", "tls_verify", "ca_file", "encryption",
    }  # fmt: skip
    assert expected <= keys, expected - keys


# ---- collector settings in code ------------------------------------------------------------------


def test_collector_settings_defaults_and_jitter_rules():
    assert CollectorSettings().model_dump() == {"enabled": True, "interval": 60.0, "timeout": 30.0, "jitter": 6.0}
    assert CollectorSettings(interval=3600, timeout=60).jitter == 30.0  # capped
    assert CollectorSettings(interval="5m", timeout="1m", jitter="0s").jitter == 0.0
    with pytest.raises(ValueError, match=r"jitter \(1m\) must be shorter than interval \(1m\)"):
        CollectorSettings(interval="1m", timeout="10s", jitter="1m")
    with pytest.raises(ValueError, match=r"timeout \(30s\) must be shorter than interval \(20s\)"):
        CollectorSettings(interval="20s")
    with pytest.raises(ValueError, match="Extra inputs"):
        CollectorSettings(intervall="20s")


# ---- one test per kind of bad input --------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", COLLECTORS, ENV)
    (problem,) = info.value.problems
    assert problem.line is None and "cannot read configuration file" in problem.message
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: cannot read configuration file: No such file or directory"


def test_unreadable_file(tmp_path):
    # A directory cannot be read as a file, even by root (chmod 000 would not stop root).
    with pytest.raises(ConfigError, match="cannot read configuration file: not a regular file"):
        load_config(tmp_path, COLLECTORS, ENV)


def test_not_yaml_reports_the_parser_line(tmp_path):
    text = edit("roles: [lync_frontend]", "roles: [lync_frontend")
    (problem,) = problems(tmp_path, text)
    assert "not valid YAML" in problem.message
    assert problem.line == line_of(text, "credential: monitoring")  # where the parser noticed
    assert re.match(
        rf"^{re.escape(str(tmp_path / 'config.yaml'))}:{problem.line}:\d+: not valid YAML",
        str(problems_error(tmp_path, text)),
    )


def problems_error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value


def test_control_character_is_reported_with_its_line(tmp_path):
    text = edit("host: ex01.contoso.com", "host: ex01\x07.contoso.com")
    (problem,) = problems(tmp_path, text)
    assert "control character #x0007" in problem.message
    assert problem.line == line_of(text, "host: ex01")


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"targets:\n  - name: caf\xe9\n")
    with pytest.raises(ConfigError, match="not valid YAML: the file is not utf-8 text"):
        load_config(path, COLLECTORS, ENV)


def test_empty_file(tmp_path):
    (problem,) = problems(tmp_path, "# nothing here\n")
    assert "empty" in problem.message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "~\n"])
def test_top_level_not_a_mapping(tmp_path, text):
    (problem,) = problems(tmp_path, text)
    assert (problem.path, problem.line) == ("", 1)
    assert "top level must be a mapping" in problem.message


def test_unknown_top_level_key(tmp_path):
    text = BASE + "scrape_interval: 30s\n"
    assert_problem(
        problems(tmp_path, text), "scrape_interval", line_of(text, "scrape_interval"), "unknown key 'scrape_interval'"
    )


def test_unknown_keys_anywhere(tmp_path):
    text = edit("  max_concurrent_jobs: 16", "  max_concurent_jobs: 16")
    text = edit("    auth: negotiate", "    auth: negotiate\n    domain: CONTOSO", text)
    text = edit("    host: ex01.contoso.com", "    host: ex01.contoso.com\n    port: 5986", text)
    text = edit(
        "    credential: monitoring\n",
        "    credential: monitoring\n    endpoints:\n      windows: {verify: false}\n",
        text,
    )
    found = problems(tmp_path, text)
    p = assert_problem(
        found, "global.max_concurent_jobs", line_of(text, "max_concurent_jobs"), "unknown key 'max_concurent_jobs'"
    )
    assert "did you mean 'max_concurrent_jobs'" in p.message
    assert_problem(found, "credentials.monitoring.domain", line_of(text, "domain:"), "unknown key 'domain'")
    assert_problem(found, "targets[1].port", line_of(text, "port: 5986"), "unknown key 'port'")
    p = assert_problem(
        found, "targets[0].endpoints.windows.verify", line_of(text, "verify: false"), "unknown key 'verify'"
    )
    assert "allowed: url, configuration, tls_verify, ca_file, encryption" in p.message


def test_unknown_key_inside_collector_sections(tmp_path):
    text = edit("    timeout: 20s", "    timeout: 20s\n    intervall: 5m")
    text = edit("        interval: 30s", "        interval: 30s\n        retries: 3", text)
    found = problems(tmp_path, text)
    p = assert_problem(
        found, "collectors.cms_replication.intervall", line_of(text, "intervall"), "unknown key 'intervall'"
    )
    assert "did you mean 'interval'" in p.message
    assert_problem(
        found, "targets[0].collectors.cms_replication.retries", line_of(text, "retries"), "unknown key 'retries'"
    )
    assert len(found) == 2  # the shared section's error is not repeated for every target


def test_unknown_collector_name(tmp_path):
    text = edit("collectors:\n  cms_replication:", "collectors:\n  cms_replicaton: {}\n  cms_replication:")
    text = edit(
        "      cms_replication:\n        interval: 30s",
        "      cms_replication:\n        interval: 30s\n      event_112: {}",
        text,
    )
    found = problems(tmp_path, text)
    p = assert_problem(
        found, "collectors.cms_replicaton", line_of(text, "cms_replicaton"), "unknown collector 'cms_replicaton'"
    )
    assert "did you mean 'cms_replication'" in p.message
    assert_problem(
        found, "targets[0].collectors.event_112", line_of(text, "event_112"), "unknown collector 'event_112'"
    )


def test_wrong_types(tmp_path):
    text = edit("max_concurrent_jobs: 16", "max_concurrent_jobs: many")
    text = edit("roles: [lync_frontend]", "roles: lync_frontend", text)
    text = edit("    host: ex01.contoso.com", "    host: 2019", text)
    text = edit(
        "    credential: monitoring\n",
        "    credential: monitoring\n    endpoints:\n      windows: {tls_verify: 'no'}\n",
        text,
    )
    text = edit("    interval: 60s", "    interval: [60s]", text)
    text = edit(
        "credentials:\n  monitoring:\n",
        "credentials:\n  monitoring:\n    username: [a]\n",
        text.replace("    username: CONTOSO\\svc-lyncowa\n", "", 1),
    )
    found = problems(tmp_path, text)
    assert_problem(
        found,
        "global.max_concurrent_jobs",
        line_of(text, "max_concurrent_jobs"),
        "must be a valid integer, got a string",
    )
    assert_problem(
        found, "targets[0].roles", line_of(text, "roles: lync_frontend"), "must be a valid list, got a string"
    )
    assert_problem(
        found, "targets[1].host", line_of(text, "host: 2019"), "must be a valid string, got an integer; quote it"
    )
    assert_problem(
        found,
        "targets[0].endpoints.windows.tls_verify",
        line_of(text, "tls_verify"),
        "must be a valid boolean, got a string",
    )
    assert_problem(found, "collectors.cms_replication.interval", line_of(text, "interval: [60s]"), "must be a duration")
    assert_problem(
        found, "credentials.monitoring.username", line_of(text, "username: [a]"), "must be a valid string, got a list"
    )


def test_wrong_section_types(tmp_path):
    text = "global: [1]\ncredentials: []\ncollectors: 5\ntargets: {name: fe01}\n"
    found = problems(tmp_path, text)
    assert_problem(found, "global", 1, "must be a mapping, got a list")
    assert_problem(found, "credentials", 2, "must be a mapping of credential name to credential, got a list")
    assert_problem(found, "collectors", 3, "must be a mapping of collector name to settings, got an integer")
    assert_problem(found, "targets", 4, "must be a list of targets, got a mapping")


def test_missing_required_keys(tmp_path):
    text = edit("    host: ex01.contoso.com\n", "")
    text = edit("    username: CONTOSO\\svc-lyncowa\n", "", text)
    found = problems(tmp_path, text)
    assert_problem(found, "targets[1].host", line_of(text, "- name: ex01"), "missing required key 'host'")
    assert_problem(
        found, "credentials.monitoring.username", line_of(text, "  monitoring:"), "missing required key 'username'"
    )


def test_duplicate_target_name_names_both_lines(tmp_path):
    text = edit("  - name: ex01", "  - name: fe01")
    first, second = line_of(text, "name: fe01"), line_of(text, "name: fe01", 2)
    p = assert_problem(problems(tmp_path, text), "targets[1].name", second, "duplicate target name 'fe01'")
    assert f"line {first}" in p.message and f"line {second}" in p.message


def test_duplicate_yaml_key(tmp_path):
    text = edit("    timeout: 20s", "    timeout: 20s\n    interval: 90s")
    first = line_of(text, "    interval: 60s")
    p = assert_problem(
        problems(tmp_path, text),
        "collectors.cms_replication.interval",
        line_of(text, "interval: 90s"),
        "duplicate key 'interval'",
    )
    assert f"line {first}" in p.message


def test_duplicate_top_level_section(tmp_path):
    text = BASE + "global: {}\n"
    assert_problem(problems(tmp_path, text), "global", line_of(text, "global: {}"), "duplicate key 'global'")


def test_unknown_role(tmp_path):
    text = edit(
        "roles: [exchange_mailbox, exchange_client_access]", "roles:\n      - exchange_mailbox\n      - exchange_cas"
    )
    p = assert_problem(
        problems(tmp_path, text), "targets[1].roles[1]", line_of(text, "- exchange_cas"), "unknown role 'exchange_cas'"
    )
    assert all(role in p.message for role in ROLES)


def test_empty_roles(tmp_path):
    text = edit("roles: [lync_frontend]", "roles: []")
    assert_problem(problems(tmp_path, text), "targets[0].roles", line_of(text, "roles: []"), "roles must not be empty")


def test_reference_to_a_missing_credential(tmp_path):
    text = edit("    credential: monitoring\n", "    credential: monitor\n")
    p = assert_problem(
        problems(tmp_path, text),
        "targets[0].credential",
        line_of(text, "credential: monitor\n"[:-1]),
        "no credential named 'monitor'",
    )
    assert "did you mean 'monitoring'" in p.message


def test_password_env_names_an_unset_variable(tmp_path):
    p = assert_problem(
        problems(tmp_path, BASE, environ={}),
        "credentials.monitoring.password_env",
        line_of(BASE, "password_env"),
        "environment variable LYNC_OWA_PASSWORD is not set",
    )
    assert p.column == 5
    # a target referring to the broken credential is not reported a second time
    assert len(problems(tmp_path, BASE, environ={})) == 1


def test_password_env_holding_a_password_is_not_echoed(tmp_path):
    text = edit("password_env: LYNC_OWA_PASSWORD", f"password_env: '{SECRET}'")
    error = problems_error(tmp_path, text)
    path, line = "credentials.monitoring.password_env", line_of(text, "password_env")
    assert_problem(error.problems, path, line, "must be the name of an environment variable")
    assert SECRET not in str(error)


def test_password_env_empty_variable(tmp_path):
    assert_problem(
        problems(tmp_path, BASE, environ={"LYNC_OWA_PASSWORD": ""}),
        "credentials.monitoring.password_env",
        line_of(BASE, "password_env"),
        "is empty",
    )


def test_password_file_missing(tmp_path):
    text = edit("password_env: LYNC_OWA_PASSWORD", "password_file: /nonexistent/lync_owa_password")
    assert_problem(
        problems(tmp_path, text),
        "credentials.monitoring.password_file",
        line_of(text, "password_file"),
        "cannot read password file '/nonexistent/lync_owa_password': No such file",
    )


def test_password_file_unreadable(tmp_path):
    (tmp_path / "secrets").mkdir()
    text = edit("password_env: LYNC_OWA_PASSWORD", "password_file: secrets")
    assert_problem(
        problems(tmp_path, text),
        "credentials.monitoring.password_file",
        line_of(text, "password_file"),
        "is not a regular file",
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_password_file_without_permission(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0)
    text = edit("password_env: LYNC_OWA_PASSWORD", "password_file: secret")
    assert_problem(
        problems(tmp_path, text),
        "credentials.monitoring.password_file",
        line_of(text, "password_file"),
        "Permission denied",
    )


@pytest.mark.parametrize(
    ("replacement", "fragment"),
    [
        ("password_env: LYNC_OWA_PASSWORD\n    password_file: /run/secrets/x", "not both"),
        ("auth: negotiate", "set one of password_env, password_file, keytab_file or ticket_cache"),
    ],
    ids=["both", "neither"],
)
def test_password_sources_exactly_one(tmp_path, replacement, fragment):
    text = edit("password_env: LYNC_OWA_PASSWORD", replacement)
    assert_problem(problems(tmp_path, text), "credentials.monitoring", line_of(text, "  monitoring:"), fragment)


def test_inline_password_is_refused_without_echoing_it(tmp_path):
    text = edit("password_env: LYNC_OWA_PASSWORD", f"password: {SECRET}")
    error = problems_error(tmp_path, text)
    assert_problem(
        error.problems,
        "credentials.monitoring.password",
        line_of(text, "password:"),
        "inline passwords are not allowed",
    )
    assert SECRET not in str(error) and SECRET not in repr(error.problems)


@pytest.mark.parametrize("duration", ["60", "1.5m", "-1m", "5 minutes", "0s"])
def test_bad_duration(tmp_path, duration):
    text = edit("    interval: 60s", f"    interval: '{duration}'" if duration == "60" else f"    interval: {duration}")
    (problem,) = problems(tmp_path, text)
    assert (problem.path, problem.line) == ("collectors.cms_replication.interval", line_of(text, "    interval:"))
    assert "duration" in problem.message


def test_bare_number_duration(tmp_path):
    text = edit("    interval: 60s", "    interval: 60")
    (problem,) = problems(tmp_path, text)
    assert (
        problem.path == "collectors.cms_replication.interval"
        and "has no unit" in problem.message
        and "'60s'" in problem.message
    )


def test_timeout_not_below_interval(tmp_path):
    text = edit("    timeout: 20s", "    timeout: 60s")
    found = problems(tmp_path, text)
    assert_problem(
        found,
        "collectors.cms_replication.timeout",
        line_of(text, "timeout: 60s"),
        "timeout (1m) must be shorter than interval (1m)",
    )
    # fe01 overrides the interval, so it clashes there too, on its own terms
    assert_problem(
        found,
        "targets[0].collectors.cms_replication.timeout",
        line_of(text, "      cms_replication:"),
        "timeout (1m) must be shorter than interval (30s)",
    )
    assert len(found) == 2


def test_timeout_not_below_a_targets_interval(tmp_path):
    # Each section is fine alone; the target's interval clashes with the shared timeout.
    text = edit("        interval: 30s", "        interval: 15s")
    (problem,) = problems(tmp_path, text)
    assert problem.path == "targets[0].collectors.cms_replication.timeout"
    assert problem.line == line_of(text, "      cms_replication:")
    assert "timeout (20s) must be shorter than interval (15s)" in problem.message
    assert "timeout is set in collectors.cms_replication" in problem.message


def test_jitter_not_below_interval(tmp_path):
    text = edit("    timeout: 20s", "    timeout: 20s\n    jitter: 2m")
    assert_problem(
        problems(tmp_path, text),
        "collectors.cms_replication.jitter",
        line_of(text, "jitter: 2m"),
        "jitter (2m) must be shorter than interval (1m)",
    )


def test_collector_override_on_a_target_it_never_runs_on(tmp_path):
    text = BASE + "    collectors:\n      cms_replication: {interval: 2m}\n"
    p = assert_problem(
        problems(tmp_path, text),
        "targets[1].collectors.cms_replication",
        line_of(text, "cms_replication: {interval: 2m}"),
        "never runs on target 'ex01'",
    )
    assert "lync_frontend" in p.message and "exchange_mailbox" in p.message


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://fe01.contoso.com/wsman", "http:// or https://"),
        ("https://fe01.contoso.com:5986", "needs a path"),
        ("https:///wsman", "no host"),
        ("https://fe01.contoso.com:99999/wsman", "not a valid URL"),
        (f"https://admin:{SECRET}@fe01.contoso.com/wsman", "must not contain credentials"),
    ],
)
def test_bad_endpoint_url(tmp_path, url, fragment):
    text = edit(
        "    credential: monitoring\n",
        f"    credential: monitoring\n    endpoints:\n      windows:\n        url: '{url}'\n",
    )
    error = problems_error(tmp_path, text)
    assert_problem(error.problems, "targets[0].endpoints.windows.url", line_of(text, "url:"), fragment)
    assert SECRET not in str(error)


def test_missing_ca_file(tmp_path):
    text = edit(
        "    credential: monitoring\n",
        "    credential: monitoring\n    endpoints:\n      windows: {ca_file: missing.pem}\n",
    )
    assert_problem(
        problems(tmp_path, text), "targets[0].endpoints.windows.ca_file", line_of(text, "ca_file"), "does not exist"
    )


def test_bad_target_name_and_host(tmp_path):
    text = edit("  - name: fe01", "  - name: fe 01")
    text = edit("host: ex01.contoso.com", "host: https://ex01.contoso.com/", text)
    found = problems(tmp_path, text)
    assert_problem(found, "targets[0].name", line_of(text, "name: fe 01"), "may contain only letters")
    assert_problem(found, "targets[1].host", line_of(text, "host: https"), "DNS name or an IP address")


@pytest.mark.parametrize("text", ["targets: []\n", "global: {}\n"])
def test_no_targets(tmp_path, text):
    (problem,) = problems(tmp_path, text)
    assert "no targets" in problem.message
    assert problem.line == 1


def test_recursive_alias(tmp_path):
    text = edit("roles: [lync_frontend]", "roles: &r [lync_frontend, *r]")
    assert_problem(problems(tmp_path, text), "targets[0].roles[1]", line_of(text, "roles: &r"), "recursive YAML alias")


def test_alias_bomb_is_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (problem,) = problems(tmp_path, "\n".join(lines) + "\n")
    assert "too large" in problem.message


def test_unsupported_tag(tmp_path):
    text = edit("host: ex01.contoso.com", "host: !!python/object:os.system ex01")
    assert_problem(problems(tmp_path, text), "targets[1].host", line_of(text, "!!python"), "unsupported YAML tag")


def test_all_problems_are_reported_at_once_in_file_order(tmp_path):
    text = edit("staleness_intervals: 3", "staleness_intervals: 0")
    text = edit("roles: [lync_frontend]", "roles: [lync_fe]", text)
    text = edit("  - name: ex01", "  - name: fe01", text)
    error = problems_error(tmp_path, text)
    paths = [p.path for p in error.problems]
    assert paths == ["global.staleness_intervals", "targets[0].roles[0]", "targets[1].name"]
    lines = str(error).splitlines()
    assert len(lines) == 3
    file = str(tmp_path / "config.yaml")
    line = line_of(text, "staleness_intervals")
    assert lines[0] == f"{file}:{line}:3: global.staleness_intervals: must be greater than or equal to 1"
    assert lines[1].startswith(f"{file}:{line_of(text, 'lync_fe')}:")


# ---- secrets never leak --------------------------------------------------------------------------


FAILING_EDITS = [
    ("roles: [lync_frontend]", "roles: [bogus]"),
    ("    credential: monitoring\n", "    credential: nobody\n"),
    ("    timeout: 20s", "    timeout: 2h"),
    ("  - name: ex01", "  - name: fe01"),
    ("username: CONTOSO\\svc-lyncowa", "username: [CONTOSO]"),
    ("roles: [lync_frontend]", "roles: [lync_frontend"),
]


@pytest.mark.parametrize(("old", "new"), FAILING_EDITS)
def test_password_from_env_never_appears_in_errors_or_logs(tmp_path, caplog, old, new):
    caplog.set_level(logging.DEBUG)
    error = problems_error(tmp_path, edit(old, new))
    for text in (str(error), repr(error), repr(error.problems), caplog.text):
        assert SECRET not in text


def test_password_never_appears_in_a_loaded_config_or_its_logs(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    text = edit(
        "    credential: monitoring\n",
        "    credential: monitoring\n    endpoints:\n      windows: {tls_verify: false}\n",
    )
    text = edit("auth: negotiate", "auth: basic", text)  # over http: a warning is logged
    cfg = load(tmp_path, text)
    assert caplog.records  # the warnings were logged...
    for rendered in (repr(cfg), str(cfg), repr(cfg.jobs()), str(cfg.targets[0].credential), caplog.text):
        assert SECRET not in rendered  # ...without the password


def test_password_from_file_never_appears_in_errors(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(SECRET.encode() + b"\xff\n")  # not UTF-8
    secret_file.chmod(0o644)
    text = edit("password_env: LYNC_OWA_PASSWORD", "password_file: secret")
    error = problems_error(tmp_path, edit("roles: [lync_frontend]", "roles: [bogus]", text))
    assert_problem(error.problems, "credentials.monitoring.password_file", line_of(text, "password_file"), "not UTF-8")
    for rendered in (str(error), repr(error.problems), caplog.text):
        assert SECRET not in rendered


# ---- robustness ----------------------------------------------------------------------------------

KNOWN_KEYS = [
    "global", "credentials", "collectors", "targets", "staleness_intervals", "max_concurrent_jobs",
    "lync_pool_fqdn", "monitoring", "username", "password_env", "password_file", "auth",
    "cms_replication", "im_logs", "enabled", "interval", "timeout", "jitter", "folder", "max_files",
    "name", "host", "roles", "credential", "endpoints", "windows", "exchange", "url",
    "configuration", "tls_verify", "ca_file", "encryption", "<<",
]  # fmt: skip
PLAUSIBLE_STRINGS = [
    "30s", "0s", "1h30m", "-5m", "60", "fe01", "fe01.contoso.com", "monitoring", "LYNC_OWA_PASSWORD",
    "negotiate", "auto", "https://fe01.contoso.com:5986/wsman", "http://x", "", "/", "..", "::1", *ROLES,
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(PLAUSIBLE_STRINGS),
)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=10))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "global": values,
        "credentials": st.one_of(
            values, st.dictionaries(st.sampled_from(["monitoring", "x"]), st.dictionaries(keys, values, max_size=5))
        ),
        "collectors": st.one_of(values, st.dictionaries(keys, st.dictionaries(keys, values, max_size=4), max_size=3)),
        "targets": st.one_of(values, st.lists(st.dictionaries(keys, values, max_size=8), max_size=4)),
    },
)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents_only_raise_config_error(fuzz_dir, document):
    path = fuzz_dir / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        cfg = load_config(path, COLLECTORS, ENV)
    except ConfigError as error:
        assert error.problems and all(isinstance(p, Problem) for p in error.problems)
        assert SECRET not in str(error)
    else:
        assert cfg.targets and all(isinstance(t, Target) for t in cfg.targets)


def _paths(value, prefix=()):
    """Every key path in a parsed document, parents before children."""
    yield prefix
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _paths(child, prefix + (key,))


def _mutated(document, path, new_value):
    if not path:
        return new_value
    document = copy.deepcopy(document)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new_value
    return document


BASE_DATA = yaml.safe_load(BASE)
BASE_PATHS = list(_paths(BASE_DATA))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(BASE_PATHS), values), min_size=1, max_size=3))
def test_mutated_valid_documents_only_raise_config_error(fuzz_dir, mutations):
    # Starting from a valid file reaches the deeper checks that random documents rarely get to.
    document = BASE_DATA
    for path, new_value in mutations:
        try:
            document = _mutated(document, path, new_value)
        except (KeyError, IndexError, TypeError):  # an earlier mutation removed this path
            continue
    path = fuzz_dir / "mutated.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        load_config(path, COLLECTORS, ENV)
    except ConfigError as error:
        assert error.problems and SECRET not in str(error)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abc:-[]{}&*!|>'\"#%@`,?\n \t\x00\x07é0123456789.<")), max_size=80))
def test_random_text_only_raises_config_error(fuzz_dir, text):
    path = fuzz_dir / "text.yaml"
    path.write_bytes(text.encode("utf-8"))
    with pytest.raises(ConfigError):
        load_config(path, COLLECTORS, ENV)
