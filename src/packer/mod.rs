//! Everything about the Packer process: the command line and environment a recipe turns into
//! ([`command`]), running it under a supervisor that survives kiln restarts ([`run`]), and reading
//! its machine-readable output ([`output`]). Secrets are removed from output before anything
//! stores or shows it ([`redact`]). Packer's temp files stay in kiln's own folder ([`temp`]).

pub mod command;
pub mod output;
pub mod redact;
pub mod run;
pub mod temp;
pub mod timeline;
