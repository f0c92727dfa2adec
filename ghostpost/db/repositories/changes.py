"""The named state changes of posts and windows, as the fields each one sets.

Each repository (SQL here, the in-memory one of the tests) supplies `_change(id, **fields)`,
which stores column values; the mapping from a named change to its fields is written once, so
the implementations cannot drift apart. The service decides the change (it checks the move with
domain.states.transition); these only store it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ghostpost.domain.model import Post, Window
from ghostpost.domain.policy import WindowPolicy
from ghostpost.domain.states import PostState


def policy_columns(policy: WindowPolicy) -> dict[str, Any]:
    """A window's policy as its stored columns (enums by value): what creating a window and
    changing its policy both write."""
    return {
        "starts_at": policy.starts_at,
        "ends_at": policy.ends_at,
        "notice_text": policy.notice_text,
        "reminder_text": policy.reminder_text,
        "reminder_every": policy.reminder_every,
        "reminder_mode": policy.reminder_mode.value,
        "tag": policy.tag,
        "tag_mode": policy.tag_mode.value,
        "tag_position": policy.tag_position.value,
        "requires_approval": policy.requires_approval,
        "alt_text_required": policy.alt_text_required,
        "tag_every_part": policy.tag_every_part,
        "reason": policy.reason,
        "kind": policy.kind.value,
        "reply_policy": policy.reply_policy.value,
    }


class PostChanges:
    """The named changes of `ports.PostRepository`, over the implementation's `_change`."""

    def _change(self, post_id: int, **fields: Any) -> Post:
        raise NotImplementedError

    def set_state(
        self,
        post_id: int,
        state: PostState,
        reason: str | None,
        *,
        decisions: Mapping[str, Any] | None = None,
    ) -> Post:
        if decisions is None:
            return self._change(post_id, state=state.value, state_reason=reason)
        return self._change(
            post_id, state=state.value, state_reason=reason, decisions=dict(decisions)
        )

    def set_reason(self, post_id: int, reason: str | None) -> Post:
        return self._change(post_id, state_reason=reason)

    def set_decisions(self, post_id: int, decisions: Mapping[str, Any]) -> Post:
        return self._change(post_id, decisions=dict(decisions))

    def approve(
        self,
        post_id: int,
        *,
        state: PostState,
        approved_by: int,
        approved_at: datetime,
        publish_at: datetime | None,
    ) -> Post:
        return self._change(
            post_id,
            state=state.value,
            state_reason=None,
            approved_by=approved_by,
            approved_at=approved_at,
            publish_at=publish_at,
        )

    def reschedule(
        self,
        post_id: int,
        *,
        state: PostState,
        reason: str | None,
        publish_at: datetime,
        window_id: int | None,
        final_text: str,
        decisions: Mapping[str, Any],
        approved_by: int | None,
        approved_at: datetime | None,
        final_content_warning: str = "",
    ) -> Post:
        return self._change(
            post_id,
            state=state.value,
            state_reason=reason,
            publish_at=publish_at,
            window_id=window_id,
            final_text=final_text,
            final_content_warning=final_content_warning,
            decisions=dict(decisions),
            approved_by=approved_by,
            approved_at=approved_at,
        )

    def revise_notice(
        self, post_id: int, *, text: str, publish_at: datetime | None, reason: str | None
    ) -> Post:
        return self._change(
            post_id,
            submitted_text=text,
            final_text=text,
            publish_at=publish_at,
            state_reason=reason,
        )

    def start_publishing(
        self,
        post_id: int,
        *,
        state: PostState,
        final_text: str,
        attempts: int,
        claimed_by: str,
        lease_until: datetime,
        decisions: Mapping[str, Any],
        final_content_warning: str = "",
    ) -> Post:
        return self._change(
            post_id,
            state=state.value,
            state_reason=None,
            final_text=final_text,
            final_content_warning=final_content_warning,
            attempts=attempts,
            claimed_by=claimed_by,
            lease_until=lease_until,
            decisions=dict(decisions),
        )

    def reclaim(self, post_id: int, *, claimed_by: str, lease_until: datetime) -> Post:
        return self._change(post_id, claimed_by=claimed_by, lease_until=lease_until)

    def mark_published(
        self,
        post_id: int,
        *,
        state: PostState,
        platform_post_id: str,
        url: str,
        at: datetime,
    ) -> Post:
        return self._change(
            post_id,
            state=state.value,
            published_at=at,
            platform_post_id=platform_post_id,
            platform_url=url,
            lease_until=None,
        )

    def end_attempt(
        self,
        post_id: int,
        *,
        state: PostState,
        reason: str,
        next_attempt_at: datetime | None,
    ) -> Post:
        return self._change(
            post_id,
            state=state.value,
            state_reason=reason,
            lease_until=None,
            next_attempt_at=next_attempt_at,
        )

    def request_deletion(
        self, post_id: int, *, requested_by: int, at: datetime, lease_until: datetime
    ) -> Post:
        return self._change(
            post_id,
            deletion_requested_at=at,
            deletion_requested_by=requested_by,
            lease_until=lease_until,
        )

    def lease_deletion(self, post_id: int, *, lease_until: datetime) -> Post:
        return self._change(post_id, lease_until=lease_until)

    def mark_deleted(self, post_id: int, *, at: datetime) -> Post:
        return self._change(post_id, deleted_at=at, lease_until=None)

    def drop_deletion(self, post_id: int) -> Post:
        return self._change(
            post_id, deletion_requested_at=None, deletion_requested_by=None, lease_until=None
        )


class WindowChanges:
    """The named changes of `ports.WindowRepository`, over the implementation's `_change`."""

    def _change(self, window_id: int, **fields: Any) -> Window:
        raise NotImplementedError

    def attach_notice(self, window_id: int, notice_post_id: int) -> Window:
        return self._change(window_id, notice_post_id=notice_post_id)

    def set_policy(
        self,
        window_id: int,
        *,
        name: str,
        policy: WindowPolicy,
        notice_publish_at: datetime | None,
        clear_notice_rejection: bool,
    ) -> Window:
        rejection: dict[str, object] = (
            {
                "notice_rejected_at": None,
                "notice_rejected_by": None,
                "notice_rejection_comment": None,
            }
            if clear_notice_rejection
            else {}
        )
        return self._change(
            window_id,
            name=name,
            notice_publish_at=notice_publish_at,
            **policy_columns(policy),
            **rejection,
        )

    def approve_notice(self, window_id: int, *, approved_by: int, approved_at: datetime) -> Window:
        return self._change(
            window_id,
            notice_approved_at=approved_at,
            notice_approved_by=approved_by,
            notice_rejected_at=None,
            notice_rejected_by=None,
            notice_rejection_comment=None,
        )

    def reject_notice(
        self, window_id: int, *, rejected_by: int, rejected_at: datetime, comment: str
    ) -> Window:
        return self._change(
            window_id,
            notice_rejected_at=rejected_at,
            notice_rejected_by=rejected_by,
            notice_rejection_comment=comment,
        )

    def record_disclosures(
        self,
        window_id: int,
        *,
        posts_since_disclosure: int,
        notice_published_at: datetime | None,
    ) -> Window:
        return self._change(
            window_id,
            posts_since_disclosure=posts_since_disclosure,
            notice_published_at=notice_published_at,
        )
