//! Every key binding and what it does, in one table: the help page, the
//! status bar's hints and the ladder's hint line are all drawn from it
//! (gitui's habit). [`super::App::key`] implements them; a binding added
//! there is added here.

/// Where a binding works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// Every view.
    Any,
    /// Sessions and the timeline.
    Timeline,
    /// The TCP view and its Expert-Info list.
    Tcp,
    /// The Records view.
    Records,
    /// The open handshake ladder.
    Ladder,
}

/// One binding.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The keys, as the help writes them.
    pub keys: &'static str,
    /// What they do, for the help page.
    pub does: &'static str,
    /// The short hint in a bar ("" when the binding is not hinted).
    pub hint: &'static str,
    pub at: Where,
}

const fn b(keys: &'static str, does: &'static str, hint: &'static str, at: Where) -> Binding {
    Binding {
        keys,
        does,
        hint,
        at,
    }
}

/// Every binding, in the help page's order.
pub const BINDINGS: &[Binding] = &[
    b("?", "this help (j/k scroll it)", "help", Where::Any),
    b(
        "Tab, 1-4",
        "views: Sessions, Timeline, TCP, Records",
        "views",
        Where::Any,
    ),
    b(
        "Enter",
        "open the session / the checkpoint's ladder",
        "open",
        Where::Timeline,
    ),
    b(
        "Enter",
        "go to the checkpoint at the entry's time",
        "go to checkpoint",
        Where::Tcp,
    ),
    b(
        "Esc",
        "close the ladder / clear the filter / back",
        "",
        Where::Any,
    ),
    b(
        "Up/Down j/k",
        "move; PgUp/PgDn, Home/End, g/G",
        "move",
        Where::Tcp,
    ),
    b(
        "Up/Down j/k",
        "move; PgUp/PgDn, Home/End, g/G",
        "",
        Where::Timeline,
    ),
    b(
        "n / N",
        "next / previous stall or slow checkpoint",
        "next/prev stall",
        Where::Timeline,
    ),
    b(
        "s",
        "sort: index, downtime, each phase",
        "sort",
        Where::Timeline,
    ),
    b(
        "t",
        "times: since start, time of day, since previous",
        "time",
        Where::Timeline,
    ),
    b(
        "+ / -, 0",
        "zoom the phase bars in / out, fit",
        "",
        Where::Timeline,
    ),
    b("h/l", "pan the phase bars", "", Where::Timeline),
    b("p", "phase shown in the histogram", "", Where::Timeline),
    b(
        "f",
        "follow the newest checkpoint (live)",
        "",
        Where::Timeline,
    ),
    b(
        "space, .",
        "replay: pause/resume, step one checkpoint",
        "",
        Where::Any,
    ),
    b(
        "e",
        "export the report (JSON and CSV)",
        "export",
        Where::Any,
    ),
    b(
        "/",
        "filter: type:PAGE_DATA layer:libxc dir:back ckpt:23 words",
        "filter",
        Where::Records,
    ),
    b(
        "h/l",
        "focus the list, details or bytes pane",
        "panes",
        Where::Records,
    ),
    b(
        "j/k",
        "scroll the ladder; PgUp/PgDn, Home/End",
        "scroll",
        Where::Ladder,
    ),
    b(
        "r",
        "the Records view filtered to this checkpoint",
        "records",
        Where::Ladder,
    ),
    b(
        "n/N",
        "the next / previous stall, ladder open",
        "next stall",
        Where::Ladder,
    ),
    b("Esc", "close the ladder", "close", Where::Ladder),
    b("mouse", "click selects, wheel scrolls", "", Where::Any),
    b("q, Ctrl-C", "quit", "quit", Where::Any),
];

/// The hint line of a place: its hinted bindings and the global ones
/// ("? help  Tab views  Enter open ..."), in table order.
pub fn hints(at: Where) -> String {
    BINDINGS
        .iter()
        .filter(|x| {
            !x.hint.is_empty() && (x.at == at || (x.at == Where::Any && at != Where::Ladder))
        })
        .map(|x| format!("{} {}", short_keys(x.keys), x.hint))
        .collect::<Vec<_>>()
        .join("  ")
}

/// The keys as a bar shows them: the first alternative ("Tab, 1-4" -> "Tab").
fn short_keys(keys: &str) -> &str {
    keys.split(", ").next().unwrap_or(keys)
}

/// The key lines of the help page: "KEYS  place" headings and one line per
/// binding.
pub fn help_lines() -> Vec<String> {
    let mut out = Vec::new();
    for (at, title) in [
        (Where::Any, "KEYS, everywhere"),
        (Where::Timeline, "Sessions and Timeline"),
        (Where::Tcp, "TCP"),
        (Where::Records, "Records"),
        (Where::Ladder, "Ladder"),
    ] {
        if !out.is_empty() {
            out.push(String::new());
        }
        out.push(title.to_string());
        for x in BINDINGS.iter().filter(|x| x.at == at) {
            out.push(format!("{:<12} {}", x.keys, x.does));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_come_from_the_table() {
        assert_eq!(
            hints(Where::Timeline),
            "? help  Tab views  Enter open  n / N next/prev stall  s sort  t time  e export  q quit"
        );
        assert_eq!(
            hints(Where::Ladder),
            "j/k scroll  r records  n/N next stall  Esc close"
        );
        assert!(help_lines()
            .iter()
            .any(|l| l.starts_with("r ") && l.contains("Records view")));
    }

    #[test]
    fn help_lines_fit_the_help_box() {
        assert!(help_lines().iter().all(|l| l.chars().count() <= 72));
    }
}
