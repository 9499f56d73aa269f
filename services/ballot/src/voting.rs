//! Casting a ballot: the rules in order, free of HTTP. Verified for this election, inside
//! the window (or its grace), only approved candidates, then one atomic store step.

use jiff::Timestamp;
use turnout_core::domain::{Receipt, Username};
use turnout_core::session::Session;
use turnout_core::store::{CastError, ChoiceError, Choices, Election, Store};
use turnout_core::{ApiError, ErrorCode};

pub async fn cast(
    store: &dyn Store,
    election: &Election,
    session: &Session,
    choices: &Choices,
    now: Timestamp,
) -> Result<Receipt, ApiError> {
    let verified_at = session.verified_at(&election.id).ok_or_else(|| {
        ApiError::new(ErrorCode::NotVerified, "Confirm the code we emailed you before voting.")
            .with("otp_url", format!("/e/{}/otp", election.id))
    })?;
    election.schedule.check_ballot(now, verified_at)?;
    election
        .check_choices(choices)
        .map_err(|e: ChoiceError| ApiError::new(ErrorCode::UnknownCandidate, e.to_string()).with("field", "choices"))?;
    record(store, election, &session.sub, choices).await
}

async fn record(
    store: &dyn Store,
    election: &Election,
    voter: &Username,
    choices: &Choices,
) -> Result<Receipt, ApiError> {
    store.cast_ballot(&election.id, voter, choices).await.map_err(|e| match e {
        CastError::AlreadyVoted => ApiError::new(
            ErrorCode::AlreadyVoted,
            "You have already voted in this election. Your first ballot counts; keep its receipt.",
        ),
        CastError::Store(e) => e.into(),
    })
}
