//! The OpenStack catalog: which services galley provisions, their databases and user,
//! and the config lines each service needs to reach them. Pure data and text.
//!
//! The pattern is the one OpenStack's install guides use: one database per name, a user
//! named after the service at `'%'` and `'localhost'` with ALL on each of its databases,
//! and a `mysql+pymysql://` URL (oslo.db with PyMySQL) in the service's config file.

use std::fmt::Write as _;

use crate::names::{Charset, Field, NameError};
use crate::password::Password;

/// Where in a service's config file a database's connection URL goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOption {
    /// `[section]` / `key = <url>`.
    Set {
        /// The section, without brackets.
        section: &'static str,
        /// The option name.
        key: &'static str,
    },
    /// Not in the config file: nova's cell0 database is recorded in the cell mappings
    /// by `nova-manage cell_v2 map_cell0`, which derives its URL from
    /// `[database] connection` (the database name plus `_cell0`).
    NovaCell0Mapping,
}

/// One database of a service and where its URL goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceDatabase {
    /// The database name.
    pub name: &'static str,
    /// Where the URL goes.
    pub option: ConfigOption,
}

/// An OpenStack service galley can provision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The canonical name (`nova`).
    pub name: &'static str,
    /// The database user (the service's name).
    pub user: &'static str,
    /// Its databases, in the order its config lists them.
    pub databases: &'static [ServiceDatabase],
    /// `false` for the default set that `provision` without a list creates.
    pub optional: bool,
    /// Other names accepted for it (`quantum` for neutron, from older releases).
    pub aliases: &'static [&'static str],
    /// The config file the lines belong in, e.g. `nova.conf`.
    pub config_file: &'static str,
}

const fn database(name: &'static str) -> ServiceDatabase {
    ServiceDatabase {
        name,
        option: ConfigOption::Set {
            section: "database",
            key: "connection",
        },
    }
}

const fn service(
    name: &'static str,
    databases: &'static [ServiceDatabase],
    optional: bool,
    config_file: &'static str,
) -> Service {
    Service {
        name,
        user: name,
        databases,
        optional,
        aliases: &[],
        config_file,
    }
}

/// Every service, the default set first, in the order an install guide sets them up.
pub const CATALOG: &[Service] = &[
    service("keystone", &[database("keystone")], false, "keystone.conf"),
    service("glance", &[database("glance")], false, "glance-api.conf"),
    service(
        "placement",
        &[ServiceDatabase {
            name: "placement",
            option: ConfigOption::Set {
                section: "placement_database",
                key: "connection",
            },
        }],
        false,
        "placement.conf",
    ),
    service(
        "nova",
        &[
            ServiceDatabase {
                name: "nova_api",
                option: ConfigOption::Set {
                    section: "api_database",
                    key: "connection",
                },
            },
            database("nova"),
            ServiceDatabase {
                name: "nova_cell0",
                option: ConfigOption::NovaCell0Mapping,
            },
        ],
        false,
        "nova.conf",
    ),
    Service {
        aliases: &["quantum"],
        ..service("neutron", &[database("neutron")], false, "neutron.conf")
    },
    service("cinder", &[database("cinder")], false, "cinder.conf"),
    service("heat", &[database("heat")], false, "heat.conf"),
    service("barbican", &[database("barbican")], true, "barbican.conf"),
    service(
        "designate",
        &[ServiceDatabase {
            name: "designate",
            option: ConfigOption::Set {
                section: "storage:sqlalchemy",
                key: "connection",
            },
        }],
        true,
        "designate.conf",
    ),
    service("manila", &[database("manila")], true, "manila.conf"),
    service(
        "octavia",
        &[
            database("octavia"),
            ServiceDatabase {
                name: "octavia_persistence",
                option: ConfigOption::Set {
                    section: "task_flow",
                    key: "persistence_connection",
                },
            },
        ],
        true,
        "octavia.conf",
    ),
    service("aodh", &[database("aodh")], true, "aodh.conf"),
    service(
        "gnocchi",
        &[ServiceDatabase {
            name: "gnocchi",
            option: ConfigOption::Set {
                section: "indexer",
                key: "url",
            },
        }],
        true,
        "gnocchi.conf",
    ),
];

const SERVICES_ALLOWED: &str = "the services are keystone, glance, placement, nova, neutron, \
     cinder and heat (the default set) and barbican, designate, manila, octavia, aodh and \
     gnocchi (optional); quantum is accepted for neutron";

impl Service {
    /// Whether `provision` without a list of services includes it.
    pub fn is_default(&self) -> bool {
        !self.optional
    }

    /// The database names.
    pub fn database_names(&self) -> Vec<&'static str> {
        self.databases
            .iter()
            .map(|database| database.name)
            .collect()
    }

    /// The catalog entry as the API shows it.
    pub fn entry(&self) -> CatalogEntry {
        CatalogEntry {
            service: self.name,
            databases: self.database_names(),
            optional: self.optional,
            aliases: self.aliases.to_vec(),
            default: self.is_default(),
        }
    }
}

