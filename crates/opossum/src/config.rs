//! [`Config`]: everything the builder needs, from code, TOML or environment variables.

use std::path::PathBuf;
use std::time::Duration;

use opossum_core::Durability;
use opossum_fs::StoreOptions;
use opossum_projections::{AutoRebuild, ProjectionOptions};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The prefix of the environment variables [`Config::from_env`] reads.
pub const ENV_PREFIX: &str = "OPOSSUM_";

/// The name of the projections folder inside the store folder, unless configured otherwise.
pub const PROJECTIONS_FOLDER: &str = "projections";

/// The configuration of an Opossum application: where the store lives, how it writes, and how
/// its projections are kept current.
///
/// Build it in code, or read it with serde from TOML ([`Config::from_toml_str`]) or from
/// environment variables ([`Config::from_env`]). Every source goes through the same checks —
/// the store's [`StoreOptions::validate`] and the projections' [`ProjectionOptions::validate`] —
/// when [`Config::validate`] or the builder runs, and every problem is reported at once.
///
/// Missing fields take the defaults of the crates underneath; only the store's `path` must be
/// given. Durations are whole milliseconds (`*_ms`).
///
/// ```
/// use opossum::{Config, Durability};
///
/// let config = Config::from_toml_str(r#"
///     [store]
///     path = "/srv/records/quality"
///
///     [projections]
///     polling_interval_ms = 1000
///     auto_rebuild = "missing_checkpoints_only"
///     durability = "eventual"
/// "#)?;
/// assert_eq!(config.store.durability, Durability::Immediate); // the default
/// assert!(config.validate().is_ok());
///
/// let bad = Config::from_toml_str("[store]\npath = \"/srv/CON\"\nlock_timeout_ms = 0")?;
/// assert!(bad.validate().is_err()); // two problems, both listed
/// # Ok::<(), opossum::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The event store.
    #[serde(default)]
    pub store: StoreConfig,
    /// The projections.
    #[serde(default)]
    pub projections: ProjectionsConfig,
}

/// The `[store]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The store folder (a relative path is taken from the current folder). Its last component
    /// is the store's name.
    pub path: PathBuf,
    /// When an append counts as done (default [`Durability::Immediate`]; `"immediate"` or
    /// `"eventual"` in TOML).
    pub durability: Durability,
    /// How long an append waits for another process's lock, in milliseconds (default 5,000).
    pub lock_timeout_ms: u64,
    /// After how long an unchanged lease of a writer that seems to have died is taken over, in
    /// milliseconds (default 10,000).
    pub stale_lock_after_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        let defaults = StoreOptions::new();
        StoreConfig {
            path: PathBuf::new(),
            durability: defaults.get_durability(),
            lock_timeout_ms: millis(defaults.get_lock_timeout()),
            stale_lock_after_ms: millis(defaults.get_stale_lock_after()),
        }
    }
}

/// The `[projections]` section. Defaults are those of
/// [`ProjectionOptions`](opossum_projections::ProjectionOptions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectionsConfig {
    /// The projections folder; default `<store folder>/projections`, so that copying the store
    /// folder copies its read models too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// How often the daemon looks for events appended by other processes, in milliseconds.
    pub polling_interval_ms: u64,
    /// Events applied per projection per daemon step.
    pub batch_size: usize,
    /// Events read per step of a rebuild.
    pub rebuild_batch_size: usize,
    /// Events applied between two flush points of a rebuild.
    pub rebuild_flush_interval: u64,
    /// How many projections are rebuilt at the same time.
    pub max_concurrent_rebuilds: usize,
    /// What the daemon rebuilds when it starts (`"disabled"`, `"missing_checkpoints_only"`,
    /// `"force_full"` in TOML).
    pub auto_rebuild: AutoRebuild,
    /// When projection files count as written (default [`Durability::Immediate`]).
    pub durability: Durability,
    /// How long a [`ReadModel`](crate::ReadModel) read waits for the projection to apply this
    /// process's appends before it gives up with [`Error::ReadModelBehind`], in milliseconds
    /// (default 10,000).
    pub read_your_writes_timeout_ms: u64,
}

impl Default for ProjectionsConfig {
    fn default() -> ProjectionsConfig {
        let defaults = ProjectionOptions::new();
        ProjectionsConfig {
            path: None,
            polling_interval_ms: millis(defaults.get_polling_interval()),
            batch_size: defaults.get_batch_size(),
            rebuild_batch_size: defaults.get_rebuild_batch_size(),
            rebuild_flush_interval: defaults.get_rebuild_flush_interval(),
            max_concurrent_rebuilds: defaults.get_max_concurrent_rebuilds(),
            auto_rebuild: defaults.get_auto_rebuild(),
            durability: defaults.get_durability(),
            read_your_writes_timeout_ms: 10_000,
        }
    }
}

