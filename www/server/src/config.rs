//! Command-line contract (other tools drive the binary through it) and the in-process config.

use std::path::PathBuf;

use clap::Parser;

/// Default secret API key of the emulated environment.
pub const DEFAULT_SECRET_KEY: &str = "tr_dev_emulator_secret";
/// Default Trigger.dev API when `TRIGGER_SECRET_KEY` is set without `TRIGGER_API_URL`.
pub const DEFAULT_TRIGGER_API_URL: &str = "https://api.trigger.dev";

/// `chat-devserver` flags.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "chat-devserver",
    version,
    about = "In-memory Trigger.dev Sessions emulator with a scripted chat agent, customer endpoints and the demo",
    after_help = "Environment: TRIGGER_SECRET_KEY (and optional TRIGGER_API_URL) make /api/chat/* talk to \
                  real Trigger.dev instead of the emulator."
)]
pub struct Args {
    /// Port to listen on; 0 picks a free port.
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Interface to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Secret API key of the emulated environment (signs and checks tokens).
    #[arg(long, default_value = DEFAULT_SECRET_KEY)]
    pub secret_key: String,
    /// Directory with the built demo (default: www/dist next to this crate).
    #[arg(long)]
    pub static_dir: Option<PathBuf>,
    /// A run with nothing to do exits after this long; the next append starts a continuation.
    #[arg(long, default_value_t = 30_000)]
    pub run_idle_timeout_ms: u64,
    /// How long records an S2 `trim` removed stay readable (S2 trims eventually); 0 trims at once.
    #[arg(long, default_value_t = 5_000)]
    pub trim_delay_ms: u64,
    /// Lifetime of minted session tokens.
    #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
    pub token_ttl_seconds: i64,
    /// Interval of `event: ping` on idle `.out` streams.
    #[arg(long, default_value_t = 5_000)]
    pub ping_interval_ms: u64,
    /// Disable the test-only `/__admin/` routes.
    #[arg(long)]
    pub no_admin: bool,
}

/// Where `/api/chat/*` sends its requests in real mode.
#[derive(Debug, Clone)]
pub struct RemoteTrigger {
    /// Base URL of the Trigger.dev API, no trailing slash.
    pub api_url: String,
    /// The real environment's secret key.
    pub secret_key: String,
}

/// Everything the server needs; `Default` is the emulator on 127.0.0.1:8787.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub secret_key: String,
    pub static_dir: Option<PathBuf>,
    pub run_idle_timeout_ms: u64,
    /// Records before a trim point stay readable this long after the `trim` record.
    pub trim_delay_ms: u64,
    pub token_ttl_seconds: i64,
    pub ping_interval_ms: u64,
    pub admin: bool,
    /// `Some` when the customer endpoints front real Trigger.dev.
    pub remote: Option<RemoteTrigger>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 8787,
            secret_key: DEFAULT_SECRET_KEY.into(),
            static_dir: None,
            run_idle_timeout_ms: 30_000,
            trim_delay_ms: 5_000,
            token_ttl_seconds: 3600,
            ping_interval_ms: 5_000,
            admin: true,
            remote: None,
        }
    }
}

impl Config {
    /// Builds the config from flags plus `TRIGGER_SECRET_KEY` / `TRIGGER_API_URL`.
    pub fn from_args(args: Args, env: impl Fn(&str) -> Option<String>) -> Config {
        let static_dir = args.static_dir.or_else(|| {
            let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist");
            default.is_dir().then_some(default)
        });
        let remote = env("TRIGGER_SECRET_KEY")
            .filter(|k| !k.is_empty())
            .map(|secret_key| RemoteTrigger {
                api_url: env("TRIGGER_API_URL")
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| DEFAULT_TRIGGER_API_URL.into())
                    .trim_end_matches('/')
                    .to_string(),
                secret_key,
            });
        Config {
            host: args.host,
            port: args.port,
            secret_key: args.secret_key,
            static_dir,
            run_idle_timeout_ms: args.run_idle_timeout_ms,
            trim_delay_ms: args.trim_delay_ms,
            token_ttl_seconds: args.token_ttl_seconds,
            ping_interval_ms: args.ping_interval_ms.max(1),
            admin: !args.no_admin,
            remote,
        }
    }
}
