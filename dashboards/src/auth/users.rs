//! `GET/POST /api/users`, `PATCH/DELETE /api/users/{name}` (admin only).

use super::{MIN_PASSWORD_LEN, Principal, Role, hash_blocking};
use crate::state::UserRow;
use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use soc_model::Timestamp;

/// Body of user creation and update. On update every field is optional; `segments: null`
/// means every segment, so an update that sets the scope must send it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    pub username: Option<String>,
    pub password: Option<String>,
    pub role: Option<String>,
    #[serde(default, deserialize_with = "some_option")]
    pub segments: Option<Option<Vec<String>>>,
}

/// Distinguishes an absent field (`None`) from `null` (`Some(None)`).
fn some_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Vec<String>>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

fn view(u: &UserRow) -> serde_json::Value {
    json!({ "username": u.username, "role": u.role, "segments": u.segments })
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
}

fn check_role(r: &str) -> Result<(), ApiError> {
    Role::parse(r)
        .map(|_| ())
        .ok_or_else(|| ApiError::bad_request(format!("role {r:?}: expected admin, analyst or auditor")))
}

fn check_password(p: &str) -> Result<(), ApiError> {
    if p.chars().count() < MIN_PASSWORD_LEN {
        return Err(ApiError::bad_request(format!("password: at least {MIN_PASSWORD_LEN} characters")));
    }
    Ok(())
}

fn check_segments(s: &Option<Vec<String>>) -> Result<(), ApiError> {
    if let Some(v) = s
        && v.iter().any(|x| x.trim().is_empty())
    {
        return Err(ApiError::bad_request("segments: names must not be empty"));
    }
    Ok(())
}

pub async fn list(State(st): State<ApiState>, Extension(who): Extension<Principal>) -> Result<Response, ApiError> {
    who.require_admin()?;
    let users: Vec<_> = st.db.users()?.iter().map(view).collect();
    Ok(Json(json!({ "items": users })).into_response())
}

pub async fn create(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    b: Result<Json<UserBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let b = crate::body(b)?;
    let name = b.username.unwrap_or_default();
    if !valid_name(&name) {
        return Err(ApiError::bad_request("username: 1-64 of letters, digits, '.', '_', '-', '@'"));
    }
    let role = b.role.ok_or_else(|| ApiError::bad_request("role: required"))?;
    check_role(&role)?;
    let password = b.password.ok_or_else(|| ApiError::bad_request("password: required"))?;
    check_password(&password)?;
    let segments = b.segments.unwrap_or(None);
    check_segments(&segments)?;
    let hash = hash_blocking(password).await?;
    let row = UserRow { username: name.clone(), hash, role, segments };
    if !st.db.insert_user(&row, Timestamp::now().unix_micros())? {
        st.audit(&who.username, "user.create", &name, "exists", "denied");
        return Err(ApiError::conflict(format!("user {name:?} exists")));
    }
    st.audit(&who.username, "user.create", &name, &view(&row).to_string(), "ok");
    Ok((StatusCode::CREATED, Json(view(&row))).into_response())
}

pub async fn update(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    b: Result<Json<UserBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let b = crate::body(b)?;
    let mut row = st.db.user(&name)?.ok_or_else(|| ApiError::not_found(format!("no user {name:?}")))?;
    if let Some(n) = &b.username
        && n != &name
    {
        return Err(ApiError::bad_request("username: cannot be renamed"));
    }
    if let Some(r) = b.role {
        check_role(&r)?;
        if row.role == "admin" && r != "admin" && st.db.admin_count()? <= 1 {
            return Err(ApiError::conflict("the last admin cannot lose the admin role"));
        }
        row.role = r;
    }
    if let Some(s) = b.segments {
        check_segments(&s)?;
        row.segments = s;
    }
    let pw_changed = b.password.is_some();
    if let Some(p) = b.password {
        check_password(&p)?;
        row.hash = hash_blocking(p).await?;
    }
    st.db.update_user(&row)?;
    if pw_changed {
        // A new password ends the user's other sessions.
        st.db.delete_sessions_of(&name)?;
    }
    let detail = json!({ "role": row.role, "segments": row.segments, "password_changed": pw_changed });
    st.audit(&who.username, "user.update", &name, &detail.to_string(), "ok");
    Ok(Json(view(&row)).into_response())
}

pub async fn remove(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    if name == who.username {
        return Err(ApiError::conflict("you cannot delete your own account"));
    }
    let row = st.db.user(&name)?.ok_or_else(|| ApiError::not_found(format!("no user {name:?}")))?;
    if row.role == "admin" && st.db.admin_count()? <= 1 {
        return Err(ApiError::conflict("the last admin cannot be deleted"));
    }
    st.db.delete_user(&name)?;
    st.audit(&who.username, "user.delete", &name, "", "ok");
    Ok(Json(json!({ "deleted": name })).into_response())
}
