//! The decision: may this caller read the file this path names?
//!
//! Pure: no IO and no clock; its inputs are plain data (the parsed path, what the store found,
//! the caller the session sources resolved, the share link's verdict), so it can be tested
//! exhaustively. It knows no store, HTTP or Redis. Access exists only because something
//! positive was found (a token mapping, a session, ownership, a role, a visibility setting); a
//! missing piece always denies.

use crate::ids::UserId;
use crate::links::LinkCheck;
use crate::model::{Caller, FileRecord, Visibility};
use crate::paths::MediaPath;

/// What the store found for the path's two tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct Found<'a> {
    /// The user the path's user token belongs to.
    pub user_of_token: Option<&'a UserId>,
    /// The file the path's file token names.
    pub file: Option<&'a FileRecord>,
}

/// Why a request was denied. Logged and counted; never sent to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The path is not of the one accepted form.
    BadPath,
    /// Not GET or HEAD.
    Method,
    /// The token pair names no file, or a file of someone else, or another filename.
    UnknownFile,
    /// A valid session that may not read this file.
    NotAllowed,
    /// Share-link parameters that are malformed, expired or signed for something else.
    BadLink,
}

/// The outcome, mapped to a status code in exactly one place (`routes::auth`).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'a> {
    /// 200: read this file's bytes.
    Allow(&'a FileRecord),
    /// No valid session, and the file is not readable anonymously: 401.
    NoCredential,
    /// 403.
    Forbidden(DenyReason),
}

/// What the policy needs beyond the request.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Sessions holding any of these roles may read every file (the seeds' `allow_staff`).
    pub read_all_roles: Vec<String>,
}

