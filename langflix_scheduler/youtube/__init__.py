"""The YouTube seam: the :class:`Uploader` protocol and its implementations.

* :mod:`.uploader`: the protocol, request/result types and :class:`DryRunUploader` (no network).
* :mod:`.google`: :class:`YouTubeUploader` (google-api-python-client), built from
  :mod:`.classify` (:func:`classify_error`, table-driven), :mod:`.metering` (the quota-ledger
  wrapper of the http object), :mod:`.resumable` (the resumable insert state machine) and
  :mod:`.streaming` (the one-shot media request body).
* :mod:`.auth`: OAuth (:func:`authorize`, :func:`load_credentials`, :func:`token_path_for`).
* :mod:`.health`: token health (:func:`check_token`, :func:`check_tokens`: refresh a stored
  token, ask ``channels.list(mine=true)`` whose channel it is, report a :class:`TokenHealth`).

The Google-backed names are imported lazily, so importing the protocol does not load
google-api-python-client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .health import TokenHealth, TokenProblem, check_token, check_tokens
from .uploader import (
    ApiCallReport,
    CallCallback,
    CallPhase,
    DryRunUploader,
    ProgressCallback,
    SessionProbe,
    SessionProber,
    SessionState,
    StepCallback,
    Uploader,
    UploadRequest,
    UploadResult,
    UploadStep,
)

if TYPE_CHECKING:
    from .auth import DEFAULT_SCOPES, authorize, load_credentials, token_path_for
    from .google import YouTubeUploader, classify_error

__all__ = [
    "DEFAULT_SCOPES",
    "ApiCallReport",
    "CallCallback",
    "CallPhase",
    "DryRunUploader",
    "ProgressCallback",
    "SessionProbe",
    "SessionProber",
    "SessionState",
    "StepCallback",
    "TokenHealth",
    "TokenProblem",
    "UploadRequest",
    "UploadResult",
    "UploadStep",
    "Uploader",
    "YouTubeUploader",
    "authorize",
    "check_token",
    "check_tokens",
    "classify_error",
    "load_credentials",
    "token_path_for",
]

_LAZY = {
    "YouTubeUploader": ".google",
    "classify_error": ".google",
    "DEFAULT_SCOPES": ".auth",
    "authorize": ".auth",
    "load_credentials": ".auth",
    "token_path_for": ".auth",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
