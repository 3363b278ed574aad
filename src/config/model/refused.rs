//! Subsystems natrix does not implement: JetStream (top level and per
//! account), clustering, gateways, leaf nodes, WebSocket, MQTT, subject
//! mappings and OCSP stapling.
//!
//! Invariant: each block is validated as the reference does (unknown keys,
//! value types, listeners, nested `tls`), then refused with an error saying
//! how to disable it, unless it already leaves the feature off (no listening
//! port and no routes, gateways or remotes; JetStream `false`, `disabled`
//! or `enabled: false`; an empty mappings map; `ocsp: false` or mode
//! `never`). So a config never appears to work while silently dropping part
//! of its meaning.

use super::tls::tls;
use super::{listen, port, Node, Spot};
use crate::config::{ConfigError, Value};
fn unsupported(n: &Node<'_>, feature: &str, how_to_disable: &str) -> ConfigError {
    n.err(format!(
        "{feature} is not supported by natrix ({how_to_disable})"
    ))
}

pub(super) fn refuse_mappings(n: &Node<'_>) -> Result<(), ConfigError> {
    match n.value() {
        Value::Map(entries) if entries.is_empty() => Ok(()),
        Value::Map(_) => Err(unsupported(n, "subject mappings", "remove the mappings")),
        _ => Err(n.expected("a map of subject mappings")),
    }
}

pub(super) fn refuse_ocsp(n: &Node<'_>) -> Result<(), ConfigError> {
    match n.value() {
        Value::Bool(false) => Ok(()),
        Value::Bool(true) => Err(unsupported(n, "ocsp stapling", "set ocsp: false")),
        Value::Map(_) => {
            let mut mode = "auto".to_string();
            for field in n.entries()? {
                match field.name.as_str() {
                    "mode" => {
                        mode = field.node.string()?.to_ascii_lowercase();
                        if !matches!(mode.as_str(), "always" | "must" | "never" | "auto") {
                            return Err(field.node.err(format!(
                                "unknown ocsp mode {mode:?}: expected always, must, never or auto"
                            )));
                        }
                    }
                    "url" => {
                        field.node.str()?;
                    }
                    "urls" => {
                        field.node.strings()?;
                    }
                    _ => field.unknown(&["mode", "url", "urls"])?,
                }
            }
            if mode == "never" {
                Ok(())
            } else {
                Err(unsupported(n, "ocsp stapling", "set mode: never"))
            }
        }
        _ => Err(n.expected("a boolean or an ocsp map")),
    }
}

/// Checks a subsystem block's keys and listener, returning whether it
/// listens on a port.
fn subsystem(n: &Node<'_>, what: &str, keys: &[&str]) -> Result<bool, ConfigError> {
    if !matches!(n.value(), Value::Map(_)) {
        return Err(n.expected(&format!("a map defining {what}")));
    }
    let mut listening = false;
    for field in n.entries()? {
        let v = &field.node;
        match field.name.as_str() {
            "listen" => listening = listen(v)?.1 != 0,
            "port" => listening = port(v)? != 0,
            "host" | "net" | "name" | "advertise" => {
                v.str()?;
            }
            "tls" => {
                tls(v, false)?;
            }
            name if keys.contains(&name) => {}
            _ => field.unknown(keys)?,
        }
    }
    Ok(listening)
}

fn non_empty_array(n: &Node<'_>, key: &str) -> Result<bool, ConfigError> {
    for field in n.entries()? {
        if field.name == key {
            return Ok(!field.node.items()?.is_empty());
        }
    }
    Ok(false)
}

pub(super) fn cluster(n: &Node<'_>) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &[
        "name",
        "listen",
        "port",
        "host",
        "net",
        "authorization",
        "routes",
        "tls",
        "cluster_advertise",
        "advertise",
        "no_advertise",
        "connect_retries",
        "permissions",
    ];
    let listening = subsystem(n, "a cluster", KEYS)?;
    if listening || non_empty_array(n, "routes")? {
        return Err(unsupported(
            n,
            "clustering (cluster)",
            "remove the cluster block, or leave it without a port and routes",
        ));
    }
    Ok(())
}

pub(super) fn gateway(n: &Node<'_>) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &[
        "name",
        "listen",
        "port",
        "host",
        "net",
        "authorization",
        "tls",
        "advertise",
        "connect_retries",
        "gateways",
        "reject_unknown",
        "reject_unknown_cluster",
    ];
    let listening = subsystem(n, "a gateway", KEYS)?;
    if listening || non_empty_array(n, "gateways")? {
        return Err(unsupported(
            n,
            "gateway",
            "remove the gateway block, or leave it without a port and gateways",
        ));
    }
    Ok(())
}

