//! Reviewer deadlines: a request that waits in review longer than the workspace's
//! `reviewDeadlineHours` gets the airlock managers a reminder, and at twice that an escalation
//! to the workspace's owners as well. `Reconcile` asks; the rule is here. Each is sent once per
//! stay in review (a resubmission starts the clock again) and is on the record.

use super::outbox::review_overdue_event;
use super::{AirlockRequest, Applied, Ctx, User};
use crate::lifecycle::Status;
use crate::policy::WorkspacePolicy;
use chrono::{DateTime, Duration, Utc};

/// The trail's action when the airlock managers were reminded.
pub const REVIEW_REMINDED: &str = "review reminder sent";
/// The trail's action when the owners were told as well.
pub const REVIEW_ESCALATED: &str = "review escalated";

/// What a request waiting in review is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overdue {
    /// Past the deadline: remind the airlock managers.
    Reminder,
    /// Past twice the deadline: the managers and the workspace's owners.
    Escalation,
}

impl AirlockRequest {
    /// How long the request has been in review (`None` when it is not in review).
    pub fn waiting_for_review(&self, now: DateTime<Utc>) -> Option<Duration> {
        (self.status == Status::InReview)
            .then(|| now - self.status_since.unwrap_or(self.updated_when))
    }

    /// What the request is due now, if anything: each at most once per stay in review, and
    /// an escalation makes a reminder not yet sent moot.
    pub fn review_overdue(&self, policy: &WorkspacePolicy, now: DateTime<Utc>) -> Option<Overdue> {
        if policy.review_deadline_hours == 0 {
            return None;
        }
        let waited = self.waiting_for_review(now)?;
        let deadline = Duration::hours(policy.review_deadline_hours.into());
        let escalated = self.audited_since_change(REVIEW_ESCALATED);
        if waited >= deadline * 2 && !escalated {
            Some(Overdue::Escalation)
        } else if waited >= deadline && !escalated && !self.audited_since_change(REVIEW_REMINDED) {
            Some(Overdue::Reminder)
        } else {
            None
        }
    }

    /// Sends what is due (a notification in the outbox, an entry in the trail), or nothing.
    pub fn remind_reviewers(&mut self, ctx: &Ctx) -> Applied {
        let Some(due) = self.review_overdue(&ctx.workspace.policy, ctx.now) else {
            return Applied::Unchanged("no review deadline has passed".into());
        };
        let hours = self
            .waiting_for_review(ctx.now)
            .map_or(0, |d| d.num_hours());
        let deadline = ctx.workspace.policy.review_deadline_hours;
        let (action, message) = match due {
            Overdue::Reminder => (
                REVIEW_REMINDED,
                format!(
                    "in review for {hours} hours, past the {deadline}-hour deadline: the airlock managers were reminded"
                ),
            ),
            Overdue::Escalation => (
                REVIEW_ESCALATED,
                format!(
                    "in review for {hours} hours, twice the {deadline}-hour deadline: the workspace's owners were told"
                ),
            ),
        };
        self.audit(ctx, &User::system(), action, message);
        self.outbox.push(review_overdue_event(
            self,
            due,
            hours,
            ctx.workspace,
            ctx.now,
        ));
        Applied::Changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Ctx;
    use crate::workspace::Workspace;

    fn workspace(hours: u32) -> Workspace {
        serde_json::from_value(serde_json::json!({
            "id": "ws", "displayName": "W", "shortId": "w", "tokenAudience": "a",
            "policy": {"reviewDeadlineHours": hours},
            "contacts": {"airlockManager": ["dm@w.test"], "workspaceOwner": ["owner@w.test"]}
        }))
        .unwrap()
    }

    fn at(hours: i64) -> DateTime<Utc> {
        "2026-12-05T08:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::hours(hours)
    }

    fn in_review(ws: &Workspace) -> AirlockRequest {
        let mut r = crate::request::tests::in_review(ws, 1);
        r.status_since = Some(at(0));
        r
    }

    #[test]
    fn reminders_then_an_escalation_each_once_per_stay_in_review() {
        let ws = workspace(24);
        let mut r = in_review(&ws);
        // (hours since it entered review, what is due, what the notification reaches)
        let steps: [(i64, Option<Overdue>, &[&str]); 6] = [
            (23, None, &[]),
            (24, Some(Overdue::Reminder), &["dm@w.test"]),
            (30, None, &[]),
            (
                48,
                Some(Overdue::Escalation),
                &["dm@w.test", "owner@w.test"],
            ),
            (72, None, &[]),
            (500, None, &[]),
        ];
        for (hours, due, reached) in steps {
            let ctx = Ctx {
                workspace: &ws,
                now: at(hours),
            };
            assert_eq!(r.review_overdue(&ws.policy, at(hours)), due, "at {hours} h");
            r.outbox.clear();
            let applied = r.remind_reviewers(&ctx);
            assert_eq!(
                matches!(applied, Applied::Changed),
                due.is_some(),
                "at {hours} h"
            );
            let mut to: Vec<String> = r
                .outbox
                .iter()
                .flat_map(|e| {
                    let recipients = &e.event.data["recipients"];
                    ["airlockManager", "workspaceOwner"]
                        .iter()
                        .flat_map(|k| recipients[*k].as_array().cloned().unwrap_or_default())
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect::<Vec<_>>()
                })
                .collect();
            to.sort();
            assert_eq!(to, reached, "at {hours} h");
            if let Some(event) = r.outbox.first() {
                assert_eq!(event.event.data["event"], "reviewOverdue");
                assert_eq!(event.event.data["waitingHours"], hours);
                assert_eq!(
                    event.event.data["escalated"],
                    due == Some(Overdue::Escalation)
                );
            }
        }
        let actions: Vec<&str> = r.history_tail.iter().map(|e| e.action.as_str()).collect();
        assert!(
            actions.ends_with(&[REVIEW_REMINDED, REVIEW_ESCALATED]),
            "{actions:?}"
        );
    }

    #[test]
    fn no_deadline_no_review_or_a_late_first_look_sends_one_thing() {
        let off = workspace(0);
        let r = in_review(&off);
        assert_eq!(
            r.review_overdue(&off.policy, at(10_000)),
            None,
            "0 is no deadline"
        );
        let ws = workspace(24);
        let r = in_review(&ws);
        assert_eq!(
            r.review_overdue(&ws.policy, at(60)),
            Some(Overdue::Escalation),
            "Reconcile down for two days: the escalation, not a reminder first"
        );
        let mut draft = in_review(&ws);
        draft.status = Status::Draft;
        assert_eq!(draft.review_overdue(&ws.policy, at(60)), None);
        // A record from before statusSince counts from its last update.
        let mut old = in_review(&ws);
        old.status_since = None;
        old.updated_when = at(10);
        assert_eq!(old.review_overdue(&ws.policy, at(30)), None);
        assert_eq!(
            old.review_overdue(&ws.policy, at(34)),
            Some(Overdue::Reminder)
        );
    }
}
