//! Configuration: read once at start-up, from a PostgREST-style file and
//! the environment, into one typed `Config` the rest of the program reads.
//!
//! File syntax is PostgREST's: `key = "string"`, `key = 10`, `key = true`,
//! `# comments`. Every key can also be set from the environment as
//! `CLERK_PROXY_<KEY>` (upper case, `-` → `_`), which wins over the file;
//! keys PostgREST also has are read from `PGRST_<KEY>` too, so an existing
//! PostgREST environment works unchanged.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub db_uri: String,
    pub db_schemas: Vec<String>,
    /// `db-extra-search-path` (PostgREST's): after the request's schema.
    pub db_extra_search_path: Vec<String>,
    pub db_anon_role: Option<String>,
    pub db_pool: u32,
    pub server_host: IpAddr,
    pub server_port: u16,
    pub admin_server_port: Option<u16>,
    pub jwt_secret: Option<String>,
    pub jwt_aud: Option<String>,
    pub jwt_role_claim_key: Option<String>,
    pub jwt_cache_max_entries: u32,
    pub log_level: LogLevel,
    pub clerk_jwks_url: Option<String>,
    pub clerk_jwks_file: Option<String>,
    pub clerk_public_key: Option<String>,
    pub clerk_issuer: Option<String>,
    pub clerk_authorized_parties: Vec<String>,
    pub clerk_clock_skew: u64,
    /// `clerk-jwks-refresh-interval`: seconds between two JWKS fetches
    /// prompted by unknown key ids.
    pub clerk_jwks_refresh_interval_secs: u64,
    pub clerk_webhook_secret: Option<String>,
    /// Clerk's Backend API, for the metadata sync worker.
    pub clerk_api_url: String,
    /// `sk_…`; the sync worker runs only when it is set.
    pub clerk_secret_key: Option<String>,
    /// At most this many rows per read, whatever the request asks.
    pub db_max_rows: Option<u64>,
    /// When false, `count=exact` is answered as `count=estimated`.
    pub db_allow_exact_count: bool,
    /// PostgREST's: aggregates in `select` (`amount.sum()`, `count()`) and
    /// spreads of embeds of many rows; off, they are 400 `PGRST123`.
    pub db_aggregates_enabled: bool,
    /// PostgREST's: `Accept: application/vnd.pgrst.plan` answers the
    /// request's `EXPLAIN` (it shows the schema and data sizes: off by default).
    pub db_plan_enabled: bool,
    pub db_tx_end: TxEnd,
    pub openapi_mode: OpenApiMode,
    pub openapi_server_proxy_uri: Option<String>,
    /// Largest request body, in bytes (413 `PGRST413` beyond).
    pub server_max_body: usize,
    /// `statement_timeout` of each request's transaction, in ms; 0: none.
    pub db_statement_timeout_ms: u64,
    /// `db-prepared-statements`: prepare each statement once per connection
    /// (off for poolers in transaction mode, such as PgBouncer's).
    pub db_prepared_statements: bool,
    /// How long a request waits for a pooled connection (503 `PGRST003`).
    pub db_pool_acquisition_timeout_secs: u64,
    /// Requests per second per signed-in user (`sub`); None: no limit.
    pub rate_limit_per_user: Option<u32>,
    /// Requests per second per client IP address; None: no limit.
    pub rate_limit_per_ip: Option<u32>,
    /// On SIGTERM, how long requests in flight may take before the process exits.
    pub server_shutdown_grace_secs: u64,
    /// `db-jit`: PostgreSQL's JIT compilation in request transactions. Off
    /// by default: a plan is compiled without checking for cancellation, so
    /// a costly request outlasts `db-statement-timeout` while it compiles.
    pub db_jit: bool,
    /// PostgREST's `db-pre-request`: a function (`schema.name` or `name`)
    /// called in each API request's transaction after its settings, before
    /// its statement; it may raise to refuse the request or set
    /// `response.headers` / `response.status`.
    pub db_pre_request: Option<String>,
    /// `db-allowed-roles`: the only database roles a request may run as
    /// (the role claim must name one); default `authenticated` and
    /// `db-anon-role`.
    pub db_allowed_roles: Vec<String>,
    /// The database role the shop's staff run as (`auth::StaffRule`), so
    /// staff policies can be `TO` it and customers' requests never meet
    /// them; unset, staff run as `authenticated` with everyone.
    pub db_staff_role: Option<String>,
    /// The staff organization's id: its members are staff while it is
    /// their active organization.
    pub clerk_staff_org: Option<String>,
    /// `clerk-accept-jwt-templates`: accept tokens of Clerk JWT templates
    /// (no `sid`, an `aud`) besides session tokens.
    pub clerk_accept_jwt_templates: bool,
    /// `clerk-max-token-lifetime`: longest `exp - iat` accepted, seconds.
    pub clerk_max_token_lifetime_secs: u64,
    /// `server-header-timeout`: seconds a connection has to send a request's
    /// head (also how long an idle keep-alive connection stays open).
    pub server_header_timeout_secs: u64,
    /// `server-body-timeout`: seconds to receive a request's body.
    pub server_body_timeout_secs: u64,
    /// `server-max-connections`: open API connections at most.
    pub server_max_connections: usize,
    /// `server-max-connections-per-ip`: open API connections per client address.
    pub server_max_connections_per_ip: usize,
    /// `server-cors-allowed-origins` (PostgREST's): empty, any origin.
    pub server_cors_allowed_origins: Vec<String>,
    /// `clerk-publishable-key` (`pk_test_…`/`pk_live_…`): a bearer token
    /// equal to it means "no user"; it also names the Frontend API, which
    /// `clerk-issuer` and `clerk-jwks-url` default from.
    pub clerk_publishable_key: Option<String>,
    /// `server-trusted-proxies`: peers whose client-address header is believed.
    pub server_trusted_proxies: Vec<crate::edge::Cidr>,
    /// `server-trusted-proxy-header`: which header that is.
    pub server_trusted_proxy_header: crate::edge::ForwardedHeader,
    /// `db-max-connections-per-client`: requests one client may have
    /// running at once; None: no cap.
    pub db_max_connections_per_client: Option<usize>,
    /// `db-replica-uris`: hot standbys (each a `postgres://` URI) that
    /// serve read-only requests (`replicas`).
    pub db_replica_uris: Vec<String>,
    /// `db-replica-max-lag`: seconds a standby may be behind the primary
    /// and still serve reads.
    pub db_replica_max_lag_secs: u64,
}

