//! Turning `--flake URI[#ATTR]` into a flake reference `builtins.getFlake` accepts, without
//! another Nix invocation.

use std::path::{Path, PathBuf};

use crate::exit::{bad_input, Exit};

/// A flake and the attribute of the configuration in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlakeTarget {
    /// A flake reference with local paths made absolute (`path:` or `git+file:`).
    pub uri: String,
    /// The attribute under `nixosConfigurations`.
    pub attr: String,
}

/// Splits `URI[#ATTR]`, resolves a local path the way Nix does (the enclosing git repository if
/// there is one, else the directory), and defaults ATTR to `hostname`.
pub fn resolve(spec: &str, cwd: &Path, hostname: &str) -> Result<FlakeTarget, Exit> {
    let (uri, attr) = match spec.split_once('#') {
        Some((u, a)) => (u, a),
        None => (spec, ""),
    };
    if uri.is_empty() {
        return Err(bad_input(format!(
            "--flake {spec:?} names no flake: use --flake PATH#NAME or URI#NAME"
        )));
    }
    let attr = if attr.is_empty() {
        hostname.to_string()
    } else {
        attr.to_string()
    };
    let uri = if is_local_path(uri) {
        local_ref(&cwd.join(uri), spec)?
    } else {
        uri.to_string()
    };
    Ok(FlakeTarget { uri, attr })
}

/// A reference is a path when it has no scheme (`github:`, `git+https:`, `path:`, ...).
fn is_local_path(uri: &str) -> bool {
    uri.starts_with('.') || uri.starts_with('/') || !uri.contains(':')
}

fn local_ref(path: &Path, spec: &str) -> Result<String, Exit> {
    let dir = path.canonicalize().map_err(|e| {
        bad_input(format!(
            "--flake {spec:?}: cannot open {}: {e}; pass a directory holding flake.nix",
            path.display()
        ))
    })?;
    if !dir.join("flake.nix").is_file() {
        return Err(bad_input(format!(
            "--flake {spec:?}: {} has no flake.nix; pass the directory of your flake",
            dir.display()
        )));
    }
    Ok(match git_root(&dir) {
        Some(root) => {
            let rel = dir.strip_prefix(&root).expect("root is an ancestor");
            let mut uri = format!("git+file://{}", encode(&root));
            if !rel.as_os_str().is_empty() {
                uri.push_str("?dir=");
                uri.push_str(&encode(rel));
            }
            uri
        }
        None => format!("path:{}", encode(&dir)),
    })
}

fn git_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// Percent-encodes everything but unreserved characters and `/`, so any path survives Nix's URL
/// parser unchanged.
fn encode(path: &Path) -> String {
    let mut out = String::new();
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(char::from(*byte))
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_refs_pass_through_and_attr_defaults_to_hostname() {
        let t = resolve("github:me/cfg", Path::new("/"), "box").unwrap();
        assert_eq!(
            t,
            FlakeTarget {
                uri: "github:me/cfg".into(),
                attr: "box".into()
            }
        );
        let t = resolve("github:me/cfg#web", Path::new("/"), "box").unwrap();
        assert_eq!(t.attr, "web");
    }

    #[test]
    fn local_paths_become_absolute_encoded_refs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("my flake");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("flake.nix"), "{}").unwrap();
        let t = resolve("./my flake#h", tmp.path(), "x").unwrap();
        let canon = tmp.path().canonicalize().unwrap();
        assert_eq!(t.uri, format!("path:{}/my%20flake", encode(&canon)));

        std::fs::create_dir(tmp.path().join(".git")).unwrap();
        let t = resolve("./my flake", tmp.path(), "x").unwrap();
        assert_eq!(
            t.uri,
            format!("git+file://{}?dir=my%20flake", encode(&canon))
        );
    }

    #[test]
    fn a_directory_without_flake_nix_is_bad_input() {
        let tmp = tempfile::tempdir().unwrap();
        let err = resolve(tmp.path().to_str().unwrap(), Path::new("/"), "x").unwrap_err();
        assert!(err.to_string().contains("has no flake.nix"), "{err}");
    }
}
