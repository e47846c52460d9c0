//! Real etcd processes on loopback for the cluster-mode tests: one member ([`EtcdProcess`]) or
//! a three-member cluster ([`EtcdCluster`]), each on free ports with its data in a scratch
//! directory, ready when its client port answers `GET /health` with a leader, killed on drop.
//!
//! A member can be killed and started again on the same ports and data ([`EtcdProcess::kill`],
//! [`EtcdProcess::restart`]), as an operator's restart would. [`EtcdProcess::put_many`] and
//! [`EtcdProcess::compact`] go through etcd's JSON gateway (`/v3/kv/txn`, `/v3/kv/compaction`)
//! so that a test can write thousands of keys in one transaction and compact the history
//! without an etcd client of its own.

use crate::client::{request, Conn};
use crate::process::Proc;
use crate::scratch::ScratchDir;
use crate::wait::poll_until;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a member may take to answer with a leader (a cluster's first election included).
pub const ETCD_START: Duration = Duration::from_secs(30);

/// A free loopback port (bound, read, released: the member binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// One etcd member.
#[derive(Debug)]
pub struct EtcdProcess {
    bin: PathBuf,
    args: Vec<String>,
    client: SocketAddr,
    proc: Option<Proc>,
    data: ScratchDir,
}

impl EtcdProcess {
    /// A single-member cluster with `extra` flags (`--max-txn-ops=20000`), ready.
    pub fn start(bin: &Path, extra: &[&str]) -> EtcdProcess {
        let peer = free_port();
        let mut member = Self::member(
            bin,
            "solo",
            peer,
            &format!("solo=http://127.0.0.1:{peer}"),
            extra,
        );
        member.launch();
        member.wait_ready();
        member
    }

    fn member(bin: &Path, name: &str, peer: u16, initial: &str, extra: &[&str]) -> EtcdProcess {
        let client = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let data = ScratchDir::new(&format!("etcd-{name}"));
        let mut args: Vec<String> = [
            "--name".to_string(),
            name.to_string(),
            "--data-dir".to_string(),
            data.join("data").display().to_string(),
            format!("--listen-client-urls=http://{client}"),
            format!("--advertise-client-urls=http://{client}"),
            format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
            format!("--initial-cluster={initial}"),
            "--initial-cluster-token=lb-test".to_string(),
            "--log-level=warn".to_string(),
        ]
        .into();
        args.extend(extra.iter().map(|a| a.to_string()));
        EtcdProcess {
            bin: bin.to_path_buf(),
            args,
            client,
            proc: None,
            data,
        }
    }

    fn launch(&mut self) {
        self.proc = Some(Proc::spawn(&self.bin, &self.args));
    }

    /// Waits until `GET /health` says healthy (a leader is known).
    pub fn wait_ready(&self) {
        poll_until(
            ETCD_START,
            &format!("etcd on {} healthy", self.client),
            || {
                let health = Conn::connect(self.client).map(|mut c| c.get("/health").text());
                match health {
                    Ok(body) if body.contains("\"true\"") => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        );
    }

    /// The client URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.client)
    }

    /// The client address.
    pub fn client_addr(&self) -> SocketAddr {
        self.client
    }

    /// Kills the member (SIGKILL); its data stays for [`EtcdProcess::restart`].
    pub fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
    }

    /// Freezes the member (SIGSTOP): its connections stay open and nothing answers, as with a
    /// hung host; [`EtcdProcess::thaw`] lets it go on.
    pub fn freeze(&self) {
        if let Some(proc) = &self.proc {
            proc.signal("STOP");
        }
    }

    /// Lets a frozen member go on (SIGCONT).
    pub fn thaw(&self) {
        if let Some(proc) = &self.proc {
            proc.signal("CONT");
        }
    }

    /// Starts the member again on the same ports and data, without waiting.
    pub fn relaunch(&mut self) {
        self.kill();
        self.launch();
    }

    /// Starts the member again on the same ports and data and waits until it is healthy.
    pub fn restart(&mut self) {
        self.relaunch();
        self.wait_ready();
    }

    /// Kills the member, deletes its data and starts it again: a new, empty etcd cluster (its
    /// revision back at 1) on the same ports, and waits until it is healthy.
    pub fn wipe(&mut self) {
        self.kill();
        let data = self.data.join("data");
        std::fs::remove_dir_all(&data).unwrap_or_else(|e| panic!("remove {}: {e}", data.display()));
        self.launch();
        self.wait_ready();
    }

    /// A POST to the JSON gateway; the answer's JSON.
    pub fn gateway(&self, path: &str, body: &str) -> serde_json::Value {
        let mut conn = Conn::open(self.client);
        conn.set_read_timeout(Duration::from_secs(60));
        let answer = conn.request(&request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        ));
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        answer.json()
    }

    /// Puts every `(key, value)` in one transaction; returns its revision.
    pub fn put_many(&self, pairs: &[(String, String)]) -> i64 {
        let ops: Vec<String> = pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    r#"{{"request_put":{{"key":"{}","value":"{}"}}}}"#,
                    base64(k.as_bytes()),
                    base64(v.as_bytes())
                )
            })
            .collect();
        let answer = self.gateway(
            "/v3/kv/txn",
            &format!(r#"{{"success":[{}]}}"#, ops.join(",")),
        );
        revision(&answer)
    }

    /// `key`'s value (as text) and the store's revision, `None` when the key is absent.
    pub fn get(&self, key: &str) -> Option<(String, i64)> {
        let answer = self.gateway(
            "/v3/kv/range",
            &format!(r#"{{"key":"{}"}}"#, base64(key.as_bytes())),
        );
        let value = answer["kvs"][0]["value"].as_str()?;
        Some((
            String::from_utf8_lossy(&unbase64(value)).into_owned(),
            revision(&answer),
        ))
    }

    /// The current revision.
    pub fn revision(&self) -> i64 {
        revision(&self.gateway("/v3/kv/range", r#"{"key":"AA==","limit":1}"#))
    }

    /// Compacts the history up to `revision`.
    pub fn compact(&self, revision: i64) {
        self.gateway(
            "/v3/kv/compaction",
            &format!(r#"{{"revision":"{revision}","physical":true}}"#),
        );
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `header.revision` of a gateway answer (a JSON string, as the gateway writes int64s).
fn revision(answer: &serde_json::Value) -> i64 {
    answer["header"]["revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {answer}"))
}

/// Standard base64 with padding (the gateway's encoding of keys and values).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 decoding (the gateway's values); bytes outside the alphabet count as `/`.
pub fn unbase64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text.bytes().filter(|c| *c != b'=').map(value).collect();
    digits
        .chunks(4)
        .flat_map(|c| {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, d)| n | u32::from(*d) << (18 - 6 * i));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes.into_iter().take(c.len().saturating_sub(1))
        })
        .collect()
}

/// Three members on loopback, one cluster.
#[derive(Debug)]
pub struct EtcdCluster {
    /// The members, in the order they were named.
    pub members: Vec<EtcdProcess>,
}

impl EtcdCluster {
    /// Starts three members and waits until each is healthy.
    pub fn start(bin: &Path) -> EtcdCluster {
        let names = ["m1", "m2", "m3"];
        let peers: Vec<u16> = names.iter().map(|_| free_port()).collect();
        let initial: Vec<String> = names
            .iter()
            .zip(&peers)
            .map(|(n, p)| format!("{n}=http://127.0.0.1:{p}"))
            .collect();
        let initial = initial.join(",");
        let mut members: Vec<EtcdProcess> = names
            .iter()
            .zip(&peers)
            .map(|(n, p)| EtcdProcess::member(bin, n, *p, &initial, &[]))
            .collect();
        for member in &mut members {
            member.launch();
        }
        for member in &members {
            member.wait_ready();
        }
        EtcdCluster { members }
    }

    /// Every member's client URL, comma-separated (what `--cluster-etcd` takes).
    pub fn urls(&self) -> String {
        self.members
            .iter()
            .map(EtcdProcess::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::{base64, unbase64};

    #[test]
    fn base64_table() {
        for (raw, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("/lb/", "L2xiLw=="),
        ] {
            assert_eq!(base64(raw.as_bytes()), encoded, "{raw}");
            assert_eq!(unbase64(encoded), raw.as_bytes(), "{encoded}");
        }
    }
}
