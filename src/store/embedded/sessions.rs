//! Native sessions, the forward source's kept answers, and the decision's one read (`ask`),
//! in one read transaction.

use redb::ReadableTable;

use super::{
    EmbeddedStore, FILE_TOKENS, FORWARD_CUTS, FORWARDED, SESSIONS, USER_FORWARDED, USER_SESSIONS,
    USER_TOKENS, USERS, err, read_value,
};
use crate::ids::UserId;
use crate::model::{ForwardedCaller, SessionRecord};
use crate::store::{Lookup, Question, SessionStore, StoreError, Written, decode, encode};
use crate::tokens::{ForwardKey, SessionKey};

/// How long a logout's mark is kept: longer than any endpoint request can take.
const CUT_SECS: i64 = 3600;

#[async_trait::async_trait]
impl SessionStore for EmbeddedStore {
    async fn ask(&self, q: &Question<'_>) -> Result<Lookup, StoreError> {
        let txn = self.read()?;
        let user_of_token = read_value(&txn, USER_TOKENS, q.user_token.as_str())?
            .map(|u| UserId::parse(&u).map_err(|_| StoreError::corrupt("utok", "not a user id")))
            .transpose()?;
        let file = read_value(&txn, FILE_TOKENS, q.file_token.as_str())?
            .map(|raw| decode("ftok", &raw))
            .transpose()?;
        let session = match q.session {
            Some(k) => read_value(&txn, SESSIONS, k.as_str())?
                .map(|raw| decode("session", &raw))
                .transpose()?,
            None => None,
        };
        let forwarded = match q.forwarded {
            Some(k) => read_value(&txn, FORWARDED, k.as_str())?
                .map(|raw| decode::<ForwardedCaller>("fwd", &raw))
                .transpose()?,
            None => None,
        };
        Ok(Lookup {
            user_of_token,
            file,
            session,
            forwarded,
        })
    }

    async fn cache_forwarded(
        &self,
        key: &ForwardKey,
        caller: &ForwardedCaller,
        _ttl: u64,
        asked_at_ms: i64,
    ) -> Result<(), StoreError> {
        let (key, caller) = (key.clone(), caller.clone());
        self.write(move |txn| {
            let user = caller.user_id.as_str();
            let cut = txn
                .open_table(FORWARD_CUTS)
                .map_err(err)?
                .get(user)
                .map_err(err)?
                .map(|v| v.value());
            // One transaction with the logout's: an answer asked for before it is not kept.
            if cut.is_some_and(|cut| cut >= asked_at_ms) {
                return Ok(());
            }
            txn.open_table(FORWARDED)
                .map_err(err)?
                .insert(key.as_str(), encode("fwd", &caller)?.as_str())
                .map_err(err)?;
            txn.open_multimap_table(USER_FORWARDED)
                .map_err(err)?
                .insert(user, key.as_str())
                .map_err(err)?;
            Ok(())
        })
        .await
    }

    async fn insert_session(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        _now: i64,
    ) -> Result<Written, StoreError> {
        let (key, record) = (key.clone(), record.clone());
        self.write(move |txn| {
            let user = record.user_id.as_str();
            if txn
                .open_table(USERS)
                .map_err(err)?
                .get(user)
                .map_err(err)?
                .is_none()
            {
                return Ok(Written::NoSuchUser);
            }
            txn.open_table(SESSIONS)
                .map_err(err)?
                .insert(key.as_str(), encode("session", &record)?.as_str())
                .map_err(err)?;
            txn.open_multimap_table(USER_SESSIONS)
                .map_err(err)?
                .insert(user, key.as_str())
                .map_err(err)?;
            Ok(Written::Done)
        })
        .await
    }

