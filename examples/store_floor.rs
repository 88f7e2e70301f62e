//! The store floor, for `make bench`: the HTTP floor (`http_floor.rs`) plus the one Redis
//! round trip that every default-mode decision makes, and nothing else. Each request runs
//! mediagate's own `Store::lookup` (the same per-thread connection, keys and reply decoding)
//! for one fixed user token, file token and session, then answers a bare 200: no path or
//! cookie is parsed, and there is no policy, audit event, metric or deadline.
//!
//! Behind nginx it shows what any decision that asks Redis on every request costs on this
//! stack before its own logic: its distance from the HTTP floor is the round trip, and
//! mediagate's distance from it is the decision.
//!
//!     store_floor PORT REDIS_URL USER_TOKEN FILE_TOKEN SESSION_ID
//!
//! It reads the keys under the default prefix (`store.prefix = "mediagate"`), and refuses to
//! start unless that lookup finds the user, the file and the session, so that Redis answers
//! with the same records as for mediagate's own decision.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::{Context, bail};
use mediagate::store::Store;
use mediagate::store::redis::RedisStore;
use mediagate::tokens::{FileToken, SessionId, SessionKey, UserToken};

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The lookup every request repeats.
struct Question {
    store: RedisStore,
    user_token: UserToken,
    file_token: FileToken,
    session: SessionKey,
}

async fn ask(q: &Question) -> HttpResponse {
    match q
        .store
        .lookup(&q.user_token, &q.file_token, Some(&q.session))
        .await
    {
        Ok(_) => HttpResponse::Ok().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

fn arg(n: usize, name: &str) -> anyhow::Result<String> {
    std::env::args().nth(n).with_context(|| {
        format!(
            "usage: store_floor PORT REDIS_URL USER_TOKEN FILE_TOKEN SESSION_ID (missing {name})"
        )
    })
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = arg(1, "PORT")?.parse().context("PORT")?;
    let store = RedisStore::new(
        &arg(2, "REDIS_URL")?,
        "mediagate",
        Duration::from_secs(1),
        None,
    )?;
    let q = Question {
        store,
        user_token: UserToken::parse(&arg(3, "USER_TOKEN")?).context("USER_TOKEN")?,
        file_token: FileToken::parse(&arg(4, "FILE_TOKEN")?).context("FILE_TOKEN")?,
        session: SessionId::parse(&arg(5, "SESSION_ID")?)
            .context("SESSION_ID")?
            .key(),
    };
    let found = q
        .store
        .lookup(&q.user_token, &q.file_token, Some(&q.session))
        .await?;
    if found.user_of_token.is_none() || found.file.is_none() || found.session.is_none() {
        bail!("the user token, file token and session must all be in the store: {found:?}");
    }
    let q = Arc::new(q);
    HttpServer::new(move || {
        // Per worker, as mediagate holds its handler's state: cloning an `Rc` per request
        // touches no count shared with the other worker.
        let q = Rc::new(Arc::clone(&q));
        App::new().route(
            "/auth",
            web::get().to(move || {
                let q = Rc::clone(&q);
                async move { ask(&q).await }
            }),
        )
    })
    .workers(2)
    .bind(("127.0.0.1", port))?
    .run()
    .await?;
    Ok(())
}
