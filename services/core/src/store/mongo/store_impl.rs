//! `Store` for `MongoStore`: every operation is the adapter's own (see the sibling
//! modules); this only routes the port's calls to them.

use super::*;

#[async_trait::async_trait]
impl Store for MongoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        MongoStore::ping(self).await
    }

    async fn create_election(&self, election: &NewElection, now: Timestamp) -> Result<(), StoreError> {
        MongoStore::create_election(self, election, now).await
    }

    async fn create_election_audited(
        &self,
        election: &NewElection,
        entry: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        MongoStore::create_election_audited(self, election, entry, now).await
    }

    async fn election(&self, id: &ElectionId) -> Result<Option<Election>, StoreError> {
        MongoStore::election(self, id).await
    }

    async fn list_elections(&self, after: Option<&ElectionId>, limit: u32) -> Result<Vec<ElectionSummary>, StoreError> {
        MongoStore::list_elections(self, after, limit).await
    }

    async fn import_roll(&self, election: &ElectionId, entries: &[RollEntry]) -> Result<RollImport, StoreError> {
        MongoStore::import_roll(self, election, entries).await
    }

    async fn roll_memberships(
        &self,
        uid: &Username,
        elections: &[ElectionId],
    ) -> Result<Vec<(ElectionId, Option<VoterEmail>)>, StoreError> {
        MongoStore::roll_memberships(self, uid, elections).await
    }

    async fn record_sign_out(&self, account: &Username, at: Timestamp) -> Result<(), StoreError> {
        MongoStore::record_sign_out(self, account, at).await
    }

    async fn sign_outs_since(&self, since: Timestamp, limit: u32) -> Result<Vec<(Username, Timestamp)>, StoreError> {
        MongoStore::sign_outs_since(self, since, limit).await
    }

    async fn purge_sign_outs(&self, before: Timestamp) -> Result<u64, StoreError> {
        MongoStore::purge_sign_outs(self, before).await
    }

    async fn sign_in_attempt(
        &self,
        keys: &SignInKeys,
        rules: &ThrottleRules,
        now: Timestamp,
    ) -> Result<Admission, StoreError> {
        MongoStore::sign_in_attempt(self, keys, rules, now).await
    }

    async fn sign_in_settled(
        &self,
        keys: &SignInKeys,
        outcome: AttemptOutcome,
        rules: &ThrottleRules,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        MongoStore::sign_in_settled(self, keys, outcome, rules, now).await
    }

    /// Expired rows only, all of them (the TTL index bounds how many there can be).
    async fn purge_sign_in_throttles(&self, _: &ThrottleRules, now: Timestamp, _: u32) -> Result<u64, StoreError> {
        MongoStore::purge_sign_in_throttles(self, now).await
    }

    async fn cast_ballot(&self, cast: CastBallot) -> Result<Receipt, CastError> {
        MongoStore::cast_ballot(self, cast).await
    }

    async fn receipt_in_box(&self, election: &ElectionId, receipt: &Receipt) -> Result<bool, StoreError> {
        MongoStore::receipt_in_box(self, election, receipt).await
    }

    async fn turnout(&self, election: &ElectionId) -> Result<Turnout, StoreError> {
        MongoStore::turnout(self, election).await
    }

    async fn issue_otp(
        &self,
        election: &ElectionId,
        voter: &Username,
        to: &VoterEmail,
        policy: OtpPolicy,
        now: Timestamp,
    ) -> Result<OtpIssue, IssueError> {
        MongoStore::issue_otp(self, election, voter, to, policy, now).await
    }

    async fn begin_otp_attempt(
        &self,
        election: &ElectionId,
        voter: &Username,
        max_attempts: u32,
        now: Timestamp,
    ) -> Result<OtpAttempt, AttemptError> {
        MongoStore::begin_otp_attempt(self, election, voter, max_attempts, now).await
    }

    async fn consume_otp(&self, election: &ElectionId, voter: &Username, generation: u32) -> Result<(), StoreError> {
        MongoStore::consume_otp(self, election, voter, generation).await
    }

    async fn record_otp_void(
        &self,
        election: &ElectionId,
        voter: &Username,
        policy: LockPolicy,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        MongoStore::record_otp_void(self, election, voter, policy, now).await
    }

    async fn otp_status(&self, election: &ElectionId, voter: &Username) -> Result<Option<OtpStatus>, StoreError> {
        MongoStore::otp_status(self, election, voter).await
    }

    async fn set_otp_extra(
        &self,
        election: &ElectionId,
        extra: Duration,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        MongoStore::set_otp_extra(self, election, extra, audit, now).await
    }

    async fn reserve_sends(
        &self,
        holder: &str,
        accounts: &[AccountLimits],
        wanted: u32,
        horizon: Duration,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Reservation, StoreError> {
        MongoStore::reserve_sends(self, holder, accounts, wanted, horizon, lease, now).await
    }

    async fn sender_health(&self) -> Result<Vec<SenderHealth>, StoreError> {
        MongoStore::sender_health(self).await
    }

    async fn claim_mail(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        MongoStore::claim_mail(self, worker, limit, lease, now).await
    }

    async fn record_outcomes(&self, worker: &str, outcomes: &[MailOutcome], now: Timestamp) -> Result<(), StoreError> {
        MongoStore::record_outcomes(self, worker, outcomes, now).await
    }

    async fn finish_batch(
        &self,
        worker: &str,
        outcomes: &[MailOutcome],
        reports: &[AccountReport],
        policy: QuarantinePolicy,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        MongoStore::finish_batch(self, worker, outcomes, reports, policy, now).await
    }

    async fn append_audit(&self, entry: &AuditEntry, now: Timestamp) -> Result<(), StoreError> {
        MongoStore::append_audit(self, entry, now).await
    }

    async fn list_audit(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        MongoStore::list_audit(self, after, limit).await
    }

    async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        MongoStore::verify_audit(self).await
    }

    async fn edit_election(
        &self,
        id: &ElectionId,
        edit: &ElectionEdit,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        MongoStore::edit_election(self, id, edit, audit, now).await
    }

    async fn nominate_candidate(
        &self,
        election: &ElectionId,
        contest: &ContestId,
        candidate: &NewCandidate,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        MongoStore::nominate_candidate(self, election, contest, candidate, audit, now).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn decide_candidate(
        &self,
        election: &ElectionId,
        contest: &ContestId,
        candidate: &CandidateId,
        decision: Decision,
        reason: &str,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        MongoStore::decide_candidate(self, election, contest, candidate, decision, reason, audit, now).await
    }

    async fn list_candidates(
        &self,
        election: &ElectionId,
        after: Option<(&ContestId, &CandidateId)>,
        limit: u32,
    ) -> Result<Vec<CandidateRow>, StoreError> {
        MongoStore::list_candidates(self, election, after, limit).await
    }

    async fn extend_close(
        &self,
        election: &ElectionId,
        new_close: Timestamp,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        MongoStore::extend_close(self, election, new_close, audit, now).await
    }

    async fn close_now(
        &self,
        election: &ElectionId,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Timestamp, ChangeError> {
        MongoStore::close_now(self, election, audit, now).await
    }

    async fn tally(&self, election: &ElectionId) -> Result<Tally, StoreError> {
        MongoStore::tally(self, election).await
    }

    async fn list_roll(
        &self,
        election: &ElectionId,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<RollRow>, StoreError> {
        MongoStore::list_roll(self, election, after, limit).await
    }

    async fn roll_size(&self, election: &ElectionId) -> Result<u64, StoreError> {
        MongoStore::roll_size(self, election).await
    }

    async fn create_import(
        &self,
        job: &ImportJob,
        lease: &ImportLease,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        MongoStore::create_import(self, job, lease, audit, now).await
    }

    async fn claim_import(
        &self,
        job: &str,
        lease: &ImportLease,
        now: Timestamp,
    ) -> Result<Option<ImportJob>, StoreError> {
        MongoStore::claim_import(self, job, lease, now).await
    }

    async fn import_chunk(
        &self,
        job: &str,
        lease: &ImportLease,
        chunk: &ImportChunk,
        now: Timestamp,
    ) -> Result<ImportJob, StoreError> {
        MongoStore::import_chunk(self, job, lease, chunk, now).await
    }

    async fn finish_import(
        &self,
        job: &str,
        owner: &str,
        state: ImportState,
        message: Option<&str>,
        now: Timestamp,
    ) -> Result<ImportJob, StoreError> {
        MongoStore::finish_import(self, job, owner, state, message, now).await
    }

    async fn import_job(&self, job: &str) -> Result<Option<ImportJob>, StoreError> {
        MongoStore::import_job(self, job).await
    }

    async fn import_errors(&self, job: &str, after_line: u64, limit: u32) -> Result<Vec<RowError>, StoreError> {
        MongoStore::import_errors(self, job, after_line, limit).await
    }

    async fn running_imports(&self) -> Result<Vec<ImportJob>, StoreError> {
        MongoStore::running_imports(self).await
    }

    async fn record_activity(&self, counts: &[ActivityCount]) -> Result<(), StoreError> {
        MongoStore::record_activity(self, counts).await
    }

    async fn activity(&self, election: &ElectionId, since_minute: i64) -> Result<Vec<ActivityCount>, StoreError> {
        MongoStore::activity(self, election, since_minute).await
    }

    async fn outbox_summary(&self, election: &ElectionId, now: Timestamp) -> Result<OutboxSummary, StoreError> {
        MongoStore::outbox_summary(self, election, now).await
    }

    async fn list_outbox(
        &self,
        election: &ElectionId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<OutboxPage, StoreError> {
        MongoStore::list_outbox(self, election, before, limit).await
    }

    async fn report_status(
        &self,
        service: &str,
        ok: bool,
        detail: &serde_json::Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        MongoStore::report_status(self, service, ok, detail, now).await
    }

    async fn service_status(&self) -> Result<Vec<ServiceStatus>, StoreError> {
        MongoStore::service_status(self).await
    }
}
