//! An `ldap_filter` eligibility is parsed when the election is saved, with the parser the
//! auth service's LDAP client (ldap3) runs at every sign-in: a filter it cannot read is
//! the admin's 422 now, never a directory error for every voter on election day.

use turnout_core::ApiError;
use turnout_core::store::{Constituency, Eligibility};

pub fn check(eligibility: &Eligibility) -> Result<(), ApiError> {
    match eligibility {
        Eligibility::LdapFilter { filter } if ldap3::parse_filter(filter).is_err() => Err(ApiError::invalid(
            "eligibility.filter",
            "not an LDAP filter the directory client can read, e.g. (departmentNumber=PHYS) or (&(ou=Science)(title=student))",
        )),
        _ => Ok(()),
    }
}

/// A contest's directory constituency, checked the same way.
pub fn check_constituency(voters: &Constituency) -> Result<(), ApiError> {
    match voters {
        Constituency::LdapFilter { filter } => {
            check(&Eligibility::LdapFilter { filter: filter.clone() }).map_err(|_| {
                ApiError::invalid(
                    "contests.voters.filter",
                    "not an LDAP filter the directory client can read, e.g. (departmentNumber=PHYS)",
                )
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(f: &str) -> Eligibility {
        Eligibility::LdapFilter { filter: f.into() }
    }

    #[test]
    fn filters_the_client_cannot_parse_are_refused() {
        for good in ["(departmentNumber=PHYS)", "(&(objectClass=inetOrgPerson)(|(ou=Sci)(ou=Eng)))", "(!(cn=x*))"] {
            assert!(check(&filter(good)).is_ok(), "{good}");
        }
        for bad in ["(departmentNumber=PHYS", "(&(a=b)(c=d)", "((a=b))", "(a=b))", "(=x)", "(a=\\zz)"] {
            let err = check(&filter(bad)).unwrap_err();
            assert_eq!(err.status(), 422, "{bad}");
        }
        assert!(check(&Eligibility::Everyone).is_ok());
    }
}
