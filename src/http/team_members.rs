//! Team membership endpoints (API.md §6 Teams, §5 roles): `/team/member_add`,
//! `/team/member_delete`, `/team/member_update`. Split from `teams.rs` (which re-exports them
//! for the route table); each write authorizes on the stored team in its own transaction and
//! appends its audit entry there.

use super::members::{self, TEAM};
use super::teams::{team_id_param, team_reply, visible_team};
use super::{patch, shapes, Body, Ctx, Reply, Req};
use crate::access::{authority, policy};
use crate::audit::{Actor, Entry};
use crate::auth::Caller;
use crate::db::handle::Handle;
use crate::db::{self, members::Group, teams::TeamRow};
use crate::error::{Error, Result};
use serde_json::json;
/// `POST /team/member_add` (`team_id`, `member`: one or a list, `max_budget_in_team`): team
/// admins and above. Missing users are created; an existing membership is 409 and nothing is
/// written. Members need not belong to the team's organization.
pub fn member_add(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    let team_id = team_id_param(&body)?;
    let specs = members::specs(&TEAM, &body, "member", true)?;
    let budget = body.opt_budget("max_budget_in_team")?;
    let by = who.user_id.clone();
    let out = ctx.pool.write_db(|tx| {
        let t = team_admin_of(tx, who, &team_id, "add members")?;
        let d = &ctx.cfg.user_defaults;
        let added = members::add(tx, d, &TEAM, &team_id, &specs, budget, by.as_deref())?;
        if budget.is_some() {
            let rank = authority::team_rank(tx, who, Some(&t))?;
            for uid in &added {
                db::authority::set_team_member_rank(tx, &team_id, uid, rank.n())?;
            }
        }
        let mut users = Vec::new();
        let mut memberships = Vec::new();
        for uid in &added {
            if let Some(u) = db::users::get(tx, uid)? {
                users.push(shapes::user_identity(&u));
            }
            if let Some(m) = db::teams::member(tx, &team_id, uid)? {
                let shaped = shapes::team_membership(&m);
                Entry::new("member_add", "team", &team_id)
                    .org(t.organization_id.as_deref())
                    .after(shaped.clone())
                    .record(tx, &Actor::of(who))?;
                memberships.push(shaped);
            }
        }
        let extra = json!({"updated_users": users, "updated_team_memberships": memberships});
        Ok(shapes::extend(team_reply(tx, &team_id)?, extra))
    })?;
    Reply::ok(out)
}

/// The team, when the caller administers it (404 when invisible, 403 otherwise).
pub(super) fn team_admin_of<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    team_id: &str,
    doing: &str,
) -> Result<TeamRow> {
    let t = visible_team(c, who, team_id)?;
    if !policy::is_team_admin(c, who, &t)? {
        return Err(Error::Forbidden(format!(
            "Only admins of team {team_id} can {doing}"
        )));
    }
    Ok(t)
}

/// The membership a member update or delete names (404 when there is none).
fn target_member<C: Handle + ?Sized>(
    c: &C,
    body: &Body,
    team_id: &str,
) -> Result<db::teams::MemberRow> {
    let missing =
        |who: &str| Error::NotFound(format!("User {who} is not a member of team {team_id}"));
    match members::named_user(c, body)? {
        Some(uid) => db::teams::member(c, team_id, &uid)?.ok_or_else(|| missing(&uid)),
        None => Err(missing(&body.opt_str("user_email")?.unwrap_or_default())),
    }
}

/// `POST /team/member_delete` (`team_id`, `user_id` | `user_email`): team admins and above.
/// The member's keys in this team go too: a removed member keeps no access through the team.
pub fn member_delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    let team_id = team_id_param(&body)?;
    let out = ctx.pool.write_db(|tx| {
        let t = team_admin_of(tx, who, &team_id, "remove members")?;
        let m = target_member(tx, &body, &team_id)?;
        let uid = &m.user_id;
        // Removing and adding again would drop a budget a higher rank set (`grant`).
        let rank = authority::team_rank(tx, who, Some(&t))?;
        let budget_rank = db::authority::team_member_rank(tx, &team_id, uid)?;
        let what = format!("user {uid} in team {team_id}");
        authority::check_member_removal(rank, budget_rank, m.budget_id.is_some(), &what)?;
        Entry::new("member_delete", "team", &team_id)
            .org(t.organization_id.as_deref())
            .before(shapes::team_membership(&m))
            .record(tx, &Actor::of(who))?;
        db::teams::delete_member(tx, &team_id, uid)?;
        // The calls-only keys they issued in the team for others go: as an admin, or as a
        // member whose team lists `/key/regenerate` (`authority::member_permission`).
        authority::revoke_issued_in_team(tx, &t, uid)?;
        if let Some(b) = &m.budget_id {
            db::budgets::delete(tx, b)?;
        }
        team_reply(tx, &team_id)
    })?;
    Reply::ok(out)
}

/// `POST /team/member_update` (`team_id`, `user_id` | `user_email`, `role`,
/// `max_budget_in_team`: `null` removes the member's budget): team admins and above.
pub fn member_update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    let team_id = team_id_param(&body)?;
    let role = TEAM.opt_role(&body)?;
    let budget = patch::field(&body, "max_budget_in_team", Body::opt_budget)?;
    let out = ctx.pool.write_db(|tx| {
        let t = team_admin_of(tx, who, &team_id, "update members")?;
        let m = target_member(tx, &body, &team_id)?;
        let before = shapes::team_membership(&m);
        let uid = &m.user_id;
        let rank = authority::team_rank(tx, who, Some(&t))?;
        let budget_rank = db::authority::team_member_rank(tx, &team_id, uid)?;
        let old_budget = m.budget_id.as_ref().and(m.max_budget);
        let what = format!("user {uid} in team {team_id}");
        let field = "max_budget_in_team";
        members::check_budget(rank, budget_rank, old_budget, &budget, field, &what)?;
        let budget_id = members::write_budget(tx, m.budget_id.as_deref(), &budget, who)?;
        let role = role.clone().unwrap_or(m.role.clone());
        db::members::set(tx, Group::Team, &team_id, uid, &role, budget_id.as_deref())?;
        members::release_budget(tx, m.budget_id.as_deref(), budget_id.as_deref())?;
        if m.role == "admin" && role != "admin" {
            authority::revoke_issued_in_team(tx, &t, uid)?;
        }
        if budget.present() && budget.over(old_budget) != old_budget {
            let next = authority::next_rank(budget_rank, rank, true);
            db::authority::set_team_member_rank(tx, &team_id, uid, next)?;
        }
        let m = db::teams::member(tx, &team_id, uid)?
            .ok_or_else(|| Error::Internal("membership vanished in its own tx".into()))?;
        Entry::new("member_update", "team", &team_id)
            .org(t.organization_id.as_deref())
            .before(before)
            .after(shapes::team_membership(&m))
            .record(tx, &Actor::of(who))?;
        Ok(json!({
            "team_id": team_id,
            "user_id": m.user_id,
            "user_email": m.user_email,
            "role": m.role,
            "max_budget_in_team": m.max_budget,
        }))
    })?;
    Reply::ok(out)
}