/// A service's catalog entry (the API answers it as `controller_api::CatalogEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The canonical name.
    pub service: &'static str,
    /// Its databases.
    pub databases: Vec<&'static str>,
    /// Not in the default set.
    pub optional: bool,
    /// Other accepted names.
    pub aliases: Vec<&'static str>,
    /// In the default set.
    pub default: bool,
}

/// The whole catalog as entries.
pub fn entries() -> Vec<CatalogEntry> {
    CATALOG.iter().map(Service::entry).collect()
}

/// The default set: keystone, glance, placement, nova, neutron, cinder, heat.
pub fn default_services() -> Vec<&'static Service> {
    CATALOG
        .iter()
        .filter(|service| service.is_default())
        .collect()
}

/// A service by name or alias, in any case (`Nova`, `quantum`). The error lists the
/// valid services.
pub fn resolve(name: &str) -> Result<&'static Service, NameError> {
    let wanted = name.trim();
    CATALOG
        .iter()
        .find(|service| {
            service.name.eq_ignore_ascii_case(wanted)
                || service
                    .aliases
                    .iter()
                    .any(|alias| alias.eq_ignore_ascii_case(wanted))
        })
        .ok_or_else(|| NameError::Invalid {
            field: Field::Service,
            shown: crate::names::shown(name),
            problem: "it is not in galley's OpenStack catalog".to_owned(),
            allowed: SERVICES_ALLOWED,
        })
}

/// Several services (`None`: the default set), each once, in catalog order; an alias
/// and its service count once.
pub fn resolve_list<S: AsRef<str>>(
    names: Option<&[S]>,
) -> Result<Vec<&'static Service>, NameError> {
    let Some(names) = names else {
        return Ok(default_services());
    };
    if names.is_empty() {
        return Err(NameError::Invalid {
            field: Field::Service,
            shown: "[]".to_owned(),
            problem: "the list is empty (leave it out for the default set)".to_owned(),
            allowed: SERVICES_ALLOWED,
        });
    }
    let mut wanted = Vec::new();
    for name in names {
        wanted.push(resolve(name.as_ref())?.name);
    }
    Ok(CATALOG
        .iter()
        .filter(|service| wanted.contains(&service.name))
        .collect())
}

/// Where services reach the database: normally the galley proxy's writer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// A host name or IP address (an IPv6 address is bracketed in URLs).
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so that any
/// password survives in a URL, and in oslo.config, which would otherwise expand `$`.
pub fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// The oslo.db URL for one database: `mysql+pymysql://user:password@host:port/db?charset=...`.
///
/// The `charset` parameter makes PyMySQL's connection use the databases' character set:
/// with utf8mb4 databases and a `utf8` (three-byte) connection, a four-byte character
/// such as an emoji in an instance's description would fail or be mangled.
pub fn connection_url(
    service: &Service,
    database: &str,
    password: &Password,
    endpoint: &Endpoint,
    charset: &Charset,
) -> String {
    let host = if endpoint.host.contains(':') {
        format!("[{}]", endpoint.host)
    } else {
        endpoint.host.clone()
    };
    // PyMySQL knows `utf8mb3` only by its older name.
    let charset = match charset.as_str() {
        "utf8mb3" => "utf8",
        other => other,
    };
    format!(
        "mysql+pymysql://{}:{}@{host}:{}/{database}?charset={charset}",
        percent_encode(service.user),
        percent_encode(password.expose()),
        endpoint.port
    )
}

