//! What the command prints on stdout: format lists and built image paths.

use serde::Serialize;

use crate::{exit::Exit, nix::Built};

#[derive(Serialize)]
struct ListedFormat<'a> {
    name: &'a str,
    description: &'a str,
    profile: &'a str,
    bootable: bool,
    not_checked: Option<&'a str>,
    system: &'a str,
    output: &'a str,
}

/// `--list`: one format a line with its description, or the table as JSON.
pub fn list(json: bool) -> Result<(), Exit> {
    let formats = formats::registry().formats();
    if json {
        let rows: Vec<ListedFormat> = formats
            .iter()
            .map(|f| ListedFormat {
                name: &f.name,
                description: &f.description,
                profile: f.profile.name(),
                bootable: f.profile.bootable(),
                not_checked: f.not_checked.as_deref(),
                system: f.system.name(),
                output: &f.output,
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("plain data serialises")
        );
    } else {
        let mut table = comfy_table::Table::new();
        for f in formats {
            table.add_row([
                f.name.clone(),
                match &f.not_checked {
                    None => f.description.clone(),
                    Some(why) => format!("{} (no --check: {why})", f.description),
                },
            ]);
        }
        println!("{}", crate::report_check::plain(table));
    }
    Ok(())
}

/// The built images: one path a line, or `[{"format", "path", "size_bytes"}]`.
pub fn built(images: &[Built], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(images).expect("plain data serialises")
        );
    } else {
        for image in images {
            println!("{}", image.path.display());
        }
    }
}
