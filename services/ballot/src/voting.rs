//! Casting a ballot: the rules in order, free of HTTP. Verified for this election, inside
//! the window (or its grace), each vote by its contest's rules, then one atomic store step
//! that checks the window again as it stands at that moment (an officer may just have
//! moved it) and the voter's constituencies, and records the ballot once.

use jiff::Timestamp;
use turnout_core::domain::Receipt;
use turnout_core::session::Session;
use turnout_core::store::{BallotBox, CastBallot, CastError, ChoiceError, Choices, Election, VoteError};
use turnout_core::{ApiError, ErrorCode};

pub async fn cast(
    store: &dyn BallotBox,
    election: &Election,
    session: &Session,
    choices: Choices,
    now: Timestamp,
) -> Result<Receipt, ApiError> {
    let verified_at = session.verified_at(&election.id).ok_or_else(|| {
        ApiError::new(ErrorCode::NotVerified, "Confirm the code we emailed you before voting.")
            .with("otp_url", format!("/e/{}/otp", election.id))
    })?;
    election.schedule.check_ballot(now, verified_at)?;
    election.check_choices(&choices).map_err(refused_choice)?;
    // The constituencies sign-in found this voter in; the store checks again, in the cast.
    let theirs = session.constituencies_in(&election.id);
    for contest in election.contests.iter().filter(|c| choices.contains_key(&c.id)) {
        if !contest.rules.voters.is_everyone() && !theirs.contains(&contest.id) {
            return Err(refused_choice(ChoiceError::NotInConstituency(contest.id.clone())));
        }
    }
    let cast = CastBallot {
        election: election.id.clone(),
        voter: session.sub.clone(),
        choices: election.canonical(choices),
        constituencies: theirs,
        verified_at,
        now,
    };
    store.cast_ballot(cast).await.map_err(|e| match e {
        CastError::AlreadyVoted => ApiError::new(
            ErrorCode::AlreadyVoted,
            "You have already voted in this election. Your first ballot counts; keep its receipt.",
        ),
        // The store's window is the latest word; its refusal says when it opens or closed.
        CastError::OutsideWindow(refusal) => refusal.into(),
        CastError::UnknownElection => ApiError::new(
            ErrorCode::UnknownElection,
            format!("There is no election called {:?}.", election.id.as_str()),
        ),
        // The store's own check, against the roll as it is now: a constituency refused.
        CastError::Choice(e) => refused_choice(e),
        CastError::Store(e) => e.into(),
    })
}

/// A vote the contest's rules or constituency refuse: 422 naming the contest.
fn refused_choice(e: ChoiceError) -> ApiError {
    let (code, field) = match &e {
        ChoiceError::UnknownContest(c) => (ErrorCode::UnknownCandidate, format!("choices.{c}")),
        ChoiceError::Vote { contest, reason: VoteError::NotACandidate(_) } => {
            (ErrorCode::UnknownCandidate, format!("choices.{contest}"))
        }
        ChoiceError::Vote { contest, .. } | ChoiceError::NotInConstituency(contest) => {
            (ErrorCode::InvalidField, format!("choices.{contest}"))
        }
    };
    ApiError::new(code, e.to_string()).with("field", field)
}
