//! `turnout-ballot create-election FILE.json`: creates an election from a JSON file and
//! records it in the audit log, in one transaction.

use jiff::Timestamp;
use turnout_core::store::{AuditEntry, Elections, NewElection};

pub async fn create_election(store: &dyn Elections, json: &str, actor: &str) -> anyhow::Result<NewElection> {
    let election: NewElection =
        serde_json::from_str(json).map_err(|e| anyhow::anyhow!("the election file is not valid: {e}"))?;
    election.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::eligibility::check(&election.eligibility).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    for contest in &election.contests {
        crate::eligibility::check_constituency(&contest.rules.voters)
            .map_err(|e| anyhow::anyhow!("contest {}: {}", contest.id, e.message))?;
    }
    let now = Timestamp::now();
    let entry = AuditEntry {
        actor: actor.to_owned(),
        action: "election.create".into(),
        election: Some(election.id.clone()),
        detail: serde_json::json!({
            "title": election.title,
            "opens_at": election.opens_at.to_string(),
            "closes_at": election.closes_at.to_string(),
        }),
    };
    store.create_election_audited(&election, &entry, now).await?;
    Ok(election)
}
