//! Staff contacts on SQLite.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::params;
use jiff::Timestamp;

use turnout_domain::{Username, VoterEmail};
use turnout_store::rules::ts;
use turnout_store::{MAX_STAFF_CONTACTS, StaffContact, StaffContacts, StoreError};

use crate::SqliteStore;
use crate::error::{SqlResult, parsed};

#[async_trait]
impl StaffContacts for SqliteStore {
    async fn record_staff_contact(&self, contact: &StaffContact) -> Result<(), StoreError> {
        let c = contact.clone();
        self.run(move |conn| {
            if c.admin || c.officer {
                conn.execute(
                    "INSERT INTO staff_contacts (username, email, admin, officer, seen_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (username) DO UPDATE SET email = ?2, admin = ?3, officer = ?4, seen_at = ?5",
                    params![c.username.as_str(), c.email.as_str(), c.admin, c.officer, c.seen_at.as_second()],
                )
                .sql()?;
            } else {
                conn.execute("DELETE FROM staff_contacts WHERE username = ?1", [c.username.as_str()]).sql()?;
            }
            Ok(())
        })
        .await
    }

    async fn officer_contacts(&self, since: Timestamp) -> Result<Vec<StaffContact>, StoreError> {
        self.run(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT username, email, admin, officer, seen_at FROM staff_contacts
                     WHERE officer AND seen_at >= ?1 ORDER BY seen_at DESC, username LIMIT ?2",
                )
                .sql()?;
            let rows = stmt
                .query_map(params![since.as_second(), MAX_STAFF_CONTACTS], |r| {
                    Ok(StaffContact {
                        username: parsed(0, r.get(0)?, Username::parse)?,
                        email: parsed(1, r.get(1)?, VoterEmail::parse)?,
                        admin: r.get(2)?,
                        officer: r.get(3)?,
                        seen_at: ts(r.get(4)?),
                    })
                })
                .sql()?;
            rows.collect::<Result<Vec<_>, _>>().sql()
        })
        .await
    }
}
