"""Settings every collector has, with durations read as Prometheus writes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    ValidationInfo,
    field_validator,
)
from pydantic import Field as SettingField

from collectors.helpers.durations import format_duration, parse_duration
from collectors.helpers.values import yaml_type

# The configuration loader validates with ``context={SETTINGS_SOURCE: SOURCE_YAML, "base_dir": ...}``:
# in the file a duration must carry its unit ("30" could mean seconds or milliseconds), while code
# building settings directly may pass float seconds.
SETTINGS_SOURCE = "source"
SOURCE_YAML = "yaml"


def _duration_input(value: Any, info: ValidationInfo, *, allow_zero: bool) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_duration(value, allow_zero=allow_zero)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a duration such as '30s', got {yaml_type(value)}")
    if isinstance(info.context, Mapping) and info.context.get(SETTINGS_SOURCE) == SOURCE_YAML:
        raise ValueError(f"duration {value!r} has no unit: write it as e.g. '{value}s'")
    return float(value)


def _positive_duration(value: Any, info: ValidationInfo) -> Any:
    return _duration_input(value, info, allow_zero=False)


def _non_negative_duration(value: Any, info: ValidationInfo) -> Any:
    return _duration_input(value, info, allow_zero=True)


Duration = Annotated[float, BeforeValidator(_positive_duration)]
NonNegativeDuration = Annotated[float, BeforeValidator(_non_negative_duration)]


class CollectorSettings(BaseModel):
    """Settings every collector has. Collectors subclass this to add their own keys.

    Durations are float seconds; in YAML they are Prometheus durations ("30s"). ``jitter`` left unset
    becomes 10% of the interval, at most 30 s. Subclasses keep ``extra="forbid"``: a misspelt key is
    an error, not a silently ignored setting.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = True
    interval: Duration = SettingField(default=60.0, gt=0)
    # validate_default so the cross-field checks below also run on defaults ("interval: 20s" alone
    # must fail against the 30 s default timeout); the string default goes through the duration parser.
    timeout: Duration = SettingField(default_factory=lambda: "30s", gt=0, validate_default=True)
    jitter: NonNegativeDuration | None = SettingField(default=None, validate_default=True)

    @field_validator("timeout")
    @classmethod
    def _timeout_below_interval(cls, timeout: float, info: ValidationInfo) -> float:
        interval = info.data.get("interval")
        if interval is not None and timeout >= interval:
            raise ValueError(
                f"timeout ({format_duration(timeout)}) must be shorter than interval ({format_duration(interval)}),"
                " or runs would overlap"
            )
        return timeout

    @field_validator("jitter")
    @classmethod
    def _jitter_default_and_bound(cls, jitter: float | None, info: ValidationInfo) -> float | None:
        interval = info.data.get("interval")
        if interval is None:  # interval itself was invalid and is reported already
            return jitter
        if jitter is None:
            return min(interval * 0.1, 30.0)
        if jitter >= interval:
            raise ValueError(
                f"jitter ({format_duration(jitter)}) must be shorter than interval ({format_duration(interval)})"
            )
        return jitter
