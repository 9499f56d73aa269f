//! Property tests for the parsers at the edge: any input is either refused with a reason
//! or yields a value that keeps its type's promise; none of them panics.

use proptest::prelude::*;
use turnout_domain::*;

const LDAP_SPECIAL: &[char] = &['*', '(', ')', '\\', ',', '=', '+', '<', '>', ';', '"', '#', '\0', ' '];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn usernames_are_narrow_and_stable(raw in any::<String>()) {
        if let Ok(u) = Username::parse(&raw) {
            let s = u.as_str();
            prop_assert!((1..=64).contains(&s.len()));
            prop_assert!(!s.contains(LDAP_SPECIAL), "{s:?}");
            prop_assert_eq!(Username::parse(s).unwrap(), u.clone());
        }
    }

    #[test]
    fn plausible_uids_are_accepted_in_their_one_folded_form(raw in "[A-Za-z0-9._@-]{1,64}", pad in "[ \t]{0,3}") {
        let u = Username::parse(&raw).unwrap();
        prop_assert_eq!(u.as_str(), raw.to_ascii_lowercase());
        // Any spelling of it (case, surrounding blanks) is the same username.
        let respelled: String = raw.chars().map(|c| if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }).collect();
        prop_assert_eq!(Username::parse(&format!("{pad}{respelled}{pad}")).unwrap(), u);
    }

    #[test]
    fn codes_are_exactly_six_digits_and_never_shown(raw in any::<String>()) {
        let digits: String = raw.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        let expect = digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit());
        match OtpCode::parse(&raw) {
            Ok(code) => {
                prop_assert!(expect);
                prop_assert_eq!(code.as_str(), digits.as_str());
                let shown = format!("{code:?}");
                prop_assert!(!shown.contains(code.as_str()));
            }
            Err(_) => prop_assert!(!expect),
        }
    }

    #[test]
    fn typed_codes_with_spaces_and_dashes_parse(d in "[0-9]{6}", sep in "[ -]{0,2}") {
        let typed = format!("{}{sep}{}", &d[..3], &d[3..]);
        let code = OtpCode::parse(&typed).unwrap();
        prop_assert_eq!(code.as_str(), d.as_str());
    }

    #[test]
    fn ids_are_url_safe_slugs(raw in any::<String>()) {
        let parsed = [
            ElectionId::parse(&raw).map(|i| i.to_string()),
            ContestId::parse(&raw).map(|i| i.to_string()),
            CandidateId::parse(&raw).map(|i| i.to_string()),
        ];
        for id in parsed.into_iter().flatten() {
            prop_assert!((1..=64).contains(&id.len()));
            prop_assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'));
            prop_assert!(!id.starts_with('-') && !id.ends_with('-'));
        }
    }

    #[test]
    fn slugs_round_trip(raw in "[a-z0-9_][a-z0-9_-]{0,62}[a-z0-9_]") {
        let id = ElectionId::parse(&raw).unwrap();
        prop_assert_eq!(id.as_str(), raw.as_str());
    }

    #[test]
    fn receipts_normalise_once(raw in any::<String>()) {
        if let Ok(r) = Receipt::parse(&raw) {
            prop_assert_eq!(Receipt::parse(r.as_str()).unwrap(), r);
        }
    }

    #[test]
    fn receipts_survive_how_people_retype_them(upper in any::<bool>(), dashes in any::<bool>()) {
        let r = Receipt::generate();
        let mut typed = r.as_str().to_owned();
        if upper { typed = typed.to_uppercase(); }
        if !dashes { typed = typed.replace('-', ""); }
        prop_assert_eq!(Receipt::parse(&typed).unwrap(), r);
    }

    #[test]
    fn emails_are_single_addresses_and_masks_hide_them(raw in any::<String>()) {
        if let Ok(e) = VoterEmail::parse(&raw) {
            let s = e.as_str();
            prop_assert_eq!(s.matches('@').count(), 1);
            prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';')));
            let masked = e.masked();
            let local = s.split('@').next().unwrap();
            if local.chars().count() > 3 {
                prop_assert!(!masked.contains(local), "{masked} shows {local}");
            }
        }
    }
}
