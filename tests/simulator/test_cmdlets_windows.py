"""Windows cmdlets on /wsman over the real pypsrp client: events, files, registry, IIS, CIM, certificates."""

from __future__ import annotations

import datetime as dt
import re

from pypsrp.powershell import PowerShell

from tests.simulator.helpers import (
    IM_FOLDER,
    IM_KEY,
    WEB_CONFIG,
    der_certificates,
    error_ids,
    pool_for,
    props,
    run,
    thumbprint_with_serial,
)

STORE = "Cert:\\LocalMachine\\My"
EX01_IM_SERIAL = "7F4F4B9422F778B6"  # healthy.yaml

OWA = "MSExchange OWA"
GET_ITEM = "Microsoft.PowerShell.Commands.GetItemCommand"


def test_win_event_filter_hashtable_newest_first(ex01_pool):
    ps = run(ex01_pool, "Get-WinEvent", FilterHashtable={"LogName": "Application", "ProviderName": OWA, "Id": 112})
    assert not ps.had_errors and not ps.streams.error
    events = [props(e) for e in ps.output]
    assert len(events) == 2 and all(e["Id"] == 112 and e["ProviderName"] == OWA for e in events)
    assert events[0]["RecordId"] > events[1]["RecordId"]  # newest first, like Windows
    record = ps.output[0]
    assert record.types[0] == "System.Diagnostics.Eventing.Reader.EventLogRecord"
    assert "Message" in record.extended_properties and "TimeCreated" in record.adapted_properties
    first = events[0]
    assert (first["Level"], first["LevelDisplayName"], first["LogName"]) == (4, "Information", "Application")
    assert first["MachineName"] == "ex01.contoso.com" and isinstance(first["RecordId"], int)
    assert "initialized successfully" in first["Message"]


def test_win_event_hashtable_lists_start_time_and_max_events(ex01_pool):
    since = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=5)).isoformat()
    ps = run(ex01_pool, "Get-WinEvent", FilterHashtable={"LogName": "Application", "ProviderName": OWA,
                                                          "Id": [111, 112, 113], "StartTime": since})
    assert len(ps.output) == 1
    ps = run(ex01_pool, "Get-WinEvent", FilterHashtable={"LogName": "Application"}, MaxEvents=2)
    assert len(ps.output) == 2


def test_win_event_filter_xpath(ex01_pool):
    all_ids = [props(e)["RecordId"] for e in run(ex01_pool, "Get-WinEvent", LogName="Application").output]
    oldest = min(all_ids)
    query = f"*[System[Provider[@Name='{OWA}'] and (EventID=112) and (EventRecordID > {oldest})]]"
    ps = run(ex01_pool, "Get-WinEvent", LogName="Application", FilterXPath=query)
    assert [props(e)["Id"] for e in ps.output] == [112, 112]
    newest_112 = max(props(e)["RecordId"] for e in ps.output)
    query = f"*[System[Provider[@Name='{OWA}'] and (EventRecordID > {newest_112})]]"
    ps = run(ex01_pool, "Get-WinEvent", LogName="Application", FilterXPath=query)
    assert ps.output == []
    assert error_ids(ps) == ["NoMatchingEventsFound,Microsoft.PowerShell.Commands.GetWinEventCommand"]
    ps = run(ex01_pool, "Get-WinEvent", LogName="Application", FilterXPath="*[System[(EventID=112 or EventID=2080)]]",
             MaxEvents=10, Oldest=None)
    ids = [props(e)["RecordId"] for e in ps.output]
    assert ids == sorted(ids) and len(ids) == 3


def test_win_event_no_match_is_non_terminating(ex01_pool):
    ps = run(ex01_pool, "Get-WinEvent", FilterHashtable={"LogName": "Application", "ProviderName": OWA, "Id": 99999})
    assert ps.output == [] and ps.had_errors is False
    (error,) = ps.streams.error
    assert error.fq_error == "NoMatchingEventsFound,Microsoft.PowerShell.Commands.GetWinEventCommand"
    assert str(error) == "No events were found that match the specified selection criteria."


def test_win_event_invalid_query_and_error_action(ex01_pool):
    ps = run(ex01_pool, "Get-WinEvent", LogName="Application", FilterXPath="*[System[Bogus=1]]")
    assert ps.had_errors and "EventLogException" in error_ids(ps)[0]
    ps = run(ex01_pool, "Get-WinEvent", FilterHashtable={"LogName": "Application", "Id": 99999}, ErrorAction="Stop")
    assert ps.had_errors  # -ErrorAction Stop turns the non-terminating error into a failure
    ps = run(ex01_pool, "Get-WinEvent", FilterHashtable={"LogName": "Application", "Id": 99999},
             ErrorAction="SilentlyContinue")
    assert not ps.had_errors and not ps.streams.error


