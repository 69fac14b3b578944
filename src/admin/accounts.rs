//! `kiln config provider <google|oracle|azure> account add NAME …|edit NAME …|delete NAME|list`:
//! Halyard's `hal config provider <cloud> account …`, writing `<cloud>.accounts` (the credentials
//! Rosco's bake handlers read) in the config file kiln serves. Each cloud's flags are Halyard's,
//! an [`Edit`] applied by `clouds::apply` as `bakery edit`'s are: an empty value removes its key,
//! a secret flag takes no value and reads the secret without echo (or one line of stdin), and a
//! key-file flag must name a file kiln can read (its contents are never read).

use super::clouds::{self, AZURE, Cloud, CloudBakeryCommand, Edit, GOOGLE, ORACLE};
use super::file::{ConfigFile, report, require_config};
use super::view;
use super::yaml::{self, Changes};
use anyhow::bail;
use clap::{Args, Subcommand};
use serde_norway::{Mapping, Value};
use std::path::Path;

/// The commands of a cloud with accounts: `E` is its `bakery edit` flags, `A` its
/// `account add|edit` flags.
#[derive(Debug, Subcommand)]
pub enum CloudWithAccountsCommand<E: Args + Edit, A: Args + Edit> {
    /// The bakery's settings (`<cloud>.bakeryDefaults`).
    #[command(subcommand)]
    Bakery(CloudBakeryCommand<E>),
    /// The accounts bakes run in (`<cloud>.accounts`), as Halyard's `account` commands write
    /// them.
    #[command(subcommand)]
    Account(AccountCommand<A>),
}

/// `kiln config provider <cloud> …` of a cloud with accounts.
pub(crate) fn run_cloud<E: Args + Edit, A: Args + Edit>(
    config: Option<&Path>,
    cmd: &CloudWithAccountsCommand<E, A>,
) -> anyhow::Result<()> {
    match cmd {
        CloudWithAccountsCommand::Bakery(b) => clouds::bakery(config, b),
        CloudWithAccountsCommand::Account(a) => run(config, a),
    }
}

/// `<cloud> account …`; `A` is the cloud's account flags.
#[derive(Debug, Subcommand)]
pub enum AccountCommand<A: Args + Edit> {
    /// Add an account (refused when the name exists).
    Add {
        name: String,
        #[command(flatten)]
        fields: Box<A>,
    },
    /// Change an account; an empty value removes a key.
    Edit {
        name: String,
        #[command(flatten)]
        fields: Box<A>,
    },
    /// Remove an account.
    Delete { name: String },
    /// List the accounts as kiln loads them, secrets as `******`.
    List,
}

/// `google.accounts[]` (Halyard's `hal config provider google account add`).
#[derive(Debug, Args)]
pub struct GoogleAccountArgs {
    /// The project bakes run in.
    #[arg(long)]
    project: Option<String>,
    /// The service account's JSON key: a file on kiln's host, which Packer reads (kiln never
    /// does); it must exist and be readable.
    #[arg(long, value_name = "FILE")]
    json_path: Option<String>,
}

impl Edit for GoogleAccountArgs {
    const CLOUD: Cloud = GOOGLE;
    fn strings(&self) -> Vec<(&'static str, &Option<String>)> {
        vec![("project", &self.project), ("jsonPath", &self.json_path)]
    }
    fn files(&self) -> &'static [&'static str] {
        &["jsonPath"]
    }
}

/// `oracle.accounts[]` (Halyard's `hal config provider oracle account add`).
#[derive(Debug, Args)]
pub struct OracleAccountArgs {
    /// The compartment's OCID.
    #[arg(long, value_name = "OCID")]
    compartment_id: Option<String>,
    /// The API user's OCID.
    #[arg(long, value_name = "OCID")]
    user_id: Option<String>,
    /// The API signing key's fingerprint.
    #[arg(long)]
    fingerprint: Option<String>,
    /// The API signing key (PEM) on kiln's host, which Packer reads; it must exist and be
    /// readable.
    #[arg(long, value_name = "FILE")]
    ssh_private_key_file_path: Option<String>,
    /// Read the signing key's passphrase: without echo from a terminal, else one line of
    /// standard input.
    #[arg(long)]
    private_key_passphrase: bool,
    /// The tenancy's OCID.
    #[arg(long, value_name = "OCID")]
    tenancy_id: Option<String>,
    /// The region bakes run in (e.g. us-ashburn-1).
    #[arg(long)]
    region: Option<String>,
}

