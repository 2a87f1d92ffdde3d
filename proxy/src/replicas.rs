//! Stage 5, which server: read-only transactions go to hot standbys
//! (`db-replica-uris`), everything else to the primary (`db-uri`).
//!
//! A standby serves reads while it answers, is in recovery and is at most
//! `db-replica-max-lag` behind. Lag is measured against the primary's own
//! WAL positions, sampled every `CHECK_INTERVAL`: a standby is as far
//! behind as the oldest sample it has not replayed yet. An idle primary
//! then means no lag (its position does not move), and a standby whose WAL
//! receiver is cut off lags more with every write on the primary, which
//! `pg_last_xact_replay_timestamp()` alone tells apart from neither.
//!
//! Read-your-writes: a write's response carries `Clerk-Read-After`, the
//! primary's WAL position after its commit; a read that sends it back runs
//! on a standby known to have replayed that far, else on the primary.

use crate::db::{Access, Failure, Finish, Lsn, Outcome, Pool, PoolOptions, RequestContext};
use crate::error::ApiError;
use crate::metrics::ReplicaReport;
use crate::sql::Statement;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage, SimpleQueryRow};

/// The header a write's response carries and a later read may send back.
pub const READ_AFTER_HEADER: &str = "clerk-read-after";

/// How often the primary's position and each standby's are read.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// A check (connection included) that takes longer marks the standby down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// Connecting to a standby for a request: past this, the primary serves it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The standbys, in `db-replica-uris` order; empty: every request runs on the primary.
pub struct Replicas {
    members: Vec<Replica>,
    max_lag: Duration,
    next: AtomicUsize,
}

pub struct Replica {
    /// `host:port` from its URI (no credentials): for `/ready` and `/metrics`.
    pub label: String,
    pub pool: Pool,
    health: Mutex<Health>,
    /// Set when a request could not use it: the next check opens a new
    /// connection rather than trust the one it has.
    check_anew: std::sync::atomic::AtomicBool,
}

/// What the last check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Not reachable, or no answer within `CHECK_TIMEOUT` (or not checked yet).
    Down { reason: String },
    /// Reachable but not in recovery (a promoted standby): never read from,
    /// its data may have parted from the primary's.
    NotStandby,
    /// A standby that has replayed WAL up to `replayed`.
    Standby { replayed: Lsn, lag: Duration },
}

/// Where a request's transaction runs.
#[derive(Clone, Copy)]
pub enum Server<'a> {
    Primary,
    Replica(&'a Replica),
}

impl Replicas {
    pub fn from_config(config: &crate::config::Config) -> Result<Replicas, String> {
        // A standby that cannot give a connection soon is passed over for the primary.
        let options = PoolOptions {
            commit_lsn: false,
            connect_timeout: CONNECT_TIMEOUT,
            acquisition_timeout: CONNECT_TIMEOUT.min(Duration::from_secs(config.db_pool_acquisition_timeout_secs)),
            ..PoolOptions::from_config(config)
        };
        let members = config
            .db_replica_uris
            .iter()
            .map(|uri| {
                let pool = Pool::new(uri, options.clone()).map_err(|e| format!("db-replica-uris: {e}"))?;
                Ok(Replica {
                    label: label(&pool.config()),
                    pool,
                    health: Mutex::new(Health::Down { reason: "not checked yet".into() }),
                    check_anew: Default::default(),
                })
            })
            .collect::<Result<Vec<Replica>, String>>()?;
        if let Some(twice) =
            members.iter().enumerate().find_map(|(i, r)| members[..i].iter().any(|o| o.label == r.label).then_some(&r.label))
        {
            return Err(format!("db-replica-uris names {twice} twice"));
        }
        Ok(Replicas { members, max_lag: Duration::from_secs(config.db_replica_max_lag_secs), next: AtomicUsize::new(0) })
    }

