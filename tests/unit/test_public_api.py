"""The public API is exactly what ``__all__`` lists, sorted, and every name resolves."""

from __future__ import annotations

import inspect

import langflix_scheduler


def test_all_is_sorted_and_unique() -> None:
    names = list(langflix_scheduler.__all__)
    assert names == sorted(names)
    assert len(names) == len(set(names))


def test_all_matches_public_names() -> None:
    # Some names are resolved on first access (PEP 562, to keep the CLI's start-up cheap):
    # resolve them all, then the module's public names must be exactly __all__.
    for name in langflix_scheduler.__all__:
        getattr(langflix_scheduler, name)
    public = {
        name
        for name, value in vars(langflix_scheduler).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", "").startswith("langflix_scheduler")
    }
    assert public == set(langflix_scheduler.__all__) - {"__version__"}


def test_every_error_is_a_scheduler_error() -> None:
    for name in langflix_scheduler.__all__:
        value = getattr(langflix_scheduler, name)
        if inspect.isclass(value) and issubclass(value, Exception):
            assert issubclass(value, langflix_scheduler.SchedulerError), name


def test_version_is_set() -> None:
    assert langflix_scheduler.__version__.count(".") >= 2


def test_processor_names_are_exported() -> None:
    from langflix_scheduler import processor

    for name in (
        "ProcessReport",
        "ProcessorEvent",
        "ProcessorEventKind",
        "RunOutcome",
        "UploadProcessor",
    ):
        assert name in langflix_scheduler.__all__
        assert getattr(langflix_scheduler, name) is getattr(processor, name)
    # Results and events are frozen value objects.
    for cls in (langflix_scheduler.ProcessReport, langflix_scheduler.ProcessorEvent):
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_booking_is_exported() -> None:
    """``ScheduleManager.book`` returns a frozen ``Booking`` (schedule + created)."""
    from langflix_scheduler import domain

    assert "Booking" in langflix_scheduler.__all__
    assert langflix_scheduler.Booking is domain.Booking
    assert langflix_scheduler.Booking.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert callable(langflix_scheduler.ScheduleManager.book)


def test_importing_the_cli_does_not_import_sqlalchemy() -> None:
    """`--help` and `--version` must not pay for SQLAlchemy, googleapiclient or rich."""
    import subprocess
    import sys

    code = (
        "import sys, langflix_scheduler.cli; "
        "print(sorted(m for m in ('sqlalchemy', 'googleapiclient', 'rich', 'alembic') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
