//! kiln: a machine-image bakery, compatible with Spinnaker's Rosco.
//!
//! The domain sits apart from I/O:
//! - [`bake`]: requests, phases and records (no I/O);
//! - [`recipe`]: package names, appversion, image names, CI artifacts (no I/O);
//! - [`providers`]: how a request becomes Packer variables for one cloud (AWS, local qemu);
//! - [`images`]: local qemu images: `kiln base-image build`, staging, boot checks;
//! - [`diagnosis`]: known failure signatures and what they mean (no I/O);
//! - [`config`]: the `rosco.yml`-shaped configuration, read and checked once;
//! - [`builders`]: how an image is built from a recipe's build plan (Packer, ebs-direct): the command
//!   line and the machine-readable output;
//! - [`runner`]: running a builder under a supervisor that survives kiln restarts;
//! - [`aws`]: kiln's own EC2 client (SigV4, the default credential chain);
//! - [`services`]: other Spinnaker services (Clouddriver) and the source image lookup;
//! - [`store`]: where bakes are kept (embedded SQLite by default);
//! - [`manifest`]: Rosco's v2 manifest bakes (Helm, Helmfile, Kustomize, Cloud Foundry);
//! - [`bakery`]: the service tying them together: create, dedupe, queue, run, cancel;
//! - [`api`]: the HTTP API (Rosco's v1 plus kiln's own);
//! - [`startup`]: building and running the server;
//! - [`admin`]: operating kiln: config edits, validation, live reload;
//! - [`client`]: the CLI's client of a running kiln: `kiln bake`, `kiln bakes …`, `kiln gc`.

pub mod admin;
pub mod api;
pub mod aws;
pub mod bake;
pub mod bakery;
pub mod builders;
pub mod client;
pub mod config;
pub mod diagnosis;
pub mod digest;
pub mod images;
pub mod manifest;
pub mod providers;
pub mod recipe;
pub mod runner;
pub mod services;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod templates;
