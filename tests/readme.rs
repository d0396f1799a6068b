//! The README's format table is the registry's: regenerate with `UPDATE_README=1 cargo test
//! --test readme`.

const BEGIN: &str = "<!-- formats:begin (generated from formats/registry.toml) -->\n";
const END: &str = "<!-- formats:end -->";

#[test]
fn readme_format_table_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = readme
        .find(BEGIN)
        .expect("README has the formats:begin marker")
        + BEGIN.len();
    let end = readme[start..]
        .find(END)
        .expect("README has the formats:end marker")
        + start;
    let table = formats::registry().markdown_table();
    if readme[start..end] != table {
        if std::env::var_os("UPDATE_README").is_some() {
            let updated = format!("{}{}{}", &readme[..start], table, &readme[end..]);
            std::fs::write(path, updated).unwrap();
        } else {
            panic!("README.md's format table is out of date: run `UPDATE_README=1 cargo test --test readme`");
        }
    }
}

/// The README's example of a failed check names what a kept run directory holds as the
/// harness lists it (`harness::rundir::EVIDENCE`), and its prose names each of those files.
#[test]
fn readme_evidence_list_is_the_harness_list() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let line = format!("({})", harness::rundir::evidence_list());
    assert!(
        readme.contains(&format!("-- run directory kept: /tmp/ng-Ab12Cd {line}")),
        "README.md's failed-check example does not end with {line}"
    );
    for (file, _) in harness::rundir::EVIDENCE {
        let named = readme.contains(&format!("`{file}`")) || file.starts_with("screenshot");
        assert!(named, "README.md does not name `{file}` among the evidence");
    }
}
