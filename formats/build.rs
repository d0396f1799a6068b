//! Embeds every Nix file under `modules/` and `nix/`, and the registry, into the crate, so an
//! installed binary carries the Nix side without a checkout.

use std::{env, fs, path::Path};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut entries = Vec::new();
    for dir in ["modules", "nix"] {
        let mut files: Vec<_> = fs::read_dir(root.join(dir))
            .expect("formats/ holds modules/ and nix/")
            .map(|e| e.expect("readable directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "nix"))
            .collect();
        files.sort();
        for path in files {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            entries.push((format!("{dir}/{name}"), path));
        }
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    entries.push(("registry.toml".into(), root.join("registry.toml")));
    println!(
        "cargo:rerun-if-changed={}",
        root.join("registry.toml").display()
    );

    let mut out = String::from("/// Every file of the Nix side: (path relative to formats/, contents).\npub static FILES: &[(&str, &str)] = &[\n");
    for (rel, path) in &entries {
        out.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("embedded.rs");
    fs::write(dest, out).unwrap();
}