    /// Where a transaction runs: a read on the next standby (round robin)
    /// that serves reads and, given `after`, has replayed that far; any
    /// other transaction, or a read no standby can take, on the primary.
    pub fn route(&self, access: Access, after: Option<Lsn>) -> Server<'_> {
        if access != Access::Read || self.members.is_empty() {
            return Server::Primary;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..self.members.len())
            .map(|i| &self.members[(start + i) % self.members.len()])
            .find(|r| r.serves(self.max_lag, after))
            .map_or(Server::Primary, Server::Replica)
    }

    /// Runs a request's transaction where `route` says; a standby that
    /// cannot take it is marked down and the primary runs it instead
    /// (a read-only transaction has nothing to undo).
    pub async fn run(
        &self,
        primary: &Pool,
        ctx: &RequestContext<'_>,
        access: Access,
        after: Option<Lsn>,
        statement: &Statement,
        finish: Finish,
    ) -> Result<Outcome, ApiError> {
        if let Server::Replica(replica) = self.route(access, after) {
            match replica.pool.attempt(ctx, access.read_only(), statement, finish).await {
                Err(Failure { server_unavailable: true, error }) => {
                    let reason = format!("{}: {}", error.message, error.details.as_ref().and_then(|d| d.as_str()).unwrap_or_default());
                    log::warn!("replica {}: {reason}; reads go to the primary until it checks healthy", replica.label);
                    replica.set(Health::Down { reason });
                    // Its check connection may still answer while new ones cannot be made.
                    replica.check_anew.store(true, Ordering::Relaxed);
                    crate::metrics::count(&crate::metrics::REPLICA_FALLBACKS);
                }
                served => {
                    crate::metrics::count(&crate::metrics::REPLICA_READS);
                    return served.map_err(|f| f.error);
                }
            }
        }
        primary.run_and(ctx, access.read_only(), statement, finish).await
    }

    /// Checks the primary's position and every standby's, every
    /// `CHECK_INTERVAL`, on `primary`'s background runtime.
    pub fn watch(self: &Arc<Self>, primary: &Pool) {
        if self.members.is_empty() {
            return;
        }
        let replicas = Arc::downgrade(self);
        let primary_config = primary.config();
        let configs: Vec<_> = self.members.iter().map(|r| r.pool.config()).collect();
        primary.runtime().spawn(async move {
            let mut history = History::default();
            let mut primary_client: Option<Client> = None;
            let mut primary_failing = false;
            let mut clients: Vec<Option<Client>> = configs.iter().map(|_| None).collect();
            loop {
                // Primary first: a standby checked after it can only look less behind.
                match checked(&primary_config, &mut primary_client, PRIMARY_SQL, |row| row.get(0)?.parse().ok()).await {
                    Ok(Some(position)) => {
                        if std::mem::take(&mut primary_failing) {
                            log::info!("the primary's WAL position is read again: standbys' lag is measured again");
                        }
                        history.record(Instant::now(), position);
                    }
                    failed => {
                        if !std::mem::replace(&mut primary_failing, true) {
                            log::warn!(
                                "cannot read the primary's WAL position ({}): standbys look further behind with every check, until they lag too much to serve",
                                failed.err().unwrap_or_else(|| "no position".into())
                            );
                        }
                    }
                }
                let Some(replicas) = replicas.upgrade() else { return };
                for ((replica, config), client) in replicas.members.iter().zip(&configs).zip(clients.iter_mut()) {
                    if replica.check_anew.swap(false, Ordering::Relaxed) {
                        *client = None;
                    }
                    let state = |row: &SimpleQueryRow| {
                        Some((row.get(0)? == "t", row.get(1).map(str::to_owned), row.get(2).and_then(|s| s.parse::<f64>().ok())))
                    };
                    let health = match checked(config, client, STANDBY_SQL, state).await {
                        Err(reason) => Health::Down { reason },
                        Ok(Some((false, _, _))) => Health::NotStandby,
                        Ok(Some((true, Some(replayed), replay_age))) => match replayed.parse() {
                            Ok(replayed) => Health::Standby { replayed, lag: history.lag(Instant::now(), replayed, replay_age) },
                            Err(()) => Health::Down { reason: format!("unreadable replay position {replayed}") },
                        },
                        Ok(_) => Health::Down { reason: "no WAL replayed yet".into() },
                    };
                    replica.set(health);
                }
                drop(replicas);
                tokio::time::sleep(CHECK_INTERVAL).await;
            }
        });
    }

    /// Asks each standby to cancel what it runs for requests (shutdown).
    pub fn cancel_lent(&self, timeout: Duration) -> usize {
        self.members.iter().map(|r| r.pool.cancel_lent(timeout)).sum()
    }

    /// Each standby as its last check found it, for `/ready` and `/metrics`.
    pub fn reports(&self) -> Vec<ReplicaReport> {
        self.members
            .iter()
            .map(|r| {
                let (state, lag_seconds, error) = match r.health() {
                    Health::Standby { lag, .. } if lag <= self.max_lag => ("serving", Some(lag.as_secs_f64()), None),
                    Health::Standby { lag, .. } => ("lagging", Some(lag.as_secs_f64()), None),
                    Health::NotStandby => ("not_standby", None, Some("not in recovery (promoted?): not read from".to_owned())),
                    Health::Down { reason } => ("down", None, Some(reason)),
                };
                ReplicaReport { label: r.label.clone(), state, lag_seconds, error, pool: r.pool.stats() }
            })
            .collect()
    }
}