/// The lines a service's config file needs, one section per database, as text ready to
/// paste into (or download as) e.g. `nova.conf`.
pub fn config_text(
    service: &Service,
    password: &Password,
    endpoint: &Endpoint,
    charset: &Charset,
) -> String {
    let mut text = format!(
        "# {}: the database settings galley provisioned for {} (user {}).\n",
        service.config_file, service.name, service.user
    );
    for database in service.databases {
        let url = connection_url(service, database.name, password, endpoint, charset);
        match database.option {
            ConfigOption::Set { section, key } => {
                let _ = write!(text, "\n[{section}]\n{key} = {url}\n");
            }
            ConfigOption::NovaCell0Mapping => {
                let _ = write!(
                    text,
                    "\n# {name} is not set in {file}: `nova-manage cell_v2 map_cell0` records it in\n\
                     # the cell mappings, deriving this URL from [database] connection:\n\
                     #   {url}\n",
                    name = database.name,
                    file = service.config_file,
                );
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint {
            host: "10.0.0.10".to_owned(),
            port: 3306,
        }
    }

    #[test]
    fn the_default_set_and_the_optional_services() {
        let defaults: Vec<&str> = default_services().iter().map(|s| s.name).collect();
        assert_eq!(
            defaults,
            [
                "keystone",
                "glance",
                "placement",
                "nova",
                "neutron",
                "cinder",
                "heat"
            ]
        );
        let optional: Vec<&str> = CATALOG
            .iter()
            .filter(|s| s.optional)
            .map(|s| s.name)
            .collect();
        assert_eq!(
            optional,
            [
                "barbican",
                "designate",
                "manila",
                "octavia",
                "aodh",
                "gnocchi"
            ]
        );
        assert_eq!(
            resolve("nova").unwrap().database_names(),
            ["nova_api", "nova", "nova_cell0"]
        );
        assert_eq!(
            resolve("octavia").unwrap().database_names(),
            ["octavia", "octavia_persistence"]
        );
        // Every catalog name is a valid, non-system database and user name.
        for service in CATALOG {
            crate::names::UserName::parse_managed(service.user).unwrap();
            for database in service.databases {
                crate::names::DatabaseName::parse_managed(database.name).unwrap();
            }
        }
    }

    #[test]
    fn resolve_accepts_aliases_and_case_and_lists_the_services_otherwise() {
        for (input, expected) in [
            ("neutron", "neutron"),
            ("quantum", "neutron"),
            ("Nova", "nova"),
            (" heat ", "heat"),
            ("GNOCCHI", "gnocchi"),
        ] {
            assert_eq!(resolve(input).unwrap().name, expected, "{input}");
        }
        let message = resolve("swift").unwrap_err().to_string();
        assert!(message.contains("\"swift\""), "{message}");
        assert!(
            message.contains("not in galley's OpenStack catalog"),
            "{message}"
        );
        assert!(message.contains("keystone, glance"), "{message}");
        assert!(
            message.contains("quantum is accepted for neutron"),
            "{message}"
        );
        let message = resolve("nova;drop").unwrap_err().to_string();
        assert!(message.contains("\"nova;drop\""), "{message}");
    }

    #[test]
    fn resolve_list_dedupes_and_keeps_catalog_order() {
        let names = ["heat", "quantum", "neutron", "keystone"];
        let services: Vec<&str> = resolve_list(Some(&names[..]))
            .unwrap()
            .iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(services, ["keystone", "neutron", "heat"]);
        assert_eq!(resolve_list::<&str>(None).unwrap().len(), 7);
        let empty: [&str; 0] = [];
        assert!(resolve_list(Some(&empty[..]))
            .unwrap_err()
            .to_string()
            .contains("leave it out"));
        assert!(resolve_list(Some(&["nova", "swift"][..])).is_err());
    }

    #[test]
    fn urls_percent_encode_the_password_and_bracket_ipv6() {
        let keystone = resolve("keystone").unwrap();
        let password = Password::parse("p@ss:w/rd$%?#").unwrap();
        assert_eq!(
            connection_url(keystone, "keystone", &password, &endpoint(), &Charset::utf8mb4()),
            "mysql+pymysql://keystone:p%40ss%3Aw%2Frd%24%25%3F%23@10.0.0.10:3306/keystone?charset=utf8mb4"
        );
        let ipv6 = Endpoint {
            host: "fd00::10".to_owned(),
            port: 13306,
        };
        assert_eq!(
            connection_url(keystone, "keystone", &password, &ipv6, &Charset::utf8mb3()),
            "mysql+pymysql://keystone:p%40ss%3Aw%2Frd%24%25%3F%23@[fd00::10]:13306/keystone?charset=utf8"
        );
    }

    #[test]
    fn config_text_per_service() {
        let password = Password::parse("secret").unwrap();
        let text = |name: &str| {
            config_text(
                resolve(name).unwrap(),
                &password,
                &endpoint(),
                &Charset::utf8mb4(),
            )
        };
        assert_eq!(
            text("nova"),
            "# nova.conf: the database settings galley provisioned for nova (user nova).\n\
             \n[api_database]\nconnection = mysql+pymysql://nova:secret@10.0.0.10:3306/nova_api?charset=utf8mb4\n\
             \n[database]\nconnection = mysql+pymysql://nova:secret@10.0.0.10:3306/nova?charset=utf8mb4\n\
             \n# nova_cell0 is not set in nova.conf: `nova-manage cell_v2 map_cell0` records it in\n\
             # the cell mappings, deriving this URL from [database] connection:\n\
             #   mysql+pymysql://nova:secret@10.0.0.10:3306/nova_cell0?charset=utf8mb4\n"
        );
        assert!(text("placement").contains(
            "[placement_database]\nconnection = mysql+pymysql://placement:secret@10.0.0.10:3306/placement?charset=utf8mb4\n"
        ));
        let octavia = text("octavia");
        assert!(octavia.contains(
            "[database]\nconnection = mysql+pymysql://octavia:secret@10.0.0.10:3306/octavia?"
        ));
        assert!(octavia.contains(
            "[task_flow]\npersistence_connection = mysql+pymysql://octavia:secret@10.0.0.10:3306/octavia_persistence?"
        ));
        assert!(text("gnocchi").contains("[indexer]\nurl = mysql+pymysql://gnocchi:"));
        assert!(text("designate").contains("[storage:sqlalchemy]\nconnection = "));
        assert!(text("quantum").starts_with("# neutron.conf:"));
    }

    #[test]
    fn catalog_entries_for_the_api() {
        let neutron = resolve("neutron").unwrap().entry();
        assert_eq!(neutron.aliases, ["quantum"]);
        assert!(neutron.default && !neutron.optional);
        assert_eq!(entries().len(), CATALOG.len());
    }
}