/// Decides one request. `found` is what the store returned for the path's tokens; `caller`
/// is the valid session from any source (already checked for expiry and signature); `link` is
/// the verdict on the share-link parameters of the path.
pub fn decide<'a>(
    policy: &Policy,
    path: &MediaPath,
    found: Found<'a>,
    caller: Option<&Caller>,
    link: LinkCheck,
) -> Decision<'a> {
    // The file token maps to a file, the user token to its owner, and the filename is the
    // registered one. The token comparison is constant-time (see `tokens`).
    let Some(file) = found.file else {
        return Decision::Forbidden(DenyReason::UnknownFile);
    };
    let owner_matches = found.user_of_token == Some(&file.owner);
    if !owner_matches || file.token != path.file_token || file.filename != path.filename {
        return Decision::Forbidden(DenyReason::UnknownFile);
    }
    match link {
        LinkCheck::Valid { .. } => return Decision::Allow(file),
        LinkCheck::Invalid => return Decision::Forbidden(DenyReason::BadLink),
        LinkCheck::Absent => {}
    }
    if file.visibility == Visibility::Public {
        return Decision::Allow(file);
    }
    let Some(session) = caller else {
        return Decision::NoCredential;
    };
    let allowed = session.user_id == file.owner
        || file.visibility == Visibility::Authenticated
        || file.grants.contains(&session.user_id)
        || session
            .roles
            .iter()
            .any(|r| policy.read_all_roles.iter().any(|a| a == r));
    if allowed {
        Decision::Allow(file)
    } else {
        Decision::Forbidden(DenyReason::NotAllowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disposition::DispositionKind;
    use crate::ids::{FileId, UserId};
    use crate::model::SessionRecord;
    use crate::paths::StoragePath;
    use crate::sessions::native_caller;
    use crate::tokens::{FileToken, UserToken};
    use proptest::prelude::*;

    fn file(owner: &str, token: &FileToken, vis: Visibility) -> FileRecord {
        let id = FileId::generate();
        FileRecord {
            storage_path: StoragePath::for_file(&id),
            file_id: id,
            owner: UserId::parse(owner).unwrap(),
            token: token.clone(),
            filename: "a.txt".into(),
            size: 1,
            content_type: "text/plain".into(),
            visibility: vis,
            disposition: DispositionKind::Inline,
            created_at: 0,
            grants: Vec::new(),
        }
    }

    fn session(user: &str, roles: &[&str], expires_at: i64) -> SessionRecord {
        SessionRecord {
            user_id: UserId::parse(user).unwrap(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            expires_at,
        }
    }

    /// What a store would have found, owned.
    #[derive(Default)]
    struct Lookup {
        user_of_token: Option<UserId>,
        file: Option<FileRecord>,
        session: Option<SessionRecord>,
    }

    impl Lookup {
        fn found(&self) -> Found<'_> {
            Found {
                user_of_token: self.user_of_token.as_ref(),
                file: self.file.as_ref(),
            }
        }
    }

    struct Case {
        path: MediaPath,
        lookup: Lookup,
    }

    fn case(owner_of_token: &str, vis: Visibility, s: Option<SessionRecord>) -> Case {
        let ut = UserToken::generate().unwrap();
        let ft = FileToken::generate().unwrap();
        let path = MediaPath {
            user_token: ut,
            file_token: ft.clone(),
            filename: "a.txt".into(),
            query: None,
        };
        let lookup = Lookup {
            user_of_token: Some(UserId::parse(owner_of_token).unwrap()),
            file: Some(file("alice", &ft, vis)),
            session: s,
        };
        Case { path, lookup }
    }

    /// The caller at time 100, as the native source would resolve it.
    fn caller(c: &Case) -> Option<Caller> {
        c.lookup
            .session
            .as_ref()
            .and_then(|s| native_caller(s, 100))
    }

    fn run<'a>(c: &'a Case, roles: &[&str]) -> Decision<'a> {
        let policy = Policy {
            read_all_roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        decide(
            &policy,
            &c.path,
            c.lookup.found(),
            caller(c).as_ref(),
            LinkCheck::Absent,
        )
    }

    #[test]
    fn owner_reads_others_do_not() {
        let c = case(
            "alice",
            Visibility::Private,
            Some(session("alice", &[], 200)),
        );
        assert!(matches!(run(&c, &[]), Decision::Allow(_)));
        let c = case("alice", Visibility::Private, Some(session("bob", &[], 200)));
        assert_eq!(run(&c, &[]), Decision::Forbidden(DenyReason::NotAllowed));
        let c = case("alice", Visibility::Private, None);
        assert_eq!(run(&c, &[]), Decision::NoCredential);
    }

    #[test]
    fn expired_session_is_no_session() {
        let c = case(
            "alice",
            Visibility::Private,
            Some(session("alice", &[], 100)),
        );
        assert_eq!(run(&c, &[]), Decision::NoCredential);
    }

    #[test]
    fn token_of_another_user_or_wrong_name_is_unknown() {
        let c = case("bob", Visibility::Private, Some(session("alice", &[], 200)));
        assert_eq!(run(&c, &[]), Decision::Forbidden(DenyReason::UnknownFile));
        let mut c = case("alice", Visibility::Public, None);
        c.path.filename = "A.txt".into();
        assert_eq!(run(&c, &[]), Decision::Forbidden(DenyReason::UnknownFile));
        let mut c = case("alice", Visibility::Public, None);
        c.path.file_token = FileToken::generate().unwrap();
        assert_eq!(run(&c, &[]), Decision::Forbidden(DenyReason::UnknownFile));
    }

    #[test]
    fn roles_and_visibility() {
        let c = case(
            "alice",
            Visibility::Private,
            Some(session("bob", &["staff"], 200)),
        );
        assert!(matches!(run(&c, &["staff"]), Decision::Allow(_)));
        assert_eq!(
            run(&c, &["admin"]),
            Decision::Forbidden(DenyReason::NotAllowed)
        );
        let c = case(
            "alice",
            Visibility::Authenticated,
            Some(session("bob", &[], 200)),
        );
        assert!(matches!(run(&c, &[]), Decision::Allow(_)));
        let c = case("alice", Visibility::Authenticated, None);
        assert_eq!(run(&c, &[]), Decision::NoCredential);
        let c = case("alice", Visibility::Public, None);
        assert!(matches!(run(&c, &[]), Decision::Allow(_)));
    }

    #[test]
    fn grants_and_links() {
        let mut c = case("alice", Visibility::Private, Some(session("bob", &[], 200)));
        assert_eq!(run(&c, &[]), Decision::Forbidden(DenyReason::NotAllowed));
        c.lookup
            .file
            .as_mut()
            .unwrap()
            .grants
            .push(UserId::parse("bob").unwrap());
        assert!(matches!(run(&c, &[]), Decision::Allow(_)));
        let c = case("alice", Visibility::Private, None);
        let p = Policy::default();
        assert!(matches!(
            decide(
                &p,
                &c.path,
                c.lookup.found(),
                caller(&c).as_ref(),
                LinkCheck::Valid { expires_at: 1000 }
            ),
            Decision::Allow(_)
        ));
        assert_eq!(
            decide(
                &p,
                &c.path,
                c.lookup.found(),
                caller(&c).as_ref(),
                LinkCheck::Invalid
            ),
            Decision::Forbidden(DenyReason::BadLink)
        );
        // A bad link is refused even to the owner: one spelling, one meaning.
        let c = case(
            "alice",
            Visibility::Public,
            Some(session("alice", &[], 200)),
        );
        assert_eq!(
            decide(
                &p,
                &c.path,
                c.lookup.found(),
                caller(&c).as_ref(),
                LinkCheck::Invalid
            ),
            Decision::Forbidden(DenyReason::BadLink)
        );
        // A link never opens a file under someone else's user token.
        let c = case("bob", Visibility::Private, None);
        assert_eq!(
            decide(
                &p,
                &c.path,
                c.lookup.found(),
                caller(&c).as_ref(),
                LinkCheck::Valid { expires_at: 1000 }
            ),
            Decision::Forbidden(DenyReason::UnknownFile)
        );
    }

    fn link() -> impl Strategy<Value = LinkCheck> {
        prop_oneof![
            Just(LinkCheck::Absent),
            Just(LinkCheck::Valid { expires_at: 1000 }),
            Just(LinkCheck::Invalid)
        ]
    }

    fn vis() -> impl Strategy<Value = Visibility> {
        prop_oneof![
            Just(Visibility::Private),
            Just(Visibility::Authenticated),
            Just(Visibility::Public)
        ]
    }

    proptest! {
        /// Allow only with a matching owner token, and then only through ownership, a role,
        /// or visibility.
        #[test]
        fn allow_has_a_reason(
            token_owner in "(alice|bob)",
            session_user in proptest::option::of("(alice|bob|carol)"),
            roles in proptest::collection::vec("(staff|admin|x)", 0..3),
            read_all in proptest::collection::vec("(staff|y)", 0..2),
            v in vis(),
            expires in 0i64..200,
            same_name in any::<bool>(),
            file_present in any::<bool>(),
            granted in proptest::collection::vec("(bob|carol)", 0..2),
            l in link(),
        ) {
            let s = session_user.as_deref().map(|u| session(u, &roles.iter().map(String::as_str).collect::<Vec<_>>(), expires));
            let mut c = case(&token_owner, v, s.clone());
            if !same_name { c.path.filename = "b.txt".into(); }
            if !file_present { c.lookup.file = None; }
            if let Some(f) = c.lookup.file.as_mut() {
                f.grants = granted.iter().map(|g| UserId::parse(g).unwrap()).collect();
            }
            let policy = Policy { read_all_roles: read_all.clone() };
            if let Decision::Allow(_) = decide(&policy, &c.path, c.lookup.found(), caller(&c).as_ref(), l) {
                prop_assert!(file_present && same_name && token_owner == "alice");
                prop_assert!(l != LinkCheck::Invalid);
                let live = s.as_ref().filter(|s| s.expires_at > 100);
                let reason = matches!(l, LinkCheck::Valid { .. })
                    || v == Visibility::Public
                    || live.is_some_and(|s| granted.iter().any(|g| g == s.user_id.as_str()))
                    || (live.is_some() && v == Visibility::Authenticated)
                    || live.is_some_and(|s| s.user_id.as_str() == "alice")
                    || live.is_some_and(|s| s.roles.iter().any(|r| read_all.contains(r)));
                prop_assert!(reason);
            }
        }
    }
}