/// The kind of value an environment variable holds.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Integer,
}

/// Every field that can be set from the environment: `OPOSSUM_<SECTION>_<FIELD>`, upper case.
const ENV_FIELDS: [(&str, &str, Kind); 13] = [
    ("store", "path", Kind::Text),
    ("store", "durability", Kind::Text),
    ("store", "lock_timeout_ms", Kind::Integer),
    ("store", "stale_lock_after_ms", Kind::Integer),
    ("projections", "path", Kind::Text),
    ("projections", "polling_interval_ms", Kind::Integer),
    ("projections", "batch_size", Kind::Integer),
    ("projections", "rebuild_batch_size", Kind::Integer),
    ("projections", "rebuild_flush_interval", Kind::Integer),
    ("projections", "max_concurrent_rebuilds", Kind::Integer),
    ("projections", "auto_rebuild", Kind::Text),
    ("projections", "durability", Kind::Text),
    ("projections", "read_your_writes_timeout_ms", Kind::Integer),
];

fn env_name(section: &str, field: &str) -> String {
    format!(
        "{ENV_PREFIX}{}_{}",
        section.to_uppercase(),
        field.to_uppercase()
    )
}

impl Config {
    /// A configuration for the store in the folder `path`, with every other setting at its
    /// default.
    pub fn new(path: impl Into<PathBuf>) -> Config {
        let mut config = Config::default();
        config.store.path = path.into();
        config
    }

    /// Parses TOML text with a `[store]` and an optional `[projections]` section. Unknown keys
    /// are refused, so a misspelt option is an error rather than silently ignored.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] with the parser's message (which names the line).
    pub fn from_toml_str(text: &str) -> Result<Config, Error> {
        toml::from_str(text).map_err(|e| Error::InvalidConfig {
            problems: vec![e.to_string().trim_end().to_owned()],
        })
    }

    /// Reads the process's `OPOSSUM_*` environment variables; see [`Config::from_vars`].
    ///
    /// # Errors
    /// As [`Config::from_vars`].
    pub fn from_env() -> Result<Config, Error> {
        Config::from_vars(std::env::vars())
    }

