"""Server-rendered pages: public timelines and the staff app."""

from __future__ import annotations

from flask import Blueprint

from ghostpost.web import (
    accounts,
    admin,
    approvals,
    auth,
    authorize,
    calendar,
    compose,
    coverage,
    exports,
    guards,
    ledger,
    ledger_keys,
    live,
    notifications,
    posts,
    public,
    queue,
    staff,
    times,
    verify,
    windows,
)

#: Every blueprint of the web surface, registered in this order by create_app.
BLUEPRINTS: list[Blueprint] = [public.bp, verify.bp, auth.bp, staff.bp]
BLUEPRINTS += [compose.bp, queue.bp, posts.bp, approvals.bp, ledger_keys.bp]
BLUEPRINTS += [windows.bp, ledger.bp, exports.bp, coverage.bp, admin.bp, accounts.bp]
BLUEPRINTS += [authorize.bp, guards.bp, notifications.bp, times.bp, calendar.bp, live.bp]
