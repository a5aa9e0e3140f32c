"""Downloads from the Hugging Face Hub into the standard cache: plan, resume, verify.

    plan = plan_download("org/repo", files=("model-Q4_K_M.gguf",))
    result = download(plan, on_event=print, control=DownloadControl())

Nothing here imports huggingface_hub at module level (it is imported when used).
"""

from __future__ import annotations

from .cache import InstalledModel, hub_cache, installed_models
from .errors import (
    ChecksumMismatchError,
    DiskFullError,
    DownloadBusyError,
    DownloadError,
    InsecureEndpointError,
    OfflineError,
    RemoteFileNotFoundError,
    RepoNotFoundError,
    ServerError,
    TokenRequiredError,
    UnsafeFileError,
    UnsafeServerDataError,
    human_size,
)
from .events import (
    DownloadControl,
    DownloadEvent,
    FileDone,
    FileStarted,
    PlanFinished,
    PlanStarted,
    Progress,
    Retrying,
    Verifying,
)
from .hub import RetryPolicy
from .plan import DownloadPlan, PlannedFile, cached_plan, plan_download, plan_for_source
from .runner import (
    DownloadResult,
    download,
    is_installed,
    remaining_bytes,
    verify_installed,
)

__all__ = [
    "ChecksumMismatchError",
    "DiskFullError",
    "DownloadBusyError",
    "DownloadControl",
    "DownloadError",
    "DownloadEvent",
    "DownloadPlan",
    "DownloadResult",
    "FileDone",
    "FileStarted",
    "InsecureEndpointError",
    "InstalledModel",
    "OfflineError",
    "PlanFinished",
    "PlanStarted",
    "PlannedFile",
    "Progress",
    "RemoteFileNotFoundError",
    "RepoNotFoundError",
    "RetryPolicy",
    "ServerError",
    "TokenRequiredError",
    "UnsafeFileError",
    "UnsafeServerDataError",
    "Verifying",
    "Retrying",
    "cached_plan",
    "download",
    "hub_cache",
    "human_size",
    "installed_models",
    "is_installed",
    "plan_download",
    "plan_for_source",
    "remaining_bytes",
    "verify_installed",
]