impl Edit for OracleAccountArgs {
    const CLOUD: Cloud = ORACLE;
    fn strings(&self) -> Vec<(&'static str, &Option<String>)> {
        vec![
            ("compartmentId", &self.compartment_id),
            ("userId", &self.user_id),
            ("fingerprint", &self.fingerprint),
            ("sshPrivateKeyFilePath", &self.ssh_private_key_file_path),
            ("tenancyId", &self.tenancy_id),
            ("region", &self.region),
        ]
    }
    fn secret(&self) -> Option<(&'static str, &'static str)> {
        self.private_key_passphrase
            .then_some(("privateKeyPassphrase", "Oracle API key passphrase: "))
    }
    fn files(&self) -> &'static [&'static str] {
        &["sshPrivateKeyFilePath"]
    }
}

/// `azure.accounts[]` (Halyard's `hal config provider azure account add`): a service principal
/// and where Packer works.
#[derive(Debug, Args)]
pub struct AzureAccountArgs {
    /// The service principal's application (client) id.
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// The Azure AD tenant's id.
    #[arg(long, value_name = "ID")]
    tenant_id: Option<String>,
    /// The subscription bakes run in.
    #[arg(long, value_name = "ID")]
    subscription_id: Option<String>,
    /// The service principal's object id.
    #[arg(long, value_name = "ID")]
    object_id: Option<String>,
    /// Read the service principal's client secret: without echo from a terminal, else one line
    /// of standard input.
    #[arg(long)]
    app_key: bool,
    /// The resource group Packer's images go to.
    #[arg(long, value_name = "GROUP")]
    packer_resource_group: Option<String>,
    /// The storage account Packer's VHDs go to.
    #[arg(long, value_name = "ACCOUNT")]
    packer_storage_account: Option<String>,
}

impl Edit for AzureAccountArgs {
    const CLOUD: Cloud = AZURE;
    fn strings(&self) -> Vec<(&'static str, &Option<String>)> {
        vec![
            ("clientId", &self.client_id),
            ("tenantId", &self.tenant_id),
            ("subscriptionId", &self.subscription_id),
            ("objectId", &self.object_id),
            ("packerResourceGroup", &self.packer_resource_group),
            ("packerStorageAccount", &self.packer_storage_account),
        ]
    }
    fn secret(&self) -> Option<(&'static str, &'static str)> {
        self.app_key
            .then_some(("appKey", "Azure service principal secret (app key): "))
    }
}

/// `kiln config provider <cloud> account …`.
fn run<A: Args + Edit>(config: Option<&Path>, cmd: &AccountCommand<A>) -> anyhow::Result<()> {
    match cmd {
        AccountCommand::Add { name, fields } => edit(config, name, fields.as_ref(), true),
        AccountCommand::Edit { name, fields } => edit(config, name, fields.as_ref(), false),
        AccountCommand::Delete { name } => delete(config, &A::CLOUD, name),
        AccountCommand::List => list(config, &A::CLOUD),
    }
}

/// Halyard's rule for an account name (`AccountValidator`): lower-case letters and digits, with
/// `-` and `_` inside. The name ends up in bake keys and Packer's variables.
fn check_name(name: &str) -> anyhow::Result<()> {
    let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let inner = |c: char| edge(c) || c == '-' || c == '_';
    let ok = name.starts_with(edge) && name.ends_with(edge) && name.chars().all(inner);
    if !ok {
        bail!(
            "account name '{name}' is not valid: use lower-case letters, digits, '-' and '_', \
             starting and ending with a letter or digit (Halyard's rule)"
        );
    }
    Ok(())
}

fn find(accounts: &[Value], name: &str) -> Option<usize> {
    accounts.iter().position(|a| {
        a.as_mapping()
            .is_some_and(|m| yaml::text(yaml::get(m, "name")) == name)
    })
}

/// The refusal for a name that is not in the file, naming those that are.
fn missing(cloud: &Cloud, name: &str, accounts: &[Value]) -> String {
    let names: Vec<String> = accounts
        .iter()
        .filter_map(|a| a.as_mapping().map(|m| yaml::text(yaml::get(m, "name"))))
        .collect();
    let c = cloud.name;
    match names.is_empty() {
        true => format!(
            "account '{name}' does not exist: there are no {c} accounts; add one with \
             `kiln config provider {c} account add {name}`; nothing was changed"
        ),
        false => format!(
            "account '{name}' does not exist; the {c} accounts are: {}; nothing was changed",
            names.join(", ")
        ),
    }
}

