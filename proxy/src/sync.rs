//! The metadata sync worker: delivers `clerk_metadata_outbox` rows
//! (sql/007) to Clerk's Backend API, `PATCH /v1/users/{id}/metadata`.
//! Runs when `clerk-secret-key` is set, on the database runtime, with a
//! connection of its own, as role `clerk_sync`. Each round is one
//! transaction: claim a batch (SKIP LOCKED: several proxies can run this
//! at once without delivering twice), call Clerk, mark each row, commit. A
//! worker killed mid-round releases its rows with its transaction, and the
//! next round (here or in another proxy) delivers them: at least once. On
//! SIGTERM the worker finishes the call it is making, commits what it
//! marked and claims nothing more, and the process waits for that (within
//! `server-shutdown-grace`), so a stopped proxy sends nothing twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_postgres::NoTls;

/// Set at SIGTERM (before the shutdown waits for `ROUND_IN_FLIGHT`).
pub static STOPPING: AtomicBool = AtomicBool::new(false);
/// A round is between its claim and its commit. Set before `STOPPING` is
/// read (both `SeqCst`): either the worker sees the stop and claims
/// nothing, or the shutdown sees the round and waits for it.
pub static ROUND_IN_FLIGHT: AtomicBool = AtomicBool::new(false);

/// Clears `ROUND_IN_FLIGHT` however the round ends.
struct InRound;

impl Drop for InRound {
    fn drop(&mut self) {
        ROUND_IN_FLIGHT.store(false, Ordering::SeqCst);
    }
}

const BATCH: i32 = 20;
const IDLE_WAIT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct ClerkApi {
    base_url: String,
    secret_key: String,
    agent: ureq::Agent,
}

/// What one call to Clerk came back with.
pub enum Delivery {
    Done(u16),
    Failed { status: u16, error: String, retry_after: Option<u64> },
}

impl ClerkApi {
    pub fn new(base_url: &str, secret_key: &str) -> ClerkApi {
        let config = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(10))).http_status_as_error(false).build();
        ClerkApi { base_url: base_url.to_owned(), secret_key: secret_key.to_owned(), agent: config.into() }
    }

    /// `PATCH /v1/users/{user_id}/metadata` with `public_metadata` (blocking).
    pub fn update_metadata(&self, user_id: &str, public_metadata: &serde_json::Value) -> Delivery {
        let url = format!("{}/v1/users/{user_id}/metadata", self.base_url);
        let body = serde_json::json!({ "public_metadata": public_metadata }).to_string();
        let result = self
            .agent
            .patch(&url)
            .header("Authorization", &format!("Bearer {}", self.secret_key))
            .header("Content-Type", "application/json")
            .send(body.as_bytes());
        match result {
            Ok(mut response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    return Delivery::Done(status);
                }
                let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
                let error = response.body_mut().read_to_string().unwrap_or_default();
                Delivery::Failed { status, error, retry_after }
            }
            // Timeouts and connection errors: retried like a 5xx.
            Err(e) => Delivery::Failed { status: 0, error: e.to_string(), retry_after: None },
        }
    }
}

/// Starts the worker loop on `runtime`; it keeps one connection and
/// reconnects after an error.
pub fn spawn(runtime: &tokio::runtime::Handle, db: tokio_postgres::Config, api: ClerkApi) {
    runtime.spawn(async move {
        let mut client: Option<tokio_postgres::Client> = None;
        loop {
            if client.as_ref().is_none_or(|c| c.is_closed()) {
                client = match db.connect(NoTls).await {
                    Ok((c, connection)) => {
                        tokio::spawn(connection);
                        Some(c)
                    }
                    Err(e) => {
                        log::warn!("metadata sync: cannot connect: {e}; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
            }
            ROUND_IN_FLIGHT.store(true, Ordering::SeqCst);
            let in_round = InRound;
            if STOPPING.load(Ordering::SeqCst) {
                log::info!("metadata sync: stopped");
                return;
            }
            let done = round(client.as_ref().expect("connected above"), &api).await;
            drop(in_round);
            match done {
                Ok(n) if n as i32 == BATCH => continue, // more may be waiting
                Ok(_) => tokio::time::sleep(IDLE_WAIT).await,
                Err(e) => {
                    log::warn!("metadata sync: {e}; retrying in 1 s");
                    client = None;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}

/// One transaction: claim, deliver, mark. Returns how many rows it took.
async fn round(client: &tokio_postgres::Client, api: &ClerkApi) -> Result<usize, String> {
    client.batch_execute("BEGIN; SET LOCAL ROLE clerk_sync").await.map_err(|e| e.to_string())?;
    let rows = client
        .query("SELECT user_id::text, public_metadata::text FROM clerk_outbox_claim($1)", &[&BATCH])
        .await
        .map_err(|e| e.to_string())?;
    for row in &rows {
        if STOPPING.load(Ordering::SeqCst) {
            break; // the rows not called yet go back with the commit
        }
        let (user_id, metadata): (String, String) = (row.get(0), row.get(1));
        let metadata: serde_json::Value = serde_json::from_str(&metadata).map_err(|e| e.to_string())?;
        let (api, id) = (api.clone(), user_id.clone());
        let outcome = tokio::task::spawn_blocking(move || api.update_metadata(&id, &metadata)).await.map_err(|e| e.to_string())?;
        match outcome {
            Delivery::Done(status) => {
                crate::metrics::count(&crate::metrics::SYNC_DELIVERED);
                client.execute("SELECT clerk_outbox_delivered($1::text::clerk_user_id, $2)", &[&user_id, &(status as i32)]).await
            }
            Delivery::Failed { status, error, retry_after } => {
                log::warn!("metadata sync for {user_id}: Clerk answered {status}");
                let dead = (400..500).contains(&status) && status != 429;
                crate::metrics::count(if dead { &crate::metrics::SYNC_DEAD } else { &crate::metrics::SYNC_FAILED });
                let wait = retry_after.map(|s| format!("{s} seconds"));
                client
                    .execute(
                        "SELECT clerk_outbox_failed($1::text::clerk_user_id, $2, $3, $4::text::interval)",
                        &[&user_id, &(status as i32), &error, &wait],
                    )
                    .await
            }
        }
        .map_err(|e| e.to_string())?;
    }
    client.batch_execute("COMMIT").await.map_err(|e| e.to_string())?;
    Ok(rows.len())
}