/// The Frontend API host a Clerk publishable key names: `pk_test_` or
/// `pk_live_`, then base64 of `<host>$` (Clerk's `parsePublishableKey`).
pub fn publishable_key_host(key: &str) -> Result<String, String> {
    use base64::Engine;
    let parts: Vec<&str> = key.split('_').collect();
    let [prefix, kind, encoded] = parts[..] else {
        return Err("not a Clerk publishable key (pk_test_… or pk_live_…)".into());
    };
    if prefix != "pk" || !matches!(kind, "test" | "live") || encoded.is_empty() {
        return Err("not a Clerk publishable key (pk_test_… or pk_live_…)".into());
    }
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or("Publishable key not valid: Failed to decode key.")?;
    match decoded.strip_suffix('$') {
        Some(host) if !host.contains('$') && host.contains('.') && !host.contains(['/', ' ', '@']) => Ok(host.to_owned()),
        _ => Err("Publishable key not valid: Decoded key has invalid format.".into()),
    }
}

/// Roles no token may switch to, whatever `db-allowed-roles` says: the
/// proxy's own login, the internal roles of the reference schema (webhooks,
/// metadata sync, BI) and the usual superuser. Superusers and roles with
/// BYPASSRLS are refused at start-up by looking them up (`db`).
pub const NEVER_ALLOWED_ROLES: &[&str] = &["authenticator", "clerk_webhook", "clerk_sync", "bi_reader", "postgres"];

/// `db-tx-end`, as PostgREST: how request transactions end, and whether
/// `Prefer: tx=…` may change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxEnd {
    Commit,
    CommitAllowOverride,
    Rollback,
    RollbackAllowOverride,
}

impl TxEnd {
    /// Whether to roll back, given `Prefer: tx=rollback` (Some(true)) or
    /// `tx=commit` (Some(false)).
    pub fn rolls_back(self, preferred: Option<bool>) -> bool {
        match self {
            TxEnd::Commit => false,
            TxEnd::Rollback => true,
            TxEnd::CommitAllowOverride => preferred.unwrap_or(false),
            TxEnd::RollbackAllowOverride => preferred.unwrap_or(true),
        }
    }
}

/// `openapi-mode`: the document at `/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenApiMode {
    /// Only what the caller's role may use (the default).
    FollowPrivileges,
    IgnorePrivileges,
    Disabled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Crit,
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    pub fn as_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Crit | LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
        }
    }
}

/// A configuration problem, always naming the key (and line, for the file).
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Every key, with whether PostgREST has it too (then `PGRST_*` is read).
const KEYS: &[(&str, bool)] = &[
    ("db-uri", true),
    ("db-schemas", true),
    ("db-extra-search-path", true),
    ("db-anon-role", true),
    ("db-pool", true),
    ("server-host", true),
    ("server-port", true),
    ("admin-server-port", true),
    ("jwt-secret", true),
    ("jwt-aud", true),
    ("jwt-role-claim-key", true),
    ("jwt-cache-max-entries", false),
    ("log-level", true),
    ("clerk-jwks-url", false),
    ("clerk-jwks-file", false),
    ("clerk-public-key", false),
    ("clerk-issuer", false),
    ("clerk-authorized-parties", false),
    ("clerk-clock-skew", false),
    ("clerk-jwks-refresh-interval", false),
    ("clerk-webhook-secret", false),
    ("clerk-api-url", false),
    ("clerk-secret-key", false),
    ("db-max-rows", true),
    ("db-allow-exact-count", false),
    ("db-aggregates-enabled", true),
    ("db-plan-enabled", true),
    ("db-tx-end", true),
    ("openapi-mode", true),
    ("openapi-server-proxy-uri", true),
    ("server-max-body", false),
    ("db-statement-timeout", false),
    ("db-prepared-statements", true),
    ("db-pool-acquisition-timeout", true),
    ("rate-limit-per-user", false),
    ("rate-limit-per-ip", false),
    ("server-shutdown-grace", false),
    ("db-jit", false),
    ("db-pre-request", true),
    ("db-allowed-roles", false),
    ("db-staff-role", false),
    ("clerk-staff-org", false),
    ("clerk-accept-jwt-templates", false),
    ("clerk-max-token-lifetime", false),
    ("server-header-timeout", false),
    ("server-body-timeout", false),
    ("server-max-connections", false),
    ("server-max-connections-per-ip", false),
    ("server-cors-allowed-origins", true),
    ("clerk-publishable-key", false),
    ("server-trusted-proxies", false),
    ("server-trusted-proxy-header", false),
    ("db-max-connections-per-client", false),
    ("db-replica-uris", false),
    ("db-replica-max-lag", false),
];

/// Where a value came from, for error messages.
#[derive(Clone, Debug)]
struct Raw {
    value: String,
    origin: String,
}

