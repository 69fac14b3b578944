//! Other Spinnaker services kiln calls, as Rosco does (`services.<name>.baseUrl`).

pub mod clouddriver;
pub mod source_images;
