//! The file record as Redis holds it (layout 3): binary, because at a million files every
//! byte of it is a megabyte, and Redis allocates in steps of 16 bytes.
//!
//! One byte of format and flags (the layout in the high four bits, so that it can never be
//! mistaken for layout 1's `{` or layout 2's `[`; visibility in bits 0–1, an attachment in
//! bit 2), then the rest in postcard, a stable serde wire format with varint numbers and
//! length-prefixed strings: the id's 16 bytes, size, creation time, owner, filename, content
//! type and grants. The token is the key's; the storage path is derived from the id.
//!
//! A stored value is untrusted: anything that does not read as one whole record (another
//! format, an unknown flag, a short or unreadable field, a byte left over, an id or user id
//! that does not parse) is [`StoreError::Corrupt`], which the auth listener answers with 503,
//! never with a file. (postcard reads a number written in more bytes than needed as that
//! number; such a record is the same record.)

use serde::{Deserialize, Serialize};

use crate::disposition::DispositionKind;
use crate::ids::{FileId, UserId};
use crate::model::{FileRecord, Visibility};
use crate::paths::StoragePath;
use crate::store::StoreError;
use crate::tokens::FileToken;

/// The high four bits of the first byte.
const LAYOUT: u8 = 0x30;
const VISIBILITY: u8 = 0b011;
const ATTACHMENT: u8 = 0b100;

#[derive(Serialize, Deserialize)]
struct Body<'a> {
    id: [u8; 16],
    size: u64,
    created_at: i64,
    owner: &'a str,
    filename: &'a str,
    content_type: &'a str,
    #[serde(borrow)]
    grants: Vec<&'a str>,
}

/// The stored form of `record`. Our records always serialize; an error would be a bug in a
/// derive, reported as corruption rather than written as a record or a panic.
pub fn encode(record: &FileRecord) -> Result<Vec<u8>, StoreError> {
    let visibility = match record.visibility {
        Visibility::Private => 0,
        Visibility::Authenticated => 1,
        Visibility::Public => 2,
    };
    let attachment = match record.disposition {
        DispositionKind::Inline => 0,
        DispositionKind::Attachment => ATTACHMENT,
    };
    let body = Body {
        id: record.file_id.to_bytes(),
        size: record.size,
        created_at: record.created_at,
        owner: record.owner.as_str(),
        filename: &record.filename,
        content_type: &record.content_type,
        grants: record.grants.iter().map(UserId::as_str).collect(),
    };
    // Sized for the usual record, so that it is written without growing.
    let mut out = Vec::with_capacity(
        40 + record.filename.len() + record.content_type.len() + record.owner.as_str().len(),
    );
    out.push(LAYOUT | attachment | visibility);
    postcard::to_extend(&body, out)
        .map_err(|e| StoreError::corrupt("file record", &format!("unwritable: {e}")))
}

/// Why stored bytes are not a record, in words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(String);

impl Unreadable {
    /// The store's error for it, under `key`: named only when it happens, since the name of a
    /// record's key is the token's fingerprint, a hash the decision would not otherwise pay.
    pub fn under(self, key: &str) -> StoreError {
        StoreError::corrupt(key, &self.0)
    }
}

