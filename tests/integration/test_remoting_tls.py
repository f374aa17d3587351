"""The exporter's HTTPS path: certificate validation on by default, a CA file per endpoint."""

from __future__ import annotations

from tests.integration.test_remoting_paths import job_status, make_runner


def test_https_with_the_servers_ca_succeeds(tls_sim, tmp_path, password_env):
    runner, store = make_runner(tls_sim, tmp_path, ca_file=tls_sim.ca_cert_path)
    runner()
    assert job_status(store).up, job_status(store).last_error


def test_https_with_an_unknown_ca_is_unreachable_naming_tls(tls_sim, tmp_path, password_env):
    runner, store = make_runner(tls_sim, tmp_path)  # validation on, system CAs only
    runner()
    job = job_status(store)
    assert job.last_error_kind == "unreachable" and "TLS" in job.last_error


def test_https_with_validation_turned_off_succeeds(tls_sim, tmp_path, password_env):
    runner, store = make_runner(tls_sim, tmp_path, tls_verify=False)
    runner()
    assert job_status(store).up, job_status(store).last_error
