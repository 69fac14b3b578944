//! The Packer builder: the command line a build plan becomes ([`command`]) and Packer's
//! machine-readable output ([`output`]), which every builder's child process speaks.

pub mod command;
pub mod output;
pub mod timeline;