impl Config {
    /// Reads `path` (if given) and the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let file = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| ConfigError(format!("cannot read config file {}: {e}", p.display())))?,
            None => String::new(),
        };
        let origin = path.map(|p| p.display().to_string()).unwrap_or_default();
        Config::from_sources(&file, &origin, std::env::vars())
    }

    pub fn from_sources(file: &str, file_name: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut raw = parse_file(file, file_name)?;
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for (key, in_postgrest) in KEYS {
            let suffix = key.to_uppercase().replace('-', "_");
            let ours = format!("CLERK_PROXY_{suffix}");
            let theirs = format!("PGRST_{suffix}");
            let found = env
                .get(&ours)
                .map(|v| (ours.clone(), v))
                .or_else(|| in_postgrest.then(|| env.get(&theirs).map(|v| (theirs.clone(), v))).flatten());
            if let Some((var, value)) = found {
                raw.insert(key, Raw { value: value.clone(), origin: format!("environment variable {var}") });
            }
        }
        Config::from_raw(&raw)
    }

    fn from_raw(raw: &BTreeMap<&'static str, Raw>) -> Result<Config, ConfigError> {
        let text = |key: &str| raw.get(key).map(|r| r.value.clone()).filter(|v| !v.is_empty());
        let parsed = |key: &'static str, what: &str| -> Result<Option<u64>, ConfigError> {
            raw.get(key).map(|r| r.value.trim().parse::<u64>().map_err(|_| bad(key, r, what))).transpose()
        };
        let bounded = |key: &'static str, min: u64, max: u64, default: u64| -> Result<u64, ConfigError> {
            let what = format!("an integer from {min} to {max}");
            match parsed(key, &what)? {
                None => Ok(default),
                Some(n) if (min..=max).contains(&n) => Ok(n),
                Some(_) => Err(bad(key, &raw[key], &what)),
            }
        };

        let db_uri = text("db-uri").ok_or_else(|| {
            ConfigError(
                "db-uri is required: the PostgreSQL connection string (e.g. postgres://authenticator:secret@127.0.0.1:5432/app)".into(),
            )
        })?;
        if !(db_uri.starts_with("postgres://") || db_uri.starts_with("postgresql://") || db_uri.contains('=')) {
            return Err(bad("db-uri", &raw["db-uri"], "a postgres:// URI or a key=value connection string"));
        }
        let server_host = match raw.get("server-host") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(r) => match r.value.as_str() {
                "!4" | "*4" | "*" => IpAddr::from([0, 0, 0, 0]),
                "!6" | "*6" => IpAddr::from([0u16; 8]),
                "localhost" => IpAddr::from([127, 0, 0, 1]),
                v => v.parse().map_err(|_| bad("server-host", r, "an IP address, localhost, or *"))?,
            },
        };
        let log_level = match raw.get("log-level").map(|r| (r, r.value.as_str())) {
            None => LogLevel::Error,
            Some((_, "crit")) => LogLevel::Crit,
            Some((_, "error")) => LogLevel::Error,
            Some((_, "warn")) => LogLevel::Warn,
            Some((_, "info")) => LogLevel::Info,
            Some((_, "debug")) => LogLevel::Debug,
            Some((r, _)) => return Err(bad("log-level", r, "one of crit, error, warn, info, debug")),
        };
        let jwt_secret = text("jwt-secret");
        if let (Some(secret), Some(r)) = (&jwt_secret, raw.get("jwt-secret")) {
            if secret.len() < 32 {
                return Err(bad("jwt-secret", r, "at least 32 characters (HS256 secrets shorter than that are guessable)"));
            }
        }
        let clerk_publishable_key = text("clerk-publishable-key");
        let frontend_api = match (&clerk_publishable_key, raw.get("clerk-publishable-key")) {
            (Some(key), Some(r)) => {
                Some(publishable_key_host(key).map_err(|why| bad("clerk-publishable-key", r, &format!("a Clerk publishable key: {why}")))?)
            }
            _ => None,
        };
        // Clerk's Frontend API is https; a loopback host (a local stand-in) is http.
        let frontend_url = frontend_api.as_ref().map(|host| {
            let loopback = host.starts_with("127.") || host.starts_with("localhost:") || host.starts_with("[::1]");
            format!("{}://{host}", if loopback { "http" } else { "https" })
        });
        let has_keys = ["clerk-jwks-url", "clerk-jwks-file", "clerk-public-key"].iter().any(|k| text(k).is_some());
        let clerk_jwks_url = text("clerk-jwks-url")
            .or_else(|| frontend_url.as_ref().filter(|_| !has_keys).map(|url| format!("{url}/.well-known/jwks.json")));
        let clerk_issuer = text("clerk-issuer").or(frontend_url);
        if let (Some(iss), Some(r)) = (&clerk_issuer, raw.get("clerk-issuer")) {
            if !iss.starts_with("https://") && !iss.starts_with("http://") {
                return Err(bad("clerk-issuer", r, "your Clerk Frontend API URL, e.g. https://clerk.example.com"));
            }
        }
        if let (Some(url), Some(r)) = (text("clerk-jwks-url"), raw.get("clerk-jwks-url")) {
            if !url.starts_with("https://") && !url.starts_with("http://") {
                return Err(bad("clerk-jwks-url", r, "an http(s) URL, e.g. https://clerk.example.com/.well-known/jwks.json"));
            }
        }
        let list = |key: &str| -> Vec<String> {
            text(key).map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
        };
        let port = |key: &'static str, default: Option<u64>| -> Result<Option<u16>, ConfigError> {
            match (parsed(key, "a TCP port from 1 to 65535")?, default) {
                (Some(p @ 1..=65535), _) => Ok(Some(p as u16)),
                (Some(_), _) => Err(bad(key, &raw[key], "a TCP port from 1 to 65535")),
                (None, d) => Ok(d.map(|d| d as u16)),
            }
        };

        let choice = |key: &'static str, options: &[&str], default: usize| -> Result<usize, ConfigError> {
            match raw.get(key) {
                None => Ok(default),
                Some(r) => options.iter().position(|o| *o == r.value).ok_or_else(|| bad(key, r, &format!("one of {}", options.join(", ")))),
            }
        };
        let db_tx_end = [TxEnd::Commit, TxEnd::CommitAllowOverride, TxEnd::Rollback, TxEnd::RollbackAllowOverride]
            [choice("db-tx-end", &["commit", "commit-allow-override", "rollback", "rollback-allow-override"], 0)?];
        let openapi_mode = [OpenApiMode::FollowPrivileges, OpenApiMode::IgnorePrivileges, OpenApiMode::Disabled]
            [choice("openapi-mode", &["follow-privileges", "ignore-privileges", "disabled"], 0)?];
        let db_allow_exact_count = choice("db-allow-exact-count", &["false", "true"], 1)? == 1;
        let db_aggregates_enabled = choice("db-aggregates-enabled", &["false", "true"], 0)? == 1;
        let db_plan_enabled = choice("db-plan-enabled", &["false", "true"], 0)? == 1;
        // 0 (or unset) turns a rate limit off.
        let rate =
            |key: &'static str| -> Result<Option<u32>, ConfigError> { Ok(Some(bounded(key, 0, 1_000_000, 0)? as u32).filter(|n| *n > 0)) };

        let db_anon_role = text("db-anon-role");
        let db_staff_role = text("db-staff-role");
        if let (Some(_), Some(r)) = (&db_staff_role, raw.get("jwt-role-claim-key").filter(|r| !r.value.is_empty())) {
            return Err(bad(
                "jwt-role-claim-key",
                r,
                "unset when db-staff-role is set: both choose the database role (a role claim, or the staff rule); keep one",
            ));
        }
        let mut db_allowed_roles = match list("db-allowed-roles") {
            roles if roles.is_empty() => std::iter::once("authenticated".to_owned()).chain(db_anon_role.clone()).collect(),
            roles => roles,
        };
        // The staff role is one a request may run as.
        if let Some(staff) = db_staff_role.as_ref().filter(|r| !db_allowed_roles.contains(r)) {
            db_allowed_roles.push(staff.clone());
        }
        for role in db_allowed_roles.iter().chain(&db_anon_role) {
            if NEVER_ALLOWED_ROLES.contains(&role.as_str()) {
                let r = raw.get("db-allowed-roles").or(raw.get("db-anon-role")).expect("a role came from one of them");
                return Err(bad("db-allowed-roles", r, &format!("roles a token may run as, never {}", NEVER_ALLOWED_ROLES.join(", "))));
            }
        }

        Ok(Config {
            db_max_rows: match parsed("db-max-rows", "a positive integer")? {
                Some(0) => return Err(bad("db-max-rows", &raw["db-max-rows"], "a positive integer")),
                n => n,
            },
            db_allow_exact_count,
            db_aggregates_enabled,
            db_plan_enabled,
            db_tx_end,
            openapi_mode,
            openapi_server_proxy_uri: text("openapi-server-proxy-uri"),
            db_uri,
            db_schemas: if list("db-schemas").is_empty() { vec!["public".into()] } else { list("db-schemas") },
            db_extra_search_path: match raw.get("db-extra-search-path") {
                None => vec!["public".into()],
                Some(_) => list("db-extra-search-path"),
            },
            db_anon_role,
            db_pool: bounded("db-pool", 1, 1000, 10)? as u32,
            server_host,
            server_port: port("server-port", Some(3000))?.expect("defaulted"),
            admin_server_port: port("admin-server-port", None)?,
            jwt_secret,
            jwt_aud: text("jwt-aud"),
            jwt_role_claim_key: text("jwt-role-claim-key"),
            jwt_cache_max_entries: bounded("jwt-cache-max-entries", 0, 10_000_000, 10_000)? as u32,
            log_level,
            clerk_jwks_url,
            clerk_jwks_file: text("clerk-jwks-file"),
            clerk_public_key: text("clerk-public-key"),
            clerk_issuer,
            clerk_authorized_parties: list("clerk-authorized-parties"),
            clerk_clock_skew: bounded("clerk-clock-skew", 0, 600, 5)?,
            clerk_jwks_refresh_interval_secs: bounded("clerk-jwks-refresh-interval", 0, 86_400, 30)?,
            clerk_webhook_secret: text("clerk-webhook-secret"),
            clerk_api_url: text("clerk-api-url").unwrap_or_else(|| "https://api.clerk.com".into()).trim_end_matches('/').to_owned(),
            clerk_secret_key: text("clerk-secret-key"),
            server_max_body: bounded("server-max-body", 1, 1 << 30, 1 << 20)? as usize,
            db_statement_timeout_ms: bounded("db-statement-timeout", 0, 86_400_000, 10_000)?,
            db_prepared_statements: choice("db-prepared-statements", &["false", "true"], 1)? == 1,
            db_pool_acquisition_timeout_secs: bounded("db-pool-acquisition-timeout", 1, 3600, 10)?,
            rate_limit_per_user: rate("rate-limit-per-user")?,
            rate_limit_per_ip: rate("rate-limit-per-ip")?,
            server_shutdown_grace_secs: bounded("server-shutdown-grace", 0, 3600, 10)?,
            db_jit: choice("db-jit", &["false", "true"], 0)? == 1,
            db_pre_request: match text("db-pre-request") {
                None => None,
                Some(name)
                    if name.split('.').count() <= 2
                        && name.split('.').all(|part| !part.is_empty() && !part.contains(['"', '(', ')', ';', ' '])) =>
                {
                    Some(name)
                }
                Some(_) => return Err(bad("db-pre-request", &raw["db-pre-request"], "a function name: name or schema.name")),
            },
            db_allowed_roles,
            db_staff_role,
            clerk_staff_org: text("clerk-staff-org"),
            clerk_accept_jwt_templates: choice("clerk-accept-jwt-templates", &["false", "true"], 0)? == 1,
            clerk_max_token_lifetime_secs: bounded("clerk-max-token-lifetime", 1, 366 * 86_400, 3600)?,
            server_header_timeout_secs: bounded("server-header-timeout", 1, 3600, 10)?,
            server_body_timeout_secs: bounded("server-body-timeout", 1, 3600, 30)?,
            server_max_connections: bounded("server-max-connections", 1, 1_000_000, 1000)? as usize,
            server_max_connections_per_ip: bounded("server-max-connections-per-ip", 1, 1_000_000, 100)? as usize,
            server_cors_allowed_origins: list("server-cors-allowed-origins"),
            clerk_publishable_key,
            server_trusted_proxies: list("server-trusted-proxies")
                .iter()
                .map(|c| {
                    crate::edge::Cidr::parse(c).ok_or_else(|| {
                        bad(
                            "server-trusted-proxies",
                            &raw["server-trusted-proxies"],
                            "comma-separated addresses or CIDR ranges, e.g. 10.0.0.0/8, ::1",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            db_max_connections_per_client: Some(bounded("db-max-connections-per-client", 0, 1000, 0)? as usize).filter(|n| *n > 0),
            server_trusted_proxy_header: [crate::edge::ForwardedHeader::XForwardedFor, crate::edge::ForwardedHeader::XRealIp]
                [choice("server-trusted-proxy-header", &["x-forwarded-for", "x-real-ip"], 0)?],
            db_replica_uris: match raw.get("db-replica-uris") {
                None => Vec::new(),
                Some(r) => split_uris(&r.value).ok_or_else(|| {
                    bad("db-replica-uris", r, "comma-separated postgres:// URIs, e.g. postgres://authenticator@standby1/app,postgres://authenticator@standby2/app")
                })?,
            },
            db_replica_max_lag_secs: bounded("db-replica-max-lag", 1, 86_400, 5)?,
        })
    }
}

/// `a,b` where each item is a `postgres://` or `postgresql://` URI. A
/// comma not followed by a scheme belongs to the URI before it (a
/// multi-host URI such as `postgres://h1:5432,h2:5432/app`).
fn split_uris(value: &str) -> Option<Vec<String>> {
    let is_uri = |s: &str| s.starts_with("postgres://") || s.starts_with("postgresql://");
    let mut uris: Vec<String> = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match uris.last_mut() {
            _ if is_uri(part) => uris.push(part.to_owned()),
            Some(last) => {
                last.push(',');
                last.push_str(part);
            }
            None => return None,
        }
    }
    uris.iter().all(|u| u.parse::<tokio_postgres::Config>().is_ok()).then_some(uris)
}

fn bad(key: &str, raw: &Raw, expected: &str) -> ConfigError {
    ConfigError(format!("{key} ({}) must be {expected}", raw.origin))
}

/// `key = value` lines; values are "quoted strings", numbers or booleans.
fn parse_file(text: &str, file_name: &str) -> Result<BTreeMap<&'static str, Raw>, ConfigError> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let origin = format!("{file_name} line {}", n + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| ConfigError(format!("{origin}: expected `key = value`, found `{line}`")))?;
        let key = key.trim();
        let known =
            KEYS.iter().map(|(k, _)| *k).find(|k| *k == key).ok_or_else(|| ConfigError(format!("{origin}: unknown key `{key}`")))?;
        let value = unquote(value.trim()).ok_or_else(|| ConfigError(format!("{key} ({origin}): unterminated string")))?;
        out.insert(known, Raw { value, origin });
    }
    Ok(out)
}