pub(super) fn leafnodes(n: &Node<'_>) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &[
        "listen",
        "port",
        "host",
        "net",
        "authorization",
        "remotes",
        "reconnect",
        "reconnect_delay",
        "reconnect_interval",
        "tls",
        "leafnode_advertise",
        "advertise",
        "no_advertise",
        "min_version",
        "minimum_version",
    ];
    let listening = subsystem(n, "leafnodes", KEYS)?;
    if listening || non_empty_array(n, "remotes")? {
        return Err(unsupported(
            n,
            "leafnodes",
            "remove the leafnodes block, or leave it without a port and remotes",
        ));
    }
    Ok(())
}

pub(super) fn websocket(n: &Node<'_>) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &[
        "listen",
        "port",
        "host",
        "net",
        "advertise",
        "no_tls",
        "tls",
        "same_origin",
        "allowed_origins",
        "allowed_origin",
        "allow_origins",
        "allow_origin",
        "origins",
        "origin",
        "handshake_timeout",
        "compress",
        "compression",
        "authorization",
        "authentication",
        "jwt_cookie",
        "no_auth_user",
    ];
    if subsystem(n, "websocket", KEYS)? {
        return Err(unsupported(
            n,
            "websocket",
            "remove the websocket block, or leave it without a port",
        ));
    }
    Ok(())
}

pub(super) fn mqtt(n: &Node<'_>) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &[
        "listen",
        "port",
        "host",
        "net",
        "tls",
        "authorization",
        "authentication",
        "no_auth_user",
        "ack_wait",
        "ackwait",
        "max_ack_pending",
        "max_pending",
        "max_inflight",
        "js_domain",
        "stream_replicas",
        "consumer_replicas",
        "consumer_memory_storage",
        "consumer_inactive_threshold",
        "consumer_auto_cleanup",
    ];
    if subsystem(n, "mqtt", KEYS)? {
        return Err(unsupported(
            n,
            "mqtt",
            "remove the mqtt block, or leave it without a port",
        ));
    }
    Ok(())
}

/// Top-level `jetstream`. Returns the position of its store_dir, if any.
pub(super) fn jetstream(n: &Node<'_>) -> Result<Option<Spot>, ConfigError> {
    const KEYS: &[&str] = &[
        "store",
        "store_dir",
        "storedir",
        "max_memory_store",
        "max_mem_store",
        "max_mem",
        "max_file_store",
        "max_file",
        "domain",
        "enable",
        "enabled",
        "key",
        "ek",
        "encryption_key",
        "cipher",
        "extension_hint",
        "limits",
        "unique_tag",
        "max_outstanding_catchup",
    ];
    const HOW: &str = "set jetstream: false or enabled: false";
    let enabled = match n.value() {
        Value::Bool(b) => *b,
        Value::String(s) => enabled_word(n, s)?,
        Value::Map(_) => {
            let mut enabled = true;
            let mut store = None;
            for field in n.entries()? {
                let v = &field.node;
                match field.name.as_str() {
                    "enable" | "enabled" => enabled = v.bool()?,
                    "store" | "store_dir" | "storedir" => {
                        v.str()?;
                        store = Some(Spot::key_of(&field));
                    }
                    "cipher" => {
                        let c = v.str()?.to_ascii_lowercase();
                        if !matches!(c.as_str(), "chacha" | "chachapoly" | "aes") {
                            return Err(
                                v.err(format!("unknown cipher {c:?}: expected chachapoly or aes"))
                            );
                        }
                    }
                    "domain" | "key" | "ek" | "encryption_key" | "extension_hint"
                    | "unique_tag" => {
                        v.str()?;
                    }
                    "limits" => {
                        v.entries()?;
                    }
                    name if KEYS.contains(&name) => {}
                    _ => field.unknown(KEYS)?,
                }
            }
            if enabled {
                return Err(unsupported(n, "jetstream", HOW));
            }
            return Ok(store);
        }
        _ => return Err(n.expected("a boolean, \"enabled\"/\"disabled\" or a jetstream map")),
    };
    if enabled {
        return Err(unsupported(n, "jetstream", HOW));
    }
    Ok(None)
}

fn enabled_word(n: &Node<'_>, s: &str) -> Result<bool, ConfigError> {
    match s.to_ascii_lowercase().as_str() {
        "enabled" | "enable" => Ok(true),
        "disabled" | "disable" => Ok(false),
        _ => Err(n.err(format!("expected \"enabled\" or \"disabled\", found {s:?}"))),
    }
}