def test_get_item_and_child_items_of_im_log_folder(ex01_pool):
    (folder,) = run(ex01_pool, "Get-Item", Path=IM_FOLDER).output
    f = props(folder)
    assert folder.types[0] == "System.IO.DirectoryInfo" and f["FullName"] == IM_FOLDER and f["PSIsContainer"] is True
    files = run(ex01_pool, "Get-ChildItem", Path=IM_FOLDER, File=None).output
    assert [props(x)["Name"] for x in files] == ["InstantMessaging_1.LOG", "InstantMessaging_2.LOG"]
    log = props(files[1])
    assert files[1].types[0] == "System.IO.FileInfo"
    assert isinstance(log["Length"], int) and log["Length"] >= 204800
    assert log["LastWriteTimeUtc"].endswith("Z") and log["CreationTimeUtc"].endswith("Z")
    assert str(log["Attributes"]) == "Archive"


def test_im_log_grows_over_time(ex01_pool, sim):
    import time

    def size():
        files = run(ex01_pool, "Get-ChildItem", Path=IM_FOLDER, File=None).output
        return props(files[1])["Length"]

    first = size()
    time.sleep(1.2)  # 2048 bytes a minute: about 34 bytes a second
    assert size() > first


def test_path_not_found_is_non_terminating(ex01_pool):
    ps = run(ex01_pool, "Get-Item", Path=r"C:\Does\Not\Exist")
    assert ps.output == [] and not ps.had_errors
    assert error_ids(ps) == [f"PathNotFound,{GET_ITEM}"]
    assert str(ps.streams.error[0]) == r"Cannot find path 'C:\Does\Not\Exist' because it does not exist."
    ps = run(ex01_pool, "Get-ChildItem", Path=r"C:\Does\Not\Exist", File=None)
    assert error_ids(ps) == ["PathNotFound,Microsoft.PowerShell.Commands.GetChildItemCommand"]


def test_get_content_raw_web_config(ex01_pool):
    ps = run(ex01_pool, "Get-Content", Path=WEB_CONFIG, Raw=None)
    (text,) = ps.output
    assert isinstance(text, str)
    # The thumbprint of the certificate the scenario names (${cert:im-um}): the SHA-1 of its DER.
    im = thumbprint_with_serial(run(ex01_pool, "Get-ChildItem", Path=STORE).output, EX01_IM_SERIAL)
    assert f'<add key="IMCertificateThumbprint" value="{im}" />' in text
    assert '<add key="IMServerName" value="pool01.contoso.com" />' in text
    lines = run(ex01_pool, "Get-Content", Path=WEB_CONFIG, TotalCount=2).output
    assert lines == ['<?xml version="1.0" encoding="utf-8"?>', "<configuration>"]


def test_registry_value_present_and_missing_name(ex01_pool):
    (key,) = run(ex01_pool, "Get-ItemProperty", Path=IM_KEY).output
    p = props(key)
    assert p["ImplementationDLLPath"].endswith("\\") and p["PSChildName"] == "InstantMessaging"
    ps = run(ex01_pool, "Get-ItemProperty", Path=IM_KEY, Name="Nope")
    assert ps.output == [] and error_ids(ps) == [
        "System.Management.Automation.PSArgumentException,Microsoft.PowerShell.Commands.GetItemPropertyCommand"]
    ps = run(ex01_pool, "Get-ItemProperty", Path=IM_KEY + r"\Missing")
    assert error_ids(ps) == ["PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand"]


def test_web_app_pool_state(ex01_pool, edge_pool):
    (state,) = run(ex01_pool, "Get-WebAppPoolState", Name="MSExchangeOWAAppPool").output
    assert props(state)["Value"] == "Started"
    # An Edge server has no IIS, so no WebAdministration module.
    assert error_ids(run(edge_pool, "Get-WebAppPoolState", Name="DefaultAppPool")) == ["CommandNotFoundException"]


def test_cim_w3wp_processes(ex01_pool):
    procs = run(ex01_pool, "Get-CimInstance", ClassName="Win32_Process", Filter="Name='w3wp.exe'").output
    owa = [props(p) for p in procs if '-ap "MSExchangeOWAAppPool"' in props(p)["CommandLine"]]
    assert len(procs) == 2 and len(owa) == 1
    assert isinstance(owa[0]["ProcessId"], int) and isinstance(owa[0]["CreationDate"], str)
    assert procs[0].types[0] == "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_Process"
    like = run(ex01_pool, "Get-CimInstance", ClassName="Win32_Process",
               Filter="Name = 'w3wp.exe' AND CommandLine LIKE '%MSExchangeOWAAppPool%'").output
    assert len(like) == 1


