//! The HTTP floor, for `make bench`: the same web framework, runtime, worker count and
//! allocator as mediagate's auth listener, answering 200 to `GET /auth` and doing nothing
//! else. What it costs per request is what any decision served over actix-web costs at the
//! least, before a store, a cookie or a path is looked at.
//!
//!     http_floor PORT

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .context("usage: http_floor PORT")?
        .parse()
        .context("PORT")?;
    HttpServer::new(|| App::new().route("/auth", web::get().to(HttpResponse::Ok)))
        .workers(2)
        .bind(("127.0.0.1", port))?
        .run()
        .await?;
    Ok(())
}
