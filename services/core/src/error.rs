//! The one error body every service answers with, and its stable code table.
//!
//! `ApiError` is transport-neutral: the `http` module turns it into a response
//! (`{"error": {"code", "message", "request_id", ...}}` or an HTML page). Codes are a
//! public contract: scripts match on them, so never rename one.

use serde_json::{Map, Value};
use turnout_domain::schedule::WindowRefusal;
use turnout_store::{ChangeError, InvalidField, NominationError, StoreError};

/// Stable error codes, one per distinct thing a client can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    MalformedBody,
    InvalidField,
    UnsupportedMediaType,
    BodyTooLarge,
    NotAuthenticated,
    InvalidCredentials,
    NotVerified,
    NotEligible,
    Forbidden,
    WrongCode,
    CodeExpired,
    NoActiveCode,
    TooManyAttempts,
    ResendCooldown,
    ResendLimit,
    VoterLocked,
    LoginThrottled,
    NotFound,
    UnknownElection,
    UnknownCandidate,
    AlreadyExists,
    AlreadyVoted,
    Conflict,
    WindowNotOpen,
    WindowClosed,
    NominationsClosed,
    ResultsNotReady,
    CsrfFailed,
    DirectoryUnavailable,
    StoreUnavailable,
    Internal,
}

impl ErrorCode {
    /// The HTTP status for this code: the one place codes map to statuses.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedBody => 400,
            InvalidField | UnknownCandidate => 422,
            UnsupportedMediaType => 415,
            BodyTooLarge => 413,
            NotAuthenticated | InvalidCredentials | WrongCode | CodeExpired | NoActiveCode => 401,
            NotVerified | NotEligible | Forbidden | WindowNotOpen | WindowClosed | NominationsClosed
            | ResultsNotReady | CsrfFailed => 403,
            NotFound | UnknownElection => 404,
            AlreadyExists | AlreadyVoted | Conflict => 409,
            TooManyAttempts | ResendCooldown | ResendLimit | VoterLocked | LoginThrottled => 429,
            DirectoryUnavailable | StoreUnavailable => 503,
            Internal => 500,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedBody => "malformed_body",
            InvalidField => "invalid_field",
            UnsupportedMediaType => "unsupported_media_type",
            BodyTooLarge => "body_too_large",
            NotAuthenticated => "not_authenticated",
            InvalidCredentials => "invalid_credentials",
            NotVerified => "not_verified",
            NotEligible => "not_eligible",
            Forbidden => "forbidden",
            WrongCode => "wrong_code",
            CodeExpired => "code_expired",
            NoActiveCode => "no_active_code",
            TooManyAttempts => "too_many_attempts",
            ResendCooldown => "resend_cooldown",
            ResendLimit => "resend_limit",
            VoterLocked => "voter_locked",
            LoginThrottled => "login_throttled",
            NotFound => "not_found",
            UnknownElection => "unknown_election",
            UnknownCandidate => "unknown_candidate",
            AlreadyExists => "already_exists",
            AlreadyVoted => "already_voted",
            Conflict => "conflict",
            WindowNotOpen => "window_not_open",
            WindowClosed => "window_closed",
            NominationsClosed => "nominations_closed",
            ResultsNotReady => "results_not_ready",
            CsrfFailed => "csrf_failed",
            DirectoryUnavailable => "directory_unavailable",
            StoreUnavailable => "store_unavailable",
            Internal => "internal",
        }
    }
}

/// An error a client sees. `message` is written for the voter or officer reading it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds after which a retry makes sense (sent as `Retry-After`).
    pub retry_after: Option<u64>,
    /// Extra machine-readable fields merged into the error object (e.g. `attempts_left`).
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after: None, extra: Map::new() }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self.extra.insert("retry_after_secs".into(), secs.into());
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The JSON body, with the request id when one is known.
    pub fn body(&self, request_id: Option<&str>) -> Value {
        let mut inner = Map::new();
        inner.insert("code".into(), Value::String(self.code.as_str().into()));
        inner.insert("message".into(), Value::String(self.message.clone()));
        if let Some(id) = request_id {
            inner.insert("request_id".into(), Value::String(id.into()));
        }
        for (k, v) in &self.extra {
            inner.insert(k.clone(), v.clone());
        }
        serde_json::json!({ "error": inner })
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} was not found"))
    }

    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidField, format!("{field}: {reason}")).with("field", field)
    }

    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "Something went wrong on our side; it has been logged.")
    }

    pub fn store_unavailable() -> Self {
        Self::new(ErrorCode::StoreUnavailable, "The vote store is busy or unavailable; please retry in a few seconds.")
            .retry_after(2)
    }
}

