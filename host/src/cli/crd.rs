//! `lws crd`: the CustomResourceDefinition, as `lws_core::crd` generates it.

use super::Format;
use std::process::ExitCode;

pub fn run(output: Format) -> anyhow::Result<ExitCode> {
    super::install::print(&[lws_core::crd::custom_resource_definition()], output)?;
    Ok(ExitCode::SUCCESS)
}