impl Replica {
    fn health(&self) -> Health {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, health: Health) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = health;
    }

    /// On every read: looks at the health in place (a copy would copy a down standby's reason).
    fn serves(&self, max_lag: Duration, after: Option<Lsn>) -> bool {
        match &*self.health.lock().unwrap_or_else(|p| p.into_inner()) {
            Health::Standby { replayed, lag } => *lag <= max_lag && after.is_none_or(|a| *replayed >= a),
            Health::Down { .. } | Health::NotStandby => false,
        }
    }
}

const PRIMARY_SQL: &str = "SELECT pg_current_wal_lsn()::text";
const STANDBY_SQL: &str =
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, extract(epoch FROM now() - pg_last_xact_replay_timestamp())";

/// Runs `sql` on the check connection `client` (opened again when closed),
/// within `CHECK_TIMEOUT`, and reads its first row with `read`. The simple
/// protocol: it holds behind a pooler in transaction mode too.
async fn checked<T>(
    config: &tokio_postgres::Config,
    client: &mut Option<Client>,
    sql: &str,
    read: impl Fn(&SimpleQueryRow) -> Option<T>,
) -> Result<Option<T>, String> {
    let attempt = async {
        if client.as_ref().is_none_or(Client::is_closed) {
            let (c, connection) = config.connect(NoTls).await.map_err(|e| format!("cannot connect: {}", crate::db::error_text(&e)))?;
            tokio::spawn(connection);
            *client = Some(c);
        }
        let messages = client.as_ref().expect("just opened").simple_query(sql).await.map_err(|e| crate::db::error_text(&e))?;
        Ok(messages
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .and_then(read))
    };
    let result = tokio::time::timeout(CHECK_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())));
    if result.is_err() {
        *client = None;
    }
    result
}

/// The primary's WAL positions as the checks found them, for `lag`.
#[derive(Default)]
struct History {
    /// Positions that moved, oldest first.
    moves: VecDeque<(Instant, Lsn)>,
    /// The last check that read the primary's position: when, and where.
    last: Option<(Instant, Lsn)>,
    /// Older moves were let go (`HISTORY_SAMPLES`).
    truncated: bool,
}

/// Moves kept: about an hour of a busy primary's checks.
const HISTORY_SAMPLES: usize = 2 * 3600;

impl History {
    fn record(&mut self, at: Instant, position: Lsn) {
        self.last = Some((at, position));
        // Only positions that moved matter: the oldest unreplayed one dates the lag.
        if self.moves.back().is_none_or(|(_, last)| position > *last) {
            self.moves.push_back((at, position));
            if self.moves.len() > HISTORY_SAMPLES {
                self.moves.pop_front();
                self.truncated = true;
            }
        }
    }

    /// How far behind a standby that has replayed up to `replayed` may
    /// be. Caught up with the newest position read: as old as that read
    /// (so a primary that cannot be checked makes every standby look
    /// older and older). Else, since the primary first had WAL it lacks;
    /// when that is before what is kept (or before the proxy started),
    /// the standby's own age of its last replayed commit (`replay_age`,
    /// seconds), and unbounded without one.
    fn lag(&self, now: Instant, replayed: Lsn, replay_age: Option<f64>) -> Duration {
        let Some((checked_at, newest)) = self.last else { return Duration::MAX };
        if replayed >= newest {
            return now.saturating_duration_since(checked_at);
        }
        let since = |at: Instant| now.saturating_duration_since(at);
        match self.moves.iter().position(|(_, position)| *position > replayed) {
            Some(i) if i > 0 => since(self.moves[i].0),
            // Behind the oldest position kept (or the first seen).
            _ => {
                let seen = self.moves.front().map_or(Duration::MAX, |(at, _)| since(*at));
                match (replay_age.filter(|a| a.is_finite() && *a >= 0.0), self.truncated) {
                    (Some(age), _) => Duration::from_secs_f64(age).max(seen),
                    (None, true) => Duration::MAX,
                    (None, false) => seen,
                }
            }
        }
    }
}

