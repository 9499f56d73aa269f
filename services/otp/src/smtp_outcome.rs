//! What an SMTP answer means for the message and for the account that sent it. Pure, so
//! the whole table is unit-tested; `classify_lettre` adapts lettre's error type.

/// What happened on the wire, reduced to what matters for classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Accepted,
    /// An SMTP reply code and its text (which holds the enhanced status, e.g. `5.1.8`).
    Reply {
        code: u16,
        text: String,
    },
    /// Connection refused or dropped, TLS failure, DNS: nothing the provider said.
    Connection(String),
    /// No answer within the send timeout.
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Sent,
    /// Try again later, preferably on another account.
    Retry {
        reason: String,
    },
    /// Throttling (`421 4.7.0`): retry, and count a strike against the account.
    RetryWithStrike {
        reason: String,
    },
    /// The account is blocked, over quota or refused our login: quarantine it; the
    /// message goes to another account at once.
    QuarantineAccount {
        reason: String,
    },
    /// The recipient does not exist: fail the message and tell the voter.
    BadRecipient {
        reason: String,
    },
    /// Any other permanent refusal of this message.
    FailMessage {
        reason: String,
    },
}

/// The `x.y.z` enhanced status at the start of the reply text, if any.
fn enhanced(text: &str) -> Option<&str> {
    let first = text.split_whitespace().next()?;
    let parts: Vec<&str> = first.split('.').collect();
    (parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))).then_some(first)
}

pub fn classify(attempt: &Attempt) -> Verdict {
    match attempt {
        Attempt::Accepted => Verdict::Sent,
        Attempt::Timeout => Verdict::Retry { reason: "the mail server did not answer in time".into() },
        Attempt::Connection(e) => Verdict::Retry { reason: format!("could not talk to the mail server: {e}") },
        Attempt::Reply { code, text } => {
            let reason = format!("{code} {text}").trim().to_owned();
            let status = enhanced(text);
            match (*code, status) {
                // Quota, block and policy answers about the sending account.
                (_, Some("5.4.5" | "5.2.0" | "5.1.8" | "5.7.0" | "4.4.5")) => Verdict::QuarantineAccount { reason },
                (535 | 534 | 530, _) => Verdict::QuarantineAccount { reason: format!("login refused: {reason}") },
                (421, _) => Verdict::RetryWithStrike { reason },
                (400..=499, _) => Verdict::Retry { reason },
                // The address is wrong: no account will do better.
                (_, Some("5.1.1" | "5.1.0" | "5.1.2" | "5.1.3" | "5.1.10")) | (553, None) => {
                    Verdict::BadRecipient { reason }
                }
                (500..=599, _) => Verdict::FailMessage { reason },
                _ => Verdict::Retry { reason },
            }
        }
    }
}

/// lettre's outcome as an `Attempt`.
pub fn from_lettre(result: Result<(), lettre::transport::smtp::Error>) -> Attempt {
    match result {
        Ok(()) => Attempt::Accepted,
        Err(e) => match e.status() {
            Some(code) => Attempt::Reply {
                code: code.to_string().parse().unwrap_or(0),
                text: std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default(),
            },
            None if e.is_timeout() => Attempt::Timeout,
            None => Attempt::Connection(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> Verdict {
        classify(&Attempt::Reply { code, text: text.into() })
    }

    #[test]
    fn the_classification_table() {
        let table: &[(u16, &str, &str)] = &[
            (550, "5.4.5 Daily sending quota exceeded", "quarantine"),
            (554, "5.2.0 Quota exceeded", "quarantine"),
            (550, "5.1.8 Sender address blocked", "quarantine"),
            (535, "5.7.8 Authentication credentials invalid", "quarantine"),
            (421, "4.7.0 Try again later, closing connection", "strike"),
            (421, "Service not available", "strike"),
            (432, "4.3.2 Too many concurrent sessions", "retry"),
            (450, "4.2.1 Mailbox busy", "retry"),
            (451, "4.3.0 Local error", "retry"),
            (550, "5.1.1 The email account that you tried to reach does not exist", "bad_recipient"),
            (553, "mailbox name not allowed", "bad_recipient"),
            (552, "5.3.4 Message too big", "fail"),
        ];
        for (code, text, want) in table {
            let got = match reply(*code, text) {
                Verdict::QuarantineAccount { .. } => "quarantine",
                Verdict::RetryWithStrike { .. } => "strike",
                Verdict::Retry { .. } => "retry",
                Verdict::BadRecipient { .. } => "bad_recipient",
                Verdict::FailMessage { .. } => "fail",
                Verdict::Sent => "sent",
            };
            assert_eq!(got, *want, "{code} {text}");
        }
    }

    #[test]
    fn silence_and_refused_connections_are_retried() {
        assert!(matches!(classify(&Attempt::Timeout), Verdict::Retry { .. }));
        assert!(matches!(classify(&Attempt::Connection("refused".into())), Verdict::Retry { .. }));
        assert_eq!(classify(&Attempt::Accepted), Verdict::Sent);
    }

    #[test]
    fn reasons_keep_the_provider_text_for_officers() {
        match reply(550, "5.1.8 Sender address blocked") {
            Verdict::QuarantineAccount { reason } => assert_eq!(reason, "550 5.1.8 Sender address blocked"),
            other => panic!("{other:?}"),
        }
    }
}