/// `"a \"b\""` → `a "b"`; bare words and numbers stay as they are; a
/// `#` after a bare value starts a comment.
fn unquote(v: &str) -> Option<String> {
    let Some(rest) = v.strip_prefix('"') else {
        return Some(v.split('#').next().unwrap_or("").trim().to_owned());
    };
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Secrets never reach a log: Debug shows whether they are set, not what
/// they are, and the db-uri without its password.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |s: &Option<String>| if s.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Config")
            .field("db_uri", &redact_uri(&self.db_uri))
            .field("db_schemas", &self.db_schemas)
            .field("db_extra_search_path", &self.db_extra_search_path)
            .field("db_anon_role", &self.db_anon_role)
            .field("db_pool", &self.db_pool)
            .field("server_host", &self.server_host)
            .field("server_port", &self.server_port)
            .field("admin_server_port", &self.admin_server_port)
            .field("jwt_secret", &set(&self.jwt_secret))
            .field("jwt_aud", &self.jwt_aud)
            .field("jwt_role_claim_key", &self.jwt_role_claim_key)
            .field("jwt_cache_max_entries", &self.jwt_cache_max_entries)
            .field("log_level", &self.log_level)
            .field("clerk_jwks_url", &self.clerk_jwks_url)
            .field("clerk_jwks_file", &self.clerk_jwks_file)
            .field("clerk_public_key", &set(&self.clerk_public_key))
            .field("clerk_issuer", &self.clerk_issuer)
            .field("clerk_authorized_parties", &self.clerk_authorized_parties)
            .field("clerk_clock_skew", &self.clerk_clock_skew)
            .field("clerk_jwks_refresh_interval_secs", &self.clerk_jwks_refresh_interval_secs)
            .field("clerk_webhook_secret", &set(&self.clerk_webhook_secret))
            .field("clerk_api_url", &self.clerk_api_url)
            .field("clerk_secret_key", &set(&self.clerk_secret_key))
            .field("db_max_rows", &self.db_max_rows)
            .field("db_allow_exact_count", &self.db_allow_exact_count)
            .field("db_aggregates_enabled", &self.db_aggregates_enabled)
            .field("db_plan_enabled", &self.db_plan_enabled)
            .field("db_tx_end", &self.db_tx_end)
            .field("openapi_mode", &self.openapi_mode)
            .field("openapi_server_proxy_uri", &self.openapi_server_proxy_uri)
            .field("server_max_body", &self.server_max_body)
            .field("db_statement_timeout_ms", &self.db_statement_timeout_ms)
            .field("db_prepared_statements", &self.db_prepared_statements)
            .field("db_pool_acquisition_timeout_secs", &self.db_pool_acquisition_timeout_secs)
            .field("rate_limit_per_user", &self.rate_limit_per_user)
            .field("rate_limit_per_ip", &self.rate_limit_per_ip)
            .field("server_shutdown_grace_secs", &self.server_shutdown_grace_secs)
            .field("db_jit", &self.db_jit)
            .field("db_pre_request", &self.db_pre_request)
            .field("db_allowed_roles", &self.db_allowed_roles)
            .field("db_staff_role", &self.db_staff_role)
            .field("clerk_staff_org", &self.clerk_staff_org)
            .field("clerk_accept_jwt_templates", &self.clerk_accept_jwt_templates)
            .field("clerk_max_token_lifetime_secs", &self.clerk_max_token_lifetime_secs)
            .field("server_header_timeout_secs", &self.server_header_timeout_secs)
            .field("server_body_timeout_secs", &self.server_body_timeout_secs)
            .field("server_max_connections", &self.server_max_connections)
            .field("server_max_connections_per_ip", &self.server_max_connections_per_ip)
            .field("server_cors_allowed_origins", &self.server_cors_allowed_origins)
            .field("clerk_publishable_key", &self.clerk_publishable_key)
            .field("server_trusted_proxies", &self.server_trusted_proxies)
            .field("server_trusted_proxy_header", &self.server_trusted_proxy_header)
            .field("db_max_connections_per_client", &self.db_max_connections_per_client)
            .field("db_replica_uris", &self.db_replica_uris.iter().map(|u| redact_uri(u)).collect::<Vec<_>>())
            .field("db_replica_max_lag_secs", &self.db_replica_max_lag_secs)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`;
/// `password=secret` in a key=value string → `password=***`.
pub fn redact_uri(uri: &str) -> String {
    if let Some((scheme, rest)) = uri.split_once("://") {
        if let Some((userinfo, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
        return uri.to_owned();
    }
    uri.split_whitespace()
        .map(|kv| if kv.starts_with("password=") { "password=***".to_owned() } else { kv.to_owned() })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(file: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_sources(file, "test.conf", env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    const MINIMAL: &str = "db-uri = \"postgres://authenticator:pw@127.0.0.1:5432/app\"\n";

    #[test]
    fn a_role_claim_key_and_a_staff_role_are_not_both_set() {
        let e = load(&format!("{MINIMAL}db-staff-role = \"clerk_staff\"\njwt-role-claim-key = \".role\"\n"), &[]).unwrap_err();
        assert!(e.0.starts_with("jwt-role-claim-key (test.conf line 3) must be unset when db-staff-role is set"), "{e}");
        assert!(load(&format!("{MINIMAL}db-staff-role = \"clerk_staff\"\n"), &[]).is_ok());
        assert!(load(&format!("{MINIMAL}jwt-role-claim-key = \".role\"\n"), &[]).is_ok());
    }

    #[test]
    fn replica_uris_are_a_list_of_uris_where_multi_host_uris_keep_their_commas() {
        let c =
            load(&format!("{MINIMAL}db-replica-uris = \"postgres://a@s1:5433/app, postgresql://a@h1:5432,h2:5432/app\"\n"), &[]).unwrap();
        assert_eq!(c.db_replica_uris, ["postgres://a@s1:5433/app", "postgresql://a@h1:5432,h2:5432/app"]);
        assert_eq!(c.db_replica_max_lag_secs, 5);
        assert!(load(MINIMAL, &[]).unwrap().db_replica_uris.is_empty());
        let c = load(MINIMAL, &[("CLERK_PROXY_DB_REPLICA_URIS", "postgres://a:hunter2@s1/app"), ("CLERK_PROXY_DB_REPLICA_MAX_LAG", "2")])
            .unwrap();
        assert_eq!((c.db_replica_uris.len(), c.db_replica_max_lag_secs), (1, 2));
        assert!(!format!("{c:?}").contains("hunter2"), "replica passwords stay out of logs");
        for wrong in ["host=s1 dbname=app", "s1:5433", "postgres://a@s1:5433/app?sslmode=bogus", "postgres://a@s1:notaport/app"] {
            let e = load(&format!("{MINIMAL}db-replica-uris = \"{wrong}\"\n"), &[]).unwrap_err();
            assert!(e.0.starts_with("db-replica-uris (test.conf line 2) must be comma-separated postgres:// URIs"), "{wrong}: {e}");
        }
        assert!(load(&format!("{MINIMAL}db-replica-max-lag = 0\n"), &[]).is_err());
    }

    #[test]
    fn a_publishable_key_names_the_frontend_api() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let key = format!("pk_test_{}", b64("foo-bar-13.clerk.accounts.dev$"));
        assert_eq!(publishable_key_host(&key).as_deref(), Ok("foo-bar-13.clerk.accounts.dev"));
        let c = load(&format!("{MINIMAL}clerk-publishable-key = \"{key}\"\n"), &[]).unwrap();
        assert_eq!(c.clerk_issuer.as_deref(), Some("https://foo-bar-13.clerk.accounts.dev"));
        assert_eq!(c.clerk_jwks_url.as_deref(), Some("https://foo-bar-13.clerk.accounts.dev/.well-known/jwks.json"));
        // Explicit settings win; a key file means no derived URL.
        let c = load(&format!("{MINIMAL}clerk-publishable-key = \"{key}\"\nclerk-issuer = \"https://clerk.shop.example\"\nclerk-jwks-file = \"/k.json\"\n"), &[]).unwrap();
        assert_eq!((c.clerk_issuer.as_deref(), c.clerk_jwks_url), (Some("https://clerk.shop.example"), None));
        for bad in [
            "pk_test_",
            "sk_test_abc",
            "pk_prod_Zm9vLmNvbSQ",
            "pk_live_!!!",
            &format!("pk_live_{}", b64("nodollar.example")),
            &format!("pk_live_{}", b64("a$b.example$")),
            &format!("pk_live_{}", b64("localhost$")),
            &format!("pk_live_x_{}", b64("a.b$")),
        ] {
            let err = load(&format!("{MINIMAL}clerk-publishable-key = \"{bad}\"\n"), &[]).unwrap_err();
            assert!(err.0.contains("clerk-publishable-key"), "{bad}: {err:?}");
        }
    }

    #[test]
    fn cors_origins_and_trusted_proxies_are_lists() {
        let c = load(&format!("{MINIMAL}server-cors-allowed-origins = \"http://example.com, http://example2.com\"\nserver-trusted-proxies = \"10.0.0.0/8, ::1\"\n"), &[]).unwrap();
        assert_eq!(c.server_cors_allowed_origins, vec!["http://example.com", "http://example2.com"]);
        assert_eq!(c.server_trusted_proxies.len(), 2);
        assert!(load(&format!("{MINIMAL}server-trusted-proxies = \"10.0.0.0/40\"\n"), &[]).is_err());
        let env = load(MINIMAL, &[("PGRST_SERVER_CORS_ALLOWED_ORIGINS", "https://shop.example")]).unwrap();
        assert_eq!(env.server_cors_allowed_origins, vec!["https://shop.example"]);
    }

    #[test]
    fn tokens_reach_only_allowed_roles() {
        let c = load(&format!("{MINIMAL}db-anon-role = \"anon\"\n"), &[]).unwrap();
        assert_eq!(c.db_allowed_roles, ["authenticated", "anon"]);
        assert!(!c.db_jit && !c.clerk_accept_jwt_templates);
        assert_eq!(c.clerk_max_token_lifetime_secs, 3600);
        let c = load(&format!("{MINIMAL}db-allowed-roles = \"authenticated, staff\"\n"), &[]).unwrap();
        assert_eq!(c.db_allowed_roles, ["authenticated", "staff"]);
        for internal in NEVER_ALLOWED_ROLES {
            let e = load(&format!("{MINIMAL}db-allowed-roles = \"authenticated,{internal}\"\n"), &[]).unwrap_err();
            assert!(e.0.contains("db-allowed-roles (test.conf line 2)"), "{e}");
        }
        assert!(load(&format!("{MINIMAL}db-anon-role = \"authenticator\"\n"), &[]).is_err());
    }

    #[test]
    fn defaults_follow_postgrest() {
        let c = load(MINIMAL, &[]).unwrap();
        assert_eq!(c.server_port, 3000);
        assert_eq!(c.db_schemas, ["public"]);
        assert_eq!(c.db_pool, 10);
        assert_eq!(c.clerk_clock_skew, 5);
        assert_eq!(c.clerk_jwks_refresh_interval_secs, 30);
        assert_eq!(c.log_level, LogLevel::Error);
        assert_eq!((c.db_max_rows, c.db_allow_exact_count, c.db_prepared_statements), (None, true, true));
        assert!(!load(&format!("{MINIMAL}db-prepared-statements = false\n"), &[]).unwrap().db_prepared_statements);
        assert_eq!((c.db_tx_end, c.openapi_mode), (TxEnd::Commit, OpenApiMode::FollowPrivileges));
    }

    #[test]
    fn api_limits_and_modes() {
        let c = load(
            &format!("{MINIMAL}db-max-rows = 100\ndb-allow-exact-count = false\ndb-tx-end = \"rollback-allow-override\"\nopenapi-mode = \"disabled\"\n"),
            &[],
        )
        .unwrap();
        assert_eq!((c.db_max_rows, c.db_allow_exact_count, c.openapi_mode), (Some(100), false, OpenApiMode::Disabled));
        assert!(c.db_tx_end.rolls_back(None) && !c.db_tx_end.rolls_back(Some(false)));
        assert!(!TxEnd::Commit.rolls_back(Some(true)));
        assert!(TxEnd::CommitAllowOverride.rolls_back(Some(true)));
        assert!(load(&format!("{MINIMAL}db-tx-end = \"sometimes\"\n"), &[]).unwrap_err().to_string().contains("one of commit"));
        assert!(load(&format!("{MINIMAL}db-max-rows = 0\n"), &[]).is_err());
    }

    #[test]
    fn operational_limits() {
        let c = load(MINIMAL, &[]).unwrap();
        assert_eq!((c.server_max_body, c.db_statement_timeout_ms, c.db_pool_acquisition_timeout_secs), (1 << 20, 10_000, 10));
        assert_eq!((c.rate_limit_per_user, c.rate_limit_per_ip, c.server_shutdown_grace_secs), (None, None, 10));
        let c = load(
            &format!(
                "{MINIMAL}server-max-body = 2048\ndb-statement-timeout = 0\ndb-pool-acquisition-timeout = 3\n\
                 rate-limit-per-user = 20\nrate-limit-per-ip = 0\nserver-shutdown-grace = 30\n"
            ),
            &[("PGRST_DB_POOL_ACQUISITION_TIMEOUT", "4"), ("CLERK_PROXY_RATE_LIMIT_PER_IP", "100")],
        )
        .unwrap();
        assert_eq!((c.server_max_body, c.db_statement_timeout_ms, c.db_pool_acquisition_timeout_secs), (2048, 0, 4));
        assert_eq!((c.rate_limit_per_user, c.rate_limit_per_ip, c.server_shutdown_grace_secs), (Some(20), Some(100), 30));
        // Off when 0; the PostgREST name is read from PGRST_*, ours only from CLERK_PROXY_*.
        assert_eq!(load(&format!("{MINIMAL}rate-limit-per-user = 0\n"), &[]).unwrap().rate_limit_per_user, None);
        assert_eq!(load(MINIMAL, &[("PGRST_SERVER_MAX_BODY", "10")]).unwrap().server_max_body, 1 << 20);
        for (key, value, want) in [
            ("server-max-body", "0", "an integer from 1 to"),
            ("db-statement-timeout", "-1", "an integer from 0 to"),
            ("db-pool-acquisition-timeout", "0", "an integer from 1 to 3600"),
            ("rate-limit-per-ip", "fast", "an integer from 0 to"),
            ("server-shutdown-grace", "7200", "an integer from 0 to 3600"),
        ] {
            let err = load(&format!("{MINIMAL}{key} = {value}\n"), &[]).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{key} (test.conf line 2) must be {want}")), "{err}");
        }
    }

    #[test]
    fn reads_a_postgrest_file_with_comments_and_types() {
        let c = load(
            &format!(
                "# a PostgREST config\n{MINIMAL}db-schemas = \"api, public\"\nserver-port = 3100 # inline\n\
                 db-anon-role = \"anon\"\nclerk-authorized-parties = \"https://a.example, https://b.example\"\n\
                 clerk-issuer = \"https://clerk.example.com\"\nlog-level = \"info\"\nserver-host = \"*\"\n"
            ),
            &[],
        )
        .unwrap();
        assert_eq!(c.db_schemas, ["api", "public"]);
        assert_eq!(c.server_port, 3100);
        assert_eq!(c.db_anon_role.as_deref(), Some("anon"));
        assert_eq!(c.clerk_authorized_parties, ["https://a.example", "https://b.example"]);
        assert_eq!(c.server_host.to_string(), "0.0.0.0");
        assert_eq!(c.log_level, LogLevel::Info);
    }

    #[test]
    fn environment_overrides_file_and_reads_pgrst_names() {
        let c = load(MINIMAL, &[("CLERK_PROXY_SERVER_PORT", "4000"), ("PGRST_DB_POOL", "3")]).unwrap();
        assert_eq!(c.server_port, 4000);
        assert_eq!(c.db_pool, 3);
        let c = load("", &[("PGRST_DB_URI", "postgres://x@h/db")]).unwrap();
        assert_eq!(c.db_uri, "postgres://x@h/db");
        // Clerk-only keys are not read from PGRST_*.
        let c = load(MINIMAL, &[("PGRST_CLERK_CLOCK_SKEW", "9")]).unwrap();
        assert_eq!(c.clerk_clock_skew, 5);
    }

    #[test]
    fn errors_name_the_key_and_where_it_came_from() {
        // (config file, environment, the error it gives)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            ("", &[], "db-uri is required"),
            ("db-uri = \"mysql://x\"", &[], "db-uri (test.conf line 1) must be"),
            ("db-urii = \"x\"", &[], "test.conf line 1: unknown key `db-urii`"),
            (MINIMAL, &[("CLERK_PROXY_SERVER_PORT", "70000")], "server-port (environment variable CLERK_PROXY_SERVER_PORT) must be a TCP port"),
            (MINIMAL, &[("CLERK_PROXY_DB_POOL", "many")], "db-pool (environment variable CLERK_PROXY_DB_POOL) must be an integer from 1 to 1000"),
            (MINIMAL, &[("CLERK_PROXY_JWT_SECRET", "short")], "jwt-secret (environment variable CLERK_PROXY_JWT_SECRET) must be at least 32"),
            (MINIMAL, &[("CLERK_PROXY_LOG_LEVEL", "loud")], "log-level"),
            (MINIMAL, &[("CLERK_PROXY_CLERK_JWKS_REFRESH_INTERVAL", "-1")], "clerk-jwks-refresh-interval (environment variable CLERK_PROXY_CLERK_JWKS_REFRESH_INTERVAL) must be an integer from 0 to 86400"),
            (MINIMAL, &[("CLERK_PROXY_CLERK_ISSUER", "clerk.example.com")], "clerk-issuer"),
            ("db-uri = \"postgres://x", &[], "unterminated string"),
            ("just words", &[], "expected `key = value`"),
        ];
        for (file, env, want) in cases {
            let err = load(file, env).unwrap_err().to_string();
            assert!(err.contains(want), "{file:?} {env:?}: {err}");
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let c = load(
            MINIMAL,
            &[
                ("CLERK_PROXY_JWT_SECRET", "0123456789abcdef0123456789abcdef-topsecret"),
                ("CLERK_PROXY_CLERK_WEBHOOK_SECRET", "whsec_c2VjcmV0"),
                ("CLERK_PROXY_CLERK_SECRET_KEY", "sk_test_topsecret"),
            ],
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("whsec_") && !shown.contains("sk_test") && !shown.contains(":pw@"),
            "{shown}"
        );
        assert!(shown.contains("authenticator:***@127.0.0.1"), "{shown}");
        assert_eq!(redact_uri("host=h password=pw user=u"), "host=h password=*** user=u");
    }
}
