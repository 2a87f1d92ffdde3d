//! Prometheus text for the admin listener's `/metrics`. What exists so
//! far: the metadata sync worker's results, and the outbox by state (read
//! from the database at scrape time).

use std::sync::atomic::{AtomicU64, Ordering};

pub static SYNC_DELIVERED: AtomicU64 = AtomicU64::new(0);
pub static SYNC_FAILED: AtomicU64 = AtomicU64::new(0);
pub static SYNC_DEAD: AtomicU64 = AtomicU64::new(0);

pub fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// `outbox`: (state, rows) pairs, when the database answered.
pub fn render(outbox: Option<&[(String, i64)]>) -> String {
    let mut out = String::new();
    out.push_str("# HELP clerk_metadata_sync_calls_total Calls to Clerk's metadata API by the sync worker, by result.\n");
    out.push_str("# TYPE clerk_metadata_sync_calls_total counter\n");
    for (result, counter) in [("delivered", &SYNC_DELIVERED), ("failed", &SYNC_FAILED), ("dead", &SYNC_DEAD)] {
        out.push_str(&format!("clerk_metadata_sync_calls_total{{result=\"{result}\"}} {}\n", counter.load(Ordering::Relaxed)));
    }
    if let Some(rows) = outbox {
        out.push_str("# HELP clerk_metadata_outbox_rows Rows of clerk_metadata_outbox by state (pending = queued or waiting for a retry).\n");
        out.push_str("# TYPE clerk_metadata_outbox_rows gauge\n");
        for state in ["pending", "delivered", "dead"] {
            let n = rows.iter().find(|(s, _)| s == state).map(|(_, n)| *n).unwrap_or(0);
            out.push_str(&format!("clerk_metadata_outbox_rows{{state=\"{state}\"}} {n}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text() {
        let text = render(Some(&[("pending".into(), 2), ("dead".into(), 1)]));
        assert!(text.contains("clerk_metadata_outbox_rows{state=\"pending\"} 2\n"));
        assert!(text.contains("clerk_metadata_outbox_rows{state=\"delivered\"} 0\n"));
        assert!(text.contains("# TYPE clerk_metadata_sync_calls_total counter\n"));
        assert!(!render(None).contains("outbox_rows"));
    }
}
