//! The file record as layouts 1 and 2 held it, read by the migration to layout 3
//! (`relayout`); nothing writes it any more.
//!
//! Layout 2: `[file_id, owner, filename, size, content_type, visibility, disposition,
//! created_at, grants]`, a JSON array, visibility and disposition as small numbers, grants
//! left out when empty; the token is the key's and the storage path is derived from the id.
//! Layout 1: the record's serde form, a JSON object, token and storage path included.

use serde::{Deserialize, Serialize};

use crate::disposition::DispositionKind;
use crate::ids::{FileId, UserId};
use crate::model::{FileRecord, Visibility};
use crate::paths::StoragePath;
use crate::store::{StoreError, decode};
use crate::tokens::FileToken;

#[derive(Serialize, Deserialize)]
struct Compact(
    FileId,
    UserId,
    String,
    u64,
    String,
    u8,
    u8,
    i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")] Vec<UserId>,
);

#[cfg(test)]
fn visibility_code(v: Visibility) -> u8 {
    match v {
        Visibility::Private => 0,
        Visibility::Authenticated => 1,
        Visibility::Public => 2,
    }
}

#[cfg(test)]
fn disposition_code(d: DispositionKind) -> u8 {
    match d {
        DispositionKind::Inline => 0,
        DispositionKind::Attachment => 1,
    }
}

/// The layout 2 form of `record`, for `key` (its `ftok:` key): for tests, which write the
/// keyspaces the migration reads.
#[cfg(test)]
pub fn encode(key: &str, record: &FileRecord) -> Result<String, StoreError> {
    let c = Compact(
        record.file_id.clone(),
        record.owner.clone(),
        record.filename.clone(),
        record.size,
        record.content_type.clone(),
        visibility_code(record.visibility),
        disposition_code(record.disposition),
        record.created_at,
        record.grants.clone(),
    );
    crate::store::encode(key, &c)
}

/// True for a record as layout 1 wrote it (a JSON object); layout 2 writes an array.
pub fn is_layout_1(raw: &str) -> bool {
    raw.starts_with('{')
}

/// Reads the record stored under `key`, the key of `token`, in either layout.
pub fn decode_file(key: &str, token: &FileToken, raw: &str) -> Result<FileRecord, StoreError> {
    if is_layout_1(raw) {
        let record: FileRecord = decode(key, raw)?;
        if record.token != *token {
            return Err(StoreError::corrupt(key, "record names another token"));
        }
        return Ok(record);
    }
    let Compact(file_id, owner, filename, size, content_type, v, d, created_at, grants) =
        decode(key, raw)?;
    let visibility = match v {
        0 => Visibility::Private,
        1 => Visibility::Authenticated,
        2 => Visibility::Public,
        _ => return Err(StoreError::corrupt(key, "unknown visibility")),
    };
    let disposition = match d {
        0 => DispositionKind::Inline,
        1 => DispositionKind::Attachment,
        _ => return Err(StoreError::corrupt(key, "unknown disposition")),
    };
    Ok(FileRecord {
        storage_path: StoragePath::for_file(&file_id),
        file_id,
        owner,
        token: token.clone(),
        filename,
        size,
        content_type,
        visibility,
        disposition,
        created_at,
        grants,
    })
}

#[cfg(test)]
mod tests {
    use super::super::samples::{any_record, record};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn leaves_out_what_key_and_id_say() {
        let r = record(vec![]);
        let t = &r.token;
        let raw = encode("k", &r).unwrap();
        assert!(!raw.contains(t.as_str()), "{raw}");
        assert!(!raw.contains(r.storage_path.as_str()), "{raw}");
        let v1 = serde_json::to_string(&r).unwrap();
        assert!(raw.len() * 2 < v1.len(), "{raw} against {v1}");
    }

    #[test]
    fn reads_layout_1_records_of_its_own_token_only() {
        let r = record(vec![UserId::parse("bob").unwrap()]);
        let t = r.token.clone();
        let v1 = serde_json::to_string(&r).unwrap();
        assert_eq!(decode_file("k", &t, &v1).unwrap(), r);
        let other = FileToken::generate().unwrap();
        assert!(matches!(
            decode_file("k", &other, &v1),
            Err(StoreError::Corrupt { .. })
        ));
        // A layout 1 record carries its storage path: a path out of the root is refused.
        let hostile = v1.replace(r.storage_path.as_str(), "../../etc/passwd");
        assert_ne!(hostile, v1);
        assert!(matches!(
            decode_file("k", &t, &hostile),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn refuses_unknown_codes_and_short_arrays() {
        let t = FileToken::generate().unwrap();
        let id = FileId::generate();
        for raw in [
            format!(r#"["{id}","alice","a.pdf",1,"x/y",3,0,1]"#),
            format!(r#"["{id}","alice","a.pdf",1,"x/y",0,2,1]"#),
            format!(r#"["{id}","alice","a.pdf",1,"x/y",0,0]"#),
            format!(r#"["{id}","../etc","a.pdf",1,"x/y",0,0,1]"#),
            // The storage path is derived from the id: an id that is not one never becomes a
            // path.
            r#"["../../etc/passwd","alice","a.pdf",1,"x/y",0,0,1]"#.to_owned(),
            r#"["0123456789ABCDEF0123456789ABCDEF","alice","a.pdf",1,"x/y",0,0,1]"#.to_owned(),
            "[]".to_owned(),
            "null".to_owned(),
        ] {
            assert!(
                matches!(decode_file("k", &t, &raw), Err(StoreError::Corrupt { .. })),
                "{raw}"
            );
        }
    }

    proptest! {
        #[test]
        fn round_trips(r in any_record()) {
            let raw = encode("k", &r).unwrap();
            prop_assert_eq!(decode_file("k", &r.token, &raw).unwrap(), r);
        }

        #[test]
        fn never_panics_on_stored_garbage(raw in ".{0,200}") {
            let t = FileToken::generate().unwrap();
            let _ = decode_file("k", &t, &raw);
        }
    }
}