pub(super) fn account_jetstream(n: &Node<'_>, account: &str) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &[
        "max_memory",
        "max_mem",
        "mem",
        "memory",
        "max_store",
        "max_file",
        "max_disk",
        "store",
        "disk",
        "max_streams",
        "streams",
        "max_consumers",
        "consumers",
        "max_bytes_required",
        "max_stream_bytes",
        "max_bytes",
        "mem_max_stream_bytes",
        "memory_max_stream_bytes",
        "disk_max_stream_bytes",
        "store_max_stream_bytes",
        "max_ack_pending",
    ];
    let enabled = match n.value() {
        Value::Bool(b) => *b,
        Value::String(s) => enabled_word(n, s)?,
        Value::Map(_) => {
            for field in n.entries()? {
                match field.name.as_str() {
                    "max_bytes_required" | "max_stream_bytes" | "max_bytes" => {
                        field.node.bool()?;
                    }
                    name if KEYS.contains(&name) => {
                        field.node.int()?;
                    }
                    _ => field.unknown(KEYS)?,
                }
            }
            true
        }
        _ => {
            return Err(n.expected("a boolean, \"enabled\"/\"disabled\" or a jetstream limits map"))
        }
    };
    if enabled {
        return Err(unsupported(
            n,
            &format!("jetstream (account {account:?})"),
            "set jetstream: false or remove it",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::model::test_support::{err, ok};

    #[test]
    fn unsupported_subsystems_are_refused_unless_disabled() {
        assert_eq!(
            err("jetstream: enabled"),
            "<string>:1:12: jetstream: jetstream is not supported by natrix (set jetstream: false or enabled: false)"
        );
        assert_eq!(
            err("jetstream {\n  store_dir: /data\n  max_mem: 1G\n}"),
            "<string>:1:11: jetstream: jetstream is not supported by natrix (set jetstream: false or enabled: false)"
        );
        assert_eq!(
            err("jetstream { store_dir: /data, bogus: 1 }"),
            "<string>:1:31: jetstream.bogus: unknown field \"bogus\""
        );
        ok("jetstream: false");
        ok("jetstream: disabled");
        ok("jetstream { enabled: false, store_dir: \"/data\", max_file_store: 10G }");
        assert!(err("jetstream: maybe").contains("expected \"enabled\" or \"disabled\""));
        assert_eq!(
            err("accounts { A { jetstream: enabled } }"),
            "<string>:1:27: accounts.A.jetstream: jetstream (account \"A\") is not supported by natrix (set jetstream: false or remove it)"
        );
        ok("accounts { A { jetstream: disabled } }");

        assert_eq!(
            err("cluster {\n  name: c1\n  listen: 0.0.0.0:6222\n  routes: [nats://a:6222]\n}"),
            "<string>:1:9: cluster: clustering (cluster) is not supported by natrix (remove the cluster block, or leave it without a port and routes)"
        );
        ok("cluster { name: c1 }");
        assert_eq!(
            err("cluster { name: c1, bogus: 1 }"),
            "<string>:1:21: cluster.bogus: unknown field \"bogus\"; expected one of: name, listen, port, host, net, authorization, routes, tls, cluster_advertise, advertise, no_advertise, connect_retries, permissions"
        );
        assert!(
            err("gateway { name: g, port: 7222 }").contains("gateway is not supported by natrix")
        );
        assert!(err("leafnodes { remotes: [ {url: \"nats://h:7422\"} ] }")
            .contains("leafnodes is not supported by natrix"));
        assert!(err("leaf { port: 7422 }").contains("leafnodes is not supported by natrix"));
        assert!(err("websocket { port: 8080, no_tls: true }")
            .contains("websocket is not supported by natrix"));
        assert!(
            err("mqtt { listen: \"0.0.0.0:1883\" }").contains("mqtt is not supported by natrix")
        );
        ok("websocket { no_tls: true }");
        assert!(err("mappings { \"foo\": \"bar\" }")
            .contains("subject mappings is not supported by natrix"));
        assert!(err("ocsp: true").contains("ocsp stapling is not supported by natrix"));
        ok("ocsp: false\nocsp { mode: never }");

        let c = ok("store_dir: /data\njetstream: false");
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("store_dir is only used by JetStream"));
        assert!(
            err("store_dir: /a\njetstream { enabled: false, store_dir: /b }")
                .contains("duplicate store_dir")
        );
    }
}
