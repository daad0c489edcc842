"""SchedulerConfig: defaults, validation naming the field, environment and TOML loading."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from langflix_scheduler.config import ENV_PREFIX, SchedulerConfig
from langflix_scheduler.domain import VideoType
from langflix_scheduler.errors import ConfigurationError
from langflix_scheduler.quota import QuotaPolicy


def test_defaults() -> None:
    cfg = SchedulerConfig()
    assert cfg.database_url == "sqlite:///langflix-scheduler.db"
    assert cfg.timezone == "UTC"
    assert dict(cfg.daily_limits) == {VideoType.FINAL: 2, VideoType.SHORT: 5}
    assert cfg.publish_times[VideoType.FINAL] == (time(10), time(18))
    assert cfg.publish_times[VideoType.SHORT] == (
        time(8),
        time(11),
        time(14),
        time(17),
        time(20),
    )
    assert cfg.quota_policy == QuotaPolicy.default()
    assert cfg.quota_timezone == "America/Los_Angeles"
    assert cfg.lock_timeout == 5.0
    assert cfg.horizon_days == 60
    assert cfg.horizon == timedelta(days=60)
    assert cfg.min_lead_time == timedelta(minutes=15)
    assert cfg.upload_lead_time == timedelta(hours=1)
    assert cfg.api_project == "default"
    assert cfg.channel == "default"
    assert cfg.zone == ZoneInfo("UTC")
    assert cfg.quota_zone == ZoneInfo("America/Los_Angeles")


def test_is_frozen_and_mappings_read_only() -> None:
    cfg = SchedulerConfig()
    with pytest.raises(AttributeError):
        cfg.timezone = "Asia/Seoul"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.daily_limits[VideoType.FINAL] = 9  # type: ignore[index]


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        SchedulerConfig("sqlite:///x.db")  # type: ignore[misc]


def test_partial_limits_and_times_fill_defaults_and_normalise() -> None:
    cfg = SchedulerConfig(
        daily_limits={"final": 3},
        publish_times={"short": (time(9, 30, 0, 500), time(7), time(7))},
    )
    assert dict(cfg.daily_limits) == {VideoType.FINAL: 3, VideoType.SHORT: 5}
    assert cfg.publish_times[VideoType.SHORT] == (time(7), time(9, 30))
    assert cfg.publish_times[VideoType.FINAL] == (time(10), time(18))


def test_replace_revalidates() -> None:
    cfg = SchedulerConfig().replace(timezone="Asia/Seoul")
    assert cfg.zone == ZoneInfo("Asia/Seoul")
    with pytest.raises(ConfigurationError) as info:
        cfg.replace(horizon_days=0)
    assert info.value.field == "horizon_days"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"quota_timezone": "Not/AZone"}, "quota_timezone"),
        ({"daily_limits": {"final": -1}}, "daily_limits.final"),
        ({"daily_limits": {"short": 1.5}}, "daily_limits.short"),
        ({"daily_limits": {"short": True}}, "daily_limits.short"),
        ({"daily_limits": {"long": 3}}, "daily_limits"),
        ({"publish_times": {"teaser": (time(9),)}}, "publish_times"),
        ({"publish_times": {"final": ("09:00",)}}, "publish_times.final"),
        (
            {"publish_times": {"final": (time(9, tzinfo=ZoneInfo("UTC")),)}},
            "publish_times.final",
        ),
        ({"lock_timeout": 0}, "lock_timeout"),
        ({"lock_timeout": -1.0}, "lock_timeout"),
        ({"lock_timeout": float("nan")}, "lock_timeout"),
        ({"lock_timeout": 3601}, "lock_timeout"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"horizon_days": 3661}, "horizon_days"),
        ({"horizon_days": 1.5}, "horizon_days"),
        ({"min_lead_time": timedelta(seconds=-1)}, "min_lead_time"),
        ({"upload_lead_time": 60}, "upload_lead_time"),
        ({"api_project": ""}, "api_project"),
        ({"channel": "x" * 65}, "channel"),
        ({"database_url": "not a url"}, "database_url"),
        ({"quota_policy": "legacy"}, "quota_policy"),
        ({"deadlock_retries": -1}, "deadlock_retries"),
    ],
)
def test_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        SchedulerConfig(**kwargs)
    assert info.value.field == field
    assert repr(field) in str(info.value)
    assert info.value.reason
    assert isinstance(info.value, ValueError)


def test_bad_timezone_message_mentions_value() -> None:
    with pytest.raises(ConfigurationError, match="Mars/Olympus_Mons"):
        SchedulerConfig(timezone="Mars/Olympus_Mons")


def test_zero_daily_limit_is_allowed() -> None:
    assert SchedulerConfig(daily_limits={"short": 0}).daily_limits[VideoType.SHORT] == 0


# -- from_env -----------------------------------------------------------------------------------


def env(**values: str) -> dict[str, str]:
    return {ENV_PREFIX + k.upper(): v for k, v in values.items()}


def test_from_env_empty_is_defaults() -> None:
    assert SchedulerConfig.from_env({}) == SchedulerConfig()


def test_from_env_parses_everything() -> None:
    cfg = SchedulerConfig.from_env(
        {
            **env(
                database_url="postgresql://u@db/x",
                timezone="Asia/Seoul",
                daily_limits="final=3,short=1",
                publish_times="final=09:00|21:00",
                quota_policy="legacy",
                quota_timezone="America/New_York",
                lock_timeout="2.5",
                horizon_days="14",
                min_lead_time="60",
                upload_lead_time="7200",
                api_project="proj",
                channel="chan",
                deadlock_retries="2",
            ),
            "UNRELATED": "ignored",
        }
    )
    assert cfg.database_url == "postgresql://u@db/x"
    assert cfg.timezone == "Asia/Seoul"
    assert dict(cfg.daily_limits) == {VideoType.FINAL: 3, VideoType.SHORT: 1}
    assert cfg.publish_times[VideoType.FINAL] == (time(9), time(21))
    assert cfg.publish_times[VideoType.SHORT] == SchedulerConfig().publish_times[VideoType.SHORT]
    assert cfg.quota_policy == QuotaPolicy.preset("legacy")
    assert cfg.quota_timezone == "America/New_York"
    assert cfg.lock_timeout == 2.5
    assert cfg.horizon_days == 14
    assert cfg.min_lead_time == timedelta(seconds=60)
    assert cfg.upload_lead_time == timedelta(hours=2)
    assert cfg.api_project == "proj"
    assert cfg.channel == "chan"
    assert cfg.deadlock_retries == 2


def test_from_env_overrides_win_and_none_falls_through() -> None:
    cfg = SchedulerConfig.from_env(
        env(timezone="Asia/Seoul", horizon_days="14"), timezone="Europe/London", horizon_days=None
    )
    assert cfg.timezone == "Europe/London"
    assert cfg.horizon_days == 14


def test_from_env_blank_value_ignored() -> None:
    assert SchedulerConfig.from_env(env(timezone="")).timezone == "UTC"


def test_from_env_does_not_read_os_environ_when_given_mapping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_PREFIX + "TIMEZONE", "Asia/Seoul")
    assert SchedulerConfig.from_env({}).timezone == "UTC"
    assert SchedulerConfig.from_env().timezone == "Asia/Seoul"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"daily_limits": "final=three"}, "daily_limits.final"),
        ({"daily_limits": "final"}, "daily_limits"),
        ({"daily_limits": "long=3"}, "daily_limits"),
        ({"daily_limits": "final=-2"}, "daily_limits.final"),
        ({"publish_times": "final=25:00"}, "publish_times.final"),
        ({"publish_times": "final=9am"}, "publish_times.final"),
        ({"quota_policy": "unlimited"}, "quota_policy"),
        ({"lock_timeout": "soon"}, "lock_timeout"),
        ({"lock_timeout": "0"}, "lock_timeout"),
        ({"horizon_days": "ten"}, "horizon_days"),
        ({"horizon_days": "0"}, "horizon_days"),
        ({"min_lead_time": "quick"}, "min_lead_time"),
        ({"min_lead_time": "-5"}, "min_lead_time"),
        ({"timezone": "Nowhere/Land"}, "timezone"),
    ],
)
def test_from_env_errors_name_the_field(values: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        SchedulerConfig.from_env(env(**values))
    assert info.value.field == field


# -- from_file ----------------------------------------------------------------------------------


def test_from_file_top_level(tmp_path: Path) -> None:
    path = tmp_path / "langflix-scheduler.toml"
    path.write_text(
        'timezone = "Asia/Seoul"\n'
        "horizon_days = 30\n"
        "min_lead_time = 120\n"
        'quota_policy = "pool-2025"\n'
        "[daily_limits]\nfinal = 4\nshort = 2\n"
        '[publish_times]\nfinal = ["07:30", "19:45"]\n',
        encoding="utf-8",
    )
    cfg = SchedulerConfig.from_file(path)
    assert cfg.timezone == "Asia/Seoul"
    assert cfg.horizon_days == 30
    assert cfg.min_lead_time == timedelta(minutes=2)
    assert cfg.quota_policy == QuotaPolicy.preset("pool-2025")
    assert dict(cfg.daily_limits) == {VideoType.FINAL: 4, VideoType.SHORT: 2}
    assert cfg.publish_times[VideoType.FINAL] == (time(7, 30), time(19, 45))


def test_from_file_scheduler_table_and_custom_policy(tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text(
        "[scheduler]\n"
        'timezone = "America/New_York"\n'
        "lock_timeout = 1.5\n"
        "[scheduler.publish_times]\n"
        "short = [08:00:00, 12:00:00]\n"
        "[scheduler.quota_policy]\n"
        'name = "tiny"\n'
        "buckets = { uploads = 3, shared = 100 }\n"
        'costs = { "videos.insert" = ["uploads", 1], "thumbnails.set" = ["shared", 50] }\n',
        encoding="utf-8",
    )
    cfg = SchedulerConfig.from_file(path, lock_timeout=3.0)
    assert cfg.timezone == "America/New_York"
    assert cfg.lock_timeout == 3.0
    assert cfg.publish_times[VideoType.SHORT] == (time(8), time(12))
    assert cfg.quota_policy.name == "tiny"
    assert dict(cfg.quota_policy.buckets) == {"uploads": 3, "shared": 100}
    assert cfg.quota_policy.cost(["videos.insert", "thumbnails.set"]) == {
        "shared": 50,
        "uploads": 1,
    }


def test_from_file_unknown_key_rejected(tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text('timezone = "UTC"\ntimezon = "Asia/Seoul"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        SchedulerConfig.from_file(path)
    assert info.value.field == "timezon"
    assert str(path) in str(info.value)


def test_from_file_unknown_key_in_scheduler_table(tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text("[scheduler]\nmax_uploads = 3\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        SchedulerConfig.from_file(path)
    assert info.value.field == "max_uploads"


def test_from_file_missing_and_invalid(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        SchedulerConfig.from_file(tmp_path / "absent.toml")
    assert info.value.field == "config_file"
    bad = tmp_path / "bad.toml"
    bad.write_text("timezone = \n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        SchedulerConfig.from_file(bad)
    assert info.value.field == "config_file"
    assert "not valid TOML" in str(info.value)


def test_from_file_invalid_value_names_field(tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text("[daily_limits]\nfinal = -1\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        SchedulerConfig.from_file(path)
    assert info.value.field == "daily_limits.final"


def test_load_precedence_file_env_overrides(tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text('timezone = "Asia/Seoul"\nhorizon_days = 30\nchannel = "file"\n')
    cfg = SchedulerConfig.load(
        file=path, environ=env(horizon_days="20", channel="env"), channel="flag"
    )
    assert cfg.timezone == "Asia/Seoul"  # file only
    assert cfg.horizon_days == 20  # env beats file
    assert cfg.channel == "flag"  # override beats env


def test_day_start_is_local_midnight_in_utc_across_dst() -> None:
    from datetime import UTC, date, datetime

    cfg = SchedulerConfig(timezone="America/New_York")
    assert cfg.day_start(date(2026, 3, 8)) == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    assert cfg.day_start(date(2026, 3, 9)) == datetime(2026, 3, 9, 4, 0, tzinfo=UTC)
    assert SchedulerConfig(timezone="Asia/Seoul").day_start(date(2026, 5, 1)) == datetime(
        2026, 4, 30, 15, 0, tzinfo=UTC
    )
