//! One module per renderer: the command lines of Rosco's template utils ([`helm`] for Helm 2,
//! Helm 3 and Helmfile, [`kustomize`]) and the Cloud Foundry placeholder rules kiln runs itself
//! ([`cf`]). Plain functions: what runs them is [`super::bake`].

pub mod cf;
pub mod helm;
pub mod kustomize;
