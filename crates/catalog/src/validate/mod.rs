//! Manifest checks beyond serde, and validation of input values against a manifest.

mod configuration;
mod input_names;
mod input_values;
mod list_items;
mod manifest_checks;

pub use configuration::{expand_path, path_problem};
pub use input_names::input_name_problem;
pub use input_values::{
    InputError, MAX_VALUE_BYTES, ResolvedInput, ResolvedInputs, check_value, compile_pattern,
    describe_rules, normalize_bool, resolve_inputs, visibility,
};
pub use manifest_checks::{ManifestIssue, check_manifest};
