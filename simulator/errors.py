"""The error records PowerShell writes, as the simulator's cmdlets need them.

An ``ErrorSpec`` describes one ErrorRecord (message, .NET exception type chain, category,
FullyQualifiedErrorId). Cmdlet handlers *write* specs for non-terminating errors and *raise*
``TerminatingError`` for errors that end the pipeline (state Failed), exactly the two ways a real
cmdlet fails. The session layer turns specs into psrpcore ErrorRecords.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from psrpcore.types import ErrorCategory, ErrorCategoryInfo, ErrorRecord, NETException

_BASE_EXCEPTIONS = ["System.SystemException", "System.Exception", "System.Object"]
_RUNTIME = ["System.Management.Automation.RuntimeException"] + _BASE_EXCEPTIONS


@dataclasses.dataclass
class ErrorSpec:
    message: str
    exception_types: list[str]
    category: ErrorCategory
    fqid: str  # FullyQualifiedErrorId, "<ErrorId>,<cmdlet .NET class>" for cmdlet errors
    activity: str = ""
    reason: str = ""
    target_name: str = ""
    target_type: str = ""
    target_object: Any = None
    hresult: int = -2146233087

    def record(self) -> ErrorRecord:
        exception = NETException(Message=self.message, HResult=self.hresult)
        exception.PSObject.type_names = list(self.exception_types)
        return ErrorRecord(
            Exception=exception,
            CategoryInfo=ErrorCategoryInfo(
                Category=self.category,
                Activity=self.activity,
                Reason=self.reason or self.exception_types[0].rsplit(".", 1)[-1],
                TargetName=self.target_name,
                TargetType=self.target_type,
            ),
            TargetObject=self.target_object,
            FullyQualifiedErrorId=self.fqid,
        )


class TerminatingError(Exception):
    """Raised by a cmdlet handler: the pipeline ends Failed with this error record."""

    def __init__(self, spec: ErrorSpec) -> None:
        super().__init__(spec.message)
        self.spec = spec


def command_not_found(name: str) -> ErrorSpec:
    return ErrorSpec(
        message=(
            f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable "
            "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
            "and try again."
        ),
        exception_types=["System.Management.Automation.CommandNotFoundException"] + _RUNTIME,
        category=ErrorCategory.ObjectNotFound,
        fqid="CommandNotFoundException",
        reason="CommandNotFoundException",
        target_name=name,
        target_type="String",
        target_object=name,
    )


def parameter_binding(cmdlet: str, cmdlet_class: str, error_id: str, message: str, parameter: str = "") -> ErrorSpec:
    return ErrorSpec(
        message=message,
        exception_types=["System.Management.Automation.ParameterBindingException"] + _RUNTIME,
        category=ErrorCategory.InvalidArgument,
        fqid=f"{error_id},{cmdlet_class}",
        activity=cmdlet,
        reason="ParameterBindingException",
        target_name=parameter,
        target_type="String" if parameter else "",
    )


def scripts_not_allowed(script: str) -> ErrorSpec:
    """Exchange's /PowerShell endpoint runs in no-language mode: script text is a parse error."""
    return ErrorSpec(
        message="The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode.",
        exception_types=["System.Management.Automation.ParseException"] + _RUNTIME,
        category=ErrorCategory.ParserError,
        fqid="ScriptsNotAllowed",
        reason="ParseException",
        target_name=script[:80],
        target_type="String",
        target_object=script,
    )


def scripts_not_simulated(script: str) -> ErrorSpec:
    """Full-language endpoints would run scripts; the simulator only runs cmdlets (as the exporter must)."""
    return ErrorSpec(
        message="The simulator runs cmdlets with parameters only; script text is not interpreted.",
        exception_types=["System.Management.Automation.ParseException"] + _RUNTIME,
        category=ErrorCategory.ParserError,
        fqid="SimulatorScriptNotSupported",
        reason="ParseException",
        target_name=script[:80],
        target_type="String",
        target_object=script,
    )


def path_not_found(path: str, cmdlet: str, cmdlet_class: str) -> ErrorSpec:
    return ErrorSpec(
        message=f"Cannot find path '{path}' because it does not exist.",
        exception_types=[
            "System.Management.Automation.ItemNotFoundException",
            "System.Management.Automation.SessionStateException",
        ]
        + _RUNTIME,
        category=ErrorCategory.ObjectNotFound,
        fqid=f"PathNotFound,{cmdlet_class}",
        activity=cmdlet,
        reason="ItemNotFoundException",
        target_name=path,
        target_type="String",
        target_object=path,
    )


