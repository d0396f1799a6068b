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
