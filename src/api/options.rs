//! `GET /bakeOptions…`: the base images each enabled provider offers, in Rosco's shape.

use super::ApiError;
use super::error::blocking;
use crate::bakery::Bakery;
use crate::config::BaseImage;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Uri;
use serde_json::{Value, json};

fn base_image_json(b: &BaseImage) -> Value {
    let mut v = json!({
        "id": b.id,
        "shortDescription": b.short_description,
        "detailedDescription": b.detailed_description,
        "packageType": b.package_type.as_deref().unwrap_or("deb").to_ascii_uppercase(),
        "templateFile": b.template_file,
        "osType": b.os_type.as_deref().unwrap_or("linux"),
        "customRepository": b.custom_repository,
    });
    // GCE's image families (Deck marks them in its tooltip).
    if let (Some(family), Some(map)) = (b.is_image_family, v.as_object_mut()) {
        map.insert("isImageFamily".into(), family.into());
    }
    if let Some(map) = v.as_object_mut() {
        for (k, value) in &b.listed {
            map.insert((*k).into(), value.clone().into());
        }
    }
    v
}

/// The enabled providers and their base images. On a blocking thread: a provider may read its
/// base images from disk (qemu's data dir).
async fn providers(bakery: &Bakery, path: &str) -> Result<Vec<Offer>, ApiError> {
    let settings = bakery.settings();
    blocking(path, move || {
        Ok(crate::providers::registry::enabled(&settings)
            .map(|p| (p.name(), p.base_images(&settings)))
            .collect())
    })
    .await
}

type Offer = (&'static str, Vec<BaseImage>);

fn options_json(provider: &str, images: &[BaseImage]) -> Value {
    json!({"cloudProvider": provider, "baseImages": images.iter().map(base_image_json).collect::<Vec<_>>()})
}

pub async fn all(State(bakery): State<Bakery>, uri: Uri) -> Result<Json<Value>, ApiError> {
    let all: Vec<Value> = providers(&bakery, uri.path())
        .await?
        .iter()
        .map(|(p, imgs)| options_json(p, imgs))
        .collect();
    Ok(Json(Value::Array(all)))
}

pub async fn one(
    State(bakery): State<Bakery>,
    Path(provider): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let list = providers(&bakery, uri.path()).await?;
    let Some((p, imgs)) = list.iter().find(|(p, _)| *p == provider) else {
        return Err(ApiError::options_not_found(
            uri.path(),
            format!("Bake options not found. Cloud provider {provider} not found"),
        ));
    };
    Ok(Json(options_json(p, imgs)))
}

pub async fn base_image(
    State(bakery): State<Bakery>,
    Path((provider, id)): Path<(String, String)>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let list = providers(&bakery, uri.path()).await?;
    let Some((_, imgs)) = list.iter().find(|(p, _)| *p == provider) else {
        return Err(ApiError::options_not_found(
            uri.path(),
            format!("Bake options not found. Cloud provider {provider} not found"),
        ));
    };
    match imgs.iter().find(|b| b.id == id) {
        Some(b) => Ok(Json(base_image_json(b))),
        None => {
            let ids: Vec<&str> = imgs.iter().map(|b| b.id.as_str()).collect();
            Err(ApiError::options_not_found(
                uri.path(),
                format!(
                    "Bake options not found. Can't find base image with id {id} in {provider} base images: {}",
                    ids.join(", ")
                ),
            ))
        }
    }
}
