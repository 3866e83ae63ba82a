"""Open sockets hear at once when their user may have lost access.

autobot/ws.py checks an open socket's credentials, and what its app requires, again every
WS_REAUTH_SECONDS; alone, that leaves a revoked token working on a socket for up to a minute.
So whatever can take access away tells that user's sockets to check now: a message to the
channel-layer group ``auth.user.<id>`` (over Redis it reaches every worker), which every open
socket joins. The message is only a nudge: each socket decides from the database, as the
periodic check does, so a message lost, forged or sent for nothing changes nothing. The periodic
check stays the backstop (a lost message, the layer away).

What nudges (Django signals, so the API, the admin and the shell are alike):
- an API token saved (revoked) or deleted;
- a session flushed, at sign-out (autobot/sessions.py calls ``recheck_after_commit``);
- a user saved (deactivated, password changed, staff status taken away) or deleted;
- permissions or groups taken away: from a user, from a group (its members), a group deleted.
A nudge goes once the transaction commits, so the check reads the change. Not covered (the
periodic check catches them): rows changed with ``QuerySet.update`` or by raw SQL, which send no
signal, and a token's expiry simply passing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

log = logging.getLogger("autobot.ws")

RECHECK = "auth.recheck"


def user_group(user_id) -> str:
    return f"auth.user.{user_id}"


async def recheck_sockets(user_ids: Iterable) -> None:
    """Ask the open sockets of these users to check their credentials now. Never raises: the
    change that asks has happened, and a layer away must not undo or fail it."""
    layer = get_channel_layer()
    if layer is None:
        return
    for user_id in {str(user_id) for user_id in user_ids if user_id is not None}:
        try:
            await layer.group_send(user_group(user_id), {"type": RECHECK})
        except Exception:  # the periodic check still covers these sockets
            log.warning("websocket: could not ask user %s's sockets to check again", user_id, exc_info=True)


def recheck_after_commit(user_ids: Iterable) -> None:
    """``recheck_sockets`` from sync code (signal receivers), once the transaction commits: a
    check run before that would still read the old rows."""
    ids = {user_id for user_id in user_ids if user_id is not None}
    if ids:
        transaction.on_commit(lambda: _send_from_sync(ids))


_loop: asyncio.AbstractEventLoop | None = None  # where this process's sockets listen
_sending: set = set()


def sockets_listen_here() -> None:
    """Called by each socket (autobot/ws.py) from its event loop."""
    global _loop
    _loop = asyncio.get_running_loop()


def _send_from_sync(ids: set) -> None:
    """Handed to the sockets' loop, not waited for: sync code may run on a thread asgiref does
    not know (a lane, autobot/lanes.py), where ``async_to_sync`` would start a loop of its own
    and touch the in-memory layer's queues from the wrong thread. Without sockets in this
    process (a management command) a loop of its own is right: over Redis it reaches the servers."""
    loop = _loop
    try:
        if loop is None or not loop.is_running():
            async_to_sync(recheck_sockets)(ids)
            return
        future = asyncio.run_coroutine_threadsafe(recheck_sockets(ids), loop)
    except Exception:  # never fail the change that asks (a sign-out, a revocation)
        log.warning("websocket: could not ask users %s' sockets to check again", ids, exc_info=True)
        return
    _sending.add(future)
    future.add_done_callback(_sending.discard)


# -- the signals ---------------------------------------------------------------------------------


def _token_saved(sender, instance, created, **kwargs):
    if not created:  # revoked (a token is otherwise never edited); a new one takes nothing away
        recheck_after_commit([instance.user_id])


def _token_deleted(sender, instance, **kwargs):
    recheck_after_commit([instance.user_id])


def _user_saved(sender, instance, created, update_fields=None, **kwargs):
    # Every save may take something away (is_active, is_staff, the password); a sign-in's
    # last_login write never does.
    if not created and set(update_fields or ()) != {"last_login"}:
        recheck_after_commit([instance.pk])


def _user_deleted(sender, instance, **kwargs):
    recheck_after_commit([instance.pk])


def _group_deleting(sender, instance, **kwargs):
    # After the delete its members are no longer readable: note them now.
    instance._autobot_members = _users(groups=instance)


def _group_deleted(sender, instance, **kwargs):
    recheck_after_commit(getattr(instance, "_autobot_members", ()))


def _relation_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """Groups or permissions taken away. Who is affected is read before the change (a clear
    leaves nothing to read after it) and nudged after it."""
    if action in ("pre_remove", "pre_clear"):
        instance._autobot_affected = _affected(sender, instance, reverse, pk_set)
    elif action in ("post_remove", "post_clear"):
        recheck_after_commit(instance.__dict__.pop("_autobot_affected", ()))


def _affected(through, instance, reverse: bool, pk_set) -> set:
    """The users whose groups or permissions the change touches."""
    if through is Group.permissions.through:
        if not reverse:  # group.permissions.remove(...): the group's members
            return _users(groups=instance)
        # permission.group_set.remove(...): the members of those groups (of every group, on clear)
        return _users(groups__in=pk_set) if pk_set is not None else _users(groups__permissions=instance)
    if not reverse:  # user.groups / user.user_permissions
        return {instance.pk}
    field = "groups" if through is get_user_model().groups.through else "user_permissions"
    return set(pk_set) if pk_set is not None else _users(**{field: instance})


def _users(**lookup) -> set:
    return set(get_user_model().objects.filter(**lookup).values_list("pk", flat=True).distinct())


def connect() -> None:
    """Called once, from the app's ``ready``."""
    from autobot.models import ApiToken

    user_model = get_user_model()
    uid = "autobot.revocation"
    post_save.connect(_token_saved, sender=ApiToken, dispatch_uid=f"{uid}.token_saved")
    post_delete.connect(_token_deleted, sender=ApiToken, dispatch_uid=f"{uid}.token_deleted")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid=f"{uid}.user_saved")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid=f"{uid}.user_deleted")
    pre_delete.connect(_group_deleting, sender=Group, dispatch_uid=f"{uid}.group_deleting")
    post_delete.connect(_group_deleted, sender=Group, dispatch_uid=f"{uid}.group_deleted")
    for through in (user_model.groups.through, user_model.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(_relation_changed, sender=through, dispatch_uid=f"{uid}.{through.__name__}")
