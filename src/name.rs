//! The one piece of user input latch stores: a person's name, checked before it reaches a session.

use std::fmt;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The longest name accepted, in characters (Unicode scalar values), not bytes.
pub const MAX_NAME_CHARS: usize = 64;

/// A name that passed validation: 1 to 64 characters, none of them control or format
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

/// Why a name was refused; the message is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("the name contains control characters (such as newlines or tabs)")]
    ControlCharacter,
    /// Unicode format characters (category Cf) are invisible, and bidi controls among them can
    /// make a name display as something else.
    #[error(
        "the name contains invisible formatting characters (such as bidi overrides, \
         zero-width spaces or byte order marks)"
    )]
    FormatCharacter,
    /// Rocket decodes URLs and forms lossily, turning bytes that are not UTF-8 into U+FFFD.
    #[error("the name is not valid UTF-8 text")]
    NotUtf8,
}

impl Name {
    pub fn parse(input: &str) -> Result<Self, NameError> {
        if input.is_empty() {
            return Err(NameError::Empty);
        }
        // Bytes bound chars from above, so most input never needs counting.
        if input.len() > MAX_NAME_CHARS && input.chars().nth(MAX_NAME_CHARS).is_some() {
            return Err(NameError::TooLong);
        }
        if input.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        if input
            .chars()
            .any(|c| c.general_category() == GeneralCategory::Format)
        {
            return Err(NameError::FormatCharacter);
        }
        if input.contains(char::REPLACEMENT_CHARACTER) {
            return Err(NameError::NotUtf8);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_accepted() {
        for name in [
            "a",
            "Ada Lovelace",
            "José",
            "李小龍",
            "<script>",
            &"é".repeat(64),
        ] {
            assert_eq!(
                Name::parse(name).map(Name::into_string),
                Ok(name.to_owned())
            );
        }
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        assert_eq!(Name::parse(""), Err(NameError::Empty));
        assert_eq!(Name::parse(&"a".repeat(65)), Err(NameError::TooLong));
        assert_eq!(Name::parse(&"é".repeat(65)), Err(NameError::TooLong));
        assert_eq!(Name::parse("bad\u{fffd}byte"), Err(NameError::NotUtf8));
        for bad in [
            "bidi\u{202e}txt",
            "zero\u{200b}width",
            "\u{feff}bom",
            "soft\u{ad}hyphen",
        ] {
            assert_eq!(Name::parse(bad), Err(NameError::FormatCharacter), "{bad:?}");
        }
        for bad in ["a\nb", "tab\there", "nul\0", "del\u{7f}", "c1\u{85}"] {
            assert_eq!(
                Name::parse(bad),
                Err(NameError::ControlCharacter),
                "{bad:?}"
            );
        }
    }
}
