//! Browsers named the way people name them ("Firefox on Linux", "Safari on iPhone"), from the
//! `User-Agent` a session signed in with, for the device list.

use woothee::parser::Parser;
use woothee::woothee::VALUE_UNKNOWN;

/// What the device list says for an agent it cannot name.
pub const UNKNOWN_BROWSER: &str = "Unknown browser";

/// The browser and operating system `user_agent` names, as "Browser on System"; the browser
/// alone when the system is unknown, and [`UNKNOWN_BROWSER`] (on the system, if known) when
/// the browser is. Anything a client sends is accepted: the answer is only ever a name.
pub fn describe(user_agent: &str) -> String {
    let parsed = Parser::new().parse(user_agent);
    let browser = parsed.as_ref().and_then(|parsed| browser(parsed.name));
    let system = parsed.as_ref().and_then(|parsed| system(parsed.os));
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, Some(system)) => format!("{UNKNOWN_BROWSER} on {system}"),
        (None, None) => UNKNOWN_BROWSER.to_owned(),
    }
}

/// The parser's browser name as people say it, or `None` when it does not know.
fn browser(name: &str) -> Option<&str> {
    match name {
        VALUE_UNKNOWN | "" => None,
        "SamsungBrowser" => Some("Samsung Internet"),
        "Webview" => Some("An app's web view"),
        name => Some(name),
    }
}

/// The parser's operating system as people say it, or `None` when it does not know.
fn system(os: &str) -> Option<&str> {
    match os {
        VALUE_UNKNOWN | "" => None,
        "Mac OSX" => Some("macOS"),
        // Windows 11 sends the same version as Windows 10, so neither number can be told.
        "Windows 10" | "Windows UNKNOWN Ver" => Some("Windows"),
        os => Some(os),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_named_as_people_name_them() {
        for (agent, name) in [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/126.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari on iPhone",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/126.0.0.0 Safari/537.36",
                "Chrome on Windows",
            ),
        ] {
            assert_eq!(describe(agent), name, "{agent}");
        }
    }

    #[test]
    fn an_agent_nobody_can_name_is_an_unknown_browser() {
        assert_eq!(describe("AccountsTest/1.0"), UNKNOWN_BROWSER);
        assert_eq!(describe(""), UNKNOWN_BROWSER);
        assert_eq!(describe("\u{202e}<script>\"'"), UNKNOWN_BROWSER);
        assert_eq!(
            describe("Mozilla/5.0 (X11; Linux x86_64) NobodyKnowsMe/1.0"),
            "Unknown browser on Linux"
        );
    }
}