/// `host:port` of a connection's first host, never its credentials.
fn label(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    format!("{host}:{}", config.get_ports().first().copied().unwrap_or(5432))
}

/// A request's `Clerk-Read-After` value: 400 when it is not a WAL position.
pub fn read_after(value: Option<&str>) -> Result<Option<Lsn>, ApiError> {
    value.map(|v| v.trim().parse().map_err(|()| ApiError::invalid_read_after(v))).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsn(text: &str) -> Lsn {
        text.parse().unwrap()
    }

    #[test]
    fn one_standby_named_twice_is_refused() {
        let twice = "db-uri = \"postgres://a@p/app\"\ndb-replica-uris = \"postgres://a@s1:5433/app,postgresql://b@s1:5433/app\"\n";
        let config = crate::config::Config::from_sources(twice, "test.conf", std::iter::empty()).unwrap();
        assert_eq!(Replicas::from_config(&config).err().as_deref(), Some("db-replica-uris names s1:5433 twice"));
        let two = twice.replace("b@s1:5433", "b@s2:5433");
        let config = crate::config::Config::from_sources(&two, "test.conf", std::iter::empty()).unwrap();
        assert_eq!(Replicas::from_config(&config).map(|r| r.members.len()).ok(), Some(2));
    }

    #[test]
    fn wal_positions_read_and_print_as_postgres_does() {
        assert_eq!(lsn("16/B374D848"), Lsn((0x16 << 32) | 0xB374D848));
        assert_eq!(lsn("0/0").to_string(), "0/0");
        assert_eq!(lsn("16/b374d848").to_string(), "16/B374D848");
        assert!(lsn("1/0") > lsn("0/FFFFFFFF"));
        for wrong in ["", "0", "/1", "1/", "1/2/3", "G/1", "123456789/0", " 0/1", "+1/1", "-1/1"] {
            assert!(wrong.parse::<Lsn>().is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn lag_dates_from_the_oldest_position_not_replayed() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let mut h = History::default();
        assert_eq!(h.lag(t0, lsn("0/100"), Some(0.0)), Duration::MAX, "no primary position read yet: unknown");
        h.record(t0, lsn("0/100"));
        h.record(t0 + secs(2), lsn("0/200"));
        h.record(t0 + secs(3), lsn("0/300"));
        h.record(t0 + secs(9), lsn("0/300")); // an idle primary, checked
        let now = t0 + secs(10);
        assert_eq!(h.lag(now, lsn("0/300"), None), secs(1), "caught up as of the last check, however old the last write");
        assert_eq!(h.lag(now, lsn("0/250"), None), secs(7));
        assert_eq!(h.lag(now, lsn("0/100"), None), secs(8));
        // Behind the first position this proxy saw: the standby's own replay age says how far.
        assert_eq!(h.lag(now, lsn("0/50"), Some(3600.0)), secs(3600));
        assert_eq!(h.lag(now, lsn("0/50"), None), secs(10));
        // The primary cannot be checked any more: a caught-up standby ages with the last check.
        assert_eq!(h.lag(t0 + secs(60), lsn("0/300"), None), secs(51));
    }

    #[test]
    fn a_standby_behind_all_that_is_kept_is_as_old_as_its_last_replayed_commit() {
        let t0 = Instant::now();
        let mut h = History::default();
        for i in 0..=HISTORY_SAMPLES as u64 {
            h.record(t0 + Duration::from_millis(500 * i), Lsn(1000 + i));
        }
        let now = t0 + Duration::from_secs(4000);
        assert_eq!(h.lag(now, Lsn(10), Some(36_000.0)), Duration::from_secs(36_000));
        assert_eq!(h.lag(now, Lsn(10), None), Duration::MAX, "older than what is kept and no replay age: unbounded");
        assert!(h.lag(now, Lsn(1500), None) < Duration::from_secs(4000));
    }
}
