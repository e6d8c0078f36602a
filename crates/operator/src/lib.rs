//! The Spoor operator: the `Spoor` custom resource (a Jaeger operator spec
//! under `spoor.dev/v1`) and the objects an instance is made of.
pub mod crd;
pub mod reconcile;
pub mod render;
pub mod run;
pub mod webhook;

use kube::CustomResourceExt;

pub use crd::{Spoor, SpoorSpec};

/// The CustomResourceDefinition, as checked in under deploy/operator/.
pub fn crd_yaml() -> String {
    serde_yaml::to_string(&Spoor::crd()).expect("CRD serializes")
}

/// Reads a `Spoor` resource from YAML (or JSON); a resource without a spec
/// (Jaeger's "simplest") gets the defaults.
pub fn parse(text: &str) -> Result<Spoor, serde_yaml::Error> {
    let mut value: serde_yaml::Value = serde_yaml::from_str(text)?;
    if let Some(map) = value.as_mapping_mut() {
        map.entry("spec".into())
            .or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
    }
    serde_yaml::from_value(value)
}
