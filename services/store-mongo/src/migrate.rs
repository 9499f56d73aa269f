//! One-time data migrations, run as a store opens and recorded in `migrations`
//! `{_id: name, at}` so each runs once (concurrent openers may both run one: each step is
//! idempotent).
//!
//! `fold-usernames-v1`: voters are canonical usernames (trimmed, ASCII lower case: see
//! `Username`). Documents keyed by another spelling are re-keyed under the folded one,
//! each in a transaction (insert the folded copy, delete the original). Where the folded
//! key already exists, the other spelling's document stays as it is: it was a second
//! ballot's participation or a duplicate roll row, so participation = ballots still holds.
//!
//! The two below need the keys, so they are the operator's to run (`turnout-ballot
//! upgrade`, `turnout_store::upgrades`); a store opening only marks them done when there
//! is nothing to do.
//!
//! `seal-ballots-v1`: ballots cast before sealing (the old `ballots` collection, choices
//! in the clear) are sealed into `sealed_ballots`, each in a transaction with its removal
//! from `ballots`, and untagged participations are tagged; then `ballots` is dropped. (The oplog of a replica set that took
//! plaintext ballots keeps them until it rolls over: docs/operations.md says how to make
//! sure it has.)
//!
//! `keyed-audit-chain-v1`: audit entries hashed before the key existed are re-hashed with
//! it in one transaction, after checking their unkeyed chain (`rekey_chain`); the verdict
//! is the upgrade's own audit entry.

use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use turnout_domain::ElectionId;
use turnout_store::{
    AuditEntry, KEYED_AUDIT_UPGRADE, KEYED_ERA_ACTIONS, StoreError, StoredEntry, chain_keyed_entry, rekey_chain,
};

use crate::audit::append_audit_in;
use crate::decode::{self, bad, int};
use crate::{MongoStore, docs, errors};

const FOLD_USERNAMES: &str = "fold-usernames-v1";
const SEAL_BALLOTS: &str = "seal-ballots-v1";
/// Matches a name with a capital letter or surrounding blanks.
const NOT_CANONICAL: &str = "[A-Z]|^\\s|\\s$";

