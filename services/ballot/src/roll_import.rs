//! Voter roll imports: a CSV of `uid[,email[,name]]` (a header row naming the columns is
//! optional; with one, any other column such as `faculty` is kept on the roll for contests
//! with a constituency), processed in chunks of at most 1,000 rows. The upload goes to a file first,
//! so memory stays flat however large the roll; each chunk commits together with the
//! job's progress, so a restart resumes after the last committed chunk, and re-importing
//! the same file changes nothing.
//!
//! Each run of an import holds a lease in the store ([`ImportLease`]), renewed by every
//! chunk. Every ballot process sweeps for running imports whose lease has passed (their
//! process stopped) and takes them over, one process per import; the old run's writes
//! are refused from then on. So two replicas never import the same file at once, and an
//! import left by a crash resumes within the lease (`TURNOUT_IMPORT_LEASE_SECS`) plus
//! half of it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use jiff::Timestamp;
use turnout_core::domain::{Username, VoterEmail};
use turnout_core::store::{
    ImportChunk, ImportJob, ImportLease, ImportState, Imports, MAX_COLUMN_VALUE, MAX_ROLL_COLUMNS, RollEntry, RowError,
    valid_column,
};

/// Rows per committed chunk.
pub const CHUNK_ROWS: usize = 1000;
/// The most data rows one roll file may have: ten times the largest university, and the
/// bound on the duplicate check's memory (a few tens of MB at most).
pub const MAX_ROLL_ROWS: u64 = 1_000_000;
/// The longest name kept on the roll.
const MAX_NAME: usize = 200;

/// Where each column is, from the header row or by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    uid: usize,
    email: Option<usize>,
    name: Option<usize>,
    /// Other named columns (`faculty`, `year`, …), at most `MAX_ROLL_COLUMNS`.
    named: Vec<(String, usize)>,
}

impl Columns {
    pub const POSITIONAL: Columns = Columns { uid: 0, email: Some(1), name: Some(2), named: Vec::new() };

    /// A first row with a cell `uid` is a header; otherwise columns are positional. Other
    /// headers are named columns, written lower case with `_` for spaces; one that still
    /// is not a column name (punctuation, too long) is not kept.
    pub fn detect(first: &csv::StringRecord) -> Option<Columns> {
        let find = |name: &str| first.iter().position(|c| c.trim().eq_ignore_ascii_case(name));
        let uid = find("uid")?;
        let (email, name) = (find("email").or_else(|| find("mail")), find("name"));
        let named = first
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != uid && Some(*i) != email && Some(*i) != name)
            .map(|(i, h)| (h.trim().to_lowercase().replace(' ', "_"), i))
            .filter(|(h, _)| valid_column(h))
            .take(MAX_ROLL_COLUMNS)
            .collect();
        Some(Columns { uid, email, name, named })
    }
}

/// One data row: an entry for the roll, or the reason it was refused.
pub fn parse_row(record: &csv::StringRecord, columns: &Columns) -> Result<RollEntry, String> {
    let cell = |i: Option<usize>| i.and_then(|i| record.get(i)).map(str::trim).filter(|c| !c.is_empty());
    let raw_uid = cell(Some(columns.uid)).ok_or("the uid is empty")?;
    let uid = Username::parse(raw_uid).map_err(|e| format!("uid {raw_uid:?}: {e}"))?;
    let email = match cell(columns.email) {
        Some(raw) => Some(VoterEmail::parse(raw).map_err(|e| format!("email {raw:?}: {e}"))?),
        None => None,
    };
    let name = match cell(columns.name) {
        Some(n) if n.chars().count() > MAX_NAME => {
            return Err(format!("the name is longer than {MAX_NAME} characters"));
        }
        Some(n) => Some(n.to_owned()),
        None => None,
    };
    let mut named = std::collections::BTreeMap::new();
    for (column, i) in &columns.named {
        if let Some(value) = cell(Some(*i)) {
            if value.chars().count() > MAX_COLUMN_VALUE {
                return Err(format!("the {column} is longer than {MAX_COLUMN_VALUE} characters"));
            }
            named.insert(column.clone(), value.to_owned());
        }
    }
    Ok(RollEntry { uid, email, name, columns: named })
}