    async fn delete_session(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.write(move |txn| {
            let removed = txn
                .open_table(SESSIONS)
                .map_err(err)?
                .remove(key.as_str())
                .map_err(err)?
                .map(|v| v.value().to_owned());
            let Some(raw) = removed else { return Ok(false) };
            let record: SessionRecord = decode("session", &raw)?;
            txn.open_multimap_table(USER_SESSIONS)
                .map_err(err)?
                .remove(record.user_id.as_str(), key.as_str())
                .map_err(err)?;
            Ok(true)
        })
        .await
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        self.write(move |txn| {
            let mut expired: Vec<(String, String)> = Vec::new();
            {
                let sessions = txn.open_table(SESSIONS).map_err(err)?;
                for entry in sessions.iter().map_err(err)? {
                    let (k, v) = entry.map_err(err)?;
                    // An unreadable record can grant nothing; drop it with the expired ones.
                    match decode::<SessionRecord>("session", v.value()) {
                        Ok(r) if r.expires_at > now => {}
                        Ok(r) => expired.push((k.value().to_owned(), r.user_id.to_string())),
                        Err(_) => expired.push((k.value().to_owned(), String::new())),
                    }
                }
            }
            let mut sessions = txn.open_table(SESSIONS).map_err(err)?;
            let mut index = txn.open_multimap_table(USER_SESSIONS).map_err(err)?;
            for (k, user) in &expired {
                sessions.remove(k.as_str()).map_err(err)?;
                if !user.is_empty() {
                    index.remove(user.as_str(), k.as_str()).map_err(err)?;
                }
            }
            purge_forwarded(txn, now)?;
            Ok(expired.len() as u64)
        })
        .await
    }

    async fn delete_user_sessions(&self, id: &UserId) -> Result<u64, StoreError> {
        let id = id.clone();
        self.write(move |txn| delete_sessions_in(txn, &id)).await
    }
}

pub(super) fn delete_sessions_in(
    txn: &redb::WriteTransaction,
    id: &UserId,
) -> Result<u64, StoreError> {
    let keys: Vec<String> = txn
        .open_multimap_table(USER_SESSIONS)
        .map_err(err)?
        .remove_all(id.as_str())
        .map_err(err)?
        .map(|k| k.map(|k| k.value().to_owned()).map_err(err))
        .collect::<Result<_, _>>()?;
    let mut sessions = txn.open_table(SESSIONS).map_err(err)?;
    for k in &keys {
        sessions.remove(k.as_str()).map_err(err)?;
    }
    let answers: Vec<String> = txn
        .open_multimap_table(USER_FORWARDED)
        .map_err(err)?
        .remove_all(id.as_str())
        .map_err(err)?
        .map(|k| k.map(|k| k.value().to_owned()).map_err(err))
        .collect::<Result<_, _>>()?;
    let mut forwarded = txn.open_table(FORWARDED).map_err(err)?;
    for k in &answers {
        forwarded.remove(k.as_str()).map_err(err)?;
    }
    txn.open_table(FORWARD_CUTS)
        .map_err(err)?
        .insert(id.as_str(), crate::clock::now_ms())
        .map_err(err)?;
    Ok(keys.len() as u64)
}

/// Drops the forward answers past their time, and the logout marks no answer in flight can
/// still predate.
fn purge_forwarded(txn: &redb::WriteTransaction, now: i64) -> Result<(), StoreError> {
    let mut stale: Vec<(String, String)> = Vec::new();
    {
        let forwarded = txn.open_table(FORWARDED).map_err(err)?;
        for entry in forwarded.iter().map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            match decode::<ForwardedCaller>("fwd", v.value()) {
                Ok(c) if c.expires_at > now => {}
                Ok(c) => stale.push((k.value().to_owned(), c.user_id.to_string())),
                Err(_) => stale.push((k.value().to_owned(), String::new())),
            }
        }
    }
    let mut forwarded = txn.open_table(FORWARDED).map_err(err)?;
    let mut index = txn.open_multimap_table(USER_FORWARDED).map_err(err)?;
    for (k, user) in &stale {
        forwarded.remove(k.as_str()).map_err(err)?;
        if !user.is_empty() {
            index.remove(user.as_str(), k.as_str()).map_err(err)?;
        }
    }
    let cut_before = now.saturating_sub(CUT_SECS).saturating_mul(1000);
    txn.open_table(FORWARD_CUTS)
        .map_err(err)?
        .retain(|_, at| at >= cut_before)
        .map_err(err)?;
    Ok(())
}