    /// Builds a configuration from `OPOSSUM_<SECTION>_<FIELD>` variables, such as
    /// `OPOSSUM_STORE_PATH`, `OPOSSUM_STORE_DURABILITY` or `OPOSSUM_PROJECTIONS_BATCH_SIZE`.
    /// Other variables are ignored; an `OPOSSUM_` variable that names no field is an error.
    ///
    /// ```
    /// use opossum::{Config, Durability};
    ///
    /// let config = Config::from_vars([
    ///     ("OPOSSUM_STORE_PATH", "/srv/records/billing"),
    ///     ("OPOSSUM_STORE_DURABILITY", "eventual"),
    ///     ("HOME", "/root"),
    /// ])?;
    /// assert!(config.store.path.ends_with("billing"));
    /// assert_eq!(config.store.durability, Durability::Eventual);
    /// assert!(Config::from_vars([("OPOSSUM_STORE_PAHT", "/x")]).is_err());
    /// # Ok::<(), opossum::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] listing unknown `OPOSSUM_` variables and values that are not
    /// of their field's kind.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Config, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Config::default().with_vars(vars)
    }

    /// Overrides this configuration with `OPOSSUM_<SECTION>_<FIELD>` variables (see
    /// [`Config::from_vars`]): for example a TOML file overridden by the environment.
    ///
    /// # Errors
    /// As [`Config::from_vars`].
    pub fn with_vars<I, K, V>(self, vars: I) -> Result<Config, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut table = match toml::Value::try_from(&self) {
            Ok(toml::Value::Table(table)) => table,
            Ok(_) => toml::Table::new(),
            Err(e) => {
                return Err(Error::InvalidConfig {
                    problems: vec![format!("the configuration cannot be represented: {e}")],
                });
            }
        };
        let mut problems = Vec::new();
        for (name, value) in vars {
            let (name, value) = (name.as_ref(), value.as_ref());
            if !name.starts_with(ENV_PREFIX) {
                continue;
            }
            let Some((section, field, kind)) = ENV_FIELDS
                .iter()
                .find(|(section, field, _)| env_name(section, field) == name)
            else {
                let known: Vec<String> = ENV_FIELDS
                    .iter()
                    .map(|(section, field, _)| env_name(section, field))
                    .collect();
                problems.push(format!(
                    "unknown variable {name}; the known ones are {}",
                    known.join(", ")
                ));
                continue;
            };
            let parsed = match kind {
                Kind::Text => Some(toml::Value::String(value.to_owned())),
                Kind::Integer => value.trim().parse::<i64>().ok().map(toml::Value::Integer),
            };
            let Some(parsed) = parsed else {
                problems.push(format!("{name}={value:?} is not a whole number"));
                continue;
            };
            let section = table
                .entry((*section).to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(section) = section {
                section.insert((*field).to_owned(), parsed);
            }
        }
        if !problems.is_empty() {
            return Err(Error::InvalidConfig { problems });
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| Error::InvalidConfig {
                problems: vec![e.to_string().trim_end().to_owned()],
            })
    }

    /// The projections folder: `projections.path`, or `projections` inside the store folder.
    #[must_use]
    pub fn projections_folder(&self) -> PathBuf {
        self.projections
            .path
            .clone()
            .unwrap_or_else(|| self.store.path.join(PROJECTIONS_FOLDER))
    }

    /// The store's options, as the file store checks them.
    #[must_use]
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions::new()
            .durability(self.store.durability)
            .lock_timeout(Duration::from_millis(self.store.lock_timeout_ms))
            .stale_lock_after(Duration::from_millis(self.store.stale_lock_after_ms))
    }

    /// The projections' options, as the projection system checks them.
    #[must_use]
    pub fn projection_options(&self) -> ProjectionOptions {
        let p = &self.projections;
        ProjectionOptions::new()
            .polling_interval(Duration::from_millis(p.polling_interval_ms))
            .batch_size(p.batch_size)
            .rebuild_batch_size(p.rebuild_batch_size)
            .rebuild_flush_interval(p.rebuild_flush_interval)
            .max_concurrent_rebuilds(p.max_concurrent_rebuilds)
            .auto_rebuild(p.auto_rebuild)
            .durability(p.durability)
    }

    /// How long a read-model read waits for this process's appends.
    #[must_use]
    pub fn read_your_writes_timeout(&self) -> Duration {
        Duration::from_millis(self.projections.read_your_writes_timeout_ms)
    }

    /// Checks everything with the store's and the projections' own validation, and returns
    /// the store folder (absolute) and both options.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] listing every problem of both.
    pub fn validated(&self) -> Result<Validated, Error> {
        let mut problems = Vec::new();
        let folder = if self.store.path.as_os_str().is_empty() {
            problems.push(
                "store.path is not set: give the store folder (in code with store_path, in TOML \
                 as [store] path, or as OPOSSUM_STORE_PATH)"
                    .to_owned(),
            );
            None
        } else {
            match opossum_fs::resolve_store_folder(&self.store.path) {
                Ok(folder) => Some(folder),
                Err(opossum_fs::Error::InvalidPath {
                    problems: found, ..
                }) => {
                    problems.extend(found.into_iter().map(|p| format!("store.path: {p}")));
                    None
                }
                Err(other) => {
                    problems.push(format!("store.path: {other}"));
                    None
                }
            }
        };
        let store = self.store_options();
        match store.validate() {
            Ok(()) => {}
            Err(opossum_fs::Error::InvalidOptions { problems: found }) => {
                problems.extend(found.into_iter().map(|p| format!("store: {p}")));
            }
            Err(other) => problems.push(format!("store: {other}")),
        }
        let projections = self.projection_options();
        match projections.validate() {
            Ok(()) => {}
            Err(opossum_projections::Error::InvalidOptions { problems: found }) => {
                problems.extend(found.into_iter().map(|p| format!("projections: {p}")));
            }
            Err(other) => problems.push(format!("projections: {other}")),
        }
        if self.projections.read_your_writes_timeout_ms == 0 {
            problems.push(
                "projections: read_your_writes_timeout_ms is 0; give reads at least 1 ms to see \
                 this process's writes"
                    .to_owned(),
            );
        }
        match folder {
            Some(folder) if problems.is_empty() => Ok(Validated {
                projections_folder: self
                    .projections
                    .path
                    .clone()
                    .unwrap_or_else(|| folder.join(PROJECTIONS_FOLDER)),
                store_folder: folder,
                store,
                projections,
            }),
            _ => Err(Error::InvalidConfig { problems }),
        }
    }

    /// Checks everything; see [`Config::validated`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] listing every problem.
    pub fn validate(&self) -> Result<(), Error> {
        self.validated().map(|_| ())
    }
}

