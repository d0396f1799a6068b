//! Golden snapshots of a trial's facts: `snapshots/<scenario>@<source>-<format>.snap` at the
//! repository's top level, YAML. Settings are per thread in insta, so they are bound here,
//! inside the trial.

use std::path::PathBuf;

use scenarios::Scenario;
use test_support::source::SourceKind;

/// The repository's `snapshots/` directory.
fn snapshot_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("scenarios/ sits in the workspace")
        .join("snapshots")
}

/// The snapshot's name: `<scenario>@<source>-<format>`.
pub fn name(scenario: Scenario, source: SourceKind, format: &str) -> String {
    format!("{}@{}-{format}", scenario.name(), source.name())
}

/// Compares `facts` with the recorded snapshot (panics on a mismatch, as insta does; with
/// `CI=true` a missing or different snapshot fails without writing `.snap.new`).
pub fn assert(scenario: Scenario, source: SourceKind, format: &str, facts: &serde_json::Value) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshot_dir());
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(format!(
        "normalised facts of scenario `{}` on format `{format}`, images from `{}`",
        scenario.name(),
        source.name()
    ));
    // A second net behind scenarios::redact: nothing run-specific may reach a snapshot.
    settings.add_filter(
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        "<uuid>",
    );
    settings.add_filter(r"\b[0-9a-f]{32}\b", "<machine-id>");
    let name = name(scenario, source, format);
    settings.bind(|| insta::assert_yaml_snapshot!(name.as_str(), facts));
}
