"""Terminal business logic. Every entry point (API, consumer, admin, other apps) calls these."""

from .access import session_access
from .commands import command_assess, command_audit, command_run
from .confine import cgroups_sweep, operator_warnings, operator_warnings_sync
from .live import get as live_session
from .sessions import (
    SIGNALS,
    session_close,
    session_get,
    session_history,
    session_info,
    session_input,
    session_list,
    session_open,
    session_reachable,
    session_recording,
    session_signal,
    session_update,
    sessions_reconcile,
    sessions_shutdown,
)
from .typed import command_type
from .watch import Attachment, session_attach

__all__ = [
    "SIGNALS",
    "Attachment",
    "cgroups_sweep",
    "command_assess",
    "command_audit",
    "command_run",
    "operator_warnings",
    "operator_warnings_sync",
    "command_type",
    "live_session",
    "session_access",
    "session_attach",
    "session_close",
    "session_get",
    "session_history",
    "session_info",
    "session_input",
    "session_list",
    "session_open",
    "session_reachable",
    "session_recording",
    "session_signal",
    "session_update",
    "sessions_reconcile",
    "sessions_shutdown",
]
