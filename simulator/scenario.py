"""Loading, layering, validating and scaling scenario files.

A scenario file is YAML. ``base: healthy`` makes it an overlay: the base document is loaded first and
this file's keys are deep-merged onto it (mappings merge key by key, anything else replaces, and the
tag ``!delete`` removes a key). Every scenario therefore shares the base's host set, which is what
lets the simulator switch scenarios live without touching its listeners.

Errors name the file and the key path, e.g.
``no-event-112.yaml: hosts.ex01.contoso.com.windows.events.x.time: invalid time '-2q'``.
Reading the files and merging overlays is ``simulator/scenario_yaml.py``'s.
"""

from __future__ import annotations

import copy
import importlib.resources
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from simulator import text_capture
from simulator.clixml import Capture, CaptureError, load_capture
from simulator.clock import parse_offset
from simulator.scenario_model import (
    CERT_REFERENCE,
    AccessEdgeConfiguration,
    Host,
    HostingProvider,
    ScenarioModel,
)
from simulator.scenario_yaml import (
    DELETE,
    SHIPPED_DIR,
    ScenarioError,
    deep_merge,
    dotted,
    parse_document,
    read_text,
    scenario_names,
)


def _load_raw(name_or_path: str | Path, seen: tuple[str, ...] = ()) -> tuple[str, dict]:
    label, text, directory = read_text(name_or_path)
    if label in seen:
        raise ScenarioError(f"{label}: circular base chain {' -> '.join(seen + (label,))}")
    document = parse_document(label, text)
    _anchor_replay_paths(label, document, directory)
    base_name = document.pop("base", None)
    if base_name is None:
        return label, document
    if not isinstance(base_name, str):
        raise ScenarioError(f"{label}: base: must be a scenario name or a path to a scenario file")
    base_ref: str | Path = base_name
    if base_name.endswith((".yaml", ".yml")):  # a file, relative to this one
        base_ref = Path(base_name) if directory is None else directory / base_name
    elif directory is not None and (directory / f"{base_name}.yaml").is_file():
        base_ref = directory / f"{base_name}.yaml"
    base_label, base_doc = _load_raw(base_ref, seen + (label,))
    try:
        merged = deep_merge(base_doc, document)
    except ScenarioError as err:
        raise ScenarioError(f"{label} (base {base_label}): {err}") from None
    return f"{label} (base {base_label})", merged


def _anchor_replay_paths(label: str, document: dict, directory: Path | None) -> None:
    """``hosts.H.replay.CMDLET: path``: a relative path is relative to the file that writes it (a
    shipped scenario's: the scenarios folder). Made absolute here, before overlays merge files."""
    hosts = document.get("hosts")
    if not isinstance(hosts, dict):
        return
    anchor = directory if directory is not None else Path(str(importlib.resources.files("simulator") / SHIPPED_DIR))
    for host_name, host in hosts.items():
        replay = host.get("replay") if isinstance(host, dict) else None
        if replay is None or replay is DELETE:
            continue
        if not isinstance(replay, dict):
            raise ScenarioError(f"{label}: hosts.{host_name}.replay: a mapping of cmdlet name -> capture file")
        for cmdlet_name, path in list(replay.items()):
            if path is DELETE:
                continue
            if not isinstance(path, str) or not path.strip():
                raise ScenarioError(f"{label}: hosts.{host_name}.replay.{cmdlet_name}: the path of an "
                                    "Export-Clixml file")
            candidate = Path(path).expanduser()
            replay[cmdlet_name] = str(candidate if candidate.is_absolute() else (anchor / candidate).resolve())


_CMDLET_NAME = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")
_CAPTURE_CACHE: dict[tuple[str, int, int], Capture | text_capture.TextCapture] = {}


def _load_replays(label: str, model: ScenarioModel) -> dict[str, dict[str, tuple[str, Capture | text_capture.TextCapture]]]:
    """host -> lower-case cmdlet name -> (cmdlet name, capture); CaptureError becomes a ScenarioError
    naming the key, and the file."""
    replays: dict[str, dict[str, tuple[str, Capture | text_capture.TextCapture]]] = {}
    for host_name, host in model.hosts.items():
        for cmdlet_name, path_text in host.replay.items():
            where = f"hosts.{host_name}.replay.{cmdlet_name}"
            if not _CMDLET_NAME.match(cmdlet_name):
                raise ScenarioError(f"{label}: {where}: not a cmdlet name (Verb-Noun, e.g. Get-ExchangeCertificate)")
            path = Path(path_text)
            try:
                stat = path.stat()
                key = (str(path), stat.st_mtime_ns, stat.st_size)
            except OSError:
                key = None
            capture = _CAPTURE_CACHE.get(key) if key else None
            if capture is None:
                try:
                    is_text = cmdlet_name.lower() == text_capture.TEXT_CMDLET and not _looks_like_clixml(path)
                    capture = text_capture.load_text_capture(path) if is_text else load_capture(path)
                except CaptureError as err:
                    raise ScenarioError(f"{label}: {where}: {err}") from None
                if key:
                    _CAPTURE_CACHE[key] = capture
            replays.setdefault(host_name, {})[cmdlet_name.lower()] = (cmdlet_name, capture)
    return replays


