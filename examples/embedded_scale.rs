//! Fills an embedded store with files and users through the store's own API (the writes an
//! upload and a `PUT /v1/users` make, minus the bytes), for `make bench`'s scale measurement:
//!
//!     embedded_scale PATH FILES USERS
//!
//! Each write commits on its own, as in service; put PATH on a tmpfs to spare the fsyncs.

use std::path::Path;

use anyhow::{Context, bail};
use mediagate::disposition::DispositionKind;
use mediagate::ids::{FileId, UserId};
use mediagate::model::{FileRecord, Visibility};
use mediagate::paths::StoragePath;
use mediagate::store::embedded::EmbeddedStore;
use mediagate::store::{FileStore, SchemaStore, UserStore, Written};
use mediagate::tokens::{FileToken, UserToken};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, files, users] = args.as_slice() else {
        bail!("usage: embedded_scale PATH FILES USERS");
    };
    let files: usize = files.parse().context("FILES")?;
    let users: usize = users.parse().context("USERS")?;
    let store = EmbeddedStore::open(Path::new(path))?;
    store.migrate().await?;
    let started = std::time::Instant::now();
    for u in 0..users {
        let owner = UserId::parse(&format!("scale{u}"))?;
        store
            .ensure_user(&owner, &UserToken::generate()?, 1_700_000_000)
            .await?;
        for _ in 0..files / users {
            let id = FileId::generate();
            let record = FileRecord {
                storage_path: StoragePath::for_file(&id),
                filename: format!("{}.bin", &id.as_str()[..8]),
                file_id: id,
                owner: owner.clone(),
                token: FileToken::generate()?,
                size: 4096,
                content_type: "application/octet-stream".into(),
                visibility: Visibility::Private,
                disposition: DispositionKind::Inline,
                created_at: 1_700_000_000,
                grants: Vec::new(),
            };
            if store.insert_file(&record).await? != Written::Done {
                bail!("the owner vanished");
            }
        }
    }
    eprintln!(
        "{} files, {users} users in {:.1} s",
        files / users * users,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
