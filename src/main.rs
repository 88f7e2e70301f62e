//! The `mediagate` binary: parses the command line, loads settings, and runs a command.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use mediagate::config::{LogFormat, Settings, StorageUrl, redact_url};
use mediagate::nginx;
use mediagate::startup::{Application, BuildOptions};

/// glibc's allocator took about 12% of the CPU of a decision (malloc, free and their
/// consolidation, by `perf`); jemalloc serves many small, short-lived allocations faster.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// nginx auth_request backend that serves private user uploads only to the people allowed to
/// read them.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML). Default: ./mediagate.toml if it exists.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format; overrides `log.format`.
    #[arg(long, global = true, value_enum)]
    log_format: Option<CliLogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CliLogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the auth listener (for nginx) and the admin listener (API, /healthz, /readyz).
    Serve {
        /// Apply pending keyspace migrations at start instead of waiting, unready, for
        /// `mediagate migrate`.
        #[arg(long)]
        migrate: bool,
    },
    /// Apply pending keyspace migrations, then exit. Safe to run twice or from several
    /// processes at once.
    Migrate,
    /// Print an nginx configuration built from the snippets in nginx/.
    NginxConfig {
        /// `listen` of the generated server block.
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: String,
        /// Storage root nginx serves from. Default: `storage.root`.
        #[arg(long, value_name = "DIR")]
        storage_root: Option<PathBuf>,
        /// Address of the auth listener. Default: `server.auth_listen`.
        #[arg(long, value_name = "ADDR")]
        auth_upstream: Option<String>,
        /// `full`: a complete nginx.conf; `http`/`server`: the part to include in your own.
        #[arg(long, value_enum, default_value = "full")]
        part: nginx::Part,
        /// nginx's error log in the full config: a path under nginx's prefix, or `stderr`.
        #[arg(long, default_value = "error.log", value_name = "PATH")]
        error_log: String,
        /// nginx's access log in the full config: a path, `/dev/stdout`, or `off`.
        #[arg(long, default_value = "access.log", value_name = "PATH")]
        access_log: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, for people: the cause chain joined.
            eprintln!("mediagate: {}", format!("{e:#}").replace('\n', " "));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref(), None)?;
    let format = match cli.log_format {
        Some(CliLogFormat::Json) => LogFormat::Json,
        Some(CliLogFormat::Text) => LogFormat::Text,
        None => settings.log.format,
    };
    match cli.command {
        Command::NginxConfig {
            listen,
            storage_root,
            auth_upstream,
            part,
            error_log,
            access_log,
        } => {
            let storage = match settings.storage.location().map_err(anyhow::Error::msg)? {
                StorageUrl::Local(root) => nginx::Bytes::Local(storage_root.unwrap_or(root)),
                StorageUrl::Bucket { .. } => bucket_for_nginx(&settings)?,
            };
            let params = nginx::Params {
                listen,
                storage,
                auth_upstream: auth_upstream
                    .unwrap_or_else(|| settings.server.auth_listen.to_string()),
                media_prefix: settings.media.prefix.clone(),
                error_log,
                access_log,
                decision_cache: settings.nginx.decision_cache_secs > 0,
            };
            print!("{}", nginx::render(part, &params)?);
            Ok(())
        }
        Command::Migrate => {
            mediagate::telemetry::init(format, &settings.log.level);
            runtime()?.block_on(async {
                let timeout = std::time::Duration::from_millis(settings.store.timeout_ms.max(1000));
                let store =
                    mediagate::store::open(&settings.store.url, &settings.store.prefix, timeout)
                        .await
                        .with_context(|| {
                            format!("cannot open store {}", redact_url(&settings.store.url))
                        })?;
                let applied = store.migrate().await.context("migration failed")?;
                let version = store.schema_version().await?;
                if applied.is_empty() {
                    println!("Store schema is current (version {version}); nothing to do.");
                } else {
                    println!(
                        "Applied migrations {applied:?}; store schema is now version {version}."
                    );
                }
                Ok(())
            })
        }
        Command::Serve { migrate } => {
            mediagate::telemetry::init(format, &settings.log.level);
            runtime()?.block_on(async {
                let app = Application::build(settings.clone(), BuildOptions { migrate }).await?;
                tracing::info!(
                    auth = %settings.server.auth_listen.ip(), auth_port = app.auth_port(),
                    admin_port = app.admin_port(), store = %redact_url(&settings.store.url),
                    "Listening."
                );
                app.run_until_stopped().await
            })
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// How nginx reaches the bucket: over TLS unless the endpoint is `http://`, and with a resolver
/// unless the endpoint's host is an address (AWS's own endpoints are host names).
fn bucket_for_nginx(settings: &Settings) -> anyhow::Result<nginx::Bytes> {
    let endpoint = settings.storage.s3.endpoint.clone().or_else(|| {
        ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|e| !e.is_empty()))
    });
    let parsed = endpoint
        .as_deref()
        .map(mediagate::storage::endpoint_host)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let (is_address, plain_http) = match &parsed {
        Some((host, http)) => (host.parse::<std::net::IpAddr>().is_ok(), *http),
        None => (false, false),
    };
    let resolver = match (&settings.nginx.resolver, is_address) {
        (_, true) => None,
        (Some(r), false) => Some(r.clone()),
        (None, false) => Some(system_resolver().ok_or_else(|| {
            anyhow::anyhow!(
                "nginx.resolver: the bucket's endpoint is a host name, and /etc/resolv.conf names no nameserver; set nginx.resolver"
            )
        })?),
    };
    Ok(nginx::Bytes::Bucket {
        resolver,
        trusted_certificate: (!plain_http).then(|| settings.nginx.trusted_certificate.clone()),
    })
}

/// The nameservers of `/etc/resolv.conf` (IPv6 ones in brackets, as nginx wants them).
fn system_resolver() -> Option<String> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    let servers: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .map(|a| match a {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        })
        .collect();
    (!servers.is_empty()).then(|| servers.join(" "))
}
