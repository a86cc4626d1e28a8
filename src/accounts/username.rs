//! Usernames: normalised so that names which look the same are the same account. A username is
//! NFKC-normalised and trimmed (so `José` typed in NFC or NFD, and a fullwidth `ａｄａ`, are the
//! `José` and `ada` they look like), then held to the rules of a name (1 to 64 characters, no
//! control or format characters). Accounts are unique by two keys: the lowercased form (`Ada`
//! and `ada` are one account) and its confusable skeleton (Unicode TR39: `paypal` and a
//! `pаypal` with a Cyrillic `а` are one account too).

use unicode_normalization::UnicodeNormalization;
use unicode_security::confusable_detection::skeleton;

use crate::name::{Name, NameError};

/// A username that passed the rules, with the keys accounts are unique under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    key: String,
    skeleton: String,
}

impl Username {
    /// Normalises `typed` and checks it.
    ///
    /// # Errors
    ///
    /// The [`NameError`] of the normalised form.
    pub fn parse(typed: &str) -> Result<Self, NameError> {
        // Bounded before normalising: NFKC can expand a character into several, and the rules
        // below bound the result.
        if typed.len() > 4 * 4 * crate::name::MAX_NAME_CHARS {
            return Err(NameError::TooLong);
        }
        let normalised: String = typed.nfkc().collect();
        let display = Name::parse(normalised.trim())?.into_string();
        let key: String = display.to_lowercase().nfkc().collect();
        let skeleton = skeleton(&key).collect();
        Ok(Self {
            display,
            key,
            skeleton,
        })
    }

    /// As shown: NFKC-normalised, trimmed, case kept.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The key sign-in looks accounts up by: the lowercased form.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The confusable skeleton of the key: two usernames with one skeleton look alike.
    pub fn skeleton(&self) -> &str {
        &self.skeleton
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(typed: &str) -> Username {
        Username::parse(typed).unwrap_or_else(|error| panic!("{typed:?}: {error}"))
    }

    #[test]
    fn forms_of_one_name_share_its_key() {
        let nfc = parsed("Jos\u{e9}");
        let nfd = parsed("Jose\u{301}");
        assert_eq!(nfc, nfd);
        assert_eq!(nfc.as_str(), "Jos\u{e9}");
        assert_eq!(parsed("ａｄａ").key(), parsed("Ada").key());
        assert_eq!(parsed("  ada ").as_str(), "ada");
    }

    #[test]
    fn look_alikes_share_a_skeleton_and_different_names_do_not() {
        let latin = parsed("paypal");
        let cyrillic = parsed("p\u{430}ypal");
        assert_ne!(latin.key(), cyrillic.key());
        assert_eq!(latin.skeleton(), cyrillic.skeleton());
        assert_ne!(parsed("ada").skeleton(), parsed("bob").skeleton());
    }

    #[test]
    fn the_rules_apply_to_the_normalised_form() {
        assert_eq!(Username::parse("   "), Err(NameError::Empty));
        assert_eq!(Username::parse("a\0b"), Err(NameError::ControlCharacter));
        assert_eq!(Username::parse(&"a".repeat(3000)), Err(NameError::TooLong));
        // One character that NFKC expands to 18: over 64 once normalised.
        assert_eq!(
            Username::parse(&"\u{fdfa}".repeat(4)),
            Err(NameError::TooLong)
        );
    }
}