fn folded(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

fn refused(why: String) -> StoreError {
    StoreError::Other(anyhow::anyhow!("upgrade refused: {why}"))
}

impl MongoStore {
    /// As the store opens: the username fold (needs no key), and what needs no key and
    /// could hide nothing (an empty old `ballots` collection, an empty chain). The
    /// upgrades that need the keys are the operator's (`pending_upgrades`, `run_upgrades`).
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        if !self.migration_done(FOLD_USERNAMES).await? {
            self.fold_usernames().await?;
        }
        if !self.migration_done(SEAL_BALLOTS).await? && self.plaintext_waiting().await? == 0 {
            self.timed(self.coll::<Document>("ballots").drop()).await?;
            if self.untagged_voters().await? == 0 {
                self.mark_done(SEAL_BALLOTS, doc! { "ballots": 0_i64 }).await?;
            }
        }
        if !self.migration_done(KEYED_AUDIT_UPGRADE).await?
            && self.timed(self.coll::<Document>("audit").count_documents(doc! {})).await? == 0
        {
            self.mark_done(KEYED_AUDIT_UPGRADE, doc! { "entries": 0_i64 }).await?;
        }
        Ok(())
    }

    async fn migration_done(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.timed(self.coll::<Document>("migrations").find_one(doc! { "_id": name })).await?.is_some())
    }

    async fn plaintext_waiting(&self) -> Result<u64, StoreError> {
        self.timed(self.coll::<Document>("ballots").count_documents(doc! {})).await
    }

    async fn untagged_voters(&self) -> Result<u64, StoreError> {
        self.timed(self.coll::<Document>("participation").count_documents(doc! { "t": { "$exists": false } })).await
    }

    pub(super) async fn pending_upgrades(&self) -> Result<Vec<String>, StoreError> {
        let mut due = Vec::new();
        if !self.migration_done(KEYED_AUDIT_UPGRADE).await? {
            let n = self.timed(self.coll::<Document>("audit").count_documents(doc! {})).await?;
            due.push(format!("the audit log's {n} entries were hashed before hashes were keyed"));
        }
        if !self.migration_done(SEAL_BALLOTS).await? {
            let (ballots, voters) = (self.plaintext_waiting().await?, self.untagged_voters().await?);
            if ballots > 0 {
                due.push(format!("{ballots} ballots were cast before ballots were sealed"));
            }
            if voters > 0 {
                due.push(format!("{voters} participations were recorded before they were tagged"));
            }
        }
        Ok(due)
    }

    pub(super) async fn run_upgrades(&self) -> Result<Vec<String>, StoreError> {
        let mut report = Vec::new();
        if let Some(n) = self.key_audit_chain().await? {
            report.push(format!("audit log: {n} entries re-hashed with the key"));
        }
        report.extend(self.seal_ballots().await?);
        Ok(report)
    }

    /// Records a migration as done (a second recorder, running at once, is fine).
    async fn mark_done(&self, name: &str, detail: Document) -> Result<(), StoreError> {
        let mut record = doc! { "_id": name, "at": jiff::Timestamp::now().as_second() };
        record.extend(detail);
        match self.timed(self.coll::<Document>("migrations").insert_one(record)).await {
            Err(StoreError::Conflict(_)) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Seals the old `ballots` collection into `sealed_ballots`, tags untagged
    /// participations, writes a `box.upgraded` audit entry per election; refused for an
    /// election whose sealed box the audit log records already, and once it has run.
    async fn seal_ballots(&self) -> Result<Vec<String>, StoreError> {
        let old = self.coll::<Document>("ballots");
        let found: Vec<Document> = self.timed(self.timed(old.find(doc! {})).await?.try_collect()).await?;
        let voters = self.coll::<Document>("participation");
        let untagged: Vec<Document> =
            self.timed(self.timed(voters.find(doc! { "t": { "$exists": false } })).await?.try_collect()).await?;
        if found.is_empty() && untagged.is_empty() {
            return Ok(Vec::new());
        }
        if self.migration_done(SEAL_BALLOTS).await? {
            return Err(refused(format!(
                "ballots were sealed and voters tagged once already, yet {} plaintext ballots and {} untagged participations are there now: they were added in the database",
                found.len(),
                untagged.len()
            )));
        }
        let mut per_election: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
        let plaintext: Vec<_> = found.iter().map(decode::plaintext_ballot).collect::<Result<_, _>>()?;
        for (election, _, _) in &plaintext {
            per_election.entry(election.as_str().to_owned()).or_default().0 += 1;
        }
        let mut tags = Vec::new();
        for d in &untagged {
            let id = d.get_document("_id").map_err(bad)?;
            let election = ElectionId::parse(id.get_str("e").map_err(bad)?).map_err(bad)?;
            let voter = id.get_str("v").map_err(bad)?.to_owned();
            per_election.entry(election.as_str().to_owned()).or_default().1 += 1;
            tags.push((id.clone(), self.keys.participation_tag(&election, &voter)));
        }
        for election in per_election.keys() {
            let recorded = self
                .timed(self.coll::<Document>("audit").find_one(doc! {
                    "e": election, "action": { "$in": ["box.counted", "box.sealed"] },
                }))
                .await?;
            if let Some(d) = recorded {
                return Err(refused(format!(
                    "election {election} has unsealed ballots or untagged voters, but the audit log already records its sealed box ({}): they were added in the database",
                    d.get_str("action").unwrap_or("box")
                )));
            }
        }
        for ((election, receipt, choices), d) in plaintext.iter().zip(&found) {
            let doc = docs::ballot(election, receipt, self.keys.seal(election, receipt, choices));
            let old_id = d.get("_id").cloned().ok_or_else(|| bad("a ballot has no _id"))?;
            self.in_transaction(|store, session| {
                let (doc, old_id) = (doc.clone(), old_id.clone());
                Box::pin(async move {
                    let sealed_box = store.coll::<Document>(docs::SEALED_BALLOTS);
                    match sealed_box.insert_one(doc).session(&mut *session).await {
                        Err(e) if errors::is_duplicate_key(&e) => {} // sealed by an earlier, interrupted run
                        other => {
                            other?;
                        }
                    }
                    store.coll::<Document>("ballots").delete_one(doc! { "_id": old_id }).session(&mut *session).await?;
                    Ok(Ok::<(), StoreError>(()))
                })
            })
            .await??;
        }
        for (id, tag) in tags {
            let bytes = mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: tag };
            self.timed(voters.update_one(doc! { "_id": id }, doc! { "$set": { "t": bytes } })).await?;
        }
        let mut report = Vec::new();
        let now = jiff::Timestamp::now();
        for (election, (ballots, tagged)) in &per_election {
            let entry = AuditEntry {
                actor: "system".into(),
                action: "box.upgraded".into(),
                election: Some(ElectionId::parse(election).map_err(bad)?),
                detail: serde_json::json!({ "ballots_sealed": ballots, "voters_tagged": tagged }),
            };
            turnout_store::Audit::append_audit(self, &entry, now).await?;
            report.push(format!("election {election}: {ballots} ballots sealed, {tagged} voters tagged"));
        }
        self.timed(old.drop()).await?;
        self.mark_done(SEAL_BALLOTS, doc! { "ballots": found.len() as i64, "voters": untagged.len() as i64 }).await?;
        Ok(report)
    }

    /// Re-hashes an unkeyed chain with the key; refused when it holds entries only a keyed
    /// chain has, or already verifies with the key.
    async fn key_audit_chain(&self) -> Result<Option<usize>, StoreError> {
        let outcome = self
            .in_transaction(|store, session| {
                Box::pin(async move {
                    let marker = store
                        .coll::<Document>("migrations")
                        .find_one(doc! { "_id": KEYED_AUDIT_UPGRADE })
                        .session(&mut *session)
                        .await?;
                    if marker.is_some() {
                        return Ok(Ok(None));
                    }
                    let mut cursor = store
                        .coll::<Document>("audit")
                        .find(doc! {})
                        .sort(doc! { "_id": 1 })
                        .session(&mut *session)
                        .await?;
                    let mut found = Vec::new();
                    while let Some(d) = cursor.next(&mut *session).await.transpose()? {
                        found.push(d);
                    }
                    let entries: Result<Vec<StoredEntry<'_>>, StoreError> = found
                        .iter()
                        .map(|d| {
                            Ok(StoredEntry {
                                seq: int(d, "_id")?,
                                at: int(d, "at")?,
                                actor: d.get_str("actor").map_err(bad)?,
                                action: d.get_str("action").map_err(bad)?,
                                election: d.get_str("e").unwrap_or(""),
                                detail: d.get_str("detail").map_err(bad)?,
                                prev_hash: d.get_str("prev_hash").map_err(bad)?,
                                hash: d.get_str("hash").map_err(bad)?,
                            })
                        })
                        .collect();
                    let entries = match entries {
                        Ok(e) => e,
                        Err(e) => return Ok(Err(e)),
                    };
                    if let Some(e) = entries.iter().find(|e| KEYED_ERA_ACTIONS.contains(&e.action)) {
                        return Ok(Err(refused(format!(
                            "entry {} ({}) is one only a keyed chain holds: the upgrade's record was removed from the database; check the chain against a head noted earlier (verify-audit --head)",
                            e.seq, e.action
                        ))));
                    }
                    if let Some(first) = entries.first()
                        && store.keys.audit_hash("", first.at, first.actor, first.action, first.election, first.detail)
                            == first.hash
                    {
                        return Ok(Err(refused(
                            "the chain is already keyed: the upgrade's record was removed from the database".into(),
                        )));
                    }
                    let (rewritten, problem) = rekey_chain(&store.keys, &entries);
                    for (seq, prev_hash, hash) in &rewritten {
                        store
                            .coll::<Document>("audit")
                            .update_one(doc! { "_id": seq }, doc! { "$set": { "prev_hash": prev_hash, "hash": hash } })
                            .session(&mut *session)
                            .await?;
                    }
                    if let Some((seq, _, hash)) = rewritten.last() {
                        store
                            .coll::<Document>("audit_head")
                            .update_one(doc! { "_id": "head" }, doc! { "$set": { "seq": seq, "hash": hash } })
                            .upsert(true)
                            .session(&mut *session)
                            .await?;
                    }
                    let finding = problem.clone().unwrap_or_else(|| "intact".to_owned());
                    if !rewritten.is_empty() {
                        let entry = chain_keyed_entry(rewritten.len(), &finding);
                        append_audit_in(store, session, &entry, jiff::Timestamp::now()).await?;
                    }
                    let record = doc! {
                        "_id": KEYED_AUDIT_UPGRADE, "at": jiff::Timestamp::now().as_second(),
                        "entries": rewritten.len() as i64, "unkeyed_chain": &finding,
                    };
                    match store.coll::<Document>("migrations").insert_one(record).session(&mut *session).await {
                        Err(e) if errors::is_duplicate_key(&e) => return Ok(Ok(None)),
                        other => other?,
                    };
                    Ok(Ok(Some((rewritten.len(), problem))))
                })
            })
            .await??;
        match &outcome {
            Some((_, Some(problem))) => tracing::warn!(event = "audit_chain_keyed_over_a_break", problem),
            Some((n, None)) if *n > 0 => tracing::info!(event = "audit_chain_keyed", entries = n),
            _ => {}
        }
        Ok(outcome.map(|(n, _)| n))
    }

    async fn fold_usernames(&self) -> Result<(), StoreError> {
        let done = self.coll::<Document>("migrations");
        let mut kept = 0;
        for (collection, field) in [("participation", "v"), ("voter_roll", "u"), ("otp_codes", "v")] {
            kept += self.fold_keys(collection, field).await?;
        }
        // The outbox keeps the voter in a plain field: folded in place.
        let outbox = self.coll::<Document>("outbox");
        let cursor = self.timed(outbox.find(doc! { "v": { "$regex": NOT_CANONICAL } })).await?;
        let mail: Vec<Document> = self.timed(cursor.try_collect()).await?;
        for m in mail {
            let (Some(id), Ok(v)) = (m.get("_id"), m.get_str("v")) else { continue };
            self.timed(outbox.update_one(doc! { "_id": id.clone() }, doc! { "$set": { "v": folded(v) } })).await?;
        }
        if kept > 0 {
            tracing::warn!(event = "usernames_folded_with_duplicates", kept);
        }
        let at = jiff::Timestamp::now().as_second();
        match self
            .timed(done.insert_one(doc! { "_id": FOLD_USERNAMES, "at": at, "duplicates_kept": kept as i64 }))
            .await
        {
            Err(StoreError::Conflict(_)) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Re-keys the documents of `collection` whose `_id.{field}` is not canonical;
    /// returns how many stayed because the folded key exists.
    async fn fold_keys(&self, collection: &str, field: &str) -> Result<u64, StoreError> {
        let coll = self.coll::<Document>(collection);
        let path = format!("_id.{field}");
        let cursor = self.timed(coll.find(doc! { path: { "$regex": NOT_CANONICAL } })).await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        let mut kept = 0;
        for original in found {
            let Ok(id) = original.get_document("_id") else { continue };
            let Ok(name) = id.get_str(field) else { continue };
            let mut new_id = id.clone();
            new_id.insert(field, folded(name));
            let mut copy = original.clone();
            copy.insert("_id", Bson::Document(new_id));
            let old_id = Bson::Document(id.clone());
            let moved = self
                .in_transaction(|store, session| {
                    let (copy, old_id) = (copy.clone(), old_id.clone());
                    let coll = store.coll::<Document>(collection);
                    Box::pin(async move {
                        match coll.insert_one(copy).session(&mut *session).await {
                            Err(e) if errors::is_duplicate_key(&e) => return Ok(Err(())),
                            other => other?,
                        };
                        coll.delete_one(doc! { "_id": old_id }).session(&mut *session).await?;
                        Ok(Ok(()))
                    })
                })
                .await?;
            if moved.is_err() {
                kept += 1;
            }
        }
        Ok(kept)
    }
}