def test_certificate_store(ex01_pool, fe01_pool):
    """Cert:\\LocalMachine\\My as Windows sends an X509Certificate2 over remoting: RawData only
    (PowerShell's type table), plus the certificate provider's notes."""
    output = run(ex01_pool, "Get-ChildItem", Path=STORE).output
    assert len(output) == 3  # ex01's Exchange certificates
    for obj in output:
        assert obj.types == ["System.Security.Cryptography.X509Certificates.X509Certificate2",
                             "System.Security.Cryptography.X509Certificates.X509Certificate", "System.Object"]
        assert set(obj.adapted_properties) == {"RawData"}
        p = obj.extended_properties
        assert list(p) == ["PSPath", "PSParentPath", "PSChildName", "PSDrive", "PSProvider", "PSIsContainer"]
        thumbprint = next(iter(der_certificates([obj])))
        assert p["PSChildName"] == thumbprint and p["PSIsContainer"] is False
        assert p["PSPath"] == f"Microsoft.PowerShell.Security\\Certificate::LocalMachine\\My\\{thumbprint}"
        assert str(p["PSDrive"]) == "Cert" and str(p["PSProvider"]) == "Microsoft.PowerShell.Security\\Certificate"
        assert f"[Thumbprint]\r\n  {thumbprint}\r\n" in str(obj)
    im = thumbprint_with_serial(output, EX01_IM_SERIAL)
    (one,) = run(ex01_pool, "Get-Item", Path=f"{STORE}\\{im}").output
    assert list(der_certificates([one])) == [im]
    # -File is a FileSystem parameter: on Cert:\ PowerShell rejects it.
    ps = run(fe01_pool, "Get-ChildItem", Path=STORE, File=None)
    assert ps.had_errors and error_ids(ps)[0].startswith("NamedParameterNotFound,")


def shown_items(value) -> list[str]:
    (raw,) = value.property_sets
    return re.findall(r"<ToString>([^<]*)</ToString>", raw)


def select(pool, path: str, *properties: str) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet("Get-ChildItem").add_parameter("Path", path)
    ps.add_cmdlet("Select-Object").add_parameter("Property", list(properties))
    ps.invoke()
    return ps


def test_certificate_store_select_object(ex01_pool, sim):
    """What does not travel (HasPrivateKey, FriendlyName...) is read on the server by Select-Object:
    a PSCustomObject "Selected.X509Certificate2" with the values as notes."""
    wanted = ("Thumbprint", "Subject", "Issuer", "NotBefore", "NotAfter", "HasPrivateKey", "SerialNumber",
              "FriendlyName", "DnsNameList", "EnhancedKeyUsageList", "NoSuchProperty")
    ps = select(ex01_pool, STORE, *wanted)
    assert not ps.had_errors and len(ps.output) == 3
    rows = {o.extended_properties["Thumbprint"]: o.extended_properties for o in ps.output}
    for obj in ps.output:
        assert obj.types == ["Selected.System.Security.Cryptography.X509Certificates.X509Certificate2",
                             "System.Management.Automation.PSCustomObject", "System.Object"]
        assert obj.adapted_properties == {} and list(obj.extended_properties) == list(wanted)
        assert obj.extended_properties["NoSuchProperty"] is None
    store = run(ex01_pool, "Get-ChildItem", Path=STORE).output
    assert set(rows) == set(der_certificates(store))
    im = rows[thumbprint_with_serial(store, EX01_IM_SERIAL)]
    assert im["HasPrivateKey"] is True and im["FriendlyName"] == "Exchange IM and UM (ex01)"
    assert im["SerialNumber"] == EX01_IM_SERIAL
    assert im["Subject"] == "CN=mail.contoso.com, OU=IT, O=Contoso, L=Redmond, S=WA, C=US"
    assert im["Issuer"] == "CN=Contoso Issuing CA, DC=contoso, DC=com"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+01:00", im["NotAfter"])
    # Lists of DnsNameRepresentation / EnhancedKeyUsageRepresentation objects: pypsrp does not know
    # the list type and keeps its <LST>; each item's ToString is the name.
    assert shown_items(im["DnsNameList"]) == ["mail.contoso.com", "autodiscover.contoso.com", "ex01.contoso.com",
                                              "owa.contoso.com"]
    assert shown_items(im["EnhancedKeyUsageList"]) == ["Server Authentication (1.3.6.1.5.5.7.3.1)"]
    # Select-Object is always visible on a restricted (JEA) endpoint.
    with pool_for(sim, "ex01.contoso.com", configuration="LyncOwaExporter") as jea:
        assert [list(o.extended_properties) for o in select(jea, STORE, "HasPrivateKey").output] == [
            ["HasPrivateKey"]] * 3


def test_only_select_object_may_follow_in_a_pipeline(ex01_pool):
    ps = PowerShell(ex01_pool)
    ps.add_cmdlet("Get-ChildItem").add_parameter("Path", STORE)
    ps.add_cmdlet("Get-Item")
    ps.invoke()
    assert ps.had_errors and error_ids(ps) == ["SimulatorPipelineNotSupported"]
