//! Operating kiln: the admin commands that stand in for Halyard (`hal config provider aws bakery
//! …`, `hal deploy apply`) and the server's live reload.
//!
//! - [`cli`]: the command tree (`kiln config …`, `kiln deploy apply`) and its dispatch;
//! - `bakery`, `base_image`: editing `aws.bakeryDefaults` in the operator's config file, in place
//!   and atomically (`file`, `yaml`), with the secret read without echo (`secret`);
//! - `clouds`: the same commands for Google, Docker, Alibaba, Tencent, Huawei, Oracle Cloud and
//!   Azure, from one table per cloud;
//! - `accounts`: `<google|oracle|azure> account add|edit|delete|list` (`<cloud>.accounts`), with
//!   `clouds`' flag sets;
//! - `validate`: everything start-up checks, plus `packer validate` of every template;
//! - [`reload`]: the server side of a reload (`POST /api/kiln/v1/reload`, SIGHUP);
//! - `deploy`: the client that asks a running kiln to reload;
//! - `view`: the settings as a redacted tree, for `show` and for the list of changed keys.
//!
//! Invariant: no secret value is ever printed, answered or logged; secrets appear as `(set)` or
//! `******`, and changes to them only as a key path.

mod accounts;
mod bakery;
mod base_image;
pub mod cli;
mod clouds;
mod deploy;
mod file;
pub mod reload;
mod secret;
mod validate;
mod view;
mod yaml;

pub use cli::{ConfigCommand, DeployCommand, run_config, run_deploy};
pub use reload::{Reloaded, Reloader};
pub use secret::refuse_secret_on_command_line;
