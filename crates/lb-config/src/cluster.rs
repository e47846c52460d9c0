//! [`ClusterConfig`]: cluster mode's settings (`[cluster]`, `--cluster-etcd`, `--cluster-prefix`,
//! `--node-name`) and their checks. Cluster mode is on when `etcd` names at least one URL.

use crate::ConfigError;

/// The key prefix when none is given.
pub const DEFAULT_CLUSTER_PREFIX: &str = "/lb/";

/// Where the shared registry lives, and who this node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// etcd client URLs (`http://127.0.0.1:2379`); empty: cluster mode is off.
    pub etcd: Vec<String>,
    /// The key prefix every node of one cluster shares.
    pub prefix: String,
    /// This node's name; the host name when `None`.
    pub node_name: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            etcd: Vec::new(),
            prefix: DEFAULT_CLUSTER_PREFIX.to_string(),
            node_name: None,
        }
    }
}

impl ClusterConfig {
    /// Each URL is `http://HOST:PORT`, the prefix starts and ends with `/`, the node name is
    /// non-empty printable text without spaces.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for url in &self.etcd {
            let rest = url.strip_prefix("http://").unwrap_or("");
            if rest.is_empty() || rest.contains(['/', ' ']) || !rest.contains(':') {
                return Err(ConfigError(format!(
                    "cluster.etcd (--cluster-etcd) {url:?}: expected http://HOST:PORT"
                )));
            }
        }
        let p = &self.prefix;
        if !p.starts_with('/') || !p.ends_with('/') || p.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(ConfigError(format!(
                "cluster.prefix (--cluster-prefix) {p:?}: expected a key starting and ending with `/`"
            )));
        }
        if let Some(name) = &self.node_name {
            if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(ConfigError(format!(
                    "cluster.node_name (--node-name) {name:?}: expected a name without spaces"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row: etcd URLs, prefix, node name, accepted.
    #[test]
    fn validation_table() {
        let table: [(&[&str], &str, Option<&str>, bool); 9] = [
            (&[], "/lb/", None, true),
            (&["http://127.0.0.1:2379"], "/lb/", Some("a"), true),
            (
                &["http://10.0.0.1:2379", "http://etcd-2:2379"],
                "/x/y/",
                None,
                true,
            ),
            (&["https://127.0.0.1:2379"], "/lb/", None, false),
            (&["http://127.0.0.1"], "/lb/", None, false),
            (&["http://"], "/lb/", None, false),
            (&["http://127.0.0.1:2379"], "lb/", None, false),
            (&["http://127.0.0.1:2379"], "/lb", None, false),
            (&["http://127.0.0.1:2379"], "/lb/", Some("a b"), false),
        ];
        for (etcd, prefix, node, ok) in table {
            let c = ClusterConfig {
                etcd: etcd.iter().map(|s| s.to_string()).collect(),
                prefix: prefix.to_string(),
                node_name: node.map(str::to_string),
            };
            assert_eq!(c.validate().is_ok(), ok, "{c:?}");
        }
    }

    /// `[cluster]` in the file takes a list or a comma-separated string; flags override it.
    #[test]
    fn the_file_section_and_the_flags_stack() {
        let list = crate::parse_file(
            "[cluster]\netcd = [\"http://a:1\", \"http://b:2\"]\nprefix = \"/x/\"\nnode_name = \"n1\"\n",
            "t.toml",
        )
        .unwrap();
        let text =
            crate::parse_file("[cluster]\netcd = \"http://a:1, http://b:2\"\n", "t.toml").unwrap();
        assert_eq!(list.cluster_etcd, text.cluster_etcd);
        assert_eq!(list.cluster_etcd, ["http://a:1", "http://b:2"]);
        let flags = crate::Layer {
            node_name: Some("n2".into()),
            ..crate::Layer::default()
        };
        let c = crate::Config::layered(Some(&list), &flags, &mut crate::LiteralsOnly)
            .unwrap()
            .config;
        assert_eq!(c.restart.cluster.prefix, "/x/");
        assert_eq!(c.restart.cluster.node_name.as_deref(), Some("n2"));
        assert!(crate::parse_file("[cluster]\netcd = 1\n", "t.toml").is_err());
        assert!(crate::parse_file("[cluster]\nnodes = 3\n", "t.toml").is_err());
    }
}