fn reader(path: &Path) -> anyhow::Result<csv::Reader<std::fs::File>> {
    Ok(csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_path(path)?)
}

/// Counts the data rows of an uploaded file (streaming), and checks it is CSV at all.
pub fn count_rows(path: &Path) -> anyhow::Result<u64> {
    let mut rows = reader(path)?;
    let mut record = csv::StringRecord::new();
    let (mut n, mut first) = (0u64, true);
    while rows.read_record(&mut record).context("the file is not readable as CSV")? {
        if first && Columns::detect(&record).is_some() {
            first = false;
            continue;
        }
        first = false;
        n += 1;
    }
    Ok(n)
}

/// Runs (or resumes) imports: one task per job, reading the file chunk by chunk.
#[derive(Clone)]
pub struct Importer {
    store: Arc<dyn Imports>,
    dir: PathBuf,
    lease_for: std::time::Duration,
}

impl Importer {
    pub fn new(store: Arc<dyn Imports>, dir: PathBuf, lease_for: std::time::Duration) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating the import directory {}", dir.display()))?;
        Ok(Self { store, dir, lease_for })
    }

    /// A lease for a new run of an import: its own owner id, valid for `lease_for`.
    pub fn new_lease(&self) -> ImportLease {
        ImportLease { owner: uuid::Uuid::new_v4().simple().to_string(), until: self.lease_until() }
    }

    fn lease_until(&self) -> Timestamp {
        Timestamp::now() + self.lease_for
    }

    /// Where the upload of `job` is kept until its import ends.
    pub fn file_of(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{job}.csv"))
    }

    /// Runs `job` under `lease` (from `create_import` or `claim_import`) in the background.
    pub fn start(&self, job: ImportJob, lease: ImportLease) {
        let this = self.clone();
        tokio::spawn(async move {
            let id = job.id.clone();
            let outcome = this.run(job, &lease).await;
            let (state, message) = match &outcome {
                Ok(()) => (ImportState::Done, None),
                Err(e) => (ImportState::Failed, Some(format!("{e:#}"))),
            };
            // Refused unless this run still holds the import: a run that was taken over
            // leaves the job, and its file, to the run that took it.
            match this.store.finish_import(&id, &lease.owner, state, message.as_deref(), Timestamp::now()).await {
                Ok(done) => {
                    if let Err(e) = &outcome {
                        tracing::error!(event = "roll_import_failed", import = %id, error = format!("{e:#}"));
                    }
                    tracing::info!(
                        event = "roll_import_finished",
                        import = %id,
                        state = state.as_str(),
                        rows = done.rows_done,
                        added = done.added,
                        rejected = done.rejected
                    );
                    let _ = std::fs::remove_file(this.file_of(&id));
                }
                Err(turnout_core::store::StoreError::Conflict(why)) => {
                    tracing::warn!(event = "roll_import_handed_over", import = %id, reason = %why)
                }
                Err(e) => tracing::error!(event = "roll_import_unrecorded", import = %id, error = %e),
            }
        });
    }

    /// Takes over every running import whose lease has passed (its process stopped) and
    /// continues it from its last chunk. Returns how many this process took.
    pub async fn resume_abandoned(&self) -> anyhow::Result<usize> {
        let mut taken = 0;
        for job in self.store.running_imports().await? {
            let lease = self.new_lease();
            if let Some(job) = self.store.claim_import(&job.id, &lease, Timestamp::now()).await? {
                tracing::info!(event = "roll_import_resumed", import = %job.id, from_row = job.rows_done);
                self.start(job, lease);
                taken += 1;
            }
        }
        Ok(taken)
    }

    /// Sweeps for abandoned imports every half lease, until the server stops.
    pub async fn sweep(self) {
        loop {
            tokio::time::sleep(self.lease_for / 2).await;
            if let Err(e) = self.resume_abandoned().await {
                tracing::warn!(event = "roll_import_sweep_failed", error = format!("{e:#}"));
            }
        }
    }

    async fn run(&self, job: ImportJob, lease: &ImportLease) -> anyhow::Result<()> {
        let path = self.file_of(&job.id);
        anyhow::ensure!(path.exists(), "the uploaded file is gone; upload it again (importing twice is harmless)");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<ImportChunk>(1);
        let skip = job.rows_done;
        // The CSV is read on a blocking thread, one chunk ahead of the store at most.
        let reading = tokio::task::spawn_blocking(move || read_chunks(&path, skip, &tx));
        let mut lease = lease.clone();
        while let Some(chunk) = rx.recv().await {
            lease.until = self.lease_until();
            self.store.import_chunk(&job.id, &lease, &chunk, Timestamp::now()).await?;
        }
        reading.await.context("the reader stopped")?
    }
}

