//! Users: their records, their URL tokens, and their deletion, each change one transaction.

use redb::ReadableTable;

use super::files::{delete_file_in, update_file_in};
use super::sessions::delete_sessions_in;
use super::{EmbeddedStore, USER_FILES, USER_GRANTS, USER_TOKENS, USERS, err, members, read_value};
use crate::ids::{FileId, UserId};
use crate::model::{FileChange, UserRecord};
use crate::store::{DeletedUser, StoreError, UserStore, decode, encode};
use crate::tokens::UserToken;

#[async_trait::async_trait]
impl UserStore for EmbeddedStore {
    async fn ensure_user(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
        now: i64,
    ) -> Result<(UserRecord, bool), StoreError> {
        let fresh = UserRecord {
            user_id: user_id.clone(),
            token: fresh_token.clone(),
            created_at: now,
        };
        self.write(move |txn| {
            let mut users = txn.open_table(USERS).map_err(err)?;
            let id = fresh.user_id.as_str();
            if let Some(raw) = users.get(id).map_err(err)? {
                return Ok((decode(id, raw.value())?, false));
            }
            users
                .insert(id, encode(id, &fresh)?.as_str())
                .map_err(err)?;
            txn.open_table(USER_TOKENS)
                .map_err(err)?
                .insert(fresh.token.as_str(), id)
                .map_err(err)?;
            Ok((fresh, true))
        })
        .await
    }

    async fn user(&self, user_id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.read()?;
        read_value(&txn, USERS, user_id.as_str())?
            .map(|raw| decode(user_id.as_str(), &raw))
            .transpose()
    }

    async fn rotate_user_token(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
    ) -> Result<Option<UserRecord>, StoreError> {
        let (id, fresh) = (user_id.clone(), fresh_token.clone());
        self.write(move |txn| {
            let mut users = txn.open_table(USERS).map_err(err)?;
            let raw = users
                .get(id.as_str())
                .map_err(err)?
                .map(|r| r.value().to_owned());
            let Some(raw) = raw else { return Ok(None) };
            let old: UserRecord = decode(id.as_str(), &raw)?;
            let new = UserRecord {
                token: fresh,
                ..old.clone()
            };
            let mut utok = txn.open_table(USER_TOKENS).map_err(err)?;
            utok.remove(old.token.as_str()).map_err(err)?;
            utok.insert(new.token.as_str(), id.as_str()).map_err(err)?;
            users
                .insert(id.as_str(), encode(id.as_str(), &new)?.as_str())
                .map_err(err)?;
            Ok(Some(new))
        })
        .await
    }

    async fn delete_user(&self, id: &UserId) -> Result<Option<DeletedUser>, StoreError> {
        let id = id.clone();
        // One transaction: all of it happens, or none.
        self.write(move |txn| {
            let raw = txn
                .open_table(USERS)
                .map_err(err)?
                .remove(id.as_str())
                .map_err(err)?
                .map(|r| r.value().to_owned());
            let Some(raw) = raw else { return Ok(None) };
            let user: UserRecord = decode(id.as_str(), &raw)?;
            txn.open_table(USER_TOKENS)
                .map_err(err)?
                .remove(user.token.as_str())
                .map_err(err)?;
            let mut deleted = DeletedUser {
                files: Vec::new(),
                sessions: delete_sessions_in(txn, &id)?,
            };
            for f in members(txn, USER_FILES, id.as_str())? {
                let Ok(f) = FileId::parse(&f) else { continue };
                if let Some(record) = delete_file_in(txn, &f)? {
                    deleted.files.push(record.storage_path);
                }
            }
            for f in members(txn, USER_GRANTS, id.as_str())? {
                let Ok(f) = FileId::parse(&f) else { continue };
                update_file_in(txn, &f, &FileChange::Revoke(id.clone()))?;
            }
            txn.open_multimap_table(USER_FILES)
                .map_err(err)?
                .remove_all(id.as_str())
                .map_err(err)?;
            txn.open_multimap_table(USER_GRANTS)
                .map_err(err)?
                .remove_all(id.as_str())
                .map_err(err)?;
            Ok(Some(deleted))
        })
        .await
    }
}
