//! The settings of the clouds beside AWS, with Rosco's keys: Google (`google.*`, with the
//! deprecated `google.gce.bakeryDefaults` Rosco still merges in), Docker (`docker.*`), Alibaba
//! Cloud, Tencent Cloud, Huawei Cloud and Oracle Cloud (`alicloud.bakeryDefaults.*`,
//! `tencentcloud.…`, `huaweicloud.…`, `oracle.bakeryDefaults.*` and `oracle.accounts`) and
//! Azure (`azure.bakeryDefaults.*` and `azure.accounts`).
//! Credentials are [`Secret`]s: they print as `******`.

use super::model::{BaseImage, Secret, lenient_string, lenient_string_req};
use serde::{Deserialize, Serialize, Serializer};

/// A secret shows as `******` wherever settings are serialized (the admin CLI's `bakery show`):
/// no serialized view of the settings ever holds one.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("******")
    }
}

/// A base image and its settings per region (Rosco's `…OperatingSystemVirtualizationSettings`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RegionalBaseImage<V> {
    pub base_image: BaseImage,
    pub virtualization_settings: Vec<V>,
}

/// `alicloud`: Rosco's `RoscoAliCloudConfiguration`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AlicloudSettings {
    pub enabled: bool,
    pub bakery_defaults: AlicloudBakeryDefaults,
    /// Clouddriver's accounts, when the file is shared with it: accepted, not read.
    pub accounts: Option<serde_norway::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AlicloudBakeryDefaults {
    #[serde(deserialize_with = "lenient_string")]
    pub alicloud_access_key: Option<String>,
    pub alicloud_secret_key: Option<Secret>,
    #[serde(deserialize_with = "lenient_string")]
    pub alicloud_v_switch_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub alicloud_vpc_id: Option<String>,
    pub template_file: Option<String>,
    pub base_images: Vec<RegionalBaseImage<AlicloudVirtualizationSettings>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AlicloudVirtualizationSettings {
    #[serde(deserialize_with = "lenient_string_req")]
    pub region: String,
    #[serde(deserialize_with = "lenient_string")]
    pub instance_type: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub source_image: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub ssh_user_name: Option<String>,
}

/// `tencentcloud`: Rosco's `RoscoTencentCloudConfiguration`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TencentcloudSettings {
    pub enabled: bool,
    pub bakery_defaults: TencentcloudBakeryDefaults,
    pub accounts: Option<serde_norway::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TencentcloudBakeryDefaults {
    #[serde(deserialize_with = "lenient_string")]
    pub secret_id: Option<String>,
    pub secret_key: Option<Secret>,
    #[serde(deserialize_with = "lenient_string")]
    pub subnet_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub vpc_id: Option<String>,
    pub associate_public_ip_address: Option<bool>,
    pub template_file: Option<String>,
    pub base_images: Vec<RegionalBaseImage<TencentcloudVirtualizationSettings>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TencentcloudVirtualizationSettings {
    #[serde(deserialize_with = "lenient_string_req")]
    pub region: String,
    #[serde(deserialize_with = "lenient_string")]
    pub zone: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub instance_type: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub source_image_id: Option<String>,
    /// In Rosco's settings class, read by nothing.
    #[serde(deserialize_with = "lenient_string")]
    pub image_name: Option<String>,
    /// Rosco's shipped `rosco.yml` spells it `sshUsername` (Spring binds either).
    #[serde(deserialize_with = "lenient_string", alias = "sshUsername")]
    pub ssh_user_name: Option<String>,
}

/// `huaweicloud`: Rosco's `RoscoHuaweiCloudConfiguration`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HuaweicloudSettings {
    pub enabled: bool,
    pub bakery_defaults: HuaweicloudBakeryDefaults,
    pub accounts: Option<serde_norway::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HuaweicloudBakeryDefaults {
    #[serde(deserialize_with = "lenient_string")]
    pub auth_url: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub username: Option<String>,
    pub password: Option<Secret>,
    #[serde(deserialize_with = "lenient_string")]
    pub project_name: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub domain_name: Option<String>,
    pub insecure: Option<bool>,
    pub template_file: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub vpc_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub subnet_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub security_group: Option<String>,
    pub eip_bandwidth_size: Option<i64>,
    pub base_images: Vec<RegionalBaseImage<HuaweicloudVirtualizationSettings>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HuaweicloudVirtualizationSettings {
    #[serde(deserialize_with = "lenient_string_req")]
    pub region: String,
    #[serde(deserialize_with = "lenient_string")]
    pub eip_type: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub instance_type: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub source_image_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub ssh_user_name: Option<String>,
}

/// `oracle`: Rosco's `OracleBakeryDefaults` and `OracleConfigurationProperties` (the accounts
/// Halyard writes beside them).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OracleSettings {
    pub enabled: bool,
    pub bakery_defaults: OracleBakeryDefaults,
    pub accounts: Vec<OracleAccount>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OracleBakeryDefaults {
    #[serde(deserialize_with = "lenient_string")]
    pub availability_domain: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub subnet_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub instance_shape: Option<String>,
    pub template_file: Option<String>,
    pub base_images: Vec<OracleBaseImage>,
}

/// Oracle's one settings block per base image (not a list per region: the region is the
/// account's).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OracleBaseImage {
    pub base_image: BaseImage,
    pub virtualization_settings: OracleVirtualizationSettings,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OracleVirtualizationSettings {
    #[serde(deserialize_with = "lenient_string")]
    pub base_image_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub ssh_user_name: Option<String>,
}

/// Rosco's `ManagedOracleAccount`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OracleAccount {
    #[serde(deserialize_with = "lenient_string_req")]
    pub name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub compartment_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub user_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub fingerprint: Option<String>,
    /// The API signing key's file (Packer's `key_file`), on kiln's machine.
    #[serde(deserialize_with = "lenient_string")]
    pub ssh_private_key_file_path: Option<String>,
    pub private_key_passphrase: Option<Secret>,
    #[serde(deserialize_with = "lenient_string")]
    pub tenancy_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub region: Option<String>,
}

/// `azure`: Rosco's `RoscoAzureConfiguration` (bakery defaults and the accounts Halyard writes
/// beside them).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AzureSettings {
    pub enabled: bool,
    pub bakery_defaults: AzureBakeryDefaults,
    pub accounts: Vec<AzureAccount>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AzureBakeryDefaults {
    pub template_file: Option<String>,
    pub base_images: Vec<AzureBaseImage>,
}

/// Azure's base image: the common fields and the marketplace image it starts from, in one block
/// (Rosco's `AzureOperatingSystemSettings`, which `/bakeOptions/azure` lists whole).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AzureBaseImage {
    pub base_image: AzureImage,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AzureImage {
    #[serde(flatten)]
    pub base: BaseImage,
    #[serde(deserialize_with = "lenient_string")]
    pub publisher: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub offer: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub sku: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub version: Option<String>,
}

/// Rosco's `ManagedAzureAccount`: a service principal and where Packer works.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AzureAccount {
    #[serde(deserialize_with = "lenient_string_req")]
    pub name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub client_id: Option<String>,
    /// The service principal's client secret.
    pub app_key: Option<Secret>,
    #[serde(deserialize_with = "lenient_string")]
    pub tenant_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub subscription_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub object_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub packer_resource_group: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub packer_storage_account: Option<String>,
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    /// The four clouds' sections as Rosco's shipped `rosco.yml` and Halyard write them:
    /// placeholders with defaults, Rosco's `sshUsername` spelling, kebab-case keys.
    const ROSCO_YML: &str = r#"
alicloud:
  enabled: ${ALICLOUD_ENABLED:false}
  bakeryDefaults:
    alicloud-access-key: LTAI-1
    alicloudSecretKey: ${ALICLOUD_SECRET:}
    baseImages:
      - baseImage: {id: ubuntu-1604, shortDescription: v16.04, detailedDescription: Ubuntu v16.04, packageType: deb, templateFile: alicloud.json}
        virtualizationSettings:
          - {region: cn-hangzhou, instanceType: ecs.c5.large, sourceImage: ubuntu_16_04_64_20G_alibase_20190620.vhd, sshUserName: root}
huaweicloud:
  enabled: ${HUAWEICLOUD_ENABLED:true}
  bakeryDefaults:
    authUrl: ${HUAWEICLOUD_AUTH_URL:}
    password: ${HUAWEICLOUD_PASSWORD:pw}
    insecure: ${HUAWEICLOUD_INSECURE:false}
    eipBandwidthSize: ${HUAWEICLOUD_EIP_BANDWIDTH_SIZE:2}
    templateFile: huaweicloud.json
    baseImages:
    - baseImage: {id: ubuntu-1604, packageType: deb}
      virtualizationSettings:
      - {region: cn-north-1, instanceType: s3.small.1, sourceImageId: f1dd, sshUserName: ubuntu, eipType: 5_bgp}
tencentcloud:
  enabled: true
  bakeryDefaults:
    secretId: ${TENCENTCLOUD_SECRET_ID:}
    secretKey: ${TENCENTCLOUD_SECRET_KEY:}
    templateFile: tencentcloud.json
    baseImages:
      - baseImage: {id: ubuntu-1604, packageType: deb, osType: linux}
        virtualizationSettings:
          - {region: ap-guangzhou, zone: ap-guangzhou-3, instanceType: S3.SMALL1, sourceImageId: img-pyqx34y1, sshUsername: ubuntu}
oracle:
  enabled: true
  bakeryDefaults:
    availability-domain: "lrFb:US-ASHBURN-AD-1"
    baseImages:
    - baseImage: {id: ubuntu16_04}
      virtualizationSettings: {baseImageId: ocid1.image.x, sshUserName: ubuntu}
  accounts:
  - {name: a1, privateKeyPassphrase: hush, region: us-ashburn-1}
azure:
  enabled: ${AZURE_ENABLED:true}
  bakeryDefaults:
    templateFile: azure-linux.pkr.hcl
    baseImages:
    - baseImage:
        id: ubuntu-1804
        shortDescription: v18.04
        detailedDescription: Ubuntu Server 18.04-LTS
        publisher: Canonical
        offer: UbuntuServer
        sku: 18.04-LTS
        version: 18.04.201804262
        osType: Linux
        packageType: deb
  accounts:
  - name: azure-1
    clientId: 123ABC-456DEF
    appKey: blahblah
    tenantId: DEF456
    subscriptionId: 123ABC
    objectId: 2121ce3f
    packerResourceGroup: resGroup
    packerStorageAccount: packerStorage
"#;

    #[test]
    fn roscos_and_halyards_sections_load_without_warnings() {
        let loaded = load_str(ROSCO_YML, &|_| None).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let s = loaded.settings;
        assert!(!s.alicloud.enabled && s.huaweicloud.enabled && s.tencentcloud.enabled);
        let ali = &s.alicloud.bakery_defaults;
        assert_eq!(ali.alicloud_access_key.as_deref(), Some("LTAI-1"));
        assert_eq!(
            ali.base_images[0].virtualization_settings[0].region,
            "cn-hangzhou"
        );
        let hw = &s.huaweicloud.bakery_defaults;
        assert_eq!((hw.insecure, hw.eip_bandwidth_size), (Some(false), Some(2)));
        assert_eq!(hw.password.as_ref().map(|p| p.expose()), Some("pw"));
        let tc = &s.tencentcloud.bakery_defaults.base_images[0].virtualization_settings[0];
        assert_eq!(tc.ssh_user_name.as_deref(), Some("ubuntu"));
        assert_eq!(
            s.oracle.bakery_defaults.availability_domain.as_deref(),
            Some("lrFb:US-ASHBURN-AD-1")
        );
        // Secrets never show in Debug or in a serialized view.
        let shown = format!(
            "{:?} {}",
            s.oracle,
            serde_json::to_string(&s.oracle).unwrap()
        );
        assert!(!shown.contains("hush") && !format!("{:?}", s.huaweicloud).contains("\"pw\""));
        assert!(s.azure.enabled);
        let ubuntu = &s.azure.bakery_defaults.base_images[0].base_image;
        assert_eq!(ubuntu.base.id, "ubuntu-1804");
        assert_eq!(ubuntu.base.package_type.as_deref(), Some("deb"));
        assert_eq!(ubuntu.sku.as_deref(), Some("18.04-LTS"));
        let account = &s.azure.accounts[0];
        assert_eq!(account.packer_resource_group.as_deref(), Some("resGroup"));
        assert_eq!(
            account.app_key.as_ref().map(|k| k.expose()),
            Some("blahblah")
        );
        let shown = format!("{:?} {}", s.azure, serde_json::to_string(&s.azure).unwrap());
        assert!(!shown.contains("blahblah"), "{shown}");
        // /bakeOptions/azure lists the marketplace image with the common fields, as Rosco does.
        let listed = serde_json::to_value(ubuntu).unwrap();
        assert_eq!(listed["publisher"], "Canonical");
        assert_eq!(listed["id"], "ubuntu-1804");
    }
}

/// `google`: Rosco's `RoscoGoogleConfiguration`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GoogleSettings {
    pub enabled: bool,
    pub bakery_defaults: GceBakeryDefaults,
    /// The deprecated `google.gce.bakeryDefaults`, merged under `google.bakeryDefaults`.
    pub gce: Option<GceLegacy>,
    pub accounts: Vec<GoogleAccount>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GceLegacy {
    pub bakery_defaults: GceBakeryDefaults,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GceBakeryDefaults {
    #[serde(deserialize_with = "lenient_string")]
    pub zone: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub network: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub network_project_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub subnetwork: Option<String>,
    pub use_internal_ip: Option<bool>,
    #[serde(deserialize_with = "lenient_string")]
    pub template_file: Option<String>,
    pub base_images: Vec<GceBaseImage>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GceBaseImage {
    pub base_image: BaseImage,
    pub virtualization_settings: GceVirtualizationSettings,
}

/// Either `sourceImage` or `sourceImageFamily`; the image wins when both are set.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GceVirtualizationSettings {
    #[serde(deserialize_with = "lenient_string")]
    pub source_image: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub source_image_family: Option<String>,
}

/// `google.accounts[]`: the project a bake runs in and its service account's key file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GoogleAccount {
    #[serde(deserialize_with = "lenient_string_req")]
    pub name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub project: Option<String>,
    /// The service account's JSON key (a path: Packer reads the file; it never enters kiln).
    #[serde(deserialize_with = "lenient_string")]
    pub json_path: Option<String>,
}

impl GoogleSettings {
    /// Rosco's `getBakeryDefaults`: `google.bakeryDefaults` over the deprecated
    /// `google.gce.bakeryDefaults`, field by field; base images of both, current ones first.
    pub fn defaults(&self) -> GceBakeryDefaults {
        let Some(old) = self.gce.as_ref().map(|g| &g.bakery_defaults) else {
            return self.bakery_defaults.clone();
        };
        let new = &self.bakery_defaults;
        let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
        GceBakeryDefaults {
            zone: pick(&new.zone, &old.zone),
            network: pick(&new.network, &old.network),
            network_project_id: pick(&new.network_project_id, &old.network_project_id),
            subnetwork: pick(&new.subnetwork, &old.subnetwork),
            use_internal_ip: new.use_internal_ip.or(old.use_internal_ip),
            template_file: pick(&new.template_file, &old.template_file),
            base_images: new
                .base_images
                .iter()
                .chain(&old.base_images)
                .cloned()
                .collect(),
        }
    }
}

/// `docker`: Rosco's `RoscoDockerConfiguration`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DockerSettings {
    pub enabled: bool,
    pub bakery_defaults: DockerBakeryDefaults,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DockerBakeryDefaults {
    /// Where baked images are pushed (`<targetRepository>/<image>:<tag>`).
    #[serde(deserialize_with = "lenient_string")]
    pub target_repository: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub template_file: Option<String>,
    pub base_images: Vec<DockerBaseImage>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DockerBaseImage {
    pub base_image: BaseImage,
    pub virtualization_settings: DockerVirtualizationSettings,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DockerVirtualizationSettings {
    #[serde(deserialize_with = "lenient_string")]
    pub source_image: Option<String>,
}
