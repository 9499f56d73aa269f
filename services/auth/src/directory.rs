//! The LDAP check: does this username and password open this directory entry, and what is
//! its email address. Every value that goes into a DN or a filter is escaped; an empty
//! password never reaches the network (it would be an anonymous bind that "succeeds").

use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, dn_escape, ldap_escape};
use secrecy::{ExposeSecret, SecretString};
use turnout_core::config::{BindStrategy, LdapSettings};
use turnout_core::domain::{Username, VoterEmail};

/// LDAP result code for a wrong DN or password.
const INVALID_CREDENTIALS: u32 = 49;

#[derive(Debug, Clone)]
pub struct DirectoryUser {
    pub username: Username,
    pub email: VoterEmail,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Wrong password, unknown user, or a value that can't be a user: all look the same.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("the directory entry has no usable email address")]
    NoEmail,
    /// The directory is down, slow or misconfigured.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
}

pub struct Directory {
    settings: LdapSettings,
}

impl Directory {
    pub fn new(settings: LdapSettings) -> Self {
        Self { settings }
    }

    /// Checks credentials against the directory and reads the user's email.
    #[tracing::instrument(skip_all, fields(username = %username))]
    pub async fn authenticate(
        &self,
        username: &Username,
        password: &SecretString,
    ) -> Result<DirectoryUser, DirectoryError> {
        if password.expose_secret().trim().is_empty() {
            return Err(DirectoryError::InvalidCredentials);
        }
        let conn_settings = LdapConnSettings::new().set_conn_timeout(self.settings.connect_timeout);
        let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, &self.settings.url)
            .await
            .map_err(|e| DirectoryError::Unavailable(format!("connect: {e}")))?;
        ldap3::drive!(conn);
        // One deadline over the whole conversation, beside the per-operation timeouts.
        let budget = self.settings.op_timeout * 3;
        let outcome = tokio::time::timeout(budget, self.check(&mut ldap, username, password)).await;
        let _ = tokio::time::timeout(Duration::from_millis(200), ldap.unbind()).await;
        outcome.unwrap_or_else(|_| Err(DirectoryError::Unavailable("directory did not answer in time".into())))
    }

    async fn check(
        &self,
        ldap: &mut ldap3::Ldap,
        username: &Username,
        password: &SecretString,
    ) -> Result<DirectoryUser, DirectoryError> {
        let op = self.settings.op_timeout;
        let mail_attr = self.settings.mail_attr.as_str();
        let (dn, email) = match &self.settings.bind {
            BindStrategy::DnTemplate(template) => {
                let dn = template.replace("{username}", &dn_escape(username.as_str()));
                bind(ldap, op, &dn, password.expose_secret()).await?;
                let email = read_mail(ldap, op, &dn, Scope::Base, "(objectClass=*)", mail_attr).await?;
                (dn, email)
            }
            BindStrategy::SearchThenBind { base, filter, service_dn, service_password } => {
                bind(ldap, op, service_dn, service_password.expose_secret()).await.map_err(|e| match e {
                    DirectoryError::InvalidCredentials => {
                        DirectoryError::Unavailable("the service account was refused".into())
                    }
                    other => other,
                })?;
                let filter = filter.replace("{username}", &ldap_escape(username.as_str()));
                let (dn, email) = find_user(ldap, op, base, &filter, mail_attr).await?;
                bind(ldap, op, &dn, password.expose_secret()).await?;
                (dn, email)
            }
        };
        let email = email.ok_or(DirectoryError::NoEmail)?;
        tracing::debug!(dn = %dn, "directory bind succeeded");
        Ok(DirectoryUser { username: username.clone(), email })
    }
}

async fn bind(ldap: &mut ldap3::Ldap, op: Duration, dn: &str, password: &str) -> Result<(), DirectoryError> {
    let result = ldap
        .with_timeout(op)
        .simple_bind(dn, password)
        .await
        .map_err(|e| DirectoryError::Unavailable(format!("bind: {e}")))?;
    match result.rc {
        0 => Ok(()),
        INVALID_CREDENTIALS => Err(DirectoryError::InvalidCredentials),
        // e.g. 34 invalid DN syntax: the username can't be an account.
        32 | 34 => Err(DirectoryError::InvalidCredentials),
        rc => Err(DirectoryError::Unavailable(format!("bind refused with result code {rc}"))),
    }
}

async fn read_mail(
    ldap: &mut ldap3::Ldap,
    op: Duration,
    base: &str,
    scope: Scope,
    filter: &str,
    mail_attr: &str,
) -> Result<Option<VoterEmail>, DirectoryError> {
    let (entries, _) = ldap
        .with_timeout(op)
        .search(base, scope, filter, vec![mail_attr])
        .await
        .and_then(|r| r.success())
        .map_err(|e| DirectoryError::Unavailable(format!("reading the entry: {e}")))?;
    Ok(entries.into_iter().next().and_then(|e| first_mail(SearchEntry::construct(e), mail_attr)))
}

async fn find_user(
    ldap: &mut ldap3::Ldap,
    op: Duration,
    base: &str,
    filter: &str,
    mail_attr: &str,
) -> Result<(String, Option<VoterEmail>), DirectoryError> {
    let (entries, _) = ldap
        .with_timeout(op)
        .search(base, Scope::Subtree, filter, vec![mail_attr])
        .await
        .and_then(|r| r.success())
        .map_err(|e| DirectoryError::Unavailable(format!("searching for the user: {e}")))?;
    // Zero or several matches: not one account, so not a login.
    if entries.len() != 1 {
        return Err(DirectoryError::InvalidCredentials);
    }
    let entry = SearchEntry::construct(entries.into_iter().next().expect("one entry"));
    let dn = entry.dn.clone();
    Ok((dn, first_mail(entry, mail_attr)))
}

fn first_mail(entry: SearchEntry, mail_attr: &str) -> Option<VoterEmail> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(mail_attr))
        .and_then(|(_, values)| values.iter().find_map(|v| VoterEmail::parse(v).ok()))
}
