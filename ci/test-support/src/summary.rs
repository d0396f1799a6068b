//! The summary table printed after the matrix: format x scenario, each cell pass/FAIL/ignored
//! with the seconds the trial took.

use comfy_table::{CellAlignment, Table};
use std::{collections::BTreeMap, sync::Mutex, time::Duration};

/// How one trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Ignored at run time (with a reason, printed by libtest-mimic).
    Ignored,
}

/// The results recorded by the trials, shared between their threads: one row per format, one
/// column per scenario (`S`, the matrix's scenario type; its names are given to [`Summary::table`]).
pub struct Summary<S> {
    rows: Mutex<BTreeMap<(String, S), (Status, Duration)>>,
}

impl<S> Default for Summary<S> {
    fn default() -> Self {
        Summary {
            rows: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<S: Copy + Ord> Summary<S> {
    /// Records one trial's end.
    pub fn record(&self, format: &str, scenario: S, status: Status, took: Duration) {
        self.rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((format.to_owned(), scenario), (status, took));
    }

    /// The table with `columns` (each scenario and its name) in that order, or `None` when no
    /// trial ran.
    pub fn table(&self, columns: &[(S, &str)], wall: Duration) -> Option<String> {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        if rows.is_empty() {
            return None;
        }
        let formats: Vec<&String> = {
            let mut f: Vec<&String> = rows.keys().map(|(f, _)| f).collect();
            f.dedup();
            f
        };
        let mut table = Table::new();
        table.load_preset(comfy_table::presets::NOTHING);
        table.set_header(std::iter::once("format").chain(columns.iter().map(|(_, name)| *name)));
        let (mut pass, mut fail, mut ignored, mut busy) = (0, 0, 0, Duration::ZERO);
        for f in formats {
            let mut row = vec![f.clone()];
            for &(s, _) in columns {
                let cell = match rows.get(&(f.clone(), s)) {
                    None => "-".to_owned(),
                    Some((Status::Ignored, _)) => "ignored".to_owned(),
                    Some((status, took)) => {
                        busy += *took;
                        let word = if *status == Status::Pass {
                            "pass"
                        } else {
                            "FAIL"
                        };
                        format!("{word} {:>4.0}s", took.as_secs_f64())
                    }
                };
                match rows.get(&(f.clone(), s)).map(|r| r.0) {
                    Some(Status::Pass) => pass += 1,
                    Some(Status::Fail) => fail += 1,
                    Some(Status::Ignored) => ignored += 1,
                    None => {}
                }
                row.push(cell);
            }
            table.add_row(row);
        }
        // The format left-aligned, each scenario's cells right-aligned, two spaces apart.
        for (i, column) in table.column_iter_mut().enumerate() {
            column.set_padding((0, 2));
            if i > 0 {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        let mut out = table.trim_fmt();
        out.push('\n');
        out.push_str(&format!(
            "{pass} passed, {fail} failed, {ignored} ignored; trials took {:.0}s in total, {:.0}s wall\n",
            busy.as_secs_f64(),
            wall.as_secs_f64()
        ));
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [(u8, &str); 2] = [(0, "boot"), (3, "poweroff")];

    #[test]
    fn table_shows_every_recorded_cell_and_totals() {
        let summary = Summary::default();
        assert!(summary.table(&COLUMNS, Duration::ZERO).is_none());
        summary.record("raw-efi", 0, Status::Pass, Duration::from_secs(21));
        summary.record("raw-efi", 3, Status::Fail, Duration::from_secs(80));
        summary.record("docker", 0, Status::Ignored, Duration::ZERO);
        let table = summary.table(&COLUMNS, Duration::from_secs(101)).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("format"), "{table}");
        assert!(
            lines[1].starts_with("docker") && lines[1].contains("ignored"),
            "{table}"
        );
        assert!(
            lines[2].contains("pass   21s") && lines[2].contains("FAIL   80s"),
            "{table}"
        );
        assert!(
            lines[3].starts_with("1 passed, 1 failed, 1 ignored"),
            "{table}"
        );
    }
}