// The port's and the domain's refusals, answered with the one body. They are plain
// errors down there (no HTTP); this is where each gets its code.

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // The client sees a code and the request id; the log keeps the cause.
        match &e {
            StoreError::Other(cause) => tracing::error!(event = "store_error", error = format!("{cause:#}")),
            StoreError::Unavailable(cause) => tracing::warn!(event = "store_unavailable", error = %cause),
            StoreError::Conflict(_) => {}
        }
        match e {
            StoreError::Unavailable(_) => ApiError::store_unavailable(),
            StoreError::Conflict(what) => ApiError::new(ErrorCode::AlreadyExists, what),
            StoreError::Other(_) => ApiError::internal(),
        }
    }
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::UnknownElection => ApiError::new(ErrorCode::UnknownElection, "There is no such election."),
            ChangeError::UnknownCandidate => {
                ApiError::new(ErrorCode::NotFound, "There is no such contest or candidate in this election.")
            }
            ChangeError::Refused(why) => ApiError::new(ErrorCode::Conflict, why),
            ChangeError::Store(e) => e.into(),
        }
    }
}

impl From<NominationError> for ApiError {
    fn from(e: NominationError) -> Self {
        use NominationError as N;
        let message = e.to_string();
        match e {
            N::UnknownElection => ApiError::new(ErrorCode::UnknownElection, "There is no such election."),
            N::UnknownContest => ApiError::invalid("contest", "not a contest of this election"),
            N::UnknownNomination => ApiError::new(ErrorCode::NotFound, "There is no such nomination."),
            N::PeriodClosed(why) => ApiError::new(ErrorCode::NominationsClosed, why),
            N::NotYours | N::OwnNomination => ApiError::new(ErrorCode::Forbidden, message),
            N::AlreadyNominated | N::AlreadySeconded => ApiError::new(ErrorCode::AlreadyExists, message),
            N::Stale { current } => ApiError::new(ErrorCode::Conflict, message).with("current_version", current),
            N::SecondLimit { .. } | N::Withdrawn | N::TooFewProposers { .. } | N::Refused(_) => {
                ApiError::new(ErrorCode::Conflict, message)
            }
            N::Invalid(field) => field.into(),
            N::Store(e) => e.into(),
        }
    }
}

impl From<InvalidField> for ApiError {
    fn from(e: InvalidField) -> Self {
        ApiError::invalid(e.field, e.reason)
    }
}

/// The window's refusal in the voter's words, with the moment as a machine-readable field.
impl From<WindowRefusal> for ApiError {
    fn from(e: WindowRefusal) -> Self {
        let message = e.to_string();
        match e {
            WindowRefusal::NotYetOpen { opens_at, .. } => {
                ApiError::new(ErrorCode::WindowNotOpen, message).with("opens_at", opens_at.to_string())
            }
            WindowRefusal::Closed { closes_at, .. } => {
                ApiError::new(ErrorCode::WindowClosed, message).with("closes_at", closes_at.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_code_message_request_id_and_extra_fields() {
        let err = ApiError::new(ErrorCode::WrongCode, "That code is not right").with("attempts_left", 3);
        let body = err.body(Some("req-1"));
        assert_eq!(body["error"]["code"], "wrong_code");
        assert_eq!(body["error"]["message"], "That code is not right");
        assert_eq!(body["error"]["request_id"], "req-1");
        assert_eq!(body["error"]["attempts_left"], 3);
    }

    #[test]
    fn every_code_maps_to_a_client_or_server_status() {
        assert_eq!(ErrorCode::AlreadyVoted.status(), 409);
        assert_eq!(ErrorCode::UnknownCandidate.status(), 422);
        assert_eq!(ErrorCode::DirectoryUnavailable.status(), 503);
        assert_eq!(ErrorCode::BodyTooLarge.as_str(), "body_too_large");
    }

    #[test]
    fn retry_after_is_in_body_and_field() {
        let err = ApiError::store_unavailable();
        assert_eq!(err.retry_after, Some(2));
        assert_eq!(err.body(None)["error"]["retry_after_secs"], 2);
    }

    #[test]
    fn refusals_from_below_keep_their_codes_and_fields() {
        let opens_at: jiff::Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
        let local = "2026-11-22 13:00 +01:00 (Europe/Berlin)".to_owned();
        let e = ApiError::from(WindowRefusal::NotYetOpen { opens_at, local });
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::WindowNotOpen, "Voting opens at 2026-11-22 13:00 +01:00 (Europe/Berlin).")
        );
        assert_eq!(e.body(None)["error"]["opens_at"], "2026-11-22T12:00:00Z");
        let e = ApiError::from(WindowRefusal::Closed { closes_at: opens_at, local: "13:00".into() });
        assert_eq!(e.code, ErrorCode::WindowClosed);
        assert_eq!(e.body(None)["error"]["closes_at"], "2026-11-22T12:00:00Z");

        let e = ApiError::from(InvalidField::new("title", "1-200 characters"));
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::InvalidField, "title: 1-200 characters"));
        assert_eq!(e.body(None)["error"]["field"], "title");

        assert_eq!(ApiError::from(StoreError::Unavailable("busy".into())).code, ErrorCode::StoreUnavailable);
        assert_eq!(ApiError::from(ChangeError::Refused("no".into())).code, ErrorCode::Conflict);
        assert_eq!(ApiError::from(ChangeError::UnknownElection).code, ErrorCode::UnknownElection);
    }
}
