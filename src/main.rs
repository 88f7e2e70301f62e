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
enum StorageCommand {
    /// Copy the local storage root into a bucket, keeping every URL: each object's key is the
    /// file's storage path. Resumable (files already there with their size are skipped); every
    /// object sent is read back and compared with its file; nothing on disk changes. Then set
    /// `storage.url` to the bucket. The bucket's credentials and endpoint: `[storage.s3]` and
    /// the AWS SDKs' variables, as for `serve`.
    Copy {
        /// The bucket: `s3://BUCKET[/PREFIX]`.
        #[arg(long, value_name = "URL")]
        to: String,
    },
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
    /// Work on the file bytes.
    Storage {
        #[command(subcommand)]
        command: StorageCommand,
    },
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
                StorageUrl::Bucket { .. } => {
                    let endpoint = settings.storage.s3.endpoint.clone().or_else(|| {
                        ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
                            .iter()
                            .find_map(|v| std::env::var(v).ok().filter(|e| !e.is_empty()))
                    });
                    let resolv_conf = std::fs::read_to_string("/etc/resolv.conf").ok();
                    nginx::bucket_bytes(
                        &settings.nginx,
                        endpoint.as_deref(),
                        resolv_conf.as_deref(),
                    )?
                }
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
        Command::Storage {
            command: StorageCommand::Copy { to },
        } => {
            mediagate::telemetry::init(format, &settings.log.level);
            runtime()?.block_on(storage_copy(&settings, to))
        }
        Command::Serve { migrate } => {
            mediagate::telemetry::init(format, &settings.log.level);
            runtime()?.block_on(async {
                let app = Application::build(settings.clone(), BuildOptions { migrate }).await?;
                tracing::info!(
                    auth = %settings.server.auth_listen, auth_port = app.auth_port(),
                    admin_port = app.admin_port(), store = %redact_url(&settings.store.url),
                    "Listening."
                );
                app.run_until_stopped().await
            })
        }
    }
}

/// `mediagate storage copy --to URL`.
async fn storage_copy(settings: &Settings, to: String) -> anyhow::Result<()> {
    use mediagate::storage::Storage;
    let from = match Storage::open(&settings.storage).context("storage.url")? {
        Storage::Local(local) => local,
        Storage::Bucket(b) => anyhow::bail!(
            "storage.url is {} already: storage copy copies a local root into a bucket",
            b.describe()
        ),
    };
    let mut target = settings.storage.clone();
    target.url = Some(to.clone());
    let to = match Storage::open(&target).with_context(|| format!("--to {to}"))? {
        Storage::Bucket(b) => b,
        Storage::Local(_) => anyhow::bail!("--to {to}: not s3://BUCKET[/PREFIX]"),
    };
    println!("Copying {} into {}…", from.root().display(), to.describe());
    let report = mediagate::storage::copy::copy_root(&from, &to, |path, what| {
        println!("  {} {what}", path.as_str());
    })
    .await
    .with_context(|| format!("cannot read {}", from.root().display()))?;
    println!(
        "{} copied ({} bytes), {} already there, {} failed.",
        report.copied,
        report.bytes,
        report.already,
        report.failed.len()
    );
    if report.failed.is_empty() {
        println!(
            "Every file is in the bucket. Set storage.url = {:?} and restart.",
            to.describe()
        );
        Ok(())
    } else {
        anyhow::bail!(
            "{} files were not copied; run the copy again",
            report.failed.len()
        )
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
