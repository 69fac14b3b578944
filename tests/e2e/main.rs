//! End-to-end tests: the real `kiln` binary on a free port, real Packer 1.6.6, and a moto EC2
//! server on loopback. Nothing here reaches a real cloud: every template under test points its
//! EC2 endpoint at moto.

mod admin;
mod admin_faults;
mod admin_reload;
mod api;
mod aws;
mod azure;
mod bake_cli;
mod clouds;
mod clouds_accounts;
mod clouds_admin;
mod docker_engine;
mod ebs_direct;
mod ec2_client;
mod error_chains;
mod gce_docker;
#[cfg(feature = "redis")]
mod ha;
mod harness;
mod hostile_requests;
mod lifecycle;
mod manifests;
mod openapi;
mod processes;
mod qemu;
mod recipes;
mod retention;
mod server_defences;
mod spinnaker;
mod vm;
mod web;
