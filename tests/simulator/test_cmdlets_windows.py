"""Windows cmdlets on /wsman over the real pypsrp client: events, files, registry, IIS, CIM, certificates."""

from __future__ import annotations

import datetime as dt

from tests.simulator.helpers import IM_FOLDER, IM_KEY, WEB_CONFIG, error_ids, props, run

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
    assert '<add key="IMCertificateThumbprint" value="74D4289D432CCF279E83886B413062367B198913" />' in text
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
    certs = {props(c)["Thumbprint"]: props(c) for c in
             run(ex01_pool, "Get-ChildItem", Path="Cert:\\LocalMachine\\My").output}
    im = certs["74D4289D432CCF279E83886B413062367B198913"]
    assert im["HasPrivateKey"] is True and "ex01.contoso.com" in im["DnsNameList"]
    assert im["NotAfter"] > im["NotBefore"]
    # -File is a FileSystem parameter: on Cert:\ PowerShell rejects it.
    ps = run(fe01_pool, "Get-ChildItem", Path="Cert:\\LocalMachine\\My", File=None)
    assert ps.had_errors and error_ids(ps)[0].startswith("NamedParameterNotFound,")