def no_matching_events() -> ErrorSpec:
    return ErrorSpec(
        message="No events were found that match the specified selection criteria.",
        exception_types=["System.Exception", "System.Object"],
        category=ErrorCategory.ObjectNotFound,
        fqid="NoMatchingEventsFound,Microsoft.PowerShell.Commands.GetWinEventCommand",
        activity="Get-WinEvent",
        reason="Exception",
        hresult=-2146233088,
    )


def no_matching_logs(log_name: str) -> ErrorSpec:
    return ErrorSpec(
        message=f'There is not an event log on the localhost computer that matches "{log_name}".',
        exception_types=["System.Exception", "System.Object"],
        category=ErrorCategory.ObjectNotFound,
        fqid="NoMatchingLogsFound,Microsoft.PowerShell.Commands.GetWinEventCommand",
        activity="Get-WinEvent",
        reason="Exception",
        target_name=log_name,
        target_type="String",
        target_object=log_name,
        hresult=-2146233088,
    )


def invalid_query(detail: str) -> ErrorSpec:
    return ErrorSpec(
        message=f"The specified query is invalid ({detail})",
        exception_types=["System.Diagnostics.Eventing.Reader.EventLogException"] + _BASE_EXCEPTIONS,
        category=ErrorCategory.NotSpecified,
        fqid="System.Diagnostics.Eventing.Reader.EventLogException,Microsoft.PowerShell.Commands.GetWinEventCommand",
        activity="Get-WinEvent",
        reason="EventLogException",
        hresult=-2146233088,
    )


def property_not_found(name: str, registry_path: str) -> ErrorSpec:
    return ErrorSpec(
        message=f"Property {name} does not exist at path {registry_path}.",
        exception_types=[
            "System.Management.Automation.PSArgumentException",
            "System.ArgumentException",
        ]
        + _BASE_EXCEPTIONS,
        category=ErrorCategory.InvalidArgument,
        fqid="System.Management.Automation.PSArgumentException,Microsoft.PowerShell.Commands.GetItemPropertyCommand",
        activity="Get-ItemProperty",
        reason="PSArgumentException",
        target_name=name,
        target_type="String",
        target_object=name,
    )


def invalid_argument(message: str, fqid: str, cmdlet: str) -> ErrorSpec:
    return ErrorSpec(
        message=message,
        exception_types=["System.ArgumentException"] + _BASE_EXCEPTIONS,
        category=ErrorCategory.InvalidArgument,
        fqid=fqid,
        activity=cmdlet,
        reason="ArgumentException",
    )


def exchange_not_found(identity: str, cmdlet: str, cmdlet_class: str, domain_controller: str) -> ErrorSpec:
    return ErrorSpec(
        message=f"The operation couldn't be performed because object '{identity}' couldn't be found on "
        f"'{domain_controller}'.",
        exception_types=[
            "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
            "Microsoft.Exchange.Data.Common.LocalizedException",
        ]
        + _BASE_EXCEPTIONS[1:],
        category=ErrorCategory.NotSpecified,
        fqid=f"ManagementObjectNotFoundException,{cmdlet_class}",
        activity=cmdlet,
        reason="ManagementObjectNotFoundException",
        target_name=identity,
        target_type="String",
    )


def cim_invalid_class(class_name: str) -> ErrorSpec:
    return ErrorSpec(
        message="Invalid class ",
        exception_types=["Microsoft.Management.Infrastructure.CimException"] + _BASE_EXCEPTIONS,
        category=ErrorCategory.MetadataError,
        fqid="HRESULT 0x80041010,Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand",
        activity="Get-CimInstance",
        reason="CimException",
        target_name=f"root/cimv2:{class_name}",
        target_type="String",
    )


def injected(cmdlet: str, cmdlet_class: str, terminating: bool) -> ErrorSpec:
    """The error of the *_error faults: clearly simulated, but shaped like any cmdlet error."""
    kind = "terminating" if terminating else "non-terminating"
    return ErrorSpec(
        message=f"Simulated {kind} error injected into {cmdlet} by the simulator's fault injection.",
        exception_types=["System.InvalidOperationException"] + _BASE_EXCEPTIONS,
        category=ErrorCategory.InvalidOperation,
        fqid=f"Simulated{'Terminating' if terminating else 'NonTerminating'}Error,{cmdlet_class}",
        activity=cmdlet,
        reason="InvalidOperationException",
        hresult=-2146233079,
    )
