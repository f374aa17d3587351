"""Pure parts of the UCMA runtime collector: reading ImplementationDLLPath and where the DLL must be."""

from __future__ import annotations

import pytest

from collectors.ucma_runtime import dll_path_for, implementation_dll_path

SSP = "C:\\Program Files\\Microsoft UCMA 4.0\\Runtime\\SSP\\"
DLL = "C:\\Program Files\\Microsoft UCMA 4.0\\Runtime\\SSP\\Microsoft.Rtc.Internal.Ucweb.dll"


@pytest.mark.parametrize(
    "objects, value",
    [
        ([{"ImplementationDLLPath": SSP, "PSChildName": "InstantMessaging"}], SSP),
        ([{"implementationdllpath": SSP}], SSP),  # value names are case-insensitive
        ([{"PSChildName": "InstantMessaging"}], None),
        ([], None),
        ([{"ImplementationDLLPath": "  "}], None),
        ([{"ImplementationDLLPath": None}], None),
        ([{"ImplementationDLLPath ": SSP}], None),  # another value to Windows, and to OWA
        ([{"ImplementationDLLPath": 7}], 7),
    ],
)
def test_implementation_dll_path(objects, value):
    assert implementation_dll_path(objects) == value


@pytest.mark.parametrize(
    "value, path",
    [
        (SSP, DLL),
        (SSP.rstrip("\\"), DLL),
        (f"  {SSP}  ", DLL),
        (DLL, DLL),  # a value naming the DLL itself
        (DLL.upper(), DLL.upper()),
        ("D:/UCMA/SSP/", "D:/UCMA/SSP\\Microsoft.Rtc.Internal.Ucweb.dll"),
        ("C:\\", "C:\\Microsoft.Rtc.Internal.Ucweb.dll"),
        ("C:\\Runtime\\S*\\", "C:\\Runtime\\S*\\Microsoft.Rtc.Internal.Ucweb.dll"),  # data; sent as -LiteralPath
    ],
)
def test_dll_path_is_joined_windows_style(value, path):
    assert dll_path_for(value) == path


@pytest.mark.parametrize(
    "value",
    [
        "\\\\fileserver\\ucma\\SSP\\",  # a share: the check never reaches out over SMB
        "HKLM:\\SOFTWARE\\x",
        "Registry::HKEY_LOCAL_MACHINE\\x",
        "Microsoft.PowerShell.Core\\FileSystem::C:\\x",
        "SSP\\",
        "C:relative",
        "C:\\x\nC:\\y",
        "C:\\" + "x" * 2000,
        "",
        7,
        ["C:\\x"],
        None,
    ],
)
def test_values_that_are_not_a_local_folder_are_not_looked_at(value):
    assert dll_path_for(value) is None
