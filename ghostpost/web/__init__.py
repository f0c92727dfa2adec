"""Server-rendered pages: public timelines and the staff app."""

from __future__ import annotations

from flask import Blueprint

from ghostpost.web import auth, public, staff

#: Every blueprint of the web surface, registered in this order by create_app.
BLUEPRINTS: list[Blueprint] = [public.bp, auth.bp, staff.bp]
