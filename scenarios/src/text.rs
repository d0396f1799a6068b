//! Console text handling: ANSI escape stripping, command markers, kernel-message removal and
//! log tails. Pure functions, so the console scenario's parsing is testable without a guest.

use std::sync::OnceLock;

use regex::Regex;

/// Removes ANSI escape sequences, carriage returns and other control characters (except
/// newline and tab) from console text: the harness's own function, so both read the console
/// the same way.
pub use harness::detect::strip_ansi;

/// The last `n` lines of console text (ANSI escapes stripped), joined with newlines: the
/// harness's function too.
pub use harness::detect::tail_lines;

use harness::detect::KERNEL_TIMESTAMP;

/// Removes the kernel's console messages (`[   12.345678] text`, up to and including their
/// newline) from console text, wherever they land: the kernel writes to the serial port
/// without regard for the shell's output, so a message can start at a line's beginning or in
/// the middle of a command's output line (seen in CI: `cat /proc/cmdline` read back as
/// `...boot.panic_on_fail[   28.288083] cdrom: Uniform CD-ROM driver Revision: 3.20`).
/// Removing the message with its own newline leaves the interrupted line whole.
pub fn strip_kernel_messages(text: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(&format!(r"{KERNEL_TIMESTAMP}[^\n]*\n?")).expect("static regex"))
        .replace_all(text, "")
        .into_owned()
}

/// The markers that frame one command's output on the console.
///
/// The command line sent is `echo __NG_''BEGIN_<id>__; CMD; echo __NG_END_<id>_$?__`: the
/// shell's echo of what was typed contains `''` and `$?`, so only the shell's *output* matches
/// the markers, never the echoed input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markers {
    id: u32,
}

/// One command's output read back between its markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    /// The command's exit status.
    pub code: i32,
    /// Its output lines (ANSI stripped, kernel messages removed), joined with newlines.
    pub output: String,
}

impl Markers {
    /// Markers for the command with this sequence number.
    pub fn new(id: u32) -> Markers {
        Markers { id }
    }

    /// The line to type: `command` framed by the begin and end markers.
    pub fn wrap(&self, command: &str) -> String {
        let id = self.id;
        format!("echo __NG_''BEGIN_{id}__; {command}; echo __NG_END_{id}_$?__")
    }

    /// A regex that finds the end marker (with the exit status) in raw console bytes; the
    /// echoed command line shows `$?` in its place, so it never matches. A kernel message
    /// printed into the middle of the marker (see [`strip_kernel_messages`]) still matches.
    pub fn end_pattern(&self) -> String {
        // An optional kernel message with its line end, as it lands in raw console bytes.
        let kmsg = format!(r"(?:{KERNEL_TIMESTAMP}[^\n]*\n)?");
        let literal = |text: &str| {
            text.chars()
                .map(|c| regex::escape(&c.to_string()))
                .collect::<Vec<_>>()
                .join(&kmsg)
        };
        format!(
            r"{}{kmsg}\d(?:{kmsg}\d)*{kmsg}{}",
            literal(&format!("__NG_END_{}_", self.id)),
            literal("__")
        )
    }

    fn end_regex(&self) -> Regex {
        Regex::new(&format!(r"__NG_END_{}_(\d+)__", self.id)).expect("marker regex")
    }

    /// Extracts the framed output from console text, or `None` while the end marker has not
    /// arrived yet.
    pub fn parse(&self, raw: &str) -> Option<Marked> {
        let text = strip_kernel_messages(&strip_ansi(raw));
        // Not anchored at the line start: with echo off, the output follows the prompt on the
        // prompt's line. The echoed command shows `__NG_''BEGIN`, which never matches.
        let begin =
            Regex::new(&format!(r"(?m)__NG_BEGIN_{}__[ \t]*$", self.id)).expect("marker regex");
        let end = self.end_regex();
        let b = begin.find(&text)?;
        let caps = end.captures_at(&text, b.end())?;
        let code = caps[1].parse().ok()?;
        let body = &text[b.end()..caps.get(0).expect("whole match").start()];
        let output = body
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        Some(Marked { code, output })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_csi_osc_and_carriage_returns() {
        let raw = "\x1b[0;32m  OK  \x1b[0m] Reached\r\n\x1b]0;title\x07root@standin:~# ";
        assert_eq!(strip_ansi(raw), "  OK  ] Reached\nroot@standin:~# ");
    }

    #[test]
    fn markers_ignore_the_echoed_command_and_kernel_lines() {
        let m = Markers::new(7);
        let typed = m.wrap("systemctl is-system-running --wait");
        assert_eq!(
            typed,
            "echo __NG_''BEGIN_7__; systemctl is-system-running --wait; echo __NG_END_7_$?__"
        );
        let console = format!(
            "root@standin:~# {typed}\r\n__NG_BEGIN_7__\r\n[   12.500000] random: crng init done\r\n\x1b[1mdegraded\x1b[0m\r\n__NG_END_7_1__\r\nroot@standin:~# "
        );
        assert_eq!(
            m.parse(&console),
            Some(Marked {
                code: 1,
                output: "degraded".into()
            })
        );
    }

    #[test]
    fn kernel_message_in_the_middle_of_an_output_line_is_removed() {
        let m = Markers::new(5);
        let console = "__NG_BEGIN_5__\r\ninit=/nix/store/x/init boot.panic_on_fail[   28.288083] cdrom: Uniform CD-ROM driver Revision: 3.20\r\n\r\n__NG_END_5_0__\r\n";
        assert_eq!(
            m.parse(console).map(|m| m.output),
            Some("init=/nix/store/x/init boot.panic_on_fail".into())
        );
        assert_eq!(
            strip_kernel_messages("ab[    1.000000] x: y\ncd\n[ 2.500000] z\n"),
            "abcd\n"
        );
        // Bracketed text that is not a kernel timestamp stays.
        assert_eq!(
            strip_kernel_messages("[1.5] ok\n[ OK ] x\n"),
            "[1.5] ok\n[ OK ] x\n"
        );
    }

    #[test]
    fn end_marker_split_by_a_kernel_message_is_found() {
        let m = Markers::new(12);
        let end = Regex::new(&m.end_pattern()).unwrap();
        let console = "__NG_BEGIN_12__\r\nrunning\r\n__NG_EN[   30.000001] sr 0:0:0:0: Attached\r\nD_12_0__\r\n";
        let found = end.find(console).expect("split marker found");
        assert!(found.as_str().ends_with("D_12_0__"));
        assert_eq!(
            m.parse(&console[..found.end()]),
            Some(Marked {
                code: 0,
                output: "running".into()
            })
        );
        assert!(end.is_match("__NG_END_12_127__"));
        assert!(!end.is_match("echo __NG_END_12_$?__"));
        assert!(!end.is_match("__NG_END_1_0__"));
    }

    #[test]
    fn output_after_the_prompt_and_without_final_newline() {
        let m = Markers::new(3);
        let console =
            "root@standin:~# __NG_BEGIN_3__\r\nID=debian__NG_END_3_0__\r\nroot@standin:~# ";
        assert_eq!(
            m.parse(console),
            Some(Marked {
                code: 0,
                output: "ID=debian".into()
            })
        );
    }

    #[test]
    fn incomplete_output_is_none_and_other_ids_do_not_match() {
        let m = Markers::new(3);
        assert_eq!(m.parse("__NG_BEGIN_3__\nrunning\n"), None);
        assert_eq!(m.parse("__NG_BEGIN_4__\nrunning\n__NG_END_4_0__\n"), None);
    }
}
