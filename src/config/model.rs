//! The typed settings. Field names are the camelCase form of Rosco's keys; the loader has already
//! folded Spring's relaxed spellings (`default-virtualization-type`) into that form.

use super::{DockerSettings, DurationText, GoogleSettings};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Everything kiln reads from its configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Settings {
    pub server: ServerSettings,
    pub rosco: RoscoSettings,
    pub default_cloud_provider_type: Option<String>,
    #[serde(deserialize_with = "comma_list")]
    pub templates_needing_root: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient_string")]
    pub debian_repository: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub yum_repository: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub chocolatey_repository: Option<String>,
    pub packer: PackerSettings,
    pub aws: AwsSettings,
    /// Google Compute Engine (Rosco's `gce` provider).
    pub google: GoogleSettings,
    pub docker: DockerSettings,
    /// kiln: local images baked with Packer's qemu builder.
    pub qemu: QemuSettings,
    /// Alibaba Cloud, Tencent Cloud, Huawei Cloud, Oracle Cloud and Azure (see `config::clouds`).
    pub alicloud: super::AlicloudSettings,
    pub tencentcloud: super::TencentcloudSettings,
    pub huaweicloud: super::HuaweicloudSettings,
    pub oracle: super::OracleSettings,
    pub azure: super::AzureSettings,
    pub redis: RedisSettings,
    /// Rosco's manifest bakes: the Helm executables (`helm.v3ExecutablePath`, …).
    pub helm: HelmSettings,
    /// Rosco's `helmfile.executablePath`.
    pub helmfile: HelmfileSettings,
    /// Rosco's `kustomize.v3ExecutablePath` and `kustomize.v4ExecutablePath`.
    pub kustomize: KustomizeSettings,
    pub kiln: KilnSettings,
    /// Files delivered the Operator's way (`profiles__rosco__packer__<name>` → contents).
    pub files: BTreeMap<String, String>,
    /// Spring settings kiln accepts and does not need (kept so they are not reported unknown).
    pub spectator: Option<serde_norway::Value>,
    pub swagger: Option<serde_norway::Value>,
    /// Other Spinnaker services (`services.clouddriver.baseUrl`: where source images are looked
    /// up by name, as Rosco does); see [`Settings::clouddriver_base_url`].
    pub services: Option<serde_norway::Value>,
    /// Rosco's `bakeAccount`: the account source images are looked up in when the request names
    /// none (`aws.defaultAccount` wins).
    #[serde(deserialize_with = "lenient_string")]
    pub bake_account: Option<String>,
    pub endpoints: Option<serde_norway::Value>,
    pub spring: Option<serde_norway::Value>,
    pub logging: Option<serde_norway::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServerSettings {
    pub port: u16,
    pub address: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            port: 8087,
            address: "127.0.0.1".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RoscoSettings {
    pub config_dir: Option<PathBuf>,
    pub jobs: RoscoJobs,
    /// Rosco's poller settings: kiln needs no poller, so they are accepted and ignored.
    pub polling: Option<serde_norway::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RoscoJobs {
    pub local: RoscoLocalJobs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RoscoLocalJobs {
    pub timeout_minutes: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PackerSettings {
    pub timestamp: bool,
    pub additional_parameters: Vec<String>,
    /// kiln: `false` lets Packer phone home (HashiCorp's checkpoint service); by default every
    /// Packer kiln starts gets `CHECKPOINT_DISABLE=1`.
    pub checkpoint_disable: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AwsSettings {
    pub enabled: bool,
    pub bakery_defaults: AwsBakeryDefaults,
    /// Rosco's dynamic base images: `aws.base.<os>.<vmType>.<label>.<region>`.
    pub base: Option<serde_norway::Value>,
    pub accounts: Option<serde_norway::Value>,
    /// The Spinnaker account source images are looked up in (Clouddriver) when the request has
    /// no `account_name`.
    #[serde(deserialize_with = "lenient_string")]
    pub default_account: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AwsBakeryDefaults {
    #[serde(deserialize_with = "lenient_string")]
    pub aws_access_key: Option<String>,
    pub aws_secret_key: Option<Secret>,
    #[serde(deserialize_with = "lenient_string")]
    pub aws_subnet_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub aws_vpc_id: Option<String>,
    pub aws_associate_public_ip_address: Option<bool>,
    /// kiln: the EC2 API endpoint Packer talks to (VPC endpoints, GovCloud-style endpoints, moto).
    #[serde(deserialize_with = "lenient_string")]
    pub aws_ec2_endpoint: Option<String>,
    /// kiln: the EBS direct API endpoint the ebs-direct builder talks to (VPC endpoints, moto).
    #[serde(deserialize_with = "lenient_string")]
    pub aws_ebs_endpoint: Option<String>,
    /// kiln: skip the SDK's region, credential and metadata checks (EC2 API emulators).
    pub aws_skip_validation: bool,
    pub template_file: Option<String>,
    pub default_virtualization_type: Option<String>,
    pub masked_packer_parameters: Option<Vec<String>>,
    pub base_images: Vec<AwsBaseImage>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AwsBaseImage {
    pub base_image: BaseImage,
    pub virtualization_settings: Vec<AwsVirtualizationSettings>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BaseImage {
    #[serde(deserialize_with = "lenient_string_req")]
    pub id: String,
    pub short_description: Option<String>,
    pub detailed_description: Option<String>,
    pub package_type: Option<String>,
    pub template_file: Option<String>,
    pub os_type: Option<String>,
    pub custom_repository: Option<String>,
    /// kiln: how bakes of this image are built: `packer` (the default) or `ebs-direct` (AWS:
    /// the root snapshot written from kiln's host through the EBS direct APIs, no instance).
    #[serde(
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub builder: Option<String>,
    /// GCE: the source is an image family (Deck says so in its tooltip).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_image_family: Option<bool>,
    /// What a provider lists beside the common fields in `/bakeOptions` (Azure: its marketplace
    /// image's publisher, offer, sku and version). Not configuration: the provider fills it.
    #[serde(skip)]
    pub listed: Vec<(&'static str, String)>,
    /// kiln: a total time limit for bakes of this image.
    #[serde(skip_serializing)]
    pub timeout: Option<DurationText>,
    /// kiln: a no-output limit for bakes of this image.
    #[serde(skip_serializing)]
    pub idle_timeout: Option<DurationText>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AwsVirtualizationSettings {
    #[serde(deserialize_with = "lenient_string_req")]
    pub region: String,
    pub virtualization_type: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub instance_type: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub source_ami: Option<String>,
    pub most_recent: bool,
    /// kiln: who owns the images a `sourceAmi` name is looked up among (`self` by default; an
    /// account id such as Canonical's 099720109477, or `amazon`).
    #[serde(deserialize_with = "lenient_string")]
    pub source_ami_owner: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub ssh_user_name: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub win_rm_user_name: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub spot_price: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub spot_price_auto_product: Option<String>,
}

/// kiln: the `qemu` provider (region `local`): qcow2 images baked on this machine.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct QemuSettings {
    pub enabled: bool,
    /// How the build VM runs: `tcg` (emulation, the default: works everywhere) or `kvm`.
    pub accelerator: QemuAccelerator,
    /// The template for qemu bakes (default `qemu.json`).
    pub template_file: Option<String>,
    /// Base images besides those `kiln base-image build` put in the data dir (these win on
    /// the same id).
    pub base_images: Vec<QemuBaseImage>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QemuAccelerator {
    #[default]
    Tcg,
    Kvm,
}

impl QemuAccelerator {
    pub fn as_str(self) -> &'static str {
        match self {
            QemuAccelerator::Tcg => "tcg",
            QemuAccelerator::Kvm => "kvm",
        }
    }
}

/// A qemu base image: an ext4 root filesystem disk (no bootloader) booted with its kernel and
/// initrd, reachable over SSH with a key.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct QemuBaseImage {
    #[serde(deserialize_with = "lenient_string_req")]
    pub id: String,
    pub short_description: Option<String>,
    pub package_type: Option<String>,
    pub template_file: Option<String>,
    pub custom_repository: Option<String>,
    pub disk: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The kernel command line (default `root=/dev/vda rw console=ttyS0`).
    pub append: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub ssh_user_name: Option<String>,
    /// The private key that logs in as `sshUserName`.
    pub ssh_key: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RedisSettings {
    pub connection: Option<String>,
    pub timeout: Option<u64>,
    /// kiln: a PEM file of the CA certificates to trust for `rediss://` instead of the system's
    /// (a private CA); without it, the system's roots (and `SSL_CERT_FILE`) are trusted.
    pub ca_cert_file: Option<PathBuf>,
}

/// kiln's own settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KilnSettings {
    pub data_dir: Option<PathBuf>,
    /// The Packer executable (default `packer` on PATH).
    pub packer_path: Option<PathBuf>,
    pub jobs: KilnJobs,
    pub logs: KilnLogs,
    /// The store engine: `sqlite` (default) or `redis` (see `crate::config::Engine`).
    pub store: Option<String>,
    /// Several instances on one Redis: heartbeats and orphaned bakes.
    pub ha: KilnHa,
    /// The HTTP server's defences against slow and idle clients.
    pub http: KilnHttp,
    /// Manifest bakes' limits (`kiln.manifests.*`).
    pub manifests: KilnManifests,
    /// What kiln deletes, and when: old bake records, local qemu images (`kiln gc`).
    pub retention: KilnRetention,
}

/// Rosco's `helm.*` (`RoscoHelmConfigurationProperties`): Rosco's defaults are `helm3` and
/// `helm` on PATH, and a threshold of 0 (overrides always on the command line).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HelmSettings {
    #[serde(deserialize_with = "lenient_string")]
    pub v3_executable_path: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub v2_executable_path: Option<String>,
    /// Overrides whose `--set` text is this long or longer go into a values file instead
    /// (0: never).
    pub overrides_file_threshold: Option<usize>,
}

/// Rosco's `helmfile.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HelmfileSettings {
    #[serde(deserialize_with = "lenient_string")]
    pub executable_path: Option<String>,
}

/// Rosco's `kustomize.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KustomizeSettings {
    #[serde(deserialize_with = "lenient_string")]
    pub v3_executable_path: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub v4_executable_path: Option<String>,
}

/// kiln: the limits of manifest bakes (Rosco has none). `timeout` and `maxConcurrent` are read
/// at start; the others apply to the next bake after a reload.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KilnManifests {
    /// How long one bake may take, its fetches and the renderer included (default 2m).
    pub timeout: Option<DurationText>,
    /// The most bytes of one input artifact (default 64 MiB), of an unpacked archive (4× that)
    /// and of the rendered output (default 16 MiB).
    pub max_artifact_bytes: Option<u64>,
    pub max_output_bytes: Option<u64>,
    /// Manifest bakes running at once (default 4); more wait, within the route's time limit.
    pub max_concurrent: Option<usize>,
    /// Whether `http/file` artifacts may name `file://` URLs on kiln's machine (default false).
    pub allow_file_urls: bool,
}

/// `kiln.retention`: what retention deletes. Nothing is deleted by age or count unless set;
/// run dirs and qemu staging of settled bakes always go. Never a running bake's files, never
/// an AMI or any other cloud resource.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KilnRetention {
    pub bakes: KilnRetentionBakes,
    pub images: KilnRetentionImages,
    /// How often retention runs by itself (default 1h; `0s` turns the schedule off, leaving
    /// `kiln gc`).
    pub interval: Option<DurationText>,
}

/// `kiln.retention.bakes`: settled bake records (with their logs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KilnRetentionBakes {
    /// Deletes settled bakes that settled longer ago than this.
    pub max_age: Option<DurationText>,
    /// Keeps at most this many settled bakes (the newest).
    pub max_count: Option<usize>,
}

/// `kiln.retention.images`: local qcow2 images of qemu bakes (`<dataDir>/images/<id>`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KilnRetentionImages {
    /// Removes images of bakes that settled longer ago than this (the record stays).
    pub max_age: Option<DurationText>,
}

/// `kiln.http`: how long a client may take and how many connections may be open (read at
/// start; a change needs a restart).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KilnHttp {
    /// The longest kiln waits for a request's headers, on a new connection and between
    /// requests on a kept-alive one (default 10s).
    pub header_read_timeout: Option<DurationText>,
    /// Open connections at most (default 1024, and never more than the open-files limit
    /// leaves room for).
    pub max_connections: Option<usize>,
    /// The longest one request may take before its answer starts, reading its body included
    /// (default 30s); a log stream's answer starts at once.
    pub request_timeout: Option<DurationText>,
}

/// `kiln.ha`: how instances sharing a store (`kiln.store: redis`) tell each other they live.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KilnHa {
    /// The longest a dead instance's bakes stay unfinished before a live instance settles them
    /// as orphaned (default 60s).
    pub orphan_timeout: Option<DurationText>,
    /// How often each instance refreshes its heartbeat and looks for orphans (default 5s).
    pub heartbeat: Option<DurationText>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KilnJobs {
    pub timeout: Option<DurationText>,
    pub idle_timeout: Option<DurationText>,
    pub kill_grace: Option<DurationText>,
    pub max_concurrent: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KilnLogs {
    pub max_bytes: Option<u64>,
}

impl Settings {
    pub fn data_dir(&self) -> PathBuf {
        self.kiln
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data"))
    }

    /// Rosco's `configDir`; kiln's default is a folder in the data dir it fills with its
    /// shipped templates.
    pub fn config_dir(&self) -> PathBuf {
        self.rosco
            .config_dir
            .clone()
            .unwrap_or_else(|| self.data_dir().join("packer"))
    }

    /// `services.clouddriver.baseUrl`, when set: source image names are looked up there.
    pub fn clouddriver_base_url(&self) -> Option<String> {
        let url = self.services.as_ref()?.get("clouddriver")?.get("baseUrl")?;
        url.as_str()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
    }

    /// The account a source image is looked up in when the request names none.
    pub fn default_account(&self) -> Option<&str> {
        self.aws
            .default_account
            .as_deref()
            .or(self.bake_account.as_deref())
            .map(str::trim)
            .filter(|a| !a.is_empty())
    }

    pub fn default_provider(&self) -> &str {
        self.default_cloud_provider_type.as_deref().unwrap_or("aws")
    }

    pub fn templates_needing_root(&self) -> Vec<String> {
        self.templates_needing_root
            .clone()
            .unwrap_or_else(|| vec!["aws-chroot.json".into()])
    }

    /// The total limit: `kiln.jobs.timeout`, else Rosco's `timeoutMinutes`, else Rosco's
    /// shipped 30 minutes.
    pub fn job_timeout(&self) -> Option<Duration> {
        if let Some(t) = self.kiln.jobs.timeout {
            return Some(t.0).filter(|d| !d.is_zero());
        }
        let minutes = self.rosco.jobs.local.timeout_minutes.unwrap_or(30);
        Some(Duration::from_secs(minutes * 60)).filter(|d| !d.is_zero())
    }

    pub fn idle_timeout(&self) -> Option<Duration> {
        self.kiln
            .jobs
            .idle_timeout
            .map(|d| d.0)
            .filter(|d| !d.is_zero())
    }

    pub fn kill_grace(&self) -> Duration {
        self.kiln
            .jobs
            .kill_grace
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(120))
    }

    pub fn max_concurrent(&self) -> usize {
        self.kiln.jobs.max_concurrent.unwrap_or(8).max(1)
    }

    /// How often an instance beats and looks for orphans (`kiln.ha.heartbeat`, default 5s).
    pub fn heartbeat_every(&self) -> Duration {
        self.kiln
            .ha
            .heartbeat
            .map(|d| d.0)
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(5))
    }

    /// `kiln.ha.orphanTimeout` (default 60s).
    pub fn orphan_timeout(&self) -> Duration {
        self.kiln
            .ha
            .orphan_timeout
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(60))
    }

    /// How long a heartbeat lives: the orphan timeout less one check interval, so a peer that
    /// looks once per interval settles a dead instance's bakes within the orphan timeout.
    pub fn heartbeat_ttl(&self) -> Duration {
        self.orphan_timeout()
            .saturating_sub(self.heartbeat_every())
            .max(self.heartbeat_every())
    }

    /// `kiln.http.headerReadTimeout` (default 10s; never zero, which would disable it).
    pub fn header_read_timeout(&self) -> Duration {
        self.kiln
            .http
            .header_read_timeout
            .map(|d| d.0)
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(10))
    }

    /// `kiln.http.requestTimeout` (default 30s; never zero).
    pub fn request_timeout(&self) -> Duration {
        self.kiln
            .http
            .request_timeout
            .map(|d| d.0)
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(30))
    }

    /// `kiln.http.maxConnections` as configured (default 1024); the server lowers it to what
    /// the open-files limit allows.
    pub fn max_connections(&self) -> usize {
        self.kiln.http.max_connections.unwrap_or(1024).max(1)
    }

    /// How often retention runs by itself: `kiln.retention.interval`, default 1h, at least 1m
    /// (it walks the data dir and, on Redis, scans the keys); `None` when set to zero.
    pub fn retention_interval(&self) -> Option<Duration> {
        let every = self
            .kiln
            .retention
            .interval
            .map_or(Duration::from_secs(3600), |d| d.0);
        (!every.is_zero()).then(|| every.max(Duration::from_secs(60)))
    }

    pub fn max_log_bytes(&self) -> u64 {
        self.kiln.logs.max_bytes.unwrap_or(10 * 1024 * 1024)
    }

    pub fn packer_path(&self) -> PathBuf {
        self.kiln
            .packer_path
            .clone()
            .unwrap_or_else(|| PathBuf::from("packer"))
    }

    pub fn masked_parameters(&self) -> Vec<String> {
        self.aws
            .bakery_defaults
            .masked_packer_parameters
            .clone()
            .unwrap_or_else(|| vec!["aws_access_key".into(), "aws_secret_key".into()])
    }
}

/// A secret from configuration. It prints as `******` so a `Debug` of the settings is safe.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("******")
    }
}

/// Spring binds any scalar to a String field; so does kiln (`spotPrice: 0` is the string "0").
pub(super) fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_norway::Value>::deserialize(d)?;
    match v {
        None | Some(serde_norway::Value::Null) => Ok(None),
        Some(serde_norway::Value::String(s)) => Ok(Some(s)),
        Some(serde_norway::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(serde_norway::Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(serde::de::Error::custom(
            "expected a single value, found a list or map",
        )),
    }
}

pub(super) fn lenient_string_req<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient_string(d)?.unwrap_or_default())
}

/// Rosco reads `templatesNeedingRoot` as a comma-separated string; a YAML list works too.
fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v = Option::<serde_norway::Value>::deserialize(d)?;
    match v {
        None | Some(serde_norway::Value::Null) => Ok(None),
        Some(serde_norway::Value::String(s)) => Ok(Some(
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        )),
        Some(serde_norway::Value::Sequence(items)) => Ok(Some(
            items
                .into_iter()
                .filter_map(|i| i.as_str().map(String::from))
                .collect(),
        )),
        Some(_) => Err(serde::de::Error::custom(
            "expected a comma-separated string or a list",
        )),
    }
}