/// The voters a file has named so far, by canonical uid, to report a row that names one
/// again (`ST000001` after `st000001`). Keyed by a hash, not the uid, so a million rows
/// cost a few tens of MB.
#[derive(Default)]
struct SeenVoters {
    lines: std::collections::HashMap<u64, u64>,
    hasher: std::hash::RandomState,
}

impl SeenVoters {
    /// The line that first named this voter, if another did; else records `line`.
    fn first_line(&mut self, uid: &Username, line: u64) -> Option<u64> {
        use std::hash::BuildHasher;
        let first = *self.lines.entry(self.hasher.hash_one(uid)).or_insert(line);
        (first != line).then_some(first)
    }
}

/// One data row checked against the rows before it.
fn checked_row(
    record: &csv::StringRecord,
    columns: &Columns,
    line: u64,
    seen: &mut SeenVoters,
) -> Result<RollEntry, String> {
    let entry = parse_row(record, columns)?;
    match seen.first_line(&entry.uid, line) {
        Some(first) => Err(format!("uid {} is the same voter as line {first}", entry.uid.as_str())),
        None => Ok(entry),
    }
}

/// Sends the data rows after the first `skip` as chunks of at most `CHUNK_ROWS`. The
/// skipped rows are still read, so a resumed import reports the same duplicates.
fn read_chunks(path: &Path, skip: u64, tx: &tokio::sync::mpsc::Sender<ImportChunk>) -> anyhow::Result<()> {
    let mut rows = reader(path)?;
    let mut record = csv::StringRecord::new();
    let mut columns = Columns::POSITIONAL;
    let (mut first, mut seen) = (true, 0u64);
    let mut voters = SeenVoters::default();
    let mut chunk = ImportChunk::default();
    while rows.read_record(&mut record).context("reading the CSV")? {
        if first {
            first = false;
            if let Some(header) = Columns::detect(&record) {
                columns = header;
                continue;
            }
        }
        seen += 1;
        let line = record.position().map_or(0, |p| p.line());
        if seen <= skip {
            let _ = checked_row(&record, &columns, line, &mut voters);
            continue;
        }
        match checked_row(&record, &columns, line, &mut voters) {
            Ok(entry) => chunk.entries.push(entry),
            Err(reason) => chunk.errors.push(RowError { line, reason }),
        }
        chunk.rows += 1;
        if chunk.rows as usize >= CHUNK_ROWS && tx.blocking_send(std::mem::take(&mut chunk)).is_err() {
            anyhow::bail!("the import stopped");
        }
    }
    if chunk.rows > 0 && tx.blocking_send(chunk).is_err() {
        anyhow::bail!("the import stopped");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cells: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(cells.to_vec())
    }

    #[test]
    fn other_headers_are_named_columns_for_constituencies() {
        let cols = Columns::detect(&record(&["uid", "Faculty", "Year of study", "e-mail?", "email"])).unwrap();
        let e = parse_row(&record(&["s1", " Science ", "2", "x", "s1@uni.test"]), &cols).unwrap();
        let want: std::collections::BTreeMap<String, String> =
            [("faculty".into(), "Science".into()), ("year_of_study".into(), "2".into())].into();
        assert_eq!(e.columns, want, "an unusable header is not kept");
        let long = "x".repeat(MAX_COLUMN_VALUE + 1);
        assert!(parse_row(&record(&["s1", &long, "", "", ""]), &cols).unwrap_err().contains("faculty"));
        let wide: Vec<String> = std::iter::once("uid".to_owned()).chain((0..20).map(|i| format!("c{i}"))).collect();
        let wide = Columns::detect(&csv::StringRecord::from(wide)).unwrap();
        assert_eq!(wide.named.len(), MAX_ROLL_COLUMNS);
    }

    #[test]
    fn a_header_names_the_columns_in_any_order() {
        let cols = Columns::detect(&record(&["name", "UID", "email"])).unwrap();
        let e = parse_row(&record(&["Ada L", "student00001", "ada@uni.test"]), &cols).unwrap();
        assert_eq!(e.uid.as_str(), "student00001");
        assert_eq!(e.email.unwrap().as_str(), "ada@uni.test");
        assert_eq!(e.name.as_deref(), Some("Ada L"));
        assert!(Columns::detect(&record(&["student00001", "x@y.z"])).is_none(), "data taken for a header");
    }

    #[test]
    fn two_spellings_of_one_voter_are_one_entry_and_the_second_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roll.csv");
        std::fs::write(&path, "uid,email\nST000001,a@u.test\nst000002,b@u.test\n st000001 ,c@u.test\nSt000002\n")
            .unwrap();
        for skip in [0, 1, 3] {
            let (tx, mut rx) = tokio::sync::mpsc::channel(8);
            read_chunks(&path, skip, &tx).unwrap();
            drop(tx);
            let mut chunks = Vec::new();
            while let Ok(c) = rx.try_recv() {
                chunks.push(c);
            }
            let entries: Vec<String> =
                chunks.iter().flat_map(|c| c.entries.iter().map(|e| e.uid.as_str().to_owned())).collect();
            let errors: Vec<(u64, String)> =
                chunks.iter().flat_map(|c| c.errors.iter().map(|e| (e.line, e.reason.clone()))).collect();
            let want_entries: Vec<&str> = ["st000001", "st000002"].into_iter().skip(skip as usize).collect();
            assert_eq!(entries, want_entries, "skip {skip}");
            let want_errors: Vec<(u64, String)> = [
                (4, "uid st000001 is the same voter as line 2".to_owned()),
                (5, "uid st000002 is the same voter as line 3".to_owned()),
            ]
            .into_iter()
            .filter(|(line, _)| *line > skip + 1)
            .collect();
            assert_eq!(errors, want_errors, "skip {skip}: a resumed import reports the same duplicates");
        }
    }

    #[test]
    fn bad_rows_say_why() {
        let cols = Columns::POSITIONAL;
        let cases = [
            (vec!["", "a@b.c"], "the uid is empty"),
            (vec!["bad uid!"], "uid"),
            (vec!["student00001", "not-an-email"], "email"),
        ];
        for (cells, why) in cases {
            let err = parse_row(&record(&cells), &cols).unwrap_err();
            assert!(err.contains(why), "{cells:?}: {err}");
        }
        let long = "x".repeat(201);
        assert!(parse_row(&record(&["student00001", "", &long]), &cols).unwrap_err().contains("name"));
        // Optional columns may be missing or empty.
        let e = parse_row(&record(&["student00002"]), &cols).unwrap();
        assert_eq!((e.email, e.name), (None, None));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any line of a CSV upload is either a roll entry with a valid uid or a reason.
        #[test]
        fn any_roll_line_parses_or_is_refused_with_a_reason(line in any::<String>(), header in any::<bool>()) {
            let text = if header { format!("email,uid\n{line}\n") } else { format!("{line}\n") };
            let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
            let mut records = reader.records().filter_map(Result::ok);
            let Some(first) = records.next() else { return Ok(()) };
            let (columns, rows): (Columns, Vec<csv::StringRecord>) = match Columns::detect(&first) {
                Some(c) => (c, records.collect()),
                None => (Columns::POSITIONAL, std::iter::once(first).chain(records).collect()),
            };
            for row in rows {
                match parse_row(&row, &columns) {
                    Ok(entry) => prop_assert!(Username::parse(entry.uid.as_str()).is_ok()),
                    Err(reason) => prop_assert!(!reason.is_empty()),
                }
            }
        }

        #[test]
        fn well_formed_rows_are_accepted(uid in "[a-z][a-z0-9]{0,20}", host in "[a-z]{1,10}") {
            let record = csv::StringRecord::from(vec![uid.clone(), format!("{uid}@{host}.example")]);
            let entry = parse_row(&record, &Columns::POSITIONAL).unwrap();
            prop_assert_eq!(entry.uid.as_str(), uid.as_str());
        }
    }
}