/// Reads the record stored for `token`.
pub fn decode(token: &FileToken, raw: &[u8]) -> Result<FileRecord, Unreadable> {
    let corrupt = |what: &str| Unreadable(what.to_owned());
    let (&head, rest) = raw.split_first().ok_or_else(|| corrupt("empty record"))?;
    if head & !(VISIBILITY | ATTACHMENT) != LAYOUT {
        return Err(corrupt("not a layout 3 record"));
    }
    let visibility = match head & VISIBILITY {
        0 => Visibility::Private,
        1 => Visibility::Authenticated,
        2 => Visibility::Public,
        _ => return Err(corrupt("unknown visibility")),
    };
    let disposition = if head & ATTACHMENT == 0 {
        DispositionKind::Inline
    } else {
        DispositionKind::Attachment
    };
    let (body, left): (Body<'_>, _) =
        postcard::take_from_bytes(rest).map_err(|e| corrupt(&format!("unreadable: {e}")))?;
    if !left.is_empty() {
        return Err(corrupt("bytes after the record"));
    }
    let file_id = FileId::from_bytes(&body.id).map_err(|_| corrupt("bad file id"))?;
    let user = |s: &str| UserId::parse(s).map_err(|_| corrupt("bad user id"));
    Ok(FileRecord {
        storage_path: StoragePath::for_file(&file_id),
        file_id,
        owner: user(body.owner)?,
        token: token.clone(),
        filename: body.filename.to_owned(),
        size: body.size,
        content_type: body.content_type.to_owned(),
        visibility,
        disposition,
        created_at: body.created_at,
        grants: body
            .grants
            .into_iter()
            .map(user)
            .collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::samples::{any_record, record};
    use super::*;
    use proptest::prelude::*;

    fn is_corrupt(r: Result<FileRecord, Unreadable>) -> bool {
        matches!(r.map_err(|e| e.under("k")), Err(StoreError::Corrupt { .. }))
    }

    #[test]
    fn holds_what_key_and_id_do_not_say_in_few_bytes() {
        let r = record(vec![]);
        let raw = encode(&r).unwrap();
        assert_eq!(decode(&r.token, &raw).unwrap(), r);
        let hex = |s: &str| raw.windows(s.len()).any(|w| w == s.as_bytes());
        assert!(!hex(r.token.as_str()) && !hex(r.storage_path.as_str()));
        assert!(raw.windows(16).any(|w| w == r.file_id.to_bytes()));
        // 1 + 16 + 2 (4096) + 5 (the time) + 1 + 5 + 1 + 15 + 1 + 15 + 1 (no grants).
        assert_eq!(raw.len(), 63, "{raw:?}");
        assert_eq!(raw[17..19], [0x80, 0x20], "4096 as a varint");
        assert_eq!(raw[0], 0x35);
    }

    #[test]
    fn refuses_anything_it_does_not_write() {
        let r = record(vec![UserId::parse("bob").unwrap()]);
        let good = encode(&r).unwrap();
        let mut hostile: Vec<Vec<u8>> = vec![
            vec![],
            b"[\"0123\"]".to_vec(),
            b"{\"i\":1}".to_vec(),
            [good.as_slice(), &[0]].concat(),
            good[..good.len() - 1].to_vec(),
        ];
        for head in [0x20 | 0x01, 0x40, 0x30 | 0x03, 0x30 | 0x08, 0x30 | 0x80] {
            let mut h = good.clone();
            h[0] = head;
            hostile.push(h);
        }
        // An owner and a grant that are not user ids, as a layout 3 writer never writes them.
        for (from, to) in [("alice", "al/ce"), ("bob", "b b")] {
            let i = good.windows(from.len()).position(|w| w == from.as_bytes());
            let mut h = good.clone();
            h.splice(i.unwrap()..i.unwrap() + from.len(), to.bytes());
            hostile.push(h);
        }
        for raw in hostile {
            assert!(is_corrupt(decode(&r.token, &raw)), "{raw:?}");
        }
    }

    #[test]
    fn errors_name_the_key_given_and_why() {
        let r = record(vec![]);
        let err = decode(&r.token, b"\x30")
            .unwrap_err()
            .under("mg:ft:(token 1234abcd)");
        let text = format!("{err}");
        assert!(text.contains("mg:ft:(token 1234abcd)"), "{text}");
        let why = std::error::Error::source(&err).map(ToString::to_string);
        assert!(why.is_some_and(|w| w.contains("unreadable")), "{err:?}");
    }

    proptest! {
        #[test]
        fn round_trips(r in any_record()) {
            prop_assert_eq!(decode(&r.token, &encode(&r).unwrap()).unwrap(), r);
        }

        #[test]
        fn never_panics_and_never_leaves_the_root(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let t = FileToken::generate().unwrap();
            if let Ok(r) = decode(&t, &raw) {
                prop_assert_eq!(&r.storage_path, &StoragePath::for_file(&r.file_id));
                prop_assert_eq!(decode(&t, &encode(&r).unwrap()).unwrap(), r);
            }
        }

        #[test]
        fn never_panics_on_a_flipped_byte(i in any::<prop::sample::Index>(), b in any::<u8>()) {
            let r = record(vec![UserId::parse("bob").unwrap()]);
            let mut raw = encode(&r).unwrap();
            let at = i.index(raw.len());
            raw[at] = b;
            if let Ok(back) = decode(&r.token, &raw) {
                prop_assert_eq!(decode(&r.token, &encode(&back).unwrap()).unwrap(), back);
            }
        }
    }
}
