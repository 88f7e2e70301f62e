//! The store floor, for `make bench`: the HTTP floor (`http_floor.rs`) plus the one store
//! round trip that every default-mode decision makes, and nothing else. The store is opened
//! from mediagate's own settings (`mediagate.toml` and `MEDIAGATE__…`, as `mediagate serve`
//! reads them, cached mode aside) by `store::open`, and each request runs its `lookup`
//! through the same `dyn Store` as the auth listener, for one fixed user token, file token
//! and session, then answers a bare 200: no path or cookie is parsed, and there is no policy,
//! audit event, metric or deadline.
//!
//! Behind nginx it shows what any decision that asks Redis on every request costs on this
//! stack before its own logic: its distance from the HTTP floor is the round trip, and
//! mediagate's distance from it is the decision.
//!
//!     store_floor PORT USER_TOKEN FILE_TOKEN SESSION_ID
//!
//! It refuses to start unless that lookup finds the user, the file and the session, so that
//! the store answers with the same records as for mediagate's own decision.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::{Context, bail};
use mediagate::config::Settings;
use mediagate::store::{self, Lookup, Store, StoreError};
use mediagate::tokens::{FileToken, SessionId, SessionKey, UserToken};

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The lookup every request repeats.
struct Question {
    store: Arc<dyn Store>,
    user_token: UserToken,
    file_token: FileToken,
    session: SessionKey,
}

impl Question {
    async fn lookup(&self) -> Result<Lookup, StoreError> {
        self.store
            .lookup(&self.user_token, &self.file_token, Some(&self.session))
            .await
    }
}

fn arg(n: usize, name: &str) -> anyhow::Result<String> {
    std::env::args().nth(n).with_context(|| {
        format!("usage: store_floor PORT USER_TOKEN FILE_TOKEN SESSION_ID (missing {name})")
    })
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = arg(1, "PORT")?.parse().context("PORT")?;
    let settings = Settings::load(None, None)?;
    let store = store::open(
        &settings.store.url,
        &settings.store.prefix,
        Duration::from_millis(settings.store.timeout_ms),
    )
    .await?;
    let q = Question {
        store,
        user_token: UserToken::parse(&arg(2, "USER_TOKEN")?).context("USER_TOKEN")?,
        file_token: FileToken::parse(&arg(3, "FILE_TOKEN")?).context("FILE_TOKEN")?,
        session: SessionId::parse(&arg(4, "SESSION_ID")?)
            .context("SESSION_ID")?
            .key(),
    };
    let found = q.lookup().await?;
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
                async move {
                    match q.lookup().await {
                        Ok(_) => HttpResponse::Ok().finish(),
                        Err(_) => HttpResponse::ServiceUnavailable().finish(),
                    }
                }
            }),
        )
    })
    .workers(2)
    .bind(("127.0.0.1", port))?
    .run()
    .await?;
    Ok(())
}