fn edit<A: Edit>(config: Option<&Path>, name: &str, args: &A, add: bool) -> anyhow::Result<()> {
    let cloud = A::CLOUD;
    let c = cloud.name;
    let path = require_config(config)?;
    let name = name.trim();
    if add {
        check_name(name)?;
    }
    let values = clouds::values(args)?;
    let mut file = ConfigFile::open(path)?;
    let mut changes = Changes::default();
    let accounts = yaml::child_seq(yaml::child_map(&mut file.root, c), "accounts");
    let at = format!("{c}.accounts[{name}]");
    let index = match (find(accounts, name), add) {
        (Some(_), true) => bail!(
            "account '{name}' exists; use `kiln config provider {c} account edit {name}`; \
             nothing was changed"
        ),
        (None, false) => bail!("{}", missing(&cloud, name, accounts)),
        (Some(i), false) => i,
        (None, true) => {
            let mut account = Mapping::new();
            account.insert("name".into(), Value::String(name.to_string()));
            accounts.push(Value::Mapping(account));
            changes.0.push(format!("{at}: added"));
            accounts.len() - 1
        }
    };
    let Some(account) = accounts[index].as_mapping_mut() else {
        bail!("{at} is not a mapping; fix the file first");
    };
    // Only now, so that a refused command never prompts for the secret.
    let secret = clouds::read_secret(args)?;
    clouds::apply(account, &at, values, secret, args.dropped(), &mut changes);
    file.save()?;
    report(&file, &changes);
    Ok(())
}

fn delete(config: Option<&Path>, cloud: &Cloud, name: &str) -> anyhow::Result<()> {
    let path = require_config(config)?;
    let name = name.trim();
    let mut file = ConfigFile::open(path)?;
    let accounts = yaml::child_seq(yaml::child_map(&mut file.root, cloud.name), "accounts");
    let Some(index) = find(accounts, name) else {
        bail!("{}", missing(cloud, name, accounts));
    };
    accounts.remove(index);
    file.save()?;
    let changes = Changes(vec![format!("{}.accounts[{name}]: removed", cloud.name)]);
    report(&file, &changes);
    Ok(())
}

/// The accounts as `kiln serve` loads them, as YAML; a secret shows as `******` (its
/// `Serialize`), an unset key not at all.
fn list(config: Option<&Path>, cloud: &Cloud) -> anyhow::Result<()> {
    let Some(accounts) = cloud.accounts else {
        bail!("{} has no accounts", cloud.name);
    };
    let loaded = crate::config::load(config)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let shown = view::without_nulls(accounts(&loaded.settings)?);
    let listed: Vec<Mapping> = shown
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_object())
        .map(name_first)
        .collect();
    match listed.is_empty() {
        true => println!("no {} accounts", cloud.name),
        false => print!("{}", serde_norway::to_string(&listed)?),
    }
    Ok(())
}

/// An account as YAML with its name first (the view's keys are sorted).
fn name_first(account: &serde_json::Map<String, serde_json::Value>) -> Mapping {
    let mut out = Mapping::new();
    let name = account.get("name").into_iter().map(|n| ("name", n));
    let rest = account.iter().filter(|(k, _)| *k != "name");
    for (k, v) in name.chain(rest.map(|(k, v)| (k.as_str(), v))) {
        let v = serde_norway::to_value(v).unwrap_or(Value::Null);
        out.insert(Value::String(k.to_string()), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_follow_halyards_rule() {
        for ok in ["a", "azure-1", "my_account-2", "0x"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "-a", "a-", "Azure", "a b", "a/b", "a.b", "é"] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.contains("lower-case"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_missing_name_is_refused_naming_the_accounts_that_exist() {
        let accounts: Vec<Value> =
            serde_norway::from_str("[{name: one}, {name: two, project: p}]").unwrap();
        assert_eq!(find(&accounts, "two"), Some(1));
        assert_eq!(find(&accounts, "three"), None);
        let m = missing(&GOOGLE, "three", &accounts);
        assert!(m.contains("the google accounts are: one, two"), "{m}");
        let m = missing(&AZURE, "x", &[]);
        assert!(m.contains("there are no azure accounts"), "{m}");
    }

    #[test]
    fn a_listed_account_starts_with_its_name() {
        let v = serde_json::json!({"appKey": "******", "clientId": "C", "name": "azure-1"});
        let text = serde_norway::to_string(&name_first(v.as_object().unwrap())).unwrap();
        assert_eq!(text, "name: azure-1\nappKey: '******'\nclientId: C\n");
    }
}
