//! The code service's readiness beyond the store: the sender pool and the outbox lag.
//! Both are non-critical: when mail is slow or every account is quarantined, requests
//! are still right to queue (nothing is lost), so the service stays in rotation and
//! reports `degraded`, which operators alert on.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use turnout_core::http::ReadinessCheck;
use turnout_core::store::{Elections, Outbox, Senders, Store};

pub struct SmtpPool(pub Arc<dyn Senders>);

#[async_trait::async_trait]
impl ReadinessCheck for SmtpPool {
    fn name(&self) -> &'static str {
        "smtp_pool"
    }
    fn critical(&self) -> bool {
        false
    }
    async fn check(&self) -> Result<Value, String> {
        let now = jiff::Timestamp::now();
        let accounts = self.0.sender_health().await.map_err(|e| e.to_string())?;
        let quarantined: Vec<&str> = accounts
            .iter()
            .filter(|a| a.quarantined_until.is_some_and(|until| until > now))
            .map(|a| a.account.as_str())
            .collect();
        let detail = json!({ "accounts": accounts.len(), "quarantined": quarantined });
        if !accounts.is_empty() && quarantined.len() == accounts.len() {
            return Err(format!("every sender account is quarantined ({detail})"));
        }
        Ok(detail)
    }
}

/// Lagging when the oldest queued code email is older than the alert (`TURNOUT_MAIL_LAG_ALERT_SECS`).
pub struct OutboxLag<S: Elections + Outbox + ?Sized = dyn Store> {
    pub store: Arc<S>,
    pub alert: Duration,
}

#[async_trait::async_trait]
impl<S: Elections + Outbox + ?Sized + 'static> ReadinessCheck for OutboxLag<S> {
    fn name(&self) -> &'static str {
        "outbox_lag"
    }
    fn critical(&self) -> bool {
        false
    }
    async fn check(&self) -> Result<Value, String> {
        let now = jiff::Timestamp::now();
        let elections = self
            .store
            .list_elections(None, turnout_core::metrics::MAX_REPORTED_ELECTIONS)
            .await
            .map_err(|e| e.to_string())?;
        let mut oldest = 0;
        let mut waiting = 0;
        for e in elections.iter().filter(|e| e.schedule().closes_at + Duration::from_secs(3600) > now) {
            let s = self.store.outbox_summary(&e.id, now).await.map_err(|e| e.to_string())?;
            oldest = oldest.max(s.oldest_waiting_secs.unwrap_or(0));
            waiting += s.queued + s.sending + s.deferred;
        }
        let detail = json!({ "waiting": waiting, "oldest_waiting_secs": oldest });
        if oldest as u64 > self.alert.as_secs() {
            return Err(format!("the oldest code email has waited {oldest} s ({detail})"));
        }
        Ok(detail)
    }
}