def _looks_like_clixml(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            head = file.read(512)
    except OSError:
        return True  # load_capture says what is wrong with it
    return b"<Objs" in head


class Scenario:
    """A validated scenario: the model, its name, and the raw document it came from."""

    def __init__(self, name: str, raw: dict, label: str = "", scale: int | None = None) -> None:
        self.name = name
        self.label = label or name
        self.scale = scale
        self.clone_replicas = False
        self.raw = raw
        self.model = _validate(self.label, raw)
        self.tz = parse_offset(self.model.timezone)
        self._local_stores = _local_stores(self.label, self.model)
        # host -> lower-case cmdlet -> (cmdlet name, capture): what simulator/replay.py answers with.
        self.replays = _load_replays(self.label, self.model)

    def host_names(self) -> list[str]:
        return list(self.model.hosts)

    def local_store(self, host: str) -> tuple[dict[str, HostingProvider], AccessEdgeConfiguration]:
        """The Edge/front end's local CMS replica: the CMS view with the host's own changes."""
        return self._local_stores[host]

    def scaled(self, count: int, clone_replicas: bool = False) -> Scenario:
        """The same estate with ``count`` hosts: the first ones as written, then clones of them.

        Clone i of template ``ex01.contoso.com`` is named ``ex01-00i.contoso.com``. The topology
        stays the templates': clones do not join the CMS replica list unless ``clone_replicas``
        (then every Get-CsManagementStoreReplicationStatus answer grows with the estate).
        Used by benchmarks (``load_scenario("healthy").scaled(200)``) and kept across live switches.
        """
        if count < 1:
            raise ScenarioError(f"{self.label}: scaled(count) needs count >= 1, got {count}")
        raw = copy.deepcopy(self.raw)
        templates = list(raw["hosts"].items())
        hosts: dict[str, Any] = {}
        replicas = (raw.get("lync") or {}).get("cms", {}).get("replicas", {})
        for index in range(count):
            template_name, template = templates[index % len(templates)]
            if index < len(templates):
                hosts[template_name] = template
                continue
            short, _, domain = template_name.partition(".")
            name = f"{short}-{index + 1:03d}.{domain}" if domain else f"{short}-{index + 1:03d}"
            hosts[name] = copy.deepcopy(template)
            if clone_replicas and template_name in replicas:
                replicas[name] = copy.deepcopy(replicas[template_name])
        raw["hosts"] = hosts
        scaled = Scenario(self.name, raw, self.label, scale=count)
        scaled.clone_replicas = clone_replicas
        return scaled

    def __repr__(self) -> str:
        return f"<Scenario {self.name} hosts={len(self.model.hosts)}>"


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name, or a YAML file by path; ScenarioError says what is wrong."""
    label, raw = _load_raw(name_or_path)
    name = Path(str(name_or_path)).stem if str(name_or_path).endswith((".yaml", ".yml")) else str(name_or_path)
    return Scenario(name, raw, label)


def _validate(label: str, raw: Mapping) -> ScenarioModel:
    tz_text = raw.get("timezone", "+00:00")
    try:
        tz = parse_offset(str(tz_text))
    except ValueError as err:
        raise ScenarioError(f"{label}: timezone: {err}") from None
    try:
        model = ScenarioModel.model_validate(raw, context={"tz": tz})
    except ValidationError as err:
        raise ScenarioError(f"{label}: " + "; ".join(_format_error(e) for e in err.errors())) from None
    _check_consistency(label, model)
    return model


def _format_error(error: Mapping) -> str:
    message = error["msg"].removeprefix("Value error, ")
    return f"{dotted(error['loc'])}: {message}"


def _check_consistency(label: str, model: ScenarioModel) -> None:
    problems = []
    if not model.hosts:
        problems.append("hosts: at least one host is required")
    for name, host in model.hosts.items():
        where = f"hosts.{name}"
        if "." not in name:
            problems.append(f"{where}: host names must be FQDNs (e.g. ex01.contoso.com)")
        if not host.roles:
            problems.append(f"{where}.roles: at least one role is required")
        if host.is_exchange and host.exchange is None:
            problems.append(f"{where}.exchange: required for a host with an exchange_* role")
        if host.is_exchange and model.exchange_org is None:
            problems.append("exchange_org: required when a host has an exchange_* role")
        if host.is_lync and model.lync is None:
            problems.append("lync: required when a host has a lync_* role")
        if host.exchange is not None and not host.is_exchange:
            problems.append(f"{where}.exchange: only valid on a host with an exchange_* role")
        if host.exchange is not None and host.exchange.web_config_im is not None and host.exchange.version != 2013:
            problems.append(f"{where}.exchange.web_config_im: only Exchange 2013 keeps IM settings in web.config "
                            "(2016+ use exchange_org.setting_overrides)")
        if host.lync is not None and not host.is_lync:
            problems.append(f"{where}.lync: only valid on a host with a lync_* role")
    problems.extend(_certificate_reference_problems(model))
    if problems:
        raise ScenarioError(f"{label}: " + "; ".join(problems))


def _certificate_labels(host: Host) -> set[str]:
    labels = set(host.windows.certificates)
    if host.exchange is not None:
        labels |= set(host.exchange.certificates)
    if host.lync is not None:
        labels |= set(host.lync.certificates)
    return labels


def _certificate_reference_problems(model: ScenarioModel) -> list[str]:
    """Every ``${cert:LABEL}`` / ``${cert:HOST/LABEL}`` must name a certificate of the scenario."""
    places: list[tuple[str, str | None, str | None]] = []  # (key path, default host, text)
    org = model.exchange_org
    if org is not None:
        auth = org.auth_config
        for field in ("current_certificate_thumbprint", "previous_certificate_thumbprint",
                      "next_certificate_thumbprint"):
            places.append((f"exchange_org.auth_config.{field}", None, getattr(auth, field)))
        for name, override in org.setting_overrides.items():
            for index, parameter in enumerate(override.parameters):
                places.append((f"exchange_org.setting_overrides.{name}.parameters.{index}", None, parameter))
    for host_name, host in model.hosts.items():
        where = f"hosts.{host_name}"
        if host.exchange is not None:
            if host.exchange.web_config_im is not None:
                places.append((f"{where}.exchange.web_config_im.certificate_thumbprint", host_name,
                               host.exchange.web_config_im.certificate_thumbprint))
            if host.exchange.loaded_im_settings is not None:
                places.append((f"{where}.exchange.loaded_im_settings.certificate_thumbprint", host_name,
                               host.exchange.loaded_im_settings.certificate_thumbprint))
            for name, vdir in host.exchange.owa_virtual_directories.items():
                places.append((f"{where}.exchange.owa_virtual_directories.{name}.instant_messaging_certificate_"
                               "thumbprint", host_name, vdir.instant_messaging_certificate_thumbprint))
        if host.lync is not None:
            for name, cert in host.lync.certificates.items():
                places.append((f"{where}.lync.certificates.{name}.previous_thumbprint", host_name,
                               cert.previous_thumbprint))
    problems = []
    for where, default_host, text in places:
        for match in CERT_REFERENCE.finditer(text or ""):
            target_host, _, target = match.group(1).strip().rpartition("/")
            target_host = target_host or default_host
            if target_host is None:
                problems.append(f"{where}: ${{cert:{match.group(1)}}} needs a host here: ${{cert:HOST/LABEL}}")
            elif target_host not in model.hosts:
                problems.append(f"{where}: ${{cert:{match.group(1)}}} names no host of the scenario")
            elif target not in _certificate_labels(model.hosts[target_host]):
                problems.append(f"{where}: ${{cert:{match.group(1)}}}: {target_host} has no certificate labelled "
                                f"{target!r} (it has: {', '.join(sorted(_certificate_labels(model.hosts[target_host]))) or 'none'})")
    return problems


def _local_stores(label: str, model: ScenarioModel) -> dict[str, tuple[dict, AccessEdgeConfiguration]]:
    stores: dict[str, tuple[dict, AccessEdgeConfiguration]] = {}
    if model.lync is None:
        return stores
    cms_providers = {k: v.model_dump() for k, v in model.lync.hosting_providers.items()}
    cms_edge = model.lync.access_edge.model_dump()
    for name, host in model.hosts.items():
        if not host.is_lync:
            continue
        overrides = host.lync.local_store if host.lync else {}
        where = f"hosts.{name}.lync.local_store"
        unknown = set(overrides) - {"hosting_providers", "access_edge"}
        if unknown:
            raise ScenarioError(f"{label}: {where}: unknown keys {sorted(unknown)} (hosting_providers, access_edge)")
        try:
            providers_raw = deep_merge(cms_providers, overrides.get("hosting_providers") or {}, ("hosting_providers",))
            edge_raw = deep_merge(cms_edge, overrides.get("access_edge") or {}, ("access_edge",))
        except ScenarioError as err:
            raise ScenarioError(f"{label}: {where}.{err}") from None
        try:
            # null in the overrides: this replica lacks the item (e.g. a provider never replicated).
            providers = {k: HostingProvider.model_validate(v) for k, v in providers_raw.items() if v is not None}
            edge = AccessEdgeConfiguration.model_validate(edge_raw)
        except ValidationError as err:
            raise ScenarioError(f"{label}: {where}: " + "; ".join(_format_error(e) for e in err.errors())) from None
        stores[name] = (providers, edge)
    return stores


def resolve_scenario(
    scenario: str | Path | Scenario, scale: int | None = None, clone_replicas: bool = False
) -> Scenario:
    """A Scenario from a name, a path or a Scenario, scaled when asked."""
    loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if scale is not None and loaded.scale != scale:
        loaded = loaded.scaled(scale, clone_replicas)
    return loaded


__all__ = [
    "DELETE",
    "Scenario",
    "ScenarioError",
    "deep_merge",
    "load_scenario",
    "resolve_scenario",
    "scenario_names",
]