/// A [`Config`] that passed [`Config::validated`]: the folders and the options, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Validated {
    /// The store folder, absolute.
    pub store_folder: PathBuf,
    /// The store's options.
    pub store: StoreOptions,
    /// The projections folder.
    pub projections_folder: PathBuf,
    /// The projections' options.
    pub projections: ProjectionOptions,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(config: &Config) -> Vec<String> {
        match config.validate() {
            Ok(()) => Vec::new(),
            Err(Error::InvalidConfig { problems }) => problems,
            Err(other) => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn defaults_are_the_crates_defaults() {
        let config = Config::new("/data/store");
        assert_eq!(config.store_options(), StoreOptions::new());
        assert_eq!(config.projection_options(), ProjectionOptions::new());
        assert_eq!(
            config.projections_folder(),
            PathBuf::from("/data/store/projections")
        );
        assert!(problems(&config).is_empty());
        let checked = config.validated().unwrap();
        assert_eq!(checked.store_folder, PathBuf::from("/data/store"));
        assert_eq!(
            checked.projections_folder,
            PathBuf::from("/data/store/projections")
        );
    }

    #[test]
    fn a_missing_path_is_said_once() {
        let found = problems(&Config::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("store.path is not set"), "{found:?}");
    }

    #[test]
    fn store_and_projection_problems_are_listed_together() {
        let mut config = Config::new("/data/CON");
        config.store.lock_timeout_ms = 0;
        config.projections.batch_size = 0;
        config.projections.read_your_writes_timeout_ms = 0;
        let found = problems(&config);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].starts_with("store.path: "), "{found:?}");
        assert!(found[1].starts_with("store: lock_timeout"), "{found:?}");
        assert!(
            found[2].starts_with("projections: batch_size 0"),
            "{found:?}"
        );
    }

    #[test]
    fn toml_round_trips() {
        let mut config = Config::new("/srv/billing");
        config.projections.path = Some("/srv/read-models".into());
        config.projections.auto_rebuild = AutoRebuild::ForceFull;
        config.store.durability = Durability::Eventual;
        let value = toml::Value::try_from(&config).unwrap();
        assert_eq!(value.try_into::<Config>().ok(), Some(config));
    }

    #[test]
    fn unknown_toml_keys_are_refused() {
        let err = Config::from_toml_str("[store]\npath = \"/x\"\nnmae = \"y\"").unwrap_err();
        assert!(err.to_string().contains("nmae"), "{err}");
        // The keys of earlier versions are refused too, naming the ones to use.
        let err = Config::from_toml_str("[store]\npath = \"/x\"\nname = \"y\"").unwrap_err();
        assert!(err.to_string().contains("durability"), "{err}");
    }

    #[test]
    fn variables_override_and_are_typed() {
        let base = Config::new("/data/store");
        let config = base
            .with_vars([
                ("OPOSSUM_PROJECTIONS_BATCH_SIZE", "250"),
                ("OPOSSUM_PROJECTIONS_AUTO_REBUILD", "force_full"),
                ("OPOSSUM_PROJECTIONS_DURABILITY", "eventual"),
                ("OPOSSUM_STORE_PATH", "/data/other"),
            ])
            .unwrap();
        assert_eq!(config.projections.batch_size, 250);
        assert_eq!(config.projections.auto_rebuild, AutoRebuild::ForceFull);
        assert_eq!(config.projections.durability, Durability::Eventual);
        assert_eq!(config.store.path, PathBuf::from("/data/other"));

        let err = Config::default()
            .with_vars([
                ("OPOSSUM_STORE_LOCK_TIMEOUT_MS", "soon"),
                ("OPOSSUM_STORE_STALE_LOCK_AFTER_MS", "later"),
                ("OPOSSUM_NOPE", "1"),
            ])
            .unwrap_err();
        match err {
            Error::InvalidConfig { problems } => assert_eq!(problems.len(), 3, "{problems:?}"),
            other => panic!("unexpected {other}"),
        }
        assert!(Config::from_vars([("OPOSSUM_PROJECTIONS_AUTO_REBUILD", "sometimes")]).is_err());
        assert!(Config::from_vars([("OPOSSUM_STORE_DURABILITY", "maybe")]).is_err());
    }
}
