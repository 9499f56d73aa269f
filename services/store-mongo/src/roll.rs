//! The voter roll in MongoDB: `voter_roll` `{_id: {e, u}, email, name, columns}`, indexed
//! by `_id.u` for a voter's memberships. An import's chunk is upserted in one transaction.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::ClientSession;
use mongodb::bson::{Document, doc};
use turnout_domain::{ElectionId, Username, VoterEmail};
use turnout_store::{MAX_PAGE, Roll, RollEntry, RollImport, RollRow, StoreError};

use crate::decode::{self, bad};
use crate::{MongoStore, docs};

#[async_trait]
impl Roll for MongoStore {
    async fn import_roll(&self, election: &ElectionId, entries: &[RollEntry]) -> Result<RollImport, StoreError> {
        let entries = entries.to_vec();
        let election = election.clone();
        self.in_transaction(|store, session| {
            let (entries, election) = (entries.clone(), election.clone());
            Box::pin(async move { Ok(Ok(upsert_roll_in(store, session, &election, &entries).await?)) })
        })
        .await?
    }

    async fn roll_memberships(
        &self,
        uid: &Username,
        elections: &[ElectionId],
    ) -> Result<Vec<(ElectionId, Option<VoterEmail>)>, StoreError> {
        let cursor = self.timed(self.coll::<Document>("voter_roll").find(docs::roll_of(uid, elections))).await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        let mut out = Vec::new();
        for d in found {
            let e = d.get_document("_id").and_then(|id| id.get_str("e")).map_err(decode::bad)?;
            if let Some(id) = elections.iter().find(|w| w.as_str() == e) {
                out.push((id.clone(), d.get_str("email").ok().and_then(|m| VoterEmail::parse(m).ok())));
            }
        }
        Ok(out)
    }

    async fn roll_columns(
        &self,
        uid: &Username,
        elections: &[ElectionId],
    ) -> Result<Vec<(ElectionId, BTreeMap<String, String>)>, StoreError> {
        let cursor = self.timed(self.coll::<Document>("voter_roll").find(docs::roll_of(uid, elections))).await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        let mut out = Vec::new();
        for d in found {
            let e = d.get_document("_id").and_then(|id| id.get_str("e")).map_err(decode::bad)?;
            if let Some(id) = elections.iter().find(|w| w.as_str() == e) {
                out.push((id.clone(), decode::columns(&d)?));
            }
        }
        Ok(out)
    }

    /// Counted here rather than by a query: values compare trimmed and in any case, which
    /// no index serves; this runs for the dashboard, a few times a minute.
    async fn roll_count_where(&self, election: &ElectionId, column: &str, value: &str) -> Result<u64, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("voter_roll")
                    .find(doc! { "_id.e": election.as_str(), format!("columns.{column}"): { "$exists": true } })
                    .projection(doc! { format!("columns.{column}"): 1 }),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        let wanted = turnout_store::Constituency::RollColumn { column: column.to_owned(), value: value.to_owned() };
        let mut n = 0;
        for d in &found {
            if wanted.admits_roll_row(&decode::columns(d)?) {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn list_roll(
        &self,
        election: &ElectionId,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<RollRow>, StoreError> {
        let mut filter = doc! { "_id.e": election.as_str() };
        if let Some(a) = after {
            filter.insert("_id.u", doc! { "$gt": a.as_str() });
        }
        let cursor = self
            .timed(
                self.coll::<Document>("voter_roll")
                    .find(filter)
                    .sort(doc! { "_id.u": 1 })
                    .limit(i64::from(limit.clamp(1, MAX_PAGE))),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                let uid = d.get_document("_id").and_then(|id| id.get_str("u")).map_err(bad)?;
                Ok(RollRow {
                    uid: Username::parse(uid).map_err(bad)?,
                    email: d.get_str("email").ok().map(str::to_owned),
                    name: d.get_str("name").ok().map(str::to_owned),
                    columns: decode::columns(d)?,
                })
            })
            .collect()
    }

    async fn roll_size(&self, election: &ElectionId) -> Result<u64, StoreError> {
        self.timed(self.coll::<Document>("voter_roll").count_documents(doc! { "_id.e": election.as_str() })).await
    }
}

/// Adds or updates roll entries inside the caller's transaction, counting what changed:
/// one read for the chunk's existing entries, one insert for the new ones, and an update
/// only for each entry that changed (a fresh import of 1,000 is three round trips).
pub(crate) async fn upsert_roll_in(
    store: &MongoStore,
    session: &mut ClientSession,
    election: &ElectionId,
    entries: &[RollEntry],
) -> mongodb::error::Result<RollImport> {
    let roll = store.coll::<Document>("voter_roll");
    let mut stats = RollImport::default();
    if entries.is_empty() {
        return Ok(stats);
    }
    let uids: Vec<&str> = entries.iter().map(|e| e.uid.as_str()).collect();
    let mut cursor =
        roll.find(doc! { "_id.e": election.as_str(), "_id.u": { "$in": uids } }).session(&mut *session).await?;
    let mut existing: std::collections::HashMap<String, Document> = std::collections::HashMap::new();
    while let Some(d) = cursor.next(&mut *session).await.transpose()? {
        if let Ok(u) = d.get_document("_id").and_then(|id| id.get_str("u")) {
            existing.insert(u.to_owned(), d);
        }
    }
    // New entries are inserted together at the end; a uid repeated within the chunk
    // compares against (and replaces) its earlier line, as one upsert after another would.
    let mut fresh: Vec<(String, Document)> = Vec::new();
    for e in entries {
        let fields = docs::roll_fields(e);
        let same = |d: &Document| {
            d.get("email") == fields.get("email")
                && d.get("name") == fields.get("name")
                && decode::columns(d).ok().as_ref() == Some(&e.columns)
        };
        if let Some((_, d)) = fresh.iter_mut().find(|(u, _)| u == e.uid.as_str()) {
            if same(d) {
                stats.unchanged += 1;
            } else {
                d.extend(fields);
                stats.updated += 1;
            }
            continue;
        }
        match existing.get(e.uid.as_str()) {
            Some(d) if same(d) => stats.unchanged += 1,
            Some(_) => {
                roll.update_one(docs::roll_id(election, &e.uid), doc! { "$set": fields.clone() })
                    .session(&mut *session)
                    .await?;
                existing.insert(e.uid.as_str().to_owned(), fields);
                stats.updated += 1;
            }
            None => {
                let mut d = docs::roll_id(election, &e.uid);
                d.extend(fields);
                fresh.push((e.uid.as_str().to_owned(), d));
                stats.added += 1;
            }
        }
    }
    if !fresh.is_empty() {
        roll.insert_many(fresh.into_iter().map(|(_, d)| d)).session(&mut *session).await?;
    }
    Ok(stats)
}
